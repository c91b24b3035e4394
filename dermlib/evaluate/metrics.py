"""The evaluation report of a classifier: every number the Model page and the model card show.

Everything is computed in numpy from predicted probabilities and integer labels, so the same code
scores a model at training time (the training CLI stores the report in the card's ``metrics``) and
anywhere else, without a dataset or a framework. :func:`evaluation_report` returns a plain,
JSON-serialisable dict (floats rounded to 4 decimals, None where a number is undefined); the keys are
listed in its docstring.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from dermlib.evaluate.calibration import (
    _check_probs,
    ece_noise_floor,
    entropy,
    expected_calibration_error,
    is_uncertain,
    reliability_bins,
)

REPORT_VERSION = 1
ECE_BINS = 15
MALIGNANT = "malignant"
# Fitzpatrick skin types pooled in pairs: single types are too small in every public test set.
SKIN_TYPE_GROUPS: dict[str, tuple[int, ...]] = {"I-II": (1, 2), "III-IV": (3, 4), "V-VI": (5, 6)}
HEADLINE_KEYS = (
    "n",
    "top1_accuracy",
    "top3_accuracy",
    "balanced_accuracy",
    "macro_f1",
    "weighted_f1",
    "risk_group_accuracy",
)
_DECIMALS = 4
_COVERAGE_POINTS = 100


# ----------------------------------------------------------------------------- small metric helpers


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts with true classes as rows and predicted classes as columns, shape (C, C)."""
    flat = np.asarray(labels, dtype=np.int64) * n_classes + np.asarray(preds, dtype=np.int64)
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den > 0)
    return out


