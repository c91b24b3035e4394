"""One visual language (issue 15): every figure builder draws risk groups in the palette's colours, metric
charts carry no red, every chart has a legend, readable fonts and axes that never clip their labels, and
skin types are written I-VI everywhere."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from dermlib.data import explore
from dermlib.evaluate import choose_uncertain_thresholds, evaluation_report
from dermlib.inference import ClassScore, Prediction
from dermlib.viz import data_charts, eval_charts, palette, prediction_charts, scope_charts
from dermlib.viz.tables import MISSING, count_table, display_table

REPO = Path(__file__).resolve().parents[1]
RISKS = ("malignant", "benign", "non-neoplastic", "premalignant")
HEX = re.compile(r"#[0-9a-fA-F]{3,8}\b")


def _trace_colors(fig: go.Figure) -> list[str]:
    """Every explicit colour of every trace (markers, lines, error bars) and of every shape."""
    out: list[str] = []
    for trace in fig.data:
        marker = getattr(trace, "marker", None)
        if marker is not None and marker.color is not None:
            out += [marker.color] if isinstance(marker.color, str) else [c for c in marker.color if isinstance(c, str)]
        line = getattr(trace, "line", None)
        if line is not None and getattr(line, "color", None):
            out.append(line.color)
        error_y = getattr(trace, "error_y", None)
        if error_y is not None and error_y.color:
            out.append(error_y.color)
    out += [s.line.color for s in fig.layout.shapes or () if s.line.color]
    return out


def _uncoloured(fig: go.Figure) -> list[str]:
    """Traces that would take plotly's default colourway (whose second colour is red)."""
    bad = []
    for trace in fig.data:
        if trace.type == "heatmap":
            continue
        marker = getattr(trace, "marker", None)
        line = getattr(trace, "line", None)
        if (marker is None or marker.color is None) and (line is None or line.color is None):
            bad.append(trace.name)
    return bad


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    n, c = 300, 4
    labels = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c))
    logits[np.arange(n), labels] += 2
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    fitz = rng.integers(0, 7, n)
    th = choose_uncertain_thresholds(probs, labels, 0.9)
    return evaluation_report(probs, labels, list("abcd"), [*RISKS[:3], "benign"], fitz, th)


@pytest.fixture(scope="module")
def two_class() -> dict[str, Any]:
    rng = np.random.default_rng(1)
    n = 200
    labels = rng.integers(0, 2, n)
    logits = rng.normal(size=(n, 2))
    logits[np.arange(n), labels] += 2
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    th = choose_uncertain_thresholds(probs, labels, 0.9)
    return evaluation_report(probs, labels, ["benign", "malignant"], ["benign", "malignant"], np.zeros(n), th)


def _prediction(risks: dict[str, float]) -> Prediction:
    top = (
        ClassScore("mel", "Melanoma", 0.55, "malignant"),
        ClassScore("nev", "Melanocytic nevus", 0.30, "benign"),
        ClassScore("ecz", "Eczema", 0.10, "non-neoplastic"),
        ClassScore("ak", "Actinic keratosis", 0.05, "premalignant"),
    )
    return Prediction(model_id="m", probabilities=(0.55, 0.3, 0.1, 0.05), top_k=top, risk=risks, uncertain=False)


