"""The command line's torch-free path (dermlib.runtime): same pixels, same probabilities, a verified cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dermlib.errors import ModelError
from dermlib.inference import predict_batch
from dermlib.models import load_card, load_model
from dermlib.runtime import cache, geometry
from dermlib.runtime.model import model_entry, open_model, predict_images
from dermlib.testing import synthetic_skin_image, write_tiny_model, write_tiny_scope

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "weights"

# Wide, tall, square, smaller than the input, odd sizes: every branch of resize-then-crop.
SHAPES = [(200, 160), (160, 200), (96, 96), (61, 47), (333, 101), (1024, 767)]


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder for this test alone."""
    root = tmp_path / "cache"
    monkeypatch.setenv(cache.CACHE_ENV, str(root))
    return root


def _photos(n: int = len(SHAPES)) -> list[Image.Image]:
    return [synthetic_skin_image(i, size=SHAPES[i % len(SHAPES)]) for i in range(n)]


def test_resize_and_crop_replay_the_torch_pixels_exactly(tiny_loaded) -> None:
    steps = geometry.describe(tiny_loaded.geometric.transforms)
    assert [s["op"] for s in steps] == ["resize", "center_crop"]
    for photo in _photos():
        ours = np.asarray(geometry.replay(steps, photo.convert("RGB")))
        theirs = np.asarray(tiny_loaded.model_view(photo))
        assert ours.shape == theirs.shape == (96, 96, 3)
        assert np.array_equal(ours, theirs), photo.size


def test_unknown_steps_are_refused_not_guessed() -> None:
    from torchvision import transforms as T

    with pytest.raises(geometry.UnsupportedStep):
        geometry.describe([T.Pad(4)])
    with pytest.raises(geometry.UnsupportedStep):
        geometry.replay([{"op": "center_crop", "size": [300, 300]}], synthetic_skin_image(0))


def test_probabilities_match_torch(tiny_model_dir: Path, tiny_loaded, own_cache: Path) -> None:
    card = load_card(tiny_model_dir)
    onnx = open_model(card)
    photos = _photos()
    ours = onnx.predict_proba(photos)
    theirs = tiny_loaded.predict_proba(photos)
    np.testing.assert_allclose(ours, theirs, atol=2e-5)
    assert (ours.argmax(1) == theirs.argmax(1)).all()
    np.testing.assert_allclose(onnx.preprocess(photos[:2]), tiny_loaded.preprocess(photos[:2]).numpy(), atol=1e-6)


def test_flip_averaging_and_a_masked_card_match_torch(tmp_path: Path, own_cache: Path) -> None:
    folder = write_tiny_model(tmp_path / "masked", seed=3, extra={"inference": {"hflip_tta": True}})
    raw = json.loads((folder / "card.json").read_text())
    raw["preprocessing"]["mask"] = {"boxes": [[0.0, 0.6, 0.5, 1.0]], "fill": "median"}
    (folder / "card.json").write_text(json.dumps(raw))
    loaded = load_model(folder, device="cpu")
    onnx = open_model(load_card(folder))
    photos = _photos()
    for photo in photos:
        assert np.array_equal(np.asarray(onnx.model_view(photo)), np.asarray(loaded.model_view(photo)))
    np.testing.assert_allclose(onnx.predict_proba(photos), loaded.predict_proba(photos), atol=2e-5)


def test_predictions_and_scope_match_the_torch_path(tmp_path: Path, own_cache: Path) -> None:
    folder = write_tiny_scope(write_tiny_model(tmp_path / "scoped", seed=1))
    card = load_card(folder)
    photos = _photos(3)
    ours = predict_images(open_model(card), photos, top_k=3)
    theirs = predict_batch(load_model(folder, device="cpu"), photos, top_k=3)
    for a, b in zip(ours, theirs, strict=True):
        assert [s.label for s in a.top_k] == [s.label for s in b.top_k]
        np.testing.assert_allclose(a.probabilities, b.probabilities, atol=2e-5)
        assert (a.scope.code, a.uncertain) == (b.scope.code, b.uncertain)
        assert a.scope.score == pytest.approx(b.scope.score, abs=1e-4)
        assert a.scope.modality_probability == pytest.approx(b.scope.modality_probability, abs=1e-4)


