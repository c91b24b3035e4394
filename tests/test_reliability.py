"""Reliability and privacy: hostile uploads in one session, bounded memory, nothing written or logged.

The real-browser counterparts (concurrent sessions, a real upload against a real server) are in
``tests/test_browser_reliability.py``; the load figures come from ``benchmarks/load_test.py``.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import tomllib
import weakref
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from dermlib.explain import cams_for_tensor, overlay_heatmap
from dermlib.images import MAX_BYTES, load_image
from dermlib.inference import build_prediction
from dermlib.models import LoadedModel
from dermlib.testing import (
    PROJECT_SKIP,
    file_snapshot,
    hostile_corpus,
    image_bytes,
    synthetic_skin_image,
    write_tiny_model,
    write_tiny_scope,
)
from dermlib.ui.session import MAX_ENTRIES

ROOT = Path(__file__).resolve().parents[1]
DIAGNOSE = str(ROOT / "app_pages" / "diagnose.py")


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    st.cache_data.clear()
    st.cache_resource.clear()


def test_hostile_corpus_in_one_session(tiny_weights_env: Path) -> None:
    """Every hostile upload, one after another in the same session: a refusal or a result, never a crash."""
    at = AppTest.from_file(DIAGNOSE).run(timeout=60)
    cases = hostile_corpus()
    assert len(cases) == 20
    for case in cases:
        at.file_uploader(key="diagnose_upload").upload(case.name, case.data, "application/octet-stream")
        at.run(timeout=120)
        assert not at.exception, case.name
        errors = " ".join(e.value for e in at.error)
        if case.accepted:
            assert not errors, (case.name, errors)
            assert len(at.get("plotly_chart")) == 2, case.name
            assert len(at.get("image")) == 1 + 1 + 3 + 1, case.name  # model view, photo, top-3 maps, colour bar
        else:
            assert "cannot be used" in errors and case.phrase in errors, (case.name, errors)
            assert not at.get("plotly_chart"), case.name


def test_exif_orientations_reach_the_model_upright(tiny_loaded: LoadedModel) -> None:
    """The eight EXIF cases of the corpus give the model the same upright picture (up to JPEG noise)."""
    views = [np.asarray(tiny_loaded.model_view(load_image(c.data)), dtype=np.int16)
             for c in hostile_corpus() if c.name.startswith("orientation-")]
    assert len(views) == 8
    for view in views[1:]:
        assert np.abs(view - views[0]).mean() < 6


def test_session_keeps_only_its_recent_results(tiny_weights_env: Path) -> None:
    at = AppTest.from_file(DIAGNOSE).run(timeout=60)
    for seed in range(max(MAX_ENTRIES.values()) + 3):
        at.file_uploader(key="diagnose_upload").upload(f"p{seed}.png", image_bytes(synthetic_skin_image(seed)),
                                                       "image/png")
        at.run(timeout=120)
        assert not at.exception
    for kind in ("image", "prediction", "cams"):
        assert len(at.session_state[f"_dermlens_memo_{kind}"]) == min(MAX_ENTRIES[kind], max(MAX_ENTRIES.values()) + 3)
    # Nothing derived from an upload sits in a process-wide cache that another session could reach.
    from dermlib.ui import common
    assert not hasattr(common.decode_image, "clear") and not hasattr(common.cached_prediction, "clear")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads RSS from /proc (Linux)")
def test_500_predictions_with_heatmaps_do_not_grow_memory(tmp_path: Path) -> None:
    """The Diagnose page's work, scope check included, 500 times on different uploads: RSS grows by less than
    50 MB after warm-up."""
    from dermlib.models import load_model
    from dermlib.scope.checker import check_images

    loaded = load_model(write_tiny_scope(write_tiny_model(tmp_path / "scoped")), device="cpu")
    uploads = [image_bytes(synthetic_skin_image(seed, size=(320, 240)), "JPEG", quality=85) for seed in range(25)]

    def one(i: int) -> None:
        image = load_image(uploads[i % len(uploads)])
        scope = check_images(loaded.card, [image])[0]
        assert scope.code != "unchecked"
        prediction = build_prediction(loaded, loaded.predict_proba([image])[0], 3, scope=scope)
        indices = [loaded.card.class_ids.index(s.label) for s in prediction.top_k]
        maps = cams_for_tensor(loaded, loaded.preprocess([image]), indices, "gradcam")
        view = loaded.model_view(image)
        for cam in maps:
            overlay_heatmap(view, cam, 0.45).tobytes()

    for i in range(50):
        one(i)
    before = _rss_bytes()
    for i in range(500):
        one(i)
    growth_mb = (_rss_bytes() - before) / 2**20
    assert growth_mb < 50, f"RSS grew by {growth_mb:.1f} MB over 500 predictions"
    assert not loaded.target_layers()[0]._forward_hooks  # no hook left behind by any of them


def test_uploads_are_never_written_to_disk_or_logged(tiny_weights_env: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    write_tiny_scope(tiny_weights_env / "tiny-test")  # the scope check runs on the upload too
    own_tmp = tmp_path / "tmp"
    own_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(own_tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(own_tmp))
    token = "zq" + os.urandom(6).hex()
    image = synthetic_skin_image(21, size=(300, 220))
    # A random-noise band makes the bytes unique; the token rides along in a PNG text chunk.
    pixels = np.asarray(image).copy()
    pixels[:8] = np.random.default_rng(int(token[2:10], 16)).integers(0, 256, pixels[:8].shape, dtype=np.uint8)
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", token)
    data = image_bytes(Image.fromarray(pixels), "PNG", pnginfo=info)
    name = f"patient-{token}.png"

    repo_before = file_snapshot(ROOT, PROJECT_SKIP)
    caplog.set_level(logging.DEBUG)
    at = AppTest.from_file(DIAGNOSE).run(timeout=60)
    at.file_uploader(key="diagnose_upload").upload(name, data, "image/png")
    at.run(timeout=120)
    assert not at.exception and len(at.get("plotly_chart")) == 2

    assert list(own_tmp.rglob("*")) == []
    changed = {p for p, v in file_snapshot(ROOT, PROJECT_SKIP).items() if repo_before.get(p) != v}
    assert not changed, changed
    assert all(token not in r.getMessage() and name not in r.getMessage() for r in caplog.records)
    needle = data[len(data) // 2 : len(data) // 2 + 64]
    for path in [*own_tmp.rglob("*"), *Path(tempfile.gettempdir()).rglob("*")]:
        if path.is_file() and path.stat().st_size < 50 * 2**20:
            content = path.read_bytes()
            assert needle not in content and token.encode() not in content, path


def test_streamlit_config_limits_uploads_and_tracks_nothing() -> None:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] * 2**20 == MAX_BYTES  # Streamlit and dermlib refuse alike
    assert config["server"]["enableXsrfProtection"] is True
    assert config["browser"]["gatherUsageStats"] is False
    assert config["client"]["showErrorDetails"] == "none"  # no tracebacks shown to the public


def test_no_checkpoint_read_can_unpickle_code() -> None:
    """Every torch.load in the project passes weights_only=True; nothing imports pickle or calls np.load
    with allow_pickle. (Loading itself is tested in test_models: a pickle posing as safetensors is refused.)"""
    import ast

    offenders = []
    for path in [*ROOT.joinpath("dermlib").rglob("*.py"), *ROOT.joinpath("app_pages").glob("*.py"),
                 ROOT / "streamlit_app.py", *ROOT.joinpath("benchmarks").glob("*.py")]:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                kwargs = {k.arg: ast.unparse(k.value) for k in node.keywords}
                if name.endswith("torch.load") and kwargs.get("weights_only") != "True":
                    offenders.append(f"{path.name}:{node.lineno} {name} without weights_only=True")
                if name.endswith("np.load") and kwargs.get("allow_pickle") == "True":
                    offenders.append(f"{path.name}:{node.lineno} np.load(allow_pickle=True)")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                if any(n in ("pickle", "cPickle", "dill", "joblib") for n in names if n):
                    offenders.append(f"{path.name}:{node.lineno} imports a pickle library")
    assert not offenders, offenders


def test_every_streamlit_cache_is_bounded() -> None:
    """A process-wide cache without max_entries grows with every distinct input a visitor tries (each dataset,
    sample and projection of the Dataset Explorer), so every st.cache_data / st.cache_resource names one."""
    import ast

    caches, offenders = 0, []
    for path in [*ROOT.joinpath("dermlib").rglob("*.py"), *ROOT.joinpath("app_pages").glob("*.py"),
                 ROOT / "streamlit_app.py"]:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.FunctionDef):
                continue
            for decorator in node.decorator_list:
                call = decorator if isinstance(decorator, ast.Call) else None
                name = ast.unparse(call.func if call else decorator)
                if name.endswith(("cache_data", "cache_resource")):
                    caches += 1
                    limit = next((k.value for k in (call.keywords if call else []) if k.arg == "max_entries"), None)
                    if not (isinstance(limit, ast.Constant) and isinstance(limit.value, int) and limit.value > 0):
                        offenders.append(f"{path.name}:{node.lineno} {node.name}")
    assert caches >= 10, caches  # the scan found the app's caches
    assert not offenders, offenders


@pytest.mark.parametrize("slots", [1, 2])
def test_inference_slots_bound_concurrent_model_work(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                     slots: int) -> None:
    import threading
    import time

    from dermlib.models import load_model
    from dermlib.models.loading import INFERENCE_SLOTS_ENV

    monkeypatch.setenv(INFERENCE_SLOTS_ENV, str(slots))
    monkeypatch.setenv("DERMLENS_PREDICT_BACKEND", "torch")  # the test counts passes through torch's forward
    loaded = load_model(tiny_model_dir, device="cpu")
    real = loaded.model.forward
    state = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def forward(*args, **kwargs):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.02)  # long enough for the other threads to pile up
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                state["now"] -= 1

    loaded.model.forward = forward
    image = synthetic_skin_image(0)
    expected = loaded.predict_proba([image])
    results: list[np.ndarray] = []

    def work() -> None:
        # Nested use in one thread (prediction inside a fallback-guarded block) must not deadlock.
        results.append(loaded.run_with_fallback(lambda: loaded.predict_proba([image])))

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 6 and all(np.allclose(r, expected) for r in results)
    assert state["peak"] == slots


def test_web_server_keeps_a_large_upload_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Starlette spools file parts over 1 MiB to a temp file; keep_uploads_in_memory stops that."""
    import asyncio

    from starlette.formparsers import MultiPartParser
    from starlette.requests import Request

    from dermlib.ui.privacy import keep_uploads_in_memory

    monkeypatch.setattr(MultiPartParser, "spool_max_size", 1024 * 1024)  # Starlette's default
    photo = os.urandom(3 * 2**20)
    boundary = "dermlensboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode() + photo + f"\r\n--{boundary}--\r\n".encode()

    def parse() -> bool:
        async def receive() -> dict:
            return {"type": "http.request", "body": body, "more_body": False}

        scope = {"type": "http", "method": "POST", "path": "/", "query_string": b"",
                 "headers": [(b"content-type", f"multipart/form-data; boundary={boundary}".encode())]}

        async def run() -> bool:
            form = await Request(scope, receive).form()
            upload = form["file"]
            try:
                assert await upload.read() == photo
                return bool(upload.file._rolled)  # True: the part went to a file on disk
            finally:
                await form.close()

        return asyncio.run(run())

    assert parse() is True  # the problem is real with Starlette's default
    assert keep_uploads_in_memory() is True
    assert MultiPartParser.spool_max_size > MAX_BYTES
    assert parse() is False


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@pytest.mark.skipif(not Path("/proc/self/status").is_file() or sys.platform != "linux", reason="glibc/Linux only")
def test_release_freed_memory_returns_free_heap_pages() -> None:
    from dermlib.runtime.memory import release_freed_memory

    # 200 MB in 100 KB blocks (below glibc's mmap threshold: they come from the heap), the last one kept so
    # that the heap's top cannot shrink on its own; freeing the rest leaves free pages inside the heap.
    blocks = [bytearray(b"x" * 100_000) for _ in range(2000)]
    keep = blocks[-1]
    del blocks
    before = _rss_mb()
    release_freed_memory()
    after = _rss_mb()
    assert keep[0] == ord("x")
    assert before - after > 100, (before, after)


