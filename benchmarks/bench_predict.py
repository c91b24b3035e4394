"""Latency and memory of one diagnosis: model load, prediction, and top-3 heatmaps.

Run it from the repository root with glibc's malloc told not to hand memory back to the kernel between
requests (the same settings the app is deployed with; without them RSS and latency are noisier)::

    MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296 \\
        python benchmarks/bench_predict.py                       # the default installed model
    MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296 \\
        python benchmarks/bench_predict.py --tiny --arch efficientnet_b0 --input-size 224

``--tiny`` writes a randomly initialised timm model with a valid card into a temporary folder
(:func:`dermlib.testing.write_tiny_model`), so the numbers need no trained weights: latency does not
depend on the weight values. The reference comparison uses ``efficientnet_b0`` at 224 px with the CAM
target layer ``bn2``.

What is measured (wall clock, after ``--warmup`` untimed runs):

* load: :func:`dermlib.models.load_model` (card, checksum, safetensors, timm build), once.
* predict: :func:`dermlib.inference.predict` on one photo (preprocessing and the scope check included), p50 / p95;
  then without the scope check, and the scope check alone: its extra cost per prediction.
* cam: :func:`dermlib.explain.explain` for the top-3 classes with DermLens's batched engine, per method.
* grad-cam x3: the same top-3 maps as three plain calls of the grad-cam package
  (``with GradCAM(model=..., target_layers=[...]) as cam``) on a separate copy of the network, the way
  the package is normally used; the largest difference between the two sets of maps is printed too.
* RSS: peak (``ru_maxrss``) and current (``/proc/self/status``) resident memory after each stage.
* headline (skip with ``--no-headline``): one diagnosis as a user meets it, :func:`predict` plus the top-3
  Grad-CAM maps, against the *naive peer*: one ``tf_efficientnet_lite0`` at 224 px classified with a plain
  torch forward and explained with three ordinary grad-cam calls, the plainest app anyone would write.
  Both run with 1 thread and with every usable CPU, idle and with a *busy neighbour*: a process this
  script starts, pinned to the last usable CPU and spinning, stopped afterwards. With every usable CPU,
  DermLens runs as the app does by default (its prediction graph leaves a CPU to the scope check,
  :func:`dermlib.models.threads.prediction_threads`) and, in a row of its own, with the graph on every CPU
  too (``DERMLENS_THREADS=N``). The rows are interleaved run by run (every row once, then again), so a
  machine whose speed drifts affects them alike. The last column is the busy time over the idle time of
  the same row: graceful degradation, measured.

On a machine shared with other CPU-heavy work (a training run), pass ``--threads 1``: with more torch
threads than free cores, OpenMP's threads wait for each other and single runs take 10-50x longer, so
the percentiles measure the neighbours rather than DermLens.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

import torch
from PIL import Image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from dermlib.explain import CAM_METHODS, DEFAULT_CAM_METHOD, explain
from dermlib.inference import predict
from dermlib.models import LoadedModel, default_model_id, fast, load_model
from dermlib.models.threads import prediction_threads
from dermlib.scope.checker import get_checker
from dermlib.testing import synthetic_skin_image, write_tiny_model

MALLOC_HINT = "MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", help="installed model id or model folder (default: the default model)")
    source.add_argument("--tiny", action="store_true", help="random-weight model of --arch in a temp folder")
    parser.add_argument("--arch", default="efficientnet_b0", help="timm architecture for --tiny")
    parser.add_argument("--input-size", type=int, default=224, help="input side for --tiny (pixels)")
    parser.add_argument("--num-classes", type=int, default=4, help="classes for --tiny")
    parser.add_argument("--target-layer", default="bn2", help="CAM target layer for --tiny")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per measurement")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs before each measurement")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: dermlib's choice)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument(
        "--methods", default=DEFAULT_CAM_METHOD,
        help=f"comma-separated CAM methods (of: {', '.join(CAM_METHODS)})",
    )
    parser.add_argument("--top-k", type=int, default=3, help="classes explained per image")
    parser.add_argument("--no-baseline", action="store_true", help="skip the plain grad-cam comparison")
    parser.add_argument("--no-headline", action="store_true",
                        help="skip the diagnosis-vs-naive-peer table (threads x idle / busy neighbour)")
    args = parser.parse_args(argv)
    methods = [m.strip().lower() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in CAM_METHODS]
    if unknown:
        parser.error(f"unknown CAM method(s) {unknown}; choose from {', '.join(CAM_METHODS)}")
    args.methods = methods
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def current_rss_mb() -> float:
    """Resident memory now (Linux); NaN elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def timed(fn: Callable[[], object], runs: int, warmup: int, device: torch.device) -> list[float]:
    """Wall-clock seconds of ``runs`` calls of ``fn`` after ``warmup`` untimed ones."""

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


