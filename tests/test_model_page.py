"""The Model page, with no model, a broken registry, and a model card written to a temporary folder."""

from __future__ import annotations

import importlib
import json
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import dermlib
from dermlib.config import WEIGHTS_ENV, weights_dir
from dermlib.evaluate import choose_uncertain_thresholds, evaluation_report, held_out_calibration_check
from dermlib.evaluate.metrics import round_floats

PAGE = str(Path(__file__).resolve().parent.parent / "app_pages" / "model.py")
CLASSES = [
    ("melanoma", "Melanoma", "malignant"),
    ("nevus", "Melanocytic nevus", "benign"),
    ("eczema", "Eczema", "non-neoplastic"),
]
LIMITATION = "Trained on clinical photos only; not validated on dermoscopy."


def _report() -> dict[str, Any]:
    """A report of synthetic predictions: few and worse-predicted skin type V-VI images."""
    rng = np.random.default_rng(0)
    n = 400
    labels = rng.integers(0, 3, n)
    fitz = np.where(np.arange(n) < 370, rng.integers(1, 5, n), 6)
    fitz[:30] = 0  # unknown
    logits = rng.normal(size=(n, 3))
    logits[np.arange(n), labels] += np.where(fitz == 6, 0.0, 3.0)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    th = choose_uncertain_thresholds(probs, labels, 0.9)
    return evaluation_report(probs, labels, [c[0] for c in CLASSES], [c[2] for c in CLASSES], fitz, th)


def _card(report: dict[str, Any]) -> dict[str, Any]:
    """A card with the fields of dermlib.models.card (ENGINEERING.md)."""
    return {
        "id": "test-lite0",
        "name": "Test EfficientNet-Lite0",
        "architecture": "tf_efficientnet_lite0",
        "task": "classification",
        "description": "A tiny model card for tests.",
        "classes": [{"id": i, "name": name, "risk_group": g} for i, name, g in CLASSES],
        "preprocessing": {
            "input_size": [3, 224, 224],
            "mean": [0.5, 0.5, 0.5],
            "std": [0.5, 0.5, 0.5],
            "interpolation": "bicubic",
            "crop_pct": 0.875,
        },
        "cam": {"target_layer": "conv_head", "reshape": None},
        "calibration": {"temperature": 1.4, "min_top1_probability": 0.6, "max_normalized_entropy": 0.7},
        "training": {
            "dataset": "fitzpatrick17k (synthetic stand-in)",
            "licence": "CC BY-NC-SA 3.0",
            "citation": "Groh et al., CVPR 2021",
            "epochs": 3,
            "command": "python -m dermlib train --dataset fitzpatrick17k --epochs 3 --out weights/test-lite0",
            "data_summary": {
                "n_images": 1000,
                "class_counts": {"melanoma": 300, "nevus": 400, "eczema": 300},
                "fitzpatrick_counts": {"1": 200, "2": 300, "6": 20},
                "split_counts": {"train": 700, "val": 150, "test": 150},
            },
        },
        "metrics": report,
        "limitations": [LIMITATION],
        "weights": {"file": "model.safetensors"},
    }


def _fake_registry() -> types.ModuleType:
    """Stand-in for dermlib.models when it is absent: reads card.json files like the real one."""
    module = types.ModuleType("dermlib.models")

    def list_models() -> list[Any]:
        cards = []
        root = weights_dir()
        for path in sorted(root.glob("*/card.json")) if root.is_dir() else []:
            data = json.loads(path.read_text(encoding="utf-8"))
            classes = [types.SimpleNamespace(**c) for c in data["classes"]]
            fields = {k: v for k, v in data.items() if k != "classes"}
            cards.append(types.SimpleNamespace(**fields, classes=classes, path=path.parent, raw=data))
        return cards

    module.list_models = list_models
    return module


