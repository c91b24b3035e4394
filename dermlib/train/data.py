"""Training data: pre-decoded images in memory, skin-photo augmentation, balanced sampling."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode, v2

from dermlib.errors import DatasetError
from dermlib.masking import MaskSpec

_INTERP = {"bicubic": InterpolationMode.BICUBIC, "bilinear": InterpolationMode.BILINEAR,
           "nearest": InterpolationMode.NEAREST}


def decode_resized(path: str, short_side: int, mask: MaskSpec | None = None) -> torch.Tensor:
    """Decode one image to a uint8 (3, H, W) tensor whose shorter side is ``short_side``.

    Args:
        path: Image file.
        short_side: Length of the shorter side after resizing.
        mask: The card's mask (:mod:`dermlib.masking`), applied to the whole photo before resizing and before
            any augmentation crops it, exactly as inference applies it before its resize and crop.
    """
    try:
        with Image.open(path) as img:
            img.draft("RGB", (short_side * 2, short_side * 2))  # JPEG: decode at reduced scale
            img = img.convert("RGB")
            if mask is not None:
                img = mask.apply(img)
            w, h = img.size
            scale = short_side / min(w, h)
            img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BICUBIC,
                             reducing_gap=3.0)
            arr = np.asarray(img, dtype=np.uint8)
    except OSError as exc:
        raise DatasetError(f"Cannot read training image {path}: {exc}") from exc
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def predecode(paths: Sequence[str], short_side: int, workers: int = 2,
              mask: MaskSpec | None = None) -> list[torch.Tensor]:
    """Decode (and mask) every image once per run (JPEG decoding would otherwise dominate CPU training)."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda p: decode_resized(p, short_side, mask), paths))


def train_transform(img_size: int, mean: Sequence[float], std: Sequence[float], interpolation: str = "bicubic",
                    strength: float = 1.0) -> v2.Compose:
    """Augmentation for skin photos.

    Lesions have no canonical orientation, so flips both ways and rotations are label-preserving. Colour
    jitter is kept mild and hue nearly fixed: hue and saturation carry diagnostic information (erythema,
    pigment) and skin tone itself must not be shifted into another Fitzpatrick type.
    """
    interp = _INTERP[interpolation]
    return v2.Compose([
        v2.RandomResizedCrop(img_size, scale=(max(0.25, 1 - 0.65 * strength), 1.0), ratio=(0.75, 1.333),
                             interpolation=interp, antialias=True),
        v2.RandomHorizontalFlip(),
        v2.RandomVerticalFlip(),
        v2.RandomApply([v2.RandomRotation(30, interpolation=InterpolationMode.BILINEAR)], p=0.5 * strength),
        v2.ColorJitter(brightness=0.25 * strength, contrast=0.25 * strength, saturation=0.15 * strength,
                       hue=0.02 * strength),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(mean), std=list(std)),
    ])


def eval_transform(img_size: int, mean: Sequence[float], std: Sequence[float],
                   interpolation: str = "bicubic") -> v2.Compose:
    """Resize the shorter side and centre-crop, as timm's inference transform does with crop_pct=1."""
    return v2.Compose([
        v2.Resize(img_size, interpolation=_INTERP[interpolation], antialias=True),
        v2.CenterCrop(img_size),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(mean), std=list(std)),
    ])


class TensorImageDataset(Dataset):
    """Pre-decoded uint8 images with integer labels and a transform.

    With ``with_index`` an item is ``(image, label, index)``, so per-photo data (a teacher's soft targets)
    can be looked up for each batch.
    """

    def __init__(self, images: Sequence[torch.Tensor], labels: Sequence[int], transform: v2.Compose,
                 with_index: bool = False) -> None:
        if len(images) != len(labels):
            raise ValueError("images and labels differ in length")
        self.images = list(images)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.transform = transform
        self.with_index = with_index

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int] | tuple[torch.Tensor, int, int]:
        if self.with_index:
            return self.transform(self.images[i]), int(self.labels[i]), i
        return self.transform(self.images[i]), int(self.labels[i])


