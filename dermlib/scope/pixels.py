"""The scope extractor's input, in numpy: shared by the torch / ONNX Runtime extractor and the command
line's torch-free path (:mod:`dermlib.runtime`), so both see exactly the same numbers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from dermlib.images import rgb_for_reading

# timm's config for the TF EfficientNet-Lite family: inputs scaled to [-1, 1].
MEAN = 0.5
STD = 0.5


def extractor_input(images: Sequence[Image.Image], size: int) -> np.ndarray:
    """Resize each image to ``size`` x ``size`` (the whole frame: nothing cropped) and normalise.

    Returns:
        float32 array (N, 3, size, size).
    """
    arrays = [np.asarray(rgb_for_reading(img).resize((size, size), Image.Resampling.BILINEAR)) for img in images]
    if not arrays:
        return np.zeros((0, 3, size, size), dtype=np.float32)
    batch = np.stack(arrays).transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0)
    return (batch - np.float32(MEAN)) / np.float32(STD)
