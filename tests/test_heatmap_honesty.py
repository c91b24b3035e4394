"""Honest heatmaps (issue 15): one colour scale, class-agnostic maps once, faithfulness, plain words."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import streamlit as st
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from dermlib.explain.faithfulness import Faithfulness, faithfulness, random_block_mask, top_mask
from dermlib.explain.overlay import colour_bar, shared_scale
from dermlib.inference import ClassScore, MemberVote, Prediction
from dermlib.testing import image_bytes, synthetic_skin_image
from dermlib.ui.model_summary import agreement_headline, plain_uncertainty

PAGE = str(Path(__file__).resolve().parents[1] / "app_pages" / "diagnose.py")


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    st.cache_data.clear()
    st.cache_resource.clear()


def test_shared_scale_makes_intensity_comparable_across_classes() -> None:
    maps = np.ones((3, 4, 4), dtype=np.float32)  # the engine scales every map to its own maximum of 1
    scaled = shared_scale(maps, [0.9, 0.09, 0.01])
    assert scaled[0].max() == pytest.approx(1.0)
    assert scaled[1].max() == pytest.approx(0.1)
    assert scaled[2].max() == pytest.approx(0.01 / 0.9)
    assert shared_scale(maps, [0.0, 0.0, 0.0]).max() == 0.0


def test_colour_bar_runs_from_cold_to_hot() -> None:
    bar = np.asarray(colour_bar(100, 10))
    assert bar.shape == (10, 100, 3)
    assert bar[0, 0, 2] > bar[0, 0, 0] and bar[0, -1, 0] > bar[0, -1, 2]  # blue at 0, red at 1 (jet)


def test_removal_masks_take_the_asked_share() -> None:
    cam = np.zeros((7, 7), np.float32)
    cam[:2, :] = 1.0
    mask = top_mask(cam, (70, 70), 0.2)
    assert mask.mean() == pytest.approx(0.2, abs=0.01) and not mask[25:].any()  # only from the hot rows
    random = random_block_mask((96, 96), 0.2, block=16, seed=3)
    assert random.mean() == pytest.approx(0.2, abs=0.01)
    assert np.array_equal(random, random_block_mask((96, 96), 0.2, block=16, seed=3))


class _LeftHalfModel(torch.nn.Module):
    """Class 0's logit rises with the redness of the left half of the image only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = x[:, 0, :, : x.shape[3] // 2].mean(dim=(1, 2)) - x[:, 2, :, : x.shape[3] // 2].mean(dim=(1, 2))
        return torch.stack([8 * left, torch.zeros_like(left)], dim=1)


def _fake_loaded(size: int = 64) -> SimpleNamespace:
    net = _LeftHalfModel()

    def normalize(img: Image.Image) -> torch.Tensor:
        return torch.from_numpy(np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0)

    return SimpleNamespace(
        model_view=lambda img: img.resize((size, size)), normalize=normalize, _to_device=lambda b: b,
        logits=net, run_with_fallback=lambda fn: fn(), card=SimpleNamespace(temperature=1.0))


def test_faithfulness_tells_a_map_on_the_evidence_from_one_beside_it() -> None:
    # Red patches on the left (the evidence) on a grey background, so removing the red lowers class 0.
    img = np.full((64, 64, 3), 120, np.uint8)
    img[16:40, 4:28] = (230, 20, 20)
    image = Image.fromarray(img)
    on_evidence = np.zeros((8, 8), np.float32)
    on_evidence[2:5, 0:4] = 1.0
    beside = np.zeros((8, 8), np.float32)
    beside[:, 4:] = 1.0
    good, bad = faithfulness(_fake_loaded(), image, [0, 0], np.stack([on_evidence, beside]), fraction=0.2)
    assert good.probability == bad.probability
    assert good.after_top < good.probability - 0.05 and good.verdict == "faithful"
    assert bad.after_top == pytest.approx(bad.probability, abs=1e-3)  # nothing the model uses was removed
    assert bad.score < good.score and bad.verdict != "faithful"
    assert "most highlighted pixels" in good.sentence("Class 0")


def test_faithfulness_on_a_real_tiny_model(tiny_loaded) -> None:
    image = synthetic_skin_image(4)
    maps = np.random.default_rng(0).random((2, 6, 6)).astype(np.float32)
    results = faithfulness(tiny_loaded, image, [0, 1], maps)
    probs = tiny_loaded.predict_proba([image])[0]
    assert [r.probability for r in results] == pytest.approx([probs[0], probs[1]], abs=1e-4)
    assert all(0 <= r.after_top <= 1 and 0 <= r.after_random <= 1 for r in results)
    assert set(results[0].to_dict()) == {"probability", "after_top", "after_random", "score", "verdict"}


def _prediction(probs, reasons=(), members=()) -> Prediction:
    top = tuple(ClassScore(f"c{i}", f"Condition {i}", p, "benign") for i, p in enumerate(probs))
    return Prediction(model_id="m", probabilities=tuple(probs), top_k=top, risk={"benign": 1.0},
                      uncertain=bool(reasons), reasons=tuple(reasons), members=tuple(members))


