"""Prediction: calibrated probabilities, ordering, risk totals, abstention."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dermlib.inference import build_prediction, normalized_entropy, predict, predict_batch
from dermlib.models import LoadedModel, load_model
from dermlib.testing import synthetic_skin_image, write_tiny_model


def _sharp_model(tmp_path: Path, temperature: float) -> LoadedModel:
    # A random tiny model is nearly uniform; scale its head so the probabilities are distinct.
    folder = write_tiny_model(tmp_path / f"t{temperature}", temperature=temperature, seed=3)
    loaded = load_model(folder, device="cpu")
    head = loaded.model.get_classifier()
    head.weight.data.mul_(40)
    head.bias.data.copy_(np.array([0.3, -0.2, 0.1, 0.0]) * 5 if False else head.bias.data)
    return loaded


def test_probabilities_sum_to_one_and_top_k_sorted(tiny_loaded: LoadedModel) -> None:
    pred = predict(tiny_loaded, synthetic_skin_image(1), top_k=3)
    assert len(pred.probabilities) == 4
    assert sum(pred.probabilities) == pytest.approx(1.0, abs=1e-6)
    probs = [s.probability for s in pred.top_k]
    assert len(probs) == 3 and probs == sorted(probs, reverse=True)
    assert pred.top_k[0].probability == pytest.approx(max(pred.probabilities))
    assert sum(pred.risk.values()) == pytest.approx(1.0, abs=1e-6)
    # risk totals are sums over the classes of each group
    card = tiny_loaded.card
    benign = sum(p for c, p in zip(card.classes, pred.probabilities, strict=True) if c.risk_group == "benign")
    assert pred.risk["benign"] == pytest.approx(benign)


def test_top_k_is_clamped(tiny_loaded: LoadedModel) -> None:
    assert len(predict(tiny_loaded, synthetic_skin_image(2), top_k=99).top_k) == 4
    assert len(predict(tiny_loaded, synthetic_skin_image(2), top_k=0).top_k) == 1


def test_temperature_changes_confidence_not_ranking(tmp_path: Path) -> None:
    cold = _sharp_model(tmp_path, 1.0)
    hot = _sharp_model(tmp_path, 4.0)
    images = [synthetic_skin_image(s) for s in range(4)]
    p_cold = cold.predict_proba(images)
    p_hot = hot.predict_proba(images)
    assert np.array_equal(np.argsort(-p_cold, axis=1), np.argsort(-p_hot, axis=1))
    assert (p_hot.max(axis=1) < p_cold.max(axis=1)).all()
    assert (normalized_entropy(p_hot) > normalized_entropy(p_cold)).all()


def test_batch_equals_single(tiny_loaded: LoadedModel) -> None:
    images = [synthetic_skin_image(s) for s in range(3)]
    batch = predict_batch(tiny_loaded, images)
    for img, pred in zip(images, batch, strict=True):
        assert np.allclose(pred.probabilities, predict(tiny_loaded, img).probabilities, atol=1e-5)


def test_uncertain_flag_follows_card_thresholds(tiny_loaded: LoadedModel, tmp_path: Path) -> None:
    probs = np.array([0.4, 0.3, 0.2, 0.1])
    sure = build_prediction(tiny_loaded, probs)
    assert not sure.uncertain  # the tiny card's thresholds accept everything
    folder = write_tiny_model(tmp_path / "strict")
    card = json.loads((folder / "card.json").read_text())
    card["calibration"].update({"min_top1_probability": 0.6, "max_normalized_entropy": 0.5})
    (folder / "card.json").write_text(json.dumps(card))
    strict = load_model(folder, device="cpu")
    doubt = build_prediction(strict, probs)
    assert doubt.uncertain and len(doubt.reasons) == 2
    assert "40%" in doubt.reasons[0]
    confident = build_prediction(strict, np.array([0.97, 0.01, 0.01, 0.01]))
    assert not confident.uncertain


def test_normalized_entropy_bounds() -> None:
    assert normalized_entropy(np.array([1.0, 0, 0, 0]))[0] == pytest.approx(0.0)
    assert normalized_entropy(np.full(4, 0.25))[0] == pytest.approx(1.0)


def test_to_dict_is_the_cli_schema(tiny_loaded: LoadedModel) -> None:
    record = predict(tiny_loaded, synthetic_skin_image(5)).to_dict()
    assert set(record) >= {"model", "top_k", "risk", "uncertain"}
    assert set(record["top_k"][0]) == {"label", "name", "probability"}
    json.dumps(record)


def test_uncertainty_reasons_never_print_two_equal_numbers_as_a_comparison() -> None:
    from dermlib.inference import uncertainty_reasons

    calibration = {"min_top1_probability": 0.6474, "max_normalized_entropy": 0.5134}
    close = np.array([0.6461, 0.2, 0.1539])  # rounds to 65% against a 65% threshold at whole percent
    [reason] = [r for r in uncertainty_reasons(close, calibration) if "most likely" in r]
    assert reason == "the most likely class has only 64.6% probability (needs at least 64.7%)"
    far = uncertainty_reasons(np.array([0.3, 0.3, 0.4]), {"min_top1_probability": 0.6, "max_normalized_entropy": 0.5})
    assert far == ["the most likely class has only 40% probability (needs at least 60%)",
                   "the probabilities are spread over many classes (entropy 0.99 > 0.50)"]