_WITHOUT_TRITON = """
import io, sys
from dermlib.runtime.memory import keep_triton_out
assert keep_triton_out() is True
assert keep_triton_out() is True  # idempotent before torch
import torch, timm
net = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=3).eval()
x = torch.rand(1, 3, 64, 64, requires_grad=True)
net(x)[0, 1].backward()  # the heatmaps' backward pass
buffer = io.BytesIO()
torch.onnx.export(net, (torch.rand(1, 3, 64, 64),), buffer, input_names=["x"], dynamo=False)
print("triton", sys.modules.get("triton", "absent"), "grad", float(x.grad.abs().sum()) > 0,
      "onnx", len(buffer.getvalue()) > 10000)
"""


def _last_line_of(code: str) -> str:
    """The last line a fresh Python process running ``code`` in the repository prints (Triton not allowed)."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "DERMLENS_ALLOW_TRITON"}
    run = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout.strip().splitlines()[-1]


def test_keep_triton_out_leaves_torch_working_without_it() -> None:
    """torch imports Triton (96 MB of native code mapped) unless it is kept out; the app's forward, backward and ONNX
    export all work without it."""
    assert _last_line_of(_WITHOUT_TRITON) == "triton None grad True onnx True"


def test_keep_triton_out_does_nothing_once_triton_is_in_or_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    from dermlib.runtime import memory

    monkeypatch.setitem(sys.modules, "triton", object())  # already imported: too late to keep it out
    assert memory.keep_triton_out() is False
    monkeypatch.delitem(sys.modules, "triton")
    monkeypatch.setenv(memory.TRITON_ENV, "1")
    assert memory.keep_triton_out() is False
    assert "triton" not in sys.modules


def test_the_app_keeps_triton_out_before_torch_is_imported() -> None:
    """streamlit_app.py, run as the server runs it, leaves torch without Triton for every page."""
    code = ("import sys\nfrom streamlit.testing.v1 import AppTest\n"
            "AppTest.from_file('streamlit_app.py', default_timeout=120).run()\n"
            "import torch\nprint('triton', sys.modules.get('triton', 'absent'))")
    assert _last_line_of(code) == "triton None"


def test_freeze_long_lived_moves_module_state_out_of_the_collectors_way(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc
    import types

    from dermlib.runtime import memory

    monkeypatch.delenv(memory.FREEZE_ENV, raising=False)
    monkeypatch.setattr(memory, "_modules_when_frozen", 0)
    try:
        assert memory.freeze_long_lived() is True
        frozen = gc.get_freeze_count()
        assert frozen > 1000  # every module's objects, not a handful
        assert memory.freeze_long_lived() is False  # nothing imported since: no second collection
        monkeypatch.setitem(sys.modules, "dermlens_test_new_module", types.ModuleType("dermlens_test_new_module"))
        assert memory.freeze_long_lived() is True  # a new import: it freezes again
        monkeypatch.setenv(memory.FREEZE_ENV, "0")
        assert memory.freeze_long_lived(force=True) is False
        # Garbage made after the freeze is still collected: a cycle dies at the next collection.
        class Node:
            pass

        node = Node()
        node.me = node
        marker = weakref.ref(node)
        del node
        gc.collect()
        assert marker() is None
    finally:
        gc.unfreeze()  # the rest of the test session collects as usual


def test_page_end_freeze_waits_for_the_warm_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """While the warm-up imports, a script run's end does not collect (the first page is not held up);
    once it is done, a run that imported modules freezes them."""
    import gc
    import threading

    from dermlib.runtime import memory
    from dermlib.ui import warmup

    monkeypatch.delenv(memory.FREEZE_ENV, raising=False)
    monkeypatch.setattr(memory, "_modules_when_frozen", 0)
    started, finished = threading.Event(), threading.Event()
    monkeypatch.setattr(warmup, "_started", started)
    monkeypatch.setattr(warmup, "_finished", finished)
    try:
        assert warmup.freeze_after_run() is True  # no warm-up in this process: the run's end freezes
        monkeypatch.setattr(memory, "_modules_when_frozen", 0)
        started.set()
        assert warmup.freeze_after_run() is False  # the warm-up is importing: it will freeze itself
        finished.set()
        assert warmup.freeze_after_run() is True
        assert warmup.freeze_after_run() is False  # nothing imported since
    finally:
        gc.unfreeze()
