"""Faults: broken models, a failing GPU, missing or damaged data. Each gives a clear message on the page
and in the CLI, the rest of the app keeps working, and nothing on disk changes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

import dermlib.ui.common as common
from dermlib.cli import main
from dermlib.data import synthetic as syn
from dermlib.explain import explain
from dermlib.models import LoadedModel, load_model
from dermlib.models.loading import is_accelerator_failure
from dermlib.testing import image_bytes, synthetic_skin_image, write_tiny_model

ROOT = Path(__file__).resolve().parents[1]
DIAGNOSE = str(ROOT / "app_pages" / "diagnose.py")
EXPLORER = str(ROOT / "app_pages" / "dataset_explorer.py")


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    st.cache_data.clear()
    st.cache_resource.clear()


def _tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --- broken models -----------------------------------------------------------------------------------

def _missing(folder: Path) -> None:
    (folder / "model.safetensors").unlink()


def _truncated(folder: Path) -> None:
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 3])


def _tampered(folder: Path) -> None:
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[len(data) // 2] ^= 0x55
    (folder / "model.safetensors").write_bytes(bytes(data))


def _card_mismatch(folder: Path) -> None:
    # The card claims 5 classes; the weights have a 4-class head.
    card = json.loads((folder / "card.json").read_text())
    card["classes"].append({"id": "extra", "name": "Extra class", "risk_group": "benign"})
    (folder / "card.json").write_text(json.dumps(card))


def _card_schema(folder: Path) -> None:
    card = json.loads((folder / "card.json").read_text())
    del card["preprocessing"]
    (folder / "card.json").write_text(json.dumps(card))


MODEL_FAULTS: dict[str, tuple[Callable[[Path], None], str]] = {
    "missing weights": (_missing, "missing"),
    "truncated weights": (_truncated, "checksum"),
    "tampered weights": (_tampered, "checksum"),
    "card does not match weights": (_card_mismatch, "do not match its card"),
    "card fails its schema": (_card_schema, "preprocessing"),
}


@pytest.fixture
def two_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A good model and a model to break, the broken one listed first (it is the default)."""
    root = tmp_path / "weights"
    write_tiny_model(root / "a-broken", model_id="a-broken", extra={"default": True})
    write_tiny_model(root / "good", model_id="good")
    monkeypatch.setenv("DERMLENS_WEIGHTS_DIR", str(root))
    return root


@pytest.mark.parametrize("fault", list(MODEL_FAULTS))
def test_broken_model_on_the_page(two_models: Path, fault: str) -> None:
    breaker, phrase = MODEL_FAULTS[fault]
    breaker(two_models / "a-broken")
    before = _tree_digest(two_models)
    at = AppTest.from_file(DIAGNOSE).run(timeout=60)
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert "a-broken" in errors and phrase in errors, errors
    # The other model still works in the same session.
    if at.selectbox(key="diagnose_model").value != "good":
        at.selectbox(key="diagnose_model").set_value("good").run(timeout=60)
    at.file_uploader(key="diagnose_upload").upload("ok.png", image_bytes(synthetic_skin_image(4)), "image/png")
    at.run(timeout=120)
    assert not at.exception and len(at.get("plotly_chart")) == 2
    assert _tree_digest(two_models) == before