def test_the_cache_is_reused_verified_and_rebuilt(tiny_model_dir: Path, own_cache: Path) -> None:
    card = load_card(tiny_model_dir)
    open_model(card)
    target = model_entry(card)
    manifest = target.read()
    assert manifest is not None and manifest["model"] == card.id and target.graph.is_file()
    stamp = target.graph.stat().st_mtime_ns
    open_model(card)
    assert target.graph.stat().st_mtime_ns == stamp  # reused, not exported again

    data = bytearray(target.graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.graph.write_bytes(bytes(data))
    assert target.read() is None  # a damaged graph is never run ...
    open_model(card)
    assert target.read() is not None  # ... it is exported again


def test_the_key_follows_the_weights_and_the_preprocessing(tmp_path: Path) -> None:
    folder = write_tiny_model(tmp_path / "m")
    card = load_card(folder)
    raw = json.loads((folder / "card.json").read_text())
    raw["preprocessing"]["interpolation"] = "bilinear"
    (folder / "card.json").write_text(json.dumps(raw))
    assert model_entry(load_card(folder)).folder != model_entry(card).folder


def test_replaced_weights_are_refused(tmp_path: Path, own_cache: Path) -> None:
    folder = write_tiny_model(tmp_path / "m")
    card = load_card(folder)
    open_model(card)
    write_tiny_model(tmp_path / "other", seed=7)
    (folder / "model.safetensors").write_bytes((tmp_path / "other" / "model.safetensors").read_bytes())
    with pytest.raises(ModelError, match="checksum"):
        open_model(card)


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    code = ("import sys, json\nfrom dermlib.cli import main\n"
            f"rc = main({args!r})\n"
            "print(json.dumps({'rc': rc, 'torch': 'torch' in sys.modules, 'timm': 'timm' in sys.modules}))\n")
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=300)


def test_cli_predicts_without_torch_once_the_graph_is_cached(tmp_path: Path, own_cache: Path) -> None:
    root = tmp_path / "weights"
    write_tiny_scope(write_tiny_model(root / "tiny-test", extra={"default": True}))
    photo = tmp_path / "arm.png"
    synthetic_skin_image(4).save(photo)
    env = {"DERMLENS_WEIGHTS_DIR": str(root), cache.CACHE_ENV: str(own_cache)}
    args = ["predict", str(photo), "--json"]

    first = _cli(args, env)  # fills the cache (torch exports the graphs)
    second = _cli(args, env)
    reference = _cli(args, {**env, "DERMLENS_PREDICT_BACKEND": "torch"})
    records = []
    for run in (first, second, reference):
        assert run.returncode == 0, run.stderr
        *lines, status = run.stdout.strip().splitlines()
        records.append((json.loads(lines[0]), json.loads(status)))
    assert records[0][1]["torch"] and records[2][1]["torch"]
    assert records[1][1] == {"rc": 0, "torch": False, "timm": False}
    ours, theirs = records[1][0], records[2][0]
    assert [t["label"] for t in ours["top_k"]] == [t["label"] for t in theirs["top_k"]]
    for a, b in zip(ours["top_k"], theirs["top_k"], strict=True):
        assert a["probability"] == pytest.approx(b["probability"], abs=2e-5)
    assert ours["scope"]["code"] == theirs["scope"]["code"]
    assert ours["scope"]["score"] == pytest.approx(theirs["scope"]["score"], abs=1e-4)
    assert sorted(p.name for p in own_cache.iterdir()) == ["extractors", "models"]


def test_cli_answers_in_torch_when_the_cache_cannot_be_written(tmp_path: Path) -> None:
    root = tmp_path / "weights"
    write_tiny_model(root / "tiny-test", extra={"default": True})
    photo = tmp_path / "arm.png"
    synthetic_skin_image(5).save(photo)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    run = _cli(["predict", str(photo), "--json"], {"DERMLENS_WEIGHTS_DIR": str(root), cache.CACHE_ENV: str(blocker)})
    assert run.returncode == 0, run.stderr
    assert "fast CPU path is unavailable" in run.stderr
    assert json.loads(run.stdout.splitlines()[0])["model"] == "tiny-test"


