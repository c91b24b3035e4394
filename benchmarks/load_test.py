"""Load test: N concurrent browser sessions upload photos on Diagnose; time-to-result, errors, isolation, RSS.

Run it from the repository root (it needs the dev requirements: Playwright and Debian's ``chromium``)::

    python benchmarks/load_test.py                           # shipped model in weights/, 1, 4 and 8 sessions
    python benchmarks/load_test.py --tiny --sessions 1 2 --rounds 2     # a quick run on a tiny random model
    python benchmarks/load_test.py --sessions 1 4 --rounds 2 --json results.json

What happens:

1. Every image is made up front with :func:`dermlib.testing.synthetic_skin_image`, one seed per session and
   round, never reused (the app memoises results by content, so a repeated image could be answered from
   memory and measure nothing). Seeds whose model views look too alike are skipped so the pixel check
   below can tell any two uploads apart. PNG and JPEG alternate by round.
2. The same model the page uses is loaded in this process and, like the page (``load_image``,
   ``predict_proba``, ``build_prediction(top_k=3)``), gives each image's expected heatmap captions
   ("{class name} ({probability:.0%})") and model view.
3. ``streamlit run streamlit_app.py`` starts on a free loopback port; one warm-up upload loads the model.
4. For each N of ``--sessions``: N browser contexts (sessions) in one headless Chromium open Diagnose, start
   together, and each uploads ``--rounds`` different images one after another. Time-to-result runs from
   ``set_input_files`` until the "Original" image and the top-3 heatmaps of *this* upload have rendered
   (their media URLs are new and no element of the page is left over from the previous run).
5. Isolation: each result's captions must be this upload's (±1 percentage point for rounding) and the
   "Original" image, fetched with the session's cookies, must match this upload's model view and be
   clearly farther from every other concurrent session's image. Any miss counts as an isolation error.
6. Per N it prints uploads, results, errors (timeouts, exceptions, isolation) and p50/p95/max
   time-to-result, and the server's resident memory (VmRSS, children included) before, at the peak and
   after. ``--timeout-s`` bounds the whole run: at the deadline it stops, reports what it has and always
   stops the server.

The browser runs on the same machine as the server and takes CPU too; on a machine shared with other
CPU-heavy work (a training run) the numbers measure the neighbours as much as DermLens. Set
``OMP_NUM_THREADS`` for the server with ``--server-threads``; the server inherits the rest of the
environment (for example ``DERMLENS_INFERENCE_SLOTS`` or glibc's ``MALLOC_*`` settings). The exit status is
0 only when every planned upload showed its own correct result.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # run as a script from anywhere; `tests` is then importable too

from dermlib.config import WEIGHTS_ENV  # noqa: E402
from dermlib.models import ModelCard, load_model, scan_models  # noqa: E402
from dermlib.scope.checker import check_images  # noqa: E402
from dermlib.testing import image_bytes, synthetic_skin_image, write_tiny_model  # noqa: E402
from tests.browser_helpers import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    DiagnosisError,
    DiagnosisTimeout,
    ExpectedDiagnosis,
    StreamlitServer,
    captions_match,
    expected_diagnosis,
    fetch_image,
    isolation_problems,
    open_diagnose_page,
    streamlit_server,
    upload_and_wait,
    view_difference,
)

TOP_K = 3
# Two photos whose model views differ by less than this (mean grey levels, on 48 px thumbnails) are too
# alike for the pixel check; Streamlit's JPEG re-encoding of a view alone costs about 1.5.
MIN_VIEW_SEPARATION = 10.0
# The first result includes loading the model in the server.
WARMUP_TIMEOUT_S = 300.0
# Grace after the deadline for the browser and server to stop before the watchdog ends the process.
WATCHDOG_GRACE_S = 30.0


@dataclass
class Upload:
    """One image one session uploads in one round, with what the page must show for it."""

    level: int
    session: int
    round: int
    path: Path
    expected: ExpectedDiagnosis


@dataclass
class Outcome:
    """What happened to one upload."""

    level: int
    session: int
    round: int
    file: str
    status: str  # ok | timeout | exception | isolation
    seconds: float | None = None
    captions: list[str] = field(default_factory=list)
    own_view_diff: float | None = None
    nearest_other_view_diff: float | None = None
    detail: str = ""


@dataclass
class LevelSummary:
    """The numbers printed for one N."""

    sessions: int
    uploads_planned: int
    uploads_done: int
    results_ok: int
    timeouts: int
    exceptions: int
    isolation_errors: int
    p50_s: float | None
    p95_s: float | None
    max_s: float | None
    rss_before_mib: float | None
    rss_peak_mib: float | None
    rss_after_mib: float | None
    stopped_early: bool


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Read the command line.

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The parsed options.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--weights-dir", type=Path, default=None,
                        help=f"weights folder the app serves (default: ${WEIGHTS_ENV}, else weights/)")
    source.add_argument("--tiny", action="store_true",
                        help="serve a tiny random-weight model written to a temp folder (a quick run)")
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 4, 8], help="concurrent sessions per step")
    parser.add_argument("--rounds", type=int, default=3, help="uploads per session, each a different image")
    parser.add_argument("--timeout-s", type=float, default=600.0, help="limit for the whole run (seconds)")
    parser.add_argument("--result-timeout-s", type=float, default=180.0, help="limit for one result (seconds)")
    parser.add_argument("--image-size", type=int, nargs=2, default=[1024, 768], metavar=("W", "H"),
                        help="size of the synthetic photos (pixels)")
    parser.add_argument("--seed", type=int, default=1000, help="first candidate image seed")
    parser.add_argument("--photos", type=Path, default=None,
                        help="upload real photos from this folder (e.g. ../shared/data/fitzpatrick17k/images) "
                        "instead of synthetic images, which the shipped models' scope check refuses")
    parser.add_argument("--server-threads", type=int, default=None,
                        help="OMP_NUM_THREADS for the server (default: inherited)")
    parser.add_argument("--log", type=Path, default=None, help="keep the server's log here (default: a temp file)")
    parser.add_argument("--json", dest="json_path", default=None, metavar="PATH",
                        help="also write the results as JSON to PATH ('-' for stdout; the table then goes to stderr)")
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.sessions) or args.rounds < 1:
        parser.error("--sessions and --rounds must be positive")
    if args.timeout_s <= 0 or args.result_timeout_s <= 0:
        parser.error("timeouts must be positive")
    return args


def say(message: str) -> None:
    """Progress on stderr (stdout carries the results)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def prepare_weights(args: argparse.Namespace, scratch: Path) -> Path:
    """The weights folder to serve: a fresh tiny model, ``--weights-dir``, ``$DERMLENS_WEIGHTS_DIR`` or weights/."""
    if args.tiny:
        # A random network gives every class about 25% at temperature 1, so every image would caption
        # alike; a low temperature spreads the probabilities and makes the caption check meaningful.
        write_tiny_model(scratch / "weights" / "tiny-test", model_id="tiny-test", num_classes=4, temperature=0.01)
        return scratch / "weights"
    if args.weights_dir is not None:
        return args.weights_dir.resolve()
    return Path(os.environ.get(WEIGHTS_ENV) or REPO_ROOT / "weights").resolve()


