"""Explanations: CAM methods by name, a batched thread-safe engine, and overlays.

Names are resolved on first use (PEP 562) so that ``import dermlib.explain`` and the method registry stay
cheap: the engine pulls in torch and grad-cam, which listing models or refusing a bad file never needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dermlib._lazy import lazy_exports

_EXPORTS = {
    "cams_for_tensor": "dermlib.explain.engine",
    "explain": "dermlib.explain.engine",
    "CAM_METHODS": "dermlib.explain.methods",
    "DEFAULT_CAM_METHOD": "dermlib.explain.methods",
    "CamMethod": "dermlib.explain.methods",
    "get_cam_method": "dermlib.explain.methods",
    "COLORMAPS": "dermlib.explain.overlay",
    "heatmap_rgb": "dermlib.explain.overlay",
    "overlay_heatmap": "dermlib.explain.overlay",
}

__all__ = [
    "CAM_METHODS",
    "COLORMAPS",
    "DEFAULT_CAM_METHOD",
    "CamMethod",
    "cams_for_tensor",
    "explain",
    "get_cam_method",
    "heatmap_rgb",
    "overlay_heatmap",
]

if TYPE_CHECKING:
    from dermlib.explain.engine import cams_for_tensor, explain
    from dermlib.explain.methods import CAM_METHODS, DEFAULT_CAM_METHOD, CamMethod, get_cam_method
    from dermlib.explain.overlay import COLORMAPS, heatmap_rgb, overlay_heatmap


__getattr__ = lazy_exports("dermlib.explain", _EXPORTS, globals())
