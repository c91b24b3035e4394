"""Plotly figures and tables built from an evaluation report (:func:`dermlib.evaluate.evaluation_report`).

Each builder takes the report dict (as stored in a model card) and nothing else, so the Model page can
draw a model's evaluation without its dataset.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dermlib.evaluate.metrics import HEADLINE_KEYS, SKIN_TYPE_GROUPS

_METRIC_LABELS = {
    "top1_accuracy": "Top-1 accuracy",
    "top3_accuracy": "Top-3 accuracy",
    "balanced_accuracy": "Balanced accuracy",
    "macro_f1": "Macro-F1",
    "weighted_f1": "Weighted F1",
    "risk_group_accuracy": "Risk-group accuracy",
}
SKIN_TYPE_METRICS = tuple(k for k in HEADLINE_KEYS if k != "n")


def _layout(fig: go.Figure, title: str, **kwargs: Any) -> go.Figure:
    fig.update_layout(title=title, margin={"l": 10, "r": 10, "t": 50, "b": 10}, **kwargs)
    return fig


def per_class_table(report: dict[str, Any], class_names: dict[str, str] | None = None) -> pd.DataFrame:
    """Per-class precision, recall, F1, AUC and support as a table (one row per class).

    Args:
        report: Evaluation report.
        class_names: Optional display name per class id (e.g. from the model card).
    """
    names = class_names or {}
    rows = [
        {
            "class": names.get(c["class_id"], c["class_id"]),
            "risk group": c.get("risk_group"),
            "support": c.get("support"),
            "predicted": c.get("n_predicted"),
            "precision": c.get("precision"),
            "recall": c.get("recall"),
            "F1": c.get("f1"),
            "AUC": c.get("auc"),
        }
        for c in report.get("per_class") or []
    ]
    columns = ["class", "risk group", "support", "predicted", "precision", "recall", "F1", "AUC"]
    return pd.DataFrame(rows, columns=columns)


def confusion_matrix_figure(
    report: dict[str, Any], normalize: bool = True, class_names: dict[str, str] | None = None
) -> go.Figure:
    """Heat map of the confusion matrix (rows: true class, columns: predicted class).

    Args:
        report: Evaluation report.
        normalize: Divide each row by its support (so a row shows recall and where the misses went).
        class_names: Optional display name per class id.
    """
    cm = report.get("confusion_matrix") or {}
    ids = cm.get("labels") or []
    counts = np.asarray(cm.get("matrix") or [], dtype=np.float64).reshape(len(ids), len(ids))
    labels = [(class_names or {}).get(i, i) for i in ids]
    if normalize:
        support = counts.sum(axis=1, keepdims=True)
        z = np.divide(counts, support, out=np.zeros_like(counts), where=support > 0)
        text = [[f"{v:.2f}" for v in row] for row in z]
    else:
        z = counts
        text = [[f"{int(v)}" for v in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=labels,
            y=labels,
            text=text if len(ids) <= 25 else None,
            texttemplate="%{text}" if len(ids) <= 25 else None,
            colorscale="Blues",
            zmin=0,
            zmax=1 if normalize else None,
            customdata=counts,
            hovertemplate="true %{y}<br>predicted %{x}<br>value %{z:.3f}<br>count %{customdata:.0f}"
            "<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", title="true class")
    fig.update_xaxes(title="predicted class", tickangle=-45)
    title = "Confusion matrix" + (" (row-normalised)" if normalize else " (counts)")
    return _layout(fig, title, height=max(350, 28 * len(ids) + 200))


def reliability_figure(report: dict[str, Any], title: str = "Reliability diagram") -> go.Figure:
    """Reliability diagram: accuracy against mean confidence per bin, with the diagonal of perfection.

    Args:
        report: Anything with ``calibration.bins`` (and optionally ``calibration.ece``), such as a report
            from :func:`dermlib.evaluate.evaluation_report`.
        title: Chart title; the ECE is appended when known.
    """
    calibration = report.get("calibration") or {}
    bins = [b for b in calibration.get("bins") or [] if b.get("count")]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect", line={"dash": "dash", "color": "grey"})
    )
    fig.add_trace(
        go.Bar(
            x=[(b["lower"] + b["upper"]) / 2 for b in bins],
            y=[b["accuracy"] for b in bins],
            width=[b["upper"] - b["lower"] for b in bins],
            name="accuracy",
            customdata=[[b["count"], b["confidence"]] for b in bins],
            hovertemplate="confidence %{customdata[1]:.2f}<br>accuracy %{y:.2f}<br>n=%{customdata[0]}"
            "<extra></extra>",
            opacity=0.7,
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[b["confidence"] for b in bins],
            y=[b["accuracy"] for b in bins],
            mode="markers",
            name="mean confidence",
            marker={"size": [6 + 14 * np.sqrt(b["count"] / max(x["count"] for x in bins)) for b in bins]},
        )
    )
    ece = calibration.get("ece")
    title += f" (ECE {ece:.3f})" if ece is not None else ""
    fig.update_xaxes(range=[0, 1], title="confidence (top-1 probability)")
    fig.update_yaxes(range=[0, 1], title="accuracy")
    return _layout(fig, title, height=420)


def calibration_check_figure(report: dict[str, Any]) -> go.Figure | None:
    """Reliability diagram of a report's held-out calibration check (None when it has none)."""
    check = report.get("calibration_check") or {}
    if not check.get("bins"):
        return None
    return reliability_figure({"calibration": {"bins": check["bins"], "ece": check.get("ece_cross_fitted")}},
                              title="Validation + test, temperature cross-fitted")


