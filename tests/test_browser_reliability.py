"""Diagnose in a real browser under stress: concurrent sessions, privacy of uploads, hostile uploads.

Like tests/test_browser.py these drive ``streamlit run streamlit_app.py`` with headless Chromium, on a
tiny random-weight model. Each upload's expected result is computed in this process with the same
library calls as the page (``load_image``, ``predict_proba``, ``build_prediction(top_k=3)``); the model is
written with a low temperature so that different images get clearly different captions.

The Playwright async API is used so that one browser drives several contexts (sessions) at once from one
thread: the uploads of all sessions are in flight together, which is what matters to the server.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from dermlib.config import WEIGHTS_ENV
from dermlib.models import LoadedModel, load_model
from dermlib.testing import PROJECT_SKIP, file_snapshot, image_bytes, synthetic_skin_image, write_tiny_model
from tests.browser_helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    REPO_ROOT,
    DiagnosisError,
    ExpectedDiagnosis,
    StreamlitServer,
    captions_match,
    expected_diagnosis,
    fetch_image,
    isolation_problems,
    mark_errors_as_old,
    open_diagnose_page,
    require_browser,
    streamlit_server,
    upload_and_wait,
    view_difference,
    wait_for_diagnosis,
)

pytestmark = pytest.mark.browser

# Generous for a 2-core machine that is busy with other work; a quiet machine needs a few seconds.
RENDER_TIMEOUT_MS = 60_000
VIEWPORT = {"width": 1280, "height": 1000}
# Different images must be told apart by the pixel check (JPEG re-encoding alone costs ~1 grey level).
MIN_VIEW_SEPARATION = 10.0


@dataclass(frozen=True)
class Photo:
    """An upload: its file name, bytes and what the page must show for it."""

    name: str
    data: bytes
    expected: ExpectedDiagnosis

    def payload(self, name: str | None = None) -> dict:
        """The file as Playwright's ``set_input_files`` takes it from memory."""
        return {"name": name or self.name, "mimeType": "image/png", "buffer": self.data}


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A weights folder with one tiny 4-class model whose probabilities differ clearly between images."""
    root = tmp_path_factory.mktemp("reliability-weights")
    # At temperature 1 a random network gives every class ~25% for every image; 0.01 spreads them out.
    write_tiny_model(root / "tiny-test", model_id="tiny-test", num_classes=4, temperature=0.01)
    return root


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Compute expectations single-threaded: on a busy 2-core machine more threads make it 10-50x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def served_model(tiny_weights: Path) -> LoadedModel:
    """The same model the app serves, loaded here to compute the expected results."""
    return load_model(tiny_weights / "tiny-test", device="cpu")


@pytest.fixture(scope="module")
def app(tiny_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StreamlitServer]:
    """One app server shared by the isolation and hostile-upload tests."""
    require_browser()
    log = tmp_path_factory.mktemp("reliability-app") / "streamlit.log"
    env = {WEIGHTS_ENV: str(tiny_weights), "OMP_NUM_THREADS": "1"}
    with streamlit_server("streamlit_app.py", log, env=env) as server:
        yield server


def distinct_photos(loaded: LoadedModel, count: int, first_seed: int) -> list[Photo]:
    """``count`` synthetic photos no two of which could be mistaken for each other, by captions or pixels."""
    chosen: list[Photo] = []
    for seed in range(first_seed, first_seed + 300):
        name = f"lesion-{seed}.png"
        data = image_bytes(synthetic_skin_image(seed=seed, size=(320, 240)))
        expected = expected_diagnosis(loaded, data, label=name)
        if all(
            not captions_match(expected.captions, p.expected)
            and not captions_match(p.expected.captions, expected)
            and view_difference(expected.view, p.expected.view) >= MIN_VIEW_SEPARATION
            for p in chosen
        ):
            chosen.append(Photo(name, data, expected))
            if len(chosen) == count:
                return chosen
    raise AssertionError(f"found only {len(chosen)} distinguishable synthetic photos")


async def _launch(pw: Any) -> Any:
    """Debian's Chromium through Playwright's async API (Playwright's own browsers are never downloaded)."""
    return await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


# --- a. Session isolation ----------------------------------------------------------------------------------


def test_concurrent_sessions_each_see_only_their_own_result(app: StreamlitServer, served_model: LoadedModel) -> None:
    photos = distinct_photos(served_model, 6, first_seed=200)
    problems = asyncio.run(_three_sessions_two_rounds(app.url, photos))
    assert not problems, "\n".join(problems)
    assert app.process.poll() is None, app.log()
    assert "Traceback" not in app.log(), app.log()


async def _three_sessions_two_rounds(url: str, photos: list[Photo]) -> list[str]:
    from playwright.async_api import async_playwright

    loop = asyncio.get_running_loop()
    problems: list[str] = []
    async with async_playwright() as pw:
        browser = await _launch(pw)
        try:
            contexts = [await browser.new_context(viewport=VIEWPORT) for _ in range(3)]
            pages = await asyncio.gather(*(open_diagnose_page(c, url, RENDER_TIMEOUT_MS) for c in contexts))
            previous: list[set[str]] = [set() for _ in pages]
            for round_no, batch in enumerate((photos[:3], photos[3:])):
                spans: dict[int, tuple[float, float]] = {}

                async def upload(session: int, photo: Photo, spans=spans):
                    page = pages[session]
                    await page.locator("input[type=file]").first.set_input_files(photo.payload())
                    handed_over = loop.time()
                    shown = await wait_for_diagnosis(page, previous[session], RENDER_TIMEOUT_MS)
                    spans[session] = (handed_over, loop.time())
                    return shown, await fetch_image(page, shown.original_src)

                # Pages are readied first so that gather() hands the three uploads over together: the server
                # works on them concurrently.
                await asyncio.gather(*(mark_errors_as_old(pages[s]) for s in range(len(batch))))
                results = await asyncio.gather(*(upload(s, p) for s, p in enumerate(batch)))
                # Every upload must have been in flight while another one was, or the test proved nothing.
                lonely = [s for s, (start, end) in spans.items()
                          if not any(o != s and o_start < end and start < o_end
                                     for o, (o_start, o_end) in spans.items())]
                assert not lonely, f"uploads of sessions {lonely} overlapped no other; the test proved nothing"
                for session, ((shown, original), photo) in enumerate(zip(results, batch, strict=True)):
                    # Everyone else's photos, and this session's own previous one, must not be what it sees.
                    others = [p.expected for p in photos if p is not photo]
                    for problem in isolation_problems(shown.captions, original, photo.expected, others):
                        problems.append(f"round {round_no + 1}, session {session + 1}: {problem}")
                    previous[session].update(shown.srcs)
        finally:
            await browser.close()
    return problems


# --- b. Privacy: the upload leaves no trace on disk or in the log -------------------------------------------

# Directories of the repository that legitimately change while tests run.
XDG_DIRS = ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR")
OPEN_LOG_ENV = "DERMLENS_TEST_OPEN_LOG"
# Imported by the server's Python at start-up (via PYTHONPATH): logs the path and flags of every file
# opened for writing, never contents. An unlinked temporary file is invisible to a directory scan but
# not to this log.
AUDIT_HOOK = f'''
"""Test instrument (tests/test_browser_reliability.py): log files opened for writing."""
import json, os, sys
_LOG = os.environ.get("{OPEN_LOG_ENV}")
if _LOG:
    _FD = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    _WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def _audit(event, args):
        if event != "open" or not args or isinstance(args[0], int):
            return
        try:
            mode = args[1] if len(args) > 1 else None
            flags = args[2] if len(args) > 2 else None
            if (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                    isinstance(flags, int) and flags & _WRITING):
                line = json.dumps({{"path": os.fsdecode(args[0]), "mode": mode, "flags": flags}})
                os.write(_FD, line.encode() + b"\\n")
        except Exception:
            pass

    sys.addaudithook(_audit)
'''


@dataclass
class PrivacyRun:
    """What one marked upload left behind, gathered after the server stopped."""

    result_ok: bool
    captions: tuple[str, ...]
    upload_bytes: int
    # Kept out of repr: an assertion message must not copy the marker into pytest's output.
    needles: dict[str, bytes] = field(repr=False)
    repo_before: dict[str, tuple[int, int]] = field(repr=False)
    tmp_before: dict[str, tuple[int, int]] = field(repr=False)
    server_dirs: list[Path] = field(repr=False)
    skip_paths: frozenset[str] = field(repr=False)
    log: str = field(repr=False)
    writes_during_upload: list[dict] = field(default_factory=list)


def _files_containing(paths: list[str], needles: dict[str, bytes]) -> list[str]:
    """Each file whose content holds any needle, with the needles' names (never the needles themselves)."""
    overlap = max(len(n) for n in needles.values()) - 1
    hits = []
    for path in paths:
        found: set[str] = set()
        try:
            with open(path, "rb") as fh:
                tail = b""
                while chunk := fh.read(1 << 20):
                    window = tail + chunk
                    found.update(kind for kind, needle in needles.items() if needle in window)
                    tail = window[-overlap:]
        except OSError:  # vanished or unreadable: another process's churn
            continue
        if found:
            hits.append(f"{path} ({', '.join(sorted(found))})")
    return hits


def _traces(run: PrivacyRun) -> tuple[list[str], list[str]]:
    """New or changed repository files, and files the server could have written that hold a needle."""
    repo_after = file_snapshot(REPO_ROOT, PROJECT_SKIP)
    repo_changes = sorted(p for p, sig in repo_after.items() if run.repo_before.get(p) != sig)
    tmp_after = file_snapshot(Path("/tmp"), skip_paths=run.skip_paths)
    candidates = {p for p, sig in tmp_after.items() if run.tmp_before.get(p) != sig}
    for folder in run.server_dirs:  # the server's HOME, TMPDIR and XDG dirs: every file, changed or not
        candidates.update(file_snapshot(folder))
    return repo_changes, _files_containing(sorted(candidates), run.needles)


def _marked_png(token: str) -> tuple[bytes, bytes]:
    """A photo carrying the token (tEXt chunk) and a random-noise region; returns it and a decoded-pixel slice."""
    pixels = np.asarray(synthetic_skin_image(seed=11, size=(960, 720))).copy()
    pixels[80:640, 100:860] = np.random.default_rng(int(token[:8], 16)).integers(0, 256, (560, 760, 3), np.uint8)
    info = PngInfo()
    info.add_text("Comment", f"DermLens privacy marker {token}")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", pnginfo=info)
    # Raw decoded RGB from inside the noise: found if the server stores the decoded image (a pickle, npy...).
    return buffer.getvalue(), pixels[360, 300:322].tobytes()[:64]


@pytest.fixture(scope="module")
def privacy_run(tiny_weights: Path, served_model: LoadedModel, tmp_path_factory: pytest.TempPathFactory
                ) -> PrivacyRun:
    """Upload one marked photo to a server with fresh HOME, TMPDIR and XDG dirs; gather what it left behind."""
    require_browser()
    base = tmp_path_factory.mktemp("privacy")
    evidence, profile = base / "evidence", base / "browser-profile"
    hook = evidence / "hook"
    hook.mkdir(parents=True)
    (hook / "sitecustomize.py").write_text(AUDIT_HOOK)
    open_log = evidence / "opens.jsonl"
    home, tmpdir = base / "home", base / "tmp"
    xdg = {name: base / name.lower() for name in XDG_DIRS}
    for folder in (home, tmpdir, *xdg.values()):
        folder.mkdir(mode=0o700)

    token = secrets.token_hex(16)
    name = f"lesion-{token}.png"
    data, pixel_slice = _marked_png(token)
    # Above Starlette's 1 MiB in-memory limit for multipart parts, so the spooling path is exercised.
    assert len(data) > 1.2 * 2**20
    middle = len(data) // 2
    needles = {"token": token.encode(), "file name": name.encode(), "upload bytes": data[middle:middle + 64],
               "decoded pixels": pixel_slice}
    expected = expected_diagnosis(served_model, data, label=name)

    # The evidence (server log, open log) and the browser's own profile are not the server's doing.
    skip_paths = frozenset({str(evidence), str(profile)})
    repo_before = file_snapshot(REPO_ROOT, PROJECT_SKIP)
    tmp_before = file_snapshot(Path("/tmp"), skip_paths=skip_paths)
    env = {
        WEIGHTS_ENV: str(tiny_weights), "OMP_NUM_THREADS": "1",
        "HOME": str(home), "TMPDIR": str(tmpdir), "TMP": str(tmpdir), "TEMP": str(tmpdir),
        **{k: str(v) for k, v in xdg.items()},
        "PYTHONPATH": os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")])),
        OPEN_LOG_ENV: str(open_log),
    }
    with streamlit_server("streamlit_app.py", evidence / "streamlit.log", env=env) as server:
        server_dirs = [home, tmpdir, *xdg.values()]
        captions, log_offset = asyncio.run(
            _upload_marked_photo(server.url, profile, name, data, open_log, server_dirs))
    # Read everything after the server stopped: whatever it writes at shutdown counts too.
    watched = [str(p) for p in (*server_dirs, Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"), REPO_ROOT)]
    writes = []
    for line in open_log.read_bytes()[log_offset:].decode(errors="replace").splitlines():
        entry = json.loads(line)
        path = entry["path"]
        if "__pycache__" not in path and any(path == w or path.startswith(w + os.sep) for w in watched):
            # O_TMPFILE: an unnamed file in that directory, which no directory listing will ever show.
            entry["unnamed_tmpfile"] = bool(isinstance(entry["flags"], int) and entry["flags"] & os.O_TMPFILE)
            writes.append(entry)
    return PrivacyRun(
        result_ok=captions_match(captions, expected), captions=captions, upload_bytes=len(data), needles=needles,
        repo_before=repo_before, tmp_before=tmp_before, server_dirs=server_dirs, skip_paths=skip_paths,
        log=(evidence / "streamlit.log").read_text(errors="replace"), writes_during_upload=writes,
    )


async def _wait_for_warm_up(server_dirs: list[Path], timeout_s: float = 120.0) -> None:
    """Wait until the server's warm-up (dermlib.ui.warmup) has imported matplotlib, which writes its font
    cache in a fresh HOME: that file is the warm-up's, written before any photo exists, and the watch for
    writes during the upload starts only after it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(next(d.rglob("fontlist-*.json"), None) for d in server_dirs):
            await asyncio.sleep(0.5)  # let matplotlib finish writing it
            return
        await asyncio.sleep(0.2)
    raise AssertionError("the server's background warm-up did not finish in time")


async def _upload_marked_photo(url: str, profile: Path, name: str, data: bytes, open_log: Path,
                               server_dirs: list[Path]) -> tuple[tuple[str, ...], int]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        # A persistent profile in a known folder, so the browser's own files can be told from the server's.
        context = await pw.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, viewport=VIEWPORT)
        try:
            page = await open_diagnose_page(context, url, RENDER_TIMEOUT_MS)
            await _wait_for_warm_up(server_dirs)
            offset = open_log.stat().st_size if open_log.exists() else 0
            # From memory: the photo never exists as a file on this machine, so any copy is the server's.
            shown, _ = await upload_and_wait(
                page, {"name": name, "mimeType": "image/png", "buffer": data}, (), RENDER_TIMEOUT_MS)
        finally:
            await context.close()
    return shown.captions, offset


def test_upload_leaves_no_trace_on_disk_or_in_the_log(privacy_run: PrivacyRun) -> None:
    assert privacy_run.result_ok, f"the marked upload was not classified as expected: {privacy_run.captions}"
    repo_changes, hits = _traces(privacy_run)
    assert not repo_changes, f"files in the repository were created or changed: {repo_changes}"
    assert not hits, f"files hold the upload's marker, bytes or pixels: {hits}"
    in_log = [kind for kind in ("token", "file name") if privacy_run.needles[kind].decode() in privacy_run.log]
    assert not in_log, f"the server's output holds the upload's {' and '.join(in_log)}"

    # The search itself can fail: a copy of the upload's bytes planted in the server's TMPDIR is found.
    canary = privacy_run.server_dirs[1] / "canary.bin"
    canary.write_bytes(b"before" + privacy_run.needles["upload bytes"] + b"after")
    try:
        _, hits = _traces(privacy_run)
    finally:
        canary.unlink()
    assert any(h.startswith(str(canary)) for h in hits), hits


def test_upload_is_never_written_to_a_temp_file(privacy_run: PrivacyRun) -> None:
    if not privacy_run.result_ok:
        pytest.fail(f"the marked upload was not classified as expected: {privacy_run.captions}")
    assert privacy_run.upload_bytes > 2**20
    assert not privacy_run.writes_during_upload, (
        f"the server opened files for writing while it handled the upload: {privacy_run.writes_during_upload}")


# --- c. Hostile uploads --------------------------------------------------------------------------------------


def test_hostile_uploads_are_refused_or_handled_as_photos(app: StreamlitServer, served_model: LoadedModel) -> None:
    first, second = distinct_photos(served_model, 2, first_seed=400)
    evil_name = "../../evil name;$(x).png"
    asyncio.run(_hostile_uploads(app.url, first, second, evil_name))
    for folder in (Path.cwd(), REPO_ROOT, REPO_ROOT.parent, REPO_ROOT.parent.parent, Path(tempfile.gettempdir())):
        assert not (folder / "evil name;$(x).png").exists(), f"an upload was written to {folder}"
    assert app.process.poll() is None, app.log()
    assert "Traceback" not in app.log(), app.log()


async def _hostile_uploads(url: str, first: Photo, second: Photo, evil_name: str) -> None:
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as pw:
        browser = await _launch(pw)
        try:
            page = await open_diagnose_page(await browser.new_context(viewport=VIEWPORT), url, RENDER_TIMEOUT_MS)
            upload = page.locator("input[type=file]").first
            images = page.locator("[data-testid=stImage]")
            charts = page.locator("[data-testid=stPlotlyChart]")

            # 30 MB, over the 25 MB limit of .streamlit/config.toml: refused, visibly, and nothing is shown.
            huge = b"\x89PNG\r\n\x1a\n" + bytes(30 * 1024 * 1024)
            await upload.set_input_files({"name": "huge-photo.png", "mimeType": "image/png", "buffer": huge})
            await expect(page.get_by_text(re.compile(r"File must be [\d.]+ ?MB or smaller"))).to_be_visible(
                timeout=RENDER_TIMEOUT_MS)
            await expect(images).to_have_count(0)
            await expect(charts).to_have_count(0)

            # The page still works: a good photo afterwards gives its charts and its own heatmaps.
            shown, _ = await upload_and_wait(page, first.payload(), (), RENDER_TIMEOUT_MS)
            assert captions_match(shown.captions, first.expected), (shown.captions, first.expected.captions)
            await expect(charts).to_have_count(2, timeout=RENDER_TIMEOUT_MS)
            previous = set(shown.srcs)

            # Not an image, with an image's name and type: the page's own message, and no result.
            junk = {"name": "photo.png", "mimeType": "image/png", "buffer": os.urandom(4096)}
            with pytest.raises(DiagnosisError, match="cannot be used"):
                await upload_and_wait(page, junk, previous, RENDER_TIMEOUT_MS)
            await expect(page.get_by_text("This file cannot be used")).to_be_visible()
            await expect(images).to_have_count(0)

            # A name full of path and shell characters is just a name: the photo is classified as usual.
            shown, _ = await upload_and_wait(page, second.payload(evil_name), previous, RENDER_TIMEOUT_MS)
            original = await fetch_image(page, shown.original_src)
            problems = isolation_problems(shown.captions, original, second.expected, [first.expected])
            assert not problems, problems
            await expect(charts).to_have_count(2, timeout=RENDER_TIMEOUT_MS)
            # The chip shows the name as given (shortened on screen; the full name is its tooltip title).
            await expect(page.get_by_title(evil_name, exact=True)).to_be_visible()
            await expect(page.locator("[data-testid=stException]")).to_have_count(0)
        finally:
            await browser.close()