@pytest.mark.parametrize("fault", list(MODEL_FAULTS))
def test_broken_model_in_the_cli(two_models: Path, tmp_path: Path, fault: str,
                                 capsys: pytest.CaptureFixture) -> None:
    breaker, phrase = MODEL_FAULTS[fault]
    breaker(two_models / "a-broken")
    before = _tree_digest(two_models)
    photo = tmp_path / "photo.png"
    synthetic_skin_image(1).save(photo)
    assert main(["predict", str(photo), "--model", "a-broken", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "a-broken" in err and phrase in err and "Traceback" not in err
    assert main(["predict", str(photo), "--model", "good", "--device", "cpu", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "good"
    assert _tree_digest(two_models) == before


# --- a failing GPU -----------------------------------------------------------------------------------

def _fail_first_forward(network: torch.nn.Module, error: BaseException | None,
                        always: dict | None = None) -> None:
    """Make the network's first forward pass raise ``error`` (or every pass while ``always['on']``).

    The forward method is replaced on the instance, so module names (the CAM layer) stay as they are.
    """
    real = network.forward
    pending = [error] if error is not None else []

    def forward(*args, **kwargs):
        if pending:
            raise pending.pop()
        if always is not None and always["on"]:
            raise IndexError("an unforeseen bug")
        return real(*args, **kwargs)

    network.forward = forward


def _on_failing_gpu(folder: Path, error: BaseException) -> LoadedModel:
    """A model that believes it is on a GPU whose next forward pass fails with ``error``."""
    loaded = load_model(folder, device="cpu")
    _fail_first_forward(loaded.model, error)
    loaded.device = torch.device("cuda")
    # Tensors stay where they are: this machine has no GPU to move them to.
    loaded._to_device = lambda batch: batch  # type: ignore[method-assign]
    return loaded


GPU_ERRORS = {
    "out of memory": torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    "CUDA error": RuntimeError("CUDA error: an illegal memory access was encountered"),
}


@pytest.mark.parametrize("kind", list(GPU_ERRORS))
def test_gpu_failure_falls_back_to_the_cpu(tiny_model_dir: Path, tiny_loaded: LoadedModel, kind: str) -> None:
    before = _tree_digest(tiny_model_dir)
    image = synthetic_skin_image(2)
    expected = tiny_loaded.predict_proba([image])
    loaded = _on_failing_gpu(tiny_model_dir, GPU_ERRORS[kind])
    probs = loaded.predict_proba([image])
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    assert loaded.device.type == "cpu"
    assert loaded.fallback_notice and "runs on the CPU" in loaded.fallback_notice and kind.split()[-1] in \
        loaded.fallback_notice
    assert _tree_digest(tiny_model_dir) == before


def test_gpu_failure_during_explanation_falls_back(tiny_model_dir: Path, tiny_loaded: LoadedModel) -> None:
    image = synthetic_skin_image(3)
    expected = explain(tiny_loaded, image, [0, 2])
    loaded = _on_failing_gpu(tiny_model_dir, GPU_ERRORS["out of memory"])
    maps = explain(loaded, image, [0, 2])
    np.testing.assert_allclose(maps, expected, atol=1e-5)
    assert loaded.device.type == "cpu" and loaded.fallback_notice


def test_a_bug_is_not_mistaken_for_a_gpu_failure(tiny_model_dir: Path) -> None:
    loaded = _on_failing_gpu(tiny_model_dir, ValueError("shape mismatch in my code"))
    with pytest.raises(ValueError, match="shape mismatch"):
        loaded.predict_proba([synthetic_skin_image(0)])
    assert loaded.device.type == "cuda" and loaded.fallback_notice is None
    assert not is_accelerator_failure(ValueError("CUDA"))  # only runtime errors and the accelerator's own
    assert is_accelerator_failure(torch.cuda.OutOfMemoryError("CUDA out of memory"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_asking_for_a_gpu_that_cannot_take_the_model_loads_on_the_cpu(tiny_model_dir: Path) -> None:
    loaded = load_model(tiny_model_dir, device=torch.device("cuda"))
    assert loaded.device.type == "cpu"
    assert loaded.fallback_notice and "runs on the CPU" in loaded.fallback_notice
    assert loaded.predict_proba([synthetic_skin_image(0)]).shape == (1, 4)


def test_gpu_failure_notice_on_the_page(tiny_weights_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tiny_weights_env / "tiny-test"
    monkeypatch.setattr(common, "load_model", lambda card: _on_failing_gpu(folder, GPU_ERRORS["out of memory"]))
    at = AppTest.from_file(DIAGNOSE).run(timeout=60)
    at.file_uploader(key="diagnose_upload").upload("ok.png", image_bytes(synthetic_skin_image(6)), "image/png")
    at.run(timeout=120)
    assert not at.exception and len(at.get("plotly_chart")) == 2
    assert any("runs on the CPU" in w.value and "out of memory" in w.value for w in at.warning)


def test_gpu_failure_notice_in_the_cli(tiny_weights_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture) -> None:
    import dermlib.models

    folder = tiny_weights_env / "tiny-test"
    monkeypatch.setattr(dermlib.models, "load_model",
                        lambda model_id, device=None: _on_failing_gpu(folder, GPU_ERRORS["CUDA error"]))
    photo = tmp_path / "photo.png"
    synthetic_skin_image(1).save(photo)
    # On a GPU (named here; found by torch on a machine that has one) predict runs in torch, not the CPU graph.
    assert main(["predict", str(photo), "--json", "--device", "cuda"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["model"] == "tiny-test"
    assert "note: The GPU (cuda) failed (CUDA error" in captured.err


def test_unexpected_model_error_keeps_the_session(tiny_weights_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tiny_weights_env / "tiny-test"
    state = {"on": True}

    def flaky_load(card):
        loaded = load_model(folder, device="cpu")
        _fail_first_forward(loaded.model, None, always=state)
        loaded.fast, loaded._fast_tried = None, True  # predictions through the failing torch forward too
        return loaded

    monkeypatch.setattr(common, "load_model", flaky_load)
    at = AppTest.from_file(DIAGNOSE).run(timeout=60)
    at.file_uploader(key="diagnose_upload").upload("ok.png", image_bytes(synthetic_skin_image(7)), "image/png")
    at.run(timeout=120)
    assert not at.exception
    assert any("Something went wrong" in e.value for e in at.error)
    assert not at.get("plotly_chart")
    state["on"] = False  # the fault goes away: the same session works without a reload
    at.run(timeout=120)
    assert not at.exception and len(at.get("plotly_chart")) == 2


# --- missing or damaged data -------------------------------------------------------------------------

def test_missing_data_root_on_the_page(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from dermlib import config

    monkeypatch.setattr(config, "shared_data_root", lambda: None)
    monkeypatch.setenv("DERMLENS_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    monkeypatch.setenv(config.DATA_ROOT_ENV, str(tmp_path / "does-not-exist"))
    at = AppTest.from_file(EXPLORER, default_timeout=60).run()
    assert not at.exception
    assert any("No dataset found" in i.value for i in at.info)
    assert not (tmp_path / "does-not-exist").exists()


def test_missing_data_root_in_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "nowhere"
    assert main(["data", "index", "fitzpatrick17k", "--root", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nowhere" in err and "Traceback" not in err
    out = tmp_path / "weights" / "m"
    assert main(["train", "--data-root", str(missing), "--out", str(out), "--architecture", "test_efficientnet",
                 "--pretrained", "none", "--epochs", "1"]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert not missing.exists() and not out.exists()


@pytest.fixture
def damaged_dataset(tmp_path: Path) -> Path:
    """A synthetic Fitzpatrick17k folder in which two photos are not images any more."""
    root = syn.make_fitzpatrick17k(tmp_path / "fitzpatrick17k", n_images=12, n_metadata_only=0)
    photos = sorted((root / "images").rglob("*.jpg"))
    photos[0].write_bytes(b"this was a photo once")
    photos[1].write_bytes(photos[1].read_bytes()[:200])
    return root


def test_unreadable_dataset_images_on_the_page(monkeypatch: pytest.MonkeyPatch, damaged_dataset: Path,
                                               tmp_path: Path) -> None:
    from dermlib import config

    before = _tree_digest(damaged_dataset)
    monkeypatch.setattr(config, "shared_data_root", lambda: None)
    monkeypatch.setenv("DERMLENS_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    monkeypatch.setenv(config.DATA_ROOT_ENV, str(damaged_dataset.parent))
    at = AppTest.from_file(EXPLORER, default_timeout=120).run()
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "cannot" in warnings.lower() or "could not" in warnings.lower(), warnings
    assert len(at.get("image")) >= 10  # the readable photos are still shown
    at.toggle(key="dataset_explorer_stats_on").set_value(True).run()
    assert not at.exception
    assert any("2 images could not be read" in w.value for w in at.warning)
    assert _tree_digest(damaged_dataset) == before


def test_unreadable_dataset_images_in_the_cli(damaged_dataset: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    before = _tree_digest(damaged_dataset)
    out = tmp_path / "weights" / "m"
    code = main(["train", "--data-root", str(damaged_dataset), "--dataset", "fitzpatrick17k", "--out", str(out),
                 "--run-dir", str(tmp_path / "run"), "--architecture", "test_efficientnet", "--pretrained", "none",
                 "--img-size", "64", "--epochs", "1", "--batch-size", "8", "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "cannot be read" in err or "Cannot read" in err
    assert "Traceback" not in err and not out.exists()
    assert _tree_digest(damaged_dataset) == before
