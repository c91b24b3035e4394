"""Plotly figure of a model's stored scope check (the card's ``scope`` section); no Streamlit here."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from dermlib.viz.palette import GREY, HIGHLIGHT, PRIMARY, style_figure


def scope_roc_figure(section: dict[str, Any]) -> go.Figure | None:
    """ROC curve of the shipped score on the report half (test photos against natural photos), with the
    operating point; None when the section holds no curve."""
    rep = (section or {}).get("report") or {}
    roc, point = rep.get("roc_natural"), rep.get("operating_point")
    if not roc or not roc.get("fpr"):
        return None
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=roc["fpr"], y=roc["tpr"], mode="lines", name=f"{section.get('score')} score",
                             line={"color": PRIMARY, "width": 2.5}))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"color": GREY, "dash": "dot"}))
    if point:
        fig.add_trace(go.Scatter(x=[point["fpr"]], y=[point["tpr"]], mode="markers", name="operating point",
                                 marker={"color": HIGHLIGHT, "size": 11, "symbol": "diamond"}))
    auc = rep.get("auroc_natural")
    fig.update_layout(
        title=f"Out-of-scope score: test photos vs natural photos (AUROC {auc:.3f})" if auc else "Out-of-scope score",
        xaxis_title="in-scope test photos refused", yaxis_title="natural photos refused",
        xaxis={"range": [0, 1]}, yaxis={"range": [0, 1.02]}, height=400,
    )
    return style_figure(fig)
