"""Plotly figures describing a dataset: classes, skin types, demographics, image statistics, embeddings.

Builders take plain counts (``Mapping[str, int]``) or an index table, so the same chart shows a dataset
on disk and the training-data summary stored in a model card.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from dermlib.data.explore import UNKNOWN, skin_type_labels
from dermlib.viz.palette import (
    FITZPATRICK_COLORS,
    FITZPATRICK_NAMES,
    GREY_DARK,
    PRIMARY,
    RISK_COLORS,
    SKIN_TYPE_COLORS,
    TICK_FONT_SIZE,
    category_styles,
    risk_order,
    skin_type_names,
    skin_type_order,
    style_figure,
)

__all__ = [
    "FITZPATRICK_COLORS",
    "FITZPATRICK_NAMES",
    "RISK_COLORS",
    "age_histogram_figure",
    "brightness_figure",
    "category_figure",
    "class_distribution_figure",
    "duplicate_distance_figure",
    "embedding_figure",
    "embedding_points",
    "fitzpatrick_by_class_figure",
    "fitzpatrick_counts",
    "fitzpatrick_distribution_figure",
    "image_size_figure",
]


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
        category_orders={"class": frame["class"].tolist(), "risk group": risk_order(frame["risk group"])},
        title=title,
        text="images",
    )
    figure.update_traces(textposition="outside", cliponaxis=False, textfont_size=TICK_FONT_SIZE)
    figure.update_layout(height=max(320, 24 * len(frame) + 150), yaxis_title=None, xaxis_title="images")
    return style_figure(figure, legend_title="risk group")


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
            name="images (share above each bar)",
            marker_color=[FITZPATRICK_COLORS[k] for k in order],
            marker_line={"color": GREY_DARK, "width": 0.5},
            text=frame["share"],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="type %{x}: %{y} images (%{text})<extra></extra>",
        )
    )
    figure.update_layout(title=title, xaxis_title="Fitzpatrick skin type", yaxis_title="images")
    return style_figure(figure)


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
            marker_line={"color": GREY_DARK, "width": 0.3},
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
        xaxis_title="share of images" if normalize else "images",
        height=max(320, 22 * len(table) + 170),
    )
    return style_figure(figure, legend_title="Fitzpatrick skin type")


def age_histogram_figure(ages: pd.Series, title: str = "Age") -> go.Figure:
    """Histogram of ages (missing values left out; their number in the title)."""
    known = pd.to_numeric(ages, errors="coerce").dropna().astype(float)
    missing = len(ages) - len(known)
    figure = px.histogram(x=known, nbins=min(40, max(5, known.nunique())), title=title)
    figure.update_traces(name="images", showlegend=True, marker_color=PRIMARY)
    if missing:
        figure.update_layout(title=f"{title} ({missing} without age)")
    figure.update_layout(xaxis_title="age (years)", yaxis_title="images", bargap=0.05)
    return style_figure(figure)


def category_figure(values: pd.Series, title: str, top: int = 25) -> go.Figure:
    """Horizontal bars of the most common values of a categorical column (``unknown`` for missing)."""
    counts = values.astype("string").fillna(UNKNOWN).value_counts().head(top).sort_values()
    figure = px.bar(x=counts.to_numpy(), y=counts.index.tolist(), orientation="h", title=title)
    figure.update_traces(name="images", showlegend=True, marker_color=PRIMARY)
    figure.update_layout(xaxis_title="images", yaxis_title=None, height=max(280, 24 * len(counts) + 150))
    return style_figure(figure)


def image_size_figure(stats: pd.DataFrame, title: str = "Image sizes (pixels)") -> go.Figure:
    """Scatter of image width against height."""
    figure = px.scatter(stats.dropna(subset=["width"]), x="width", y="height", opacity=0.5, title=title)
    figure.update_traces(name="one image", showlegend=True, marker_color=PRIMARY)
    figure.update_layout(xaxis_title="width (pixels)", yaxis_title="height (pixels)")
    return style_figure(figure)


def brightness_figure(stats: pd.DataFrame, by: str = "skin type", title: str | None = None) -> go.Figure:
    """Box plots of image brightness (mean grey level 0-255) per group.

    Args:
        stats: :func:`dermlib.data.explore.image_statistics` output with a column named ``by`` added
            (skin types may be stored values ``"1"``..``"6"``: they are written I..VI).
        by: Grouping column (``"skin type"`` is coloured in skin tones).
        title: Figure title.
    """
    frame = stats.dropna(subset=["brightness"]).copy()
    if by == "skin type":
        frame[by] = skin_type_names(frame[by])
        colors, order = SKIN_TYPE_COLORS, skin_type_order(frame[by])
    else:
        colors, order = None, sorted(set(frame[by]))
    figure = px.box(
        frame,
        x=by,
        y="brightness",
        color=by,
        color_discrete_map=colors,
        category_orders={by: order},
        title=title or f"Brightness by {by}",
    )
    figure.update_layout(yaxis_title="mean brightness (0-255)")
    return style_figure(figure, legend_title=by)


def duplicate_distance_figure(distances: pd.Series, max_distance: int) -> go.Figure:
    """Histogram of Hamming distances of the near-duplicate pairs found."""
    figure = px.histogram(x=distances, nbins=max_distance + 1, title="Near-duplicate pairs by hash distance")
    figure.update_traces(name="pairs of photos", showlegend=True, marker_color=PRIMARY)
    figure.update_layout(xaxis_title="bits differing (of 64)", yaxis_title="pairs", bargap=0.1)
    return style_figure(figure)


def embedding_points(rows: pd.DataFrame, coords: np.ndarray) -> pd.DataFrame:
    """The points of :func:`embedding_figure` for index ``rows`` projected to 2-D ``coords`` (one row each).

    Hover text names the class and the skin type (I..VI); ``row`` carries the index label for selection.
    """
    skin = skin_type_labels(rows["fitzpatrick"])
    names = pd.Series(skin_type_names(skin), index=rows.index)
    return pd.DataFrame(
        {
            "x": coords[:, 0],
            "y": coords[:, 1],
            "row": rows.index.to_numpy(),
            "hover": (rows["display_name"].astype(str) + " · skin type " + names).to_numpy(),
            "class": rows["display_name"].to_numpy(),
            "skin type": skin.to_numpy(),
            "risk group": rows["risk_group"].to_numpy(),
        }
    )


def embedding_figure(points: pd.DataFrame, color: str, title: str = "Embedding map") -> go.Figure:
    """Scatter of a 2-D embedding.

    Args:
        points: Columns ``x``, ``y``, ``row`` (index row, carried as customdata for click selection),
            ``hover`` (text) and the ``color`` column.
        color: Column to colour by (``"skin type"`` uses skin-tone colours and I..VI, ``"risk group"`` the
            risk colours).
        title: Figure title.
    """
    frame = points.copy()
    frame[color] = frame[color].astype("string").fillna(UNKNOWN).astype(str)
    symbols: dict[str, str] = {}
    if color == "skin type":
        frame[color] = skin_type_names(frame[color])
        palette, orders = SKIN_TYPE_COLORS, {color: skin_type_order(frame[color])}
    elif color == "risk group":
        palette, orders = RISK_COLORS, {color: risk_order(frame[color])}
    else:  # classes, sources: a colour and a shape each, so 21 or 38 classes stay apart
        names = sorted(frame[color].unique(), key=lambda v: (v == UNKNOWN, v))
        palette, symbols = category_styles(names)
        orders = {color: names}
    figure = px.scatter(
        frame,
        x="x",
        y="y",
        color=color,
        symbol=color if symbols else None,
        color_discrete_map=palette,
        symbol_map=symbols or None,
        category_orders=orders,
        custom_data=["row"],
        hover_name="hover",
        title=title,
    )
    figure.update_traces(marker={"size": 8, "line": {"width": 0.5, "color": GREY_DARK}})
    figure.update_layout(xaxis={"visible": False}, yaxis={"visible": False}, height=560)
    return style_figure(figure, legend_title=color, legend_side="right" if color == "class" else "top")
