"""PH2 as a dataset of diagnoses, and external tests: a model scored on another clinic's photos, kept in its card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dermlib import config
from dermlib.cli import main
from dermlib.data import detect, load_index
from dermlib.data.synthetic import make_ph2
from dermlib.evaluate.external import external_record, external_test_lines
from dermlib.inference import ClassScore, Prediction
from dermlib.models import get_card, load_card
from dermlib.testing import write_tiny_model
from dermlib.train.evaluate import evaluate_model
from dermlib.ui.model_summary import measured_limits, track_record

DERMOSCOPY_CLASSES = [{"id": "benign", "name": "Benign lesion", "risk_group": "benign"},
                      {"id": "malignant", "name": "Malignant lesion", "risk_group": "malignant"}]


def _shared_ph2() -> Path:
    root = config.shared_data_root()
    if root is None or not (root / "ph2" / "metadata.csv").is_file():
        pytest.skip("the shared PH2 folder is not present")
    return root / "ph2"


def test_ph2_is_indexed_by_diagnosis_and_its_masks_are_not_photos(tmp_path: Path) -> None:
    make_ph2(tmp_path, n_images=6)
    assert detect(tmp_path) == "ph2"
    index = load_index(None, tmp_path)
    assert len(index) == 6  # six photos; the six masks beside them are not records
    assert all(p.endswith(".jpg") and "/images/" in p for p in index["image_path"])
    assert index["label"].value_counts().to_dict() == {"common-nevus": 2, "atypical-nevus": 2, "melanoma": 2}
    assert dict(zip(index["label"], index["risk_group"], strict=True)) == {
        "common-nevus": "benign", "atypical-nevus": "benign", "melanoma": "malignant"}
    assert set(index["display_name"]) == {"Common naevus", "Atypical naevus", "Melanoma"}
    assert list(index["group_id"]) == [f"IMD{k:03d}" for k in range(2, 8)]


def test_ph2_shared_folder() -> None:
    index = load_index("ph2", _shared_ph2())
    assert len(index) == 160 and index["image_path"].notna().all()
    assert index["label"].value_counts().to_dict() == {"atypical-nevus": 64, "common-nevus": 64, "melanoma": 32}


def test_a_risk_group_model_is_tested_on_finer_labels_and_the_card_keeps_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_ph2(tmp_path / "ph2", n_images=9)
    model = write_tiny_model(tmp_path / "model", model_id="tiny-dermoscopy", num_classes=2,
                             extra={"classes": DERMOSCOPY_CLASSES, "task": "dermoscopy"})
    assert main(["evaluate", "--model", str(model), "--data", str(data), "--json",
                 "--record-external", "PH2, a synthetic copy"]) == 0
    report = json.loads(capsys.readouterr().out)
    # PH2's labels are unknown to the model, so each photo is scored on its risk group.
    assert report["n"] == 9
    by_label = report["by_dataset_label"]
    assert {k: (v["n"], v["risk_group"]) for k, v in by_label.items()} == {
        "atypical-nevus": (3, "benign"), "common-nevus": (3, "benign"), "melanoma": (3, "malignant")}
    assert all(sum(v["answered"].values()) == v["n"] for v in by_label.values())
    called_malignant = by_label["melanoma"]["answered"]["malignant"]
    false_alarms = sum(by_label[k]["answered"]["malignant"] for k in ("atypical-nevus", "common-nevus"))
    malignant = report["risk_group"]["malignant"]
    assert malignant["sensitivity"] == pytest.approx(called_malignant / 3, abs=1e-4)
    assert malignant["specificity"] == pytest.approx(1 - false_alarms / 6, abs=1e-4)

    card = load_card(model)
    stored = card.raw["external_tests"]["ph2"]
    assert (stored["n"], stored["title"], stored["malignant"]["n_malignant"]) == (9, "PH2, a synthetic copy", 3)
    assert stored["by_dataset_label"] == by_label
    assert stored["command"] == (f"python -m dermlib evaluate --model {model} --data {data} "
                                 "--record-external 'PH2, a synthetic copy'")
    assert json.loads((model / "evaluation.json").read_text())["external"]["ph2"]["n"] == 9
    [line] = external_test_lines(card.raw["external_tests"])
    assert f"flagged {called_malignant} of 3 malignant lesions" in line
    assert f"also {false_alarms} of 6 benign ones" in line
    assert line in measured_limits(card)


def test_recording_a_cropped_variant_needs_the_plain_test_first(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    data = make_ph2(tmp_path / "ph2", n_images=3)
    model = write_tiny_model(tmp_path / "model", num_classes=2, extra={"classes": DERMOSCOPY_CLASSES})
    card_before = (model / "card.json").read_text()
    assert main(["evaluate", "--model", str(model), "--data", str(data), "--record-external", "PH2",
                 "--split", "test"]) == 2
    assert "--split all" in capsys.readouterr().err
    assert (model / "card.json").read_text() == card_before


def test_external_lines_say_what_was_missed_and_what_was_over_called() -> None:
    summary = {"ph2": {"dataset": "ph2", "title": "PH2, another clinic", "n": 160,
                       "malignant": {"n_malignant": 32, "n_other": 128, "sensitivity": 1.0, "specificity": 0.2344},
                       "by_dataset_label": {
                           "atypical-nevus": {"n": 64, "name": "Atypical naevus", "risk_group": "benign",
                                              "answered": {"benign": 6, "malignant": 58}},
                           "common-nevus": {"n": 64, "name": "Common naevus", "risk_group": "benign",
                                            "answered": {"benign": 24, "malignant": 40}},
                           "melanoma": {"n": 32, "name": "Melanoma", "risk_group": "malignant",
                                        "answered": {"benign": 0, "malignant": 32}}}}}
    [line] = external_test_lines(summary)
    assert line.startswith("External test on PH2, another clinic (160 photos it never saw): it flagged 32 of 32 "
                           "malignant lesions as malignant (sensitivity 100%) but also 98 of 128 benign ones "
                           "(specificity 23%; atypical naevus 58 of 64, common naevus 40 of 64).")
    assert "means much less" in line  # specificity under 70%: the warning sentence
    summary["ph2"]["malignant"]["specificity"] = 0.9
    assert "means much less" not in external_test_lines(summary)[0]
    assert external_test_lines({"x": {"title": "Set X", "n": 50, "top1_accuracy": 0.4}}) == [
        "External test on Set X (50 photos it never saw): top-1 accuracy 40%."]
    assert external_test_lines(None) == [] and external_test_lines({"x": {"n": 0}}) == []
    # Beside the result: how often this very answer was right on the other clinic's photos.
    assert external_record(summary, "malignant", "Malignant lesion") == (
        "**Elsewhere:** on PH2's photos from another clinic, 32 of its 130 'Malignant lesion' answers were right "
        "(25%).")
    assert external_record(summary, "benign", "Benign lesion").endswith("30 of its 30 'Benign lesion' answers "
                                                                        "were right (100%).")
    assert external_record(summary, "eczema", "Eczema") is None and external_record(None, "benign", "B") is None


def test_the_shipped_dermoscopy_model_quotes_its_ph2_test_and_the_figures_repeat() -> None:
    card = get_card("dermoscopy-melanoma")
    stored = card.raw["external_tests"]["ph2"]
    assert stored["n"] == 160 and stored["malignant"]["n_malignant"] == 32
    limits = measured_limits(card)
    assert any(line.startswith("External test on PH2") for line in limits)
    assert not any("top-3" in line for line in limits)  # two classes: top-3 is 100% by construction
    malignant = Prediction("dermoscopy-melanoma", (0.1, 0.9), (ClassScore("malignant", "Malignant lesion", 0.9,
                                                                         "malignant"),), {"malignant": 0.9}, False)
    assert "**Elsewhere:** on PH2's photos from another clinic, 32 of its 130" in track_record(malignant, card)
    report, skipped = evaluate_model("dermoscopy-melanoma", _shared_ph2())
    assert skipped == 0 and report["by_dataset_label"] == stored["by_dataset_label"]
