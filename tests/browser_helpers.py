"""Helpers for the real-browser tests: a Streamlit server in a subprocess and Chromium's launch options.

The browser is Debian's ``chromium`` package (``apt-get install -y chromium``), driven by Playwright's
sync API; Playwright's own browser download is never needed.
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from PIL import Image

if TYPE_CHECKING:
    from dermlib.models import LoadedModel

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
# No network beyond loopback, no background services: the test machine has no internet and 2 cores.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_browser() -> None:
    """Skip the calling test when Chromium or Playwright is missing (never fail for that)."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright Python package is not installed")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class StreamlitServer:
    """A running ``streamlit run`` subprocess."""

    process: subprocess.Popen
    port: int
    log_path: Path
    started_at: float = 0.0  # time.perf_counter() when the process was started
    ready_at: float = 0.0  # time.perf_counter() when /_stcore/health first answered "ok"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        """Everything the server wrote so far (for failure messages)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextmanager
def streamlit_server(
    script: str | Path,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    startup_timeout: float = 180.0,
) -> Iterator[StreamlitServer]:
    """Start ``streamlit run script`` on a free loopback port, wait until healthy, stop it on exit.

    Args:
        script: The app script, relative to the repository root or absolute.
        log_path: Where the server's stdout and stderr go.
        env: Extra environment variables for the server.
        startup_timeout: Seconds to wait for ``/_stcore/health``.

    Yields:
        The running server.
    """
    port = free_port()
    full_env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", **(env or {})}
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
    ]
    with log_path.open("wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(cmd, cwd=REPO_ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    server = StreamlitServer(process, port, log_path, started)
    try:
        _wait_healthy(server, startup_timeout)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_healthy(server: StreamlitServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    health = f"{server.url}/_stcore/health"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {server.process.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(health, timeout=2) as response:
                if response.status == 200 and response.read().strip() == b"ok":
                    server.ready_at = time.perf_counter()
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"streamlit was not healthy after {timeout:.0f} s:\n{server.log()}")


# --- The Diagnose page in several live sessions: what each should show and what it does show -------------
#
# Shared by tests/test_browser_reliability.py and benchmarks/load_test.py, so that the test and the load
# benchmark judge "this session got its own result" the same way. These helpers use Playwright's async
# API: one browser can then serve many contexts (sessions) from one thread, since sync-API objects must
# not cross threads.

HEATMAP_CAPTION = re.compile(r"^(?P<name>.+) \((?P<percent>\d+)%\)$")
ORIGINAL_CAPTION = "Original"
# Streamlit re-encodes the model view as JPEG (quality 90) for the browser: a few grey levels of error.
OWN_VIEW_MAX_DIFF = 8.0


@dataclass(frozen=True, eq=False)
class ExpectedDiagnosis:
    """What the Diagnose page must show for one upload, computed in-process the way the page computes it.

    Attributes:
        label: A name for messages (for example the file name).
        probabilities: Calibrated probability of every class, keyed by display name.
        top_k: (display name, probability) of the listed classes, most probable first.
        view: The model view (resized and cropped RGB, uint8, H x W x 3) shown as "Original".
    """

    label: str
    probabilities: dict[str, float]
    top_k: tuple[tuple[str, float], ...]
    view: np.ndarray = field(repr=False)

    @property
    def captions(self) -> tuple[str, ...]:
        """The heatmap captions exactly as the page formats them."""
        return tuple(f"{name} ({p:.0%})" for name, p in self.top_k)


def expected_diagnosis(loaded: LoadedModel, data: bytes, label: str = "", top_k: int = 3) -> ExpectedDiagnosis:
    """Compute what the Diagnose page shows for ``data``: load_image, predict_proba, build_prediction.

    Args:
        loaded: The same model the app serves (same card and weights).
        data: The uploaded file's bytes.
        label: A name for messages.
        top_k: How many classes the page lists (its slider's default is 3).

    Returns:
        The expected captions' contents and the expected model view.
    """
    from dermlib.images import load_image
    from dermlib.inference import build_prediction

    image = load_image(data)
    prediction = build_prediction(loaded, loaded.predict_proba([image])[0], top_k)
    names = [c.name for c in loaded.card.classes]
    return ExpectedDiagnosis(
        label=label,
        probabilities=dict(zip(names, prediction.probabilities, strict=True)),
        top_k=tuple((s.name, s.probability) for s in prediction.top_k),
        view=np.asarray(loaded.model_view(image).convert("RGB"), dtype=np.uint8),
    )


def captions_match(observed: Sequence[str], expected: ExpectedDiagnosis, tolerance_pp: int = 1) -> bool:
    """Whether heatmap captions read on the page are this image's, allowing rounding differences.

    The server may run with another thread count than the process that computed ``expected``, so the
    last bits of a probability can differ: each percentage may be off by ``tolerance_pp`` from the
    expected rounding, and two classes may trade places only when their probabilities are that close.

    Args:
        observed: The captions in page order, e.g. ``["Melanoma (41%)", ...]``.
        expected: What this image should show.
        tolerance_pp: Allowed difference in percentage points.
    """
    if len(observed) != len(expected.top_k):
        return False
    seen: set[str] = set()
    for caption, (_, expected_p) in zip(observed, expected.top_k, strict=True):
        match = HEATMAP_CAPTION.match(caption.strip())
        if match is None or match["name"] in seen or match["name"] not in expected.probabilities:
            return False
        seen.add(match["name"])
        p = expected.probabilities[match["name"]]
        if abs(int(match["percent"]) - round(p * 100)) > tolerance_pp:
            return False
        if abs(p - expected_p) * 100 > tolerance_pp:  # a class out of place by more than a rounding tie
            return False
    return True


def view_difference(shown: np.ndarray, view: np.ndarray) -> float:
    """Mean absolute difference (grey levels, 0-255) between an image fetched from the page and a view."""
    if shown.shape != view.shape:  # Streamlit downsizes only very wide images; compare at the view's size
        shown = np.asarray(Image.fromarray(shown).resize((view.shape[1], view.shape[0]), Image.BILINEAR))
    return float(np.mean(np.abs(shown.astype(np.int16) - view.astype(np.int16))))


def isolation_problems(
    captions: Sequence[str], shown: np.ndarray, own: ExpectedDiagnosis, others: Sequence[ExpectedDiagnosis]
) -> list[str]:
    """Reasons to believe a session is not looking at its own upload's result (empty when it is).

    Args:
        captions: The heatmap captions read on the page.
        shown: The "Original" image fetched from the page (RGB uint8).
        own: What this session's upload should show.
        others: What other sessions' uploads show (a result equal to one of these is a leak).
    """
    problems = []
    if not captions_match(captions, own):
        leaked = [o.label for o in others if captions_match(captions, o)]
        problems.append(
            f"captions {list(captions)} are not {own.label}'s {list(own.captions)}"
            + (f"; they are those of {', '.join(leaked)}" if leaked else "")
        )
    own_diff = view_difference(shown, own.view)
    other_diffs = [(view_difference(shown, other.view), other.label) for other in others]
    if own_diff > OWN_VIEW_MAX_DIFF:
        message = f"the Original image differs from {own.label}'s view by {own_diff:.1f} grey levels"
        nearest = min(other_diffs, default=None)
        if nearest is not None and nearest[0] <= OWN_VIEW_MAX_DIFF:
            message += f"; it is {nearest[1]}'s ({nearest[0]:.1f})"
        problems.append(message)
        return problems
    for other_diff, label in other_diffs:
        if other_diff <= 2 * own_diff + 3.0:
            problems.append(
                f"the Original image is not clearly farther from {label}'s view ({other_diff:.1f}) "
                f"than from {own.label}'s ({own_diff:.1f})"
            )
    return problems


# Resolves with the image row of the newest result once the "Original" image and the k heatmaps after it
# all come from the current script run (not stale), are new (their media URLs were not on screen before
# this upload) and have decoded in the browser; or with an exception or error box of the current run.
_RESULT_STATE_JS = """
({previous, k}) => {
  const fresh = el => { const box = el.closest('[data-stale]'); return !box || box.dataset.stale !== 'true'; };
  for (const el of document.querySelectorAll('[data-testid=stException], [data-testid=stAlertContentError]')) {
    if (fresh(el) && !el.dataset.shownBeforeUpload) return {kind: 'error', text: el.innerText.trim()};
  }
  const items = [...document.querySelectorAll('[data-testid=stImage]')].map(el => {
    const img = el.querySelector('img');
    const caption = el.querySelector('[data-testid=stImageCaption]');
    return {
      src: img ? img.src : '',
      caption: caption ? caption.innerText.trim() : '',
      ready: !!img && img.complete && img.naturalWidth > 0 && img.getBoundingClientRect().width > 0,
      fresh: fresh(el),
    };
  });
  const first = items.findIndex(x => x.caption === 'Original');
  if (first < 0) return false;
  const row = items.slice(first, first + k + 1);
  if (row.length !== k + 1 || !row.slice(1).every(x => /\\(\\d+%\\)$/.test(x.caption))) return false;
  if (!row.every(x => x.ready && x.fresh && !previous.includes(x.src))) return false;
  return {kind: 'result', row};
}
"""

# Errors already on screen belong to the previous upload (they stay until the next run replaces them).
_MARK_ERRORS_JS = """
() => document.querySelectorAll('[data-testid=stException], [data-testid=stAlertContentError]')
        .forEach(el => { el.dataset.shownBeforeUpload = '1'; })
"""

_PAGE_STATE_JS = """
() => ({
  captions: [...document.querySelectorAll('[data-testid=stImageCaption]')].map(e => e.innerText.trim()),
  alerts: [...document.querySelectorAll(
    '[data-testid=stAlertContentError], [data-testid=stAlertContentWarning], [data-testid=stException]')]
    .map(e => e.innerText.trim().slice(0, 200)),
  stale: document.querySelectorAll('[data-stale=true]').length,
})
"""


class DiagnosisError(Exception):
    """The page showed an exception or an error box instead of a result."""


class DiagnosisTimeout(Exception):
    """No complete result for this upload appeared in time (the message describes the page)."""


@dataclass(frozen=True)
class ShownDiagnosis:
    """A result as one session's page shows it."""

    captions: tuple[str, ...]
    original_src: str
    srcs: tuple[str, ...]


async def open_diagnose_page(context: Any, url: str, timeout_ms: float) -> Any:
    """Open the app in a browser context and wait until the Diagnose page's uploader is there.

    Args:
        context: A Playwright async ``BrowserContext``.
        url: The app's URL.
        timeout_ms: How long the first page render may take.

    Returns:
        The Playwright async ``Page``.
    """
    from playwright.async_api import expect

    page = await context.new_page()
    page.set_default_timeout(timeout_ms)
    await page.goto(url, wait_until="domcontentloaded")
    await expect(page.get_by_role("heading", name="Diagnose")).to_be_visible(timeout=timeout_ms)
    await expect(page.locator("input[type=file]").first).to_be_attached(timeout=timeout_ms)
    return page


async def wait_for_diagnosis(page: Any, previous_srcs: Iterable[str], timeout_ms: float, top_k: int = 3
                             ) -> ShownDiagnosis:
    """Wait until the page shows a complete result that was not on screen before, and read it.

    Call :func:`mark_errors_as_old` before the upload (or use :func:`upload_and_wait`). After a second
    upload the previous result stays on screen (stale) while the script reruns, so "a result is visible"
    is not enough: the images must carry media URLs not in ``previous_srcs``.

    Args:
        page: A Playwright async ``Page`` on the Diagnose page.
        previous_srcs: Media URLs of images shown before this upload.
        timeout_ms: How long to wait.
        top_k: How many heatmaps the page lists.

    Raises:
        DiagnosisError: The page shows an exception or an error box.
        DiagnosisTimeout: No such result appeared in time.
    """
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    try:
        handle = await page.wait_for_function(
            _RESULT_STATE_JS, arg={"previous": list(previous_srcs), "k": top_k}, polling=100, timeout=timeout_ms)
    except PlaywrightTimeout:
        try:
            state = await page.evaluate(_PAGE_STATE_JS)
        except Exception as exc:  # the page itself may be gone; the timeout is what matters
            state = f"(page state unreadable: {exc})"
        raise DiagnosisTimeout(f"no new result after {timeout_ms / 1000:.1f} s; page: {state}") from None
    state = await handle.json_value()
    if state["kind"] == "error":
        raise DiagnosisError(state["text"][:500])
    row = state["row"]
    return ShownDiagnosis(tuple(x["caption"] for x in row[1:]), row[0]["src"], tuple(x["src"] for x in row))


async def mark_errors_as_old(page: Any) -> None:
    """Make :func:`wait_for_diagnosis` ignore the error boxes now on screen; call it before an upload."""
    await page.evaluate(_MARK_ERRORS_JS)


async def upload_and_wait(page: Any, files: Any, previous_srcs: Iterable[str], timeout_ms: float, top_k: int = 3
                          ) -> tuple[ShownDiagnosis, float]:
    """Upload on Diagnose and wait for this upload's own result.

    Args:
        page: A Playwright async ``Page`` on the Diagnose page.
        files: What ``set_input_files`` takes: a path, or a dict with name, mimeType and buffer.
        previous_srcs: Media URLs of images shown before this upload.
        timeout_ms: How long to wait for the result.
        top_k: How many heatmaps the page lists.

    Returns:
        The result, and the seconds from ``set_input_files`` until it had rendered.

    Raises:
        DiagnosisError: The page shows an exception or an error box.
        DiagnosisTimeout: No such result appeared in time.
    """
    await mark_errors_as_old(page)
    started = time.perf_counter()
    await page.locator("input[type=file]").first.set_input_files(files)
    shown = await wait_for_diagnosis(page, previous_srcs, timeout_ms, top_k)
    return shown, time.perf_counter() - started


async def fetch_image(page: Any, src: str, attempts: int = 3) -> np.ndarray:
    """Download an image the page shows (with the session's cookies) as RGB uint8.

    A reset keep-alive connection is retried, as a browser retries an idempotent GET; the page itself had
    already rendered the image.
    """
    import asyncio

    for attempt in range(attempts):
        try:
            response = await page.request.get(src)
            break
        except Exception as exc:  # playwright's Error; only connection resets are worth another try
            if "ECONNRESET" not in str(exc) or attempt == attempts - 1:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))
    if not response.ok:
        raise DiagnosisError(f"GET {src} answered {response.status}")
    with Image.open(io.BytesIO(await response.body())) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)