def _all_figures(report: dict[str, Any], two_class: dict[str, Any]) -> dict[str, go.Figure]:
    index = pd.DataFrame(
        {
            "image_path": ["a.jpg", "b.jpg", "c.jpg", "d.jpg"],
            "label": ["mel", "nev", "ecz", "nev"],
            "display_name": ["Melanoma", "Melanocytic nevus", "Eczema", "Melanocytic nevus"],
            "risk_group": ["malignant", "benign", "non-neoplastic", "benign"],
            "fitzpatrick": pd.array([1, 3, 6, pd.NA], dtype="Int64"),
        }
    )
    stats = pd.DataFrame({"width": [10, 20, 30, 40], "height": [5, 6, 7, 8], "brightness": [200, 150, 60, 120],
                          "skin type": ["1", "3", "6", "unknown"]})
    points = data_charts.embedding_points(index, np.arange(8.0).reshape(4, 2))
    section = {"score": "knn", "report": {"roc_natural": {"fpr": [0, 0.1, 1], "tpr": [0, 0.9, 1]},
                                          "operating_point": {"fpr": 0.1, "tpr": 0.9}, "auroc_natural": 0.95}}
    risk = {"benign": 0.6, "malignant": 0.03, "non-neoplastic": 0.3, "premalignant": 0.07}
    return {
        "class_distribution": data_charts.class_distribution_figure(
            {"mel": 3, "nev": 4, "ecz": 2, "ak": 1, "x": 1},
            {"mel": "malignant", "nev": "benign", "ecz": "non-neoplastic", "ak": "premalignant"},
        ),
        "fitzpatrick_distribution": data_charts.fitzpatrick_distribution_figure(data_charts.fitzpatrick_counts(index)),
        "fitzpatrick_by_class": data_charts.fitzpatrick_by_class_figure(index),
        "age": data_charts.age_histogram_figure(pd.Series([30, 40, None])),
        "category": data_charts.category_figure(pd.Series(["f", "m", None]), "Sex"),
        "image_size": data_charts.image_size_figure(stats),
        "brightness": data_charts.brightness_figure(stats),
        "duplicates": data_charts.duplicate_distance_figure(pd.Series([1, 2, 2]), 8),
        "embedding_risk": data_charts.embedding_figure(points, "risk group"),
        "embedding_skin": data_charts.embedding_figure(points, "skin type"),
        "embedding_class": data_charts.embedding_figure(points, "class"),
        "confusion": eval_charts.confusion_matrix_figure(report),
        "reliability": eval_charts.reliability_figure(report),
        "coverage": eval_charts.coverage_accuracy_figure(report),
        "skin_type": eval_charts.skin_type_figure(report),
        "auc": eval_charts.auc_figure(report),
        "two_class": eval_charts.two_class_figure(two_class),
        "scope_roc": scope_charts.scope_roc_figure(section),
        "probability": prediction_charts.probability_chart(_prediction(risk)),
        "risk": prediction_charts.risk_chart(_prediction(risk)),
    }


METRIC_FIGURES = ("confusion", "reliability", "coverage", "skin_type", "auc", "two_class", "scope_roc")
RISK_FIGURES = ("class_distribution", "embedding_risk", "probability", "risk")


def test_palette_values() -> None:
    assert palette.RISK_COLORS["malignant"] == "#D55E00"  # Okabe-Ito vermillion: the only red
    assert palette.RISK_COLORS["premalignant"] == "#E69F00"
    assert palette.RISK_COLORS["benign"] == "#0072B2"
    assert palette.RISK_COLORS["non-neoplastic"] == "#009E73"
    assert set(palette.RISK_COLORS.values()) <= set(palette.OKABE_ITO.values()) | {palette.GREY_UNKNOWN}
    assert len(set(palette.RISK_COLORS.values())) == len(palette.RISK_COLORS)
    assert not any(palette.is_red(c) for c in palette.METRIC_COLORS)
    assert not set(palette.METRIC_COLORS) & set(palette.RISK_COLORS.values())
    assert palette.UNKNOWN == explore.UNKNOWN
    assert list(palette.SKIN_TYPE_COLORS) == ["I", "II", "III", "IV", "V", "VI", "unknown"]
    assert palette.risk_order(["benign", "other", "malignant"]) == ["malignant", "benign", "other"]
    assert palette.text_color_on(palette.RISK_COLORS["benign"]) == palette.WHITE


def test_every_risk_figure_draws_risk_groups_in_the_palette_colours(report: dict, two_class: dict) -> None:
    figures = _all_figures(report, two_class)
    for name in RISK_FIGURES:
        seen = set()
        for trace in figures[name].data:
            group = trace.name.split(" ")[0]  # the risk bar names "malignant 3%"
            assert group in palette.RISK_COLORS, (name, trace.name)
            colors = {trace.marker.color} if isinstance(trace.marker.color, str) else set(trace.marker.color)
            assert colors == {palette.RISK_COLORS[group]}, (name, group, colors)
            seen.add(group)
        assert {"malignant", "benign", "non-neoplastic"} <= seen, name
    # The three places that drew risk groups differently before now agree colour for colour.
    first = {t.name.split(" ")[0]: t.marker.color for t in figures["class_distribution"].data}
    for name in RISK_FIGURES[1:]:
        other = {t.name.split(" ")[0]: t.marker.color for t in figures[name].data}
        other = {k: (v if isinstance(v, str) else v[0]) for k, v in other.items()}
        assert all(first[k] == v for k, v in other.items() if k in first), name


def test_no_red_in_metric_charts(report: dict, two_class: dict) -> None:
    figures = _all_figures(report, two_class)
    for name in METRIC_FIGURES:
        fig = figures[name]
        assert not _uncoloured(fig), (name, _uncoloured(fig))  # plotly's default second colour is red
        reds = [c for c in _trace_colors(fig) if c.startswith("#") and palette.is_red(c)]
        assert not reds, (name, reds)
    assert figures["confusion"].data[0].colorscale == go.Heatmap(colorscale=palette.SEQUENTIAL_SCALE).colorscale
    # ... while malignant itself is red wherever it is drawn.
    assert palette.is_red(palette.RISK_COLORS["malignant"])


def test_every_figure_has_a_legend_readable_fonts_and_unclipped_axes(report: dict, two_class: dict) -> None:
    for name, fig in _all_figures(report, two_class).items():
        layout = fig.layout
        assert layout.font.size >= 12, name
        assert layout.title.font.size is None or layout.title.font.size >= 12, name
        if name != "confusion":  # a heat map's legend is its colour bar
            assert layout.showlegend is True, name
            assert all(trace.name for trace in fig.data), name
        else:
            assert fig.data[0].colorbar.title.text
        for axis in (layout.xaxis, layout.yaxis):
            assert axis.automargin is True, name
            assert axis.tickfont.size is None or axis.tickfont.size >= 12, name


def test_no_hard_coded_colours_outside_the_palette() -> None:
    files = [*sorted((REPO / "dermlib" / "viz").glob("*.py")), REPO / "app_pages" / "model.py",
             REPO / "app_pages" / "dataset_explorer.py", REPO / "dermlib" / "ui" / "explorer.py"]
    named = re.compile(r"""["'](red|green|blue|olive|orange|grey|gray|white|black)["']""")
    for path in files:
        if path.name == "palette.py":
            continue
        text = path.read_text(encoding="utf-8")
        assert not HEX.findall(text), (path.name, HEX.findall(text))
        assert not named.findall(text), (path.name, named.findall(text))


def test_risk_bar_has_a_legend_and_labels_every_segment() -> None:
    risks = {"benign": 0.86, "non-neoplastic": 0.08, "malignant": 0.04, "premalignant": 0.02}
    fig = prediction_charts.risk_chart(_prediction(risks))
    assert fig.layout.showlegend is True
    names = [t.name for t in fig.data]
    assert names == ["malignant 4%", "premalignant 2%", "benign 86%", "non-neoplastic 8%"]  # most serious first
    assert [t.text[0] for t in fig.data] == ["", "", "benign 86%", "8%"]  # slivers named by the legend alone
    for trace in fig.data:
        assert trace.name.split(" ")[0] in trace.hovertemplate
        assert trace.marker.color == palette.RISK_COLORS[trace.name.split(" ")[0]]
    assert fig.layout.legend.traceorder == "normal"  # the legend lists the groups in the bar's order


def test_probability_chart_colours_each_bar_by_its_risk_group() -> None:
    fig = prediction_charts.probability_chart(_prediction({"malignant": 0.55, "benign": 0.45}))
    bars = {y: (t.name, t.marker.color) for t in fig.data for y in t.y}
    assert bars["Melanoma"] == ("malignant", palette.RISK_COLORS["malignant"])
    assert bars["Melanocytic nevus"] == ("benign", palette.RISK_COLORS["benign"])
    assert bars["Eczema"] == ("non-neoplastic", palette.RISK_COLORS["non-neoplastic"])
    assert bars["Actinic keratosis"] == ("premalignant", palette.RISK_COLORS["premalignant"])
    assert list(fig.layout.yaxis.categoryarray)[-1] == "Melanoma"  # most probable on top
    assert fig.layout.barmode == "stack"  # one bar per row, centred


def test_skin_types_are_written_in_roman_numerals(report: dict, two_class: dict) -> None:
    figures = _all_figures(report, two_class)
    assert list(figures["fitzpatrick_distribution"].data[0].x) == ["I", "III", "VI", "unknown"]
    assert [t.name for t in figures["fitzpatrick_by_class"].data] == ["I", "III", "VI", "unknown"]
    assert sorted({t.name for t in figures["brightness"].data}) == sorted(["I", "III", "VI", "unknown"])
    assert {t.name for t in figures["embedding_skin"].data} == {"I", "III", "VI", "unknown"}
    for trace in figures["embedding_skin"].data:
        assert trace.marker.color == palette.SKIN_TYPE_COLORS[trace.name]
    points = data_charts.embedding_points(
        pd.DataFrame({"display_name": ["Eczema"], "risk_group": ["non-neoplastic"],
                      "fitzpatrick": pd.array([2], dtype="Int64")}), np.zeros((1, 2)))
    assert points["hover"].tolist() == ["Eczema · skin type II"]
    assert count_table("fitzpatrick counts", {"6": 1, "1": 5, "2": 3})[""].tolist() == ["I", "II", "VI"]
    assert list(eval_charts.skin_type_table(report)["skin type"]) == ["I-II", "III-IV", "V-VI"]
    assert [palette.skin_type_name(v) for v in (1, "2", 3.0, None, float("nan"), "I-II")] == [
        "I", "II", "III", "unknown", "unknown", "I-II"]


def test_tables_show_no_none(two_class: dict) -> None:
    frame = display_table(pd.DataFrame({"n": [3, 0], "accuracy": [0.91234, None], "name": ["a", None]}))
    assert frame["accuracy"].tolist() == ["0.912", MISSING]
    assert frame["n"].tolist() == [3, 0] and frame["name"].tolist() == ["a", MISSING]
    assert "None" not in frame.to_string() and "nan" not in frame.to_string()


def test_two_class_views(two_class: dict, report: dict) -> None:
    labels = [t[0] for t in eval_charts.headline_tiles(two_class)]
    assert "Top-3 accuracy" not in labels and "Risk-group accuracy" not in labels  # both say nothing here
    assert "ROC-AUC" in labels
    assert "Top-3 accuracy" in [t[0] for t in eval_charts.headline_tiles(report)]  # four classes keep it
    assert all(value != "None" for _, value, _ in eval_charts.headline_tiles(two_class))
    assert eval_charts.skin_type_table(two_class).empty  # no skin type recorded: no table of Nones
    assert not eval_charts.skin_types_without_images(two_class)
    fig = eval_charts.skin_type_figure(two_class)
    assert all("no data" not in (t.text or ()) for t in fig.data)
    binary = eval_charts.two_class_figure(two_class, {"malignant": "Melanoma"})
    assert [t.name for t in binary.data] == ["Sensitivity", "Specificity", "Precision"]
    mal = two_class["risk_group"]["malignant"]
    assert binary.data[0].y[0] == pytest.approx(mal["sensitivity"])
    assert binary.data[1].y[0] == pytest.approx(mal["specificity"])
    assert "melanoma found" in binary.data[0].x[0]
    assert eval_charts.two_class_figure(report) is None


def test_skin_type_groups_without_images_are_left_out(report: dict) -> None:
    partial = {**report, "by_skin_type": {**report["by_skin_type"], "groups": {
        **report["by_skin_type"]["groups"], "V-VI": {"n": 0, "top1_accuracy": None}}}}
    assert list(eval_charts.skin_type_table(partial)["skin type"]) == ["I-II", "III-IV"]
    assert eval_charts.skin_types_without_images(partial) == ["V-VI"]
    fig = eval_charts.skin_type_figure(partial)
    assert all(len(t.x) == 2 and "no data" not in t.text for t in fig.data)