@pytest.fixture
def weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty weights folder, and a registry (the real one once dermlib.models exists)."""
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    try:
        importlib.import_module("dermlib.models")
    except ImportError:
        fake = _fake_registry()
        monkeypatch.setitem(sys.modules, "dermlib.models", fake)
        monkeypatch.setattr(dermlib, "models", fake, raising=False)
    return tmp_path


def _install(weights: Path, card: dict[str, Any], evaluation: dict | None = None) -> Path:
    folder = weights / card["id"]
    folder.mkdir()
    (folder / "card.json").write_text(json.dumps(card, indent=2), encoding="utf-8")
    (folder / "model.safetensors").write_bytes(b"")  # the page never reads the weights
    if evaluation is not None:
        (folder / "evaluation.json").write_text(json.dumps(evaluation), encoding="utf-8")
    return folder


def _run() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [m.value for m in at.info] + [m.value for m in at.warning]
    return "\n".join(parts + [c.value for c in at.caption])


def test_no_model_installed(weights: Path) -> None:
    at = _run()
    assert at.info[0].value == "No model is installed yet."
    text = _text(at)
    assert "python -m dermlib train --help" in text and str(weights) in text
    assert not at.selectbox and not at.metric


def test_registry_unavailable(weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dermlib.models", None)  # import fails
    at = _run()
    assert "model registry is not available" in at.warning[0].value
    assert at.info[0].value == "No model is installed yet."


def test_model_card_is_shown(weights: Path) -> None:
    report = _report()
    _install(weights, _card(report))
    at = _run()
    assert at.selectbox(key="model_page_model").value is not None
    headers = ["What it is", "How it was trained", "How well it works", "What it refuses", "Limitations"]
    assert [h.value for h in at.header] == headers

    facts = at.table[0].value  # st.table: long values wrap instead of being cut off
    assert "tf_efficientnet_lite0" in set(facts["value"])
    assert "224 x 224 pixels, 3 channels" in set(facts["value"])
    training = at.table[1].value
    assert "CC BY-NC-SA 3.0" in set(training["value"])
    assert [c.value for c in at.code] == [_card(report)["training"]["command"]]  # whole, not in a cell

    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Top-1 accuracy"] == f"{report['top1_accuracy']:.1%}"
    assert metrics["Malignant sensitivity"] == f"{report['risk_group']['malignant']['sensitivity']:.1%}"
    assert metrics["ECE"] == f"{report['calibration']['ece']:.3f}"
    assert len(at.get("plotly_chart")) == 5

    text = _text(at)
    assert LIMITATION in text
    assert "Only 30 test images of skin type V-VI" in text
    assert "lower on skin types V-VI" in text
    assert "flags as uncertain" in text
    floor = report["calibration"]["ece_if_calibrated"]
    assert f"A perfectly calibrated model with the same confidences would show ECE {floor:.3f}" in text

    at.toggle(key="model_cm_normalize").set_value(False).run()
    assert not at.exception


def _with_check(report: dict[str, Any], skew: float) -> dict[str, Any]:
    """The report plus a held-out calibration check whose test half is ``skew`` times over-confident."""
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=2.0, size=(600, 3))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = (probs.cumsum(axis=1) > rng.random((600, 1))).argmax(axis=1)
    logits[300:] *= skew
    check = held_out_calibration_check(logits[:300], labels[:300], logits[300:], labels[300:], 1.0)
    return {**report, "calibration_check": round_floats(check)}


def test_held_out_calibration_check_is_shown(weights: Path) -> None:
    report = _with_check(_report(), skew=1.0)
    check = report["calibration_check"]
    _install(weights, _card(report))
    at = _run()
    assert len(at.get("plotly_chart")) == 6  # a second reliability diagram for the pooled check
    text = _text(at)
    assert (f"Calibration check on all 600 held-out images (validation 300 + test 300), each half scaled by "
            f"the temperature fitted on the other half: ECE {check['ece_cross_fitted']:.3f}") in text
    assert f"on test alone {check['temperature_test']:.3f}" in text
    assert "off by more than chance explains" not in text


def test_held_out_calibration_check_flags_real_miscalibration(weights: Path) -> None:
    report = _with_check(_report(), skew=4.0)
    assert report["calibration_check"]["ece_cross_fitted"] > report["calibration_check"]["ece_if_calibrated_p95"]
    _install(weights, _card(report))
    text = _text(_run())
    assert "Probabilities are off by more than chance explains on the 600 validation and test images pooled" in text


def test_evaluation_json_adds_splits(weights: Path) -> None:
    report = _report()
    val = {**report, "n": 123, "top1_accuracy": 0.5}
    _install(weights, _card(report), evaluation={"val": val, "test": report})
    at = _run()
    radio = at.radio(key="model_page_split")
    assert radio.options == ["test", "val"] and radio.value == "test"
    radio.set_value("val").run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Top-1 accuracy"] == "50.0%"


def test_card_without_metrics(weights: Path) -> None:
    card = _card({})
    card["training"] = {}
    _install(weights, card)
    at = _run()
    text = _text(at)
    assert "holds no evaluation report" in text
    assert "does not describe its training" in text
    assert LIMITATION in text
    assert not at.metric


def test_broken_card_is_reported(weights: Path) -> None:
    if isinstance(sys.modules.get("dermlib.models"), types.ModuleType) and not hasattr(
        sys.modules["dermlib.models"], "scan_models"
    ):
        pytest.skip("needs the real model registry (dermlib.models.scan_models)")
    folder = weights / "broken"
    folder.mkdir()
    (folder / "card.json").write_text("{not json", encoding="utf-8")
    at = _run()
    assert any("broken" in w.value for w in at.warning)
    assert at.info[0].value == "No model is installed yet."


# --- issue 15: every row shown, no clipped labels, two-class views ------------------------------------


def _report_for(classes: list[tuple[str, str, str]], fitzpatrick: bool = True, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    n, k = 40 * len(classes), len(classes)
    labels = np.arange(n) % k
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), labels] += 2.0
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    fitz = rng.integers(1, 7, n) if fitzpatrick else np.zeros(n, dtype=int)
    th = choose_uncertain_thresholds(probs, labels, 0.9)
    return evaluation_report(probs, labels, [c[0] for c in classes], [c[2] for c in classes], fitz, th)


def _card_for(classes: list[tuple[str, str, str]], report: dict[str, Any], **training: Any) -> dict[str, Any]:
    card = _card(report)
    card["classes"] = [{"id": i, "name": name, "risk_group": g} for i, name, g in classes]
    card["training"]["data_summary"].update(training)
    return card


def _specs(at: AppTest) -> list[dict[str, Any]]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _all_cells(at: AppTest) -> str:
    frames = [t.value for t in at.table] + [d.value for d in at.dataframe]
    return "\n".join(f.to_string() for f in frames)


MANY = [(f"condition-{i}", f"A rather long condition name number {i}", ("benign", "malignant", "non-neoplastic")[i % 3])
        for i in range(21)]


def test_per_class_table_shows_every_row(weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit

    heights: list[tuple[int, Any]] = []
    original = streamlit.dataframe

    def spy(data: Any = None, *args: Any, **kwargs: Any) -> Any:
        heights.append((len(data) if data is not None else 0, kwargs.get("height", "auto")))
        return original(data, *args, **kwargs)

    monkeypatch.setattr(streamlit, "dataframe", spy)
    _install(weights, _card_for(MANY, _report_for(MANY)))
    at = _run()
    # st.table: every row on the page, no scrolling inside the table
    per_class = next(t.value for t in at.table if "class" in t.value.columns)
    assert len(per_class) == 21 and list(per_class["class"]) == [c[1] for c in MANY]
    # Any other table longer than st.dataframe's ten visible rows is sized to its content.
    assert [h for rows, h in heights if rows > 10] and all(h == "content" for rows, h in heights if rows > 10)
    assert "None" not in _all_cells(at)


def test_confusion_matrix_and_auc_chart_never_clip_their_labels(weights: Path) -> None:
    _install(weights, _card_for(MANY, _report_for(MANY)))
    specs = {s["layout"]["title"]["text"]: s["layout"] for s in _specs(_run())}
    for title in ("Confusion matrix (row-normalised)", "ROC-AUC per class"):
        layout = specs[title]
        assert layout["xaxis"]["automargin"] is True and layout["yaxis"]["automargin"] is True, title
        assert layout["font"]["size"] >= 12
    assert specs["Confusion matrix (row-normalised)"]["height"] >= 28 * 21 + 200


def test_no_metric_chart_draws_in_red(weights: Path) -> None:
    from dermlib.viz.palette import is_red

    _install(weights, _card(_report()))
    for spec in _specs(_run()):
        colours = [t.get("marker", {}).get("color") for t in spec["data"]] + [
            t.get("line", {}).get("color") for t in spec["data"]]
        assert all(isinstance(c, str) for c in colours if c is not None)
        assert not [c for c in colours if isinstance(c, str) and c.startswith("#") and is_red(c)], spec["layout"]
        assert all(t.get("marker", {}).get("color") or t.get("line", {}).get("color") or t["type"] == "heatmap"
                   for t in spec["data"]), spec["layout"]["title"]


TWO = [("benign", "Benign lesion", "benign"), ("malignant", "Malignant lesion", "malignant")]


def _assert_two_class_page(at: AppTest) -> None:
    labels = [m.label for m in at.metric]
    assert "Top-3 accuracy" not in labels and "Risk-group accuracy" not in labels
    assert "ROC-AUC" in labels
    text = _text(at) + "\n" + "\n".join(f"{m.label} {m.value}" for m in at.metric)
    assert "Top-3" not in text and "None" not in text
    assert "None" not in _all_cells(at)
    assert all(len(d.value) for d in at.dataframe) and all(len(t.value) for t in at.table)  # no empty tables
    specs = _specs(at)
    assert "no data" not in json.dumps([s["data"] for s in specs])
    titles = [s["layout"].get("title", {}).get("text", "") for s in specs]
    assert not any(t.startswith("ROC-AUC per class") for t in titles)  # two bars of one number
    assert any(t.startswith("Sensitivity and specificity") for t in titles)
    assert not any(t.startswith("By Fitzpatrick skin type") for t in titles)
    assert any("Skin type was not recorded" in i.value for i in at.info)


def test_two_class_model_gets_two_class_views(weights: Path) -> None:
    report = _report_for(TWO, fitzpatrick=False)
    _install(weights, _card_for(TWO, report, fitzpatrick_counts={}, class_counts={"benign": 9, "malignant": 9}))
    at = _run()
    _assert_two_class_page(at)
    tables = [d.value for d in at.dataframe]
    assert any(list(t.iloc[:, 0]) == ["Benign lesion", "Malignant lesion"] for t in tables)  # names, not ids


def test_training_skin_types_are_written_in_roman_numerals(weights: Path) -> None:
    _install(weights, _card(_report()))
    at = _run()
    counts = next(d.value for d in at.dataframe if "images" in d.value.columns and "I" in set(d.value[""]))
    assert list(counts[""]) == ["I", "II", "VI"]  # the card stores "1", "2", "6"


def _show_shipped(at: AppTest, model_id: str) -> None:
    """Pick a shipped model in the page's selector and rerun the page."""
    select = at.selectbox(key="model_page_model")
    select.select_index(next(i for i, o in enumerate(select.options) if o.endswith(f"({model_id})")))
    at.run(timeout=120)
    assert not at.exception


