"""How well the mask measurements of dermlib.segment.measure agree with PH2's expert ABCD annotations.

For each PH2 image, :func:`dermlib.segment.measure.measure_lesion` is run on the expert mask (or on other
masks, ``--masks DIR`` with ``DIR/IMDnnn.png``, e.g. a model's predictions) and the image, and compared
with ``metadata.csv``:

* asymmetry score (0 symmetric, 1 symmetric in one axis, 2 asymmetric): exact agreement, Cohen's kappa
  (unweighted, and linearly weighted as the score is ordinal) and the 3 x 3 confusion table;
* each of the six colours (white, red, light brown, dark brown, blue-grey, black): sensitivity and
  specificity of "present" against the expert's flag;
* the number of colours: mean absolute difference and exact agreement.

The measure's thresholds were tuned on the images at odd positions in id order (the "tuning" half; see
the measure module's docstring), so the figures are printed for the held-out half (even positions, the
honest estimate), for the tuning half and for all images, each labelled.

Usage::

    .venv/bin/python benchmarks/ph2_measure_agreement.py [--data-root ../shared/data] [--masks DIR]
        [--ids splits.csv] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score, confusion_matrix

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from dermlib.segment.measure import ASYMMETRY_THRESHOLD, COLOUR_NAMES, MIN_COLOUR_FRACTION, measure_lesion

REPO = Path(__file__).resolve().parent.parent

#: metadata.csv column of each measured colour name.
COLOUR_COLUMNS: dict[str, str] = {
    "white": "colour_white",
    "red": "colour_red",
    "light brown": "colour_light_brown",
    "dark brown": "colour_dark_brown",
    "blue-grey": "colour_blue_gray",
    "black": "colour_black",
}


def read_ids(path: Path) -> list[str]:
    """Image ids of the test rows of a splits file (``image_id``, or the stem of ``file``/``path``/``image``)."""
    table = pd.read_csv(path)
    if "split" in table.columns:
        table = table[table["split"].astype(str).str.lower() == "test"]
    for column in ("image_id", "id", "file", "path", "image", "image_path"):
        if column in table.columns:
            return sorted({Path(str(v)).stem for v in table[column].dropna()})
    raise SystemExit(f"{path}: no image_id, file, path or image column (columns: {list(table.columns)})")


def _rate(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def _kappa(expert: list[int], predicted: list[int], weights: str | None = None) -> float | None:
    if len(set(expert) | set(predicted)) < 2:
        return None
    value = cohen_kappa_score(expert, predicted, labels=[0, 1, 2], weights=weights)
    return None if math.isnan(value) else round(float(value), 4)


def agreement(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Agreement figures for measured rows (``asymmetry``/``score`` and expert/measured colour sets)."""
    expert_a = [r["expert_asymmetry"] for r in rows]
    measured_a = [r["asymmetry_score"] for r in rows]
    out: dict[str, Any] = {"n": len(rows)}
    if not rows:
        return out
    out["asymmetry"] = {
        "exact": _rate(sum(e == m for e, m in zip(expert_a, measured_a, strict=True)), len(rows)),
        "kappa": _kappa(expert_a, measured_a),
        "kappa_linear": _kappa(expert_a, measured_a, "linear"),
        "confusion_rows_expert_cols_measured": confusion_matrix(expert_a, measured_a, labels=[0, 1, 2]).tolist(),
    }
    colours: dict[str, Any] = {}
    for name in COLOUR_NAMES:
        truth = np.array([name in r["expert_colours"] for r in rows])
        said = np.array([name in r["colours"] for r in rows])
        colours[name] = {
            "expert_present": int(truth.sum()), "measured_present": int(said.sum()),
            "sensitivity": _rate(int((truth & said).sum()), int(truth.sum())),
            "specificity": _rate(int((~truth & ~said).sum()), int((~truth).sum())),
        }
    out["colours"] = colours
    diff = np.array([len(r["colours"]) - len(r["expert_colours"]) for r in rows])
    out["colour_count"] = {"mean_abs_diff": round(float(np.abs(diff).mean()), 4),
                           "exact": _rate(int((diff == 0).sum()), len(rows)),
                           "mean_signed_diff": round(float(diff.mean()), 4)}
    return out


