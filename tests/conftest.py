"""Shared fixtures: tiny real models (card + safetensors) in temporary weights folders."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from dermlib.models import LoadedModel, load_model
from dermlib.testing import write_tiny_model

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# The command line's ONNX graphs (dermlib.runtime) go to a folder of this run, never the user's ~/.cache;
# subprocesses inherit it (tests that build an environment from scratch pass CACHE_ENV on).
CACHE_ENV = {"DERMLENS_CACHE_DIR": tempfile.mkdtemp(prefix="dermlens-test-cache-")}
os.environ.update(CACHE_ENV)
atexit.register(shutil.rmtree, CACHE_ENV["DERMLENS_CACHE_DIR"], ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny EfficientNet-style model folder (4 classes, 96 px input)."""
    return write_tiny_model(tmp_path_factory.mktemp("weights") / "tiny-test")


@pytest.fixture(scope="session")
def tiny_loaded(tiny_model_dir: Path) -> LoadedModel:
    """The tiny model loaded on the CPU (shared by tests, as the app shares it between sessions).

    Its ONNX Runtime export is finished here, so no background export thread runs the network while a test
    counts its passes.
    """
    loaded = load_model(tiny_model_dir, device="cpu")
    loaded.fast_forward(wait=True)
    return loaded


@pytest.fixture
def tiny_weights_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A weights directory holding one tiny model, selected through DERMLENS_WEIGHTS_DIR."""
    root = tmp_path / "weights"
    write_tiny_model(root / "tiny-test", extra={"default": True})
    monkeypatch.setenv("DERMLENS_WEIGHTS_DIR", str(root))
    return root


@pytest.fixture
def shared_data() -> Path:
    """../shared/data when present; the test is skipped otherwise."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA
