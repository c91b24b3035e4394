"""Heatmaps from the prediction's own pass: the same maps as the engine's own pass, with no second one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dermlib.explain import CAM_METHODS, explain, reuse
from dermlib.inference import predict
from dermlib.models import LoadedModel, load_model
from dermlib.testing import synthetic_skin_image, write_tiny_model

FAST = [m for m in CAM_METHODS if m != "scorecam"]


class _Counter:
    """Counts forward passes through a network (a forward pre-hook, removed by ``close``)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.calls = 0
        self._handle = model.register_forward_pre_hook(self._count)

    def _count(self, *_: object) -> None:
        self.calls += 1

    def close(self) -> None:
        self._handle.remove()


def _top3(loaded: LoadedModel, image) -> list[int]:
    pred = predict(loaded, image, top_k=3, check_scope=False)
    return [loaded.card.class_ids.index(s.label) for s in pred.top_k]


def test_onnx_runtime_predicts_what_torch_predicts(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DERMLENS_PREDICT_BACKEND", "torch")
    eager = load_model(tiny_model_dir, device="cpu")
    monkeypatch.setenv("DERMLENS_PREDICT_BACKEND", "onnxruntime")
    onnx = load_model(tiny_model_dir, device="cpu")
    images = [synthetic_skin_image(s) for s in range(6)]
    assert eager.fast_forward() is None and onnx.fast_forward() is not None
    # One photo at a time, as the app predicts (larger batches stay in torch: dermlib.models.fast.MAX_BATCH).
    a = np.concatenate([eager.predict_proba([im]) for im in images])
    b = np.concatenate([onnx.predict_proba([im]) for im in images])
    assert np.abs(a - b).max() < 1e-4
    assert (a.argsort(axis=1)[:, ::-1][:, :3] == b.argsort(axis=1)[:, ::-1][:, :3]).all()


def test_an_unknown_backend_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from dermlib.models import fast

    monkeypatch.setenv("DERMLENS_PREDICT_BACKEND", "tpu")
    with pytest.raises(ValueError, match="DERMLENS_PREDICT_BACKEND"):
        fast.backend_choice()


@pytest.mark.parametrize("method", FAST)
def test_maps_after_a_prediction_need_no_pass_and_equal_the_engines(tiny_loaded: LoadedModel, method: str) -> None:
    image = synthetic_skin_image(11)
    reuse.clear()
    fresh = explain(tiny_loaded, image, [0, 2, 1], method)  # nothing cached: the engine's own pass
    classes = _top3(tiny_loaded, image)
    counter = _Counter(tiny_loaded.model)
    try:
        reused = explain(tiny_loaded, image, classes, method)
    finally:
        counter.close()
    assert counter.calls == 0
    reuse.clear()
    own_pass = explain(tiny_loaded, image, classes, method)
    assert reused.shape == own_pass.shape == (3, 96, 96)
    assert np.allclose(reused, own_pass, atol=1e-5), float(np.abs(reused - own_pass).max())
    assert fresh.shape == (3, 96, 96)


def test_another_photo_is_not_served_from_the_cache(tiny_loaded: LoadedModel) -> None:
    first, second = synthetic_skin_image(1), synthetic_skin_image(2)
    reuse.clear()
    _top3(tiny_loaded, first)
    counter = _Counter(tiny_loaded.model)
    try:
        explain(tiny_loaded, second, [0, 1], "gradcam")
    finally:
        counter.close()
    assert counter.calls == 1


@pytest.mark.parametrize(("backend", "passes"), [("torch", 1), ("onnxruntime", 2)])
def test_other_architectures_take_their_own_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str,
                                                 passes: int) -> None:
    monkeypatch.setenv("DERMLENS_PREDICT_BACKEND", backend)
    folder = write_tiny_model(tmp_path / "res", model_id="tiny-res", architecture="test_resnet",
                              target_layer="layer4")
    loaded = load_model(folder, device="cpu")
    loaded.fast_forward(wait=True)  # no background export may run the network while passes are counted
    image = synthetic_skin_image(4)
    classes = _top3(loaded, image)
    counter = _Counter(loaded.model)
    try:
        reused = explain(loaded, image, classes, "gradcam")  # no closed-form gradient for a ResNet head
        # Activations alone: recorded by torch's pass; ONNX Runtime's feature maps are trusted only at bn2.
        cached_eigen = explain(loaded, image, classes, "eigencam")
    finally:
        counter.close()
    assert counter.calls == passes
    reuse.clear()
    assert np.allclose(reused, explain(loaded, image, classes, "gradcam"), atol=1e-5)
    assert np.allclose(cached_eigen, explain(loaded, image, classes, "eigencam"), atol=1e-5)


def test_the_cache_is_bounded(tiny_loaded: LoadedModel) -> None:
    reuse.clear()
    for seed in range(reuse.MAX_ENTRIES + 3):
        _top3(tiny_loaded, synthetic_skin_image(100 + seed))
    assert len(reuse._cache) == reuse.MAX_ENTRIES


def test_no_hooks_remain_after_prediction(tiny_loaded: LoadedModel) -> None:
    _top3(tiny_loaded, synthetic_skin_image(3))
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in tiny_loaded.model.modules())


def test_a_different_model_with_the_same_input_does_not_share_activations(tmp_path: Path) -> None:
    a = load_model(write_tiny_model(tmp_path / "a", model_id="tiny-a", seed=1), device="cpu")
    b = load_model(write_tiny_model(tmp_path / "b", model_id="tiny-b", seed=2), device="cpu")
    image = synthetic_skin_image(7)
    reuse.clear()
    a.fast_forward(wait=True)
    _top3(a, image)
    assert reuse.cached_activations(b, b.preprocess([image])) is None
    assert reuse.cached_activations(a, a.preprocess([image])) is not None
