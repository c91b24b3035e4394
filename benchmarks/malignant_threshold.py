"""Malignant sensitivity at an operating point chosen on validation, for two models on the same photos.

``paired_compare.py`` calls a photo malignant when the malignant risk group holds the largest summed
probability. A model whose probability mass is spread over more classes (38 against 21) says "malignant"
less often under that rule without ranking malignant photos worse. This script gives each model its own
threshold on the summed malignant probability, chosen on its **validation** photos (the highest threshold
whose validation sensitivity reaches ``--sensitivity``), and then scores the **test** photos at that
threshold: sensitivity, specificity and the ROC AUC of the summed probability, with a paired bootstrap
interval of each difference (B - A).

    python benchmarks/malignant_threshold.py \\
        --a clinical-fitz21 --a-data ../shared/data/fitzpatrick17k --a-dataset fitzpatrick17k \\
        --b clinical-common38 --b-data ../shared/data --b-dataset fitz-dermnet --sensitivity 0.9
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # paired_compare, beside this file

from paired_compare import pair_parser, split_rows

from dermlib.evaluate.metrics import wilson_interval
from dermlib.images import load_image
from dermlib.knowledge.urgency import URGENCY_MIN_PROBABILITY, alert_threshold, urgency_flags
from dermlib.models import load_model


def malignant_scores(model, rows) -> tuple[np.ndarray, np.ndarray]:
    """Per photo: the summed calibrated probability of the model's malignant classes, and whether the
    Diagnose page's urgency line names a malignant class (one in the top 3 with at least
    ``URGENCY_MIN_PROBABILITY``, or the card's malignant alert: :func:`dermlib.knowledge.urgency.urgency_flags`)."""
    images = [load_image(str(p)) for p in rows["image_path"]]
    probs = np.concatenate([model.predict_proba(images[i:i + 16]) for i in range(0, len(images), 16)])
    malignant = np.asarray([c.risk_group == "malignant" for c in model.card.classes])
    named = urgency_flags(probs, malignant, alert_threshold(model.card))
    return probs[:, malignant].sum(axis=1), named


def threshold_for(p: np.ndarray, truth: np.ndarray, sensitivity: float) -> float:
    """The highest threshold whose sensitivity on (p, truth) is at least ``sensitivity``."""
    positives = np.sort(p[truth])[::-1]
    needed = int(np.ceil(sensitivity * len(positives)))
    return float(positives[max(needed, 1) - 1])


def auc(p: np.ndarray, truth: np.ndarray) -> float:
    """ROC AUC (Mann-Whitney, ties count one half)."""
    pos, neg = p[truth], p[~truth]
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def scores(p: np.ndarray, truth: np.ndarray, t: float) -> dict[str, float]:
    said = p >= t
    return {"sensitivity": float(said[truth].mean()), "specificity": float((~said[~truth]).mean()),
            "ROC AUC": auc(p, truth)}


def main(argv: list[str] | None = None) -> int:
    parser = pair_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--sensitivity", type=float, default=0.9, help="validation sensitivity to reach")
    args = parser.parse_args(argv)

    a, b = load_model(args.a, device="cpu"), load_model(args.b, device="cpu")
    risk = {c.id: c.risk_group for c in a.card.classes}
    found: dict[str, tuple] = {}
    for split in ("val", "test"):
        rows_a = split_rows(a, args.a_data, args.a_dataset, split)
        rows_b = split_rows(b, args.b_data, args.b_dataset, split)
        keys = sorted(set(rows_a.index) & set(rows_b.index))
        truth = np.asarray([risk[str(lab)] == "malignant" for lab in rows_a.loc[keys, "label"]])
        found[split] = (truth, *malignant_scores(a, rows_a.loc[keys]), *malignant_scores(b, rows_b.loc[keys]))
    val_truth, val_a, _, val_b, _ = found["val"]
    t_a, t_b = (threshold_for(v, val_truth, args.sensitivity) for v in (val_a, val_b))
    truth, test_a, named_a, test_b, named_b = found["test"]
    full_a, full_b = scores(test_a, truth, t_a), scores(test_b, truth, t_b)
    rng = np.random.default_rng(args.seed)
    diffs: dict[str, list[float]] = {k: [] for k in full_a}
    n = len(truth)
    for _ in range(args.resamples):
        idx = rng.integers(0, n, n)
        if truth[idx].all() or not truth[idx].any():
            continue
        sa, sb = scores(test_a[idx], truth[idx], t_a), scores(test_b[idx], truth[idx], t_b)
        for k in diffs:
            diffs[k].append(sb[k] - sa[k])
    print(f"A = {a.card.id}, B = {b.card.id}; thresholds chosen on {len(val_truth)} shared validation photos "
          f"({val_truth.sum()} malignant) for sensitivity >= {args.sensitivity:.0%}: A {t_a:.3f}, B {t_b:.3f}")
    print(f"test: {n} shared photos, {truth.sum()} malignant; paired bootstrap, {args.resamples} resamples")
    print(f"{'metric':14s} {'A':>22s} {'B':>22s} {'B - A':>8s}   95% interval")
    for k in full_a:
        if k == "ROC AUC":
            ca = cb = ""
        else:
            hits = truth if k == "sensitivity" else ~truth
            said_a = (test_a >= t_a) if k == "sensitivity" else (test_a < t_a)
            said_b = (test_b >= t_b) if k == "sensitivity" else (test_b < t_b)
            ca = "[{:.1%}-{:.1%}]".format(*wilson_interval(int(said_a[hits].sum()), int(hits.sum())))
            cb = "[{:.1%}-{:.1%}]".format(*wilson_interval(int(said_b[hits].sum()), int(hits.sum())))
        lo, hi = np.percentile(diffs[k], [2.5, 97.5])
        print(f"{k:14s} {full_a[k]:7.1%} {ca:>14s} {full_b[k]:7.1%} {cb:>14s} {full_b[k] - full_a[k]:+8.3f}   "
              f"[{lo:+.3f}, {hi:+.3f}]")
    print(f"The page's urgency rule (a malignant class in the top 3 with at least {URGENCY_MIN_PROBABILITY:.0%}, "
          "or the malignant classes together at the card's alert threshold), test photos:")
    for name, named, model in (("A", named_a, a), ("B", named_b, b)):
        t = alert_threshold(model.card)
        alert = "none" if t is None else f"{t:.3f}"
        print(f"  {name} (alert {alert}): sensitivity {named[truth].mean():.1%} ({named[truth].sum()}/{truth.sum()}), "
              f"specificity {(~named[~truth]).mean():.1%} ({(~named[~truth]).sum()}/{(~truth).sum()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
