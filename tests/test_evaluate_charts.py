"""Figures and tables built from an evaluation report."""

from __future__ import annotations

import numpy as np
import pytest

from dermlib.evaluate import choose_uncertain_thresholds, evaluation_report
from dermlib.viz import eval_charts


@pytest.fixture(scope="module")
def report() -> dict:
    rng = np.random.default_rng(0)
    n, c = 300, 4
    labels = rng.integers(0, c - 1, n)  # class "d" never occurs
    logits = rng.normal(size=(n, c))
    logits[np.arange(n), labels] += 2
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    fitz = rng.integers(0, 7, n)
    th = choose_uncertain_thresholds(probs, labels, 0.9)
    return evaluation_report(probs, labels, list("abcd"), ["benign", "malignant"] * 2, fitz, th)


def test_per_class_table(report: dict) -> None:
    table = eval_charts.per_class_table(report, {"a": "Alpha"})
    assert list(table["class"]) == ["Alpha", "b", "c", "d"]
    assert table["support"].sum() == report["n"]
    assert table.loc[3, "support"] == 0


def test_confusion_matrix_figure(report: dict) -> None:
    z = np.asarray(eval_charts.confusion_matrix_figure(report).data[0].z)
    np.testing.assert_allclose(z[:3].sum(axis=1), 1.0)
    assert z[3].sum() == 0  # a class without support stays zero instead of dividing by zero
    counts = np.asarray(eval_charts.confusion_matrix_figure(report, normalize=False).data[0].z)
    assert counts.sum() == report["n"]


def test_reliability_and_coverage(report: dict) -> None:
    fig = eval_charts.reliability_figure(report)
    bars = fig.data[1]
    assert len(bars.x) == sum(1 for b in report["calibration"]["bins"] if b["count"])
    assert "ECE" in fig.layout.title.text
    assert eval_charts.calibration_check_figure(report) is None  # no held-out check in this report
    bins = [{"lower": 0.5, "upper": 0.6, "count": 7, "confidence": 0.55, "accuracy": 0.4},
            {"lower": 0.6, "upper": 0.7, "count": 0, "confidence": None, "accuracy": None}]
    check = eval_charts.calibration_check_figure({"calibration_check": {"bins": bins, "ece_cross_fitted": 0.15}})
    assert list(check.data[1].y) == [0.4]
    # Long titles are broken into lines (plotly never wraps one); the words stay.
    assert check.layout.title.text.replace("<br>", " ") == "Validation + test, temperature cross-fitted (ECE 0.150)"
    cov = eval_charts.coverage_accuracy_figure(report)
    assert cov.data[0].x[-1] == 1.0
    assert cov.data[1].x[0] == report["selective"]["coverage"]  # the app's operating point


def test_skin_type_views(report: dict) -> None:
    table = eval_charts.skin_type_table(report)
    assert list(table["skin type"]) == ["I-II", "III-IV", "V-VI"]
    assert table["n"].sum() + report["by_skin_type"]["n_unknown"] == report["n"]
    fig = eval_charts.skin_type_figure(report)
    assert all("n=" in x for x in fig.data[0].x)
    assert fig.data[0].error_y.array is not None
    no_skin = {**report, "by_skin_type": None}
    assert eval_charts.skin_type_table(no_skin).empty


def test_auc_figure_skips_absent_classes(report: dict) -> None:
    fig = eval_charts.auc_figure(report)
    assert sorted(fig.data[0].y) == ["a", "b", "c"]
    # Chance and the macro average are lines named in the legend, with no annotation over the bars.
    macro = report["roc_auc"]["macro"]
    assert [t.name for t in fig.data[1:]] == ["chance (0.5)", f"macro average {macro:.3f}"]
    assert sorted(shape.x0 for shape in fig.layout.shapes) == sorted([0.5, macro])
    assert not fig.layout.annotations


def test_confusion_matrix_and_auc_never_clip_long_class_names(report: dict) -> None:
    names = {k: f"A condition with a very long display name {k}" for k in "abcd"}
    for fig in (eval_charts.confusion_matrix_figure(report, class_names=names), eval_charts.auc_figure(report, names)):
        assert fig.layout.xaxis.automargin is True and fig.layout.yaxis.automargin is True
        assert fig.layout.font.size >= 12
    short = eval_charts.confusion_matrix_figure(report)
    long = eval_charts.confusion_matrix_figure(report, class_names=names)
    assert long.layout.height > short.layout.height  # room for the rotated labels below the matrix
    assert long.data[0].colorbar.title.text == "share of the row"


def test_headline_tiles_are_formatted_and_skip_what_says_nothing(report: dict) -> None:
    tiles = {label: value for label, value, _ in eval_charts.headline_tiles(report)}
    assert tiles["Top-1 accuracy"] == f"{report['top1_accuracy']:.1%}"
    assert tiles["ECE"] == f"{report['calibration']['ece']:.3f}"
    assert "Top-3 accuracy" in tiles and "ROC-AUC" not in tiles  # four classes: top-3 still informative
    three = {**report, "n_classes": 3}
    assert "Top-3 accuracy" not in {t[0] for t in eval_charts.headline_tiles(three)}  # always 100% with 3
    assert "Top-3 accuracy" not in eval_charts.skin_type_table(three).columns