@pytest.mark.skipif(not (Path(__file__).resolve().parents[1] / "weights" / "dermoscopy-melanoma").is_dir(),
                    reason="the shipped dermoscopy model is not present")
def test_shipped_dermoscopy_model_page(monkeypatch: pytest.MonkeyPatch) -> None:
    repo = Path(__file__).resolve().parents[1]
    monkeypatch.setenv(WEIGHTS_ENV, str(repo / "weights"))
    at = _run()
    _show_shipped(at, "dermoscopy-melanoma")
    _assert_two_class_page(at)


def test_combined_model_is_scored_per_data_source(monkeypatch: pytest.MonkeyPatch) -> None:
    repo = Path(__file__).resolve().parents[1]
    monkeypatch.setenv(WEIGHTS_ENV, str(repo / "weights"))
    at = _run()
    _show_shipped(at, "clinical-common38-ensemble")
    assert "By data source" in [t.label for t in at.tabs]
    metrics = json.loads((repo / "weights" / "clinical-common38-ensemble" / "card.json").read_text())["metrics"]
    table = next(t.value for t in at.table if "source" in t.value.columns)
    assert sorted(metrics["by_source"]) == ["dermnet-nz", "fitzpatrick17k"]
    assert list(table["source"]) == ["DermNet NZ", "Fitzpatrick17k"]  # titles, not registry ids
    dermnet = table[table["source"] == "DermNet NZ"].iloc[0]
    assert dermnet["test photos"] == metrics["by_source"]["dermnet-nz"]["n"]
    assert dermnet["top-1"] == f"{metrics['by_source']['dermnet-nz']['top1_accuracy']:.1%}"
    folded = metrics["by_source_categories"]["dermnet-nz"]["top1_accuracy"]
    assert dermnet["top-1, sub-types counted as their condition"] == f"{folded:.1%}"
    assert "Eczema or psoriasis?" in _text(at) and "128 test photos" in _text(at)
    fitz_alert = metrics["by_source"]["fitzpatrick17k"]["malignant_alert"]
    assert (f"Fitzpatrick17k: it names a malignant class for "
            f"{round(fitz_alert['with_alert']['sensitivity'] * fitz_alert['n_malignant'])} of "
            f"{fitz_alert['n_malignant']} malignant photos") in _text(at)
    assert "**Its most frequent mistakes** (test photos)" in _text(at)  # readable where the matrix is not
    # The per-class table's risk group is the data set's; where the clinical group differs, the page says so.
    assert ("**Actinic keratosis: clinically premalignant** (the table gives the data set's group, malignant)"
            in _text(at))
    # A single-source model has no such tab.
    _show_shipped(at, "clinical-fitz21")
    assert "By data source" not in [t.label for t in at.tabs]


