"""Temperature scaling, ECE, and the abstention thresholds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dermlib.evaluate import (
    choose_uncertain_thresholds,
    entropy,
    expected_calibration_error,
    fit_temperature,
    held_out_calibration_check,
    is_uncertain,
    normalized_entropy,
    reliability_bins,
    softmax,
)
from dermlib.evaluate.calibration import ece_noise_floor, nll


def _calibrated(n: int = 3000, c: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose softmax is the true label distribution (labels are drawn from it)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(n, c))
    probs = softmax(logits)
    labels = (probs.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return logits, labels


def test_softmax() -> None:
    logits = np.array([[1.0, 2.0, 3.0], [1000.0, 1000.0, 0.0]])
    p = softmax(logits)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[1], [0.5, 0.5, 0.0], atol=1e-12)
    np.testing.assert_allclose(softmax(logits[:1] + 7.0), p[:1])
    assert np.ptp(softmax(logits[:1], temperature=1e6)) < 1e-5
    with pytest.raises(ValueError):
        softmax(logits, temperature=0)


def test_ece_known_example() -> None:
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    labels = np.array([0, 1, 0, 1])
    # Bin of 0.9: confidence 0.9, accuracy 0.5; bin of 0.6: confidence 0.6, accuracy 1.
    assert expected_calibration_error(probs, labels) == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)
    bins = [b for b in reliability_bins(probs, labels) if b["count"]]
    assert [(b["count"], b["confidence"], b["accuracy"]) for b in bins] == [
        (2, pytest.approx(0.6), 1.0),
        (2, pytest.approx(0.9), 0.5),
    ]
    assert expected_calibration_error(np.eye(3), np.arange(3)) == 0.0


def test_temperature_recovers_overconfidence() -> None:
    logits, labels = _calibrated()
    over = 3.0 * logits
    t = fit_temperature(over, labels)
    assert t == pytest.approx(3.0, rel=0.15)
    assert nll(over, labels, t) < nll(over, labels) - 0.1
    before = expected_calibration_error(softmax(over), labels)
    after = expected_calibration_error(softmax(over, t), labels)
    assert after < before / 2 and after < 0.05
    # Temperature never changes the predicted class.
    np.testing.assert_array_equal(softmax(over, t).argmax(1), over.argmax(1))


def test_temperature_respects_bounds() -> None:
    logits = np.array([[5.0, 0.0], [0.0, 5.0]] * 10)
    labels = np.array([0, 1] * 10)
    assert fit_temperature(logits, labels) == pytest.approx(0.05)  # separable: wants T -> 0
    assert fit_temperature(logits, 1 - labels) == pytest.approx(20.0)  # always wrong: wants T -> inf
    assert fit_temperature(np.zeros((0, 3)), np.zeros(0, int)) == 1.0


def test_entropy() -> None:
    assert entropy(np.array([1.0, 0.0])) == 0.0
    assert entropy(np.full(4, 0.25)) == pytest.approx(math.log(4))
    np.testing.assert_allclose(normalized_entropy(np.array([[0.25] * 4, [1, 0, 0, 0]])), [1.0, 0.0])


def test_thresholds_by_hand() -> None:
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])
    labels = np.array([0, 0, 1, 0])  # right, right, wrong, right
    th = choose_uncertain_thresholds(probs, labels, target_accuracy=0.8)
    assert th["reached"] and th["min_top1_probability"] == pytest.approx(0.8)
    assert th["max_entropy"] == pytest.approx(float(entropy(probs[1])))
    assert th["max_normalized_entropy"] == pytest.approx(float(normalized_entropy(probs[1])))
    assert (th["coverage"], th["accuracy"], th["n_kept"]) == (0.5, 1.0, 2)
    th75 = choose_uncertain_thresholds(probs, labels, target_accuracy=0.75)
    assert th75["min_top1_probability"] == pytest.approx(0.6) and th75["coverage"] == 1.0


def test_thresholds_reach_target_on_synthetic_data() -> None:
    logits, labels = _calibrated(seed=1)
    val, test = slice(0, 1500), slice(1500, None)
    probs = softmax(logits)
    th = choose_uncertain_thresholds(probs[val], labels[val], target_accuracy=0.9)
    assert th["reached"] and th["accuracy"] >= 0.9 and 0.05 < th["coverage"] < 0.95
    kept = np.array([not is_uncertain(p, th) for p in probs[val]])
    assert kept.mean() == pytest.approx(th["coverage"])
    # It carries over to held-out data (calibrated synthetic data, so roughly).
    kept_test = np.array([not is_uncertain(p, th) for p in probs[test]])
    acc_test = np.mean(probs[test].argmax(1)[kept_test] == labels[test][kept_test])
    assert acc_test > 0.85


def test_unreachable_target_reports_best() -> None:
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4]])
    labels = np.array([1, 0, 1])  # the most confident row is wrong
    th = choose_uncertain_thresholds(probs, labels, target_accuracy=0.9)
    assert not th["reached"] and "not reachable" in th["note"]
    assert th["min_top1_probability"] == pytest.approx(0.8)  # best accuracy: 1 of 2
    assert th["accuracy"] == 0.5
    with pytest.raises(ValueError):
        choose_uncertain_thresholds(probs, labels, target_accuracy=0)


def test_is_uncertain() -> None:
    row = np.array([0.5, 0.3, 0.2])
    assert not is_uncertain(row, None) and not is_uncertain(row, {})
    assert is_uncertain(row, {"min_top1_probability": 0.6})
    assert not is_uncertain(row, {"min_top1_probability": 0.5})
    assert is_uncertain(row, {"max_entropy": 0.5})
    assert not is_uncertain(row, {"max_entropy": 1.1, "temperature": 1.3})
    # The form model cards keep (see dermlib.models.card): entropy / log(C).
    assert is_uncertain(row, {"max_normalized_entropy": 0.8})
    assert not is_uncertain(row, {"max_normalized_entropy": 0.95, "min_top1_probability": None})


def _two_class(conf: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities whose top-1 confidence is ``conf`` and labels that make it right where ``correct``."""
    probs = np.stack([conf, 1 - conf], axis=1)
    return probs, np.where(correct, 0, 1)


