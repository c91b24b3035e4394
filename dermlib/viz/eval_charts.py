"""Plotly figures and tables built from an evaluation report (:func:`dermlib.evaluate.evaluation_report`).

Each builder takes the report dict (as stored in a model card) and nothing else, so the Model page can
draw a model's evaluation without its dataset.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dermlib.evaluate.metrics import HEADLINE_KEYS, SKIN_TYPE_GROUPS, headline_metrics
from dermlib.viz.palette import (
    GREY,
    HIGHLIGHT,
    METRIC_COLORS,
    PRIMARY,
    SEQUENTIAL_SCALE,
    TICK_FONT_SIZE,
    style_figure,
    text_color_on,
    wrap_label,
)

_METRIC_LABELS = {
    "top1_accuracy": "Top-1 accuracy",
    "top3_accuracy": "Top-3 accuracy",
    "balanced_accuracy": "Balanced accuracy",
    "macro_f1": "Macro-F1",
    "weighted_f1": "Weighted F1",
    "risk_group_accuracy": "Risk-group accuracy",
}
SKIN_TYPE_METRICS = tuple(k for k in HEADLINE_KEYS if k != "n")
MAX_CELL_TEXT = 12  # confusion matrices of more classes show their numbers on hover only


def _layout(fig: go.Figure, title: str, legend: bool = True, legend_side: str = "top", **kwargs: Any) -> go.Figure:
    fig.update_layout(title=title, **kwargs)
    return style_figure(fig, legend=legend, legend_side=legend_side)


def n_classes(report: dict[str, Any]) -> int:
    """How many classes the evaluated model has (0 when the report does not say)."""
    return int(report.get("n_classes") or len(report.get("class_ids") or report.get("per_class") or []))


def is_two_class(report: dict[str, Any]) -> bool:
    """True for a two-class model (e.g. benign vs malignant), which gets its own views on the Model page."""
    return n_classes(report) == 2


def _redundant_metrics(report: dict[str, Any]) -> set[str]:
    """Metrics that say nothing for this model: top-3 with three classes or fewer (always 100%), risk-group
    accuracy when every class is its own risk group (it equals top-1 accuracy)."""
    out = set()
    k = n_classes(report)
    if k and k <= 3:
        out.add("top3_accuracy")
    groups = report.get("risk_groups") or [c.get("risk_group") for c in report.get("per_class") or []]
    if k and len(set(groups)) == k:
        out.add("risk_group_accuracy")
    return out


def headline_tiles(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(label, formatted value, help text) of the headline numbers worth showing for this model.

    Top-3 accuracy is left out for models with three classes or fewer, risk-group accuracy where it equals
    top-1 accuracy; a two-class model gets its ROC-AUC instead. Percentages to one decimal, ECE and AUC to
    three places, a missing value as "n/a".
    """
    hidden = {_METRIC_LABELS[k] for k in _redundant_metrics(report)}
    rows = [r for r in headline_metrics(report) if r[0] not in hidden]
    if is_two_class(report):
        auc = ((report.get("risk_group") or {}).get("malignant") or {}).get("auc")
        auc = auc if auc is not None else (report.get("roc_auc") or {}).get("macro")
        rows.append(("ROC-AUC", auc, "Chance that a random positive image scores above a random negative one."))
    return [
        (label, "n/a" if v is None else f"{v:.3f}" if label in ("ECE", "ROC-AUC") else f"{v:.1%}", help_text)
        for label, v, help_text in rows
    ]


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

    Both axes get ``automargin`` and the figure grows with the number of classes, so no class name is cut.

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
            text=text if len(ids) <= MAX_CELL_TEXT else None,  # more cells: the numbers would overlap
            texttemplate="%{text}" if len(ids) <= MAX_CELL_TEXT else None,
            textfont={"size": TICK_FONT_SIZE},
            colorscale=SEQUENTIAL_SCALE,
            zmin=0,
            zmax=1 if normalize else None,
            customdata=counts,
            colorbar={"title": {"text": "share of the row" if normalize else "images", "side": "right"},
                      "thickness": 14},
            hovertemplate="true %{y}<br>predicted %{x}<br>value %{z:.3f}<br>count %{customdata:.0f}"
            "<extra></extra>",
        )
    )
    # dtick 1: plotly otherwise labels every other class of a crowded axis.
    fig.update_yaxes(autorange="reversed", title="true class", dtick=1)
    many = len(ids) > MAX_CELL_TEXT
    fig.update_xaxes(title="predicted class", tickangle=-90 if many else -45, dtick=1)  # upright labels cannot overlap
    title = "Confusion matrix" + (" (row-normalised)" if normalize else " (counts)")
    longest = max((len(str(label)) for label in labels), default=0)
    # The rotated labels' height (about 7 px a character upright, 5 at 45 degrees) is added to the figure,
    # so automargin does not squeeze the matrix.
    return _layout(fig, title, legend=False, height=max(380, 28 * len(ids) + 160 + (7 if many else 5) * longest))


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
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect", line={"dash": "dash", "color": GREY})
    )
    fig.add_trace(
        go.Bar(
            x=[(b["lower"] + b["upper"]) / 2 for b in bins],
            y=[b["accuracy"] for b in bins],
            width=[b["upper"] - b["lower"] for b in bins],
            name="accuracy",
            marker_color=METRIC_COLORS[0],
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
            name="mean confidence (size: images)",
            marker={
                "color": METRIC_COLORS[1],
                "size": [6 + 14 * np.sqrt(b["count"] / max(x["count"] for x in bins)) for b in bins],
            },
        )
    )
    ece = calibration.get("ece")
    title += f" (ECE {ece:.3f})" if ece is not None else ""
    fig.update_xaxes(range=[0, 1], title="confidence (top-1 probability)")
    fig.update_yaxes(range=[0, 1], title="accuracy")
    return _layout(fig, title, height=440)


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
            line={"color": PRIMARY, "width": 2.5},
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
                marker={"size": 13, "symbol": "star", "color": HIGHLIGHT},
                name="app's uncertainty threshold",
            )
        )
    fig.update_xaxes(range=[0, 1.01], title="coverage (share of images answered)", tickformat=".0%")
    fig.update_yaxes(title="accuracy", tickformat=".0%")
    return _layout(fig, "Coverage vs accuracy (abstaining on the least confident)", height=440)


