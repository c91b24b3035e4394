"""The out-of-scope check: stored statistics, scores, modality, photo quality, and its real-data behaviour."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from safetensors.torch import load_file, save_file

from dermlib.errors import ModelError
from dermlib.evaluate.metrics import wilson_interval as wilson
from dermlib.inference import predict
from dermlib.models import load_card, load_model
from dermlib.scope.checker import SCOPE_FILE, get_checker, load_scope_state
from dermlib.scope.detectors import OOD_SCORES, SHIPPABLE, create_score
from dermlib.scope.fit import auroc, keep_threshold, roc_points
from dermlib.scope.quality import fit_quality_thresholds, measure, quality_warnings
from dermlib.scope.sources import half_of, with_halves
from dermlib.testing import (
    image_bytes,
    synthetic_dermoscopy_image,
    synthetic_scene_image,
    synthetic_skin_image,
    write_tiny_model,
    write_tiny_scope,
)

# The command line's graph cache of this test run (set in conftest), for subprocesses given a bare environment.
CACHE_ENV = {"DERMLENS_CACHE_DIR": os.environ["DERMLENS_CACHE_DIR"]}

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scoped_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A weights folder with a tiny clinical and a tiny dermoscopy model, each with a fitted scope check."""
    root = tmp_path_factory.mktemp("scoped")
    write_tiny_scope(write_tiny_model(root / "tiny-clinical", model_id="tiny-clinical",
                                      extra={"default": True, "name": "Tiny clinical"}))
    write_tiny_scope(write_tiny_model(root / "tiny-derm", model_id="tiny-derm", num_classes=2, seed=1,
                                      extra={"task": "dermoscopy", "name": "Tiny dermoscopy"}))
    return root


# --- scores and their stored statistics -------------------------------------------------------------------------

