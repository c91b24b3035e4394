"""Clinically sound risk groups (issue 15): premalignant as its own label, inflammatory conditions not growths."""

from __future__ import annotations

from pathlib import Path

import pytest

from dermlib.errors import CardError
from dermlib.inference import ClassScore, Prediction
from dermlib.knowledge import load_knowledge_base
from dermlib.knowledge.base import resolve_card_class
from dermlib.models import scan_models
from dermlib.models.card import ModelCard
from dermlib.ui.model_summary import risk_notes

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


def _classes(class_id: str):
    cards, _ = scan_models(WEIGHTS)
    found = [(card, c) for card in cards for c in card.classes if c.id == class_id]
    assert found, f"no shipped model has the class {class_id}"
    return found


def test_actinic_keratosis_is_premalignant_with_a_source() -> None:
    for card, info in _classes("actinic-keratosis"):
        assert info.risk_group == "malignant"  # the dataset's group: the risk sums and metrics keep it
        assert info.display_risk == "premalignant", card.id
        assert "squamous cell carcinoma" in info.risk_note and "Criscione" in info.risk_note


def test_prurigo_nodularis_is_not_a_growth() -> None:
    for card, info in _classes("prurigo-nodularis"):
        assert info.display_risk == "non-neoplastic", card.id
        assert "inflammatory" in info.risk_note and "not a growth" in info.risk_note


def test_library_and_cards_agree_on_every_shipped_class() -> None:
    kb = load_knowledge_base()
    cards, _ = scan_models(WEIGHTS)
    mismatches = []
    for card in cards:
        for info in card.classes:
            entry = resolve_card_class(kb, card, info)
            if entry is not None and entry.risk_group != info.display_risk and entry.risk_group in (
                    "premalignant", "benign", "malignant", "non-neoplastic") and info.id == entry.id:
                mismatches.append((card.id, info.id, entry.risk_group, info.display_risk))
    assert not mismatches


def test_a_risk_label_needs_a_reason_and_a_known_value() -> None:
    base = {"id": "m", "name": "M", "architecture": "a", "preprocessing": {
        "input_size": [3, 8, 8], "mean": [0, 0, 0], "std": [1, 1, 1], "interpolation": "bilinear"},
        "cam": {"target_layer": "x"}}
    with pytest.raises(CardError, match="risk_note"):
        ModelCard.from_dict({**base, "classes": [{"id": "a", "name": "A", "risk_group": "malignant",
                                                  "risk_label": "premalignant"}]})
    with pytest.raises(CardError, match="risk_label"):
        ModelCard.from_dict({**base, "classes": [{"id": "a", "name": "A", "risk_group": "malignant",
                                                  "risk_label": "scary", "risk_note": "x"}]})


def test_diagnose_notes_the_premalignant_class_when_it_is_listed() -> None:
    card, _ = _classes("actinic-keratosis")[0]
    pred = Prediction(model_id=card.id, probabilities=(), top_k=(
        ClassScore("actinic-keratosis", "Actinic keratosis", 0.5, "malignant"),
        ClassScore("eczema", "Eczema", 0.3, "non-neoplastic")), risk={"malignant": 0.5}, uncertain=False)
    notes = risk_notes(pred, card)
    assert len(notes) == 1 and notes[0].startswith("**Actinic keratosis: premalignant.**")


def test_humanize_writes_a_trailing_abbreviation_as_readers_expect() -> None:
    from dermlib.data.labels import humanize

    assert humanize("superficial-spreading-melanoma-ssm") == "Superficial spreading melanoma (SSM)"
    assert humanize("acne_vulgaris") == "Acne vulgaris"
    assert humanize("ssm") == "Ssm"  # a label that is only the abbreviation keeps its one word
