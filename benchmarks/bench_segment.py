"""Latency and size of the lesion segmentation model (issue targets: at most 40 ms per image on 2 CPU cores at
its input size, the model folder at most 25 MB).

Run from the repository root (nothing else CPU-heavy running)::

    python benchmarks/bench_segment.py                          # the installed segmentation model
    python benchmarks/bench_segment.py --model ph2-unet-lite0 --data-root ../shared/data --threads 1 2

What is measured, per thread count, after ``--warmup`` untimed runs, as p50 / p95 over ``--runs`` photos:

* network: the network alone on a preprocessed (1, 3, H, W) input at the card's input size, in the backend the
  app uses (ONNX Runtime) and in eager torch;
* segment: :meth:`LoadedSegmenter.segment` on a photo (resize, network, probability back to the photo's size,
  threshold): what a user waits for;
* measure: :func:`dermlib.segment.measure.measure_lesion` on that mask and photo.

PH2 photos are used when the data root has them (512 x 384), else synthetic ones of that size.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

import torch
from PIL import Image

from dermlib.models.registry import default_model_id
from dermlib.segment.measure import measure_lesion
from dermlib.segment.model import load_segmenter, preprocess
from dermlib.testing import synthetic_lesion_pair


def _percentiles(fn, runs: int, warmup: int) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def _photos(data_root: Path, n: int) -> list[Image.Image]:
    folder = data_root / "ph2" / "images"
    files = sorted(folder.glob("*.jpg"))[:n] if folder.is_dir() else []
    if files:
        return [Image.open(f).convert("RGB") for f in files]
    return [synthetic_lesion_pair(seed=i, size=(512, 384))[0] for i in range(n)]


def main(argv: list[str] | None = None) -> int:
    """Print the segmentation latency table (and JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="segmentation model id (default: the installed one)")
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    model_id = args.model or default_model_id(kind="segmentation")
    if model_id is None:
        print("No segmentation model is installed.", file=sys.stderr)
        return 1
    segmenter = load_segmenter(model_id)
    folder = segmenter.card.path
    size_mb = sum(f.stat().st_size for f in folder.iterdir() if f.is_file()) / 1e6 if folder else float("nan")
    photos = _photos(Path(args.data_root), args.runs)
    _, h, w = segmenter.card.preprocessing["input_size"]
    print(f"model {segmenter.card.id} ({segmenter.card.architecture_label}, {h}x{w} px), folder {size_mb:.2f} MB")
    print(f"photos: {len(photos)} of {photos[0].width}x{photos[0].height}")
    results = {"model": segmenter.card.id, "folder_mb": round(size_mb, 2), "input_size": [h, w], "rows": []}
    x = preprocess(photos[0], segmenter.card)
    print(f"{'threads':>7} {'ORT network':>14} {'torch network':>14} {'segment':>14} {'measure':>14}   (p50/p95 ms)")
    for threads in args.threads:
        torch.set_num_threads(threads)
        segmenter._session_tried = False  # a session with this thread count
        session = segmenter._onnx()
        feed = {"x": x.numpy()}
        ort = (_percentiles(lambda s=session, f=feed: s.run(None, f), args.runs, args.warmup) if session
               else (float("nan"),) * 2)

        def eager() -> None:
            with torch.inference_mode():
                segmenter.network(x)

        eager_t = _percentiles(eager, args.runs, args.warmup)
        it = iter(photos * (1 + (args.runs + args.warmup) // len(photos)))
        seg = _percentiles(lambda it=it: segmenter.segment(next(it)), args.runs, args.warmup)
        mask = segmenter.segment(photos[0])
        meas = _percentiles(lambda m=mask: measure_lesion(m, photos[0]), args.runs, args.warmup)
        print(f"{threads:>7} {ort[0]:7.1f}/{ort[1]:<6.1f} {eager_t[0]:7.1f}/{eager_t[1]:<6.1f} "
              f"{seg[0]:7.1f}/{seg[1]:<6.1f} {meas[0]:7.1f}/{meas[1]:<6.1f}")
        results["rows"].append({"threads": threads, "ort_ms": ort, "torch_ms": eager_t, "segment_ms": seg,
                                "measure_ms": meas})
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