def precision_recall_f1(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1 and support from a confusion matrix (0 where undefined)."""
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * tp, support + predicted)
    return precision, recall, f1, support


def top_k_accuracy(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of rows whose true class is among the ``k`` most probable (k is capped at C)."""
    k = min(k, probs.shape[1])
    # argpartition would break ties arbitrarily; a stable sort keeps the lower class index first,
    # the same tie rule argmax uses, so top-1 here equals plain accuracy.
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank (as scipy.stats.rankdata)."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    boundaries = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1], True])
    ranks_sorted = np.empty(x.shape[0], dtype=np.float64)
    for start, stop in itertools.pairwise(boundaries):
        ranks_sorted[start:stop] = (start + 1 + stop) / 2.0
    ranks = np.empty_like(ranks_sorted)
    ranks[order] = ranks_sorted
    return ranks


def binary_roc_auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """ROC-AUC through the Mann-Whitney U statistic; None when one side has no rows."""
    positive = np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = positive.shape[0] - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = _average_ranks(np.asarray(scores, dtype=np.float64))
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """Wilson score interval of a proportion (95% by default); None when n is 0."""
    if n == 0:
        return None
    p = successes / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def _group_index(risk_groups: Sequence[str]) -> tuple[list[str], np.ndarray]:
    names: list[str] = []
    for g in risk_groups:
        if g not in names:
            names.append(g)
    return names, np.array([names.index(g) for g in risk_groups], dtype=np.int64)


def _headline(probs: np.ndarray, labels: np.ndarray, class_group: np.ndarray) -> dict[str, Any]:
    """The headline numbers of one subset (all rows or one skin-type group)."""
    n = int(labels.shape[0])
    if n == 0:
        return {key: (0 if key == "n" else None) for key in HEADLINE_KEYS} | {"top1_accuracy_ci95": None}
    n_classes = probs.shape[1]
    preds = probs.argmax(axis=1)
    cm = confusion_matrix(labels, preds, n_classes)
    _, recall, f1, support = precision_recall_f1(cm)
    # Averages follow scikit-learn's defaults: balanced accuracy over classes present in the labels;
    # macro-F1 over classes present in the labels or the predictions.
    present = support > 0
    seen = present | (cm.sum(axis=0) > 0)
    n_correct = int(np.sum(preds == labels))
    return {
        "n": n,
        "top1_accuracy": n_correct / n,
        "top3_accuracy": top_k_accuracy(probs, labels, 3),
        "balanced_accuracy": float(recall[present].mean()),
        "macro_f1": float(f1[seen].mean()),
        "weighted_f1": float(np.sum(f1 * support) / n),
        "risk_group_accuracy": float(np.mean(class_group[preds] == class_group[labels])),
        "top1_accuracy_ci95": list(wilson_interval(n_correct, n) or ()),
    }


def _risk_group_section(
    probs: np.ndarray, labels: np.ndarray, group_names: list[str], class_group: np.ndarray
) -> dict[str, Any]:
    true_group = class_group[labels]
    argmax_group = class_group[probs.argmax(axis=1)]
    onehot = np.zeros((probs.shape[1], len(group_names)))
    onehot[np.arange(probs.shape[1]), class_group] = 1.0
    group_probs = probs @ onehot
    summed_group = group_probs.argmax(axis=1)
    section: dict[str, Any] = {
        "groups": group_names,
        "accuracy": float(np.mean(argmax_group == true_group)),
        "accuracy_summed": float(np.mean(summed_group == true_group)),
        "support": {name: int(np.sum(true_group == i)) for i, name in enumerate(group_names)},
        "malignant": None,
    }
    if MALIGNANT in group_names:
        m = group_names.index(MALIGNANT)
        is_mal = true_group == m
        n_pos, n_neg = int(is_mal.sum()), int((~is_mal).sum())

        def rates(pred_group: np.ndarray) -> tuple[float | None, float | None]:
            flagged = pred_group == m
            sens = float(np.mean(flagged[is_mal])) if n_pos else None
            spec = float(np.mean(~flagged[~is_mal])) if n_neg else None
            return sens, spec

        sens, spec = rates(argmax_group)
        sens_sum, spec_sum = rates(summed_group)
        section["malignant"] = {
            "n_malignant": n_pos,
            "n_other": n_neg,
            "sensitivity": sens,
            "specificity": spec,
            "sensitivity_summed": sens_sum,
            "specificity_summed": spec_sum,
            "auc": binary_roc_auc(group_probs[:, m], is_mal),
        }
    return section


def coverage_accuracy_curve(
    probs: np.ndarray, labels: np.ndarray, n_points: int = _COVERAGE_POINTS
) -> list[dict[str, float]]:
    """Accuracy of the most confident fraction of rows, for fractions from small to 1.

    Rows are sorted by top-1 probability; a point keeps every row with confidence >= ``threshold``
    (tied rows are kept or dropped together, so coverages are exact). At most about ``n_points``
    points are returned, spread evenly over coverage; the last one always has coverage 1.
    """
    probs, labels = _check_probs(probs, labels)
    n = probs.shape[0]
    if n == 0:
        return []
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    order = np.argsort(-conf, kind="stable")
    s, c = conf[order], correct[order]
    kept = np.arange(1, n + 1)
    acc = np.cumsum(c) / kept
    valid = np.flatnonzero(np.r_[s[:-1] > s[1:], True])
    coverage = kept[valid] / n
    picks = np.unique(np.searchsorted(coverage, np.linspace(1.0 / n_points, 1.0, n_points) - 1e-12))
    picks = picks[picks < valid.shape[0]]
    return [
        {"coverage": float(coverage[i]), "accuracy": float(acc[valid[i]]), "threshold": float(s[valid[i]])}
        for i in picks
    ]


def _skin_type_groups(fitzpatrick: Any, n: int) -> np.ndarray:
    """Map skin types to group names; anything other than 1-6 (0, -1, NaN, None) is unknown ('')."""
    # to_numeric turns None, pd.NA and unparsable text into NaN, which falls through as unknown.
    fitz = pd.to_numeric(pd.Series(np.asarray(fitzpatrick, dtype=object).ravel()), errors="coerce")
    fitz = fitz.to_numpy(dtype=np.float64, na_value=np.nan)
    if fitz.shape[0] != n:
        raise ValueError(f"fitzpatrick must have {n} entries, got {fitz.shape[0]}")
    out = np.full(n, "", dtype=object)
    for name, types in SKIN_TYPE_GROUPS.items():
        out[np.isin(fitz, types)] = name
    return out


def round_floats(obj: Any, decimals: int = _DECIMALS) -> Any:
    """Round floats recursively and turn numpy scalars and non-finite floats into JSON values."""
    if isinstance(obj, dict):
        return {str(k): round_floats(v, decimals) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [round_floats(v, decimals) for v in obj]
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        value = float(obj)
        return round(value, decimals) if math.isfinite(value) else None
    return obj


# ----------------------------------------------------------------------------- the report


def evaluation_report(
    probs: np.ndarray,
    labels: np.ndarray,
    class_ids: Sequence[str],
    risk_groups: Sequence[str],
    fitzpatrick: Any = None,
    uncertain_thresholds: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score predicted probabilities against labels.

    Args:
        probs: Predicted (ideally calibrated) probabilities, shape (N, C), rows summing to 1.
        labels: True class indices, shape (N,), in ``[0, C)``.
        class_ids: Class id of each column, length C.
        risk_groups: Risk group of each class (e.g. benign / malignant / non-neoplastic), length C.
        fitzpatrick: Optional Fitzpatrick skin type per row (1-6; 0, -1, NaN or None = unknown).
        uncertain_thresholds: Optional abstention thresholds (see
            :func:`dermlib.evaluate.calibration.choose_uncertain_thresholds`); when given, the report
            adds how many rows they keep and the accuracy on those.

    Returns:
        A JSON-serialisable dict with keys:

        * ``report_version``, ``n``, ``n_classes``, ``class_ids``, ``risk_groups`` (per class);
        * headline: ``top1_accuracy``, ``top1_accuracy_ci95`` (Wilson [low, high]), ``top3_accuracy``
          (top-k with k = min(3, C)), ``balanced_accuracy``, ``macro_f1``, ``weighted_f1``,
          ``risk_group_accuracy``;
        * ``per_class``: list (class order) of {``class_id``, ``risk_group``, ``precision``,
          ``recall``, ``f1``, ``support``, ``n_predicted``, ``auc``};
        * ``confusion_matrix``: {``labels``: class ids, ``matrix``: rows true, columns predicted};
        * ``roc_auc``: {``per_class``: {class_id: one-vs-rest AUC or None}, ``macro``: mean of the
          defined ones or None};
        * ``calibration``: {``ece``, ``n_bins``, ``ece_if_calibrated``,
          ``ece_if_calibrated_p95`` (see :func:`~dermlib.evaluate.calibration.ece_noise_floor`), ``nll``,
          ``brier``, ``mean_confidence``, ``bins``: [{``lower``, ``upper``, ``count``, ``confidence``,
          ``accuracy``}]};
        * ``risk_group``: {``groups``, ``accuracy`` (arg-max class's group), ``accuracy_summed``
          (arg-max of probabilities summed per group), ``support``, ``malignant``: None or
          {``n_malignant``, ``n_other``, ``sensitivity``, ``specificity``, ``sensitivity_summed``,
          ``specificity_summed``, ``auc``}};
        * ``coverage_accuracy``: [{``coverage``, ``accuracy``, ``threshold``}] by falling confidence;
        * ``by_skin_type``: None without skin types, else {``groups``: {"I-II"|"III-IV"|"V-VI": the
          headline keys above}, ``n_unknown``};
        * ``selective``: None without thresholds, else {``thresholds``, ``n_kept``, ``coverage``,
          ``accuracy``, ``accuracy_abstained``}.

    Raises:
        ValueError: On empty input or mismatched shapes.
    """
    probs, labels = _check_probs(probs, labels)
    n, n_classes = probs.shape
    if n == 0:
        raise ValueError("cannot evaluate an empty set (no rows)")
    class_ids = [str(c) for c in class_ids]
    risk_groups = [str(g) for g in risk_groups]
    if len(class_ids) != n_classes or len(risk_groups) != n_classes:
        raise ValueError(
            f"probs has {n_classes} columns but {len(class_ids)} class ids and {len(risk_groups)} risk groups"
        )
    group_names, class_group = _group_index(risk_groups)
    preds = probs.argmax(axis=1)
    cm = confusion_matrix(labels, preds, n_classes)
    precision, recall, f1, support = precision_recall_f1(cm)
    aucs = [binary_roc_auc(probs[:, c], labels == c) for c in range(n_classes)]
    defined_aucs = [a for a in aucs if a is not None]
    conf = probs.max(axis=1)
    onehot = np.eye(n_classes)[labels]

    report: dict[str, Any] = {
        "report_version": REPORT_VERSION,
        "n_classes": n_classes,
        "class_ids": class_ids,
        "risk_groups": risk_groups,
        **_headline(probs, labels, class_group),
        "per_class": [
            {
                "class_id": class_ids[c],
                "risk_group": risk_groups[c],
                "precision": precision[c],
                "recall": recall[c],
                "f1": f1[c],
                "support": int(support[c]),
                "n_predicted": int(cm[:, c].sum()),
                "auc": aucs[c],
            }
            for c in range(n_classes)
        ],
        "confusion_matrix": {"labels": class_ids, "matrix": cm.tolist()},
        "roc_auc": {
            "per_class": dict(zip(class_ids, aucs, strict=True)),
            "macro": float(np.mean(defined_aucs)) if defined_aucs else None,
        },
        "calibration": {
            "ece": expected_calibration_error(probs, labels, ECE_BINS),
            "n_bins": ECE_BINS,
            **{f"ece_{k}": v for k, v in ece_noise_floor(probs, labels, ECE_BINS).items()},
            "nll": float(-np.mean(np.log(np.clip(probs[np.arange(n), labels], 1e-12, None)))),
            "brier": float(np.mean(np.sum((probs - onehot) ** 2, axis=1))),
            "mean_confidence": float(conf.mean()),
            "bins": reliability_bins(probs, labels, ECE_BINS),
        },
        "risk_group": _risk_group_section(probs, labels, group_names, class_group),
        "coverage_accuracy": coverage_accuracy_curve(probs, labels),
        "by_skin_type": None,
        "selective": None,
    }

    if fitzpatrick is not None:
        skin = _skin_type_groups(fitzpatrick, n)
        report["by_skin_type"] = {
            "groups": {
                name: _headline(probs[skin == name], labels[skin == name], class_group)
                for name in SKIN_TYPE_GROUPS
            },
            "n_unknown": int(np.sum(skin == "")),
        }

    if uncertain_thresholds:
        uncertain = np.array([is_uncertain(row, uncertain_thresholds) for row in probs], dtype=bool)
        correct = preds == labels
        n_kept = int((~uncertain).sum())
        report["selective"] = {
            "thresholds": {
                k: uncertain_thresholds.get(k)
                for k in ("min_top1_probability", "max_entropy", "max_normalized_entropy")
                if uncertain_thresholds.get(k) is not None
            },
            "n_kept": n_kept,
            "coverage": n_kept / n,
            "accuracy": float(correct[~uncertain].mean()) if n_kept else None,
            "accuracy_abstained": float(correct[uncertain].mean()) if n_kept < n else None,
            "mean_entropy": float(entropy(probs).mean()),
        }
    return round_floats(report)


# ----------------------------------------------------------------------------- reading a report


def headline_metrics(report: dict[str, Any]) -> list[tuple[str, float | None, str]]:
    """(label, value, help text) of the headline numbers of a report, for ``st.metric`` tiles."""
    rg = report.get("risk_group") or {}
    mal = rg.get("malignant") or {}
    calibration = report.get("calibration") or {}
    rows: list[tuple[str, float | None, str]] = [
        ("Top-1 accuracy", report.get("top1_accuracy"), "Share of images whose most likely class is right."),
        ("Top-3 accuracy", report.get("top3_accuracy"), "Share whose true class is among the top three."),
        ("Balanced accuracy", report.get("balanced_accuracy"), "Mean recall: rare classes count equally."),
        ("Macro-F1", report.get("macro_f1"), "Mean F1 over classes."),
        ("Risk-group accuracy", report.get("risk_group_accuracy"), "Benign / malignant / other right."),
        ("ECE", calibration.get("ece"), "Expected calibration error (lower is better)."),
    ]
    if (report.get("n_classes") or 4) <= 3:  # top-3 of three classes or fewer is 100% by construction
        rows = [row for row in rows if row[0] != "Top-3 accuracy"]
    if mal:
        rows.append(("Malignant sensitivity", mal.get("sensitivity"), "Malignant lesions flagged malignant."))
        rows.append(("Malignant specificity", mal.get("specificity"), "Non-malignant lesions not flagged."))
    return rows


def limitation_notes(
    report: dict[str, Any],
    min_group_n: int = 50,
    max_gap: float = 0.05,
    min_class_support: int = 10,
    class_names: Mapping[str, str] | None = None,
) -> list[str]:
    """Plain-language caveats read off a report (small groups, skin-type gaps, misses, calibration).

    Args:
        report: A dict from :func:`evaluation_report`.
        min_group_n: Skin-type groups with fewer test images than this are called out.
        max_gap: A top-1 accuracy gap between skin types I-II and V-VI at least this large is called out.
        min_class_support: Classes with fewer test images than this are called out.
        class_names: Display names by class id (the card's), for the classes named in a note.

    Returns:
        Sentences, most important first (empty when nothing stands out).
    """
    notes: list[str] = []
    n = report.get("n") or 0
    if n and n < 200:
        notes.append(f"The test set is small ({n} images), so every number here has a wide margin of error.")

    by_skin = report.get("by_skin_type")
    groups = (by_skin or {}).get("groups") or {}
    if not by_skin or not any(g.get("n") for g in groups.values()):  # none recorded: one line, not one per group
        notes.append(
            "Skin type was not recorded for the test images, so performance across skin tones is unmeasured."
        )
    else:
        groups = by_skin.get("groups") or {}
        for name, g in groups.items():
            gn = g.get("n") or 0
            if gn == 0:
                notes.append(f"No test images of skin type {name}: performance on it is unmeasured.")
            elif gn < min_group_n:
                ci = g.get("top1_accuracy_ci95") or []
                ci_text = f" (95% interval {ci[0]:.0%}-{ci[1]:.0%})" if len(ci) == 2 else ""
                notes.append(
                    f"Only {gn} test images of skin type {name}: its top-1 accuracy "
                    f"{g.get('top1_accuracy', 0):.0%}{ci_text} is uncertain."
                )
        light, dark = groups.get("I-II") or {}, groups.get("V-VI") or {}
        a, b = light.get("top1_accuracy"), dark.get("top1_accuracy")
        if a is not None and b is not None and abs(a - b) >= max_gap:
            worse = "lower" if b < a else "higher"
            # One decimal throughout, so the gap is the difference of the two figures as printed.
            a, b = round(a * 100, 1), round(b * 100, 1)
            notes.append(
                f"Top-1 accuracy is {abs(a - b):.1f} percentage points {worse} on skin types V-VI "
                f"({b:.1f}%, n={dark.get('n')}) than on I-II ({a:.1f}%, n={light.get('n')})."
            )
        unknown = by_skin.get("n_unknown") or 0
        if n and unknown / n >= 0.2:
            notes.append(f"Skin type is unknown for {unknown} of {n} test images ({unknown / n:.0%}).")

    selective = report.get("selective") or {}
    coverage, kept_accuracy = selective.get("coverage"), selective.get("accuracy")
    if coverage is not None and kept_accuracy is not None and coverage < 1.0:
        rest = selective.get("accuracy_abstained")
        notes.append(
            f"It gave a confident answer on {coverage:.0%} of the test images (right on {kept_accuracy:.0%} of "
            f"those) and said it was not sure on the other {1 - coverage:.0%}"
            + (f", where its first guess was right {rest:.0%} of the time." if rest is not None else ".")
        )

    mal = (report.get("risk_group") or {}).get("malignant")
    if mal and mal.get("sensitivity") is not None:
        missed = 1 - mal["sensitivity"]
        notes.append(
            f"{missed:.0%} of the {mal['n_malignant']} malignant test lesions were not flagged as malignant "
            "by the top prediction: a negative result never rules out cancer."
        )

    per_class = report.get("per_class") or []
    names = class_names or {}
    small = [names.get(c["class_id"], c["class_id"]) for c in per_class if 0 < c.get("support", 0) < min_class_support]
    absent = [names.get(c["class_id"], c["class_id"]) for c in per_class if c.get("support", 0) == 0]
    if small:
        notes.append(
            f"{len(small)} {'class has' if len(small) == 1 else 'classes have'} fewer than {min_class_support} "
            f"test images, so {'its' if len(small) == 1 else 'their'} per-class "
            f"numbers are noisy: {', '.join(small)}."
        )
    if absent:
        notes.append(f"No test images for: {', '.join(absent)} (not evaluated).")

    calibration = report.get("calibration") or {}
    ece, p95 = calibration.get("ece"), calibration.get("ece_if_calibrated_p95")
    check = report.get("calibration_check") or {}
    if ece is not None and ece > 0.1:
        notes.append(
            f"Probabilities are poorly calibrated on the test set (ECE {ece:.2f}): read them as rough."
        )
    elif check.get("ece_cross_fitted") is not None and check.get("ece_if_calibrated_p95") is not None:
        # The pooled check sees twice the images, so its verdict replaces the test split's.
        crossed, crossed_p95 = check["ece_cross_fitted"], check["ece_if_calibrated_p95"]
        if crossed > crossed_p95:
            notes.append(
                f"Probabilities are off by more than chance explains on the {check.get('n', 0)} validation and "
                f"test images pooled: ECE {crossed:.3f}, while a perfectly calibrated model would stay below "
                f"{crossed_p95:.3f} in 95% of samples."
            )
    elif ece is not None and p95 is not None and ece > p95:
        notes.append(
            f"Probabilities are measurably miscalibrated on the test set: ECE {ece:.3f}, while a perfectly "
            f"calibrated model would stay below {p95:.3f} on {report.get('n', 0)} images in 95% of samples."
        )
    return notes


def ece_summary(report: dict[str, Any]) -> str | None:
    """One sentence that puts a report's ECE next to its sampling noise (None without an ECE)."""
    calibration = report.get("calibration") or {}
    ece = calibration.get("ece")
    if ece is None:
        return None
    text = f"ECE {ece:.3f} over {calibration.get('n_bins', ECE_BINS)} bins"
    floor, p95 = calibration.get("ece_if_calibrated"), calibration.get("ece_if_calibrated_p95")
    if floor is not None and p95 is not None:
        text += (f". A perfectly calibrated model with the same confidences would show ECE {floor:.3f} on "
                 f"average on these {report.get('n', 0)} images (below {p95:.3f} in 95% of samples), so ECE "
                 "differences smaller than that are noise.")
    return text


def calibration_check_summary(report: dict[str, Any]) -> str | None:
    """One paragraph on the held-out calibration check stored in a report (None when there is none).

    The check (:func:`dermlib.evaluate.calibration.held_out_calibration_check`) pools the validation and
    test splits, each scaled by the temperature fitted on the other.
    """
    check = report.get("calibration_check") or {}
    crossed = check.get("ece_cross_fitted")
    if crossed is None:
        return None
    text = (f"Calibration check on all {check.get('n', 0)} held-out images (validation {check.get('n_val', 0)} "
            f"+ test {check.get('n_test', 0)}), each half scaled by the temperature fitted on the other half: "
            f"ECE {crossed:.3f}")
    floor, p95 = check.get("ece_if_calibrated"), check.get("ece_if_calibrated_p95")
    if floor is not None and p95 is not None:
        text += (f", where a perfectly calibrated model would show {floor:.3f} on average (below {p95:.3f} in "
                 "95% of samples)")
    t_val, t_test = check.get("temperature_val"), check.get("temperature_test")
    if t_val is not None and t_test is not None:
        text += f". The temperature fitted on validation alone is {t_val:.3f} and on test alone {t_test:.3f}"
        if check.get("temperature") is not None:
            text += f"; the model uses {check['temperature']:.3f}"
    if check.get("ece_pooled") is not None:
        text += f". With the model's own temperature the pooled ECE is {check['ece_pooled']:.3f}"
    return text + "."
