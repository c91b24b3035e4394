"""Reading a model's evaluation and facts from its card (no dataset, no weights)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from dermlib.evaluate import model_reports
from dermlib.evaluate.reports import class_rows, model_facts, training_facts

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
    assert facts["Calibration temperature"] == "1.250"
    assert class_rows(card) == [{"id": "a", "name": "A", "risk group": "benign"}]
    training, counts = training_facts(card)
    assert training == {"Dataset": "ham10000", "Tags": "x; y", "N images": "5"}
    assert counts == {"split counts": {"t": 5}}
