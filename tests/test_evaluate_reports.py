"""Reading a model's evaluation and facts from its card (no dataset, no weights)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from dermlib.evaluate import model_reports
from dermlib.evaluate.reports import class_rows, model_facts, selective_line, training_commands, training_facts

REPORT = {"n": 10, "top1_accuracy": 0.5}


def _card(path: Path | None, metrics: dict) -> SimpleNamespace:
    return SimpleNamespace(
        id="m",
        architecture="resnet18",
        task="classification",
        classes=[SimpleNamespace(id="a", name="A", risk_group="benign")],
        preprocessing={"input_size": [3, 240, 240], "crop_pct": 0.9, "mean": [0.1, 0.2, 0.3], "extra": 1},
        calibration={"temperature": 1.25},
        training={
            "dataset": "ham10000",
            "tags": ["x", "y"],
            "data_summary": {"n_images": 5, "split_counts": {"t": 5}},
        },
        metrics=metrics,
        path=path,
    )


def test_reports_from_card_and_evaluation_json(tmp_path: Path) -> None:
    assert model_reports(_card(None, REPORT)) == ({"test": REPORT}, [])
    assert model_reports(_card(None, {})) == ({}, [])
    val = {"n": 4, "top1_accuracy": 0.25}
    (tmp_path / "evaluation.json").write_text(json.dumps({"val": val, "notes": "x"}), encoding="utf-8")
    assert model_reports(_card(tmp_path, REPORT)) == ({"test": REPORT, "val": val}, [])
    fuller = {**REPORT, "per_class": []}
    (tmp_path / "evaluation.json").write_text(json.dumps(fuller), encoding="utf-8")
    assert model_reports(_card(tmp_path, REPORT))[0] == {"test": fuller}
    (tmp_path / "evaluation.json").write_text("{broken", encoding="utf-8")
    reports, problems = model_reports(_card(tmp_path, REPORT))
    assert reports == {"test": REPORT} and "could not be read" in problems[0]


def test_facts() -> None:
    card = _card(None, REPORT)
    facts = model_facts(card)
    assert facts["Input size"] == "240 x 240 pixels, 3 channels"
    assert facts["Centre crop"] == "90% of the image"
    assert facts["Normalisation mean"] == "0.100, 0.200, 0.300"
    assert facts["Preprocessing extra"] == "1"
    assert "Preprocessing crop_mode" not in facts
    assert facts["Calibration temperature"] == "1.250"
    assert class_rows(card) == [{"id": "a", "name": "A", "risk group": "benign"}]
    training, counts = training_facts(card)
    assert training == {"Dataset": "ham10000", "Tags": "x; y", "N images": "5"}
    assert counts == {"split counts": {"t": 5}}
    assert training_commands(card) is None


def test_training_commands_and_structured_facts() -> None:
    card = _card(None, REPORT)
    card.training = {"teacher": {"id": "big", "temperature": 2.0}, "args": {"epochs": 3},
                     "command": "python -m dermlib train --epochs 3"}
    facts, _ = training_facts(card)
    assert facts == {"Teacher": "id: big; temperature: 2.0"}  # commands are not squeezed into the table
    assert training_commands(card) == "python -m dermlib train --epochs 3"
    card.training["lineage"] = ["python -m dermlib train --epochs 2", "(then recalibrated)"]
    assert training_commands(card) == "python -m dermlib train --epochs 2\n\n# (then recalibrated)"
    card.training = {"args": {"epochs": 3}}
    assert training_commands(card).splitlines()[1:] == ["{", '  "epochs": 3', "}"]


def test_facts_describe_a_mask_in_words() -> None:
    card = _card(None, REPORT)
    card.preprocessing = {"crop_mode": "center", "extra_key": "x",
                          "mask": {"boxes": [[0.0, 0.64, 0.46, 1.0]], "fill": "median", "reason": "A logo."}}
    facts = model_facts(card)
    where = "0%-46% of the width, 64%-100% of the height (from the top left)"
    assert facts["Masked before the model"] == f"{where}. A logo."
    del card.preprocessing["mask"]["reason"]
    assert model_facts(card)["Masked before the model"] == (
        f"{where}, filled with the photo's median colour in training and at inference")
    assert "Preprocessing mask" not in facts and "Preprocessing crop_mode" not in facts
    assert facts["Preprocessing extra key"] == "x"
    card.preprocessing = {"mask": {"boxes": [["a"]], "fill": "grey"}}  # broken: shown as it is, no error
    assert "boxes" in model_facts(card)["Masked before the model"]


def test_source_rows_and_pair_line_read_a_combined_report() -> None:
    from dermlib.evaluate.reports import pair_line, source_rows

    def part(n: int, top1: float, f1s: list[tuple[float, int]]) -> dict:
        return {"n": n, "top1_accuracy": top1, "top3_accuracy": 0.9, "weighted_f1": 0.5,
                "per_class": [{"class_id": f"c{i}", "f1": f, "support": s} for i, (f, s) in enumerate(f1s)]}

    report = {"by_source": {"a": part(10, 0.5, [(0.4, 5), (0.6, 5), (0.0, 0)]), "b": part(4, 0.25, [(1.0, 4)])},
              "by_source_categories": {"a": {"top1_accuracy": 0.6}, "b": {"top1_accuracy": 0.25}},
              "eczema_vs_psoriasis": {"all": {"n": 8, "correct": 6, "rate": 0.75, "rate_ci95": [0.41, 0.93],
                                              "by_class": {"eczema": 1.0, "psoriasis": 0.5}}}}
    rows = source_rows(report)
    assert [r["source"] for r in rows] == ["a", "b"] and rows[0]["test photos"] == 10  # unregistered: ids
    # The class that source a never labels (support 0) is left out of its macro-F1.
    assert rows[0]["macro-F1, own classes"] == "0.500" and rows[1]["macro-F1, own classes"] == "1.000"
    assert rows[0]["top-1"] == "50.0%" and rows[0]["top-1, sub-types counted as their condition"] == "60.0%"
    assert "6 (75.0%, 95% interval 41.0%-93.0%" in pair_line(report)
    assert source_rows({"n": 5}) == [] and pair_line({"n": 5}) is None


def test_source_alert_line_gives_each_sources_urgency_figures_as_counts() -> None:
    from dermlib.evaluate.reports import source_alert_line

    alert = {"n_malignant": 221, "n_other": 208, "with_alert": {"sensitivity": 0.9412, "specificity": 0.726}}
    report = {"by_source": {"fitzpatrick17k": {"n": 429, "malignant_alert": alert}, "dermnet-nz": {"n": 444}}}
    line = source_alert_line(report)
    assert "Fitzpatrick17k" in line and "DermNet" not in line  # a source without malignant photos is left out
    assert "for 208 of 221 malignant photos (94.1%) and for 57 of 208 others (specificity 72.6%)" in line
    assert source_alert_line({"by_source": {"a": {"n": 3}}}) is None and source_alert_line({}) is None


def test_selective_line() -> None:
    report = {"selective": {"coverage": 0.1753, "accuracy": 0.8235, "accuracy_abstained": None}}
    assert selective_line(report) == (
        "With the app's uncertainty thresholds the model answers **17.5%** of test images with **82.3%** "
        "accuracy; on the images it flags as uncertain its accuracy is n/a.")
    assert selective_line({"n": 5}) is None



def test_frequent_mistakes_lists_the_largest_confusions_first() -> None:
    from dermlib.evaluate.reports import frequent_mistakes

    report = {"confusion_matrix": {"labels": ["ecz", "pso", "mel"],
                                   "matrix": [[8, 2, 0], [5, 3, 0], [0, 2, 1]]}}
    rows = frequent_mistakes(report, {"ecz": "Eczema", "pso": "Psoriasis"})
    assert [(r["photos of"], r["taken for"], r["test photos"]) for r in rows] == [
        ("Psoriasis", "Eczema", 5), ("mel", "Psoriasis", 2), ("Eczema", "Psoriasis", 2)]  # 2 of 3 before 2 of 10
    assert rows[0]["share of its photos"] == "62%"  # 5 of 8
    assert frequent_mistakes(report, limit=1)[0]["photos of"] == "pso"
    assert frequent_mistakes({"n": 3}) == [] and frequent_mistakes({"confusion_matrix": {
        "labels": ["a"], "matrix": [[4]]}}) == []
