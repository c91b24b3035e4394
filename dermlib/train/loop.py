"""The training run: data -> splits -> fine-tuning -> calibration -> evaluation -> model folder.

Each run folder keeps ``args.json``, ``splits.csv``, per-epoch ``metrics.csv``, a resumable
``checkpoint.pt`` (plain tensors, read back with ``weights_only=True``) and the final model folder
(``model.safetensors`` + ``card.json`` + ``evaluation.json`` + ``splits.csv``).
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import random
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from safetensors.torch import save_file
from torch.utils.data import DataLoader, WeightedRandomSampler
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

from dermlib.data import summarize_index
from dermlib.errors import DatasetError, TrainingError
from dermlib.evaluate.metrics import confusion_matrix, precision_recall_f1
from dermlib.masking import MaskSpec
from dermlib.models.card import WEIGHTS_FILE, save_card
from dermlib.models.device import select_device
from dermlib.models.loading import file_sha256
from dermlib.train.data import (
    TensorImageDataset,
    class_weights,
    eval_transform,
    mix_batch,
    predecode,
    sample_weights,
    skin_group,
    train_transform,
)
from dermlib.train.finalize import finalize_model
from dermlib.train.pretrained import create_backbone, init_from_model, offline_checkpoint_path
from dermlib.train.splits import prepare_index, split_table

# Licences and citations of datasets the CLI knows, for the card (the user can override both).
DATASET_INFO: dict[str, dict[str, str]] = {
    "fitzpatrick17k": {
        "name": "Fitzpatrick17k (21-condition subset of the Equitable AI for Dermatology challenge)",
        "licence": "CC BY-NC-SA 3.0",
        "citation": "Groh et al., Evaluating Deep Neural Networks Trained on Clinical Images in Dermatology "
                    "with the Fitzpatrick 17k Dataset, CVPR Workshops 2021.",
    },
    "ham10000": {"name": "HAM10000", "licence": "CC BY-NC-SA 4.0",
                 "citation": "Tschandl et al., The HAM10000 dataset, Sci Data 5, 180161 (2018)."},
    "pad-ufes-20": {"name": "PAD-UFES-20", "licence": "CC BY 4.0",
                    "citation": "Pacheco et al., PAD-UFES-20, Data in Brief 32, 106221 (2020)."},
    "dermnet-nz": {"name": "DermNet NZ (24 common-condition categories)",
                   "licence": "DermNet NZ images: non-commercial research and teaching use only",
                   "citation": "DermNet NZ, All about the skin (dermnetnz.org)."},
    "fitz-dermnet": {"name": "Fitzpatrick17k (21-condition subset) + DermNet NZ (24 categories)",
                     "licence": "Fitzpatrick17k: CC BY-NC-SA 3.0; DermNet NZ images: non-commercial research and "
                                "teaching use only",
                     "citation": "Groh et al., CVPR Workshops 2021 (Fitzpatrick17k); DermNet NZ (dermnetnz.org)."},
}

MASK_REASON = ("Filled with the photo's median colour on every image, at training and inference, so a watermark "
               "that only one source carries (DermNet NZ's bottom-left logo) cannot become a cue for its classes.")


@dataclass
class TrainConfig:
    """Everything a run depends on (saved as args.json)."""

    data_root: str
    out: str
    dataset: str | None = None
    model_id: str | None = None
    name: str | None = None
    task: str = "clinical"
    architecture: str = "tf_efficientnet_lite0"
    pretrained: str = "auto"
    img_size: int | None = None
    epochs: int = 12
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.02
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    drop_rate: float = 0.2
    balance: str = "loss"  # loss | sampler | none
    skin_balance: float = 0.0
    aug_strength: float = 1.0
    mixup: float = 0.0
    cutmix: float = 0.0
    mix_prob: float = 0.5
    patience: int = 6
    # Wall seconds for the epochs: no epoch starts that the last one's duration says would end past it (the
    # best epoch so far is kept), so a run on a lent machine always leaves a model behind.
    time_limit: float | None = None
    seed: int = 0
    workers: int = 2
    device: str | None = None
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    duplicate_grouping: bool = True
    classes: list[str] | None = None
    max_per_class: int | None = None
    # Share of the training split to train on (groups drawn per class), val and test untouched: a learning
    # curve measures how accuracy grows with training photos (see subsample_train).
    train_fraction: float = 1.0
    splits: str | None = None
    # Boxes (x0, y0, x1, y1, fractions of the photo) filled with the photo's median colour on every image
    # at training and inference time, e.g. to hide a watermark only one source carries (dermlib.masking).
    mask_boxes: list[list[float]] | None = None
    # A trained model of the same architecture whose backbone starts this run (its head is replaced); only
    # valid when it was trained on this run's training images or a subset of them.
    init_from: str | None = None
    # Knowledge distillation (dermlib.train.distill): a trained model whose softened predictions on the
    # photos of its own training split join the loss with weight distill_alpha.
    teacher: str | None = None
    distill_alpha: float = 0.5
    distill_temperature: float = 2.0
    # "fixed": targets once per photo before training; "augmented": on every augmented batch (OnlineTeacher).
    teacher_views: str = "fixed"
    # A transfer set (dermlib.train.distill.transfer_rows): unlabelled photos of another data set, taught by the
    # teacher's targets alone; its own mask boxes (e.g. DermNet's watermark), default the run's mask_boxes.
    transfer_data: str | None = None
    transfer_dataset: str | None = None
    transfer_mask_boxes: list[list[float]] | None = None
    target_accuracy: float = 0.8
    hflip_tta: bool = True
    resume: bool = True
    run_dir: str | None = None
    default: bool = False
    limitations: list[str] = field(default_factory=list)


def _command_line() -> str:
    """The command that started this process, as a person would retype it (for the card)."""
    args = sys.argv[1:] if sys.argv and sys.argv[0].endswith(("__main__.py", "dermlib")) else sys.argv
    return shlex.join(["python", "-m", "dermlib", *args])


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return world, int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))


def _carry_reviewed_risk(classes: list[dict[str, str]], sources: list[str]) -> list[dict[str, str]]:
    """Copy the reviewed ``risk_label``/``risk_note`` of each class from the teacher or --init-from card.

    Data sets carry only their own risk groups; the reviewed labels (actinic keratosis premalignant, with its
    source) live in the shipped cards, and a model trained from one of them must not silently lose them.
    A label is copied only where the class id and the dataset's risk group both match.
    """
    from dermlib.models.registry import get_card

    reviewed: dict[str, dict[str, str]] = {}
    for ref in sources:
        for info in get_card(ref).classes:
            if info.risk_label and info.id not in reviewed:
                reviewed[info.id] = {"risk_group": info.risk_group, "risk_label": info.risk_label,
                                     "risk_note": info.risk_note}
    for row in classes:
        found = reviewed.get(row["id"])
        if found and found["risk_group"] == row["risk_group"]:
            row.update(risk_label=found["risk_label"], risk_note=found["risk_note"])
    return classes


def _class_table(index: pd.DataFrame) -> list[dict[str, str]]:
    first = index.drop_duplicates("label").set_index("label")
    rows = []
    for label in sorted(index["label"].unique()):
        risk = first.loc[label, "risk_group"]
        rows.append({
            "id": str(label),
            "name": str(first.loc[label, "display_name"]),
            "risk_group": str(risk) if isinstance(risk, str) and risk else "non-neoplastic",
        })
    return rows


def _broadcast_int(value: int, device: torch.device) -> int:
    """Rank 0's value of an integer, on every rank (DistributedDataParallel runs only)."""
    tensor = torch.tensor([value], dtype=torch.long, device=device)
    dist.broadcast(tensor, src=0)
    return int(tensor.item())


