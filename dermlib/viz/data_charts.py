"""Plotly figures describing a dataset: classes, skin types, demographics, image statistics, embeddings.

Builders take plain counts (``Mapping[str, int]``) or an index table, so the same chart shows a dataset
on disk and the training-data summary stored in a model card.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from dermlib.data.explore import UNKNOWN, skin_type_labels

# Approximate skin tones of Fitzpatrick types I-VI, so the chart reads at a glance; grey for unknown.
FITZPATRICK_COLORS: dict[str, str] = {
    "1": "#f6d5bd",
    "2": "#e9b894",
    "3": "#cf9a6c",
    "4": "#a5714a",
    "5": "#77492c",
    "6": "#45291a",
    UNKNOWN: "#b0b0b0",
}
FITZPATRICK_NAMES: dict[str, str] = {
    "1": "I",
    "2": "II",
    "3": "III",
    "4": "IV",
    "5": "V",
    "6": "VI",
    UNKNOWN: "unknown",
}
RISK_COLORS: dict[str, str] = {
    "malignant": "#c0392b",
    "benign": "#2e8b57",
    "non-neoplastic": "#2f6db5",
    UNKNOWN: "#9e9e9e",
}
_LAYOUT = {"margin": {"l": 10, "r": 10, "t": 50, "b": 10}, "template": "plotly_white"}


def _counts(values: Mapping[str, int] | pd.Series) -> pd.Series:
    series = pd.Series(dict(values), dtype="int64") if isinstance(values, Mapping) else values.astype("int64")
    series.index = series.index.map(str)
    return series


def class_distribution_figure(
    counts: Mapping[str, int] | pd.Series,
    risk_groups: Mapping[str, str] | None = None,
    display_names: Mapping[str, str] | None = None,
    title: str = "Images per class",
) -> go.Figure:
    """Horizontal bars of images per class, largest first, coloured by risk group when known.

    Args:
        counts: label -> number of images.
        risk_groups: label -> benign / malignant / non-neoplastic.
        display_names: label -> readable name.
        title: Figure title.
    """
    series = _counts(counts).sort_values()
    frame = pd.DataFrame({"label": series.index, "images": series.to_numpy()})
    frame["class"] = frame["label"].map(lambda v: (display_names or {}).get(v, v))
    frame["risk group"] = frame["label"].map(lambda v: (risk_groups or {}).get(v) or UNKNOWN)
    figure = px.bar(
        frame,
        x="images",
        y="class",
        orientation="h",
        color="risk group",
        color_discrete_map=RISK_COLORS,
        category_orders={"class": frame["class"].tolist()},
        title=title,
        text="images",
    )
    figure.update_layout(height=max(300, 24 * len(frame) + 120), yaxis_title=None, **_LAYOUT)
    return figure


def fitzpatrick_counts(index: pd.DataFrame) -> pd.Series:
    """Images per Fitzpatrick type (text ``"1"``..``"6"``, ``"unknown"``) among rows with an image."""
    rows = index[index["image_path"].notna()]
    return skin_type_labels(rows["fitzpatrick"]).value_counts()


def fitzpatrick_distribution_figure(
    counts: Mapping[str, int] | pd.Series, title: str = "Fitzpatrick skin types"
) -> go.Figure:
    """Bars of images per Fitzpatrick skin type, I to VI then unknown, in skin-tone colours."""
    series = _counts(counts)
    order = [k for k in FITZPATRICK_NAMES if k in series.index]
    frame = pd.DataFrame({"type": [FITZPATRICK_NAMES[k] for k in order], "images": series[order].to_numpy()})
    total = frame["images"].sum()
    frame["share"] = (frame["images"] / total).map("{:.0%}".format) if total else "0%"
    figure = go.Figure(
        go.Bar(
            x=frame["type"],
            y=frame["images"],
            marker_color=[FITZPATRICK_COLORS[k] for k in order],
            marker_line={"color": "#555", "width": 0.5},
            text=frame["share"],
            textposition="outside",
            hovertemplate="type %{x}: %{y} images (%{text})<extra></extra>",
        )
    )
    figure.update_layout(title=title, xaxis_title="Fitzpatrick type", yaxis_title="images", **_LAYOUT)
    return figure


def fitzpatrick_by_class_figure(
    index: pd.DataFrame, *, normalize: bool = True, title: str | None = None
) -> go.Figure:
    """Stacked bars: for each class, how its images spread over skin types.

    Args:
        index: A dataset index (rows with images count).
        normalize: Show shares (each bar sums to 100%) instead of counts.
        title: Figure title.
    """
    rows = index[index["image_path"].notna()]
    table = pd.crosstab(rows["display_name"], skin_type_labels(rows["fitzpatrick"]))
    order = [k for k in FITZPATRICK_NAMES if k in table.columns]
    table = table[order]
    if normalize and len(table):
        table = table.div(table.sum(axis=1), axis=0)
    # Classes with the darkest-skin coverage first, so the gap is visible at the top.
    dark = [k for k in ("5", "6") if k in table.columns]
    table = (
        table.assign(_dark=table[dark].sum(axis=1) if dark else 0).sort_values("_dark").drop(columns="_dark")
    )
    figure = go.Figure()
    for key in order:
        figure.add_bar(
            y=table.index,
            x=table[key],
            name=FITZPATRICK_NAMES[key],
            orientation="h",
            marker_color=FITZPATRICK_COLORS[key],
            hovertemplate="%{y}<br>type "
            + FITZPATRICK_NAMES[key]
            + ": %{x"
            + (":.0%" if normalize else "")
            + "}"
            "<extra></extra>",
        )
    figure.update_layout(
        barmode="stack",
        title=title or ("Skin-type mix per class" + (" (share)" if normalize else "")),
        xaxis={"tickformat": ".0%"} if normalize else {},
        legend_title_text="Fitzpatrick",
        height=max(300, 22 * len(table) + 140),
        **_LAYOUT,
    )
    return figure


def age_histogram_figure(ages: pd.Series, title: str = "Age") -> go.Figure:
    """Histogram of ages (missing values left out; their number in the title)."""
    known = pd.to_numeric(ages, errors="coerce").dropna().astype(float)
    missing = len(ages) - len(known)
    figure = px.histogram(x=known, nbins=min(40, max(5, known.nunique())), title=title)
    if missing:
        figure.update_layout(title=f"{title} ({missing} without age)")
    figure.update_layout(xaxis_title="age (years)", yaxis_title="images", bargap=0.05, **_LAYOUT)
    return figure


def category_figure(values: pd.Series, title: str, top: int = 25) -> go.Figure:
    """Horizontal bars of the most common values of a categorical column (``unknown`` for missing)."""
    counts = values.astype("string").fillna(UNKNOWN).value_counts().head(top).sort_values()
    figure = px.bar(x=counts.to_numpy(), y=counts.index.tolist(), orientation="h", title=title)
    figure.update_layout(
        xaxis_title="images", yaxis_title=None, height=max(260, 24 * len(counts) + 120), **_LAYOUT
    )
    return figure


def image_size_figure(stats: pd.DataFrame, title: str = "Image sizes (pixels)") -> go.Figure:
    """Scatter of image width against height."""
    figure = px.scatter(stats.dropna(subset=["width"]), x="width", y="height", opacity=0.5, title=title)
    figure.update_layout(**_LAYOUT)
    return figure


def brightness_figure(stats: pd.DataFrame, by: str = "skin type", title: str | None = None) -> go.Figure:
    """Box plots of image brightness (mean grey level 0-255) per group.

    Args:
        stats: :func:`dermlib.data.explore.image_statistics` output with a column named ``by`` added.
        by: Grouping column (``"skin type"`` is coloured in skin tones).
        title: Figure title.
    """
    frame = stats.dropna(subset=["brightness"])
    colors = FITZPATRICK_COLORS if by == "skin type" else None
    order = (
        [k for k in FITZPATRICK_NAMES if k in set(frame[by])] if by == "skin type" else sorted(set(frame[by]))
    )
    figure = px.box(
        frame,
        x=by,
        y="brightness",
        color=by,
        color_discrete_map=colors,
        category_orders={by: order},
        title=title or f"Brightness by {by}",
    )
    figure.update_layout(showlegend=False, yaxis_title="mean brightness (0-255)", **_LAYOUT)
    return figure


def duplicate_distance_figure(distances: pd.Series, max_distance: int) -> go.Figure:
    """Histogram of Hamming distances of the near-duplicate pairs found."""
    figure = px.histogram(x=distances, nbins=max_distance + 1, title="Near-duplicate pairs by hash distance")
    figure.update_layout(xaxis_title="bits differing (of 64)", yaxis_title="pairs", bargap=0.1, **_LAYOUT)
    return figure


def embedding_figure(points: pd.DataFrame, color: str, title: str = "Embedding map") -> go.Figure:
    """Scatter of a 2-D embedding.

    Args:
        points: Columns ``x``, ``y``, ``row`` (index row, carried as customdata for click selection),
            ``hover`` (text) and the ``color`` column.
        color: Column to colour by (``"skin type"`` uses skin-tone colours, ``"risk group"`` risk colours).
        title: Figure title.
    """
    palette = {"skin type": FITZPATRICK_COLORS, "risk group": RISK_COLORS}.get(color)
    frame = points.copy()
    frame[color] = frame[color].astype("string").fillna(UNKNOWN).astype(str)
    orders = {color: [k for k in FITZPATRICK_NAMES if k in set(frame[color])]} if color == "skin type" else {}
    figure = px.scatter(
        frame,
        x="x",
        y="y",
        color=color,
        color_discrete_map=palette,
        category_orders=orders,
        custom_data=["row"],
        hover_name="hover",
        title=title,
    )
    figure.update_traces(marker={"size": 8, "line": {"width": 0.5, "color": "#333"}})
    figure.update_layout(xaxis={"visible": False}, yaxis={"visible": False}, height=560, **_LAYOUT)
    return figure
