"""Dataset adapters: each turns one dataset layout on disk into the standard index table.

Every adapter lists each folder once and reads its csv with pandas; no image is opened while indexing
(``load_index(..., verify=True)`` opens headers when asked). See :mod:`dermlib.data.schema` for the columns.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from dermlib.data import labels as label_tables
from dermlib.data.files import images_by_stem, is_image_name, list_images, list_subfolders
from dermlib.data.labels import LabelInfo, humanize, slugify
from dermlib.data.schema import SPLIT_ALIASES, finalize_index, normalise_body_site, normalise_sex
from dermlib.errors import DatasetError


def _read_csv(path: Path, required: Sequence[str], optional: Sequence[str] = ()) -> pd.DataFrame:
    """Read only the needed columns of a csv (or Dataverse ``.tab``), failing with a readable message."""
    if not path.is_file():
        raise DatasetError(f"Missing metadata file {path}.")
    wanted = set(required) | set(optional)
    sep = "\t" if path.suffix == ".tab" else ","
    try:
        frame = pd.read_csv(path, sep=sep, usecols=lambda c: c in wanted, dtype=str, keep_default_na=True)
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise DatasetError(f"Cannot read {path}: {error}") from error
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DatasetError(
            f"{path.name} lacks the column(s) {', '.join(missing)} (needs {', '.join(required)})."
        )
    return frame


def _csv_header(path: Path) -> str:
    """The first line of a CSV file, or an empty string when there is no such file."""
    if not path.is_file():
        return ""
    with path.open(encoding="utf-8", errors="replace") as handle:
        return handle.readline()


def _first_existing(root: Path, names: Sequence[str]) -> Path:
    """Return the first of ``names`` that exists under ``root`` (or the first name, to report it missing)."""
    for name in names:
        if (root / name).is_file():
            return root / name
    return root / names[0]


def _map_unique(values: pd.Series, func: Callable[[str], str]) -> pd.Series:
    """Apply ``func`` once per distinct value (labels repeat thousands of times)."""
    uniques = values.dropna().unique()
    return values.map(dict(zip(uniques, map(func, uniques), strict=True)))


def _map_labels(codes: pd.Series, table: Mapping[str, LabelInfo]) -> tuple[pd.Series, pd.Series]:
    """Look up display names and risk groups; labels outside the table get a readable name and no group."""
    display = codes.map({k: v.display_name for k, v in table.items()})
    display = display.fillna(_map_unique(codes, humanize))
    risk = codes.map({k: v.risk_group for k, v in table.items()})
    return display, risk


class Adapter(ABC):
    """Reads one dataset layout into the standard index (see :mod:`dermlib.data.schema`)."""

    name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    modality: ClassVar[str]  # "clinical", "dermoscopy" or "mixed"
    licence: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    homepage: ClassVar[str] = ""
    layout: ClassVar[str] = ""  # the expected files, shown in errors and the page
    #: What a finer label inside one class is called (DermNet NZ: the topic page a photo was shown on); empty
    #: when the layout has none.
    sub_label_title: ClassVar[str] = ""

    @abstractmethod
    def detect(self, root: Path) -> bool:
        """Return whether ``root`` looks like this dataset (cheap: file names only)."""

    @abstractmethod
    def _load(self, root: Path) -> pd.DataFrame:
        """Return this dataset's rows (any subset of the index columns)."""

    def load(self, root: str | os.PathLike[str]) -> pd.DataFrame:
        """Index the dataset in ``root``.

        Args:
            root: The dataset folder.

        Returns:
            The index table with the standard columns.

        Raises:
            DatasetError: When the folder is missing, has the wrong layout, or holds no usable rows.
        """
        path = Path(root).expanduser()
        if not path.is_dir():
            raise DatasetError(
                f"Dataset folder {path} does not exist (expected {self.title}: {self.layout})."
            )
        index = finalize_index(self._load(path.resolve()))
        if index.empty:
            raise DatasetError(f"No {self.title} records found in {path} (expected {self.layout}).")
        index["source"] = self.source_name(path)
        index["source"] = index["source"].astype("string")
        return index

    def source_name(self, root: Path) -> str:
        """Return the value of the ``source`` column for a dataset in ``root``."""
        return self.name

    def sub_labels(self, root: str | os.PathLike[str]) -> pd.DataFrame | None:
        """Finer labels inside each class, or None when the layout has none (the default).

        Returns:
            One row per record and sub-label: ``record`` (the record's position in the dataset's metadata),
            ``label`` (its class, as in the index) and ``sub_label``. A record with several sub-labels has
            several rows.

        Raises:
            DatasetError: The metadata cannot be read.
        """
        return None


