"""Image sources the scope check is fitted and reported on, read from the data root.

Each source is a folder of the data root with a known imaging modality: clinical photos, dermoscopy images,
or ordinary photographs with no skin in focus (``none``). Every source is split into a *calibration* half
and a *report* half by group (lesion, patient or near-duplicate group), with a fixed seed, so that
thresholds are chosen on one half and the figures in the card are measured on the other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from dermlib.errors import DatasetError

MODALITIES = ("clinical", "dermoscopy", "none")
#: Seed of the calibration / report halves; changing it changes every stored scope figure.
HALF_SEED = "dermlens-scope-1"


@dataclass(frozen=True)
class ScopeSource:
    """One folder of the data root used by the scope check.

    Attributes:
        name: The folder's name under the data root.
        modality: ``clinical``, ``dermoscopy`` or ``none`` (no skin: natural photographs).
        title: How people read it.
    """

    name: str
    modality: str
    title: str


SOURCES: dict[str, ScopeSource] = {
    s.name: s
    for s in (
        ScopeSource("fitzpatrick17k", "clinical", "Fitzpatrick17k (clinical atlas photos)"),
        ScopeSource("dermnet", "clinical", "DermNet NZ (clinical photos)"),
        ScopeSource("pad-ufes-20", "clinical", "PAD-UFES-20 (smartphone photos)"),
        ScopeSource("dermoscopy-melanoma", "dermoscopy", "ISIC archive dermoscopy"),
        ScopeSource("ham10000", "dermoscopy", "HAM10000 (dermoscopy)"),
        ScopeSource("ph2", "dermoscopy", "PH2 (dermoscopy)"),
        ScopeSource("natural-photos", "none", "Natural photos (no skin)"),
    )
}


def source_rows(name: str, data_root: str | Path) -> pd.DataFrame:
    """Images of one source with their group ids: columns ``image_path``, ``group_id``, ``source``.

    Raises:
        DatasetError: The source is unknown, or its folder is missing or holds no images.
    """
    if name not in SOURCES:
        raise DatasetError(f"Unknown scope source {name!r}; known: {', '.join(SOURCES)}.")
    root = Path(data_root).expanduser() / name
    if not root.is_dir():
        raise DatasetError(f"The scope source folder {root} does not exist.")
    if name == "natural-photos":
        meta = pd.read_csv(root / "metadata.csv", dtype=str)
        rows = pd.DataFrame({"image_path": [str(root / "images" / f) for f in meta["file"]],
                             "group_id": meta["group_id"]})
    elif name == "dermnet":
        meta = pd.read_csv(root / "metadata.csv", dtype=str)
        rows = pd.DataFrame({"image_path": [str(root / "images" / c / f"{m}.jpg")
                                            for c, m in zip(meta["category"], meta["md5"], strict=True)],
                             "group_id": meta["group_id"]})
    elif name == "ph2":
        meta = pd.read_csv(root / "metadata.csv", dtype=str)
        rows = pd.DataFrame({"image_path": [str(root / "images" / f"{i}.jpg") for i in meta["image_id"]],
                             "group_id": meta["image_id"]})
    else:
        from dermlib.data import load_index

        adapter = "imagefolder" if name == "dermoscopy-melanoma" else name
        index = load_index(adapter, root)
        rows = index.loc[index["image_path"].notna(), ["image_path", "group_id"]].astype({"group_id": str})
    rows = rows[[Path(p).is_file() for p in rows["image_path"]]].reset_index(drop=True)
    if rows.empty:
        raise DatasetError(f"The scope source folder {root} holds no images.")
    rows["source"] = name
    return rows


def available_sources(data_root: str | Path) -> list[str]:
    """Names of the sources present under ``data_root``, in :data:`SOURCES` order."""
    root = Path(data_root).expanduser()
    return [name for name in SOURCES if (root / name).is_dir()]


def half_of(group_id: str) -> str:
    """``"calibration"`` or ``"report"``: a stable hash of the group id with :data:`HALF_SEED`."""
    digest = hashlib.sha256(f"{HALF_SEED}:{group_id}".encode()).digest()
    return "calibration" if digest[0] % 2 == 0 else "report"


def with_halves(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with a ``half`` column (every image of a group on the same side)."""
    out = rows.copy()
    out["half"] = [half_of(str(g)) for g in out["group_id"]]
    return out
