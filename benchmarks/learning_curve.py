"""How a model's held-out accuracy grows with its training photos: a table, and a log-linear fit.

Reads model folders written by ``dermlib train`` (with ``--train-fraction`` for the smaller runs, all on
one ``--splits`` file so that every run is scored on the same validation and test photos) and prints,
per run: the training photos per source (from its ``splits.csv``), the test figures of one source from
its card (top-1, top-3, macro-F1 over the classes that source's test photos hold) and, for the other
sources, their top-1 and weighted F1. It then fits ``top-1 = a + b * log2(training photos of the source)``
by least squares over the runs and says how many training photos the fit would put at ``--target``.

That last number is an extrapolation of a straight line in log photos beyond the data it was fitted on:
a rough size of the gap, not a promise. Runs with fewer photos also took fewer optimisation steps when
they ran the same number of epochs; give a step-matched run (more epochs) to see how much that matters.

Earlier runs whose folders are gone can join the fit as ``--point PHOTOS TOP1`` (recorded figures).

Usage::

    .venv/bin/python benchmarks/learning_curve.py runs/lc-0.25 runs/lc-0.5 runs/lc-0.75 \\
        --source dermnet-nz --point 2080 0.437 --target 0.55
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from dermlib.data.combined import FITZ_DERMNET

#: The folder under the data root that each source's photos live in (splits.csv keys start with it).
SOURCE_FOLDERS = {part.adapter: part.folder for part in FITZ_DERMNET.parts}


def run_row(folder: Path, source: str) -> dict:
    """One run's training photos and test figures, read from its model folder."""
    card = json.loads((folder / "card.json").read_text())
    args = json.loads((folder / "args.json").read_text()) if (folder / "args.json").is_file() else {}
    splits = pd.read_csv(folder / "splits.csv")
    top = splits["image"].astype(str).str.split("/").str[0]
    train = splits["split"] == "train"
    by_source = card["metrics"]["by_source"]
    if source not in by_source:
        raise SystemExit(f"{folder}: its card has no test figures for source {source!r} "
                         f"(it has {', '.join(sorted(by_source))}).")
    own = by_source[source]
    f1 = [row["f1"] for row in own["per_class"] if row["support"] > 0]  # the classes this source's photos hold
    out = {
        "run": folder.name,
        "fraction": args.get("train_fraction", 1.0),
        "epochs": args.get("epochs"),
        "train_photos": int((train & (top == SOURCE_FOLDERS.get(source, source))).sum()),
        "train_photos_all": int(train.sum()),
        "top1": own["top1_accuracy"],
        "top3": own["top3_accuracy"],
        "macro_f1_present": float(np.mean(f1)) if f1 else float("nan"),
        "n_test": own["n"],
    }
    for other, report in sorted(by_source.items()):
        if other != source:
            out[f"{other}_top1"] = report["top1_accuracy"]
            out[f"{other}_weighted_f1"] = report["weighted_f1"]
    pair = card["metrics"].get("eczema_vs_psoriasis", {}).get("all")
    if pair:
        out["eczema_vs_psoriasis"] = f"{pair['correct']}/{pair['n']}"
    return out


def fit_log_linear(photos: list[float], top1: list[float]) -> tuple[float, float]:
    """Least-squares ``top1 = a + b * log2(photos)``; returns ``(a, b)`` (b: points of top-1 per doubling)."""
    if len(set(photos)) < 2:
        raise ValueError("a fit needs runs on at least two different numbers of training photos")
    b, a = np.polyfit(np.log2(np.asarray(photos, dtype=float)), np.asarray(top1, dtype=float), 1)
    return float(a), float(b)


def photos_for(target: float, a: float, b: float) -> float:
    """Training photos at which the fitted line reaches ``target`` (inf when it never rises)."""
    return math.inf if b <= 0 else float(2 ** ((target - a) / b))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", type=Path, help="model folders written by `dermlib train`")
    parser.add_argument("--source", default="dermnet-nz", help="the source whose test figures are fitted")
    parser.add_argument("--point", nargs=2, type=float, action="append", default=[], metavar=("PHOTOS", "TOP1"),
                        help="a recorded run: its training photos of the source and its test top-1 (repeatable)")
    parser.add_argument("--target", type=float, default=0.55, help="top-1 to solve the fit for")
    parser.add_argument("--json", type=Path, help="also write the table and the fit here")
    args = parser.parse_args(argv)

    rows = [run_row(f, args.source) for f in args.folders]
    rows += [{"run": "(recorded)", "train_photos": int(n), "top1": t} for n, t in args.point]
    if not rows:
        parser.error("give model folders or --point")
    table = pd.DataFrame(rows).sort_values(["train_photos", "run"]).reset_index(drop=True)
    for column in ("epochs", "train_photos_all", "n_test"):
        if column in table:
            table[column] = table[column].astype("Int64")
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))
    result = {"source": args.source, "runs": table.replace({np.nan: None}).to_dict(orient="records")}
    try:
        a, b = fit_log_linear(table["train_photos"].tolist(), table["top1"].tolist())
    except ValueError as exc:
        print(f"\nNo fit: {exc}.")
    else:
        need = photos_for(args.target, a, b)
        now = int(table["train_photos"].max())
        print(f"\nFit over {len(table)} runs: top-1 = {a:.3f} + {b:.3f} * log2(training photos of {args.source})")
        print(f"  {100 * b:.1f} points of top-1 per doubling of the training photos")
        print(f"  top-1 {args.target:.0%} at about {need:,.0f} training photos ({need / now:.1f}x the {now:,} "
              "of the largest run), if the line held that far")
        result["fit"] = {"a": a, "b_per_doubling": b, "target": args.target, "photos_at_target": need,
                         "times_largest_run": need / now}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