class ImageFolder(Adapter):
    """One folder per class, optionally under split folders; the generic fallback.

    Accepted layouts (``images/`` is optional)::

        ROOT/[images/]<class>/<file>.jpg
        ROOT/[images/]<train|val|test>/<class>/<file>.jpg

    A class folder named ``benign`` / ``malignant`` / ``non-neoplastic`` sets the risk group (the
    dermoscopy-melanoma layout).
    """

    name = "imagefolder"
    title = "Image folder"
    description = "Any folder of class sub-folders (one per label), optionally split into train/val/test."
    modality = "mixed"
    layout = "ROOT/[images/]<class>/*.jpg or ROOT/[images/]<train|val|test>/<class>/*.jpg"

    def _base(self, root: Path) -> Path:
        images = root / "images"
        return images if images.is_dir() and list_subfolders(images) else root

    def _class_folders(self, root: Path) -> list[tuple[str | None, Path]]:
        """Return (split or None, class folder) pairs."""
        base = self._base(root)
        subfolders = list_subfolders(base)
        split_dirs = [d for d in subfolders if d.name.lower() in SPLIT_ALIASES]
        if split_dirs and len(split_dirs) == len(subfolders):
            return [(SPLIT_ALIASES[s.name.lower()], c) for s in split_dirs for c in list_subfolders(s)]
        return [(None, c) for c in subfolders]

    def detect(self, root: Path) -> bool:
        try:
            folders = self._class_folders(root)
        except OSError:
            return False
        for _, folder in folders[:50]:
            with os.scandir(folder) as entries:
                if any(is_image_name(e.name) for e in entries):
                    return True
        return False

    def label_info(self, folder_name: str) -> tuple[str, str, str | None]:
        """Return (label, display name, risk group) for a class folder."""
        risk = label_tables.RISK_GROUP_FOLDERS.get(folder_name.lower())
        return folder_name, humanize(folder_name), risk

    def _load(self, root: Path) -> pd.DataFrame:
        try:
            folders = self._class_folders(root)
        except OSError as error:
            raise DatasetError(f"Cannot list {root}: {error}") from error
        if not folders:
            raise DatasetError(f"{root} has no class folders (expected {self.layout}).")
        base = self._base(root)
        parts: list[pd.DataFrame] = []
        for split, folder in folders:
            paths = list_images(folder)
            if not paths:
                continue
            label, display, risk = self.label_info(folder.name)
            rel = [os.path.relpath(p, base) for p in paths]
            parts.append(
                pd.DataFrame(
                    {
                        "image_path": paths,
                        "label": label,
                        "display_name": display,
                        "risk_group": risk,
                        # The image itself until near-duplicate grouping merges copies.
                        "group_id": [os.path.splitext(r)[0].replace(os.sep, "/") for r in rel],
                        "split": split,
                    }
                )
            )
        if not parts:
            raise DatasetError(f"The class folders in {base} hold no image files (expected {self.layout}).")
        return pd.concat(parts, ignore_index=True)

    def source_name(self, root: Path) -> str:
        return root.resolve().name or self.name


