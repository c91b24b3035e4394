"""Memory over many predictions: RSS of this process before and after N predictions with top-3 heatmaps.

Does what the Diagnose page does for each upload (decode, predict, Grad-CAM for the top 3, overlays), on
different synthetic photos, after a warm-up. Prints numbers; the pass/fail bound for the tiny test model
lives in tests/test_reliability.py.

    python benchmarks/bench_memory.py --model clinical-fitz21 --n 500
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from dermlib.explain import cams_for_tensor, overlay_heatmap
from dermlib.images import load_image
from dermlib.inference import build_prediction
from dermlib.models import default_model_id, load_model
from dermlib.testing import image_bytes, synthetic_skin_image


def rss_mib() -> float:
    """Resident set size of this process in MiB (Linux /proc)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    """Run the loop and print RSS after warm-up and every 100 predictions."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model id (default: the default model)")
    parser.add_argument("--n", type=int, default=500, help="predictions after warm-up")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--method", default="gradcam")
    args = parser.parse_args()

    loaded = load_model(args.model or default_model_id(), device="cpu")
    uploads = [image_bytes(synthetic_skin_image(seed, size=(1024, 768)), "JPEG", quality=90) for seed in range(40)]

    def one(i: int) -> None:
        image = load_image(uploads[i % len(uploads)])
        prediction = build_prediction(loaded, loaded.predict_proba([image])[0], 3)
        indices = [loaded.card.class_ids.index(s.label) for s in prediction.top_k]
        maps = cams_for_tensor(loaded, loaded.preprocess([image]), indices, args.method)
        view = loaded.model_view(image)
        for cam in maps:
            overlay_heatmap(view, cam, 0.45).tobytes()

    for i in range(args.warmup):
        one(i)
    start_rss, start = rss_mib(), time.perf_counter()
    print(f"model {loaded.card.id}: RSS after {args.warmup} warm-up predictions {start_rss:.1f} MiB")
    for i in range(args.n):
        one(args.warmup + i)
        if (i + 1) % 100 == 0 or i + 1 == args.n:
            print(f"  after {i + 1:4d}: RSS {rss_mib():.1f} MiB ({rss_mib() - start_rss:+.1f})")
    print(f"growth over {args.n} predictions with top-3 heatmaps: {rss_mib() - start_rss:+.1f} MiB "
          f"({(time.perf_counter() - start) / args.n * 1000:.0f} ms per prediction)")


if __name__ == "__main__":
    main()