@pytest.mark.parametrize("name", SHIPPABLE)
def test_score_state_round_trips_through_safetensors(name: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(size=(60, 16)).astype(np.float32)
    labels = np.arange(60) % 3
    head = (rng.normal(size=(3, 16)).astype(np.float32), rng.normal(size=3).astype(np.float32))
    det = create_score(name).fit(train, labels, head=head)
    save_file({k: v.contiguous() for k, v in det.state().items()}, str(tmp_path / "s.safetensors"))
    restored = create_score(name).load_state(load_file(str(tmp_path / "s.safetensors")))
    probe = rng.normal(size=(10, 16)).astype(np.float32)
    # KNN keeps its bank in float16, so distances agree to about 1e-3.
    np.testing.assert_allclose(restored.score(probe), det.score(probe), rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("name", SHIPPABLE)
def test_feature_scores_rank_far_points_higher(name: str) -> None:
    rng = np.random.default_rng(1)
    # In-distribution features point one way, out-of-distribution ones another (KNN compares directions).
    centre, elsewhere = np.eye(8)[0] * 4, np.eye(8)[1] * 6
    train = rng.normal(size=(200, 8)) + centre
    near = rng.normal(size=(50, 8)) + centre
    far = rng.normal(size=(50, 8)) * 0.5 + elsewhere
    if name == "vim":
        # ViM scores the residual off the training features' principal subspace: training features span the
        # first three axes, far ones lie off them.
        train[:, 3:] *= 0.05
        near[:, 3:] *= 0.05
        far = rng.normal(size=(50, 8)) * 0.05 + np.eye(8)[6] * 6
    head = (rng.normal(size=(4, 8)) * 0.1, np.zeros(4))
    det = create_score(name).fit(train, np.arange(200) % 4, head=head)
    assert auroc(det.score(near), det.score(far)) > 0.95


def test_onnx_runtime_and_torch_extractors_agree() -> None:
    from dermlib.scope.features import FeatureExtractor

    images = [synthetic_skin_image(1), synthetic_scene_image(2)]
    fast, slow = FeatureExtractor(backend="onnxruntime"), FeatureExtractor(backend="torch")
    assert fast.backend == "onnxruntime" and slow.backend == "torch"
    a, b = fast(images), slow(images)
    assert a.shape == b.shape == (2, 1280)
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def test_fast_knn_equals_pytorch_ood() -> None:
    rng = np.random.default_rng(2)
    det = create_score("knn").fit(rng.normal(size=(300, 32)), np.zeros(300, int))
    probe = rng.normal(size=(20, 32))
    np.testing.assert_allclose(det.score(probe), det.reference_score(probe), rtol=1e-4, atol=1e-5)


def test_logit_scores_prefer_confident_logits() -> None:
    confident = np.array([[10.0, 0.0, 0.0]])
    flat = np.array([[0.1, 0.0, 0.05]])
    for name in ("msp", "energy"):
        score = create_score(name)
        assert score.score(flat)[0] > score.score(confident)[0], name
    assert set(OOD_SCORES) >= {"msp", "energy", "mahalanobis", "knn", "vim"}


def test_auroc_roc_and_threshold_helpers() -> None:
    assert auroc(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 1.0
    assert auroc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 0.0
    assert auroc(np.array([1.0]), np.array([1.0])) == 0.5
    values = np.arange(100.0)
    assert keep_threshold(values, 0.95) == 95.0
    assert np.mean(values <= keep_threshold(values, 0.95)) >= 0.95
    roc = roc_points(np.arange(10.0), np.arange(10.0) + 100)
    assert roc["fpr"][0] == 0 and roc["tpr"][-1] == 1 and max(roc["tpr"]) == 1
    low, high = wilson(95, 100)
    assert low < 0.95 < high and low > 0.88 and high < 0.99


def test_halves_are_stable_and_keep_groups_together() -> None:
    import pandas as pd

    rows = pd.DataFrame({"image_path": [f"{i}.jpg" for i in range(200)],
                         "group_id": [f"g{i // 2}" for i in range(200)]})
    halves = with_halves(rows)
    assert set(halves["half"]) == {"calibration", "report"}
    assert halves.groupby("group_id")["half"].nunique().max() == 1
    assert 0.35 < (halves["half"] == "calibration").mean() < 0.65
    assert half_of("g1") == half_of("g1")


# --- the sidecar: checksum and failures ---------------------------------------------------------------------------

def test_sidecar_is_described_in_the_card_and_verified(tmp_path: Path) -> None:
    folder = write_tiny_scope(write_tiny_model(tmp_path / "m"))
    card = load_card(folder)
    section = card.raw["scope"]
    assert section["file"] == SCOPE_FILE and len(section["sha256"]) == 64
    assert section["score"] == "knn" and section["extractor"]["architecture"] == "tf_efficientnet_lite0"
    state = load_scope_state(card)
    assert {"modality.coef", "modality.intercept", "score.knn.bank_int8", "score.knn.bank_scale"} <= set(state)
    assert state["score.knn.bank_int8"].dtype == np.int8  # a quarter of float32

    data = bytearray((folder / SCOPE_FILE).read_bytes())
    data[-1] ^= 0xFF
    (folder / SCOPE_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum"):
        load_scope_state(load_card(folder))
    (folder / SCOPE_FILE).unlink()
    with pytest.raises(ModelError, match="missing"):
        load_scope_state(load_card(folder))


def test_card_schema_rejects_a_bad_scope_section(tmp_path: Path) -> None:
    from dermlib.errors import CardError
    from dermlib.models.card import ModelCard

    folder = write_tiny_scope(write_tiny_model(tmp_path / "m"))
    data = json.loads((folder / "card.json").read_text())
    data["scope"]["threshold"] = "high"
    data["scope"]["modality"]["max_other_probability"] = 2
    with pytest.raises(CardError, match=r"scope\.threshold") as info:
        ModelCard.from_dict(data)
    assert "max_other_probability" in str(info.value)


def test_model_without_scope_is_marked_unchecked(tiny_loaded) -> None:
    pred = predict(tiny_loaded, synthetic_skin_image(3))
    assert pred.in_scope and pred.scope.code == "unchecked"
    d = pred.to_dict()
    assert d["in_scope"] is True and d["scope"]["score"] is None and d["scope"]["quality"] == []


# --- decisions on synthetic images ---------------------------------------------------------------------------------

def test_scope_decisions(scoped_root: Path) -> None:
    clinical = load_model(scoped_root / "tiny-clinical", device="cpu")
    skin = predict(clinical, synthetic_skin_image(7))
    assert skin.in_scope and skin.scope.code == "in_scope" and skin.scope.message == ""
    scene = predict(clinical, synthetic_scene_image(3))
    assert not scene.in_scope and scene.scope.code == "not_skin"
    assert scene.scope.score > scene.scope.threshold
    assert "does not look like an ordinary clinical photo of skin" in scene.scope.message
    derm = predict(clinical, synthetic_dermoscopy_image(40))
    assert not derm.in_scope and derm.scope.code == "wrong_modality"
    assert derm.scope.suggested_model == "tiny-derm" and "tiny-derm" in derm.scope.message

    dermoscopy = load_model(scoped_root / "tiny-derm", device="cpu")
    assert predict(dermoscopy, synthetic_dermoscopy_image(41)).in_scope
    swapped = predict(dermoscopy, synthetic_skin_image(8))
    assert swapped.scope.code == "wrong_modality" and swapped.scope.suggested_model == "tiny-clinical"
    assert predict(dermoscopy, synthetic_scene_image(4)).scope.code == "not_skin"


def test_scope_check_beside_the_classifier_answers_as_after_it(scoped_root: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker-thread scope check (one photo, a second CPU) gives exactly the in-line check's answer."""
    import threading

    from dermlib.scope import checker

    clinical = load_model(scoped_root / "tiny-clinical", device="cpu")
    photos = [synthetic_skin_image(7), synthetic_scene_image(3), synthetic_dermoscopy_image(40)]
    ran_in: list[str] = []
    real = checker.check_images

    def recording(card, images):
        ran_in.append(threading.current_thread().name)
        return real(card, images)

    monkeypatch.setattr(checker, "check_images", recording)
    answers = {}
    for flag in ("0", "1"):
        monkeypatch.setenv(checker.PARALLEL_ENV, flag)
        ran_in.clear()
        answers[flag] = [predict(clinical, image).scope for image in photos]
        assert len(ran_in) == 3
        assert all(name.startswith("dermlens-scope") == (flag == "1") for name in ran_in), ran_in
    assert answers["0"] == answers["1"]
    assert [a.code for a in answers["1"]] == ["in_scope", "not_skin", "wrong_modality"]
    # Several photos are checked in one batch, in the caller's thread.
    ran_in.clear()
    assert [r.code for r in checker.start_check(clinical.card, photos[:2]).result()] == ["in_scope", "not_skin"]
    assert ran_in == [threading.current_thread().name]


def test_prediction_json_always_has_scope_keys(scoped_root: Path) -> None:
    loaded = load_model(scoped_root / "tiny-clinical", device="cpu")
    for image in (synthetic_skin_image(9), synthetic_scene_image(5)):
        d = predict(loaded, image).to_dict()
        assert isinstance(d["in_scope"], bool)
        assert {"score", "threshold", "reason", "quality"} <= set(d["scope"])
        assert isinstance(d["scope"]["score"], float) and isinstance(d["scope"]["threshold"], float)
        json.dumps(d)


def test_cli_predict_out_of_scope_is_an_answer(scoped_root: Path, tmp_path: Path) -> None:
    scene, skin = tmp_path / "pagoda.png", tmp_path / "arm.png"
    synthetic_scene_image(6).save(scene)
    synthetic_skin_image(10).save(skin)
    env = {"DERMLENS_WEIGHTS_DIR": str(scoped_root), "PATH": "/usr/bin:/bin", **CACHE_ENV}
    out = subprocess.run([sys.executable, "-m", "dermlib", "predict", str(scene), str(skin), "--json"],
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["in_scope"] for r in records] == [False, True]
    assert records[0]["scope"]["code"] == "not_skin" and records[0]["scope"]["reason"]
    human = subprocess.run([sys.executable, "-m", "dermlib", "predict", str(scene)],
                           capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert human.returncode == 0 and "OUT OF SCOPE" in human.stdout


# --- photo quality --------------------------------------------------------------------------------------------------

def _textured(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = np.array(synthetic_skin_image(seed, size=(320, 256)), dtype=np.float64)
    base += rng.normal(0, 18, base.shape)  # skin texture: pores, hair
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))


def test_quality_measures_and_warnings() -> None:
    normal = [measure(_textured(i)) for i in range(40)]
    thresholds = fit_quality_thresholds(normal, 224, tail=0.003)
    flagged = sum(bool(quality_warnings(m, thresholds)) for m in normal)
    assert flagged <= 1  # at most 2% of the photos the thresholds were chosen on

    photo = _textured(99)
    assert quality_warnings(measure(photo), thresholds) == []
    blurred = photo.filter(ImageFilter.GaussianBlur(6))
    assert measure(blurred)["sharpness"] < measure(photo)["sharpness"] / 10
    assert [w.code for w in quality_warnings(measure(blurred), thresholds)] == ["blurry"]
    dark = Image.fromarray((np.asarray(photo) * 0.08).astype(np.uint8))
    assert "dark" in [w.code for w in quality_warnings(measure(dark), thresholds)]
    bright = Image.fromarray(np.clip(np.asarray(photo, dtype=np.float64) * 2.5, 0, 255).astype(np.uint8))
    warnings = quality_warnings(measure(bright), thresholds)
    assert "bright" in [w.code for w in warnings] and all(w.advice for w in warnings)
    small = photo.resize((80, 64))
    assert "small" in [w.code for w in quality_warnings(measure(small), thresholds)]


def test_quality_warning_reaches_the_prediction(scoped_root: Path) -> None:
    loaded = load_model(scoped_root / "tiny-clinical", device="cpu")
    dark = Image.fromarray((np.asarray(synthetic_skin_image(11)) * 0.05).astype(np.uint8))
    pred = predict(loaded, dark)
    assert "dark" in [w["code"] for w in pred.to_dict()["scope"]["quality"]]


# --- the Diagnose page ----------------------------------------------------------------------------------------------

def test_diagnose_page_hides_the_diagnosis_out_of_scope(scoped_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_resource.clear()
    monkeypatch.setenv("DERMLENS_WEIGHTS_DIR", str(scoped_root))
    at = AppTest.from_file(str(REPO / "app_pages" / "diagnose.py")).run(timeout=60)
    at.file_uploader(key="diagnose_upload").upload("pagoda.png", image_bytes(synthetic_scene_image(7)), "image/png")
    at.run(timeout=120)
    assert not at.exception
    assert any("does not look like an ordinary clinical photo of skin" in e.value for e in at.error)
    expander = next(e for e in at.expander if "Show the model's output anyway" in e.label)
    # The charts exist only inside the collapsed expander, and no heatmap is computed.
    assert len(at.get("plotly_chart")) == len(expander.get("plotly_chart")) == 2
    assert not any(s.value == "Where the model looked" for s in at.subheader)

    at.file_uploader(key="diagnose_upload").upload("arm.png", image_bytes(synthetic_skin_image(12)), "image/png")
    at.run(timeout=120)
    assert not at.exception
    assert not at.error
    assert not any("Show the model's output anyway" in e.label for e in at.expander)
    assert len(at.get("plotly_chart")) == 2
    assert any(s.value == "Where the model looked" for s in at.subheader)


# --- real data (skipped without ../shared/data) ---------------------------------------------------------------------

def _shipped(model_id: str):
    card = load_card(REPO / "weights" / model_id)
    if not card.raw.get("scope"):
        pytest.skip(f"{model_id} has no scope check")
    return card


def _images(folder: Path, n: int, pattern: str = "*.jpg") -> list[Image.Image]:
    files = sorted(folder.rglob(pattern))[::7][:n]
    return [Image.open(f).convert("RGB") for f in files]


@pytest.mark.data
def test_real_natural_photos_score_above_real_validation_photos(shared_data: Path) -> None:
    import pandas as pd

    card = _shipped("clinical-fitz21")
    checker = get_checker(card)
    splits = pd.read_csv(card.path / "splits.csv")
    val = [Image.open(shared_data / "fitzpatrick17k" / p).convert("RGB")
           for p in splits.loc[splits["split"] == "val", "image"].head(40)]
    natural = _images(shared_data / "natural-photos" / "images", 40)
    inside = checker.scores(checker.features(val))
    outside = checker.scores(checker.features(natural))
    assert auroc(inside, outside) > 0.97
    assert np.mean(outside > checker.threshold) > 0.9


@pytest.mark.data
def test_real_modality_swap_is_flagged_both_ways(shared_data: Path) -> None:
    clinical, dermoscopy = _shipped("clinical-fitz21"), _shipped("dermoscopy-melanoma")
    derm_images = _images(shared_data / "ph2" / "images", 15) + _images(shared_data / "ham10000" / "images", 15)
    clinical_images = _images(shared_data / "pad-ufes-20" / "images", 15) + _images(
        shared_data / "dermnet" / "images", 15)
    to_clinical = get_checker(clinical).check(derm_images)
    to_derm = get_checker(dermoscopy).check(clinical_images)
    assert np.mean([not r.in_scope for r in to_clinical]) >= 0.9
    assert np.mean([not r.in_scope for r in to_derm]) >= 0.9
    named = [r.suggested_model for r in to_clinical if r.code == "wrong_modality"]
    assert named and set(named) == {"dermoscopy-melanoma"}
    # The page's picker shows names, the command line takes ids: the refusal gives both.
    name = dermoscopy.name
    assert all(f"Choose the model '{name}' (dermoscopy-melanoma) instead." in r.message
               for r in to_clinical if r.code == "wrong_modality")


@pytest.mark.parametrize("model_id", ["clinical-fitz21", "clinical-fitz21-ensemble", "clinical-fitz21-lite0",
                                      "clinical-fitz21-lite2", "clinical-common38", "clinical-common38-ensemble",
                                      "dermoscopy-melanoma"])
def test_shipped_scope_sidecars_load_and_match_their_figures(model_id: str) -> None:
    card = _shipped(model_id)
    checker = get_checker(card)
    assert checker is not None and checker.threshold == card.raw["scope"]["threshold"]
    rep = card.raw["scope"]["report"]
    # The stored figures are internally consistent with their own counts.
    for key in ("in_scope_test_kept", "natural_refused", "wrong_modality_flagged"):
        entry = rep[key]
        assert entry["n"] > 0 and 0 <= entry["rate"] <= 1
        assert entry["interval"][0] <= entry["rate"] <= entry["interval"][1]
    assert rep["in_scope_test_kept"]["n"] == card.metrics["n"]
    assert isinstance(load_scope_state(card)["modality.coef"], np.ndarray)  # read without torch


def test_model_page_shows_the_scope_check(scoped_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DERMLENS_WEIGHTS_DIR", str(scoped_root))
    at = AppTest.from_file(str(REPO / "app_pages" / "model.py")).run(timeout=60)
    assert not at.exception
    assert "What it refuses" in [h.value for h in at.header]
    assert any("out-of-scope check runs before every diagnosis" in m.value for m in at.markdown)


def test_model_page_draws_the_shipped_scope_roc(monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    card = _shipped("clinical-fitz21")
    monkeypatch.setenv("DERMLENS_WEIGHTS_DIR", str(REPO / "weights"))
    from dermlib.models import list_models

    at = AppTest.from_file(str(REPO / "app_pages" / "model.py")).run(timeout=120)
    index = [c.id for c in list_models(REPO / "weights")].index(card.id)
    at.selectbox(key="model_page_model").select_index(index).run(timeout=120)
    assert not at.exception
    titles = [json.loads(c.proto.spec)["layout"].get("title", {}).get("text", "") for c in at.get("plotly_chart")]
    assert any(t.startswith("Out-of-scope score") for t in titles)
    refused = card.raw["scope"]["report"]["natural_refused"]["rate"]
    assert any(f"refused {refused:.0%}" in m.value for m in at.markdown)


def test_damaged_scope_sidecar_in_the_cli(tmp_path: Path) -> None:
    root = tmp_path / "weights"
    folder = write_tiny_scope(write_tiny_model(root / "tiny-test", extra={"default": True}))
    (folder / SCOPE_FILE).write_bytes(b"not safetensors")
    photo = tmp_path / "arm.png"
    synthetic_skin_image(13).save(photo)
    out = subprocess.run([sys.executable, "-m", "dermlib", "predict", str(photo), "--json"], capture_output=True,
                         text=True, env={"DERMLENS_WEIGHTS_DIR": str(root), "PATH": "/usr/bin:/bin", **CACHE_ENV},
                         cwd=REPO, timeout=300)
    assert out.returncode == 2 and out.stdout == ""
    assert "scope statistics" in out.stderr and "checksum" in out.stderr


def test_knn_bank_in_int8_reads_back_and_scores_like_float() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 64))
    det = create_score("knn").fit(x, np.zeros(200, int))
    state = det.state()
    assert state["bank_int8"].dtype == torch.int8 and state["bank_scale"].shape == (200,)
    again = create_score("knn").load_state(state)
    probe = rng.normal(size=(10, 64))
    np.testing.assert_allclose(again.score(probe), det.score(probe), atol=1e-6)  # what ships is what was fitted
    exact = x / np.linalg.norm(x, axis=1, keepdims=True)
    z = probe / np.linalg.norm(probe, axis=1, keepdims=True)
    kth = np.sort(z @ exact.T, axis=1)[:, -det.neighbours]
    np.testing.assert_allclose(det.score(probe), np.sqrt(2 - 2 * kth), atol=2e-3)  # int8 costs < 0.002
    legacy = create_score("knn").load_state({"bank": torch.from_numpy(exact).half()})  # older float16 sidecars
    np.testing.assert_allclose(legacy.score(probe), np.sqrt(2 - 2 * kth), atol=2e-3)


def test_comparison_table_puts_each_models_scores_in_its_column() -> None:
    """The README's score comparison: AUROC / refused per model, n/a where a model was not scored that way."""
    from types import SimpleNamespace

    from dermlib.scope.report import comparison_table

    def card(model_id: str, comparison: dict) -> SimpleNamespace:
        return SimpleNamespace(id=model_id, raw={"scope": {"score": "knn", "extractor": {"size": 128},
                                                           "comparison": comparison}})

    single = card("one", {"knn@imagenet": {"auroc_natural": 0.9991, "natural_refused": 1.0},
                          "vim@model-features": {"auroc_natural": 0.9312, "natural_refused": 0.4571}})
    ensemble = card("two", {"knn@imagenet": {"auroc_natural": 0.5, "natural_refused": 0.25}})
    rows = comparison_table([single, ensemble, card("none", {})]).splitlines()
    assert rows[0] == "| score | features | `one` | `two` |"
    assert rows[2] == "| knn (shipped) | frozen ImageNet Lite0 (128 px) | 0.999 / 100% | 0.500 / 25% |"
    assert rows[3] == "| vim | model's pooled features | 0.931 / 46% | n/a |"
    assert len(rows) == 4
