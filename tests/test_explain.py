"""CAM engine: identical to grad-cam's own maps, batched, hook-free afterwards, thread-safe."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_grad_cam import (
    EigenCAM,
    EigenGradCAM,
    GradCAM,
    GradCAMPlusPlus,
    HiResCAM,
    LayerCAM,
    ScoreCAM,
    XGradCAM,
)
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from dermlib.explain import CAM_METHODS, explain, get_cam_method, overlay_heatmap
from dermlib.explain.reshape import vit_reshape
from dermlib.inference import predict
from dermlib.models import LoadedModel, build_model, load_model
from dermlib.testing import synthetic_skin_image, write_tiny_model

PACKAGE = {
    "gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "hirescam": HiResCAM, "xgradcam": XGradCAM,
    "layercam": LayerCAM, "eigencam": EigenCAM, "eigengradcam": EigenGradCAM, "scorecam": ScoreCAM,
}


def _reference(loaded: LoadedModel, image: Image.Image, classes: list[int], method: str, reshape=None) -> np.ndarray:
    """grad-cam's own result, one class at a time, on a private copy of the network."""
    net = build_model(loaded.card)
    net.load_state_dict(loaded.model.state_dict())
    net.eval()
    layer = dict(net.named_modules())[loaded.card.cam["target_layer"]]
    x = loaded.preprocess([image])
    maps = []
    with PACKAGE[method](model=net, target_layers=[layer], reshape_transform=reshape) as cam:
        if method == "scorecam":
            cam.batch_size = 64
        for c in classes:
            maps.append(cam(x, [ClassifierOutputTarget(c)])[0])
    return np.stack(maps)


def _hooks(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


def test_registry_has_the_required_methods() -> None:
    assert {"gradcam", "gradcam++", "hirescam", "xgradcam", "layercam", "eigencam", "scorecam"} <= set(CAM_METHODS)
    with pytest.raises(ValueError, match="Unknown CAM method"):
        get_cam_method("nope")


@pytest.mark.parametrize("method", sorted(PACKAGE))
def test_maps_equal_grad_cam_package(tiny_loaded: LoadedModel, method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from dermlib.explain import methods

    monkeypatch.setattr(methods, "SCORE_CAM_MAX_CHANNELS", None)  # every channel, exactly as grad-cam's Score-CAM
    image = synthetic_skin_image(7)
    classes = [2, 0, 3]
    ours = explain(tiny_loaded, image, classes, method)
    ref = _reference(tiny_loaded, image, classes, method)
    assert ours.shape == (3, 96, 96) == ref.shape
    assert np.allclose(ours, ref, atol=2e-4), float(np.abs(ours - ref).max())


def test_batched_equals_one_at_a_time_and_shape(tiny_loaded: LoadedModel) -> None:
    image = synthetic_skin_image(8)
    batched = explain(tiny_loaded, image, [1, 3, 0], "gradcam")
    single = np.stack([explain(tiny_loaded, image, [c], "gradcam")[0] for c in (1, 3, 0)])
    assert np.allclose(batched, single, atol=1e-5)
    assert batched.shape[1:] == tuple(tiny_loaded.preprocess([image]).shape[-2:])
    assert batched.min() >= 0 and batched.max() <= 1 + 1e-6
    assert not np.allclose(batched[0], batched[1])  # class-specific maps differ


def test_no_hooks_or_grads_remain(tiny_loaded: LoadedModel) -> None:
    before = _hooks(tiny_loaded.model)
    for method in CAM_METHODS:
        explain(tiny_loaded, synthetic_skin_image(9), [0, 1], method)
    assert _hooks(tiny_loaded.model) == before == 0
    assert all(p.grad is None for p in tiny_loaded.model.parameters())
    assert torch.is_grad_enabled()


def test_hooks_removed_even_when_the_forward_fails(tiny_loaded: LoadedModel) -> None:
    bad = torch.zeros(1, 5, 96, 96)  # wrong channel count: the stem raises
    from dermlib.explain import cams_for_tensor

    with pytest.raises(RuntimeError):
        cams_for_tensor(tiny_loaded, bad, [0])
    assert _hooks(tiny_loaded.model) == 0


def test_concurrent_explanations_equal_serial(tiny_loaded: LoadedModel) -> None:
    jobs = [(synthetic_skin_image(s), [s % 4, (s + 1) % 4, (s + 2) % 4]) for s in range(16)]
    serial = [explain(tiny_loaded, img, cls, "gradcam") for img, cls in jobs]
    serial_probs = [predict(tiny_loaded, img).probabilities for img, _ in jobs]
    barrier = threading.Barrier(8)

    def work(i: int):
        if i < 8:
            barrier.wait()  # start the first eight together to maximise interleaving
        img, cls = jobs[i]
        # Interleave plain predictions (no hooks) with explanations on the same shared model.
        probs = predict(tiny_loaded, img).probabilities
        return explain(tiny_loaded, img, cls, "gradcam"), probs

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(len(jobs))))
    for (maps, probs), ref_maps, ref_probs in zip(results, serial, serial_probs, strict=True):
        assert np.allclose(maps, ref_maps, atol=1e-5)
        assert np.allclose(probs, ref_probs, atol=1e-6)
    assert _hooks(tiny_loaded.model) == 0