def _lr_lambda(total_steps: int, warmup_steps: int):
    def fn(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return fn


def _macro_f1(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    cm = confusion_matrix(labels, logits.argmax(1), num_classes)
    _, _, f1, support = precision_recall_f1(cm)
    present = support > 0
    return float(f1[present].mean()) if present.any() else 0.0


def _evaluate_logits(model: torch.nn.Module, loader: DataLoader, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    outs, labels = [], []
    with torch.inference_mode():
        for x, y in loader:
            x = x.to(device).contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                out = model(x)
            outs.append(out.float().cpu())
            labels.append(y)
    return torch.cat(outs).numpy(), torch.cat(labels).numpy()


def train(cfg: TrainConfig) -> Path:
    """Run one training job; returns the finished model folder (``cfg.out``).

    Raises:
        DatasetError: The data cannot be split or trained on (see :func:`prepare_index`).
        TrainingError: Options that cannot work together, such as a weighted sampler under torchrun.
    """
    t_start = time.perf_counter()
    world, rank, local_rank = _dist_info()
    distributed = world > 1
    if distributed and (cfg.balance == "sampler" or cfg.skin_balance > 0):
        # DistributedSampler shards the data but cannot weight it; silently dropping the option would be worse.
        raise TrainingError("--balance sampler and --skin-balance need a weighted sampler, which torchrun runs do not "
                         "have; use --balance loss without --skin-balance, or train on one device.")
    if cfg.teacher and (cfg.mixup > 0 or cfg.cutmix > 0):
        raise TrainingError("--teacher cannot be combined with --mixup or --cutmix: the teacher's targets belong to "
                            "whole, unmixed photos.")
    if cfg.teacher and not 0 < cfg.distill_alpha <= 1:
        raise TrainingError(f"--distill-alpha must be in (0, 1], got {cfg.distill_alpha}.")
    if cfg.teacher_views not in ("fixed", "augmented"):
        raise TrainingError(f"--teacher-views must be 'fixed' or 'augmented', got {cfg.teacher_views!r}.")
    if cfg.transfer_data and not cfg.teacher:
        raise TrainingError("--transfer-data needs --teacher: its photos have no labels the student could learn.")
    if cfg.transfer_data and (cfg.balance == "sampler" or cfg.skin_balance > 0):
        raise TrainingError("--transfer-data cannot be combined with --balance sampler or --skin-balance: the "
                            "transfer photos have no class or skin type to weight them by.")
    if distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    is_main = rank == 0
    _seed_everything(cfg.seed + rank)
    if distributed and torch.cuda.is_available():
        device = torch.device(f"cuda:{local_rank}")
    else:
        device = select_device(cfg.device)
    if distributed and device.type == "cuda":
        torch.cuda.set_device(device)

    out = Path(cfg.out)
    run_dir = Path(cfg.run_dir) if cfg.run_dir else out.parent.parent / "runs" / out.name
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "args.json").write_text(json.dumps(asdict(cfg), indent=2, default=str) + "\n")

    index = prepare_index(cfg)
    # A combined dataset has several sources; the card names the combination.
    dataset_name = str(index["source"].iloc[0]) if index["source"].nunique() == 1 else str(cfg.dataset or "combined")
    mask = MaskSpec(tuple(tuple(float(v) for v in b) for b in cfg.mask_boxes)) if cfg.mask_boxes else None
    classes = _carry_reviewed_risk(_class_table(index), [r for r in (cfg.teacher, cfg.init_from) if r])
    class_ids = [c["id"] for c in classes]
    label_of = {c: i for i, c in enumerate(class_ids)}
    index["y"] = index["label"].map(label_of)
    if is_main:
        split_table(index, cfg.data_root).to_csv(run_dir / "splits.csv", index=False)

    # --init-from replaces every backbone weight: where no offline ImageNet package is installed (a lent GPU
    # machine), fetching weights from the hub only to overwrite them would fail offline. Where one is, it is
    # still read, so recorded runs draw the same random numbers as before.
    pretrained = cfg.pretrained
    if cfg.init_from and pretrained == "auto" and offline_checkpoint_path(cfg.architecture) is None:
        pretrained = "none"
    model, init_note = create_backbone(cfg.architecture, len(classes), pretrained, drop_rate=cfg.drop_rate)
    if cfg.init_from:
        init_note = init_from_model(model, cfg.init_from, cfg.architecture, class_ids)
    pcfg = model.pretrained_cfg
    img_size = cfg.img_size or int(pcfg.get("input_size", (3, 224, 224))[-1])
    mean, std = list(pcfg.get("mean", (0.485, 0.456, 0.406))), list(pcfg.get("std", (0.229, 0.224, 0.225)))
    interpolation = pcfg.get("interpolation") if pcfg.get("interpolation") in ("bicubic", "bilinear") else "bicubic"
    model = model.to(device, memory_format=torch.channels_last)

    train_rows = index[index["split"] == "train"].reset_index(drop=True)
    val_rows = index[index["split"] == "val"].reset_index(drop=True)
    test_rows = index[index["split"] == "test"].reset_index(drop=True)
    if train_rows.empty or val_rows.empty:
        raise DatasetError("The split left no training or no validation images; add more images per class.")
    short = round(img_size / 0.875)
    t0 = time.perf_counter()
    train_images = predecode(train_rows["image_path"].tolist(), short, cfg.workers, mask=mask)
    val_images = predecode(val_rows["image_path"].tolist(), img_size, cfg.workers, mask=mask)
    transfer_mask = None
    if cfg.transfer_data:
        from dermlib.train.distill import transfer_rows

        extra = transfer_rows(cfg.teacher, cfg.transfer_data, cfg.transfer_dataset, index)
        boxes = cfg.transfer_mask_boxes if cfg.transfer_mask_boxes is not None else cfg.mask_boxes
        transfer_mask = MaskSpec(tuple(tuple(float(v) for v in b) for b in boxes)) if boxes else None
        train_images += predecode(extra["image_path"].tolist(), short, cfg.workers, mask=transfer_mask)
        # Label -100 is CrossEntropyLoss's ignore_index: a transfer photo adds no cross-entropy term.
        train_rows = pd.concat([train_rows.assign(transfer=False), extra.assign(y=-100, transfer=True)],
                               ignore_index=True)
        if is_main:
            print(f"Transfer set: {len(extra)} unlabelled photos from {cfg.transfer_data}", flush=True)
    decode_s = time.perf_counter() - t0

    y_train = train_rows["y"].to_numpy(np.int64)
    labelled = y_train >= 0
    teaching = None
    online = None  # OnlineTeacher when the teacher answers on every augmented batch
    if cfg.teacher and cfg.teacher_views == "augmented":
        from dermlib.train.distill import OnlineTeacher

        online = teaching = OnlineTeacher(cfg.teacher, train_rows, class_ids, mean, std, cfg.distill_temperature,
                                          device=device)
        if is_main:
            print(f"Teacher {teaching.teacher_id}: soft targets on every augmented view of "
                  f"{int(teaching.has_target.sum())} of {len(train_rows)} training photos (T={teaching.temperature})",
                  flush=True)
    elif cfg.teacher:
        from dermlib.train.distill import compute_teacher_targets

        teaching = compute_teacher_targets(cfg.teacher, train_rows, class_ids, cfg.distill_temperature,
                                           device=cfg.device, transfer_mask=transfer_mask)
        if is_main:
            print(f"Teacher {teaching.teacher_id}: soft targets for {int(teaching.has_target.sum())} of "
                  f"{len(train_rows)} training photos (T={teaching.temperature}, {teaching.seconds:.0f} s)",
                  flush=True)
    train_ds = TensorImageDataset(train_images, y_train,
                                  train_transform(img_size, mean, std, interpolation, cfg.aug_strength),
                                  with_index=teaching is not None)
    val_ds = TensorImageDataset(val_images, val_rows["y"].to_numpy(np.int64),
                                eval_transform(img_size, mean, std, interpolation))
    groups = skin_group(train_rows["fitzpatrick"])
    generator = torch.Generator().manual_seed(cfg.seed)
    if distributed:
        sampler = DistributedSampler(train_ds, shuffle=True, seed=cfg.seed)
    elif cfg.balance == "sampler" or cfg.skin_balance > 0:
        # With --balance loss the loss weights the classes, so the sampler balances skin types only.
        weights = sample_weights(y_train, groups, len(classes), cfg.skin_balance,
                                 balance_classes=cfg.balance == "sampler")
        sampler = WeightedRandomSampler(torch.as_tensor(weights, dtype=torch.double), len(train_ds), replacement=True,
                                        generator=generator)
    else:
        sampler = None
    # On a GPU, augmenting in one process (about 5 ms a photo) would leave it idle most of each epoch; on the
    # CPU the network's own threads already take every core, and no workers keeps runs as recorded.
    loader_workers = cfg.workers if device.type == "cuda" else 0
    train_loader = DataLoader(train_ds, batch_size=cfg.batch_size, sampler=sampler, shuffle=sampler is None,
                              num_workers=loader_workers, persistent_workers=loader_workers > 0,
                              pin_memory=device.type == "cuda", drop_last=len(train_ds) > cfg.batch_size,
                              generator=generator)
    val_loader = DataLoader(val_ds, batch_size=cfg.batch_size * 2, shuffle=False, num_workers=0)

    loss_weights = None
    if cfg.balance == "loss":
        loss_weights = torch.as_tensor(class_weights(y_train[labelled], len(classes), 0.5), dtype=torch.float32,
                                       device=device)
    criterion = torch.nn.CrossEntropyLoss(weight=loss_weights, label_smoothing=cfg.label_smoothing)
    if teaching is not None:
        from dermlib.train.distill import distillation_loss

        per_sample = torch.nn.CrossEntropyLoss(weight=loss_weights, label_smoothing=cfg.label_smoothing,
                                               reduction="none")
        soft_targets = None if online is not None else torch.from_numpy(teaching.probs)
        has_target = torch.from_numpy(teaching.has_target)
        is_transfer = torch.from_numpy(~labelled)
    net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if device.type == "cuda" else None) \
        if distributed else model
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, len(train_loader))
    total_steps = steps_per_epoch * cfg.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_lambda(total_steps, int(cfg.warmup_epochs * steps_per_epoch)))

    ckpt_path = run_dir / "checkpoint.pt"
    start_epoch, best_f1, best_epoch, stale = 0, -1.0, -1, 0
    best_state: dict[str, torch.Tensor] | None = None
    history: list[dict[str, Any]] = []
    if cfg.resume and ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        best_state = ckpt.get("best_model")
        start_epoch, best_f1, best_epoch, stale = (int(ckpt["epoch"]) + 1, float(ckpt["best_f1"]),
                                                   int(ckpt["best_epoch"]), int(ckpt["stale"]))
        torch.set_rng_state(ckpt["rng"])
        generator.set_state(ckpt["generator"])
        if (run_dir / "metrics.csv").is_file():
            history = pd.read_csv(run_dir / "metrics.csv").to_dict("records")[:start_epoch]
        if is_main:
            print(f"Resuming {run_dir} at epoch {start_epoch + 1}/{cfg.epochs}")

    t_epochs = time.perf_counter()
    stopped_by_time = False
    for epoch in range(start_epoch, cfg.epochs):
        if stale >= cfg.patience:
            break
        if distributed:
            sampler.set_epoch(epoch)
        net.train()
        t_epoch = time.perf_counter()
        total_loss, correct, seen, items = 0.0, 0, 0, 0
        # A fresh generator per epoch keeps mixing repeatable across resumes without saving its state.
        mix_rng = np.random.default_rng([cfg.seed, rank, epoch])
        bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False, disable=not is_main,
                   dynamic_ncols=True)
        for batch in bar:
            x, y = batch[0], batch[1]
            x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            y = y.to(device, non_blocking=True)
            y_b, lam = y, 1.0
            if (cfg.mixup > 0 or cfg.cutmix > 0) and mix_rng.random() < cfg.mix_prob:
                x, y, y_b, lam = mix_batch(x, y, mix_rng, cfg.mixup, cfg.cutmix)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = net(x)
                if teaching is not None:
                    idx = batch[2]
                    targets = online(x) if online is not None else soft_targets[idx].to(device)
                    loss = distillation_loss(logits, per_sample(logits.float(), y), targets,
                                             has_target[idx].to(device), cfg.distill_alpha, cfg.distill_temperature,
                                             transfer=is_transfer[idx].to(device))
                else:
                    loss = criterion(logits.float(), y)
                if lam < 1.0:
                    loss = lam * loss + (1 - lam) * criterion(logits.float(), y_b)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            optimizer.step()
            scheduler.step()
            total_loss += loss.detach().item() * len(y)
            items += len(y)
            # Accuracy over labelled photos only (transfer photos have none).
            correct += int(((logits.argmax(1) == y) & (y >= 0)).sum())
            seen += int((y >= 0).sum())
            bar.set_postfix(loss=f"{total_loss / items:.3f}", acc=f"{correct / max(seen, 1):.3f}")
        if distributed:
            dist.barrier()
        if not is_main:
            # Early stopping is decided on rank 0; every rank must leave the loop together.
            stale = _broadcast_int(stale, device)
            continue
        val_logits, val_y = _evaluate_logits(model, val_loader, device)
        val_f1 = _macro_f1(val_logits, val_y, len(classes))
        val_acc = float((val_logits.argmax(1) == val_y).mean())
        val_loss = float(torch.nn.functional.cross_entropy(torch.from_numpy(val_logits), torch.from_numpy(val_y)))
        row = {"epoch": epoch + 1, "train_loss": round(total_loss / max(items, 1), 5),
               "train_acc": round(correct / max(seen, 1), 5), "val_loss": round(val_loss, 5),
               "val_acc": round(val_acc, 5), "val_macro_f1": round(val_f1, 5),
               "lr": scheduler.get_last_lr()[0], "seconds": round(time.perf_counter() - t_epoch, 1)}
        history.append(row)
        if val_f1 > best_f1:
            best_f1, best_epoch, stale = val_f1, epoch + 1, 0
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
        print(f"epoch {epoch + 1}/{cfg.epochs}: loss {row['train_loss']:.3f} acc {row['train_acc']:.3f} | "
              f"val loss {val_loss:.3f} acc {val_acc:.3f} macro-F1 {val_f1:.3f}"
              f"{' *' if stale == 0 else ''} ({row['seconds']:.0f}s)", flush=True)
        stopped_by_time = bool(cfg.time_limit) and epoch + 1 < cfg.epochs and \
            time.perf_counter() - t_epochs + row["seconds"] > cfg.time_limit
        if stopped_by_time:
            print(f"Stopping after epoch {epoch + 1}: another would end past --time-limit {cfg.time_limit:g} s.")
        with (run_dir / "metrics.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(history[0]))
            writer.writeheader()
            writer.writerows(history)
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "best_model": best_state, "epoch": epoch,
                    "best_f1": best_f1, "best_epoch": best_epoch, "stale": stale,
                    "rng": torch.get_rng_state(), "generator": generator.get_state()}, ckpt_path)
        if distributed:
            # The other ranks stop on ``stale`` alone: a time stop reaches them as patience used up. The
            # checkpoint keeps the true count, so resuming with a later limit trains on.
            _broadcast_int(cfg.patience if stopped_by_time else stale, device)
        if stopped_by_time:
            break

    if distributed:
        dist.barrier()
        if not is_main:
            dist.destroy_process_group()
            return out
    if best_state is not None:
        model.load_state_dict(best_state)
    train_seconds = float(sum(r["seconds"] for r in history))

    out.mkdir(parents=True, exist_ok=True)
    weights_path = out / WEIGHTS_FILE
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(weights_path))
    info = DATASET_INFO.get(dataset_name, {})
    model_id = cfg.model_id or out.name
    card: dict[str, Any] = {
        "schema_version": 1,
        "id": model_id,
        "name": cfg.name or f"{model_id} ({cfg.architecture})",
        "description": f"{cfg.architecture} fine-tuned on {info.get('name', dataset_name)} by the DermLens "
                       "training CLI.",
        "default": cfg.default,
        "task": cfg.task,
        "architecture": cfg.architecture,
        "model_kwargs": {},
        "classes": classes,
        "preprocessing": {"input_size": [3, img_size, img_size], "mean": mean, "std": std,
                          "interpolation": interpolation, "crop_pct": 1.0, "crop_mode": "center",
                          **({"mask": mask.to_card(MASK_REASON)} if mask else {})},
        "cam": {"target_layer": default_cam_layer(model), "reshape": None},
        "calibration": {"temperature": 1.0},
        "inference": {"hflip_tta": cfg.hflip_tta},
        "weights": {"file": WEIGHTS_FILE, "sha256": file_sha256(weights_path), "bytes": weights_path.stat().st_size},
        "training": {
            "dataset": dataset_name,
            "dataset_name": info.get("name", dataset_name),
            "licence": info.get("licence", "see the dataset's terms"),
            "citation": info.get("citation", ""),
            "initial_weights": init_note,
            **({"teacher": {
                "id": teaching.teacher_id, "temperature": teaching.temperature, "alpha": cfg.distill_alpha,
                "photos_with_targets": int(teaching.has_target.sum()), "seconds": round(teaching.seconds, 1),
                "targets": ("on every augmented view the student was trained on" if online is not None else
                            "once per photo, as the teacher sees it at inference (no augmentation)"),
                "views": cfg.teacher_views,
                **({"transfer": {
                    "dataset": str(train_rows.loc[~labelled, "source"].iloc[0]),
                    "photos": int((~labelled).sum()),
                    "mask": transfer_mask.to_card(MASK_REASON) if transfer_mask else None,
                    "note": "unlabelled photos of another data set, taught by the teacher's targets alone; none of "
                            "them is in the student's data or a held-out split of the teacher",
                }} if not labelled.all() else {}),
            }} if teaching is not None else {}),
            "epochs_run": len(history),
            **({"stopped_by": f"time limit ({cfg.time_limit:g} s) after epoch {len(history)} of {cfg.epochs}"}
               if stopped_by_time else {}),
            "best_epoch": best_epoch,
            "best_val_macro_f1": round(best_f1, 4),
            "train_seconds": round(train_seconds, 1),
            "decode_seconds": round(decode_s, 1),
            "device": str(device),
            "hardware": f"{platform.machine()} {os.cpu_count()} CPU cores" + (
                f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""),
            "torch": torch.__version__,
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "args": {k: v for k, v in asdict(cfg).items() if k not in ("out", "run_dir", "data_root", "limitations")},
            "command": _command_line(),
            "wall_seconds": round(time.perf_counter() - t_start, 1),
            "data_summary": summarize_index(index),
        },
        "metrics": {},
        "limitations": list(cfg.limitations),
    }
    save_card(card, out)
    val_rows.to_csv(out / "_val_tmp.csv", index=False)
    try:
        finalize_model(out, val_rows, test_rows, target_accuracy=cfg.target_accuracy)
    finally:
        (out / "_val_tmp.csv").unlink(missing_ok=True)
    split_table(index, cfg.data_root).to_csv(out / "splits.csv", index=False)
    for name in ("metrics.csv", "args.json"):
        if (run_dir / name).is_file():
            (out / name).write_bytes((run_dir / name).read_bytes())
    if distributed:
        dist.destroy_process_group()
    return out


def default_cam_layer(model: torch.nn.Module) -> str:
    """The last feature layer timm reports (the usual Grad-CAM target) for a CNN."""
    info = getattr(model, "feature_info", None)
    names = dict(model.named_modules())
    for candidate in ("bn2", "conv_head", "stages", "layer4", "features", "norm"):
        if candidate in names:
            return candidate
    if info:
        module = info[-1]["module"] if isinstance(info, list) else info.module_name()[-1]
        if module in names:
            return module
    raise ValueError("Cannot guess a CAM target layer; set cam.target_layer in the card.")

