"""The first answer's track record: how often the model was right on test photos when it gave that answer.

Checked on hand-made per-class figures, against the shipped default's own confusion matrix, on the Diagnose
page and in the case report's PDF.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dermlib.inference import ClassScore, Prediction
from dermlib.models import get_card, load_card, load_model
from dermlib.report import build_case, render_pdf
from dermlib.testing import image_bytes, synthetic_skin_image, write_tiny_model
from dermlib.ui.model_summary import track_record

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "app_pages" / "diagnose.py")

# Four tiny classes: class-0 well measured, class-1 on few photos, class-2 never answered, class-3 absent.
PER_CLASS = [
    {"class_id": "class-0", "precision": 0.6, "recall": 0.75, "support": 40, "n_predicted": 50},
    {"class_id": "class-1", "precision": 0.25, "recall": 0.2, "support": 5, "n_predicted": 4},
    {"class_id": "class-2", "precision": 0.0, "recall": 0.0, "support": 7, "n_predicted": 0},
    {"class_id": "class-3", "precision": 0.0, "recall": 0.0, "support": 0, "n_predicted": 3},
]
METRICS = {"split": "test", "n": 52, "top1_accuracy": 0.63, "per_class": PER_CLASS}


def _first(label: str, name: str) -> Prediction:
    return Prediction(model_id="m", probabilities=(), top_k=(ClassScore(label, name, 0.6, "benign"),),
                      risk={"benign": 0.6}, uncertain=False)


@pytest.fixture
def card(tmp_path: Path):
    return load_card(write_tiny_model(tmp_path / "rec", model_id="rec", extra={"metrics": METRICS}))


def test_counts_come_from_precision_and_recall(card) -> None:
    line = track_record(_first("class-0", "Class 0"), card)
    assert line.startswith("**Its record for Class 0** on test photos it never trained on")
    assert "when it answered Class 0 first, it was right 30 of 50 times (60%)" in line
    assert "of the 40 photos that were Class 0, it answered Class 0 first for 30 (75%)" in line
    assert "rough" not in line


def test_few_test_photos_are_called_rough(card) -> None:
    line = track_record(_first("class-1", "Class 1"), card)
    assert "right 1 of 4 times (25%)" in line and "first for 1 (20%)" in line
    assert "With only 5 test photos of this condition, these figures are rough." in line


def test_a_class_never_answered_and_a_class_never_tested(card) -> None:
    never = track_record(_first("class-2", "Class 2"), card)
    assert "it never answered Class 2 first" in never and "first for none of them" in never
    absent = track_record(_first("class-3", "Class 3"), card)
    assert "none of them were Class 3, so this was not measured" in absent


def test_no_per_class_figures_means_no_line(tmp_path: Path) -> None:
    bare = load_card(write_tiny_model(tmp_path / "bare", model_id="bare"))
    assert track_record(_first("class-0", "Class 0"), bare) is None
    assert track_record(Prediction(model_id="m", probabilities=(), top_k=(), risk={}, uncertain=False), bare) is None


def test_the_default_models_counts_match_its_confusion_matrix() -> None:
    """Counts rebuilt from rounded precision and recall equal the stored confusion matrix, class by class."""
    card = get_card("clinical-common38")
    cm = card.metrics["confusion_matrix"]
    matrix, labels = np.asarray(cm["matrix"]), cm["labels"]
    for c in card.classes:
        i = labels.index(c.id)
        line = track_record(_first(c.id, c.name), card)
        support, named, right = int(matrix[i].sum()), int(matrix[:, i].sum()), int(matrix[i, i])
        if named:
            assert f"right {right} of {named} times" in line, c.id
        else:
            assert "never answered" in line, c.id
        assert f"of the {support} photos that were {c.name}" in line, c.id
        assert ("rough" in line) == (support < 20), c.id
    psoriasis = track_record(_first("psoriasis", "Psoriasis"), card)
    assert re.search(r"right \d+ of \d+ times \(\d+%\); of the 42 photos that were Psoriasis", psoriasis)


def test_the_diagnose_page_shows_the_first_answers_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    st.cache_data.clear()
    st.cache_resource.clear()
    root = tmp_path / "weights"
    write_tiny_model(root / "rec", model_id="rec", extra={"metrics": METRICS, "default": True})
    monkeypatch.setenv("DERMLENS_WEIGHTS_DIR", str(root))
    at = AppTest.from_file(PAGE).run(timeout=60)
    at.file_uploader(key="diagnose_upload").upload("lesion.png", image_bytes(synthetic_skin_image(2)), "image/png")
    at.run(timeout=120)
    assert not at.exception
    captions = [c.value for c in at.caption if "Its record for" in c.value]
    assert len(captions) == 1
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    top_name = chart["layout"]["yaxis"]["categoryarray"][-1]  # drawn bottom-up: the first answer is last
    assert captions[0].startswith(f"**Its record for {top_name}** on test photos it never trained on")
    listed = list(reversed(chart["layout"]["yaxis"]["categoryarray"]))
    expander = next(e for e in at.expander if e.label == "Its record for each listed condition")
    assert list(expander.table[0].value["condition"]) == listed  # one row per bar, the first answer first


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) is not installed")
def test_the_case_report_carries_it(tmp_path: Path) -> None:
    loaded = load_model(write_tiny_model(tmp_path / "rep", model_id="rep", extra={"metrics": METRICS}), device="cpu")
    case = build_case(loaded, synthetic_skin_image(3), top_k=3)
    top = case.prediction.top_k[0]
    assert case.track_record is not None and case.track_record.startswith(f"Its record for {top.name}")
    assert "**" not in case.track_record  # plain text in the PDF
    path = tmp_path / "r.pdf"
    path.write_bytes(render_pdf(case))
    text = " ".join(subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True,
                                   text=True, timeout=60).stdout.split())
    assert f"Its record for {top.name}" in text


def test_an_out_of_scope_photo_gets_no_record(card) -> None:
    from dermlib.scope.checker import ScopeResult

    pred = Prediction(model_id="m", probabilities=(), top_k=(ClassScore("class-0", "Class 0", 0.6, "benign"),),
                      risk={"benign": 0.6}, uncertain=False,
                      scope=ScopeResult(False, "not_skin", 9.0, 2.0, message="Not skin."))
    assert track_record(pred, card) is None


def test_the_command_line_prints_the_same_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture) -> None:
    from dermlib.cli import main

    root = tmp_path / "weights"
    write_tiny_model(root / "rec", model_id="rec", extra={"metrics": METRICS, "default": True})
    monkeypatch.setenv("DERMLENS_WEIGHTS_DIR", str(root))
    img = tmp_path / "a.png"
    img.write_bytes(image_bytes(synthetic_skin_image(4)))
    assert main(["predict", str(img), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    top = record["top_k"][0]["name"]
    assert record["track_record"].startswith(f"Its record for {top} on test photos it never trained on: ")
    assert "**" not in record["track_record"]
    assert main(["predict", str(img)]) == 0
    assert f"  Its record for {top} on test photos" in capsys.readouterr().out


def test_eczema_or_psoriasis_first_adds_the_head_to_head_slice(tmp_path: Path) -> None:
    pair = {"all": {"pair": ["class-0", "class-1"], "n": 60, "correct": 48, "rate": 0.8,
                    "by_class": {"class-0": 0.95, "class-1": 0.5}, "n_by_class": {"class-0": 40, "class-1": 20}}}
    folder = write_tiny_model(tmp_path / "pair", model_id="pair",
                              extra={"metrics": {**METRICS, "eczema_vs_psoriasis": pair}})
    card = load_card(folder)
    names = {c.id: c.name for c in card.classes}
    first, second = names["class-0"], names["class-1"]
    line = track_record(_first("class-1", second), card)
    assert f"**{first} or {second.lower()}?** On the 60 test photos of either" in line
    assert "higher on 48 (80%)" in line and f"{first} photos 95% (n=40), {second} photos 50% (n=20)" in line
    assert f"It mistakes {second.lower()} for {first.lower()} more often than the reverse." in line
    assert "test photos of either" not in track_record(_first("class-2", names["class-2"]), card)  # not in the pair
    pair["all"]["by_class"]["class-1"] = 0.75  # 95% (83-99%) against 75% (53-89%): overlapping, no lean claimed
    card = load_card(write_tiny_model(tmp_path / "even", model_id="even",
                                      extra={"metrics": {**METRICS, "eczema_vs_psoriasis": pair}}))
    assert "mistakes" not in track_record(_first("class-0", first), card)


def test_the_default_quotes_its_eczema_psoriasis_slice() -> None:
    card = get_card("clinical-common38")
    pair = card.metrics["eczema_vs_psoriasis"]["all"]
    for label in ("eczema", "psoriasis"):
        name = next(c.name for c in card.classes if c.id == label)
        line = track_record(_first(label, name), card)
        assert f"On the {pair['n']} test photos of either" in line
        assert f"higher on {pair['correct']} ({pair['rate']:.0%})" in line
    assert "test photos of either" not in track_record(_first("acne", "Acne"), card)


def test_every_listed_condition_gets_a_row(card) -> None:
    from dermlib.ui.model_summary import record_rows

    scores = tuple(ClassScore(f"class-{i}", f"Class {i}", p, "benign") for i, p in enumerate((0.4, 0.3, 0.2, 0.1)))
    pred = Prediction(model_id="m", probabilities=(), top_k=scores, risk={"benign": 1.0}, uncertain=False)
    rows = record_rows(pred, card)
    assert [r["condition"] for r in rows] == ["Class 0", "Class 1", "Class 2", "Class 3"]
    assert rows[0] == {"condition": "Class 0", "right when answered first": "30 of 50 (60%)",
                       "photos of it answered first": "30 of 40 (75%)", "note": ""}
    assert rows[1]["right when answered first"] == "1 of 4 (25%)" and rows[1]["note"] == "rough: under 20 photos"
    assert rows[2]["right when answered first"] == "never answered"
    assert rows[2]["photos of it answered first"] == "0 of 7 (0%)"
    assert rows[3]["photos of it answered first"] == "none tested" and rows[3]["note"] == ""
    from dermlib.scope.checker import ScopeResult

    out = Prediction(model_id="m", probabilities=(), top_k=scores, risk={"benign": 1.0}, uncertain=False,
                     scope=ScopeResult(False, "not_skin", 9.0, 2.0, message="Not skin."))
    assert record_rows(out, card) == []
    # When no listed condition needs a note, the table has no empty note column.
    plenty = Prediction(model_id="m", probabilities=(), top_k=scores[:1], risk={"benign": 1.0}, uncertain=False)
    assert list(record_rows(plenty, card)[0]) == ["condition", "right when answered first",
                                                   "photos of it answered first"]