def test_ece_noise_floor_by_hand() -> None:
    # 100 predictions at confidence 0.5: a calibrated model gets Binomial(100, 0.5) right, and its ECE is
    # E|X/100 - 0.5| = 0.05 * sqrt(2/pi) = 0.0399 (normal approximation).
    probs, labels = _two_class(np.full(100, 0.5), np.arange(100) % 2 == 0)
    out = ece_noise_floor(probs, labels, n_bins=15, draws=4000)
    assert out["if_calibrated"] == pytest.approx(0.05 * math.sqrt(2 / math.pi), abs=0.003)
    assert out["if_calibrated"] < out["if_calibrated_p95"] <= 0.1  # P(|X - 50| >= 10) is about 5%
    # Always sure and always right: no noise at all.
    probs, labels = _two_class(np.full(50, 1.0), np.ones(50, dtype=bool))
    assert ece_noise_floor(probs, labels) == {"if_calibrated": 0.0, "if_calibrated_p95": 0.0}
    assert ece_noise_floor(np.zeros((0, 2)), np.zeros(0, dtype=int)) == {}


def test_ece_noise_separates_calibrated_from_overconfident() -> None:
    rng = np.random.default_rng(3)
    conf = rng.uniform(0.5, 1.0, 400)
    calibrated = _two_class(conf, rng.random(400) < conf)
    over = _two_class(conf, rng.random(400) < conf - 0.25)
    cal_out, over_out = ece_noise_floor(*calibrated), ece_noise_floor(*over)
    assert expected_calibration_error(*calibrated) <= cal_out["if_calibrated_p95"]
    assert expected_calibration_error(*over) > over_out["if_calibrated_p95"]
    # The floor shrinks with more images (about 1/sqrt(n)).
    conf4k = rng.uniform(0.5, 1.0, 4000)
    assert ece_noise_floor(*_two_class(conf4k, rng.random(4000) < conf4k))["if_calibrated"] < 0.5 * cal_out[
        "if_calibrated"]
    # Deterministic for a seed.
    assert ece_noise_floor(*over) == over_out


