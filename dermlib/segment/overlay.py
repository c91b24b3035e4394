"""Drawing a lesion outline on its photo."""

from __future__ import annotations

import numpy as np
from PIL import Image

#: Outline colour: a cyan that no dermoscopic colour (the six of the ABCD rule) comes near.
OUTLINE_RGB = (0, 229, 255)


def draw_outline(image: Image.Image, mask: np.ndarray, colour: tuple[int, int, int] = OUTLINE_RGB,
                 width: int | None = None) -> Image.Image:
    """The photo with the border of ``mask`` (its size) drawn on it; every outlined region is drawn.

    Args:
        image: The photo.
        mask: Bool lesion mask, H x W of the photo.
        colour: RGB of the line.
        width: Line width in pixels (default: 0.6% of the photo's longer side, at least 2).
    """
    import cv2

    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (image.height, image.width):
        raise ValueError(f"The mask is {mask.shape[1]}x{mask.shape[0]}, the photo {image.width}x{image.height}.")
    canvas = np.array(image.convert("RGB"))
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    width = width or max(2, round(0.006 * max(image.size)))
    cv2.drawContours(canvas, contours, -1, colour, width, lineType=cv2.LINE_AA)
    return Image.fromarray(canvas)
