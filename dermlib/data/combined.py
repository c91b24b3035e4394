"""Datasets made of several others: one index over sub-folders of a data root, with a label map.

A :class:`CombinedAdapter` reads each part with its own adapter from ``ROOT/<folder>``, renames labels
through the part's label map, drops the photos a part lists as copies of another part's, and keeps a
part's fixed split when it names one (a model folder's ``splits.csv``). Rows of parts without a fixed
split get ``split = <NA>``; ``dermlib train`` then keeps the fixed splits and draws a grouped, stratified
split for the rest (see :func:`dermlib.train.splits.prepare_index`). Each row's ``source`` is its part's
dataset name, so metrics can be reported per source, and group ids are prefixed with it so groups of
two sets never collide.

Because the image keys of ``splits.csv`` are paths relative to the data root, the training and
evaluation CLIs use a combined dataset like any other::

    python -m dermlib train --dataset fitz-dermnet --data-root ../shared/data ...
    python -m dermlib evaluate --model clinical-common38 --dataset fitz-dermnet --data ../shared/data

``fitz-dermnet`` (:data:`FITZ_DERMNET`): the label map
----------------------------------------------------------
Every class of ``clinical-fitz21`` (the 21 Fitzpatrick17k conditions) plus every one of the 24 DermNet
NZ categories. Where both sets hold the same condition under the same name the DermNet category id is
the class id and the photos of both sets train one class:

=========================  ======================================  ==================================
class id                   Fitzpatrick17k label(s)                 DermNet NZ category
=========================  ======================================  ==================================
acne                       acne                                    acne
actinic-keratosis          actinic-keratosis                       actinic-keratosis
basal-cell-carcinoma       basal-cell-carcinoma                    basal-cell-carcinoma
eczema                     eczema                                  eczema
keloid                     keloid                                  keloid
melanoma                   melanoma                                melanoma
squamous-cell-carcinoma    squamous-cell-carcinoma                 squamous-cell-carcinoma
=========================  ======================================  ==================================

The Fitzpatrick17k sub-labels ``acne-vulgaris``, ``basal-cell-carcinoma-morpheiform``,
``dyshidrotic-eczema``, ``malignant-melanoma`` and ``superficial-spreading-melanoma-ssm`` stay classes
of their own, exactly as in ``clinical-fitz21``: merging them would change the Fitzpatrick17k task, and
its test split must score the same 21 labels so the two models' weighted F1 can be compared. The other
14 Fitzpatrick17k classes and 17 DermNet categories have no counterpart: 7 + 14 + 17 = 38 classes.

DermNet photos listed in ``dermnet/copies_in_other_sets.csv`` are dropped: their Fitzpatrick17k copies
are already in the Fitzpatrick17k split. The Fitzpatrick17k rows keep exactly the split (and duplicate
groups) of ``weights/clinical-fitz21/splits.csv``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from dermlib import config
from dermlib.data.adapters import Adapter, DermNetNZ
from dermlib.data.schema import finalize_index
from dermlib.errors import DatasetError


@dataclass(frozen=True)
class CombinedPart:
    """One dataset inside a combined dataset.

    Attributes:
        adapter: Name of the adapter that reads the part.
        folder: The part's folder under the combined data root.
        label_map: ``{part label: combined class id}``; labels not in it keep their own id.
        fixed_split: A model id (looked up in the weights folder, then the repository's ``weights/``) or a
            path to a ``splits.csv`` whose split and groups the part's rows keep; images it does not list
            are dropped. None: the part is split when training.
        drop_copies: Drop the photos the adapter lists as copies of another set's (DermNet NZ's
            ``copies_in_other_sets.csv``).
    """

    adapter: str
    folder: str
    label_map: Mapping[str, str] = field(default_factory=dict)
    fixed_split: str | None = None
    drop_copies: bool = False


def resolve_splits(ref: str) -> Path:
    """The ``splits.csv`` a part's ``fixed_split`` names.

    Raises:
        DatasetError: Neither a model of that id nor a file of that path has one.
    """
    candidates = [Path(ref), Path(ref) / "splits.csv", config.weights_dir() / ref / "splits.csv",
                  config.PROJECT_ROOT / "weights" / ref / "splits.csv"]
    for path in candidates:
        if path.is_file():
            return path
    raise DatasetError(f"No splits.csv for {ref!r} (looked for a model folder of that id and a file path).")


class CombinedAdapter(Adapter):
    """Several datasets below one root read as one index (see the module docstring)."""

    modality = "clinical"

    def __init__(self, name: str, title: str, description: str, parts: Sequence[CombinedPart],
                 licence: str = "", citation: str = "") -> None:
        self.name = name
        self.title = title
        self.description = description
        self.parts = tuple(parts)
        self.licence = licence
        self.citation = citation
        self.layout = " + ".join(f"ROOT/{p.folder}/ ({p.adapter})" for p in self.parts)

    def _part_adapter(self, part: CombinedPart) -> Adapter:
        from dermlib.data.registry import get_adapter  # the registry imports this module

        return get_adapter(part.adapter)

    def detect(self, root: Path) -> bool:
        return all((root / p.folder).is_dir() and self._part_adapter(p).detect(root / p.folder) for p in self.parts)

    def _load(self, root: Path) -> pd.DataFrame:  # pragma: no cover - load() is overridden
        return self.load(root)

    def load(self, root: str | os.PathLike[str]) -> pd.DataFrame:
        """Index every part under ``root`` and concatenate them.

        Returns:
            The standard index, ``source`` set to each part's dataset name, ``split`` set for the parts
            with a fixed split and ``<NA>`` for the others.

        Raises:
            DatasetError: A part's folder is missing or unreadable, or a fixed split lists none of its images.
        """
        from dermlib.train.splits import attach_splits  # the train package imports data, not the reverse

        base = Path(root).expanduser()
        if not base.is_dir():
            raise DatasetError(f"Dataset folder {base} does not exist (expected {self.title}: {self.layout}).")
        frames = []
        for part in self.parts:
            adapter = self._part_adapter(part)
            part_root = base / part.folder
            index = adapter.load(part_root)
            index = index[index["image_path"].notna()].reset_index(drop=True)
            if part.drop_copies and isinstance(adapter, DermNetNZ):
                copies = adapter.copies(part_root)
                stems = index["image_path"].map(lambda p: Path(p).stem)
                index = index[~stems.isin(copies)].reset_index(drop=True)
            if part.fixed_split:
                index = attach_splits(index, resolve_splits(part.fixed_split), part_root)
            else:
                index["split"] = pd.NA
            if part.label_map:
                index["label"] = index["label"].map(lambda v, m=part.label_map: m.get(v, v))
            # Group ids of two sets are unrelated; without the prefix two different photos could join.
            index["group_id"] = adapter.name + ":" + index["group_id"].astype(str)
            index["source"] = adapter.name
            frames.append(index)
        out = finalize_index(pd.concat(frames, ignore_index=True))
        if out.empty:
            raise DatasetError(f"No {self.title} records found in {base} (expected {self.layout}).")
        return out


#: Fitzpatrick17k (21 conditions, with clinical-fitz21's split) plus the 24 DermNet NZ categories.
FITZ_DERMNET = CombinedAdapter(
    name="fitz-dermnet",
    title="Fitzpatrick17k + DermNet NZ (38 classes)",
    description=(
        "The 21 Fitzpatrick17k conditions of clinical-fitz21 (its split kept) plus the 24 DermNet NZ "
        "categories; shared conditions merged, DermNet copies of Fitzpatrick17k photos dropped."
    ),
    parts=(
        CombinedPart("fitzpatrick17k", "fitzpatrick17k", fixed_split="clinical-fitz21"),
        # The shared conditions already carry the same id in both sets (see the table above), so the map
        # is the identity; it is spelled out so the merge is visible and tested.
        CombinedPart("dermnet-nz", "dermnet", drop_copies=True, label_map={
            c: c for c in ("acne", "actinic-keratosis", "basal-cell-carcinoma", "eczema", "keloid", "melanoma",
                           "squamous-cell-carcinoma")}),
    ),
    licence="Fitzpatrick17k: CC BY-NC-SA 3.0; DermNet NZ images: non-commercial research and teaching only",
    citation="Groh et al., CVPR Workshops 2021 (Fitzpatrick17k); DermNet NZ (dermnetnz.org).",
)
