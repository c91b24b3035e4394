"""Evaluate an installed model on a dataset through the app's own inference path."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dermlib.data import load_index
from dermlib.data.schema import RISK_GROUPS
from dermlib.errors import DatasetError
from dermlib.evaluate import evaluation_report, softmax
from dermlib.models import get_card
from dermlib.train.finalize import model_logits
from dermlib.train.splits import rows_from_splits


def evaluate_model(model: str, data_root: str | Path, dataset: str | None = None,
                   split: str = "all", crop_lesion: str | None = None) -> tuple[dict[str, Any], int]:
    """Score a model on every image of a dataset whose label the model knows.

    A model whose classes are risk groups (``benign`` / ``malignant``, as ``dermoscopy-melanoma``) is scored on
    the risk group of each photo the dataset labels more finely (PH2's common naevus, atypical naevus and
    melanoma), and the report's ``by_dataset_label`` says how each of those finer labels was answered: an
    external test of such a model on another clinic's photos.

    Args:
        model: Model id or folder.
        data_root: Dataset folder.
        dataset: Adapter name (default: detected).
        split: ``"all"`` or a split name of the model's own ``splits.csv`` (matched by file name).
        crop_lesion: A segmentation model id: every photo is cropped to the lesion it finds (with the margin
            of :func:`dermlib.segment.crop.crop_to_lesion`) before the classifier sees it.

    Returns:
        The evaluation report and the number of images skipped for unknown labels.

    Raises:
        DatasetError: No usable images remain.
    """
    card = get_card(model)
    if split == "all":
        index = load_index(dataset, data_root)
        index = index[index["image_path"].notna()].reset_index(drop=True)
    else:
        if card.path is None:
            raise DatasetError(f"Model '{card.id}' has no folder, so --split {split} cannot be applied.")
        index = rows_from_splits(card.path, data_root, dataset)
        index = index[index["split"] == split].reset_index(drop=True)
    dataset_labels = index[["label", "display_name", "risk_group"]].copy()
    if _classes_are_risk_groups(card.class_ids):
        index["label"] = index["label"].where(index["label"].isin(card.class_ids), index["risk_group"])
    known = index["label"].isin(card.class_ids)
    dataset_labels = dataset_labels[known].reset_index(drop=True)
    skipped = int((~known).sum())
    index = index[known].reset_index(drop=True)
    if index.empty:
        raise DatasetError(f"No images in {data_root} carry a label that model '{card.id}' knows.")
    logits = model_logits(card.path, index, crop_lesion=crop_lesion)
    label_of = {c: i for i, c in enumerate(card.class_ids)}
    y = index["label"].map(label_of).to_numpy(np.int64)
    report = evaluation_report(softmax(logits, card.temperature), y, card.class_ids,
                               [c.risk_group for c in card.classes], index["fitzpatrick"].to_numpy(),
                               uncertain_thresholds=card.calibration)
    report["split"] = split
    if not dataset_labels["label"].equals(index["label"]):
        report["by_dataset_label"] = _answers_by_label(dataset_labels, logits.argmax(axis=1), card.class_ids)
    if crop_lesion:
        report["lesion_crop"] = crop_lesion
    return report, skipped


def _classes_are_risk_groups(class_ids: Sequence[str]) -> bool:
    return bool(class_ids) and set(class_ids) <= set(RISK_GROUPS)


def _answers_by_label(labels: pd.DataFrame, predicted: np.ndarray, class_ids: Sequence[str]) -> dict[str, Any]:
    """``{dataset label: {"n", "name", "risk_group", "answered": {class id: photos answered so first}}}``."""
    out: dict[str, Any] = {}
    for label, rows in sorted(labels.groupby("label", observed=True).groups.items()):
        answers = predicted[np.asarray(rows)]
        risk = labels.loc[rows[0], "risk_group"]
        out[str(label)] = {"n": len(answers), "name": str(labels.loc[rows[0], "display_name"]),
                           "risk_group": None if pd.isna(risk) else str(risk),
                           "answered": {c: int((answers == i).sum()) for i, c in enumerate(class_ids)}}
    return out
