"""How long the heatmap faithfulness check takes, and what it says, on real photos.

    python benchmarks/bench_faithfulness.py --models clinical-fitz21-lite0 clinical-fitz21 --n 10

For each model: predict, Grad-CAM for the top-3, then :func:`dermlib.explain.faithfulness.faithfulness` (one
batch: the photo, a random-block removal, and one removal of the hottest 20% per class). Prints the check's
p50 / p95 time and how the maps' verdicts split (faithful / no better than chance / worse than chance), per
rank. Photos: the first ``--n`` Fitzpatrick17k test photos of the model's own split when the data root has
them.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

import pandas as pd

from dermlib.explain import explain
from dermlib.explain.faithfulness import faithfulness
from dermlib.images import load_image
from dermlib.inference import predict
from dermlib.models import load_model


def main(argv: list[str] | None = None) -> int:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["clinical-fitz21-lite0", "clinical-fitz21"])
    parser.add_argument("--data-root", default="../shared/data/fitzpatrick17k")
    parser.add_argument("--n", type=int, default=10)
    args = parser.parse_args(argv)
    for model_id in args.models:
        loaded = load_model(model_id)
        splits = pd.read_csv(loaded.card.path / "splits.csv")
        test = splits[splits["split"] == "test"].head(args.n)
        # splits.csv names a photo by file name, or by its path under the data folder
        files = [Path(args.data_root) / (row.image if "/" in row.image else f"images/{row.label}/{row.image}")
                 for row in test.itertuples()]
        times, verdicts = [], Counter()
        for f in files:
            image = load_image(f)
            pred = predict(loaded, image, 3)
            idx = [loaded.card.class_ids.index(s.label) for s in pred.top_k]
            maps = explain(loaded, image, idx, "gradcam")
            start = time.perf_counter()
            results = faithfulness(loaded, image, idx, maps)
            times.append(time.perf_counter() - start)
            verdicts.update((rank, r.verdict) for rank, r in enumerate(results, 1))
        p50, p95 = np.percentile(times, [50, 95]) * 1000
        print(f"{model_id}: {len(files)} photos, faithfulness check p50 {p50:.0f} ms, p95 {p95:.0f} ms")
        for rank in (1, 2, 3):
            row = {v: verdicts[(rank, v)] for v in ("faithful", "no better than chance", "worse than chance")}
            print(f"  top-{rank} maps: " + ", ".join(f"{v} {n}" for v, n in row.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