def test_held_out_check_cross_fits_the_temperature_by_hand() -> None:
    val_logits, val_y = _calibrated(n=300, seed=1)
    test_logits, test_y = _calibrated(n=200, seed=2)
    val_logits, test_logits = 2.0 * val_logits, 2.5 * test_logits  # over-confident, by different amounts
    check = held_out_calibration_check(val_logits, val_y, test_logits, test_y, temperature=1.7)
    t_val, t_test = fit_temperature(val_logits, val_y), fit_temperature(test_logits, test_y)
    assert check["temperature_val"] == pytest.approx(t_val) and check["temperature_test"] == pytest.approx(t_test)
    assert t_val == pytest.approx(2.0, rel=0.2) and t_test == pytest.approx(2.5, rel=0.2)
    labels = np.concatenate([val_y, test_y])
    # Each half is scaled by the temperature fitted on the *other* half.
    crossed = np.concatenate([softmax(val_logits, t_test), softmax(test_logits, t_val)])
    assert check["ece_cross_fitted"] == pytest.approx(expected_calibration_error(crossed, labels))
    pooled = softmax(np.concatenate([val_logits, test_logits]), 1.7)
    assert check["ece_pooled"] == pytest.approx(expected_calibration_error(pooled, labels))
    assert check["ece_test"] == pytest.approx(expected_calibration_error(softmax(test_logits, 1.7), test_y))
    assert (check["n_val"], check["n_test"], check["n"], check["n_bins"]) == (300, 200, 500, 15)
    assert sum(b["count"] for b in check["bins"]) == 500
    floor = ece_noise_floor(crossed, labels)
    assert check["ece_if_calibrated"] == pytest.approx(floor["if_calibrated"])


def test_held_out_check_halves_the_noise_and_sees_real_miscalibration() -> None:
    # Two halves of a perfectly calibrated model: the pooled check sits at its (lower) noise floor.
    val_logits, val_y = _calibrated(n=400, seed=3)
    test_logits, test_y = _calibrated(n=400, seed=4)
    check = held_out_calibration_check(val_logits, val_y, test_logits, test_y, temperature=1.0)
    single = ece_noise_floor(softmax(test_logits), test_y)
    assert check["ece_if_calibrated"] < 0.8 * single["if_calibrated"]
    assert check["ece_cross_fitted"] <= check["ece_if_calibrated_p95"]
    # Temperature cannot fix a model that is over-confident on one half and under-confident on the
    # other: cross-fitting exposes it, where the in-sample fits would hide it.
    skewed = held_out_calibration_check(3.0 * val_logits, val_y, test_logits / 3.0, test_y, temperature=1.0)
    assert skewed["ece_cross_fitted"] > 3 * skewed["ece_if_calibrated_p95"]
    refit_each = np.concatenate([softmax(3.0 * val_logits, skewed["temperature_val"]),
                                 softmax(test_logits / 3.0, skewed["temperature_test"])])
    labels = np.concatenate([val_y, test_y])
    assert expected_calibration_error(refit_each, labels) < skewed["ece_cross_fitted"] / 3


def test_held_out_check_rejects_bad_input() -> None:
    logits, labels = _calibrated(n=20)
    with pytest.raises(ValueError, match="both the validation and the test split"):
        held_out_calibration_check(logits[:0], labels[:0], logits, labels, 1.0)
    with pytest.raises(ValueError, match="same classes"):
        held_out_calibration_check(logits, labels, logits[:, :3], np.minimum(labels, 2), 1.0)
    with pytest.raises(ValueError):
        held_out_calibration_check(logits, labels + 10, logits, labels, 1.0)


def test_malignant_alert_is_scored_per_source_where_a_source_has_malignant_photos() -> None:
    """A multi-source card carries the urgency line's sensitivity and specificity for each source alone."""
    from dermlib.train.finalize import add_alert_by_source

    malignant = np.array([False, True])  # class 1 is malignant
    # Source "a": two malignant photos (one above the alert threshold) and two benign (one above it).
    # Source "b": benign photos only, so no sensitivity can be measured there.
    probs = np.array([[0.2, 0.8], [0.95, 0.05], [0.9, 0.1], [0.99, 0.01], [0.97, 0.03], [0.96, 0.04]])
    labels = np.array([1, 1, 0, 0, 0, 0])
    sources = ["a", "a", "a", "a", "b", "b"]
    metrics = {"by_source": {"a": {}, "b": {}}}
    add_alert_by_source(metrics, probs, labels, sources, malignant, threshold=0.08)
    alert = metrics["by_source"]["a"]["malignant_alert"]
    assert (alert["n_malignant"], alert["n_other"]) == (2, 2)
    assert alert["with_alert"]["sensitivity"] == 0.5  # 0.8 fires, 0.05 does not
    assert alert["with_alert"]["specificity"] == 0.5  # 0.1 fires on a benign photo, 0.01 does not
    assert "malignant_alert" not in metrics["by_source"]["b"]
