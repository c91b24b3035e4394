"""How long a case report takes: the PDF (target: at most 1 s), the FHIR JSON, and gathering the case.

Run from the repository root::

    python benchmarks/bench_report.py                  # the default installed model, a DermNet photo if present
    python benchmarks/bench_report.py --model clinical-fitz21-lite0 --image PATH --runs 50

What is measured (wall clock, in this process, after the case is built once):

* pdf: :func:`dermlib.report.render_pdf` of a finished case (photo, top-3, three heatmaps, measured limits),
  p50 / p95 over ``--runs``; the first call (which imports fpdf2) is printed apart.
* fhir: :func:`dermlib.report.to_fhir` with the PDF embedded, plus :func:`dermlib.report.validate_fhir`.
* case: :func:`dermlib.report.build_case` with the prediction and heatmaps a page already has (what a click on
  the Diagnose page's button runs before the PDF), and without them (predict + Grad-CAM included).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from dermlib.explain import explain
from dermlib.images import load_image
from dermlib.inference import predict
from dermlib.models import default_model_id, load_model
from dermlib.report import build_case, render_pdf, to_fhir, validate_fhir
from dermlib.testing import synthetic_skin_image

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "dermnet" / "images" / "melanoma"


def _times(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def _line(name: str, times: list[float]) -> str:
    q = statistics.quantiles(times, n=20) if len(times) >= 2 else times * 19
    return f"{name:<34} p50 {statistics.median(times) * 1000:7.1f} ms   p95 {q[18] * 1000:7.1f} ms   (n={len(times)})"


def main(argv: list[str] | None = None) -> int:
    """Print the timings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model id (default: the default installed model)")
    parser.add_argument("--image", help="a photo (default: a DermNet photo from ../shared/data, else synthetic)")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per stage (default 20)")
    parser.add_argument("--top-k", type=int, default=3)
    args = parser.parse_args(argv)

    model_id = args.model or default_model_id()
    if model_id is None:
        print("No model is installed.", file=sys.stderr)
        return 2
    samples = sorted(SAMPLE.glob("*.jpg")) if SAMPLE.is_dir() else []
    if args.image:
        image, source = load_image(args.image), args.image
    elif samples:
        image, source = load_image(samples[0]), str(samples[0])
    else:
        image, source = synthetic_skin_image(0, size=(640, 480)), "synthetic 640x480"
    loaded = load_model(model_id, device="cpu")
    prediction = predict(loaded, image, top_k=args.top_k)
    indices = [loaded.card.class_ids.index(s.label) for s in prediction.top_k]
    maps = explain(loaded, image, indices)
    print(f"model {model_id} ({loaded.card.architecture_label}), photo {source} {image.size[0]}x{image.size[1]}, "
          f"top-{args.top_k}")

    def case_from_page():
        return build_case(loaded, image, prediction=prediction, maps=maps)

    case = case_from_page()
    start = time.perf_counter()
    pdf = render_pdf(case)
    first = time.perf_counter() - start
    print(f"{'pdf, first call (imports fpdf2)':<34} {first * 1000:7.1f} ms   ({len(pdf) / 1024:.0f} kB)")
    pdf_times = _times(lambda: render_pdf(case), args.runs)
    print(_line("pdf (render_pdf)", pdf_times))
    validate_fhir(to_fhir(case, pdf))  # imports fhir.resources
    print(_line("fhir (to_fhir + validate_fhir)", _times(lambda: validate_fhir(to_fhir(case, pdf)), args.runs)))
    print(_line("case, from the page's results", _times(case_from_page, args.runs)))
    print(_line("case, predict + heatmaps included",
                _times(lambda: build_case(loaded, image, top_k=args.top_k), max(3, args.runs // 4))))
    p50 = statistics.median(pdf_times)
    print(f"PDF p50 {p50 * 1000:.1f} ms: {'within' if p50 <= 1.0 else 'OVER'} the 1 s target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
