"""Which photo is in which split: a training run's split, a subsample of it, and a model's stored split.

A model folder's ``splits.csv`` lists every image (by path under the data root) with its split and
duplicate group; training, calibration, evaluation, the scope check and the benchmarks all read it back
through :func:`rows_from_splits`, so every tool scores a model on exactly the photos it was tested on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from dermlib.data import load_index, with_duplicate_groups
from dermlib.errors import DatasetError
from dermlib.evaluate import stratified_group_split

if TYPE_CHECKING:
    from dermlib.train.loop import TrainConfig


def prepare_index(cfg: TrainConfig) -> pd.DataFrame:
    """Index the dataset, keep rows with images (and chosen classes), group duplicates, assign splits.

    With ``cfg.train_fraction`` below 1 the training split is then thinned (:func:`subsample_train`).
    """
    index = _assign_splits(cfg)
    if cfg.train_fraction != 1.0:  # a share outside (0, 1] is refused there, not ignored
        index = subsample_train(index, cfg.train_fraction, seed=cfg.seed)
    return index


def subsample_train(index: pd.DataFrame, fraction: float, seed: int = 0) -> pd.DataFrame:
    """Keep about ``fraction`` of each class's training rows, whole duplicate groups at a time.

    Validation and test rows are kept as they are, so runs on different fractions are scored on the same
    photos. Every class keeps at least one training group.

    Args:
        index: Rows with ``label``, ``split`` and (optionally) ``group_id``.
        fraction: Share of each class's training rows to keep, in (0, 1].
        seed: Seed of the draw.

    Returns:
        The index, less the training rows that were not drawn.

    Raises:
        ValueError: ``fraction`` is not in (0, 1].
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"train fraction must be in (0, 1], got {fraction}")
    groups = index["group_id"] if "group_id" in index else pd.Series(range(len(index)), index=index.index)
    rng = np.random.default_rng(seed)
    keep = index["split"] != "train"
    train = index[~keep]
    for _, rows in train.groupby("label", sort=True):
        want = round(fraction * len(rows))
        sizes = rows.groupby(groups[rows.index], sort=True).size()
        order = sizes.index.to_numpy()[rng.permutation(len(sizes))]
        taken, chosen = 0, []
        for group in order:
            if chosen and taken >= want:
                break
            chosen.append(group)
            taken += int(sizes[group])
        keep[rows.index[groups[rows.index].isin(chosen)]] = True
    return index[keep].reset_index(drop=True)


def _assign_splits(cfg: TrainConfig) -> pd.DataFrame:
    index = load_index(cfg.dataset, cfg.data_root)
    index = index[index["image_path"].notna()].reset_index(drop=True)
    if cfg.classes:
        missing = sorted(set(cfg.classes) - set(index["label"]))
        if missing:
            raise DatasetError(f"Classes not found in {cfg.data_root}: {', '.join(missing)}")
        index = index[index["label"].isin(cfg.classes)].reset_index(drop=True)
    if cfg.max_per_class:
        shuffled = index.sample(frac=1.0, random_state=cfg.seed)
        index = shuffled.groupby("label").head(cfg.max_per_class).sort_index().reset_index(drop=True)
    if index.empty or index["label"].nunique() < 2:
        raise DatasetError(f"Need images of at least two classes in {cfg.data_root} to train.")
    if cfg.splits:
        # A second seed or architecture on an existing split: same test images, so the runs can be ensembled.
        index = attach_splits(index, splits_file(cfg.splits), cfg.data_root)
        missing = {"train", "val"} - set(index["split"])
        if missing:
            raise DatasetError(f"{cfg.splits} has no {' or '.join(sorted(missing))} images among these classes.")
        return index
    if cfg.duplicate_grouping:
        index = with_duplicate_groups(index, workers=cfg.workers)
    given = index["split"].notna()
    if given.any() and not given.all():
        return _split_the_rest(index, cfg)
    has_split = given.all() and {"train", "test"} <= set(index["split"])
    if has_split and "val" in set(index["split"]):
        # Every row already has its train/val/test split (a combined dataset of fixed splits): keep it.
        return index
    if has_split:
        # Official train/test folders: keep the test set, carve validation out of train by group.
        train_mask = index["split"] != "test"
        sub = index[train_mask]
        val_frac = cfg.split_fractions[1] / (cfg.split_fractions[0] + cfg.split_fractions[1])
        inner = stratified_group_split(sub["label"].tolist(), sub["group_id"].tolist(),
                                       (1 - val_frac, val_frac, 0.0), seed=cfg.seed)
        index.loc[train_mask, "split"] = inner
    else:
        index["split"] = stratified_group_split(index["label"].tolist(), index["group_id"].tolist(),
                                                cfg.split_fractions, seed=cfg.seed)
    return index


