"""Helpers for tests and demos: tiny real models (card + safetensors) and synthetic images.

Nothing here downloads anything; the networks are timm's tiny ``test_*`` architectures with random
weights, saved exactly the way the training CLI saves real models.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import timm
import torch
from PIL import Image
from safetensors.torch import save_file

from dermlib.models.card import WEIGHTS_FILE, save_card
from dermlib.models.loading import file_sha256

TINY_RISKS = ("malignant", "benign", "non-neoplastic", "benign")


def write_tiny_model(
    folder: str | Path,
    *,
    model_id: str = "tiny-test",
    architecture: str = "test_efficientnet",
    target_layer: str = "bn2",
    reshape: str | None = None,
    num_classes: int = 4,
    input_size: int = 96,
    temperature: float = 1.0,
    seed: int = 0,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Save a randomly initialised timm model with a valid card into ``folder``.

    Returns:
        The model folder.
    """
    folder = Path(folder)
    torch.manual_seed(seed)
    model = timm.create_model(architecture, pretrained=False, num_classes=num_classes)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / WEIGHTS_FILE
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    card: dict[str, Any] = {
        "schema_version": 1,
        "id": model_id,
        "name": f"Tiny test model ({architecture})",
        "description": "Random weights, for tests only.",
        "task": "clinical",
        "architecture": architecture,
        "classes": [
            {"id": f"class-{i}", "name": f"Class {i}", "risk_group": TINY_RISKS[i % len(TINY_RISKS)]}
            for i in range(num_classes)
        ],
        "preprocessing": {
            "input_size": [3, input_size, input_size],
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
            "interpolation": "bicubic",
            "crop_pct": 1.0,
            "crop_mode": "center",
        },
        "cam": {"target_layer": target_layer, "reshape": reshape},
        "calibration": {"temperature": temperature, "min_top1_probability": 0.0, "max_normalized_entropy": 1.0},
        "inference": {"hflip_tta": False},
        "training": {"dataset": "synthetic", "licence": "n/a"},
        "metrics": {},
        "limitations": ["Random weights: for tests only."],
        "weights": {"file": WEIGHTS_FILE, "sha256": file_sha256(weights), "bytes": weights.stat().st_size},
    }
    if extra:
        card.update(extra)
    save_card(card, folder)
    return folder


def synthetic_skin_image(seed: int = 0, size: tuple[int, int] = (200, 160)) -> Image.Image:
    """A skin-coloured RGB image with a darker blob: deterministic, not a real lesion."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.array([200, 150, 120], dtype=np.float64) * rng.uniform(0.5, 1.1)
    img = np.ones((h, w, 3)) * base
    cx, cy, r = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h, rng.uniform(0.1, 0.25) * min(w, h)
    blob = np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)))[..., None]
    img = img * (1 - 0.6 * blob) + rng.normal(0, 6, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def image_bytes(image: Image.Image, fmt: str = "PNG", **save_args: Any) -> bytes:
    """Encode an image to bytes in the given format."""
    buf = io.BytesIO()
    image.save(buf, format=fmt, **save_args)
    return buf.getvalue()