def skin_group(fitzpatrick: pd.Series) -> np.ndarray:
    """Map Fitzpatrick types 1-6 to groups 0 (I-II), 1 (III-IV), 2 (V-VI); unknown -> -1."""
    values = pd.to_numeric(fitzpatrick, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    out = np.full(len(values), -1, dtype=np.int64)
    known = np.isfinite(values) & (values >= 1) & (values <= 6)
    out[known] = ((values[known] - 1) // 2).astype(np.int64)
    return out


def class_weights(labels: np.ndarray, num_classes: int, power: float = 0.5) -> np.ndarray:
    """Per-class weights ~ 1 / count**power, normalised to mean 1 over the samples."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.where(counts > 0, 1.0 / np.maximum(counts, 1) ** power, 0.0)
    return weights / max((weights[labels]).mean(), 1e-12)


def sample_weights(labels: np.ndarray, groups: np.ndarray, num_classes: int, skin_balance: float,
                   balance_classes: bool = True) -> np.ndarray:
    """Per-image weights for a sampler: classes balanced fully, skin-type groups by ``skin_balance``.

    Args:
        labels: Integer class of each training image, shape (N,).
        groups: Skin-type group of each image (0: I-II, 1: III-IV, 2: V-VI, -1: unknown), shape (N,).
        num_classes: Number of classes.
        skin_balance: In [0, 1]. 1 draws each known skin-type group equally often (before class
            balancing); 0 ignores skin type. Images of unknown skin type keep weight 1 on this axis.
        balance_classes: Also draw each class equally often. Off when the loss already weights the
            classes, so that they are not balanced twice.

    Returns:
        One weight per image (shape (N,)), summing to 1.
    """
    labels = np.asarray(labels)
    groups = np.asarray(groups)
    if balance_classes:
        weights = class_weights(labels, num_classes, power=1.0)[labels]
    else:
        weights = np.ones(len(labels), dtype=np.float64)
    if skin_balance > 0:
        known = groups >= 0
        counts = np.bincount(groups[known], minlength=3).astype(np.float64)
        factor = np.ones(len(labels))
        safe = np.maximum(counts, 1)
        factor[known] = (safe.mean() / safe[groups[known]]) ** skin_balance
        weights = weights * factor
    return weights / weights.sum()


def mix_batch(x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator, mixup_alpha: float = 0.0,
              cutmix_alpha: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Mixup or CutMix one batch with a shuffled copy of itself.

    With both alphas set, each batch picks one of the two at random. The loss is then
    ``lam * loss(y_a) + (1 - lam) * loss(y_b)``, which keeps the class weights and label smoothing of the
    ordinary criterion. For CutMix, ``lam`` is corrected to the area actually pasted after clipping.

    Args:
        x: Images, (B, C, H, W).
        y: Integer labels, (B,).
        rng: Random generator (seeded by the caller, so runs and resumes are repeatable).
        mixup_alpha: Beta(alpha, alpha) parameter for mixup; 0 turns mixup off.
        cutmix_alpha: Beta(alpha, alpha) parameter for CutMix; 0 turns CutMix off.

    Returns:
        The mixed images, the labels of the batch, the labels mixed in, and ``lam`` (weight of the first).
    """
    modes = [m for m, a in (("mixup", mixup_alpha), ("cutmix", cutmix_alpha)) if a > 0]
    if not modes or len(y) < 2:
        return x, y, y, 1.0
    mode = modes[int(rng.integers(len(modes)))]
    perm = torch.from_numpy(rng.permutation(len(y))).to(x.device)
    if mode == "mixup":
        lam = float(rng.beta(mixup_alpha, mixup_alpha))
        return x * lam + x[perm] * (1 - lam), y, y[perm], lam
    lam = float(rng.beta(cutmix_alpha, cutmix_alpha))
    h, w = x.shape[-2:]
    cut = np.sqrt(1 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy, cx = int(rng.integers(h)), int(rng.integers(w))
    y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
    x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
    mixed = x.clone()
    mixed[..., y0:y1, x0:x1] = x[perm][..., y0:y1, x0:x1]
    lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    return mixed, y, y[perm], float(lam)