def test_vit_reshape_path(tmp_path: Path) -> None:
    folder = write_tiny_model(tmp_path / "vit", architecture="test_vit", target_layer="blocks.5.norm1",
                              reshape="vit", input_size=160)
    loaded = load_model(folder, device="cpu")
    image = synthetic_skin_image(4)
    ours = explain(loaded, image, [0, 2], "gradcam")
    assert ours.shape == (2, 160, 160)
    prefix = loaded.model.num_prefix_tokens
    ref = _reference(loaded, image, [0, 2], "gradcam", reshape=lambda t: vit_reshape(t, prefix))
    assert np.allclose(ours, ref, atol=2e-4)


def test_bad_class_index(tiny_loaded: LoadedModel) -> None:
    with pytest.raises(ValueError, match="Class indices"):
        explain(tiny_loaded, synthetic_skin_image(0), [7])
    assert explain(tiny_loaded, synthetic_skin_image(0), []).shape == (0, 96, 96)


def test_overlay_opacity_extremes() -> None:
    image = Image.new("RGB", (50, 40), (10, 200, 30))
    cam = np.zeros((96, 96), dtype=np.float32)
    cam[:48] = 1.0
    assert np.array_equal(np.asarray(overlay_heatmap(image, cam, 0.0)), np.asarray(image))
    full = np.asarray(overlay_heatmap(image, cam, 1.0))
    assert full.shape == (40, 50, 3)
    assert full[0, 0, 0] > 100 and full[0, 0, 2] < 50  # hot (red) at the top
    assert full[-1, -1, 2] > 100  # cold (blue) at the bottom
    with pytest.raises(ValueError):
        overlay_heatmap(image, cam, 1.5)


def test_score_cam_scores_only_the_most_activated_channels_and_reports_progress() -> None:
    from dermlib.explain.methods import score_cam_weights

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(4, 5)).eval()
    x = torch.rand(1, 3, 32, 32)
    acts = np.random.default_rng(0).random((1, 40, 4, 4)).astype(np.float32)
    acts[0, [3, 17, 25]] += 5.0  # the three most activated channels
    seen = []
    capped = score_cam_weights(net, x, acts, [1, 4], batch_size=2, max_channels=3,
                               progress=lambda done, total: seen.append((done, total)))
    assert capped.shape == (2, 40)
    assert set(np.flatnonzero(capped[0])) == {3, 17, 25}
    assert np.allclose(capped.sum(axis=1), 1.0)
    assert seen == [(2, 3), (3, 3)]
    full = score_cam_weights(net, x, acts, [1, 4], max_channels=None)
    assert np.count_nonzero(full[0]) == 40

    def stop(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        score_cam_weights(net, x, acts, [1], batch_size=2, max_channels=3, progress=stop)


def test_slow_methods_are_offered_only_within_the_time_budget(tiny_loaded: LoadedModel) -> None:
    import dataclasses

    from dermlib.explain.methods import unavailable_reason

    card = tiny_loaded.card
    assert all(unavailable_reason(card, m) is None for m in CAM_METHODS)  # one network at 96 px
    big = dataclasses.replace(card, preprocessing={**card.preprocessing, "input_size": [3, 288, 288]})
    assert "288 px" in unavailable_reason(big, "scorecam")
    assert unavailable_reason(big, "gradcam") is None
    from dermlib.models.card import ENSEMBLE_ARCHITECTURE

    ensemble = dataclasses.replace(card, architecture=ENSEMBLE_ARCHITECTURE,
                                   members=({"architecture": "a"}, {"architecture": "b"}))
    assert unavailable_reason(ensemble, "scorecam") is None  # a pair shares one network's budget
    three = dataclasses.replace(ensemble, members=({"architecture": "a"},) * 3)
    assert unavailable_reason(three, "scorecam") is None  # so do three networks, 14 channels a layer
    four = dataclasses.replace(ensemble, members=({"architecture": "a"},) * 4)
    assert "4 networks" in unavailable_reason(four, "scorecam")
