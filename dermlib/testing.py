"""Helpers for tests and demos: tiny real models (card + safetensors) and synthetic images.

Nothing here downloads anything; the networks are timm's tiny ``test_*`` architectures with random
weights, saved exactly the way the training CLI saves real models.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
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


def synthetic_scene_image(seed: int = 0, size: tuple[int, int] = (200, 160)) -> Image.Image:
    """A photo-like scene with no skin (sky, grass, a few coloured boxes): deterministic, for scope tests."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy = np.mgrid[0:h, 0:w][0] / h
    img = np.zeros((h, w, 3))
    horizon = rng.uniform(0.4, 0.6)
    sky = np.array([90, 150, 230]) + rng.normal(0, 10, 3)
    grass = np.array([50, 140, 40]) + rng.normal(0, 10, 3)
    img[:] = np.where((yy < horizon)[..., None], sky * (1 - 0.3 * yy[..., None]), grass)
    for _ in range(3):
        x0, y0 = int(rng.uniform(0, 0.7) * w), int(rng.uniform(0.2, 0.7) * h)
        img[y0 : y0 + h // 5, x0 : x0 + w // 6] = rng.uniform(0, 255, 3)
    img += rng.normal(0, 8, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def synthetic_dermoscopy_image(seed: int = 0, size: tuple[int, int] = (200, 200)) -> Image.Image:
    """A dermoscopy-like image: a round dark vignette around a pink field with a brown lesion."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    rr = np.hypot((xx - w / 2) / (w / 2), (yy - h / 2) / (h / 2))
    field = np.array([230, 170, 160], dtype=np.float64) * rng.uniform(0.85, 1.0)
    img = np.ones((h, w, 3)) * field
    lesion = np.exp(-(rr / rng.uniform(0.3, 0.5)) ** 2)[..., None]
    img = img * (1 - lesion) + np.array([110, 60, 40]) * lesion
    img[rr > 0.95] = 5
    img += rng.normal(0, 5, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def write_tiny_scope(folder: str | Path, n_train: int = 24, score: str = "knn") -> Path:
    """Fit a scope check for a (tiny) model folder on synthetic images with the real frozen extractor.

    Skin-coloured images stand for clinical photos, dermoscopy-like ones for dermoscopy; the model's card
    ``task`` says which of the two are its training photos. A scene without skin
    (:func:`synthetic_scene_image`) then lands far outside. Returns the folder.
    """
    from dermlib.models.card import load_card
    from dermlib.scope.detectors import create_score
    from dermlib.scope.features import get_extractor
    from dermlib.scope.fit import keep_threshold, train_modality_classifier, write_scope

    card = load_card(folder)
    extractor = get_extractor()
    skin = extractor([synthetic_skin_image(100 + i) for i in range(n_train)])
    val = extractor([synthetic_skin_image(500 + i) for i in range(12)])
    derm = extractor([synthetic_dermoscopy_image(i) for i in range(n_train)])
    labels = np.arange(n_train) % card.num_classes
    if card.task == "dermoscopy":
        val = extractor([synthetic_dermoscopy_image(500 + i) for i in range(12)])
    detector = create_score(score).fit(derm if card.task == "dermoscopy" else skin, labels)
    modality = train_modality_classifier(np.concatenate([skin, derm]),
                                         np.r_[np.zeros(n_train, bool), np.ones(n_train, bool)],
                                         np.r_[np.full(n_train, "skin"), np.full(n_train, "derm")])
    # Synthetic images are more alike than real photos: keep every validation image, with a margin.
    threshold = keep_threshold(detector.score(val), 1.0) * 1.1
    quality = {"min_sharpness": 5.0, "min_brightness": 30.0, "max_brightness": 230.0, "max_dark_fraction": 0.3,
               "max_bright_fraction": 0.3, "min_short_side": 64.0}
    write_scope(folder, detector, modality, threshold, 0.5, quality, extractor,
                fitted_on={"statistics": f"{n_train} synthetic skin images (tests only)"})
    return Path(folder)


def image_bytes(image: Image.Image, fmt: str = "PNG", **save_args: Any) -> bytes:
    """Encode an image to bytes in the given format."""
    buf = io.BytesIO()
    image.save(buf, format=fmt, **save_args)
    return buf.getvalue()


def forged_png(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` RGB pixels but whose data is a few bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@dataclass(frozen=True)
class HostileCase:
    """One upload of the hostile-input corpus.

    Attributes:
        name: The file name the upload carries.
        data: The file's bytes.
        accepted: Whether a correct result is expected (else a clear refusal).
        phrase: For refusals, words the refusal message must contain.
    """

    name: str
    data: bytes
    accepted: bool
    phrase: str = ""


def hostile_corpus() -> list[HostileCase]:
    """Uploads meant to break an image pipeline, generated here (nothing is stored on disk).

    Returns:
        Zero bytes, text named .jpg, a truncated JPEG, a PNG with a forged 50000x50000 header, a real
        decompression bomb, CMYK, 16-bit, palette with transparency, an animated GIF, all eight EXIF
        orientations, 1x1, a 30 MB upload and a file name full of path and shell characters.
    """
    skin = synthetic_skin_image(seed=11, size=(240, 180))
    jpeg = image_bytes(skin, "JPEG", quality=90)
    palette = skin.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    palette.info["transparency"] = 0
    frames = [synthetic_skin_image(seed=s, size=(120, 90)).convert("P") for s in (1, 2, 3)]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    sixteen = Image.fromarray((np.asarray(skin.convert("L"), dtype=np.uint16) * 257).astype(np.uint16))
    cases = [
        HostileCase("empty.png", b"", False, "empty"),
        HostileCase("notes.jpg", b"Itchy rash on the forearm since Monday.\n" * 40, False, "not an image"),
        HostileCase("truncated.jpg", jpeg[: len(jpeg) // 2], False, "truncated or corrupt"),
        HostileCase("forged-50000.png", forged_png(50_000, 50_000), False, "megapixels"),
        HostileCase("bomb.png", image_bytes(Image.new("L", (8000, 8000), 128), "PNG", compress_level=9), False,
                    "8000x8000"),
        HostileCase("one-pixel.png", image_bytes(Image.new("RGB", (1, 1), (200, 150, 120)), "PNG"), False,
                    "1x1 pixels"),
        HostileCase("thirty-mb.jpg", jpeg + bytes(30 * 1024 * 1024), False, "limit is"),
        HostileCase("cmyk.jpg", image_bytes(skin.convert("CMYK"), "JPEG", quality=90), True),
        HostileCase("sixteen-bit.png", image_bytes(sixteen, "PNG"), True),
        HostileCase("palette-transparent.png", image_bytes(palette, "PNG"), True),
        HostileCase("animated.gif", gif.getvalue(), True),
        HostileCase("../../etc/passwd;$(rm -rf ~) `x`|<b>.png", image_bytes(skin, "PNG"), True),
    ]
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        cases.append(HostileCase(f"orientation-{orientation}.jpg",
                                 image_bytes(skin, "JPEG", quality=90, exif=exif.tobytes()), True))
    return cases


#: Folders a snapshot of the project tree leaves out (tooling caches that change on their own).
PROJECT_SKIP = frozenset({".git", ".venv", "__pycache__", "test-artifacts", ".pytest_cache", ".ruff_cache"})


def file_snapshot(root: str | Path, skip_names: frozenset[str] = frozenset(),
                  skip_paths: frozenset[str] = frozenset()) -> dict[str, tuple[int, int]]:
    """(size, mtime in ns) of every regular file under ``root``, to tell which files a step wrote.

    Symlinks are not followed; unreadable parts are skipped.

    Args:
        root: The folder to walk.
        skip_names: File or folder names to leave out wherever they occur.
        skip_paths: Full paths to leave out.

    Returns:
        Path -> (size, mtime_ns).
    """
    files: dict[str, tuple[int, int]] = {}
    stack = [str(root)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            if entry.name in skip_names or entry.path in skip_paths:
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    stat = entry.stat(follow_symlinks=False)
                    files[entry.path] = (stat.st_size, stat.st_mtime_ns)
            except OSError:
                continue
    return files


def synthetic_lesion_pair(seed: int = 0, size: tuple[int, int] = (96, 80)) -> tuple[Image.Image, np.ndarray]:
    """A photo of one dark elliptical blob on pinkish skin and its exact mask (bool, H x W)."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    cx, cy = rng.uniform(0.35, 0.65) * w, rng.uniform(0.35, 0.65) * h
    ax, ay = rng.uniform(0.15, 0.3) * w, rng.uniform(0.15, 0.3) * h
    mask = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1
    img = np.ones((h, w, 3)) * np.array([225, 175, 160]) * rng.uniform(0.85, 1.0)
    img[mask] = np.array([100, 60, 45]) * rng.uniform(0.8, 1.2)
    img += rng.normal(0, 6, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)), mask


def write_mask_dataset(folder: str | Path, n_per_diagnosis: int = 5,
                       diagnoses: tuple[str, ...] = ("common nevus", "atypical nevus", "melanoma")) -> Path:
    """A PH2-shaped folder (``metadata.csv``, ``images/``, ``masks/``) of synthetic blobs and their masks."""
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(exist_ok=True)
    rows = []
    for d, diagnosis in enumerate(diagnoses):
        for i in range(n_per_diagnosis):
            image_id = f"IMD{d * 100 + i:03d}"
            image, mask = synthetic_lesion_pair(seed=d * 100 + i)
            image.save(folder / "images" / f"{image_id}.jpg", quality=95)
            Image.fromarray(mask.astype(np.uint8) * 255).convert("1").save(folder / "masks" / f"{image_id}.png")
            rows.append(f"{image_id},{diagnosis}")
    (folder / "metadata.csv").write_text("image_id,diagnosis\n" + "\n".join(rows) + "\n")
    return folder


def write_tiny_segmenter(folder: str | Path, img_size: int = 64, extra: dict[str, Any] | None = None) -> Path:
    """A small random-weight UNet segmentation model folder (card + safetensors), as training writes one."""
    from dermlib.models.card import SEGMENTATION_TASK
    from dermlib.segment.model import create_network

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    channels = [32, 16, 16, 8, 8]
    torch.manual_seed(0)
    network, _ = create_network("Unet", "tu-tf_efficientnet_lite0", channels, pretrained="none")
    save_file({k: v.contiguous() for k, v in network.state_dict().items()}, str(folder / WEIGHTS_FILE))
    card: dict[str, Any] = {
        "id": folder.name, "name": "Tiny test segmenter", "task": SEGMENTATION_TASK, "architecture": "Unet",
        "preprocessing": {"input_size": [3, img_size, img_size], "mean": [0.5] * 3, "std": [0.5] * 3,
                          "interpolation": "bilinear", "crop_pct": 1.0},
        "segmentation": {"encoder": "tu-tf_efficientnet_lite0", "decoder_channels": channels, "threshold": 0.5,
                         "modality": "dermoscopy"},
        "metrics": {"test": {"n": 0, "dice": None}},
        "weights": {"file": WEIGHTS_FILE, "sha256": file_sha256(folder / WEIGHTS_FILE)},
        **(extra or {}),
    }
    save_card(card, folder)
    return folder