def test_plain_words_for_abstention_and_agreement() -> None:
    pred = _prediction([0.31, 0.3, 0.2], reasons=(
        "the most likely class has only 31% probability (needs at least 40%)",
        "the probabilities are spread over many classes (entropy 0.91 > 0.80)"))
    words = plain_uncertainty(pred)
    assert words == ["no condition stands out: the most likely one, Condition 0, has only 31%",
                     "the model is split between several conditions"]
    assert not any("entropy" in w for w in words)
    vote = ClassScore("c0", "Condition 0", 0.5, "benign")
    other = ClassScore("c1", "Condition 1", 0.5, "benign")
    members = [MemberVote("lite0", vote, True, 224)] * 4 + [MemberVote("lite2", other, False, 260)] * 2
    assert agreement_headline(_prediction([0.6, 0.4], members=members)).startswith(
        "4 of 6 networks pick Condition 0")
    assert agreement_headline(_prediction([0.6, 0.4], members=members[3:])).startswith(
        "Only 1 of 3 networks picks Condition 0")
    assert agreement_headline(_prediction([0.6, 0.4], members=members[4:])).startswith(
        "None of the 2 networks picks Condition 0 on its own")
    assert agreement_headline(_prediction([0.6, 0.4], members=members[:4])) == "All 4 networks agree on Condition 0."
    assert agreement_headline(_prediction([0.6, 0.4])) is None


def _upload(at: AppTest) -> AppTest:
    at.file_uploader(key="diagnose_upload").upload("skin.png", image_bytes(synthetic_skin_image(1)), "image/png")
    return at.run(timeout=120)


def test_page_draws_one_scale_a_colour_bar_and_class_agnostic_maps_once(tiny_weights_env: Path) -> None:
    at = _upload(AppTest.from_file(PAGE).run(timeout=60))
    assert not at.exception
    captions = [str(e.proto) for e in at.get("image")]
    assert any("Colour scale" in c for c in captions)
    assert "All maps share one colour scale" in "\n".join(c.value for c in at.caption)
    n_class_maps = sum("%)" in c for c in captions)
    assert n_class_maps == 3
    at.selectbox(key="diagnose_cam_method").set_value("eigencam").run(timeout=120)
    assert not at.exception
    captions = [str(e.proto) for e in at.get("image")]
    assert sum("the same map for every class" in c for c in captions) == 1
    assert sum("%)" in c for c in captions) == 0


def test_page_faithfulness_check_on_request(tiny_weights_env: Path) -> None:
    at = _upload(AppTest.from_file(PAGE).run(timeout=60))
    assert not at.exception and not any(t.key == "diagnose_faithfulness" and t.value for t in at.toggle)
    at.toggle(key="diagnose_faithfulness").set_value(True).run(timeout=120)
    assert not at.exception
    table = at.table[-1].value
    # The verdict second: in the page's column a wide table had cut it off.
    assert list(table.columns) == ["Class", "Verdict", "Score", "Probability", "Hot 20% out",
                                   "Random 20% out"]
    assert len(table) == 3
    assert set(table["Verdict"]) <= {"faithful", "no better than chance", "worse than chance"}


def test_page_abstains_in_plain_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dermlib.testing import write_tiny_model

    strict = {"temperature": 1.0, "min_top1_probability": 0.99, "max_normalized_entropy": 0.01}
    write_tiny_model(tmp_path / "w" / "strict", extra={"default": True, "calibration": strict})
    monkeypatch.setenv("DERMLENS_WEIGHTS_DIR", str(tmp_path / "w"))
    at = _upload(AppTest.from_file(PAGE).run(timeout=60))
    warnings = "\n".join(w.value for w in at.warning)
    assert "not sure" in warnings and "split between several conditions" in warnings
    assert "entropy" not in warnings
    assert "Abstention rule:" in "\n".join(c.value for c in at.caption)


def test_faithfulness_verdicts() -> None:
    assert Faithfulness(0.6, 0.1, 0.5).verdict == "faithful"
    assert Faithfulness(0.6, 0.5, 0.5).verdict == "no better than chance"
    assert Faithfulness(0.6, 0.55, 0.3).verdict == "worse than chance"


def test_a_class_agnostic_map_is_never_described_as_evidence_for_a_class() -> None:
    from dermlib.explain.methods import CAM_METHODS

    for spec in CAM_METHODS.values():
        if spec.class_specific:
            assert "raised the score of each class" in spec.reading_note and "evidence" in spec.colour_scale
        else:  # EigenCAM: one map whatever the answer
            assert "raised the score" not in spec.reading_note and "not tied to any class" in spec.reading_note
            assert "evidence" not in spec.colour_scale
    assert not CAM_METHODS["eigencam"].class_specific


def test_faithfulness_points_never_read_minus_zero() -> None:
    from dermlib.explain.faithfulness import signed_points
    from dermlib.report.text import format_points

    assert [signed_points(v) for v in (-0.004, 0.0, 0.004, 0.05, -0.031)] == ["0", "0", "0", "+5", "-3"]
    assert format_points(-0.002) == "0 points" and format_points(0.2) == "+20 points"
    assert "Score 0 points" in Faithfulness(0.5, 0.498, 0.5).sentence("Eczema")