class DermNet(ImageFolder):
    """DermNet as distributed on Kaggle: ``train/`` and ``test/`` of 23 class folders."""

    name = "dermnet"
    title = "DermNet (23 classes)"
    description = (
        "Clinical photos from the DermNet atlas in 23 disease categories, split into train and test."
    )
    modality = "clinical"
    licence = "DermNet NZ image licence (non-commercial use)"
    homepage = "https://www.kaggle.com/datasets/shubhamgoel27/dermnet"
    layout = "ROOT/<train|test>/<one of 23 DermNet category folders>/*.jpg"

    _known: ClassVar[dict[str, str]] = {k.lower(): k for k in label_tables.DERMNET_FOLDERS}

    def detect(self, root: Path) -> bool:
        try:
            folders = self._class_folders(root)
        except OSError:
            return False
        if not folders or any(split is None for split, _ in folders):
            return False
        names = {folder.name.lower() for _, folder in folders}
        return len(names & self._known.keys()) >= max(1, len(names) // 2)

    def label_info(self, folder_name: str) -> tuple[str, str, str | None]:
        canonical = self._known.get(folder_name.lower())
        if canonical is None:
            return slugify(folder_name), humanize(folder_name), None
        info = label_tables.DERMNET_FOLDERS[canonical]
        return label_tables.dermnet_label(canonical), info.display_name, info.risk_group

    def source_name(self, root: Path) -> str:
        return self.name


class Fitzpatrick17k(Adapter):
    """Fitzpatrick17k: ``fitzpatrick17k.csv`` joined on ``md5hash`` with the image files present."""

    name = "fitzpatrick17k"
    title = "Fitzpatrick17k"
    description = (
        "Clinical photos of 114 skin conditions from two online atlases, each annotated with a Fitzpatrick "
        "skin type; built to measure performance across skin tones."
    )
    modality = "clinical"
    licence = "CC BY-NC-SA 3.0"
    citation = (
        "Groh M. et al. Evaluating Deep Neural Networks Trained on Clinical Images in Dermatology with the "
        "Fitzpatrick 17k Dataset. CVPR Workshops 2021."
    )
    homepage = "https://github.com/mattgroh/fitzpatrick17k"
    layout = "ROOT/fitzpatrick17k.csv + ROOT/images/[<label>/]<md5hash>.jpg"
    csv_name = "fitzpatrick17k.csv"
    required_columns = ("md5hash", "fitzpatrick_scale", "label", "three_partition_label")

    def detect(self, root: Path) -> bool:
        return (root / self.csv_name).is_file()

    @staticmethod
    def image_files(root: Path) -> dict[str, str]:
        """Map md5hash -> path for the images present (flat or in label folders)."""
        base = root / "images" if (root / "images").is_dir() else root
        return images_by_stem(base, max_depth=1)

    def _load(self, root: Path) -> pd.DataFrame:
        meta = _read_csv(root / self.csv_name, self.required_columns, optional=("url",))
        meta = meta.dropna(subset=["md5hash", "label"])
        files = self.image_files(root)
        text = meta["label"].str.strip()
        risk = meta["three_partition_label"].str.strip().str.lower()
        return pd.DataFrame(
            {
                "image_path": meta["md5hash"].map(files),
                "label": _map_unique(text, slugify),
                "display_name": _map_unique(text, humanize),
                "risk_group": risk.where(risk.isin(("benign", "malignant", "non-neoplastic"))),
                "group_id": meta["md5hash"],
                # -1 marks "unknown"; normalise_fitzpatrick turns anything outside 1-6 into <NA>.
                "fitzpatrick": meta["fitzpatrick_scale"],
            }
        )


class Ham10000(Adapter):
    """HAM10000: ``HAM10000_metadata.csv`` (or Dataverse ``.tab``) plus ``ISIC_*.jpg`` images below it."""

    name = "ham10000"
    title = "HAM10000"
    description = "Dermoscopy images of 7 pigmented-lesion classes from Vienna and Queensland."
    modality = "dermoscopy"
    licence = "CC BY-NC-SA 4.0"
    citation = (
        "Tschandl P., Rosendahl C., Kittler H. The HAM10000 dataset, a large collection of multi-source "
        "dermatoscopic images of common pigmented skin lesions. Sci Data 5, 180161 (2018)."
    )
    homepage = "https://doi.org/10.7910/DVN/DBW86T"
    layout = "ROOT/HAM10000_metadata.csv + ROOT/**/ISIC_*.jpg"
    metadata_names = ("HAM10000_metadata.csv", "HAM10000_metadata.tab", "HAM10000_metadata")
    required_columns = ("lesion_id", "image_id", "dx")
    optional_columns = ("age", "sex", "localization")

    def detect(self, root: Path) -> bool:
        return any((root / n).is_file() for n in self.metadata_names)

    def _load(self, root: Path) -> pd.DataFrame:
        meta = _read_csv(
            _first_existing(root, self.metadata_names), self.required_columns, self.optional_columns
        )
        files = images_by_stem(root)
        codes = meta["dx"].str.strip().str.lower()
        display, risk = _map_labels(codes, label_tables.HAM10000_LABELS)
        return pd.DataFrame(
            {
                "image_path": meta["image_id"].str.strip().map(files),
                "label": codes,
                "display_name": display,
                "risk_group": risk,
                "group_id": meta["lesion_id"].fillna(meta["image_id"]),
                "age": meta.get("age"),
                "sex": normalise_sex(meta["sex"]) if "sex" in meta else None,
                "body_site": normalise_body_site(meta["localization"]) if "localization" in meta else None,
            }
        )


class PadUfes20(Adapter):
    """PAD-UFES-20: ``metadata.csv`` plus ``PAT_*`` images (png as published; jpg accepted)."""

    name = "pad-ufes-20"
    title = "PAD-UFES-20"
    description = (
        "Smartphone photos of 6 skin-lesion classes with patient metadata, from Espírito Santo, Brazil."
    )
    modality = "clinical"
    licence = "CC BY 4.0"
    citation = (
        "Pacheco A.G.C. et al. PAD-UFES-20: a skin lesion dataset composed of patient data and clinical "
        "images collected from smartphones. Data in Brief 32, 106221 (2020)."
    )
    homepage = "https://data.mendeley.com/datasets/zr7vgbcyr2/1"
    layout = "ROOT/metadata.csv + ROOT/**/PAT_*.png|jpg"
    required_columns = ("patient_id", "img_id", "diagnostic")
    optional_columns = ("age", "gender", "fitspatrick", "region", "lesion_id")

    def detect(self, root: Path) -> bool:
        header = _csv_header(root / "metadata.csv")
        return "img_id" in header and "diagnostic" in header

    def _load(self, root: Path) -> pd.DataFrame:
        meta = _read_csv(root / "metadata.csv", self.required_columns, self.optional_columns)
        files = images_by_stem(root)
        # The csv names .png files; converted copies are .jpg, so match on the stem.
        stems = meta["img_id"].str.strip().str.replace(r"\.[A-Za-z0-9]+$", "", regex=True)
        codes = meta["diagnostic"].str.strip().str.upper()
        display, risk = _map_labels(codes, label_tables.PAD_UFES_20_LABELS)
        return pd.DataFrame(
            {
                "image_path": stems.map(files),
                "label": codes,
                "display_name": display,
                "risk_group": risk,
                "group_id": meta["patient_id"],
                "fitzpatrick": meta.get("fitspatrick"),
                "age": meta.get("age"),
                "sex": normalise_sex(meta["gender"]) if "gender" in meta else None,
                "body_site": normalise_body_site(meta["region"]) if "region" in meta else None,
            }
        )


class Ph2(Adapter):
    """PH2: ``metadata.csv`` (``image_id``, ``diagnosis``, dermoscopic criteria) + ``images/IMDnnn.jpg``.

    The lesion masks beside the images (``masks/``) belong to the segmentation task
    (:mod:`dermlib.segment.data`); this adapter indexes the photos only, one lesion each, labelled with
    PH2's diagnosis. With 160-200 photos it is a test set from another clinic and dermatoscope (Hospital
    Pedro Hispano, Portugal), not a training set for a classifier.
    """

    name = "ph2"
    title = "PH2"
    description = (
        "Dermoscopy photos of melanocytic lesions from Hospital Pedro Hispano, Portugal: common naevi, atypical "
        "naevi and melanomas, with expert lesion masks and dermoscopic criteria."
    )
    modality = "dermoscopy"
    licence = "Research use with citation"
    citation = (
        "Mendonca T. et al. PH2 - A dermoscopic image database for research and benchmarking. "
        "Proc. IEEE EMBC 2013, 5437-5440."
    )
    homepage = "https://www.fc.up.pt/addi/ph2%20database.html"
    layout = "ROOT/metadata.csv (image_id, diagnosis, ...) + ROOT/images/IMDnnn.jpg"
    required_columns = ("image_id", "diagnosis")

    def detect(self, root: Path) -> bool:
        header = _csv_header(root / "metadata.csv")
        return "image_id" in header and "diagnosis" in header and (root / "images").is_dir()

    def _load(self, root: Path) -> pd.DataFrame:
        meta = _read_csv(root / "metadata.csv", self.required_columns)
        meta = meta.dropna(subset=["image_id", "diagnosis"]).reset_index(drop=True)
        # Only images/: the masks in masks/ share the photos' stems.
        files = images_by_stem(root / "images", max_depth=0)
        codes = meta["diagnosis"].map(slugify)
        display, risk = _map_labels(codes, label_tables.PH2_LABELS)
        ids = meta["image_id"].str.strip()
        return pd.DataFrame(
            {
                "image_path": ids.map(files),
                "label": codes,
                "display_name": display,
                "risk_group": risk,
                "group_id": ids,  # one photo per lesion in PH2
            }
        )


class Isic2019(Adapter):
    """ISIC 2019 training set: one-hot ground-truth csv, metadata csv and ``ISIC_*.jpg`` images."""

    name = "isic2019"
    title = "ISIC 2019"
    description = "Dermoscopy images of 8 diagnostic classes (ISIC 2019 challenge training set)."
    modality = "dermoscopy"
    licence = "CC BY-NC 4.0"
    citation = (
        "Tschandl P. et al. (HAM10000), Codella N. et al. (ISIC 2017), Combalia M. et al. BCN20000: "
        "Dermoscopic lesions in the wild (2019)."
    )
    homepage = "https://challenge.isic-archive.com/data/#2019"
    layout = (
        "ROOT/ISIC_2019_Training_GroundTruth.csv + ROOT/ISIC_2019_Training_Metadata.csv + "
        "ROOT/ISIC_2019_Training_Input/*.jpg"
    )
    truth_name = "ISIC_2019_Training_GroundTruth.csv"
    metadata_name = "ISIC_2019_Training_Metadata.csv"

    def detect(self, root: Path) -> bool:
        return (root / self.truth_name).is_file()

    def _load(self, root: Path) -> pd.DataFrame:
        truth_path = root / self.truth_name
        classes = [c.upper() for c in label_tables.ISIC2019_LABELS]
        truth = _read_csv(truth_path, ("image", *classes), optional=("UNK",))
        one_hot_columns = [c for c in (*classes, "UNK") if c in truth]
        try:
            one_hot = truth[one_hot_columns].astype(float).to_numpy()
        except ValueError as error:
            raise DatasetError(f"{truth_path.name} has non-numeric class columns: {error}") from error
        if np.any(one_hot.sum(axis=1) == 0):
            bad = truth["image"][one_hot.sum(axis=1) == 0].head(3).tolist()
            raise DatasetError(f"{truth_path.name} has rows with no class set, e.g. {', '.join(bad)}.")
        codes = pd.Series(np.asarray(one_hot_columns)[one_hot.argmax(axis=1)], index=truth.index).str.lower()
        display, risk = _map_labels(codes, label_tables.ISIC2019_LABELS)
        frame = pd.DataFrame(
            {
                "image": truth["image"].str.strip(),
                "label": codes,
                "display_name": display,
                "risk_group": risk,
            }
        )
        meta_path = root / self.metadata_name
        if meta_path.is_file():
            meta = _read_csv(
                meta_path, ("image",), optional=("age_approx", "anatom_site_general", "lesion_id", "sex")
            )
            meta["image"] = meta["image"].str.strip()
            frame = frame.merge(meta, on="image", how="left", validate="one_to_one")
        files = images_by_stem(root)
        lesion = frame["lesion_id"] if "lesion_id" in frame else pd.Series(pd.NA, index=frame.index)
        frame["image_path"] = frame["image"].map(files)
        frame["group_id"] = lesion.fillna(frame["image"])
        frame["age"] = frame.get("age_approx")
        frame["sex"] = normalise_sex(frame["sex"]) if "sex" in frame else None
        frame["body_site"] = (
            normalise_body_site(frame["anatom_site_general"]) if "anatom_site_general" in frame else None
        )
        return frame


class DermNetNZ(Adapter):
    """DermNet NZ topic-page photos in 24 coarse categories: ``metadata.csv`` + ``images/<category>/<md5>.jpg``.

    Class ids are the ``category`` values; ``group_id`` is the near-duplicate group the csv gives, so a
    split keeps copies of one photo on one side. DermNet has no skin-type labels (its photos are mostly
    of light skin), so ``fitzpatrick`` is always missing. The older :class:`DermNet` adapter reads the
    Kaggle train/test layout instead.
    """

    name = "dermnet-nz"
    title = "DermNet NZ (24 categories)"
    description = (
        "Clinical photos from DermNet NZ's topic pages, merged into 24 common-condition categories (acne to "
        "vitiligo); near-duplicate groups given; no skin-type labels, mostly light skin."
    )
    modality = "clinical"
    licence = "DermNet NZ image licence: non-commercial research and teaching use only; credit dermnetnz.org"
    citation = "DermNet NZ, All about the skin (dermnetnz.org)."
    homepage = "https://dermnetnz.org"
    layout = "ROOT/metadata.csv (md5, category, dermnet_topic, group_id, ...) + ROOT/images/<category>/<md5>.jpg"
    required_columns = ("md5", "category", "group_id")
    optional_columns = ("dermnet_topic", "eczema_psoriasis", "width", "height")
    #: Photos also present in another set (Fitzpatrick17k), listed by md5.
    copies_file = "copies_in_other_sets.csv"
    sub_label_title = "DermNet topic"

    def detect(self, root: Path) -> bool:
        header = _csv_header(root / "metadata.csv")
        return "dermnet_topic" in header and "category" in header

    def metadata(self, root: str | os.PathLike[str]) -> pd.DataFrame:
        """The csv rows with an ``image_path`` column (absolute path, or None when the file is absent).

        Evaluation reads columns the index does not carry from here (``eczema_psoriasis``,
        ``dermnet_topic``).
        """
        root = Path(root).expanduser().resolve()
        meta = _read_csv(root / "metadata.csv", self.required_columns, self.optional_columns)
        meta = meta.dropna(subset=["md5", "category"]).reset_index(drop=True)
        base = root / "images" if (root / "images").is_dir() else root
        files = images_by_stem(base, max_depth=1)
        meta["image_path"] = meta["md5"].str.strip().map(files)
        return meta

    def sub_labels(self, root: str | os.PathLike[str]) -> pd.DataFrame | None:
        """The DermNet topic pages each photo was shown on (``dermnet_topic``, several joined by ``|``).

        A category groups several topics (eczema holds atopic, hand and discoid dermatitis, ...), so this is
        what the coarse label means. None when the csv has no ``dermnet_topic`` column.
        """
        meta = self.metadata(root)
        if "dermnet_topic" not in meta.columns:
            return None
        rows = pd.DataFrame({"record": np.arange(len(meta)),
                             "label": meta["category"].str.strip().str.lower(),
                             "sub_label": meta["dermnet_topic"].astype("string").str.split("|")})
        rows = rows.explode("sub_label")
        rows["sub_label"] = rows["sub_label"].astype("string").str.strip()
        return rows[rows["sub_label"].fillna("") != ""].reset_index(drop=True)

    def copies(self, root: str | os.PathLike[str]) -> set[str]:
        """md5s of the photos listed in ``copies_in_other_sets.csv`` (empty when there is no such file)."""
        path = Path(root).expanduser() / self.copies_file
        if not path.is_file():
            return set()
        return set(_read_csv(path, ("md5",))["md5"].dropna().str.strip())

    def _load(self, root: Path) -> pd.DataFrame:
        meta = self.metadata(root)
        codes = meta["category"].str.strip().str.lower()
        display, risk = _map_labels(codes, label_tables.DERMNET_NZ_CATEGORIES)
        return pd.DataFrame(
            {
                "image_path": meta["image_path"],
                "label": codes,
                "display_name": display,
                "risk_group": risk,
                # Photo ids are unique, but near copies share a group: that is what a split must keep together.
                "group_id": meta["group_id"].fillna(meta["md5"]),
            }
        )