def pct(times: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(times) * 1000, q))


def environment_lines(loaded: LoadedModel | None) -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    import timm

    try:
        gradcam_version = version("grad-cam")
    except PackageNotFoundError:
        gradcam_version = "?"

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = os.cpu_count()
    malloc = {k: v for k, v in sorted(os.environ.items()) if k.startswith("MALLOC_")}
    load = f", load average {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""
    lines = [
        f"python {platform.python_version()} on {platform.platform()}",
        f"torch {torch.__version__}, timm {timm.__version__}, grad-cam {gradcam_version}",
        f"torch threads {torch.get_num_threads()} (interop {torch.get_num_interop_threads()}), "
        f"CPUs {os.cpu_count()} (usable {affinity}){load}",
        "MALLOC_*: " + (", ".join(f"{k}={v}" for k, v in malloc.items()) or f"(none set; recommended: {MALLOC_HINT})"),
    ]
    if loaded is not None:
        _, h, w = loaded.config["input_size"]
        lines.append(
            f"model {loaded.card.id}: {loaded.card.architecture_label}, {h}x{w}, {loaded.card.num_classes} classes, "
            f"CAM layer {', '.join(loaded.card.cam_layers)}, device {loaded.device}, prediction backend "
            f"{engine_name(loaded)}"
            + (f" ({loaded.fast.threads} thread(s) unless a row says otherwise)" if loaded.fast is not None else "")
        )
    return lines


def engine_name(loaded: LoadedModel) -> str:
    """What runs a model's forward pass: the exported graph's engine, or torch."""
    graph = loaded.fast_forward()
    return "torch" if graph is None else graph.session.engine


def _spin() -> None:  # the busy neighbour: one core kept at 100 %
    while True:
        pass


class BusyNeighbour:
    """A spinning child process pinned to one CPU, for as long as the ``with`` block runs."""

    def __init__(self) -> None:
        import multiprocessing

        self._proc = multiprocessing.get_context("spawn").Process(target=_spin, daemon=True)

    def __enter__(self) -> BusyNeighbour:
        self._proc.start()
        try:
            cpus = sorted(os.sched_getaffinity(0))
            os.sched_setaffinity(self._proc.pid, {cpus[-1]})
        except (AttributeError, OSError):
            pass  # no affinity API: the neighbour still takes one core's worth of time
        time.sleep(0.3)  # let it get scheduled before timing starts
        return self

    def __exit__(self, *exc: object) -> None:
        self._proc.terminate()
        self._proc.join(5)


def naive_peer() -> Callable[[Image.Image], np.ndarray]:
    """The plainest classifier-plus-heatmaps app: Lite0 at 224 px, a torch forward, grad-cam once per class."""
    import timm
    from pytorch_grad_cam import GradCAM

    net = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=38).eval()
    cfg = timm.data.resolve_data_config({}, model=net)
    transform = timm.data.create_transform(**cfg)

    def run(image: Image.Image) -> np.ndarray:
        x = transform(image).unsqueeze(0)
        with torch.no_grad():
            probs = torch.softmax(net(x), dim=1)[0]
        top = torch.topk(probs, 3).indices.tolist()
        maps = []
        for index in top:
            with GradCAM(model=net, target_layers=[net.bn2]) as cam:
                maps.append(cam(input_tensor=x, targets=[ClassifierOutputTarget(index)])[0])
        return np.stack(maps)

    return run


