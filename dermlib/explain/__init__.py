"""Explanations: CAM methods by name, a batched thread-safe engine, and overlays."""

from dermlib.explain.engine import cams_for_tensor, explain
from dermlib.explain.methods import CAM_METHODS, DEFAULT_CAM_METHOD, CamMethod, get_cam_method
from dermlib.explain.overlay import COLORMAPS, heatmap_rgb, overlay_heatmap

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
