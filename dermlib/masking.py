"""Region masks applied to every photo before it is resized: hides corner watermarks from the model.

DermNet NZ stamps its logo (and on some photos a "Te Whatu Ora" mark) in the bottom-left corner of every
photo; Fitzpatrick17k photos carry none. A network trained on both would learn "logo present" as a cue
for the DermNet classes. A mask box, given as fractions of the image width and height, is filled with the
median colour of the rest of the photo on **every** image, from every source, at training and at
inference time, so the corner carries no information about where a photo came from.

The card is the single source of this step (``preprocessing.mask``)::

    "mask": {"boxes": [[0.0, 0.66, 0.45, 1.0]], "fill": "median", "reason": "..."}

Each box is ``[x0, y0, x1, y1]`` with 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 (y grows downwards).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from dermlib.images import rgb_for_reading

#: The box that covers the DermNet logo and the Te Whatu Ora mark, measured on the mean of 600 DermNet
#: photos (341 x 256): the logo spans x 28-90 px, y 175-233 px, the Te Whatu Ora text x up to 142 px,
#: i.e. x <= 0.42 and 0.68 <= y <= 0.91; the box adds a margin on each side for crops that differ.
DERMNET_WATERMARK_BOX: tuple[float, float, float, float] = (0.0, 0.64, 0.46, 1.0)
FILLS: tuple[str, ...] = ("median", "grey")


@dataclass(frozen=True)
class MaskSpec:
    """Boxes to blank out, in fractions of the image size, and how to fill them.

    Attributes:
        boxes: ``(x0, y0, x1, y1)`` fractions per box.
        fill: ``median`` (per-channel median of the pixels outside the boxes) or ``grey`` (mid grey).
    """

    boxes: tuple[tuple[float, float, float, float], ...]
    fill: str = "median"

    def __post_init__(self) -> None:
        problems = mask_problems({"boxes": [list(b) for b in self.boxes], "fill": self.fill})
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def from_card(cls, preprocessing: Mapping[str, Any]) -> MaskSpec | None:
        """The mask a card's ``preprocessing`` section names, or ``None`` when it names none."""
        raw = preprocessing.get("mask")
        if not raw:
            return None
        return cls(boxes=tuple(tuple(float(v) for v in box) for box in raw["boxes"]),
                   fill=str(raw.get("fill", "median")))

    def to_card(self, reason: str = "") -> dict[str, Any]:
        """The card's ``preprocessing.mask`` entry for this spec."""
        out: dict[str, Any] = {"boxes": [list(b) for b in self.boxes], "fill": self.fill}
        if reason:
            out["reason"] = reason
        return out

    def pixel_boxes(self, width: int, height: int) -> list[tuple[int, int, int, int]]:
        """Boxes in pixels for an image of this size (rounded outwards so the box is never smaller)."""
        out = []
        for x0, y0, x1, y1 in self.boxes:
            out.append((int(np.floor(x0 * width)), int(np.floor(y0 * height)),
                        int(np.ceil(x1 * width)), int(np.ceil(y1 * height))))
        return out

    def apply_array(self, pixels: np.ndarray) -> np.ndarray:
        """Return a masked copy of an (H, W, 3) uint8 array."""
        out = np.array(pixels, dtype=np.uint8, copy=True)
        h, w = out.shape[:2]
        boxes = self.pixel_boxes(w, h)
        colour = np.full(3, 128, dtype=np.uint8)
        if self.fill == "median":
            # The photo's own median colour: the box then looks like "more of this photo", which a network
            # cannot tell apart by source, and no edge of an odd colour is left to learn from. Photos up to
            # 320 px on the shorter side (every training photo here) use every pixel; larger uploads a
            # regular subsample, which gives the same colour within a level or two at a fraction of the cost.
            step = max(1, -(-min(h, w) // 320))
            # Contiguous: OpenCV copies a strided view itself, more slowly (2.6-2.8 ms against 0.7-1.2 ms with
            # this copy, 640 x 480).
            sub = np.ascontiguousarray(out[::step, ::step])
            sub_boxes = self.pixel_boxes(sub.shape[1], sub.shape[0]) if step > 1 else boxes
            keep = np.ones(sub.shape[:2], dtype=bool)
            for x0, y0, x1, y1 in sub_boxes:
                keep[y0:y1, x0:x1] = False
            if keep.any():
                colour = _median_colour(sub, keep, sub_boxes[0] if len(sub_boxes) == 1 else None)
        for x0, y0, x1, y1 in boxes:
            out[y0:y1, x0:x1] = colour
        return out

    def apply(self, image: Image.Image) -> Image.Image:
        """Return a masked RGB copy of a PIL image."""
        return Image.fromarray(self.apply_array(np.asarray(rgb_for_reading(image))))


def _channel_histograms(pixels: np.ndarray) -> np.ndarray:
    """(3, 256) counts of each channel's values, in one bincount pass."""
    flat = pixels.reshape(-1, 3).astype(np.intp) + np.array([0, 256, 512])
    return np.bincount(flat.ravel(), minlength=768).reshape(3, 256)


EXACT_FLOAT_COUNTS = 1 << 24
"""OpenCV returns histogram counts as float32, which holds every integer up to 2**24 exactly."""


def _median_colour(pixels: np.ndarray, keep: np.ndarray,
                   box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Per-channel median of the kept pixels, equal to ``np.median(pixels[keep], axis=0).astype(uint8)``.

    Counted with 256-bin histograms instead of sorting (on a 1024 px photo ``np.median`` alone took
    longer than the network's forward pass): OpenCV's ``calcHist`` with ``keep`` as its mask, 0.2 ms on
    a 320 x 240 photo against 2.3 ms for numpy's ``bincount``, which still counts images too large for
    OpenCV's float32 counts to be exact. With a single ``box`` (pixels) numpy's histogram is the whole
    photo's minus the box's, which avoids indexing with ``keep`` at all.
    """
    if pixels.shape[0] * pixels.shape[1] < EXACT_FLOAT_COUNTS:
        import cv2  # a requirement already (the scope check's quality measures, grad-cam)

        mask = keep.astype(np.uint8)
        hist = np.stack([cv2.calcHist([pixels], [c], mask, [256], [0, 256]).reshape(256) for c in range(3)])
        hist = np.rint(hist).astype(np.int64)
    elif box is not None:
        x0, y0, x1, y1 = box
        hist = _channel_histograms(pixels) - _channel_histograms(pixels[y0:y1, x0:x1])
    else:
        hist = _channel_histograms(pixels.reshape(-1, 3)[keep.ravel()])
    n = int(hist[0].sum())
    lower, upper = (n - 1) // 2, n // 2  # the two middle ranks (the same one when n is odd)
    colour = np.empty(3, dtype=np.uint8)
    for c in range(3):
        low, high = np.searchsorted(np.cumsum(hist[c]), [lower + 1, upper + 1])
        colour[c] = (int(low) + int(high)) // 2  # np.median averages the two, astype(uint8) floors
    return colour


def mask_problems(raw: Any) -> list[str]:
    """Schema problems of a card's ``preprocessing.mask`` entry (empty when valid)."""
    if not isinstance(raw, Mapping):
        return ["preprocessing.mask must be an object with 'boxes'"]
    boxes = raw.get("boxes")
    problems = []
    if not isinstance(boxes, Sequence) or isinstance(boxes, str) or not boxes:
        return ["preprocessing.mask.boxes must be a non-empty list of [x0, y0, x1, y1]"]
    for i, box in enumerate(boxes):
        ok = (isinstance(box, Sequence) and len(box) == 4
              and all(isinstance(v, (int, float)) and np.isfinite(v) for v in box))
        if not ok or not (0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1):
            problems.append(f"preprocessing.mask.boxes[{i}] must be [x0, y0, x1, y1] fractions with x0 < x1, "
                            "y0 < y1")
    if raw.get("fill", "median") not in FILLS:
        problems.append(f"preprocessing.mask.fill must be one of {', '.join(FILLS)}")
    return problems
