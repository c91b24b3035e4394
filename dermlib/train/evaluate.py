"""Evaluate an installed model on a dataset through the app's own inference path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dermlib.data import load_index
from dermlib.errors import DatasetError
from dermlib.evaluate import evaluation_report, softmax
from dermlib.models import get_card
from dermlib.train.finalize import model_logits
from dermlib.train.splits import rows_from_splits


def evaluate_model(model: str, data_root: str | Path, dataset: str | None = None,
                   split: str = "all", crop_lesion: str | None = None) -> tuple[dict[str, Any], int]:
    """Score a model on every image of a dataset whose label the model knows.

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
    known = index["label"].isin(card.class_ids)
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
    if crop_lesion:
        report["lesion_crop"] = crop_lesion
    return report, skipped
