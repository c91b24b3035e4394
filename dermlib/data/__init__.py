"""Datasets on disk: adapters into one index table, near-duplicate grouping, downloads.

Public API::

    from dermlib.data import DATASETS, load_index, detect, discover
    index = load_index("fitzpatrick17k", "data/fitzpatrick17k")   # pandas DataFrame, INDEX_COLUMNS
    groups = near_duplicate_groups(index["image_path"].dropna().tolist())
"""

from __future__ import annotations

from dermlib.data.adapters import Adapter
from dermlib.data.duplicates import (
    DEFAULT_MAX_DISTANCE,
    compute_hashes,
    duplicate_pairs,
    near_duplicate_groups,
    with_duplicate_groups,
)
from dermlib.data.registry import DATASETS, detect, discover, get_adapter, load_index
from dermlib.data.schema import (
    INDEX_COLUMNS,
    RISK_GROUPS,
    SPLITS,
    finalize_index,
    summarize_index,
    validate_index,
)

__all__ = [
    "DATASETS",
    "DEFAULT_MAX_DISTANCE",
    "INDEX_COLUMNS",
    "RISK_GROUPS",
    "SPLITS",
    "Adapter",
    "compute_hashes",
    "detect",
    "discover",
    "duplicate_pairs",
    "finalize_index",
    "get_adapter",
    "load_index",
    "near_duplicate_groups",
    "summarize_index",
    "validate_index",
    "with_duplicate_groups",
]
