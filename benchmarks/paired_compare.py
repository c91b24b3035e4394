"""Two models on the same held-out photos: the difference in each metric, with a paired bootstrap interval.

"Within noise" needs a measure of the noise. Both models score the photos that are in *both* test splits
(matched by file name); the photos are resampled with replacement 2,000 times, each resample scoring
both models on the same photos, and the 2.5th-97.5th percentiles of the difference are printed. A
difference whose interval holds 0 is within the noise of this test set.

Metrics, each computed over the labels of model A (model B's other classes count as wrong answers):
top-1, weighted F1, log loss (of the calibrated probability each model gives the true label), and the
malignant sensitivity and specificity (probability summed per risk group, the larger group wins).

    python benchmarks/paired_compare.py \\
        --a clinical-fitz21 --a-data ../shared/data/fitzpatrick17k --a-dataset fitzpatrick17k \\
        --b clinical-common38 --b-data ../shared/data --b-dataset fitz-dermnet
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from dermlib.images import load_image
from dermlib.models import load_model
from dermlib.train.splits import rows_from_splits


def split_rows(model, data: str, dataset: str | None, split: str = "test"):
    rows = rows_from_splits(model.card.path, data, dataset)
    rows = rows[rows["split"] == split].copy()
    rows["key"] = [Path(str(p)).name for p in rows["image_path"]]
    return rows.set_index("key")


def metrics(probs: np.ndarray, labels: np.ndarray, malignant: np.ndarray, true_malignant: np.ndarray) -> dict:
    """Metrics of one model on one (re)sample. ``labels`` index the columns of ``probs``; -1: not a class."""
    pred = probs.argmax(axis=1)
    correct = pred == labels
    f1s, weights = [], []
    for c in np.unique(labels):
        tp = np.sum((pred == c) & (labels == c))
        fp, fn = np.sum((pred == c) & (labels != c)), np.sum((pred != c) & (labels == c))
        f1s.append(2 * tp / max(2 * tp + fp + fn, 1))
        weights.append(np.sum(labels == c))
    p_true = probs[np.arange(len(labels)), labels]
    said_malignant = malignant
    return {
        "top-1": float(correct.mean()),
        "weighted F1": float(np.average(f1s, weights=weights)),
        "log loss": float(-np.log(np.clip(p_true, 1e-12, 1)).mean()),
        "malignant sensitivity": float(said_malignant[true_malignant].mean()) if true_malignant.any() else np.nan,
        "malignant specificity": float((~said_malignant[~true_malignant]).mean()) if (~true_malignant).any()
        else np.nan,
    }


def scored(model, rows, label_ids: list[str]):
    """Probabilities, label indices in this model's classes, and its malignant calls."""
    images = [load_image(str(p)) for p in rows["image_path"]]
    probs = np.concatenate([model.predict_proba(images[i:i + 16]) for i in range(0, len(images), 16)])
    ids = model.card.class_ids
    labels = np.asarray([ids.index(lab) for lab in label_ids])
    groups = np.asarray([c.risk_group for c in model.card.classes])
    group_names = sorted(set(groups))
    summed = np.stack([probs[:, groups == g].sum(axis=1) for g in group_names], axis=1)
    malignant = np.asarray(group_names)[summed.argmax(axis=1)] == "malignant"
    return probs, labels, malignant


def pair_parser(description: str) -> argparse.ArgumentParser:
    """Arguments of a two-model comparison: each model with its data folder and adapter, and the bootstrap."""
    parser = argparse.ArgumentParser(description=description)
    for side in ("a", "b"):
        parser.add_argument(f"--{side}", required=True, help=f"model {side.upper()} (id or folder)")
        parser.add_argument(f"--{side}-data", required=True, help="the dataset folder it was trained on")
        parser.add_argument(f"--{side}-dataset", default=None, help="its dataset adapter")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = pair_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=["val", "test"], default="test",
                        help="score this split (val: for choosing between the two without touching test)")
    args = parser.parse_args(argv)

    a, b = load_model(args.a, device="cpu"), load_model(args.b, device="cpu")
    rows_a = split_rows(a, args.a_data, args.a_dataset, args.split)
    rows_b = split_rows(b, args.b_data, args.b_dataset, args.split)
    keys = sorted(set(rows_a.index) & set(rows_b.index))
    if not keys:
        print(f"The two {args.split} splits share no photo.", file=sys.stderr)
        return 2
    rows = rows_a.loc[keys]
    label_ids = [str(x) for x in rows["label"]]
    missing = sorted(set(label_ids) - set(b.card.class_ids))
    if missing:
        print(f"Model B lacks classes of these photos: {missing}", file=sys.stderr)
        return 2
    risk = {c.id: c.risk_group for c in a.card.classes}
    true_malignant = np.asarray([risk[lab] == "malignant" for lab in label_ids])
    sa, sb = scored(a, rows, label_ids), scored(b, rows, label_ids)
    full_a = metrics(*sa, true_malignant)
    full_b = metrics(*sb, true_malignant)
    rng = np.random.default_rng(args.seed)
    diffs: dict[str, list[float]] = {k: [] for k in full_a}
    n = len(keys)
    for _ in range(args.resamples):
        idx = rng.integers(0, n, n)
        ma = metrics(sa[0][idx], sa[1][idx], sa[2][idx], true_malignant[idx])
        mb = metrics(sb[0][idx], sb[1][idx], sb[2][idx], true_malignant[idx])
        for k in diffs:
            diffs[k].append(mb[k] - ma[k])
    print(f"A = {a.card.id}, B = {b.card.id}: {n} shared {args.split} photos, {args.resamples} paired bootstrap "
          "resamples")
    print(f"{'metric':24s} {'A':>8s} {'B':>8s} {'B - A':>8s}   95% interval of B - A")
    for k in full_a:
        lo, hi = np.nanpercentile(diffs[k], [2.5, 97.5])
        verdict = "within noise" if lo <= 0 <= hi else ("B better" if (lo > 0) != (k == "log loss") else "B worse")
        print(f"{k:24s} {full_a[k]:8.4f} {full_b[k]:8.4f} {full_b[k] - full_a[k]:+8.4f}   [{lo:+.4f}, {hi:+.4f}]  "
              f"{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
