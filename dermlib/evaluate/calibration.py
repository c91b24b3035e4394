"""Calibration and selective prediction, in plain numpy.

* :func:`softmax` and :func:`fit_temperature`: temperature scaling (Guo et al., 2017). One scalar
  ``T`` divides the logits; it is fitted on the validation split by minimising the negative
  log-likelihood. It never changes the arg-max, only how confident the probabilities are.
* :func:`expected_calibration_error` and :func:`reliability_bins`: ECE over equal-width confidence bins
  and the bins a reliability diagram draws; :func:`ece_noise_floor`: how much of an ECE is noise.
* :func:`held_out_calibration_check`: ECE on the validation and test splits pooled, each half scaled by
  the temperature fitted on the other, so a small test split does not drown calibration in noise.
* :func:`choose_uncertain_thresholds` and :func:`is_uncertain`: the "uncertain, please see a
  clinician" rule the app applies at inference, chosen on validation so that the predictions it
  keeps reach a target accuracy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

TEMPERATURE_BOUNDS = (0.05, 20.0)
DEFAULT_TARGET_ACCURACY = 0.9


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Return ``softmax(logits / temperature)`` along the last axis, computed stably.

    Args:
        logits: Array of shape (..., C).
        temperature: Positive scalar; > 1 softens, < 1 sharpens.

    Returns:
        Probabilities of the same shape, float64, rows summing to 1.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _check_labels(n_rows: int, n_classes: int, labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != n_rows:
        raise ValueError(f"labels must have shape ({n_rows},), got {labels.shape}")
    if n_rows and not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.mod(labels, 1) == 0):
            raise ValueError("labels must be integer class indices")
        labels = labels.astype(np.int64)
    if n_rows and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got range {labels.min()}..{labels.max()}")
    return labels.astype(np.int64)


def _check_probs(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"probs must be a 2-D array (N, C), got shape {probs.shape}")
    return probs, _check_labels(probs.shape[0], probs.shape[1], labels)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits / temperature)``."""
    z = np.asarray(logits, dtype=np.float64)
    labels = _check_labels(z.shape[0], z.shape[1], labels)
    z = z / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(z.shape[0]), labels]))


def fit_temperature(
    logits: np.ndarray,
    labels: np.ndarray,
    bounds: tuple[float, float] = TEMPERATURE_BOUNDS,
    tol: float = 1e-5,
) -> float:
    """Fit the temperature that minimises the validation NLL.

    The NLL is convex in ``1 / T`` (a log-sum-exp of terms linear in it minus a linear term), so it is
    unimodal in ``log T`` and a golden-section search over ``log T`` inside ``bounds`` finds the optimum
    without gradients or extra dependencies.

    Args:
        logits: Validation logits, shape (N, C).
        labels: Integer labels, shape (N,).
        bounds: Smallest and largest temperature allowed.
        tol: Stop when the bracket in ``log T`` is narrower than this.

    Returns:
        The fitted temperature (1.0 when there is nothing to fit: no rows or one class).
    """
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"logits must be a 2-D array (N, C), got shape {z.shape}")
    labels = _check_labels(z.shape[0], z.shape[1], labels)
    if z.shape[0] == 0 or z.shape[1] < 2:
        return 1.0
    lo, hi = math.log(bounds[0]), math.log(bounds[1])

    def objective(log_t: float) -> float:
        return nll(z, labels, math.exp(log_t))

    inv_phi = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = lo, hi
    c, d = b - inv_phi * (b - a), a + inv_phi * (b - a)
    fc, fd = objective(c), objective(d)
    while b - a > tol:
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - inv_phi * (b - a)
            fc = objective(c)
        else:
            a, c, fc = c, d, fd
            d = a + inv_phi * (b - a)
            fd = objective(d)
    best = (a + b) / 2.0
    # The optimum may sit on a bound (e.g. perfectly separable data wants T -> 0).
    candidates = [(objective(best), best), (objective(lo), lo), (objective(hi), hi)]
    return float(math.exp(min(candidates)[1]))


