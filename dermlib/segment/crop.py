"""Segmentation before classification: crop the photo to the lesion the segmenter outlines."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

#: Margin around the lesion's bounding box, as a fraction of the box's longer side: the classifier was
#: trained on photos showing skin around the lesion, and the border itself is a feature.
DEFAULT_MARGIN = 0.15
#: Below this lesion fraction of the photo the outline is more likely noise than a lesion: keep the photo.
MIN_AREA_FRACTION = 0.005


@dataclass(frozen=True)
class CropResult:
    """A crop and what it was cut from."""

    image: Image.Image
    box: tuple[int, int, int, int] | None  # (x0, y0, x1, y1) in the photo; None = the whole photo was kept
    reason: str  # why the photo was (not) cropped, in words


def crop_box(mask: np.ndarray, margin: float = DEFAULT_MARGIN) -> tuple[int, int, int, int] | None:
    """The square box around the lesion with ``margin``, clipped to the photo; None for an (almost) empty mask.

    Square, because the classifiers take square inputs: a long thin box would be stretched. The lesion is the
    mask's largest connected region, as for the measurements: on photos unlike its training set the outliner
    also marks dark vignette corners and shadows at the edge, and a box around those would keep the whole photo.
    """
    from dermlib.segment.measure import largest_component

    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2 or mask.mean() < MIN_AREA_FRACTION:
        return None
    mask = largest_component(mask)
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    side = max(x1 - x0, y1 - y0)
    side = round(side * (1 + 2 * margin))
    h, w = mask.shape
    side = min(side, h, w) if side > min(h, w) else side
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = round(min(max(cx - side / 2, 0), max(w - side, 0)))
    top = round(min(max(cy - side / 2, 0), max(h - side, 0)))
    return left, top, min(left + side, w), min(top + side, h)


def crop_to_lesion(image: Image.Image, mask: np.ndarray, margin: float = DEFAULT_MARGIN) -> CropResult:
    """Crop ``image`` to the lesion of ``mask`` (the photo's size) with a margin.

    Returns:
        The crop, its box, and a sentence saying what was done; the whole photo when the mask is
        (almost) empty or the box would cover nearly all of it anyway.
    """
    box = crop_box(mask, margin)
    if box is None:
        return CropResult(image, None, "no lesion was outlined, so the classifier saw the whole photo")
    x0, y0, x1, y1 = box
    if (x1 - x0) * (y1 - y0) >= 0.9 * image.width * image.height:
        return CropResult(image, None, "the lesion fills the photo, so the classifier saw the whole photo")
    return CropResult(image.crop(box), box, "the classifier saw the photo cropped to the outlined lesion")


def lesion_cropper(model: str | None = None, margin: float = DEFAULT_MARGIN) -> Callable[[Image.Image], Image.Image]:
    """A function photo -> crop, with a loaded segmentation model (for evaluation over many photos)."""
    from dermlib.segment.model import load_segmenter

    segmenter = load_segmenter(model)
    return lambda image: crop_to_lesion(image, segmenter.segment(image), margin).image
