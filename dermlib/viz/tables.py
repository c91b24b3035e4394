"""Tables written for people: numbers rounded, missing values as a dash, skin types in Roman numerals.

No Streamlit here; pages pass the frames to ``st.table`` or ``st.dataframe``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from dermlib.viz.palette import skin_type_name, skin_type_order

#: What a table shows where a value is missing (never "None" or "nan").
MISSING = "–"


def _cell(value: Any, decimals: int) -> Any:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return MISSING
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return f"{value:.{decimals}f}"
    return value


def display_table(frame: pd.DataFrame, decimals: int = 3) -> pd.DataFrame:
    """A copy of ``frame`` ready to show: floats with ``decimals`` places, missing values as :data:`MISSING`.

    Integer columns keep their integers, so a count never reads "375.000".
    """
    out = frame.copy()
    for column in out.columns:
        out[column] = [_cell(v, decimals) for v in out[column].tolist()]
        if out[column].map(lambda v: isinstance(v, str)).any():
            out[column] = out[column].astype(str)
    return out


def count_table(name: str, counts: Mapping[str, Any], class_names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One of a model card's training-data count mappings as a two-column table.

    Args:
        name: The mapping's name (``"fitzpatrick counts"``, ``"class counts"``, ...): skin-type counts are
            written I..VI in that order, class counts under the classes' display names.
        counts: key -> number of images.
        class_names: Class id -> display name.

    Returns:
        Columns ``""`` (the key as a person reads it) and ``"images"``.
    """
    items = [(str(k), v) for k, v in counts.items()]
    if "fitzpatrick" in name or "skin type" in name:
        named = {skin_type_name(k): v for k, v in items}
        keys = skin_type_order(named)
        items = [(k, named[k]) for k in keys]
    elif class_names:
        items = [(class_names.get(k, k), v) for k, v in items]
    return pd.DataFrame({"": [k for k, _ in items], "images": [v for _, v in items]})
