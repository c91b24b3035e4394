"""Datasets of photos with expert lesion masks, by name (today: PH2), and their train/val/test split."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from dermlib.errors import DatasetError

SPLITS_FILE = "splits.csv"


@dataclass(frozen=True)
class MaskDataset:
    """A folder of photos with binary lesion masks.

    Attributes:
        name: Registry name.
        title: How people call it (for cards and pages).
        images: Sub-folder of the photos.
        masks: Sub-folder of the masks (same stem, ``.png``; non-zero = lesion).
        metadata: CSV with at least ``image_id`` and ``diagnosis``.
        licence: Licence and the citation its owners ask for.
    """

    name: str
    title: str
    images: str
    masks: str
    metadata: str
    licence: str

    def resolve(self, root: str | os.PathLike[str]) -> Path:
        """The dataset folder: ``root`` itself, or ``root/<name>`` (a data root holding several sets)."""
        root = Path(root).expanduser()
        for candidate in (root, root / self.name):
            if (candidate / self.metadata).is_file() and (candidate / self.images).is_dir():
                return candidate
        raise DatasetError(f"{root} is not a {self.title} folder: expected {self.metadata}, {self.images}/ and "
                           f"{self.masks}/ there or under {self.name}/.")

    def index(self, root: str | os.PathLike[str]) -> pd.DataFrame:
        """One row per photo that has both its image and its mask: ``image_id``, ``diagnosis``, ``image_path``,
        ``mask_path`` and the metadata's other columns.

        Raises:
            DatasetError: The folder is not this dataset, or no photo has its mask.
        """
        base = self.resolve(root)
        try:
            meta = pd.read_csv(base / self.metadata, dtype={"image_id": str})
        except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DatasetError(f"Cannot read {base / self.metadata}: {exc}") from exc
        missing = {"image_id", "diagnosis"} - set(meta.columns)
        if missing:
            raise DatasetError(f"{base / self.metadata} lacks the column(s) {', '.join(sorted(missing))}.")
        meta["image_path"] = [str(base / self.images / f"{i}.jpg") for i in meta["image_id"]]
        meta["mask_path"] = [str(base / self.masks / f"{i}.png") for i in meta["image_id"]]
        ok = meta["image_path"].map(os.path.isfile) & meta["mask_path"].map(os.path.isfile)
        meta = meta[ok].reset_index(drop=True)
        if meta.empty:
            raise DatasetError(f"No photo in {base / self.images} has its mask in {base / self.masks}.")
        return meta


MASK_DATASETS: dict[str, MaskDataset] = {
    "ph2": MaskDataset(
        name="ph2", title="PH2", images="images", masks="masks", metadata="metadata.csv",
        licence="PH2 database (Hospital Pedro Hispano, Portugal), research use with citation: Mendonça et al., "
                "'PH² - A dermoscopic image database for research and benchmarking', EMBC 2013"),
}


def get_mask_dataset(name: str) -> MaskDataset:
    """The registered mask dataset called ``name``.

    Raises:
        DatasetError: No such dataset (the message lists the known ones).
    """
    try:
        return MASK_DATASETS[name]
    except KeyError:
        raise DatasetError(f"Unknown segmentation dataset {name!r}; known: {', '.join(MASK_DATASETS)}.") from None


def read_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """A mask file as a bool array (True = lesion)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("L")) > 127


def stratified_split(index: pd.DataFrame, seed: int = 0, fractions: tuple[float, float] = (0.6, 0.2)
                     ) -> pd.DataFrame:
    """Split photos train/val/test within each diagnosis (``fractions`` = train, val; test takes the rest).

    Returns:
        ``image_id``, ``diagnosis``, ``split``, sorted by ``image_id`` (the table written as ``splits.csv``).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for diagnosis, group in index.groupby("diagnosis", sort=True):
        ids = sorted(group["image_id"])
        rng.shuffle(ids)
        n_train = round(len(ids) * fractions[0])
        n_val = round(len(ids) * fractions[1])
        for i, image_id in enumerate(ids):
            split = "train" if i < n_train else "val" if i < n_train + n_val else "test"
            rows.append({"image_id": image_id, "diagnosis": diagnosis, "split": split})
    return pd.DataFrame(rows).sort_values("image_id").reset_index(drop=True)


def read_splits(folder: str | os.PathLike[str]) -> pd.DataFrame:
    """The ``splits.csv`` of a segmentation model folder (or the file itself).

    Raises:
        DatasetError: The file is missing or lacks ``image_id`` / ``split``.
    """
    path = Path(folder)
    path = path / SPLITS_FILE if path.is_dir() else path
    if not path.is_file():
        raise DatasetError(f"No {SPLITS_FILE} at {path}.")
    table = pd.read_csv(path, dtype={"image_id": str})
    if not {"image_id", "split"} <= set(table.columns):
        raise DatasetError(f"{path} needs the columns image_id and split.")
    return table
