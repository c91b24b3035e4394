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


def shared_scale(maps: np.ndarray, probabilities: np.ndarray | list[float]) -> np.ndarray:
    """Put a set of per-class maps on one colour scale: each scaled by its class's probability over the largest.

    The CAM engine normalises every map to its own maximum, so a class at 1% would look as hot as one at 92%.
    Scaled by probability, the top class keeps its full range and a class at a twelfth of its probability
    shows at most a twelfth of the heat: intensity compares across the maps of one image.

    Args:
        maps: (k, H, W) maps in [0, 1].
        probabilities: The k classes' probabilities.
    """
    probs = np.clip(np.asarray(probabilities, dtype=np.float32), 0.0, None)
    top = float(probs.max()) if probs.size else 0.0
    weights = probs / top if top > 0 else np.zeros_like(probs)
    return np.asarray(maps, dtype=np.float32) * weights[:, None, None]


def colour_bar(width: int = 360, height: int = 18, colormap: str = "jet") -> Image.Image:
    """A horizontal colour bar of the heatmap colours from 0 (left) to 1 (right), as an RGB image."""
    ramp = np.tile(np.linspace(0.0, 1.0, width, dtype=np.float32), (height, 1))
    return Image.fromarray(heatmap_rgb(ramp, colormap=colormap))