def _measured_groups(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Skin-type groups (I-II, III-IV, V-VI, in that order) with at least one test image."""
    groups = (report.get("by_skin_type") or {}).get("groups") or {}
    return {name: groups[name] for name in SKIN_TYPE_GROUPS if (groups.get(name) or {}).get("n")}


def skin_types_without_images(report: dict[str, Any]) -> list[str]:
    """Skin-type groups the test split holds no image of (empty when skin type was never recorded)."""
    measured = _measured_groups(report)
    return [name for name in SKIN_TYPE_GROUPS if measured and name not in measured]


def skin_type_table(report: dict[str, Any]) -> pd.DataFrame:
    """Headline metrics per Fitzpatrick group (rows I-II, III-IV, V-VI) that has test images.

    Groups without test images are left out (:func:`skin_types_without_images` names them) and so are
    metrics that say nothing for this model (top-3 with three classes or fewer); empty without skin types.
    """
    measured = _measured_groups(report)
    keys = [k for k in SKIN_TYPE_METRICS if k not in _redundant_metrics(report)]
    rows = [
        {"skin type": name, "n": g.get("n", 0)} | {_METRIC_LABELS[k]: g.get(k) for k in keys}
        for name, g in measured.items()
    ]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=["skin type", "n"])


def skin_type_figure(
    report: dict[str, Any],
    metrics: tuple[str, ...] = ("top1_accuracy", "balanced_accuracy", "risk_group_accuracy"),
) -> go.Figure:
    """Grouped bars of chosen headline metrics per Fitzpatrick group with test images, labelled with n.

    Metrics that equal another for this model (risk-group accuracy of a two-class model) are left out.
    """
    by_skin = report.get("by_skin_type") or {}
    measured = _measured_groups(report)
    metrics = tuple(k for k in metrics if k not in _redundant_metrics(report))
    names = list(measured)
    x = [f"{name}<br>n={measured[name]['n']}" for name in names]
    fig = go.Figure()
    for i, key in enumerate(metrics):
        values = [measured[name].get(key) for name in names]
        fig.add_trace(
            go.Bar(
                x=x,
                y=values,
                name=_METRIC_LABELS.get(key, key),
                marker_color=METRIC_COLORS[i % len(METRIC_COLORS)],
                text=[f"{v:.0%}" if v is not None else "" for v in values],
                # At the foot of the bar: at its top, the top-1 error bars would run through the figures.
                textposition="inside",
                insidetextanchor="start",
                textangle=0,
                textfont={"color": text_color_on(METRIC_COLORS[i % len(METRIC_COLORS)])},
                cliponaxis=False,
            )
        )
    # Error bars on top-1 accuracy: small groups must look as uncertain as they are.
    if "top1_accuracy" in metrics:
        cis = [measured[name].get("top1_accuracy_ci95") or [] for name in names]
        tops = [measured[name].get("top1_accuracy") for name in names]
        upper = [ci[1] - t if len(ci) == 2 and t is not None else 0 for ci, t in zip(cis, tops, strict=True)]
        lower = [t - ci[0] if len(ci) == 2 and t is not None else 0 for ci, t in zip(cis, tops, strict=True)]
        fig.data[list(metrics).index("top1_accuracy")].error_y = {
            "type": "data",
            "array": upper,
            "arrayminus": lower,
            "color": GREY,
        }
    unknown = by_skin.get("n_unknown")
    title = "By Fitzpatrick skin type" + (f" (skin type unknown: {unknown})" if unknown else "")
    fig.update_xaxes(title="Fitzpatrick skin type (test images)")
    fig.update_yaxes(range=[0, 1.15], tickformat=".0%")
    return _layout(fig, title, barmode="group", height=440)


def auc_figure(report: dict[str, Any], class_names: dict[str, str] | None = None) -> go.Figure:
    """Horizontal bars of one-vs-rest ROC-AUC per class (classes absent from the test set left out).

    The class axis gets ``automargin``, so long class names are never cut.
    """
    roc = report.get("roc_auc") or {}
    items = [(k, v) for k, v in (roc.get("per_class") or {}).items() if v is not None]
    items.sort(key=lambda kv: kv[1])
    fig = go.Figure(
        go.Bar(
            x=[v for _, v in items],
            y=[wrap_label((class_names or {}).get(k, k)) for k, _ in items],
            orientation="h",
            name="ROC-AUC of the class against all others",
            marker_color=PRIMARY,
            text=[f"{v:.3f}" for _, v in items],
            # At the bars' base: at their ends the values would sit under the macro line (most AUCs are near it).
            textposition="inside",
            insidetextanchor="start",
            textfont={"size": TICK_FONT_SIZE},
        )
    )
    # The reference lines are named in the legend, not by annotations, which overlapped the top bars.
    lines = [(0.5, "dot", GREY, "chance (0.5)")]
    macro = roc.get("macro")
    if macro is not None:
        lines.append((macro, "dash", HIGHLIGHT, f"macro average {macro:.3f}"))
    for x, dash, colour, name in lines:
        fig.add_vline(x=x, line_dash=dash, line_color=colour)
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=name,
                                 line={"dash": dash, "color": colour}))
    fig.update_xaxes(range=[0, 1], title="ROC-AUC (one vs rest)")
    # The legend below the bars: above them its three entries ran into the title on a phone.
    # Every row is as tall as the longest wrapped name needs (plotly spaces bars evenly).
    lines = max((wrap_label((class_names or {}).get(k, k)).count("<br>") + 1 for k, _ in items), default=1)
    return _layout(fig, "ROC-AUC per class", legend_side="bottom",
                   height=max(340, max(24, 15 * lines + 6) * len(items) + 230))


def two_class_figure(report: dict[str, Any], class_names: dict[str, str] | None = None) -> go.Figure | None:
    """For a two-class model: sensitivity, specificity and precision of its positive class, with ROC-AUC.

    The positive class is the malignant one when there is one, else the second class. None for a model
    with another number of classes, or a report without per-class figures.
    """
    per_class = report.get("per_class") or []
    if not is_two_class(report) or len(per_class) != 2:
        return None
    malignant = [c for c in per_class if c.get("risk_group") == "malignant"]
    positive = malignant[0] if len(malignant) == 1 else per_class[1]
    negative = next(c for c in per_class if c is not positive)
    name = (class_names or {}).get(positive["class_id"], positive["class_id"])
    other = (class_names or {}).get(negative["class_id"], negative["class_id"])
    rows = [
        (f"Sensitivity<br>({name.lower()} found)", positive.get("recall")),
        (f"Specificity<br>({other.lower()} cleared)", negative.get("recall")),
        (f"Precision<br>(called {name.lower()} and right)", positive.get("precision")),
    ]
    fig = go.Figure()
    for i, (label, value) in enumerate(rows):
        fig.add_bar(
            x=[label],
            y=[value],
            name=label.split("<br>")[0],
            marker_color=METRIC_COLORS[i % len(METRIC_COLORS)],
            text=[f"{value:.1%}" if value is not None else ""],
            textposition="outside",
            cliponaxis=False,
        )
    auc = positive.get("auc")
    fig.update_yaxes(range=[0, 1.15], tickformat=".0%")
    title = "Sensitivity and specificity at the top answer" + (f" (ROC-AUC {auc:.3f})" if auc is not None else "")
    return _layout(fig, title, height=400)
