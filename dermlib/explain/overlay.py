"""Render a heatmap over the image the model saw."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

COLORMAPS: dict[str, int] = {
    "jet": cv2.COLORMAP_JET,
    "turbo": cv2.COLORMAP_TURBO,
    "inferno": cv2.COLORMAP_INFERNO,
    "viridis": cv2.COLORMAP_VIRIDIS,
}


def heatmap_rgb(cam: np.ndarray, size: tuple[int, int] | None = None, colormap: str = "jet") -> np.ndarray:
    """Colour a [0, 1] map; ``size`` is (width, height) to resize to. Returns uint8 (H, W, 3) RGB."""
    cam = np.clip(np.nan_to_num(np.asarray(cam, dtype=np.float32)), 0.0, 1.0)
    if size is not None and (cam.shape[1], cam.shape[0]) != tuple(size):
        cam = cv2.resize(cam, tuple(size), interpolation=cv2.INTER_LINEAR)
    colored = cv2.applyColorMap(np.uint8(np.rint(255 * cam)), COLORMAPS[colormap])
    return cv2.cvtColor(colored, cv2.COLOR_BGR2RGB)


def overlay_heatmap(
    image: Image.Image, cam: np.ndarray, opacity: float = 0.45, colormap: str = "jet"
) -> Image.Image:
    """Blend a heatmap over an image.

    Args:
        image: The image the map belongs to (use ``LoadedModel.model_view`` so geometry matches).
        cam: Map in [0, 1] of any size; it is resized to the image.
        opacity: 0 shows only the image, 1 only the heatmap.
        colormap: A key of :data:`COLORMAPS`.

    Returns:
        A new RGB image of the same size as ``image``.
    """
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be between 0 and 1, got {opacity}.")
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    heat = heatmap_rgb(cam, (base.shape[1], base.shape[0]), colormap).astype(np.float32)
    blended = (1.0 - opacity) * base + opacity * heat
    return Image.fromarray(np.uint8(np.clip(np.rint(blended), 0, 255)))