def page_model(weights: Path) -> ModelCard:
    """The model Diagnose selects on a first visit: the card marked default, else the first by id (the select
    box's order)."""
    cards, broken = scan_models(weights)
    for item in broken:
        say(f"warning: model folder {item.folder.name} is broken: {item.problem}")
    if not cards:
        raise SystemExit(f"no model in {weights}")
    return sorted(cards, key=lambda c: (not c.default, c.id))[0]


class Deadline:
    """The run's global time limit."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds until the deadline (never negative)."""
        return max(0.0, self.end - time.monotonic())


class OutOfTime(Exception):
    """The global deadline passed before the run could start."""


def make_uploads(card: ModelCard, levels: Sequence[int], rounds: int, size: tuple[int, int], first_seed: int,
                 folder: Path, deadline: Deadline, photos: Path | None = None
                 ) -> tuple[Upload, dict[int, list[list[Upload]]]]:
    """Write one distinct image per session and round (plus a warm-up) and compute what each must show.

    Args:
        card: The model the page uses.
        levels: The session counts that will run.
        rounds: Uploads per session.
        size: (width, height) of the photos.
        first_seed: First candidate seed.
        folder: Where the files go.
        deadline: The run's time limit.
        photos: A folder of real photos (searched recursively for .jpg/.png) to upload instead of synthetic
            images: the shipped models' scope check refuses synthetic blobs. Photo ``seed`` is the seed-th
            file in sorted order, resized to ``size``.

    Returns:
        The warm-up upload, and per session count a list (per session) of lists (per round) of uploads.

    Raises:
        OutOfTime: The deadline passed while preparing.
    """
    # One thread: with more OpenMP threads than free cores (a busy machine) they wait on each other and a
    # prediction takes 10-50x longer. The page's results do not depend on the thread count beyond rounding.
    torch.set_num_threads(1)
    loaded = load_model(card)
    files = sorted(p for p in photos.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")) if photos else []
    if photos is not None and not files:
        raise SystemExit(f"no .jpg or .png photo under {photos}")

    def picture(seed: int) -> Image.Image:
        if files:
            return Image.open(files[seed % len(files)]).convert("RGB").resize(size)
        return synthetic_skin_image(seed=seed, size=size)

    # Images must differ within a step (all sessions and rounds that run together); later steps reuse the
    # same pictures in new sessions, which keeps a long memory run from searching for thousands of them.
    needed = 1 + max(levels) * rounds
    # Choose seeds on small thumbnails of the model view: the per-pixel noise averages out there, so the
    # separation measures what differs between the photos themselves, and it is cheap for many images.
    seeds: list[int] = []
    thumbs = np.zeros((0, 48, 48, 3), dtype=np.float32)
    seed = first_seed
    while len(seeds) < needed:
        if deadline.left() <= 0:
            raise OutOfTime(f"the deadline passed while choosing images ({len(seeds)} of {needed})")
        if seed > first_seed + 50 * needed:
            raise SystemExit(f"could not find {needed} synthetic images that look different enough")
        image = picture(seed)
        # A real photo the model's scope check refuses gets a message and no heatmaps: not a timing.
        if files and not check_images(card, [image])[0].in_scope:
            seed += 1
            continue
        view = loaded.model_view(image)
        thumb = np.asarray(view.resize((48, 48), Image.BILINEAR), dtype=np.float32)
        if not len(seeds) or np.abs(thumbs - thumb).mean(axis=(1, 2, 3)).min() >= MIN_VIEW_SEPARATION:
            seeds.append(seed)
            thumbs = np.concatenate([thumbs, thumb[None]])
        seed += 1

    expected_cache: dict[tuple[int, bool], tuple[bytes, Any]] = {}

    def upload(index: int, level: int, session: int, round_: int) -> Upload:
        if deadline.left() <= 0:
            raise OutOfTime(f"the deadline passed while computing the expected results (image {index + 1})")
        jpeg = round_ % 2 == 1
        key = (seeds[index], jpeg)
        if key not in expected_cache:
            image = picture(seeds[index])
            data = image_bytes(image, "JPEG", quality=92) if jpeg else image_bytes(image, "PNG")
            expected_cache[key] = (data, None)
        data, expected = expected_cache[key]
        name = f"n{level}-s{session}-r{round_}-seed{seeds[index]}.{'jpg' if jpeg else 'png'}"
        if expected is None:
            expected = expected_diagnosis(loaded, data, label=name, top_k=TOP_K)
            expected_cache[key] = (data, expected)
        path = folder / name
        path.write_bytes(data)
        return Upload(level, session, round_, path, dataclasses.replace(expected, label=name))

    warmup = upload(0, 0, 0, 0)
    plan: dict[int, list[list[Upload]]] = {}
    for level_index, n in enumerate(levels):
        sessions = []
        index = 1
        for s in range(n):
            sessions.append([upload(index + r, level_index, s, r) for r in range(rounds)])
            index += rounds
        plan[level_index] = sessions
    return warmup, plan


def process_rss_bytes(pid: int) -> int | None:
    """VmRSS of a process and all its descendants, in bytes (None once the process is gone)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    total, stack, found = 0, [pid], False
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
                found = found or current == pid
        stack.extend(children.get(current, []))
    return total if found else None


def mib(value: int | None) -> float | None:
    """Bytes to MiB, rounded for printing."""
    return None if value is None else round(value / 2**20, 1)


async def run_session(browser: Any, url: str, card: ModelCard, uploads: list[Upload],
                      others: list[ExpectedDiagnosis], start: asyncio.Event, ready: list[bool],
                      result_timeout_s: float, deadline: Deadline, outcomes: list[Outcome]) -> None:
    """One browser session: open Diagnose, wait for the common start, upload each image and check it.

    Outcomes are appended as they happen, so a run stopped at the deadline keeps what it measured.
    """
    context = await browser.new_context(viewport={"width": 1280, "height": 1000})
    try:
        page = None
        try:
            page = await open_diagnose_page(context, url, timeout_ms=min(120.0, deadline.left()) * 1000)
            # Results are only comparable if the page serves the model the expectations were computed with.
            shown_model = await page.get_by_role("combobox", name="Model").input_value()
            if shown_model != card.name:
                raise DiagnosisError(f"the page selects model '{shown_model}', not '{card.name}'")
        finally:
            ready.append(page is not None)
        await start.wait()
        previous: set[str] = set()
        for upload in uploads:
            if deadline.left() <= 0:
                return
            outcome = Outcome(upload.level, upload.session, upload.round, upload.path.name, "ok")
            try:
                shown, seconds = await upload_and_wait(
                    page, str(upload.path), previous, timeout_ms=min(result_timeout_s, deadline.left()) * 1000,
                    top_k=TOP_K)
                outcome.seconds = round(seconds, 3)
                previous.update(shown.srcs)
                outcome.captions = list(shown.captions)
                original = await fetch_image(page, shown.original_src)
                outcome.own_view_diff = round(view_difference(original, upload.expected.view), 2)
                if others:
                    outcome.nearest_other_view_diff = round(min(view_difference(original, o.view) for o in others), 2)
                problems = isolation_problems(shown.captions, original, upload.expected, others)
                if problems:
                    outcome.status, outcome.detail = "isolation", "; ".join(problems)
            except DiagnosisTimeout as exc:
                outcome.status, outcome.detail = "timeout", str(exc)[:600]
            except Exception as exc:  # any failure of one upload is a result to report, not a crash
                outcome.status, outcome.detail = "exception", f"{type(exc).__name__}: {str(exc)[:600]}"
            outcomes.append(outcome)
            if outcome.status in ("timeout", "exception") and deadline.left() > 0:
                # The page is in an unknown state: start the next round from a fresh page load.
                with contextlib.suppress(Exception):
                    await page.close()
                page = await open_diagnose_page(context, url, timeout_ms=min(120.0, deadline.left()) * 1000)
                previous.clear()
    finally:
        with contextlib.suppress(Exception):
            await context.close()


@dataclass
class Measurements:
    """Everything measured so far; filled in as the run goes, so an interrupted run keeps it."""

    warmup: dict[str, Any] = field(default_factory=dict)
    app_start_s: float | None = None  # server_ready_s + first_page_s
    server_ready_s: float | None = None  # `streamlit run` launched -> /_stcore/health answers
    first_page_s: float | None = None  # an open browser asks for the app -> Diagnose page drawn
    outcomes: list[Outcome] = field(default_factory=list)
    # Per session-count step: server RSS in bytes before, at the peak and after (None until measured).
    rss: dict[int, dict[str, int | None]] = field(default_factory=dict)
    cut_short: set[int] = field(default_factory=set)


async def sample_rss(pid: int, record: dict[str, int | None]) -> None:
    """Track the server's peak RSS every 0.25 s until cancelled."""
    while True:
        rss = process_rss_bytes(pid)
        if rss is not None:
            record["peak"] = max(record["peak"] or 0, rss)
        await asyncio.sleep(0.25)


async def run_level(browser: Any, server: StreamlitServer, card: ModelCard, level: int,
                    sessions: list[list[Upload]], args: argparse.Namespace, deadline: Deadline,
                    measured: Measurements) -> None:
    """Run N sessions at once, recording outcomes and the server's memory into ``measured``."""
    n = len(sessions)
    start, ready = asyncio.Event(), []
    record: dict[str, int | None] = {"before": process_rss_bytes(server.process.pid), "peak": None, "after": None}
    record["peak"] = record["before"]
    measured.rss[level] = record
    sampler = asyncio.create_task(sample_rss(server.process.pid, record))
    tasks = []
    for s, uploads in enumerate(sessions):
        others = [u.expected for i, other in enumerate(sessions) if i != s for u in other]
        tasks.append(asyncio.create_task(
            run_session(browser, server.url, card, uploads, others, start, ready, args.result_timeout_s, deadline,
                        measured.outcomes)))

    async def release_when_loaded() -> None:
        while len(ready) < n and not all(t.done() for t in tasks):
            await asyncio.sleep(0.05)
        start.set()  # every session starts uploading at the same moment

    releaser = asyncio.create_task(release_when_loaded())
    try:
        done, pending = await asyncio.wait(tasks, timeout=deadline.left())
        if pending:
            measured.cut_short.add(level)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            if task.exception() is not None:  # a session that never got its page up
                exc = task.exception()
                measured.outcomes.append(
                    Outcome(level, -1, -1, "", "exception", detail=f"{type(exc).__name__}: {exc}"[:600]))
    finally:
        releaser.cancel()
        sampler.cancel()
        await asyncio.gather(releaser, sampler, return_exceptions=True)
        record["after"] = process_rss_bytes(server.process.pid)


def summarize(args: argparse.Namespace, measured: Measurements) -> list[LevelSummary]:
    """One summary per session-count step that started."""
    summaries = []
    for level in sorted(measured.rss):
        n = args.sessions[level]
        outcomes = [o for o in measured.outcomes if o.level == level]
        times = [o.seconds for o in outcomes if o.status == "ok" and o.seconds is not None]
        done = sum(1 for o in outcomes if o.round >= 0)
        rss = measured.rss[level]
        peak = max((v for v in rss.values() if v is not None), default=None)
        summaries.append(LevelSummary(
            sessions=n,
            uploads_planned=n * args.rounds,
            uploads_done=done,
            results_ok=len(times),
            timeouts=sum(o.status == "timeout" for o in outcomes),
            exceptions=sum(o.status == "exception" for o in outcomes),
            isolation_errors=sum(o.status == "isolation" for o in outcomes),
            p50_s=round(float(np.percentile(times, 50)), 2) if times else None,
            p95_s=round(float(np.percentile(times, 95)), 2) if times else None,
            max_s=round(max(times), 2) if times else None,
            rss_before_mib=mib(rss["before"]),
            rss_peak_mib=mib(peak),
            rss_after_mib=mib(rss["after"]),
            stopped_early=level in measured.cut_short or done < n * args.rounds,
        ))
    return summaries


async def run_all(server: StreamlitServer, card: ModelCard, warmup: Upload, plan: dict[int, list[list[Upload]]],
                  args: argparse.Namespace, deadline: Deadline, measured: Measurements) -> None:
    """Warm up with one upload, then run every session count in turn until done or out of time."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            # App start: launching `streamlit run` until it answers, plus a browser that is already open asking
            # for the page until the Diagnose page is drawn. Starting chromium here is not counted: a user's
            # browser is running before they type the address.
            context = await browser.new_context()
            try:
                asked = time.perf_counter()
                await open_diagnose_page(context, server.url, WARMUP_TIMEOUT_S * 1000)
                measured.first_page_s = time.perf_counter() - asked
                measured.server_ready_s = server.ready_at - server.started_at
                measured.app_start_s = measured.server_ready_s + measured.first_page_s
                say(f"app start to first page: {measured.app_start_s:.2f} s (server ready "
                    f"{measured.server_ready_s:.2f} s, page drawn {measured.first_page_s:.2f} s after asking)")
            finally:
                await context.close()
            say("warm-up: one upload (loads the model in the server)")
            warm_outcomes: list[Outcome] = []
            start = asyncio.Event()
            start.set()
            failure = "not finished before the deadline"
            try:
                await asyncio.wait_for(
                    run_session(browser, server.url, card, [warmup], [], start, [],
                                max(args.result_timeout_s, WARMUP_TIMEOUT_S), deadline, warm_outcomes),
                    timeout=deadline.left())
            except TimeoutError:
                pass
            except Exception as exc:  # the page never came up: nothing else can run, but report why
                failure = f"{type(exc).__name__}: {exc}"
            measured.warmup = asdict(warm_outcomes[0]) if warm_outcomes else {"status": "exception", "detail": failure}
            if measured.warmup.get("status") != "ok":
                say(f"warm-up failed: {measured.warmup}")
                return
            say(f"warm-up result in {measured.warmup['seconds']:.2f} s; server RSS "
                f"{mib(process_rss_bytes(server.process.pid))} MiB")
            for level, n in enumerate(args.sessions):
                if deadline.left() <= 0:
                    say(f"deadline reached: {n} sessions not run")
                    break
                say(f"{n} session(s) x {args.rounds} round(s)")
                await run_level(browser, server, card, level, plan[level], args, deadline, measured)
                ok = sum(o.status == "ok" for o in measured.outcomes if o.level == level)
                say(f"{n} session(s): {ok}/{n * args.rounds} ok")
        finally:
            with contextlib.suppress(Exception):
                await browser.close()


def log_problems(log: str) -> list[str]:
    """Lines of the server log that look like errors or warnings."""
    keys = ("Traceback", "Error", "Exception", "WARNING", "Warning")
    return [line.strip()[:300] for line in log.splitlines() if any(k in line for k in keys)]


def print_report(summaries: list[LevelSummary], outcomes: list[Outcome], meta: dict[str, Any], stream: Any) -> None:
    """The human-readable table and every error, one line each."""
    print(f"model {meta['model_id']} ({meta['weights_dir']}), {meta['rounds']} round(s) per session, "
          f"images {meta['image_size'][0]}x{meta['image_size'][1]}, {meta['cpus']} CPUs, "
          f"load average before {meta['loadavg_before']}", file=stream)
    header = (f"{'sessions':>8} {'uploads':>8} {'results':>8} {'timeouts':>8} {'exceptions':>10} {'isolation':>9} "
              f"{'p50 s':>7} {'p95 s':>7} {'max s':>7} {'RSS before':>10} {'RSS peak':>9} {'RSS after':>9}")
    print(header, file=stream)

    def fmt(value: float | None, width: int) -> str:
        return f"{'-' if value is None else value:>{width}}"

    for s in summaries:
        print(f"{s.sessions:>8} {f'{s.uploads_done}/{s.uploads_planned}':>8} {s.results_ok:>8} {s.timeouts:>8} "
              f"{s.exceptions:>10} {s.isolation_errors:>9} {fmt(s.p50_s, 7)} {fmt(s.p95_s, 7)} {fmt(s.max_s, 7)} "
              f"{fmt(s.rss_before_mib, 10)} {fmt(s.rss_peak_mib, 9)} {fmt(s.rss_after_mib, 9)}"
              + ("  (stopped early)" if s.stopped_early else ""), file=stream)
    print("RSS in MiB (server process and children); times from set_input_files to the last heatmap.", file=stream)
    if meta.get("app_start_s") is not None:
        first = (meta.get("warmup") or {}).get("seconds")
        print(f"app start (`streamlit run` launched -> Diagnose page drawn): {meta['app_start_s']:.2f} s (server "
              f"ready {meta['server_ready_s']:.2f} s + page {meta['first_page_s']:.2f} s); first upload (model load "
              f"included): {'-' if first is None else f'{first:.2f} s'}", file=stream)
    own = [o.own_view_diff for o in outcomes if o.own_view_diff is not None]
    near = [o.nearest_other_view_diff for o in outcomes if o.nearest_other_view_diff is not None]
    if own:
        print(f"pixel check: own image differs by at most {max(own):.2f} grey levels; the nearest other "
              f"session's image by at least {min(near) if near else float('nan'):.2f}", file=stream)
    if meta.get("caption_ambiguous_pairs"):
        print(f"note: {meta['caption_ambiguous_pairs']} pair(s) of concurrent images have captions that match "
              "each other within the rounding tolerance; the pixel check tells those apart", file=stream)
    for o in outcomes:
        if o.status != "ok":
            print(f"  {o.status}: N-step {o.level} session {o.session} round {o.round} {o.file}: {o.detail}",
                  file=stream)
    if meta.get("server_problem"):
        print(f"the server did not start: {meta['server_problem']}", file=stream)
    if meta.get("stopped_while"):
        print(f"stopped while {meta['stopped_while']}", file=stream)
    elif meta.get("deadline_reached"):
        print("stopped: the deadline (--timeout-s) passed; the table shows what was measured by then", file=stream)
    if meta.get("interrupted"):
        print("stopped: interrupted; the table shows what was measured by then", file=stream)
    warm = meta.get("warmup") or {}
    if warm and warm.get("status") != "ok":
        print(f"warm-up failed ({warm.get('status')}): {warm.get('detail')}", file=stream)
    if meta.get("server_alive_at_end") is False:
        print("the server process had exited before the end of the run", file=stream)
    if meta.get("server_log_problems"):
        print(f"server log: {len(meta['server_log_problems'])} line(s) with errors or warnings, first ones:",
              file=stream)
        for line in meta["server_log_problems"][:10]:
            print(f"  | {line}", file=stream)


def ambiguous_caption_pairs(plan: dict[int, list[list[Upload]]]) -> int:
    """Pairs of images in different concurrent sessions whose expected captions are interchangeable."""
    count = 0
    for sessions in plan.values():
        flat = [(s, u.expected) for s, uploads in enumerate(sessions) for u in uploads]
        for i, (si, a) in enumerate(flat):
            for sj, b in flat[i + 1:]:
                if si != sj and captions_match(a.captions, b):
                    count += 1
    return count


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the load test.

    Returns:
        0 when every planned upload gave its own correct result, 1 otherwise.
    """
    args = parse_args(argv)
    deadline = Deadline(args.timeout_s)
    holder: dict[str, Any] = {}

    def watchdog() -> None:
        # Last resort if something hangs past the deadline (a stuck browser call): stop the server, then exit.
        server = holder.get("server")
        if server is not None and server.process.poll() is None:
            server.process.kill()
        if "scratch" in holder:  # os._exit skips the TemporaryDirectory's cleanup
            shutil.rmtree(holder["scratch"], ignore_errors=True)
        print("load_test: watchdog: still running after the deadline; exiting", file=sys.stderr, flush=True)
        os._exit(3)

    timer = threading.Timer(args.timeout_s + WATCHDOG_GRACE_S, watchdog)
    timer.daemon = True
    timer.start()
    # SIGTERM unwinds like Ctrl-C, so the server is stopped by streamlit_server's cleanup.
    signal.signal(signal.SIGTERM, _interrupt)

    with tempfile.TemporaryDirectory(prefix="dermlens-load-") as tmp:
        scratch = holder["scratch"] = Path(tmp)
        weights = prepare_weights(args, scratch)
        card = page_model(weights)
        say(f"model {card.id} from {weights}; making {1 + max(args.sessions) * args.rounds} distinct images")
        images = scratch / "images"
        images.mkdir()
        meta: dict[str, Any] = {
            "model_id": card.id, "weights_dir": str(weights), "sessions": args.sessions, "rounds": args.rounds,
            "image_size": args.image_size, "server_threads": args.server_threads, "cpus": os.cpu_count(),
            "loadavg_before": [round(x, 2) for x in os.getloadavg()], "python": platform.python_version(),
        }
        measured = Measurements()
        try:
            warmup, plan = make_uploads(card, args.sessions, args.rounds, tuple(args.image_size), args.seed, images,
                                        deadline, photos=args.photos)
        except (OutOfTime, KeyboardInterrupt) as exc:
            say(str(exc) or "interrupted while preparing images")
            timer.cancel()
            meta.update(deadline_reached=deadline.left() <= 0, interrupted=isinstance(exc, KeyboardInterrupt),
                        stopped_while="preparing images")
            return finish(args, measured, meta)
        gc.collect()  # the in-process model is no longer needed: give its memory back before the server runs
        meta["caption_ambiguous_pairs"] = ambiguous_caption_pairs(plan)
        env = {WEIGHTS_ENV: str(weights)}
        if args.server_threads:
            env["OMP_NUM_THREADS"] = str(args.server_threads)
        log_path = args.log.resolve() if args.log else scratch / "streamlit.log"
        interrupted = False
        try:
            with streamlit_server("streamlit_app.py", log_path, env=env,
                                  startup_timeout=max(1.0, min(180.0, deadline.left()))) as server:
                holder["server"] = server
                say(f"server at {server.url} (pid {server.process.pid})")
                asyncio.run(run_all(server, card, warmup, plan, args, deadline, measured))
                meta["server_alive_at_end"] = server.process.poll() is None
        except KeyboardInterrupt:
            interrupted = True
            say("interrupted: reporting what was measured")
        except (TimeoutError, RuntimeError) as exc:  # the server did not start
            say(f"server problem: {exc}")
            meta["server_problem"] = str(exc)[:2000]
        log_text = log_path.read_text(errors="replace") if log_path.exists() else ""
        meta["server_log_problems"] = log_problems(log_text)
        meta["warmup"] = measured.warmup
        meta["app_start_s"] = measured.app_start_s
        meta["server_ready_s"] = measured.server_ready_s
        meta["first_page_s"] = measured.first_page_s
        meta["deadline_reached"] = deadline.left() <= 0
        meta["interrupted"] = interrupted

    timer.cancel()
    return finish(args, measured, meta)


def finish(args: argparse.Namespace, measured: Measurements, meta: dict[str, Any]) -> int:
    """Print the report (and the JSON) and choose the exit status.

    Returns:
        0 when every planned upload gave its own correct result, 1 otherwise.
    """
    summaries, outcomes = summarize(args, measured), measured.outcomes
    stream = sys.stderr if args.json_path == "-" else sys.stdout
    print_report(summaries, outcomes, meta, stream)
    if args.json_path:
        document = {"meta": meta, "levels": [asdict(s) for s in summaries], "uploads": [asdict(o) for o in outcomes]}
        text = json.dumps(document, indent=2)
        if args.json_path == "-":
            print(text)
        else:
            Path(args.json_path).write_text(text + "\n")
    complete = bool(summaries) and len(summaries) == len(args.sessions) and all(
        s.results_ok == s.uploads_planned for s in summaries)
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
