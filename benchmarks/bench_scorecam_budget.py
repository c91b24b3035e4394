"""Score-CAM on a model of several networks: does sharing one network's budget of passes cost map quality?

Every masked image of an ensemble of n networks goes through all of them, and each network has its own target
layer, so the app scores ``SCORE_CAM_MAX_CHANNELS // n**2`` channels at each layer (32 for a pair, 14 for three;
:func:`dermlib.explain.methods.score_cam_channels`) instead of ``SCORE_CAM_MAX_CHANNELS``. On real test photos
this prints, for the shared budget and for four times as many passes: top-3 time, the faithfulness score of the
top-1 map (``explain.faithfulness``), and how closely the two maps agree (Pearson r). Grad-CAM on the same photos
is the reference.

    python benchmarks/bench_scorecam_budget.py --model clinical-common38 --data-root ../shared/data \
        --dataset fitz-dermnet --n 16
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from dermlib.explain import explain, methods
from dermlib.explain.faithfulness import faithfulness
from dermlib.images import load_image
from dermlib.inference import predict
from dermlib.models import load_model
from dermlib.train.splits import rows_from_splits


def run(model: str, data_root: Path, dataset: str | None, n: int, budget: int, method: str) -> np.ndarray:
    """Top-1 maps of ``method`` on ``n`` test photos with Score-CAM's budget set to ``budget``; prints a line."""
    methods.SCORE_CAM_MAX_CHANNELS = budget
    loaded = load_model(model, device="cpu")
    rows = rows_from_splits(loaded.card.path, data_root, dataset)
    files = rows.loc[rows["split"] == "test", "image_path"].sample(n, random_state=1)
    times, scores, verdicts, maps_top1 = [], [], Counter(), []
    for f in files:
        image = load_image(f)
        idx = [loaded.card.class_ids.index(s.label) for s in predict(loaded, image, 3).top_k]
        start = time.perf_counter()
        maps = explain(loaded, image, idx, method)
        times.append(time.perf_counter() - start)
        first = faithfulness(loaded, image, idx, maps)[0]
        scores.append(first.score)
        verdicts.update([first.verdict])
        maps_top1.append(maps[0])
    per_layer = methods.score_cam_channels(len(loaded.card.members))
    label = method if method != "scorecam" else f"scorecam, {per_layer} channels a layer"
    print(f"{label:34s} top-3 p50 {np.median(times):5.2f} s (max {max(times):.2f}); top-1 map score mean "
          f"{np.mean(scores):+.3f}, median {np.median(scores):+.3f}; {dict(verdicts)}", flush=True)
    return np.asarray(maps_top1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="clinical-common38")
    parser.add_argument("--data-root", default="../shared/data", help="the dataset folder the model was trained on")
    parser.add_argument("--dataset", default=None, help="its dataset adapter (default: detected)")
    parser.add_argument("--n", type=int, default=16)
    args = parser.parse_args(argv)
    shared = methods.SCORE_CAM_MAX_CHANNELS
    root = Path(args.data_root)
    run(args.model, root, args.dataset, args.n, shared, "gradcam")
    small = run(args.model, root, args.dataset, args.n, shared, "scorecam")
    large = run(args.model, root, args.dataset, args.n, shared * 4, "scorecam")
    r = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(small, large, strict=True)]
    print(f"Pearson r between the two Score-CAM maps: median {np.median(r):.3f}, min {np.min(r):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