def _bin_index(conf: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width bin of each confidence. Bins are (lower, upper]; a confidence of exactly 0 (impossible
    for a softmax) joins bin 0."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)


def reliability_bins(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> list[dict[str, Any]]:
    """Equal-width bins of top-1 confidence for a reliability diagram.

    Args:
        probs: Probabilities, shape (N, C).
        labels: Integer labels, shape (N,).
        n_bins: Number of equal-width bins over [0, 1].

    Returns:
        One dict per bin: ``lower``, ``upper``, ``count``, ``confidence`` (mean top-1 probability) and
        ``accuracy`` (fraction correct); the last two are None for an empty bin.
    """
    probs, labels = _check_probs(probs, labels)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    if probs.shape[0]:
        conf = probs.max(axis=1)
        correct = probs.argmax(axis=1) == labels
        idx = _bin_index(conf, n_bins)
    else:
        conf = correct = idx = np.zeros(0)
    bins = []
    for b in range(n_bins):
        mask = idx == b
        count = int(mask.sum())
        bins.append(
            {
                "lower": float(edges[b]),
                "upper": float(edges[b + 1]),
                "count": count,
                "confidence": float(conf[mask].mean()) if count else None,
                "accuracy": float(correct[mask].mean()) if count else None,
            }
        )
    return bins


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error of the top-1 confidence over ``n_bins`` equal-width bins.

    ``ECE = sum_b (n_b / N) * |accuracy_b - confidence_b|``.

    Args:
        probs: Probabilities, shape (N, C).
        labels: Integer labels, shape (N,).
        n_bins: Number of equal-width bins over [0, 1].

    Returns:
        The ECE in [0, 1] (0.0 for no rows).
    """
    bins = reliability_bins(probs, labels, n_bins)
    total = sum(b["count"] for b in bins)
    if total == 0:
        return 0.0
    return float(sum(b["count"] / total * abs(b["accuracy"] - b["confidence"]) for b in bins if b["count"]))


def ece_noise_floor(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15, draws: int = 2000,
                    seed: int = 0) -> dict[str, Any]:
    """The ECE a perfectly calibrated model would show with these confidences on this many images.

    ECE is biased upwards on small test sets: even a perfectly calibrated model shows a positive ECE,
    because each bin's accuracy is estimated from few images. Simulating such a model (each prediction
    counted correct with probability equal to its confidence) gives the noise floor: a measured ECE
    below its 95th percentile cannot be told apart from perfect calibration on this data.

    Args:
        probs: Probabilities, shape (N, C).
        labels: Integer labels, shape (N,) (only their count and validity are used).
        n_bins: Equal-width bins, as in :func:`expected_calibration_error`.
        draws: Simulated test sets.
        seed: Random seed (the result is deterministic).

    Returns:
        ``if_calibrated`` (mean ECE of the simulated calibrated model) and ``if_calibrated_p95`` (its
        95th percentile); empty for no rows.
    """
    probs, labels = _check_probs(probs, labels)
    n = probs.shape[0]
    if n == 0:
        return {}
    rng = np.random.default_rng(seed)
    conf = probs.max(axis=1)
    idx = _bin_index(conf, n_bins)
    hits = (rng.random((draws, n)) < conf).astype(np.float64)
    # Per draw and bin: (number correct - summed confidence); ECE = sum_b |that| / N.
    offsets = (np.arange(draws)[:, None] * n_bins + idx[None, :]).ravel()
    gap = (np.bincount(offsets, weights=hits.ravel(), minlength=draws * n_bins)
           - np.bincount(offsets, weights=np.broadcast_to(conf, (draws, n)).ravel(), minlength=draws * n_bins))
    simulated = np.abs(gap.reshape(draws, n_bins)).sum(axis=1) / n
    return {"if_calibrated": float(simulated.mean()), "if_calibrated_p95": float(np.percentile(simulated, 95))}


def held_out_calibration_check(
    val_logits: np.ndarray,
    val_labels: np.ndarray,
    test_logits: np.ndarray,
    test_labels: np.ndarray,
    temperature: float,
    n_bins: int = 15,
) -> dict[str, Any]:
    """Measure how well temperature scaling calibrates a model on twice the held-out images.

    On a few hundred test images the binned ECE is dominated by sampling noise (see
    :func:`ece_noise_floor`). This check pools the validation and test splits and cross-fits the
    temperature: validation images are scaled by the temperature fitted on the test split and test images
    by the one fitted on validation, so no image is scored with a temperature fitted on it. The result
    measures the calibration procedure (one temperature fitted on held-out data); ``temperature_val`` and
    ``temperature_test`` show how much that temperature depends on which half it was fitted on. The pooled
    ECE under the model's own ``temperature`` is also reported; there the validation half is in-sample.

    Args:
        val_logits: Validation logits, shape (N_val, C).
        val_labels: Validation labels, shape (N_val,).
        test_logits: Test logits, shape (N_test, C).
        test_labels: Test labels, shape (N_test,).
        temperature: The model's own temperature (fitted on validation).
        n_bins: Equal-width bins, as in :func:`expected_calibration_error`.

    Returns:
        ``n_val``, ``n_test``, ``n``, ``n_bins``, ``temperature``, ``temperature_val`` and
        ``temperature_test`` (each fitted on that split alone), ``ece_test`` (test split, model's
        temperature), ``ece_pooled`` (both splits, model's temperature), ``ece_cross_fitted`` (both splits,
        cross-fitted: the headline), ``ece_if_calibrated`` and ``ece_if_calibrated_p95`` (what a perfectly
        calibrated model would show with the cross-fitted confidences on this many images) and ``bins``
        (the cross-fitted reliability bins).

    Raises:
        ValueError: Either split is empty, or the two disagree on the number of classes.
    """
    val_logits = np.asarray(val_logits, dtype=np.float64)
    test_logits = np.asarray(test_logits, dtype=np.float64)
    if val_logits.ndim != 2 or test_logits.ndim != 2 or val_logits.shape[1] != test_logits.shape[1]:
        raise ValueError(f"logits must be 2-D with the same classes, got {val_logits.shape} and {test_logits.shape}")
    if val_logits.shape[0] == 0 or test_logits.shape[0] == 0:
        raise ValueError("both the validation and the test split need images for the calibration check")
    val_labels = _check_labels(val_logits.shape[0], val_logits.shape[1], val_labels)
    test_labels = _check_labels(test_logits.shape[0], test_logits.shape[1], test_labels)
    t_val = fit_temperature(val_logits, val_labels)
    t_test = fit_temperature(test_logits, test_labels)
    labels = np.concatenate([val_labels, test_labels])
    crossed = np.concatenate([softmax(val_logits, t_test), softmax(test_logits, t_val)])
    pooled = softmax(np.concatenate([val_logits, test_logits]), temperature)
    floor = ece_noise_floor(crossed, labels, n_bins=n_bins)
    return {
        "n_val": int(val_logits.shape[0]),
        "n_test": int(test_logits.shape[0]),
        "n": int(labels.shape[0]),
        "n_bins": int(n_bins),
        "temperature": float(temperature),
        "temperature_val": float(t_val),
        "temperature_test": float(t_test),
        "ece_test": expected_calibration_error(pooled[val_logits.shape[0]:], test_labels, n_bins),
        "ece_pooled": expected_calibration_error(pooled, labels, n_bins),
        "ece_cross_fitted": expected_calibration_error(crossed, labels, n_bins),
        "ece_if_calibrated": floor["if_calibrated"],
        "ece_if_calibrated_p95": floor["if_calibrated_p95"],
        "bins": reliability_bins(crossed, labels, n_bins),
    }


def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats along the last axis (0 * log 0 counts as 0)."""
    p = np.asarray(probs, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=-1)


def normalized_entropy(probs: np.ndarray) -> np.ndarray:
    """Entropy divided by log(C): 0 for a one-hot vector, 1 for the uniform one (0 when C < 2)."""
    p = np.asarray(probs, dtype=np.float64)
    n_classes = p.shape[-1]
    return entropy(p) / math.log(n_classes) if n_classes > 1 else np.zeros(p.shape[:-1])


def _best_cut(scores: np.ndarray, correct: np.ndarray, target: float) -> tuple[float, int, bool]:
    """Pick a cut on ``scores`` (higher = keep first) so the kept rows reach ``target`` accuracy.

    Only cuts between distinct score values are valid (tied rows are kept or dropped together).
    Returns (threshold score, rows kept, reached). When the target is reachable the cut keeping the
    most rows wins; otherwise the cut with the best accuracy (then the most rows).
    """
    order = np.argsort(-scores, kind="stable")
    s, c = scores[order], correct[order].astype(np.float64)
    n = s.shape[0]
    kept = np.arange(1, n + 1)
    acc = np.cumsum(c) / kept
    # A cut after position i is valid when the next score is strictly lower (or i is the last row).
    valid = np.ones(n, dtype=bool)
    valid[:-1] = s[:-1] > s[1:]
    ok = valid & (acc >= target - 1e-12)
    if ok.any():
        i = int(np.flatnonzero(ok)[-1])
        return float(s[i]), int(kept[i]), True
    cand = np.flatnonzero(valid)
    best_acc = acc[cand].max()
    i = int(cand[np.flatnonzero(acc[cand] >= best_acc - 1e-12)[-1]])
    return float(s[i]), int(kept[i]), False


def choose_uncertain_thresholds(
    probs: np.ndarray,
    labels: np.ndarray,
    target_accuracy: float = DEFAULT_TARGET_ACCURACY,
) -> dict[str, Any]:
    """Choose the abstention thresholds that make the kept predictions reach ``target_accuracy``.

    Two rules are fitted on (calibrated) validation probabilities, each on its own: the smallest
    top-1 probability ``t`` such that rows with ``max(p) >= t`` reach the target accuracy, and the
    largest entropy ``h`` (nats) such that rows with ``entropy(p) <= h`` reach it. At inference a
    prediction is uncertain when either rule flags it (:func:`is_uncertain`); the reported
    ``coverage`` and ``accuracy`` are those of the combined rule on the given data.

    Args:
        probs: Validation probabilities, shape (N, C).
        labels: Integer labels, shape (N,).
        target_accuracy: Accuracy the kept predictions must reach, in (0, 1].

    Returns:
        Dict with ``min_top1_probability``, ``max_entropy`` (nats), ``max_normalized_entropy`` (the same
        cut divided by log(C), in [0, 1], the form model cards store), ``target_accuracy``,
        ``coverage`` (fraction kept by the combined rule), ``accuracy`` (of those kept; None if
        none), ``n``, ``n_kept``, ``reached`` (False when no threshold reaches the target; the
        thresholds are then the ones with the best accuracy available) and a human-readable ``note``.
    """
    if not 0 < target_accuracy <= 1:
        raise ValueError(f"target_accuracy must be in (0, 1], got {target_accuracy}")
    probs, labels = _check_probs(probs, labels)
    n = probs.shape[0]
    if n == 0:
        return {
            "min_top1_probability": None,
            "max_entropy": None,
            "max_normalized_entropy": None,
            "target_accuracy": float(target_accuracy),
            "coverage": None,
            "accuracy": None,
            "n": 0,
            "n_kept": 0,
            "reached": False,
            "note": "No validation rows: no thresholds could be chosen.",
        }
    conf = probs.max(axis=1)
    ent = entropy(probs)
    correct = probs.argmax(axis=1) == labels
    t_top1, _, reached_top1 = _best_cut(conf, correct, target_accuracy)
    neg_h, _, reached_ent = _best_cut(-ent, correct, target_accuracy)
    n_classes = probs.shape[1]
    thresholds = {
        "min_top1_probability": t_top1,
        "max_entropy": float(-neg_h),
        # The same cut as a share of the largest possible entropy log(C): the form model cards keep.
        "max_normalized_entropy": float(-neg_h / math.log(n_classes)) if n_classes > 1 else 1.0,
    }
    # Same rule (and tolerance) as is_uncertain, vectorised.
    keep = (conf >= t_top1 - 1e-12) & (ent <= -neg_h + 1e-12)
    n_kept = int(keep.sum())
    accuracy = float(correct[keep].mean()) if n_kept else None
    reached = reached_top1 and reached_ent
    if reached:
        note = (
            f"Keeping predictions with top-1 probability >= {t_top1:.3f} and entropy <= {-neg_h:.3f} "
            f"nats keeps {n_kept / n:.0%} of validation images at {accuracy:.1%} accuracy "
            f"(target {target_accuracy:.0%})."
        )
    else:
        note = (
            f"The target accuracy {target_accuracy:.0%} is not reachable on validation; the thresholds "
            f"give the best accuracy available ({(accuracy or 0):.1%} on {n_kept / n:.0%} of images)."
        )
    return {
        **thresholds,
        "target_accuracy": float(target_accuracy),
        "coverage": n_kept / n,
        "accuracy": accuracy,
        "n": int(n),
        "n_kept": n_kept,
        "reached": bool(reached),
        "note": note,
    }


def is_uncertain(probs_row: np.ndarray, thresholds: dict[str, Any] | None) -> bool:
    """Return True when a prediction should be shown as uncertain.

    Args:
        probs_row: Calibrated probabilities of one image, shape (C,).
        thresholds: Dict from :func:`choose_uncertain_thresholds` or a card's ``calibration`` (keys
            ``min_top1_probability``, ``max_entropy`` in nats, ``max_normalized_entropy`` in [0, 1]; a
            missing or None key is not applied, other keys are ignored). None or empty: never uncertain.

    Returns:
        True when the top-1 probability is below ``min_top1_probability`` or the entropy is above
        ``max_entropy`` (or its normalised form above ``max_normalized_entropy``).
    """
    if not thresholds:
        return False
    p = np.asarray(probs_row, dtype=np.float64).ravel()
    min_top1 = thresholds.get("min_top1_probability")
    max_ent = thresholds.get("max_entropy")
    max_norm = thresholds.get("max_normalized_entropy")
    # A tiny tolerance so that the validation row that set a threshold is itself kept.
    if min_top1 is not None and p.max() < float(min_top1) - 1e-12:
        return True
    if max_ent is not None and float(entropy(p)) > float(max_ent) + 1e-12:
        return True
    return bool(max_norm is not None and float(normalized_entropy(p)) > float(max_norm) + 1e-12)