def measure_all(root: Path, masks: Path | None, ids: list[str] | None) -> tuple[list[dict[str, Any]], list[str]]:
    """Measure every selected PH2 image; returns the rows and the problems (missing or empty masks)."""
    meta = pd.read_csv(root / "metadata.csv").sort_values("image_id").reset_index(drop=True)
    # The tuning half is fixed on the full, sorted id list, whatever --ids selects.
    half = {image_id: ("tuning" if i % 2 else "held-out") for i, image_id in enumerate(meta["image_id"])}
    if ids is not None:
        wanted = set(ids)
        meta = meta[meta["image_id"].isin(wanted)]
    rows, problems = [], []
    for record in meta.itertuples(index=False):
        image_id = str(record.image_id)
        mask_path = (masks or root / "masks") / f"{image_id}.png"
        if not mask_path.is_file():
            problems.append(f"{image_id}: no mask {mask_path}")
            continue
        bgr = cv2.imread(str(root / "images" / f"{image_id}.jpg"), cv2.IMREAD_COLOR)
        mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
        if bgr is None or mask is None:
            problems.append(f"{image_id}: unreadable image or mask")
            continue
        if mask.shape != bgr.shape[:2]:  # a predicted mask at another resolution: bring it to the image's
            mask = cv2.resize(mask, (bgr.shape[1], bgr.shape[0]), interpolation=cv2.INTER_NEAREST)
        try:
            m = measure_lesion(mask, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        except ValueError as exc:
            problems.append(f"{image_id}: {exc}")
            continue
        rows.append({"image_id": image_id, "half": half[image_id], "expert_asymmetry": int(record.asymmetry),
                     "asymmetry_score": m.asymmetry_score, "colours": set(m.colours),
                     "expert_colours": {n for n, c in COLOUR_COLUMNS.items() if int(getattr(record, c)) == 1}})
    return rows, problems


def report(result: dict[str, Any]) -> str:
    """The result as text."""
    lines = [f"PH2 measurement agreement; masks: {result['masks']}; asymmetry threshold "
             f"{result['asymmetry_threshold']}, colour present at >= {result['min_colour_fraction']:.0%} of the lesion"]
    for problem in result["problems"]:
        lines.append(f"  skipped {problem}")
    for group, fig in result["groups"].items():
        lines.append("")
        lines.append(f"== {group} (n = {fig['n']}) ==")
        if not fig["n"]:
            continue
        a = fig["asymmetry"]
        lines.append(f"asymmetry score: exact {a['exact']:.1%}, Cohen's kappa {a['kappa']}, "
                     f"linear-weighted kappa {a['kappa_linear']}")
        lines.append("  confusion (rows expert 0/1/2, columns measured 0/1/2):")
        for label, row in zip((0, 1, 2), a["confusion_rows_expert_cols_measured"], strict=True):
            lines.append(f"    expert {label}: " + " ".join(f"{v:4d}" for v in row))
        lines.append("colours (expert present / measured present: sensitivity, specificity):")
        for name, c in fig["colours"].items():
            sens = "n/a" if c["sensitivity"] is None else f"{c['sensitivity']:.2f}"
            spec = "n/a" if c["specificity"] is None else f"{c['specificity']:.2f}"
            lines.append(f"  {name:12s} {c['expert_present']:3d} / {c['measured_present']:3d}: "
                         f"sensitivity {sens}, specificity {spec}")
        cc = fig["colour_count"]
        lines.append(f"colour count: mean absolute difference {cc['mean_abs_diff']:.2f}, exact {cc['exact']:.1%}, "
                     f"mean signed difference (measured - expert) {cc['mean_signed_diff']:+.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data",
                        help="folder holding ph2/ (default: ../shared/data next to the repository)")
    parser.add_argument("--masks", type=Path, help="folder of masks DIR/IMDnnn.png to use instead of the experts'")
    parser.add_argument("--ids", type=Path, help="splits.csv: keep only its rows with split == test")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args(argv)

    root = args.data_root / "ph2"
    if not (root / "metadata.csv").is_file():
        raise SystemExit(f"no PH2 metadata at {root / 'metadata.csv'}")
    ids = read_ids(args.ids) if args.ids else None
    rows, problems = measure_all(root, args.masks, ids)
    groups = {
        "held-out half (even positions; not used for tuning)": [r for r in rows if r["half"] == "held-out"],
        "tuning half (odd positions; thresholds tuned here)": [r for r in rows if r["half"] == "tuning"],
        "all images": rows,
    }
    result = {
        "masks": str(args.masks) if args.masks else "PH2 expert masks",
        "ids": str(args.ids) if args.ids else None,
        "asymmetry_threshold": ASYMMETRY_THRESHOLD,
        "min_colour_fraction": MIN_COLOUR_FRACTION,
        "problems": problems,
        "groups": {name: agreement(group) for name, group in groups.items()},
    }
    print(json.dumps(result) if args.json else report(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
