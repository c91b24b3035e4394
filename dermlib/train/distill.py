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

The targets are computed once, before the first epoch, on each photo as the teacher sees it at inference
(its own preprocessing, flip averaging included), not per augmentation: the six-network default
ensemble costs about 0.1-0.3 s a photo on two CPU cores, so teaching on every augmented view would
multiply each epoch's time several times over. The card records the choice.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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
) -> TeacherTargets:
    """The teacher's softened class probabilities for the training rows it was itself trained on.

    Args:
        teacher_ref: Model id or folder of the teacher.
        rows: The student's training rows (``image_path`` column).
        student_classes: The student's class ids, in head order.
        temperature: Softening temperature T (> 0).
        batch_size: Photos per teacher forward pass.
        device: Where the teacher runs (default: best available).

    Raises:
        TrainingError: A teacher class is not a student class, the temperature is not positive, or no
            training photo is in the teacher's training split.
    """
    from dermlib.images import load_image
    from dermlib.models.loading import load_model
    from dermlib.models.registry import get_card

    if temperature <= 0:
        raise TrainingError(f"--distill-temperature must be positive, got {temperature}.")
    card = get_card(teacher_ref)
    missing = [c for c in card.class_ids if c not in student_classes]
    if missing:
        raise TrainingError(f"The teacher {card.id} has classes the student does not: {', '.join(missing[:5])}.")
    column = np.asarray([list(student_classes).index(c) for c in card.class_ids])
    known = teacher_train_files(card.path)
    has = np.asarray([Path(str(p)).name in known for p in rows["image_path"]], dtype=bool)
    if not has.any():
        raise TrainingError(f"None of the training photos is in the training split of {card.id}; a teacher must "
                            "have been trained on (some of) the same photos.")
    teacher = load_model(card, device=device)
    probs = np.zeros((len(rows), len(student_classes)), dtype=np.float32)
    todo = np.flatnonzero(has)
    start = time.perf_counter()
    for chunk in tqdm(np.array_split(todo, max(1, int(np.ceil(len(todo) / batch_size)))),
                      desc=f"teacher {card.id}", leave=False, dynamic_ncols=True):
        images = [load_image(str(rows["image_path"].iloc[i])) for i in chunk]
        with torch.inference_mode():
            logits = teacher.logits(teacher.preprocess(images)).float()
        soft = torch.softmax(logits / temperature, dim=1).cpu().numpy()
        probs[np.ix_(chunk, column)] = soft
    return TeacherTargets(probs, has, card.id, float(temperature), time.perf_counter() - start)


def distillation_loss(
    logits: torch.Tensor,
    ce_per_sample: torch.Tensor,
    targets: torch.Tensor,
    has_target: torch.Tensor,
    alpha: float,
    temperature: float,
) -> torch.Tensor:
    """Batch loss: cross-entropy, mixed with the distillation term where a teacher target exists.

    Args:
        logits: Student logits (B, C).
        ce_per_sample: The usual per-sample cross-entropy (B,).
        targets: Teacher soft targets (B, C), rows summing to 1 where ``has_target``.
        has_target: (B,) bool.
        alpha: Weight of the distillation term for rows with a target.
        temperature: Softening temperature T; the term is scaled by T^2 so its gradients keep their size.

    Returns:
        The mean loss over the batch.
    """
    weight = has_target.float() * alpha
    log_student = torch.log_softmax(logits.float() / temperature, dim=1)
    # KL(teacher || student) per sample; 0 * log 0 is taken as 0 for classes the teacher does not know.
    kl = (targets * (torch.log(targets.clamp_min(1e-12)) - log_student)).sum(dim=1)
    return ((1 - weight) * ce_per_sample + weight * temperature**2 * kl).mean()
