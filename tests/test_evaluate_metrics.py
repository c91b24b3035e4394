"""The evaluation report against hand-computed values and scikit-learn as an independent check."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
    top_k_accuracy_score,
)

from dermlib.evaluate import (
    calibration_check_summary,
    coverage_accuracy_curve,
    evaluation_report,
    limitation_notes,
)
from dermlib.evaluate.metrics import binary_roc_auc, wilson_interval

# Six rows, four classes; class "d" has no support but is predicted once (row 5).
PROBS = np.array(
    [
        [0.70, 0.20, 0.05, 0.05],  # a, predicted a
        [0.10, 0.60, 0.20, 0.10],  # b, predicted b
        [0.40, 0.30, 0.20, 0.10],  # b, predicted a
        [0.10, 0.10, 0.60, 0.20],  # c, predicted c
        [0.30, 0.35, 0.30, 0.05],  # c, predicted b (c still in the top 3)
        [0.04, 0.06, 0.10, 0.80],  # a, predicted d (a not in the top 3)
    ]
)
LABELS = np.array([0, 1, 1, 2, 2, 0])
CLASSES = ["a", "b", "c", "d"]
GROUPS = ["benign", "malignant", "benign", "malignant"]


@pytest.fixture(scope="module")
def tiny() -> dict:
    return evaluation_report(PROBS, LABELS, CLASSES, GROUPS, fitzpatrick=[1, 2, 3, 0, np.nan, 6])


def test_headline_by_hand(tiny: dict) -> None:
    assert tiny["n"] == 6
    assert tiny["top1_accuracy"] == pytest.approx(3 / 6)
    assert tiny["top3_accuracy"] == pytest.approx(5 / 6, abs=1e-4)
    # Recall a, b, c = 1/2 each; d has no support and is left out.
    assert tiny["balanced_accuracy"] == pytest.approx(0.5)
    # F1: a 0.5, b 0.5, c 2/3, d 0 (predicted once, never right).
    assert tiny["macro_f1"] == pytest.approx((0.5 + 0.5 + 2 / 3 + 0) / 4, abs=1e-4)
    assert tiny["weighted_f1"] == pytest.approx((2 * 0.5 + 2 * 0.5 + 2 * 2 / 3) / 6, abs=1e-4)


def test_per_class_and_confusion_by_hand(tiny: dict) -> None:
    assert tiny["confusion_matrix"] == {
        "labels": CLASSES,
        "matrix": [[1, 0, 0, 1], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]],
    }
    rows = {r["class_id"]: r for r in tiny["per_class"]}
    assert [r["class_id"] for r in tiny["per_class"]] == CLASSES
    assert rows["c"]["precision"] == 1.0 and rows["c"]["recall"] == 0.5
    assert rows["c"]["f1"] == pytest.approx(2 / 3, abs=1e-4)
    assert rows["d"] == {
        "class_id": "d",
        "risk_group": "malignant",
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 0,
        "n_predicted": 1,
        "auc": None,
    }


def test_auc_by_hand(tiny: dict) -> None:
    # a: positives score 0.70 and 0.04 against 0.10, 0.40, 0.10, 0.30 -> 4 of 8 pairs.
    assert tiny["roc_auc"]["per_class"] == {"a": 0.5, "b": 0.875, "c": 1.0, "d": None}
    assert tiny["roc_auc"]["macro"] == pytest.approx((0.5 + 0.875 + 1.0) / 3, abs=1e-4)


def test_risk_groups_by_hand(tiny: dict) -> None:
    rg = tiny["risk_group"]
    assert rg["groups"] == ["benign", "malignant"]
    assert rg["support"] == {"benign": 4, "malignant": 2}
    assert tiny["risk_group_accuracy"] == rg["accuracy"] == 0.5
    # Summing a+c vs b+d rescues row 4 (0.60 benign).
    assert rg["accuracy_summed"] == pytest.approx(4 / 6, abs=1e-4)
    mal = rg["malignant"]
    assert (mal["n_malignant"], mal["n_other"]) == (2, 4)
    assert (mal["sensitivity"], mal["specificity"]) == (0.5, 0.5)
    assert (mal["sensitivity_summed"], mal["specificity_summed"]) == (0.5, 0.75)


def test_skin_type_groups_match_subsets(tiny: dict) -> None:
    by_skin = tiny["by_skin_type"]
    assert by_skin["n_unknown"] == 2
    assert {k: v["n"] for k, v in by_skin["groups"].items()} == {"I-II": 2, "III-IV": 1, "V-VI": 1}
    light = by_skin["groups"]["I-II"]
    sub = evaluation_report(PROBS[:2], LABELS[:2], CLASSES, GROUPS)
    for key in ("top1_accuracy", "top3_accuracy", "balanced_accuracy", "macro_f1", "weighted_f1"):
        assert light[key] == sub[key]
    assert light["top1_accuracy"] == 1.0
    assert by_skin["groups"]["V-VI"]["top1_accuracy"] == 0.0
    # Other spellings of unknown: -1 (as Fitzpatrick17k writes it), None, pd.NA, text.
    other = evaluation_report(PROBS, LABELS, CLASSES, GROUPS, fitzpatrick=[1, "2", "3", -1, None, pd.NA])
    assert other["by_skin_type"]["n_unknown"] == 3
    assert other["by_skin_type"]["groups"]["V-VI"]["n"] == 0


def test_calibration_section(tiny: dict) -> None:
    cal = tiny["calibration"]
    assert cal["n_bins"] == 15 and len(cal["bins"]) == 15
    assert sum(b["count"] for b in cal["bins"]) == 6
    conf = PROBS.max(axis=1)
    assert cal["mean_confidence"] == pytest.approx(conf.mean(), abs=1e-4)
    assert cal["nll"] == pytest.approx(-np.mean(np.log(PROBS[np.arange(6), LABELS])), abs=1e-4)


def test_report_is_strict_json(tiny: dict) -> None:
    text = json.dumps(tiny, allow_nan=False)
    assert json.loads(text) == tiny


@pytest.mark.filterwarnings("ignore:y_pred contains classes")
def test_matches_sklearn_on_random_data() -> None:
    rng = np.random.default_rng(3)
    n, c = 400, 7
    labels = rng.integers(0, c - 1, n)  # the last class never occurs
    logits = rng.normal(size=(n, c))
    logits[np.arange(n), labels] += 1.5
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    preds = probs.argmax(axis=1)
    report = evaluation_report(probs, labels, [f"k{i}" for i in range(c)], ["benign"] * c)
    every = list(range(c))

    assert report["top1_accuracy"] == pytest.approx(np.mean(preds == labels), abs=1e-4)
    top3 = top_k_accuracy_score(labels, probs, k=3, labels=every)
    assert report["top3_accuracy"] == pytest.approx(top3, abs=1e-4)
    assert report["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, preds), abs=1e-4)
    assert report["macro_f1"] == pytest.approx(f1_score(labels, preds, average="macro"), abs=1e-4)
    assert report["weighted_f1"] == pytest.approx(f1_score(labels, preds, average="weighted"), abs=1e-4)
    assert report["confusion_matrix"]["matrix"] == confusion_matrix(labels, preds, labels=every).tolist()
    p, r, f, s = precision_recall_fscore_support(labels, preds, labels=every, zero_division=0)
    got = report["per_class"]
    np.testing.assert_allclose([g["precision"] for g in got], p, atol=1e-4)
    np.testing.assert_allclose([g["recall"] for g in got], r, atol=1e-4)
    np.testing.assert_allclose([g["f1"] for g in got], f, atol=1e-4)
    assert [g["support"] for g in got] == s.tolist()
    for k in range(c - 1):
        assert got[k]["auc"] == pytest.approx(roc_auc_score(labels == k, probs[:, k]), abs=1e-4)
    assert got[c - 1]["auc"] is None


def test_auc_with_ties_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, 200) / 4  # heavy ties
    positive = rng.random(200) < 0.3
    assert binary_roc_auc(scores, positive) == pytest.approx(roc_auc_score(positive, scores))
    assert binary_roc_auc(scores, np.zeros(200, dtype=bool)) is None


def test_coverage_curve() -> None:
    curve = coverage_accuracy_curve(PROBS, LABELS)
    coverages = [p["coverage"] for p in curve]
    assert coverages == sorted(coverages) and coverages[-1] == 1.0
    assert curve[-1]["accuracy"] == pytest.approx(0.5)
    # The most confident row (0.80) is wrong, the next (0.70) right.
    assert curve[0] == {"coverage": pytest.approx(1 / 6), "accuracy": 0.0, "threshold": 0.8}
    assert curve[1]["accuracy"] == pytest.approx(0.5)
    # Tied confidences are kept or dropped together: one point only.
    tied = coverage_accuracy_curve(np.full((5, 2), 0.5), np.array([0, 1, 0, 1, 0]))
    assert tied == [{"coverage": 1.0, "accuracy": 0.6, "threshold": 0.5}]
    many = coverage_accuracy_curve(np.random.default_rng(1).dirichlet(np.ones(3), 5000), np.zeros(5000, int))
    assert 90 <= len(many) <= 100


def test_selective_section() -> None:
    thresholds = {"min_top1_probability": 0.6}
    report = evaluation_report(PROBS, LABELS, CLASSES, GROUPS, uncertain_thresholds=thresholds)
    sel = report["selective"]
    # Kept: confidences 0.70, 0.60, 0.60, 0.80 -> rows 0, 1, 3, 5; three of them right.
    assert sel["n_kept"] == 4 and sel["coverage"] == pytest.approx(4 / 6, abs=1e-4)
    assert sel["accuracy"] == 0.75 and sel["accuracy_abstained"] == 0.0
    assert sel["thresholds"] == {"min_top1_probability": 0.6}
    assert evaluation_report(PROBS, LABELS, CLASSES, GROUPS)["selective"] is None


def test_edge_cases() -> None:
    one_class = evaluation_report(np.ones((3, 1)), np.zeros(3, int), ["only"], ["benign"])
    assert one_class["top1_accuracy"] == 1.0 and one_class["macro_f1"] == 1.0
    assert one_class["roc_auc"]["macro"] is None and one_class["risk_group"]["malignant"] is None
    single = evaluation_report(PROBS[:1], LABELS[:1], CLASSES, GROUPS, fitzpatrick=[5])
    assert single["n"] == 1 and single["roc_auc"]["macro"] is None
    assert single["by_skin_type"]["groups"]["I-II"]["n"] == 0
    assert single["by_skin_type"]["groups"]["I-II"]["top1_accuracy"] is None
    assert single["risk_group"]["malignant"]["sensitivity"] is None  # no malignant row
    json.dumps(single, allow_nan=False)
    with pytest.raises(ValueError, match="empty"):
        evaluation_report(np.zeros((0, 4)), np.zeros(0, int), CLASSES, GROUPS)
    with pytest.raises(ValueError, match="class ids"):
        evaluation_report(PROBS, LABELS, CLASSES[:3], GROUPS)
    with pytest.raises(ValueError, match="labels"):
        evaluation_report(PROBS, LABELS + 2, CLASSES, GROUPS)
    with pytest.raises(ValueError, match="fitzpatrick"):
        evaluation_report(PROBS, LABELS, CLASSES, GROUPS, fitzpatrick=[1, 2])


def test_wilson_interval() -> None:
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-3) and high == pytest.approx(0.9433, abs=1e-3)
    assert wilson_interval(0, 0) is None


def test_limitation_notes() -> None:
    rng = np.random.default_rng(5)
    n = 300
    labels = rng.integers(0, 3, n)
    probs = np.full((n, 3), 0.1)
    fitz = np.where(np.arange(n) < 280, 1, 6)
    # Right on every light-skin row, wrong on every dark-skin row.
    pred = np.where(fitz == 1, labels, (labels + 1) % 3)
    probs[np.arange(n), pred] = 0.8
    report = evaluation_report(probs, labels, ["x", "y", "z"], ["benign", "malignant", "benign"], fitz)
    text = " ".join(limitation_notes(report))
    assert "Only 20 test images of skin type V-VI" in text
    assert "No test images of skin type III-IV" in text
    assert "100.0 percentage points lower on skin types V-VI (0.0%, n=20) than on I-II (100.0%, n=280)" in text
    # The gap is the difference of the printed figures (68.2 - 60.5), not of the unrounded ones.
    close = {"n": 300, "by_skin_type": {"groups": {
        "I-II": {"n": 228, "top1_accuracy": 0.60526}, "III-IV": {"n": 142, "top1_accuracy": 0.718},
        "V-VI": {"n": 44, "top1_accuracy": 0.68182}}}}
    assert ("Top-1 accuracy is 7.7 percentage points higher on skin types V-VI (68.2%, n=44) than on I-II "
            "(60.5%, n=228).") in limitation_notes(close)
    assert "malignant test lesions were not flagged" in text
    plain = evaluation_report(probs, labels, ["x", "y", "z"], ["benign"] * 3)
    assert any("Skin type was not recorded" in s for s in limitation_notes(plain))
    few = {"per_class": [{"class_id": "x", "support": 3}, {"class_id": "y", "support": 40}]}
    assert "1 class has fewer than 10 test images, so its per-class numbers are noisy: x." in limitation_notes(few)
    few["per_class"][1]["support"] = 4
    assert any(s.startswith("2 classes have fewer than 10") for s in limitation_notes(few))
    named = " ".join(limitation_notes(few, class_names={"x": "Condition X"}))
    assert "noisy: Condition X, y." in named  # display names where the card gives them


def test_calibration_notes_prefer_the_pooled_check_to_the_test_split() -> None:
    base = {"n": 400, "calibration": {"ece": 0.06, "ece_if_calibrated_p95": 0.05}}
    test_only = " ".join(limitation_notes(base))
    assert "measurably miscalibrated on the test set: ECE 0.060" in test_only
    check = {"n": 800, "ece_cross_fitted": 0.04, "ece_if_calibrated": 0.035, "ece_if_calibrated_p95": 0.045,
             "n_val": 400, "n_test": 400, "temperature_val": 1.2, "temperature_test": 1.25, "temperature": 1.2,
             "ece_pooled": 0.041}
    # Within the pooled noise: the test split's excess is not repeated as a finding.
    calm = " ".join(limitation_notes({**base, "calibration_check": check}))
    assert "miscalibrated" not in calm and "more than chance" not in calm
    off = " ".join(limitation_notes({**base, "calibration_check": {**check, "ece_cross_fitted": 0.07}}))
    assert "off by more than chance explains on the 800 validation and test images pooled: ECE 0.070" in off
    assert "on the test set" not in off
    bad = " ".join(limitation_notes({**base, "calibration": {"ece": 0.2}, "calibration_check": check}))
    assert "poorly calibrated on the test set (ECE 0.20)" in bad
    summary = calibration_check_summary({"calibration_check": check})
    assert summary.startswith("Calibration check on all 800 held-out images (validation 400 + test 400)")
    assert "ECE 0.040, where a perfectly calibrated model would show 0.035 on average (below 0.045" in summary
    assert "validation alone is 1.200 and on test alone 1.250; the model uses 1.200" in summary
    assert calibration_check_summary(base) is None


def test_limitation_notes_say_how_often_the_model_withholds_an_answer() -> None:
    report = {"n": 873, "selective": {"coverage": 0.3688, "accuracy": 0.8075, "accuracy_abstained": 0.412}}
    assert ("It gave a confident answer on 37% of the test images (right on 81% of those) and said it was not "
            "sure on the other 63%, where its first guess was right 41% of the time.") in limitation_notes(report)
    always = {"n": 873, "selective": {"coverage": 1.0, "accuracy": 0.6}}
    assert not any("confident answer" in note for note in limitation_notes(always))
