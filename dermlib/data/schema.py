"""The index table every dataset adapter returns.

One row per image (or per metadata-only record when the image is not on disk). Every adapter ends with
:func:`finalize_index` so that all datasets share the same columns, order and dtypes and can be
concatenated, filtered and charted by the same code.

Columns:

* ``image_path`` (object): absolute path as ``str``, or ``None`` when only metadata is present.
* ``label`` (string): the dataset's own label (a slug for Fitzpatrick17k and DermNet, a code for
  HAM10000 / ISIC 2019 / PAD-UFES-20, the folder name for an image folder).
* ``display_name`` (string): the label written for a person.
* ``risk_group`` (string): ``benign``, ``malignant``, ``non-neoplastic`` or ``<NA>``.
* ``group_id`` (string): what must stay on one side of a split (lesion, patient, or the image itself until
  near-duplicate grouping refines it).
* ``fitzpatrick`` (Int64): Fitzpatrick skin type 1-6 or ``<NA>``.
* ``age`` (Float64), ``sex`` (string: ``female`` / ``male``), ``body_site`` (string).
* ``source`` (string): the dataset name.
* ``split`` (string): ``train`` / ``val`` / ``test`` or ``<NA>`` when the dataset has no official split.
"""

from __future__ import annotations

import pandas as pd

INDEX_COLUMNS: tuple[str, ...] = (
    "image_path",
    "label",
    "display_name",
    "risk_group",
    "group_id",
    "fitzpatrick",
    "age",
    "sex",
    "body_site",
    "source",
    "split",
)

RISK_GROUPS: tuple[str, ...] = ("benign", "malignant", "non-neoplastic")
SPLITS: tuple[str, ...] = ("train", "val", "test")
FITZPATRICK_TYPES: tuple[int, ...] = (1, 2, 3, 4, 5, 6)

_STRING_COLUMNS = ("label", "display_name", "risk_group", "group_id", "sex", "body_site", "source", "split")

# Folder names people use for splits, mapped onto the three split names of the index.
SPLIT_ALIASES: dict[str, str] = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}

_SEX_ALIASES = {"female": "female", "f": "female", "male": "male", "m": "male"}


def _clean_text(values: pd.Series, unknown: tuple[str, ...] = ("", "unknown", "nan")) -> pd.Series:
    """Strip and lower-case free text, mapping placeholders such as ``unknown`` to ``<NA>``."""
    out = values.astype("string").str.strip().str.lower()
    return out.mask(out.isin(unknown))


def normalise_sex(values: pd.Series) -> pd.Series:
    """Map the sex/gender spellings of the datasets onto ``female`` / ``male`` / ``<NA>``."""
    return _clean_text(values).map(_SEX_ALIASES, na_action="ignore").astype("string")


def normalise_body_site(values: pd.Series) -> pd.Series:
    """Lower-case body sites, with ``unknown`` and blanks as ``<NA>``."""
    return _clean_text(values).str.replace("_", " ", regex=False)


def normalise_fitzpatrick(values: pd.Series) -> pd.Series:
    """Return Fitzpatrick types as ``Int64`` 1-6; anything else (-1, 0, NaN, text) becomes ``<NA>``."""
    numeric = pd.to_numeric(values, errors="coerce")
    numeric = numeric.where(numeric.isin(FITZPATRICK_TYPES))
    return numeric.astype("Int64")


def empty_index() -> pd.DataFrame:
    """Return an index with the standard columns and no rows."""
    return finalize_index(pd.DataFrame({c: [] for c in INDEX_COLUMNS}))


def finalize_index(frame: pd.DataFrame) -> pd.DataFrame:
    """Give an adapter's table the standard columns, order and dtypes.

    Missing columns are added as all-missing; extra columns are dropped so every dataset concatenates.

    Args:
        frame: A table holding some or all of :data:`INDEX_COLUMNS`.

    Returns:
        A new DataFrame with exactly :data:`INDEX_COLUMNS`, a fresh RangeIndex and the documented dtypes.
    """
    n = len(frame)
    out = pd.DataFrame(index=pd.RangeIndex(n))
    for column in INDEX_COLUMNS:
        values = frame[column].to_numpy(dtype=object) if column in frame else [None] * n
        series = pd.Series(values, index=out.index, dtype=object)
        if column == "image_path":
            # None (not NaN/NA) so callers can write `if path is None` and open() the rest.
            out[column] = series.where(series.notna(), None).astype(object)
        elif column == "fitzpatrick":
            out[column] = normalise_fitzpatrick(series)
        elif column == "age":
            out[column] = pd.to_numeric(series, errors="coerce").astype("Float64")
        else:
            out[column] = series.astype("string")
    if "image_path" in out:
        out["image_path"] = out["image_path"].astype(object)
    return out


def summarize_index(index: pd.DataFrame) -> dict[str, object]:
    """Summarise an index the way model cards store it (``training["data_summary"]``).

    Args:
        index: A table from an adapter.

    Returns:
        ``{"n_images", "n_records", "class_counts", "fitzpatrick_counts", "risk_group_counts",
        "split_counts"}`` with plain ``int``/``str`` keys and values (JSON-ready). Counts are over rows with
        an image on disk; ``n_records`` counts metadata-only rows too. Unknown skin type counts as
        ``"unknown"``.
    """
    with_images = index[index["image_path"].notna()]

    def counts(series: pd.Series) -> dict[str, int]:
        filled = series.astype("string").fillna("unknown")
        return {str(k): int(v) for k, v in filled.value_counts().sort_index().items()}

    return {
        "n_images": len(with_images),
        "n_records": len(index),
        "class_counts": counts(with_images["label"]),
        "fitzpatrick_counts": counts(with_images["fitzpatrick"]),
        "risk_group_counts": counts(with_images["risk_group"]),
        "split_counts": counts(with_images["split"]),
    }


def validate_index(index: pd.DataFrame) -> None:
    """Check that a table follows the index schema (columns, dtypes, value sets).

    Args:
        index: A table that claims to be a dataset index.

    Raises:
        DatasetError: Naming the first problem found.
    """
    from dermlib.errors import DatasetError

    if tuple(index.columns) != INDEX_COLUMNS:
        raise DatasetError(f"Index columns are {list(index.columns)}, expected {list(INDEX_COLUMNS)}.")
    expected = {"fitzpatrick": "Int64", "age": "Float64", "image_path": "object"}
    for column, dtype in expected.items():
        if str(index[column].dtype) != dtype:
            raise DatasetError(f"Index column {column} has dtype {index[column].dtype}, expected {dtype}.")
    checks = {
        "risk_group": set(RISK_GROUPS),
        "split": set(SPLITS),
        "fitzpatrick": set(FITZPATRICK_TYPES),
        "sex": {"female", "male"},
    }
    for column, allowed in checks.items():
        unexpected = set(index[column].dropna()) - allowed
        if unexpected:
            raise DatasetError(f"Index column {column} has unexpected values {sorted(map(str, unexpected))}.")
    paths = index["image_path"]
    bad = paths[paths.notna() & ~paths.map(lambda p: isinstance(p, str) and p.startswith("/"))]
    if len(bad):
        raise DatasetError(f"image_path must be absolute str or None, e.g. not {bad.iloc[0]!r}.")
    if index["label"].isna().any() or index["group_id"].isna().any():
        raise DatasetError("Every index row needs a label and a group_id.")