def coverage_accuracy_figure(report: dict[str, Any]) -> go.Figure:
    """Accuracy of the most confident share of images against that share (coverage).

    Marks the operating point of the uncertainty thresholds when the report has one.
    """
    curve = report.get("coverage_accuracy") or []
    fig = go.Figure(
        go.Scatter(
            x=[p["coverage"] for p in curve],
            y=[p["accuracy"] for p in curve],
            mode="lines",
            name="accuracy of kept images",
            customdata=[p["threshold"] for p in curve],
            hovertemplate="coverage %{x:.0%}<br>accuracy %{y:.1%}<br>min top-1 prob %{customdata:.3f}"
            "<extra></extra>",
        )
    )
    selective = report.get("selective") or {}
    if selective.get("coverage") is not None and selective.get("accuracy") is not None:
        fig.add_trace(
            go.Scatter(
                x=[selective["coverage"]],
                y=[selective["accuracy"]],
                mode="markers",
                marker={"size": 12, "symbol": "star"},
                name="app's uncertainty threshold",
            )
        )
    fig.update_xaxes(range=[0, 1.01], title="coverage (share of images answered)", tickformat=".0%")
    fig.update_yaxes(title="accuracy", tickformat=".0%")
    return _layout(fig, "Coverage vs accuracy (abstaining on the least confident)", height=420)


def skin_type_table(report: dict[str, Any]) -> pd.DataFrame:
    """Headline metrics per Fitzpatrick group (rows I-II, III-IV, V-VI); empty without skin types."""
    by_skin = report.get("by_skin_type") or {}
    groups = by_skin.get("groups") or {}
    rows = []
    for name in SKIN_TYPE_GROUPS:
        g = groups.get(name) or {"n": 0}
        values = {_METRIC_LABELS[k]: g.get(k) for k in SKIN_TYPE_METRICS}
        rows.append({"skin type": name, "n": g.get("n", 0)} | values)
    return pd.DataFrame(rows) if groups else pd.DataFrame(columns=["skin type", "n"])


def skin_type_figure(
    report: dict[str, Any],
    metrics: tuple[str, ...] = ("top1_accuracy", "balanced_accuracy", "risk_group_accuracy"),
) -> go.Figure:
    """Grouped bars of chosen headline metrics per Fitzpatrick group, labelled with each group's n."""
    by_skin = report.get("by_skin_type") or {}
    groups = by_skin.get("groups") or {}
    x = [f"{name}<br>n={(groups.get(name) or {}).get('n', 0)}" for name in SKIN_TYPE_GROUPS]
    fig = go.Figure()
    for key in metrics:
        values = [(groups.get(name) or {}).get(key) for name in SKIN_TYPE_GROUPS]
        fig.add_trace(
            go.Bar(
                x=x,
                y=values,
                name=_METRIC_LABELS.get(key, key),
                text=[f"{v:.0%}" if v is not None else "no data" for v in values],
                textposition="outside",
            )
        )
    # Error bars on top-1 accuracy: small groups must look as uncertain as they are.
    if "top1_accuracy" in metrics:
        cis = [(groups.get(name) or {}).get("top1_accuracy_ci95") or [] for name in SKIN_TYPE_GROUPS]
        tops = [(groups.get(name) or {}).get("top1_accuracy") for name in SKIN_TYPE_GROUPS]
        upper = [ci[1] - t if len(ci) == 2 and t is not None else 0 for ci, t in zip(cis, tops, strict=True)]
        lower = [t - ci[0] if len(ci) == 2 and t is not None else 0 for ci, t in zip(cis, tops, strict=True)]
        fig.data[list(metrics).index("top1_accuracy")].error_y = {
            "type": "data",
            "array": upper,
            "arrayminus": lower,
        }
    unknown = by_skin.get("n_unknown")
    title = "By Fitzpatrick skin type" + (f" (skin type unknown: {unknown})" if unknown else "")
    fig.update_yaxes(range=[0, 1.1], tickformat=".0%")
    return _layout(fig, title, barmode="group", height=420)


def auc_figure(report: dict[str, Any], class_names: dict[str, str] | None = None) -> go.Figure:
    """Horizontal bars of one-vs-rest ROC-AUC per class (classes absent from the test set left out)."""
    roc = report.get("roc_auc") or {}
    items = [(k, v) for k, v in (roc.get("per_class") or {}).items() if v is not None]
    items.sort(key=lambda kv: kv[1])
    fig = go.Figure(
        go.Bar(
            x=[v for _, v in items],
            y=[(class_names or {}).get(k, k) for k, _ in items],
            orientation="h",
            text=[f"{v:.3f}" for _, v in items],
            textposition="auto",
        )
    )
    macro = roc.get("macro")
    if macro is not None:
        fig.add_vline(x=macro, line_dash="dash", annotation_text=f"macro {macro:.3f}")
    fig.add_vline(x=0.5, line_dash="dot", line_color="grey")
    fig.update_xaxes(range=[0, 1], title="ROC-AUC (one vs rest)")
    return _layout(fig, "ROC-AUC per class", height=max(300, 24 * len(items) + 120))