def headline_rows(args: argparse.Namespace, loaded: LoadedModel, image: Image.Image) -> list[tuple[str, ...]]:
    """p50 of one DermLens diagnosis (predict + top-3 Grad-CAM) and of the naive peer, per thread count,
    idle and with a busy neighbour."""
    peer = naive_peer()

    def dermlens() -> None:
        photo = image.copy()  # a new photo each run: the model keeps the last photo's view (models.loading)
        pred = predict(loaded, photo, top_k=3)
        explain(loaded, photo, [loaded.card.class_ids.index(s.label) for s in pred.top_k], "gradcam")

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    # (label, torch threads, graph threads): one thread; every usable CPU as the app uses them by default
    # (the graph leaves a CPU to the scope check, models.threads.prediction_threads); and every CPU in the
    # graph too, as DERMLENS_THREADS=N would set it.
    configs = [("1", 1, 1)]
    if usable > 1:
        configs.append((f"{usable} (default)", usable, prediction_threads()))
        if prediction_threads() != usable:
            configs.append((f"{usable}, graph {usable}", usable, usable))
    before, graph_before = torch.get_num_threads(), loaded.fast
    graphs: dict[int, object] = {}
    if graph_before is not None:  # the graph's threads are fixed when it is built: one per count
        for _, _, graph_threads in configs:
            if graph_threads not in graphs:
                graphs[graph_threads] = fast.build(loaded.model, loaded.input_size, loaded.device, graph_threads)

    def one_round(samples: dict[str, list[float]] | None) -> None:
        """Every row once, DermLens then the peer: rows interleaved, so a machine whose speed drifts over
        seconds (a shared host) slows every row alike instead of whichever ran during a slow spell."""
        for label, threads, graph_threads in configs:
            torch.set_num_threads(threads)
            if graph_before is not None:
                loaded.fast = graphs[graph_threads]
            for who, fn in (("ours", dermlens), ("peer", lambda: peer(image))):
                start = time.perf_counter()
                fn()
                if samples is not None:
                    samples.setdefault(f"{label}/{who}", []).append(time.perf_counter() - start)

    idle: dict[str, float] = {}
    rows = []
    try:
        for neighbour in ("idle", "busy neighbour"):
            with BusyNeighbour() if neighbour != "idle" else contextlib.nullcontext():
                for _ in range(args.warmup):
                    one_round(None)
                samples: dict[str, list[float]] = {}
                for _ in range(args.runs):
                    one_round(samples)
            for label, _, _ in configs:
                ours, theirs = pct(samples[f"{label}/ours"], 50), pct(samples[f"{label}/peer"], 50)
                if neighbour == "idle":
                    idle[label] = ours
                ratio = f"{ours / idle[label]:.2f}x" if neighbour != "idle" else ""
                rows.append((label, neighbour, f"{ours:.1f} ms", f"{theirs:.1f} ms", f"{theirs / ours:.1f}x",
                             ratio))
    finally:
        torch.set_num_threads(before)
        loaded.fast = graph_before
    return rows


def gradcam_package_top_k(
    network: torch.nn.Module, layer: list[torch.nn.Module], loaded: LoadedModel, image: Image.Image,
    indices: list[int], method: str,
) -> np.ndarray:
    """The top-k maps as k separate, ordinary grad-cam calls (one forward and backward each)."""
    cam_class = CAM_METHODS[method].cam_class
    x = loaded.preprocess([image])
    maps = []
    for index in indices:
        with cam_class(model=network, target_layers=layer) as cam:
            maps.append(cam(input_tensor=x, targets=[ClassifierOutputTarget(index)])[0])
    return np.stack(maps)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        os.environ["DERMLENS_THREADS"] = str(args.threads)  # load_model sets torch's threads from it
        torch.set_num_threads(args.threads)
    tmp = tempfile.TemporaryDirectory(prefix="dermlens-bench-") if args.tiny else None
    try:
        if tmp is not None:
            model_ref: str = str(write_tiny_model(
                Path(tmp.name) / "bench", model_id=f"bench-{args.arch}", architecture=args.arch,
                target_layer=args.target_layer, num_classes=args.num_classes, input_size=args.input_size,
            ))
        else:
            model_ref = args.model or default_model_id() or ""
            if not model_ref:
                print("No model is installed; pass --model ID|FOLDER or use --tiny.", file=sys.stderr)
                return 2
        return run(args, model_ref)
    finally:
        if tmp is not None:
            tmp.cleanup()


