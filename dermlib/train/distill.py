"""Knowledge distillation: a trained model (often an ensemble) teaches a student through soft targets.

``dermlib train --teacher MODEL`` adds, for every training photo the teacher itself was trained on, the
temperature-softened distillation term of Hinton et al. (2015) to the usual cross-entropy::

    loss_i = (1 - a) * CE(student_i, label_i) + a * T^2 * KL(teacher_i^T || student_i^T)

with ``a = --distill-alpha`` for photos that have a teacher target and ``a = 0`` for the rest (e.g. the
DermNet NZ photos of a combined data set, whose classes the teacher does not know). The teacher's
classes must all be classes of the student (matched by id); the student's other classes get zero
probability in the target.

Which photos get a target: those in the training split of the teacher's own ``splits.csv`` (matched by
file name). A photo the teacher was validated or tested on never gets one, so the student's held-out
splits stay unseen by either model.

A *transfer set* (``--transfer-data``, :func:`transfer_rows`) adds photos without labels from another data
set, which only the teacher's targets teach (weight 1, no cross-entropy). On photos it memorised the
teacher's answers are nearly one-hot; on photos it never saw they carry what it really believes about
similar-looking conditions, which is what a student needs to match its log loss (Hinton et al. used a
transfer set for the same reason). Photos in any split of the student's data, or in the teacher's
validation or test split, are left out, so no held-out photo is ever used.

When the targets are computed (``--teacher-views``, recorded in the card):

* ``fixed`` (the default): once, before the first epoch, on each photo as the teacher sees it at
  inference (its own preprocessing, flip averaging included). Cheap on a CPU: the six-network default
  costs about 0.24 s a photo on two cores, once.
* ``augmented``: on every augmented view the student is trained on, batch by batch
  (:class:`OnlineTeacher`), so student and teacher always see the same pixels. This is the "consistent
  teacher" of Beyer et al. ("Knowledge distillation: A good teacher is patient and consistent", CVPR
  2022), who found it, with long training, the ingredient that lets a student match its teacher. Fixed
  targets on photos the teacher memorised are nearly one-hot and add little to the labels (measured here:
  a Lite2 student's log loss stayed 0.14 above the ensemble's). It costs one teacher forward pass per
  batch, about 0.12 s a photo on two CPU cores (more than the student's own step), and little on a GPU.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from dermlib.errors import TrainingError


@dataclass(frozen=True)
class TeacherTargets:
    """Soft targets of a teacher for the rows of a training table.

    Attributes:
        probs: (N, C_student) float32; rows without a target are zero.
        has_target: (N,) bool.
        teacher_id: The teacher's card id.
        temperature: The softening temperature T.
        seconds: Wall time spent computing them.
    """

    probs: np.ndarray
    has_target: np.ndarray
    teacher_id: str
    temperature: float
    seconds: float


def teacher_train_files(teacher_folder: Path) -> set[str]:
    """File names of the photos in the training split of the teacher's ``splits.csv``.

    Raises:
        TrainingError: The teacher has no ``splits.csv``.
    """
    file = teacher_folder / "splits.csv"
    if not file.is_file():
        raise TrainingError(f"The teacher {teacher_folder.name} has no splits.csv, so DermLens cannot tell which "
                            "photos it was trained on; distil only from models trained by `dermlib train`.")
    table = pd.read_csv(file)
    return {Path(str(p)).name for p in table.loc[table["split"] == "train", "image"]}


def compute_teacher_targets(
    teacher_ref: str,
    rows: pd.DataFrame,
    student_classes: Sequence[str],
    temperature: float = 2.0,
    batch_size: int = 16,
    device: str | None = None,
    transfer_mask: Any = None,
) -> TeacherTargets:
    """The teacher's softened class probabilities for the training rows it was itself trained on.

    Args:
        teacher_ref: Model id or folder of the teacher.
        rows: The student's training rows (``image_path`` column).
        student_classes: The student's class ids, in head order.
        temperature: Softening temperature T (> 0).
        batch_size: Photos per teacher forward pass.
        device: Where the teacher runs (default: best available).
        transfer_mask: A :class:`~dermlib.masking.MaskSpec` applied to the transfer rows' photos before the
            teacher sees them, as the student sees them.

    Raises:
        TrainingError: A teacher class is not a student class, the temperature is not positive, or no
            training photo is in the teacher's training split.
    """
    from dermlib.images import load_image
    from dermlib.models.loading import load_model
    from dermlib.models.registry import get_card

    _check_temperature(temperature)
    card = get_card(teacher_ref)
    column = teacher_columns(card, student_classes)
    has = teacher_target_mask(card, rows)
    teacher = load_model(card, device=device)
    probs = np.zeros((len(rows), len(student_classes)), dtype=np.float32)
    todo = np.flatnonzero(has)
    start = time.perf_counter()
    for chunk in tqdm(np.array_split(todo, max(1, int(np.ceil(len(todo) / batch_size)))),
                      desc=f"teacher {card.id}", leave=False, dynamic_ncols=True):
        images = [load_image(str(rows["image_path"].iloc[i])) for i in chunk]
        if transfer_mask is not None and "transfer" in rows:
            images = [transfer_mask.apply(img) if bool(rows["transfer"].iloc[i]) else img
                      for img, i in zip(images, chunk, strict=True)]
        with torch.inference_mode():
            logits = teacher.logits(teacher.preprocess(images)).float()
        soft = torch.softmax(logits / temperature, dim=1).cpu().numpy()
        probs[np.ix_(chunk, column)] = soft
    return TeacherTargets(probs, has, card.id, float(temperature), time.perf_counter() - start)


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise TrainingError(f"--distill-temperature must be positive, got {temperature}.")


def teacher_columns(card: Any, student_classes: Sequence[str]) -> np.ndarray:
    """For each teacher class, in the teacher's order, its column among the student's classes.

    Raises:
        TrainingError: A teacher class is not a student class.
    """
    missing = [c for c in card.class_ids if c not in student_classes]
    if missing:
        raise TrainingError(f"The teacher {card.id} has classes the student does not: {', '.join(missing[:5])}.")
    return np.asarray([list(student_classes).index(c) for c in card.class_ids])


def teacher_target_mask(card: Any, rows: pd.DataFrame) -> np.ndarray:
    """(N,) bool: which training rows are photos of the teacher's own training split, or transfer photos.

    Transfer photos are the rows whose ``transfer`` column (if any) is true (see :func:`transfer_rows`).

    Raises:
        TrainingError: The teacher has no ``splits.csv``, or none of the rows is in its training split.
    """
    known = teacher_train_files(card.path)
    has = np.asarray([Path(str(p)).name in known for p in rows["image_path"]], dtype=bool)
    if "transfer" in rows:
        has |= rows["transfer"].fillna(False).to_numpy(dtype=bool)
    if not has.any():
        raise TrainingError(f"None of the training photos is in the training split of {card.id}; a teacher must "
                            "have been trained on (some of) the same photos.")
    return has


def transfer_rows(teacher_ref: str, data_root: str | Path, dataset: str | None,
                  student_index: pd.DataFrame) -> pd.DataFrame:
    """The photos of another data set that a teacher labels for the student (a transfer set).

    Args:
        teacher_ref: Model id or folder of the teacher.
        data_root: The transfer data set's folder.
        dataset: Its adapter name (``None``: detected).
        student_index: The student's whole index (all splits), whose photos are left out.

    Returns:
        Rows with ``image_path``, ``source`` and ``transfer`` (true); ``label`` is kept only for the record.

    Raises:
        TrainingError: No photo is left after leaving out the student's and the teacher's held-out photos.
        DatasetError: The folder cannot be read as a data set.
    """
    from dermlib.data.registry import load_index
    from dermlib.models.registry import get_card

    card = get_card(teacher_ref)
    rows = load_index(dataset, data_root)
    rows = rows[rows["image_path"].notna()].reset_index(drop=True)
    names = rows["image_path"].map(lambda p: Path(str(p)).name)
    held_out: set[str] = set()
    splits = card.path / "splits.csv"
    if splits.is_file():
        table = pd.read_csv(splits)
        held_out = {Path(str(p)).name for p in table.loc[table["split"] != "train", "image"]}
    student = {Path(str(p)).name for p in student_index["image_path"]}
    keep = ~names.isin(held_out | student)
    rows = rows[keep].reset_index(drop=True)
    if rows.empty:
        raise TrainingError(f"No transfer photos are left in {data_root}: all of them are in the student's data or "
                            f"in a held-out split of {card.id}.")
    # The standard index always has these columns; the label is kept for the record, never trained on.
    out = rows[["image_path", "source"]].copy()
    out["transfer_label"] = rows["label"]
    out["transfer"] = True
    return out


class OnlineTeacher:
    """The teacher asked about each augmented training batch, exactly as the student sees it.

    The student's batch (normalised with the student's mean and std, at the student's size) is turned back
    into pixels, resized to the teacher's input size and normalised the teacher's way; the teacher runs
    once on it (no flip averaging: the flip is one of the augmentations). The student's own mask boxes
    (e.g. a watermark) are already in those pixels, so the teacher sees them too.

    Args:
        teacher_ref: Model id or folder of the teacher.
        rows: The student's training rows (``image_path`` column), to find the photos with targets.
        student_classes: The student's class ids, in head order.
        mean: The student's normalisation mean (3 values).
        std: The student's normalisation std (3 values).
        temperature: Softening temperature T (> 0).
        device: Where the teacher runs (the student's device).

    Attributes:
        has_target: (N,) bool, as in :class:`TeacherTargets`.
        teacher_id: The teacher's card id.
        temperature: T.
        seconds: Wall time spent in the teacher so far.

    Raises:
        TrainingError: As :func:`compute_teacher_targets`.
    """

    def __init__(self, teacher_ref: str, rows: pd.DataFrame, student_classes: Sequence[str],
                 mean: Sequence[float], std: Sequence[float], temperature: float = 2.0,
                 device: str | torch.device | None = None) -> None:
        from dermlib.models.loading import load_model
        from dermlib.models.registry import get_card

        _check_temperature(temperature)
        card = get_card(teacher_ref)
        self._column = torch.as_tensor(teacher_columns(card, student_classes))
        self.has_target = teacher_target_mask(card, rows)
        self.teacher_id, self.temperature, self.seconds = card.id, float(temperature), 0.0
        self._n_classes = len(student_classes)
        self._loaded = load_model(card, device=None if device is None else str(device))
        self._loaded.model.eval()
        dev = self._loaded.device
        config = self._loaded.config

        def column(values: Sequence[float]) -> torch.Tensor:
            return torch.as_tensor(list(values), dtype=torch.float32, device=dev).view(1, 3, 1, 1)

        self._s_mean, self._s_std = column(mean), column(std)
        self._t_mean, self._t_std = column(config["mean"]), column(config["std"])
        self._size = self._loaded.input_size

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Soft targets (B, C_student) for the student's normalised batch ``x`` (B, 3, H, W).

        Computed without gradients (not in inference mode: the loss keeps them for its backward pass).
        """
        import torch.nn.functional as F

        start = time.perf_counter()
        with torch.no_grad():
            pixels = x.to(self._s_mean.device).float() * self._s_std + self._s_mean
            if tuple(pixels.shape[-2:]) != self._size:
                pixels = F.interpolate(pixels, size=self._size, mode="bilinear", align_corners=False, antialias=True)
            batch = ((pixels - self._t_mean) / self._t_std).contiguous(memory_format=torch.channels_last)
            soft = torch.softmax(self._loaded.model(batch).float() / self.temperature, dim=1)
            out = soft.new_zeros(len(soft), self._n_classes)
            out[:, self._column.to(soft.device)] = soft
        self.seconds += time.perf_counter() - start
        return out.to(x.device)


def distillation_loss(
    logits: torch.Tensor,
    ce_per_sample: torch.Tensor,
    targets: torch.Tensor,
    has_target: torch.Tensor,
    alpha: float,
    temperature: float,
    transfer: torch.Tensor | None = None,
) -> torch.Tensor:
    """Batch loss: cross-entropy, mixed with the distillation term where a teacher target exists.

    Args:
        logits: Student logits (B, C).
        ce_per_sample: The usual per-sample cross-entropy (B,).
        targets: Teacher soft targets (B, C), rows summing to 1 where ``has_target``.
        has_target: (B,) bool.
        alpha: Weight of the distillation term for rows with a target.
        temperature: Softening temperature T; the term is scaled by T^2 so its gradients keep their size.
        transfer: (B,) bool, rows of a transfer set: no label, so the teacher's term has weight 1 (their
            ``ce_per_sample`` must be 0, as ``CrossEntropyLoss`` gives for ``ignore_index`` labels).

    Returns:
        The mean loss over the batch.
    """
    weight = has_target.float() * alpha
    if transfer is not None:
        weight = torch.where(transfer, torch.ones_like(weight), weight)
    log_student = torch.log_softmax(logits.float() / temperature, dim=1)
    # KL(teacher || student) per sample; 0 * log 0 is taken as 0 for classes the teacher does not know.
    kl = (targets * (torch.log(targets.clamp_min(1e-12)) - log_student)).sum(dim=1)
    return ((1 - weight) * ce_per_sample + weight * temperature**2 * kl).mean()