@pytest.mark.parametrize(("argv", "allowed"), [
    (["predict", "x.jpg"], True),
    (["predict", "x.jpg", "--device", "cpu"], True),
    (["predict", "x.jpg", "--device", "cuda"], False),
    (["predict", "x.jpg", "--cam", "gradcam"], False),
])
def test_which_predictions_take_the_fast_path(argv: list[str], allowed: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    from dermlib.cli import build_parser, fast_path_allowed

    monkeypatch.delenv("DERMLENS_PREDICT_BACKEND", raising=False)
    args = build_parser(argv).parse_args(argv)
    no_gpu = not Path("/proc/driver/nvidia/gpus").is_dir()
    assert fast_path_allowed(args) == (allowed and (no_gpu or "--device" in argv))
    monkeypatch.setenv("DERMLENS_PREDICT_BACKEND", "torch")
    assert not fast_path_allowed(args)


@pytest.mark.skipif(not (SHIPPED / "clinical-common38" / "card.json").is_file(), reason="shipped model not present")
def test_the_shipped_masked_model_matches_torch(own_cache: Path) -> None:
    """The shipped model with a watermark mask, on photos of several shapes: the same pixels and probabilities."""
    card = load_card(SHIPPED / "clinical-common38")
    loaded = load_model(card, device="cpu")
    onnx = open_model(card)
    photos = _photos()
    for photo in photos:
        assert np.array_equal(np.asarray(onnx.model_view(photo)), np.asarray(loaded.model_view(photo)))
    ours, theirs = onnx.predict_proba(photos), loaded.predict_proba(photos)
    np.testing.assert_allclose(ours, theirs, atol=5e-5)
    assert (ours.argmax(1) == theirs.argmax(1)).all()


def test_cache_command_prepares_lists_and_clears(tiny_weights_env: Path, own_cache: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    from dermlib.cli import main

    assert main(["cache", "prepare"]) == 0
    assert "tiny-test: ready" in capsys.readouterr().out
    assert main(["cache", "list"]) == 0
    listed = capsys.readouterr().out
    assert str(own_cache) in listed and "\ttiny-test\tok" in listed
    (next((own_cache / "models").iterdir()) / cache.GRAPH_FILE).write_bytes(b"damaged")
    assert main(["cache", "list"]) == 0
    assert "unusable" in capsys.readouterr().out
    assert main(["cache", "clear"]) == 0
    assert not own_cache.exists()


def test_a_retrained_model_does_not_grow_the_cache(tmp_path: Path, own_cache: Path) -> None:
    folder = tmp_path / "m"
    for seed in range(cache.KEEP_PER_NAME + 2):  # the same model id, retrained: new weights each time
        write_tiny_model(folder, seed=seed)
        open_model(load_card(folder))
    kept = sorted((own_cache / "models").iterdir())
    assert len(kept) == cache.KEEP_PER_NAME
    assert model_entry(load_card(folder)).folder in kept  # the newest is among them


def test_model_view_is_computed_once_per_photo_and_never_keeps_it_alive(tiny_loaded) -> None:
    import gc
    import weakref

    photo, other = _photos(2)
    first = tiny_loaded.model_view(photo)
    again = tiny_loaded.model_view(photo)
    assert again is not first  # a copy each time: drawing on one view cannot change the next caller's
    assert np.array_equal(np.asarray(again), np.asarray(first))
    # Another photo gets its own view, not the cached one.
    assert np.array_equal(np.asarray(tiny_loaded.model_view(other)),
                          np.asarray(geometry.replay(geometry.describe(tiny_loaded.geometric.transforms),
                                                     other.convert("RGB"))))
    # The cache holds the photo only weakly: once the page drops it, it is gone.
    gone = weakref.ref(other)
    del other
    gc.collect()
    assert gone() is None
    assert np.array_equal(np.asarray(tiny_loaded.model_view(photo)), np.asarray(first))