def test_every_figure_is_drawn_with_the_trimmed_white_template(report: dict, two_class: dict) -> None:
    import plotly.io as pio

    full = pio.templates["plotly_white"].to_plotly_json()
    trimmed = palette.white_template().to_plotly_json()
    # Everything a 2-D chart takes from plotly_white is kept; only 3-D, map, polar and ternary defaults go.
    assert {k: v for k, v in full["layout"].items() if k not in trimmed["layout"]}.keys() == {
        "geo", "polar", "scene", "ternary"}
    assert all(trimmed["layout"][k] == v for k, v in full["layout"].items() if k in trimmed["layout"])
    for name, fig in _all_figures(report, two_class).items():
        template = fig.layout.template.to_plotly_json()
        assert template["layout"]["plot_bgcolor"] == "white", name
        for trace in fig.data:  # each trace's own defaults are plotly_white's, unchanged
            assert trace.type in palette.TRACE_TYPES, (name, trace.type)
            assert template["data"].get(trace.type) == full["data"].get(trace.type), (name, trace.type)


def test_embedding_map_gives_each_of_38_classes_its_own_marker_and_no_class_is_red() -> None:
    n = 40
    points = pd.DataFrame({"x": np.arange(n, dtype=float), "y": np.zeros(n), "row": range(n), "hover": "photo",
                           "class": [f"Condition {i:02d}" for i in range(38)] + [None, None]})
    figure = data_charts.embedding_figure(points, "class")
    markers = [(trace.name, trace.marker.color, trace.marker.symbol) for trace in figure.data]
    assert len(markers) == 39 and markers[-1][0] == palette.UNKNOWN  # 38 classes, then the unknown ones
    assert len({(color, symbol) for _, color, symbol in markers}) == 39
    assert not any(palette.is_red(color) for _, color, _ in markers)
    # Ordered colours and shapes: the first six share the circle, the seventh starts the squares.
    assert [m[2] for m in markers[:7]] == ["circle"] * 6 + ["square"]
    risk = data_charts.embedding_figure(points.assign(**{"risk group": "benign"}), "risk group")
    assert [t.marker.color for t in risk.data] == [palette.RISK_COLORS["benign"]]


def test_probability_chart_wraps_long_names_and_keeps_its_legend_out_of_the_title() -> None:
    top = (ClassScore("f", "Fungal skin infection (ringworm, tinea, candida)", 0.5, "non-neoplastic"),
           ClassScore("m", "Melanoma", 0.3, "malignant"))
    figure = prediction_charts.probability_chart(Prediction("m", (0.5, 0.3), top, {"malignant": 0.3}, False))
    labels = [y for trace in figure.data for y in trace.y]
    assert "Fungal skin infection<br>(ringworm, tinea,<br>candida)" in labels and "Melanoma" in labels
    assert all(len(line) <= 24 for label in labels for line in label.split("<br>"))
    # The rows keep the ranking (plotly draws the first category at the bottom).
    wrapped = "Fungal skin infection<br>(ringworm, tinea,<br>candida)"
    assert list(figure.layout.yaxis.categoryarray) == ["Melanoma", wrapped]
    # In the page's narrow column a legend row above the plot wrapped up into the title; it sits at the foot now.
    legend = figure.layout.legend
    assert (legend.yref, legend.y, legend.yanchor) == ("container", 0, "bottom")


def test_long_titles_are_broken_into_lines_and_given_room() -> None:
    """Plotly never wraps a title: on a phone a long one ran off the chart."""
    import plotly.graph_objects as go

    from dermlib.viz.palette import style_figure, title_lines

    assert title_lines("By Fitzpatrick skin type (skin type unknown: 459)") == [
        "By Fitzpatrick skin type", "(skin type unknown: 459)"]
    assert title_lines("Short title") == ["Short title"]
    assert title_lines("Validation + test, temperature cross-fitted (ECE 0.150)") == [
        "Validation + test, temperature", "cross-fitted (ECE 0.150)"]  # never broken at a hyphen
    short = style_figure(go.Figure(layout={"title": "Short title"}))
    long = style_figure(go.Figure(layout={"title": "By Fitzpatrick skin type (skin type unknown: 459)"}))
    assert long.layout.title.text == "By Fitzpatrick skin type<br>(skin type unknown: 459)"
    assert long.layout.margin.t > short.layout.margin.t  # the second line gets its own room
