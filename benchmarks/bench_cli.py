"""Cold start of the command line, as a user meets it: each figure is a new ``python -m dermlib`` process.

Run it from the repository root::

    python benchmarks/bench_cli.py                          # default model, a Fitzpatrick17k photo if present
    python benchmarks/bench_cli.py --model clinical-common38 --photo my.jpg --runs 7

What is timed (wall clock of the whole process, p50 and range over ``--runs``):

* ``models``: list the installed models.
* non-image refused: ``predict`` on a text file named ``.jpg`` (refused before any model loads).
* predict, torch: one photo with ``DERMLENS_PREDICT_BACKEND=torch`` (imports torch and timm: the path
  before the cached graph, and still the one for ``--cam`` and GPUs).
* predict, first run on this machine: one photo with an empty graph cache (torch exports the model and the
  scope extractor into it, once).
* predict, cached graph: one photo once the cache holds the graphs (no torch import).

The graph cache is a temporary folder (``DERMLENS_CACHE_DIR``), so the user's own cache is never touched.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PHOTOS = REPO.parent / "shared" / "data" / "fitzpatrick17k" / "images"


def _timed(args: list[str], env: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "dermlib", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, check=False)
    return time.perf_counter() - started, done.returncode


def _row(name: str, times: list[float], codes: list[int]) -> str:
    lo, hi = min(times), max(times)
    return f"{name:<42} p50 {statistics.median(times):6.2f} s   range {lo:.2f}-{hi:.2f} s   exit {sorted(set(codes))}"


def _photo(given: str | None) -> Path:
    if given:
        return Path(given)
    found = sorted(PHOTOS.glob("*/*.jpg"))[:1] if PHOTOS.is_dir() else []
    if found:
        return found[0]
    from dermlib.testing import synthetic_skin_image  # no data set here: a synthetic photo times the same path

    path = Path(tempfile.mkdtemp()) / "synthetic.png"
    synthetic_skin_image(0, size=(640, 480)).save(path)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model id (default: the default installed model)")
    parser.add_argument("--photo", help="photo to predict (default: a Fitzpatrick17k photo, else a synthetic one)")
    parser.add_argument("--runs", type=int, default=5, help="processes per figure (default 5)")
    args = parser.parse_args()

    photo = _photo(args.photo)
    model = ["--model", args.model] if args.model else []
    with tempfile.TemporaryDirectory() as work:
        fake = Path(work) / "notes.jpg"
        fake.write_text("this is a text file, not a photo")
        env = {**os.environ, "DERMLENS_CACHE_DIR": str(Path(work) / "cache")}
        env.pop("DERMLENS_PREDICT_BACKEND", None)
        torch_env = {**env, "DERMLENS_PREDICT_BACKEND": "torch"}
        print(f"photo {photo.name}; model {args.model or 'default'}; {args.runs} processes per figure; "
              f"{os.cpu_count()} CPUs")
        rows = []
        for name, argv, run_env in (("models", ["models"], env),
                                    ("non-image refused", ["predict", str(fake), *model], env),
                                    ("predict, torch (before)", ["predict", str(photo), "--json", *model], torch_env)):
            results = [_timed(argv, run_env) for _ in range(args.runs)]
            rows.append(_row(name, [t for t, _ in results], [c for _, c in results]))
            print(rows[-1], flush=True)
        first = _timed(["predict", str(photo), "--json", *model], env)
        print(_row("predict, first run (exports the graphs)", [first[0]], [first[1]]), flush=True)
        results = [_timed(["predict", str(photo), "--json", *model], env) for _ in range(args.runs)]
        print(_row("predict, cached graph (after)", [t for t, _ in results], [c for _, c in results]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