def run(args: argparse.Namespace, model_ref: str) -> int:
    rows: list[tuple[str, str, str, str]] = []  # (what, p50/value, p95, RSS now / peak)

    def mem() -> str:
        return f"{current_rss_mb():.0f} / {peak_rss_mb():.0f}"

    rss_start = mem()
    start = time.perf_counter()
    loaded = load_model(model_ref, device=args.device)
    load_s = time.perf_counter() - start
    rows.append(("load_model", f"{load_s * 1000:.0f} ms", "", mem()))
    start = time.perf_counter()
    if loaded.fast_forward(wait=True) is not None:  # a server builds it in the background; here, before timing
        rows.append((f"graph export and {engine_name(loaded)} compile (once per process)",
                     f"{(time.perf_counter() - start) * 1000:.0f} ms", "",
                     mem()))

    image = synthetic_skin_image(seed=0, size=(640, 480))
    prediction = predict(loaded, image, top_k=args.top_k)
    indices = [loaded.card.class_ids.index(s.label) for s in prediction.top_k]
    times = timed(lambda: predict(loaded, image.copy(), top_k=args.top_k), args.runs, args.warmup, loaded.device)
    rows.append(("predict (1 image, scope check included)", f"{pct(times, 50):.1f} ms", f"{pct(times, 95):.1f} ms",
                 mem()))
    bare = timed(lambda: predict(loaded, image.copy(), top_k=args.top_k, check_scope=False), args.runs, args.warmup,
                 loaded.device)
    rows.append(("predict without the scope check", f"{pct(bare, 50):.1f} ms", f"{pct(bare, 95):.1f} ms", mem()))
    checker = get_checker(loaded.card)
    if checker is not None:
        scope_times = timed(lambda: checker.check([image]), args.runs, args.warmup, loaded.device)
        rows.append((f"scope check alone ({checker.extractor.engine} extractor + score + quality)",
                     f"{pct(scope_times, 50):.1f} ms", f"{pct(scope_times, 95):.1f} ms", mem()))
        rows.append(("scope check: extra cost per prediction (p50 difference)",
                     f"{pct(times, 50) - pct(bare, 50):.1f} ms", "", ""))
    else:
        rows.append(("scope check", "not fitted for this model", "", ""))

    engine_maps: dict[str, np.ndarray] = {}
    for method in args.methods:
        runs = args.runs if not CAM_METHODS[method].slow else max(1, min(args.runs, 3))
        times = timed(lambda m=method: explain(loaded, image, indices, m), runs, min(args.warmup, 1), loaded.device)
        engine_maps[method] = explain(loaded, image, indices, method)
        rows.append((f"{method} top-{len(indices)} (dermlib engine)", f"{pct(times, 50):.1f} ms",
                     f"{pct(times, 95):.1f} ms", mem()))

    diffs: list[str] = []
    if not args.no_baseline:
        # A separate copy, with gradients on as the package expects: the shared model stays untouched.
        network = copy.deepcopy(loaded.model).requires_grad_(True)
        modules = dict(network.named_modules())
        layer = [modules[name] for name in loaded.card.cam_layers]
        for method in args.methods:
            spec = CAM_METHODS[method]
            if spec.slow:
                rows.append((f"{method} top-{len(indices)} (grad-cam x{len(indices)})", "skipped (slow)", "", ""))
                continue

            def call(m: str = method) -> np.ndarray:
                return gradcam_package_top_k(network, layer, loaded, image, indices, m)

            times = timed(call, args.runs, args.warmup, loaded.device)
            diff = float(np.abs(call() - engine_maps[method]).max())
            diffs.append(f"{method}: max |engine - grad-cam| = {diff:.2e}")
            rows.append((f"{method} top-{len(indices)} (grad-cam x{len(indices)})", f"{pct(times, 50):.1f} ms",
                         f"{pct(times, 95):.1f} ms", mem()))
        del network

    print("Environment")
    for line in environment_lines(loaded):
        print(f"  {line}")
    print(f"  runs {args.runs} after {args.warmup} warm-up; image 640x480 synthetic; RSS at start {rss_start} MB")
    print()
    header = ("measurement", "p50", "p95", "RSS now / peak (MB)")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        print("  ".join(cells))
    if diffs:
        print()
        for line in diffs:
            print(line)
    if not args.no_headline:
        rows = headline_rows(args, loaded, image)
        print(f"\nOne diagnosis (predict + top-3 Grad-CAM) vs the naive peer (Lite0 224 px, grad-cam x3), p50 of "
              f"{args.runs}")
        header = ("threads", "neighbour", "DermLens", "naive peer", "DermLens faster by", "busy / idle")
        print("(threads: torch's, and the prediction graph's where a row names them; the naive peer runs with "
              "torch's)")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, tuple("-" * w for w in widths), *rows]:
            print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
    print(f"\nPeak RSS {peak_rss_mb():.0f} MB, current RSS {current_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
