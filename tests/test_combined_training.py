"""Training on a combined dataset, the watermark mask, per-source slices and the logo-shift measurement."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from dermlib.data import registry
from dermlib.data import synthetic as syn
from dermlib.data.combined import CombinedAdapter, CombinedPart
from dermlib.errors import CardError, ModelError
from dermlib.evaluate.slices import merge_subtypes, pair_ranking, slice_summary
from dermlib.evaluate.watermark import LOGO_BOX, Logo, top1_shift
from dermlib.masking import DERMNET_WATERMARK_BOX, MaskSpec
from dermlib.models import load_model
from dermlib.testing import synthetic_skin_image, write_tiny_model
from dermlib.train.data import decode_resized
from dermlib.train.loop import TrainConfig, train
from dermlib.train.pretrained import create_backbone, init_from_model

BOX = [0.0, 0.6, 0.5, 1.0]


def test_mask_fills_the_box_with_the_median_of_the_rest() -> None:
    pixels = np.zeros((100, 200, 3), dtype=np.uint8)
    pixels[:, :, 0] = 200  # a red photo
    pixels[70:, :40] = 255  # a white "logo" inside the box
    spec = MaskSpec(((0.0, 0.6, 0.5, 1.0),))
    out = spec.apply_array(pixels)
    assert (out[60:, :100] == [200, 0, 0]).all()  # the box holds the photo's own colour, logo gone
    assert (out[:60] == pixels[:60]).all() and (out[:, 100:] == pixels[:, 100:]).all()  # the rest untouched
    assert spec.pixel_boxes(341, 256) == [(0, 153, 171, 256)]
    assert MaskSpec(((0.0, 0.6, 0.5, 1.0),), fill="grey").apply_array(pixels)[99, 0].tolist() == [128] * 3


@pytest.mark.parametrize("exact_limit", [None, 1])  # OpenCV's histograms, then numpy's (forced by a limit of 1)
def test_median_fill_equals_numpys_median(exact_limit: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    import dermlib.masking as masking

    if exact_limit is not None:
        monkeypatch.setattr(masking, "EXACT_FLOAT_COUNTS", exact_limit)
    rng = np.random.default_rng(3)
    cases = [(57, 91, [(0.0, 0.64, 0.46, 1.0)]), (200, 120, [(0.1, 0.0, 0.3, 0.5), (0.6, 0.6, 1, 1)])]
    for height, width, boxes in cases:
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        spec = MaskSpec(tuple(boxes))
        keep = np.ones((height, width), dtype=bool)
        for x0, y0, x1, y1 in spec.pixel_boxes(width, height):
            keep[y0:y1, x0:x1] = False
        expected = np.median(pixels[keep], axis=0).astype(np.uint8)
        x0, y0, x1, y1 = spec.pixel_boxes(width, height)[0]
        assert (spec.apply_array(pixels)[y0:y1, x0:x1] == expected).all()


@pytest.mark.parametrize("box", [[0.5, 0.0, 0.2, 1.0], [0, 0, 1.2, 1], [0, 0, 1]])
def test_bad_mask_boxes_are_refused(box: list[float], tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        MaskSpec((tuple(box),))
    with pytest.raises(CardError, match="mask"):  # the card schema refuses it too (here when it is saved)
        write_tiny_model(tmp_path / "m", extra={"preprocessing": {
            "input_size": [3, 64, 64], "mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bicubic",
            "mask": {"boxes": [box]}}})


def test_inference_and_training_apply_the_card_mask(tmp_path: Path) -> None:
    pre = {"input_size": [3, 64, 64], "mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bicubic",
           "crop_pct": 1.0, "crop_mode": "center", "mask": MaskSpec((tuple(BOX),)).to_card("test")}
    loaded = load_model(write_tiny_model(tmp_path / "masked", extra={"preprocessing": pre}), device="cpu")
    photo = synthetic_skin_image(seed=3, size=(128, 128))
    logo = photo.copy()
    logo.paste((255, 255, 255), (5, 90, 50, 120))  # inside the box
    # Whatever sits inside the box, the model sees the same image and gives the same answer.
    assert np.array_equal(np.asarray(loaded.model_view(photo)), np.asarray(loaded.model_view(logo)))
    assert np.allclose(loaded.predict_proba([photo]), loaded.predict_proba([logo]))
    path = tmp_path / "logo.png"
    logo.save(path)
    decoded = decode_resized(str(path), 64, MaskSpec((tuple(BOX),))).permute(1, 2, 0).numpy()
    assert (decoded[48:, :24] == decoded[60, 5]).all()  # filled box, no white logo left
    assert decoded[48:, :24].max() < 250


def test_pair_ranking_counts_which_of_two_is_ranked_higher() -> None:
    classes = ["eczema", "psoriasis", "other"]
    probs = np.array([[0.5, 0.2, 0.3], [0.1, 0.2, 0.7], [0.3, 0.6, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    labels = ["eczema", "eczema", "psoriasis", "psoriasis", "other"]
    out = pair_ranking(probs, labels, classes)
    # Row 2 (eczema, ranked psoriasis higher) and row 4 (psoriasis, ranked eczema higher) are wrong;
    # the "other" row does not count.
    assert (out["n"], out["correct"], out["rate"]) == (4, 2, 0.5)
    assert out["by_class"] == {"eczema": 0.5, "psoriasis": 0.5}
    assert out["rate_ci95"][0] < 0.5 < out["rate_ci95"][1]
    with pytest.raises(ValueError):
        pair_ranking(probs, labels, ["a", "b", "c"])


def test_slice_summary_reports_each_source() -> None:
    classes = ["eczema", "psoriasis", "acne"]
    probs = np.eye(3)[[0, 1, 2, 0, 2]] * 0.9 + 0.1 / 3
    y = np.array([0, 1, 2, 1, 2])
    out = slice_summary(probs, y, ["a", "a", "b", "b", "b"], classes, ["non-neoplastic"] * 3,
                        fitzpatrick=[None, None, 1, 2, 6])
    assert set(out["by_source"]) == {"a", "b"}
    assert out["by_source"]["a"]["top1_accuracy"] == 1.0
    assert out["by_source"]["b"]["top1_accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert out["by_source"]["b"]["by_skin_type"]["groups"]["I-II"]["n"] == 2
    assert out["eczema_vs_psoriasis"]["all"]["n"] == 3 and out["eczema_vs_psoriasis"]["b"]["rate"] == 0.0
    assert "by_source_categories" not in out  # no sub-type class beside its parent


def test_subtypes_fold_into_their_parent_category() -> None:
    classes = ["acne", "acne-vulgaris", "psoriasis", "dyshidrotic-eczema"]
    probs = np.array([[0.2, 0.5, 0.3, 0.0],   # acne photo: 0.7 acne once the sub-type is folded in
                      [0.1, 0.3, 0.6, 0.0],   # acne photo: psoriasis still wins (0.4 < 0.6)
                      [0.1, 0.1, 0.8, 0.0],   # psoriasis photo
                      [0.6, 0.0, 0.0, 0.4]])  # acne-vulgaris photo, now an acne photo
    y = np.array([0, 0, 2, 1])
    m_probs, m_y, ids, risk, folded = merge_subtypes(probs, y, classes, ["a", "a", "b", "c"])
    # dyshidrotic-eczema has no "eczema" class here, so it stays a class of its own.
    assert folded == {"acne-vulgaris": "acne"} and ids == ["acne", "psoriasis", "dyshidrotic-eczema"]
    assert risk == ["a", "b", "c"] and m_y.tolist() == [0, 0, 1, 0]
    assert np.allclose(m_probs[0], [0.7, 0.3, 0.0]) and np.allclose(m_probs.sum(axis=1), 1.0)
    out = slice_summary(probs, y, ["d"] * 4, classes, ["a", "a", "b", "c"])
    assert out["by_source"]["d"]["top1_accuracy"] == pytest.approx(0.25)  # only the psoriasis row
    assert out["by_source_categories"]["d"]["top1_accuracy"] == pytest.approx(0.75)
    assert out["folded_subtypes"] == {"acne-vulgaris": "acne"}


def test_logo_is_pasted_inside_the_watermark_box_and_the_mask_removes_it(tmp_path: Path) -> None:
    logo = Logo(rgb=np.full((20, 20, 3), 255.0), alpha=np.ones((20, 20)))
    photo = Image.new("RGB", (341, 256), (150, 90, 80))
    pasted = np.asarray(logo.paste(photo)).astype(int) - np.asarray(photo).astype(int)
    ys, xs = np.nonzero(np.abs(pasted).sum(axis=2))
    _, y0, x1, y1 = DERMNET_WATERMARK_BOX
    assert xs.min() >= round(LOGO_BOX[0] * 341) - 1 and xs.max() < x1 * 341
    assert ys.min() >= y0 * 256 and ys.max() < y1 * 256
    pre = {"input_size": [3, 64, 64], "mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bicubic",
           "mask": MaskSpec((DERMNET_WATERMARK_BOX,)).to_card()}
    loaded = load_model(write_tiny_model(tmp_path / "m", extra={"preprocessing": pre}), device="cpu")
    photos = [synthetic_skin_image(seed=s, size=(341, 256)) for s in range(4)]
    masked = top1_shift(loaded, photos, logo)
    assert masked["n"] == 4 and masked["changed"] == 0 and masked["masked"] is True
    assert masked["mean_abs_prob_change"] == pytest.approx(0.0, abs=1e-6)
    unmasked = top1_shift(loaded, photos, logo, use_mask=False)
    assert unmasked["masked"] is False and unmasked["mean_abs_prob_change"] > 0
    assert loaded.mask is not None  # restored after the unmasked run


def test_init_from_copies_the_backbone_and_zeroes_the_head(tmp_path: Path) -> None:
    source = write_tiny_model(tmp_path / "src", architecture="test_efficientnet", num_classes=4)
    model, _ = create_backbone("test_efficientnet", 7, "none")
    note = init_from_model(model, str(source), "test_efficientnet")
    src = load_model(source, device="cpu").model.state_dict()
    state = model.state_dict()
    assert torch.equal(state["conv_stem.weight"], src["conv_stem.weight"])
    assert state["classifier.weight"].shape[0] == 7 and not state["classifier.weight"].any()
    assert "tiny-test" in note
    with pytest.raises(ModelError, match="single"):
        init_from_model(create_backbone("test_vit", 7, "none")[0], str(source), "test_vit")


def test_init_from_keeps_the_head_rows_of_shared_classes(tmp_path: Path) -> None:
    source = write_tiny_model(tmp_path / "src", architecture="test_efficientnet", num_classes=4)
    src = load_model(source, device="cpu").model.state_dict()
    model, _ = create_backbone("test_efficientnet", 3, "none")
    note = init_from_model(model, str(source), "test_efficientnet", ["class-2", "new", "class-0"])
    weight, bias = model.state_dict()["classifier.weight"], model.state_dict()["classifier.bias"]
    assert torch.equal(weight[0], src["classifier.weight"][2]) and torch.equal(weight[2], src["classifier.weight"][0])
    assert torch.equal(bias[0], src["classifier.bias"][2])
    assert not weight[1].any() and float(bias[1]) == 0.0  # the new class starts at zero
    assert "2 classes" in note


def test_a_continued_run_states_its_history_as_one_chain(tmp_path: Path) -> None:
    # The source was itself continued from another model: its note must join the chain, not nest inside it.
    earlier = "all weights of older: ImageNet weights, then 2 epochs on this training split (as older)"
    source = write_tiny_model(tmp_path / "src", architecture="test_efficientnet", num_classes=4,
                              extra={"training": {"initial_weights": earlier, "epochs_run": 3}})
    src = load_model(source, device="cpu").model.state_dict()
    model, _ = create_backbone("test_efficientnet", 4, "none")
    note = init_from_model(model, str(source), "test_efficientnet", [f"class-{i}" for i in range(4)])
    assert torch.equal(model.state_dict()["classifier.weight"], src["classifier.weight"])  # all weights kept
    assert note == ("all weights of tiny-test: ImageNet weights, then 2 epochs on this training split (as older), "
                    "then 3 epochs on this training split (as tiny-test)")


def test_training_on_a_combined_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "data"
    fitz = syn.make_fitzpatrick17k(root / "fitz", n_images=24, n_metadata_only=0)
    syn.make_dermnet_nz(root / "dn", per_class=8, n_copies=1)
    from dermlib.data import load_index

    fitz_index = load_index("fitzpatrick17k", fitz)
    keys = [str(Path(p).relative_to(fitz.resolve())) for p in fitz_index["image_path"]]
    fixed = pd.DataFrame({"image": keys, "label": fitz_index["label"], "group_id": keys,
                          "split": (["train", "train", "val", "test"] * 6)[: len(keys)]})
    fixed.to_csv(tmp_path / "fixed.csv", index=False)
    adapter = CombinedAdapter("toy-combined", "Toy", "Toy", parts=(
        CombinedPart("fitzpatrick17k", "fitz", fixed_split=str(tmp_path / "fixed.csv")),
        CombinedPart("dermnet-nz", "dn", drop_copies=True)))
    monkeypatch.setitem(registry.DATASETS, "toy-combined", adapter)
    out = tmp_path / "weights" / "toy"
    train(TrainConfig(data_root=str(root), out=str(out), dataset="toy-combined", architecture="test_efficientnet",
                      pretrained="none", img_size=64, epochs=1, batch_size=8, workers=1, run_dir=str(tmp_path / "run"),
                      mask_boxes=[list(DERMNET_WATERMARK_BOX)]))
    card = json.loads((out / "card.json").read_text())
    assert card["preprocessing"]["mask"]["boxes"] == [list(DERMNET_WATERMARK_BOX)]
    assert card["training"]["dataset"] == "toy-combined"
    assert "command" in card["training"] and card["training"]["wall_seconds"] > 0
    splits = pd.read_csv(out / "splits.csv")
    fitz_rows = splits[splits["image"].str.startswith("fitz/")]
    assert dict(zip(fitz_rows["image"].str.removeprefix("fitz/"), fitz_rows["split"], strict=True)) == \
        dict(zip(fixed["image"], fixed["split"], strict=True))
    dn_rows = splits[splits["image"].str.startswith("dn/")]
    assert len(dn_rows) == 3 * 8 - 1 and set(dn_rows["split"]) == {"train", "val", "test"}
    # The near-duplicate pair of each category stays on one side of the split.
    assert dn_rows.groupby("group_id")["split"].nunique().max() == 1
    metrics = card["metrics"]
    assert set(metrics["by_source"]) == {"fitzpatrick17k", "dermnet-nz"}
    assert metrics["by_source"]["fitzpatrick17k"]["n"] + metrics["by_source"]["dermnet-nz"]["n"] == metrics["n"]
    assert metrics["eczema_vs_psoriasis"]["all"]["n"] == metrics["eczema_vs_psoriasis"]["dermnet-nz"]["n"]
    assert load_model(out, device="cpu").mask == MaskSpec((DERMNET_WATERMARK_BOX,))