def test_shipped_models_malignant_alert_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every clinical model with malignant classes carries an alert fitted on validation; the page shows it."""
    repo = Path(__file__).resolve().parents[1]
    monkeypatch.setenv(WEIGHTS_ENV, str(repo / "weights"))
    at = _run()
    for model_id in ("clinical-common38", "clinical-fitz21"):
        card = json.loads((repo / "weights" / model_id / "card.json").read_text())
        alert, scored = card["calibration"]["malignant_alert"], card["metrics"]["malignant_alert"]
        assert alert["val_sensitivity"] >= alert["target_sensitivity"] == 0.95
        assert scored["n_malignant"] + scored["n_other"] == card["metrics"]["n"]
        _show_shipped(at, model_id)
        text = _text(at)
        with_alert, without = scored["with_alert"], scored["top3_rule_only"]
        assert f"sensitivity {without['sensitivity']:.1%}" in text
        if alert["threshold"] is None:  # the top-3 rule reached the target on validation alone
            assert "Malignant alert: not needed." in text and with_alert == without, model_id
            continue
        assert f"reach {alert['threshold']:.1%}" in text, model_id
        assert (f"sensitivity {with_alert['sensitivity']:.1%}, specificity {with_alert['specificity']:.1%}"
                in text)


def test_skin_type_tab_says_which_photos_have_no_type(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default's skin-type table covers the Fitzpatrick17k photos only; the tab says so, with the ITA verdict."""
    repo = Path(__file__).resolve().parents[1]
    monkeypatch.setenv(WEIGHTS_ENV, str(repo / "weights"))
    at = _run()
    _show_shipped(at, "clinical-common38")
    metrics = json.loads((repo / "weights" / "clinical-common38" / "card.json").read_text())["metrics"]
    stored = json.loads((repo / "weights" / "clinical-common38" / "skin_tone.json").read_text())
    unknown = metrics["by_skin_type"]["n_unknown"]
    line = next(c.value for c in at.caption if c.value.startswith("Skin type is known for"))
    assert f"{metrics['n'] - unknown} of the {metrics['n']} test photos; the other {unknown} have none" in line
    assert "(every DermNet NZ photo among them)" in line and "covers none of the DermNet NZ photos" in line
    rate = stored["agreement"]["group_accuracy"]
    assert f"failed its reliability rule: it matched the annotated group on {rate:.0%}" in line
    _show_shipped(at, "clinical-fitz21")  # 15 photos without a type, no untyped source, no skin_tone.json
    line = next(c.value for c in at.caption if c.value.startswith("Skin type is known for"))
    assert line == "Skin type is known for 414 of the 429 test photos; the other 15 have none."


def test_skin_type_coverage_line_edge_cases() -> None:
    from dermlib.evaluate.reports import skin_type_coverage_line

    assert skin_type_coverage_line({"n": 10, "by_skin_type": {"n_unknown": 0}}) is None  # every photo typed
    assert skin_type_coverage_line({"n": 10, "by_skin_type": {"n_unknown": 10}}) is None  # none: the tab says so
    report = {"n": 30, "by_skin_type": {"n_unknown": 12},
              "by_source": {"fitzpatrick17k": {"n": 20, "by_skin_type": {"n_unknown": 2}},
                            "somewhere-else": {"n": 10, "by_skin_type": {"n_unknown": 10}}}}
    line = skin_type_coverage_line(report, {"agreement": {"group_accuracy": 0.7, "n": 1000, "reliable": True}})
    assert line.startswith("Skin type is known for 18 of the 30 test photos; the other 12 have none "
                           "(every somewhere-else photo among them).")
    assert "passed its reliability rule: it matched the annotated group on 70% of 1,000 Fitzpatrick17k photos." in line
    assert "PAD-UFES-20" not in line