def _split_the_rest(index: pd.DataFrame, cfg: TrainConfig) -> pd.DataFrame:
    """Keep the splits some rows already have (a combined dataset's fixed part); split the others.

    A row without a split whose group (after near-duplicate grouping) holds a row with one follows that
    row, so a near copy never lands on the other side of a fixed split. The remaining rows get a grouped,
    label-stratified split with ``cfg.split_fractions`` and ``cfg.seed``.
    """
    index = index.copy()
    given = index["split"].notna()
    fixed = index[given].groupby("group_id")["split"].first()
    follow = ~given & index["group_id"].isin(fixed.index)
    index.loc[follow, "split"] = index.loc[follow, "group_id"].map(fixed)
    rest = index["split"].isna()
    if rest.any():
        sub = index[rest]
        index.loc[rest, "split"] = stratified_group_split(sub["label"].tolist(), sub["group_id"].tolist(),
                                                          cfg.split_fractions, seed=cfg.seed)
    return index


def split_table(index: pd.DataFrame, data_root: str | Path) -> pd.DataFrame:
    """The split of every image, by path relative to the data root (what ``evaluate --split`` matches)."""
    table = index[["label", "group_id", "fitzpatrick", "split"]].copy()
    table.insert(0, "image", _image_keys(index, data_root))
    return table


def _image_keys(index: pd.DataFrame, data_root: str | Path) -> list[str]:
    root = Path(data_root).resolve()

    def relative(path: str) -> str:
        try:
            return Path(path).resolve().relative_to(root).as_posix()
        except ValueError:
            return Path(path).name

    return [relative(p) for p in index["image_path"]]


def rows_from_splits(folder: Path, data_root: str | Path, dataset: str | None = None) -> pd.DataFrame:
    """Re-attach a model folder's ``splits.csv`` to a freshly indexed dataset (rows in the same splits).

    Raises:
        DatasetError: The folder has no splits.csv, or none of its images are found under ``data_root``.
    """
    file = splits_file(folder)
    index = load_index(dataset, data_root)
    index = index[index["image_path"].notna()].reset_index(drop=True)
    return attach_splits(index, file, data_root)


def splits_file(path: str | Path) -> Path:
    """A ``splits.csv`` given directly or as the model or run folder that holds one.

    Raises:
        DatasetError: Neither the path nor ``path/splits.csv`` is a file.
    """
    path = Path(path)
    file = path / "splits.csv" if path.is_dir() else path
    if not file.is_file():
        raise DatasetError(f"No splits file at {file}; give a splits.csv or a model folder written by `dermlib train`.")
    return file


def attach_splits(index: pd.DataFrame, file: Path, data_root: str | Path) -> pd.DataFrame:
    """Give each indexed image the split (and duplicate group) a ``splits.csv`` lists; drop unlisted images.

    Raises:
        DatasetError: The file is not a splits table, or none of its images are in ``index``.
    """
    try:
        splits = pd.read_csv(file)
        by_key = dict(zip(splits["image"].astype(str), splits["split"], strict=True))
    except (KeyError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{file} is not a splits table with 'image' and 'split' columns.") from exc
    groups = dict(zip(splits["image"].astype(str), splits["group_id"], strict=True)) if "group_id" in splits else {}
    # Older runs stored bare file names, newer ones paths under the data root.
    keys = [k if k in by_key else Path(k).name for k in _image_keys(index, data_root)]
    index = index.copy()
    index["split"] = [by_key.get(k) for k in keys]
    if groups:
        index["group_id"] = [groups.get(k) for k in keys]
    elif "group_id" not in index:
        index["group_id"] = range(len(index))
    index = index[index["split"].notna()].reset_index(drop=True)
    if index.empty:
        raise DatasetError(f"None of the images listed in {file} were found under {data_root}.")
    return index
