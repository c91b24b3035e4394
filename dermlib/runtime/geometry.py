"""A model's resize-and-crop steps as plain data, replayed with PIL (no torch, no torchvision).

The torch path takes its steps from timm's eval transform (``LoadedModel.geometric``: torchvision's
``Resize`` then ``CenterCrop``). :func:`describe` turns those objects into a list of dicts when a graph is
cached, :func:`replay` applies the list to a photo. Only what torchvision does for a PIL image is
reproduced, and the tests compare the pixels with the torch path's for photos of several shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

_PIL_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
    "lanczos": Image.Resampling.LANCZOS,
}


class UnsupportedStep(ValueError):
    """A transform :func:`replay` does not reproduce (the torch path is used instead)."""


def describe(steps: Sequence[Any]) -> list[dict[str, Any]]:
    """torchvision ``Resize`` / ``CenterCrop`` objects as JSON-ready dicts.

    Raises:
        UnsupportedStep: A step of another kind, or options this module does not reproduce.
    """
    out: list[dict[str, Any]] = []
    for step in steps:
        kind = type(step).__name__
        if kind == "Resize":
            size = step.size if isinstance(step.size, int) else list(step.size)
            mode = getattr(step.interpolation, "value", str(step.interpolation))
            if mode not in _PIL_FILTERS:
                raise UnsupportedStep(f"Resize with interpolation {mode!r}")
            out.append({"op": "resize", "size": size, "interpolation": mode, "max_size": step.max_size})
        elif kind == "CenterCrop":
            out.append({"op": "center_crop", "size": [int(v) for v in step.size]})
        else:
            raise UnsupportedStep(f"transform {kind}")
    return out


def _resized_size(width: int, height: int, size: int | Sequence[int], max_size: int | None) -> tuple[int, int]:
    """(width, height) after torchvision's ``Resize``: an int sets the shorter side, a pair both sides."""
    if not isinstance(size, int):
        if len(size) == 1:
            size = int(size[0])
        else:
            return int(size[1]), int(size[0])
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    if max_size is not None and new_long > max_size:
        new_short, new_long = int(max_size * new_short / new_long), max_size
    return (new_short, new_long) if width <= height else (new_long, new_short)


def replay(steps: Sequence[dict[str, Any]], image: Image.Image) -> Image.Image:
    """Apply :func:`describe`'s steps to an RGB image, as torchvision would."""
    for step in steps:
        if step["op"] == "resize":
            target = _resized_size(image.width, image.height, step["size"], step.get("max_size"))
            if target != image.size:
                image = image.resize(target, _PIL_FILTERS[step["interpolation"]])
        elif step["op"] == "center_crop":
            crop_h, crop_w = step["size"]
            if crop_w > image.width or crop_h > image.height:
                raise UnsupportedStep("a center crop larger than the image (torchvision pads)")
            top = round((image.height - crop_h) / 2.0)
            left = round((image.width - crop_w) / 2.0)
            image = image.crop((left, top, left + crop_w, top + crop_h))
        else:
            raise UnsupportedStep(f"step {step['op']!r}")
    return image


def normalise(images: Sequence[Image.Image], mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """RGB images of one size as a float32 batch (N, 3, H, W): ``(pixel / 255 - mean) / std``, as
    torchvision's ``ToTensor`` and ``Normalize`` compute it."""
    batch = np.stack([np.asarray(img, dtype=np.uint8) for img in images]).transpose(0, 3, 1, 2)
    batch = batch.astype(np.float32) / np.float32(255.0)
    m = np.asarray(mean, dtype=np.float32).reshape(1, 3, 1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray((batch - m) / s)
