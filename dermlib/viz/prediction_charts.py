"""Figures for one prediction: top-k probabilities and risk groups, in the palette's risk colours."""

from __future__ import annotations

import plotly.graph_objects as go

from dermlib.inference import Prediction
from dermlib.viz.palette import (
    RISK_COLORS,
    TICK_FONT_SIZE,
    UNKNOWN,
    WHITE,
    risk_color,
    risk_order,
    style_figure,
    text_color_on,
    wrap_label,
)

__all__ = ["MIN_INSIDE_LABEL", "MIN_INSIDE_NAME", "RISK_COLORS", "probability_chart", "risk_chart", "segment_text"]

#: Segments of the risk bar narrower than this share carry no text inside; the legend and hover name them.
MIN_INSIDE_LABEL = 0.06
#: Segments at least this wide carry the group's name beside its share.
MIN_INSIDE_NAME = 0.25


def segment_text(group: str, value: float) -> str:
    """The text inside a risk-bar segment: name and share, the share alone, or nothing for a sliver."""
    if value >= MIN_INSIDE_NAME:
        return f"{group} {value:.0%}"
    return f"{value:.0%}" if value >= MIN_INSIDE_LABEL else ""


def probability_chart(prediction: Prediction) -> go.Figure:
    """Horizontal bars of the top-k calibrated probabilities, coloured by risk group, one legend entry each."""
    items = list(reversed(prediction.top_k))  # plotly draws the first category at the bottom
    fig = go.Figure()
    for group in risk_order(s.risk_group or UNKNOWN for s in items):
        scores = [s for s in items if (s.risk_group or UNKNOWN) == group]
        fig.add_trace(
            go.Bar(
                x=[s.probability for s in scores],
                y=[wrap_label(s.name) for s in scores],
                orientation="h",
                name=group,
                marker_color=risk_color(group),
                text=[f"{s.probability:.0%}" for s in scores],
                textposition="outside",
                cliponaxis=False,
                textfont={"size": TICK_FONT_SIZE},
                hovertemplate=f"%{{y}}: %{{x:.1%}} ({group})<extra></extra>",
            )
        )
    fig.update_layout(
        title="Top diagnoses (calibrated probability)",
        barmode="stack",  # one bar per class: stacking keeps each centred on its row
        xaxis={"range": [0, 1.1], "tickformat": ".0%", "title": "probability", "tickvals": [0, 0.25, 0.5, 0.75, 1]},
        yaxis={"categoryorder": "array", "categoryarray": [wrap_label(s.name) for s in items]},
        height=200 + 45 * len(items),
    )
    return style_figure(fig, legend_title="risk group", legend_side="bottom")


def risk_chart(prediction: Prediction) -> go.Figure:
    """One stacked bar: the probability mass in each risk group, most serious group first.

    Every segment is named with its share in the legend and on hover; segments wide enough also carry
    the share inside, so a 3% malignant sliver is never left unlabelled.
    """
    fig = go.Figure()
    for group in risk_order(prediction.risk):
        value = prediction.risk[group]
        fig.add_trace(
            go.Bar(
                x=[value],
                y=["risk"],
                name=f"{group} {value:.0%}",
                orientation="h",
                marker_color=risk_color(group),
                marker_line={"color": WHITE, "width": 1},
                text=[segment_text(group, value)],
                textposition="inside",
                insidetextanchor="middle",
                textfont={"size": TICK_FONT_SIZE, "color": text_color_on(risk_color(group))},
                hovertemplate=f"{group}: %{{x:.1%}}<extra></extra>",
            )
        )
    fig.update_layout(
        barmode="stack",
        xaxis={"range": [0, 1], "tickformat": ".0%", "title": "share of the probability"},
        yaxis={"visible": False},
        height=190,
    )
    fig = style_figure(fig, legend_title="risk group")
    fig.update_layout(margin={"t": 50})  # no title: the legend row needs only its own height
    return fig
