"""Figures for one prediction: top-k probabilities and risk groups."""

from __future__ import annotations

import plotly.graph_objects as go

from dermlib.inference import Prediction

RISK_COLORS = {"malignant": "#c0392b", "benign": "#2e86c1", "non-neoplastic": "#7d8b2b"}


def probability_chart(prediction: Prediction) -> go.Figure:
    """Horizontal bars of the top-k calibrated probabilities, coloured by risk group."""
    items = list(reversed(prediction.top_k))  # plotly draws the first bar at the bottom
    fig = go.Figure(
        go.Bar(
            x=[s.probability for s in items],
            y=[s.name for s in items],
            orientation="h",
            marker_color=[RISK_COLORS.get(s.risk_group, "#888888") for s in items],
            text=[f"{s.probability:.0%}" for s in items],
            textposition="auto",
            customdata=[s.risk_group for s in items],
            hovertemplate="%{y}: %{x:.1%} (%{customdata})<extra></extra>",
        )
    )
    fig.update_layout(
        title="Top diagnoses (calibrated probability)",
        xaxis={"range": [0, 1], "tickformat": ".0%", "title": "probability"},
        yaxis={"automargin": True},
        height=120 + 45 * len(items),
        margin={"l": 10, "r": 10, "t": 40, "b": 30},
    )
    return fig


def risk_chart(prediction: Prediction) -> go.Figure:
    """One stacked bar: the probability mass in each risk group."""
    fig = go.Figure()
    for group, value in prediction.risk.items():
        fig.add_trace(
            go.Bar(
                x=[value],
                y=["risk"],
                name=group,
                orientation="h",
                marker_color=RISK_COLORS.get(group, "#888888"),
                text=f"{group} {value:.0%}",
                hovertemplate=f"{group}: %{{x:.1%}}<extra></extra>",
            )
        )
    fig.update_layout(
        barmode="stack",
        xaxis={"range": [0, 1], "tickformat": ".0%"},
        yaxis={"visible": False},
        height=110,
        showlegend=False,
        margin={"l": 10, "r": 10, "t": 10, "b": 30},
    )
    return fig
