"""Lesion segmentation: the card's second task, training, inference, the crop, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dermlib.cli import main
from dermlib.errors import CardError, ModelError
from dermlib.models import get_card, list_models, scan_models
from dermlib.models.card import ModelCard, load_card
from dermlib.segment.crop import crop_box, crop_to_lesion
from dermlib.segment.data import read_mask, stratified_split
from dermlib.segment.model import load_segmenter
from dermlib.segment.train import SegTrainConfig, dice_iou, train_segmenter
from dermlib.testing import synthetic_lesion_pair, write_mask_dataset, write_tiny_model, write_tiny_segmenter


@pytest.fixture(scope="module")
def seg_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A weights folder with one classifier and one segmentation model."""
    root = tmp_path_factory.mktemp("segweights")
    write_tiny_model(root / "tiny-test", extra={"default": True})
    write_tiny_segmenter(root / "tiny-seg")
    return root


def test_segmentation_card_round_trip(seg_weights: Path) -> None:
    card = load_card(seg_weights / "tiny-seg")
    assert card.is_segmentation and card.classes == ()
    assert card.segmentation["encoder"] == "tu-tf_efficientnet_lite0"
    assert card.architecture_label == "Unet on tf_efficientnet_lite0"
    again = ModelCard.from_dict(json.loads((seg_weights / "tiny-seg" / "card.json").read_text()))
    assert again.segmentation == card.segmentation and again.preprocessing == card.preprocessing


@pytest.mark.parametrize("change, message", [
    (lambda c: c["segmentation"].pop("threshold"), "segmentation.threshold"),
    (lambda c: c["segmentation"].update(threshold=1.5), "segmentation.threshold"),
    (lambda c: c.pop("segmentation"), "missing field 'segmentation'"),
    (lambda c: c["preprocessing"].update(input_size=[224, 224]), "input_size"),
])
def test_segmentation_card_is_validated(seg_weights: Path, change, message: str) -> None:
    raw = json.loads((seg_weights / "tiny-seg" / "card.json").read_text())
    change(raw)
    with pytest.raises(CardError, match=message):
        ModelCard.from_dict(raw)


def test_registry_keeps_the_two_tasks_apart(seg_weights: Path) -> None:
    assert [c.id for c in list_models(seg_weights)] == ["tiny-test"]
    assert [c.id for c in list_models(seg_weights, kind="segmentation")] == ["tiny-seg"]
    assert {c.id for c in scan_models(seg_weights, kind="all")[0]} == {"tiny-test", "tiny-seg"}
    assert get_card("tiny-seg", seg_weights).is_segmentation


def test_loading_a_classifier_as_segmenter_is_refused(seg_weights: Path) -> None:
    with pytest.raises(ModelError, match="classifier"):
        load_segmenter("tiny-test", seg_weights)


def test_segmenter_mask_has_the_photo_size(seg_weights: Path) -> None:
    segmenter = load_segmenter("tiny-seg", seg_weights)
    image, _ = synthetic_lesion_pair(size=(130, 90))
    prob = segmenter.probability(image)
    assert prob.shape == (90, 130) and prob.dtype == np.float32
    assert 0 <= prob.min() <= prob.max() <= 1
    assert segmenter.segment(image).dtype == bool


def test_onnx_and_torch_agree(seg_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image, _ = synthetic_lesion_pair(seed=3)
    fast = load_segmenter("tiny-seg", seg_weights).probability(image)
    monkeypatch.setenv("DERMLENS_PREDICT_BACKEND", "torch")
    slow = load_segmenter("tiny-seg", seg_weights)
    assert slow._onnx() is None
    np.testing.assert_allclose(slow.probability(image), fast, atol=1e-4)


def test_tiny_unet_training_improves_the_mask(tmp_path: Path) -> None:
    data = write_mask_dataset(tmp_path / "blobs", n_per_diagnosis=6)
    common = dict(data_root=str(data), decoder_channels=(32, 16, 16, 8, 8), img_size=64, batch_size=6,
                  pretrained="none", lr=1e-2, epochs=2, patience=5)
    before = train_segmenter(SegTrainConfig(out=str(tmp_path / "m0"), run_dir=str(tmp_path / "r0"), max_steps=0,
                                            **common))
    after = train_segmenter(SegTrainConfig(out=str(tmp_path / "m2"), run_dir=str(tmp_path / "r2"), max_steps=2,
                                           **common))
    card0, card2 = load_card(before), load_card(after)
    assert card2.is_segmentation and card2.training["split"] == {"train": 12, "val": 3, "test": 3}
    assert card2.metrics["val"]["dice"] > card0.metrics["val"]["dice"] + 0.05
    splits = (after / "splits.csv").read_text().splitlines()
    assert splits[0] == "image_id,diagnosis,split" and len(splits) == 19
    assert set(card2.metrics["test"]["by_diagnosis"]) == {"common nevus", "atypical nevus", "melanoma"}
    assert (tmp_path / "r2" / "summary.csv").is_file()


def test_stratified_split_keeps_each_diagnosis_on_every_side(tmp_path: Path) -> None:
    import pandas as pd

    index = pd.DataFrame({"image_id": [f"I{i:03d}" for i in range(40)],
                          "diagnosis": ["a"] * 20 + ["b"] * 15 + ["c"] * 5})
    split = stratified_split(index, seed=1)
    counts = split.groupby(["diagnosis", "split"]).size().unstack()
    assert (counts > 0).all().all()
    assert counts.loc["a"].to_dict() == {"test": 4, "train": 12, "val": 4}
    assert split.equals(stratified_split(index, seed=1))


def test_dice_iou_known_values() -> None:
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[:, :5] = True
    b[:, :5] = True
    assert dice_iou(a, b) == (1.0, 1.0)
    b[:, :] = False
    b[:, 5:] = True
    assert dice_iou(a, b) == (0.0, 0.0)
    b[:, :] = False
    b[:, 2:7] = True  # 30 shared of 50 + 50
    assert dice_iou(a, b) == pytest.approx((0.6, 30 / 70))


def test_crop_box_is_square_with_margin_and_inside_the_photo() -> None:
    mask = np.zeros((100, 200), bool)
    mask[40:60, 90:130] = True  # 40 wide, 20 high
    x0, y0, x1, y1 = crop_box(mask, margin=0.25)
    assert x1 - x0 == y1 - y0 == 60
    assert x0 <= 90 and x1 >= 130 and y0 <= 40 and y1 >= 60
    mask[:] = False
    mask[0:30, 0:30] = True  # in the corner: the box is shifted inside, not clipped smaller
    box = crop_box(mask, margin=0.5)
    assert box[0] == 0 and box[1] == 0 and box[2] - box[0] == box[3] - box[1] == 60


def test_crop_to_lesion_keeps_whole_photo_without_a_lesion() -> None:
    image = Image.new("RGB", (120, 100), "pink")
    result = crop_to_lesion(image, np.zeros((100, 120), bool))
    assert result.box is None and result.image is image and "whole photo" in result.reason
    mask = np.zeros((100, 120), bool)
    mask[30:50, 40:70] = True
    cropped = crop_to_lesion(image, mask)
    assert cropped.box is not None and cropped.image.size[0] == cropped.image.size[1] < 100


def test_segment_cli_writes_masks_and_json(seg_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("DERMLENS_WEIGHTS_DIR", str(seg_weights))
    image, _ = synthetic_lesion_pair(size=(150, 110))
    good = tmp_path / "lesion.png"
    image.save(good)
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    code = main(["segment", str(good), str(bad), "--masks-to", str(tmp_path / "masks"), "--json"])
    out, err = capsys.readouterr()
    assert code == 1 and "notes.jpg" in err and "Traceback" not in err
    record = json.loads(out.strip().splitlines()[0])
    assert record["image"] == str(good) and record["model"] == "tiny-seg"
    assert {"area_fraction", "bbox", "asymmetry", "border_irregularity", "colours"} <= set(record)
    mask = Image.open(tmp_path / "masks" / "lesion.png")
    assert mask.size == (150, 110) and set(np.unique(np.asarray(mask.convert("L")))) <= {0, 255}
    assert read_mask(tmp_path / "masks" / "lesion.png").mean() == pytest.approx(record["area_fraction"] or 0,
                                                                                 abs=1e-3)


def test_segment_cli_refuses_a_classifier(seg_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("DERMLENS_WEIGHTS_DIR", str(seg_weights))
    image, _ = synthetic_lesion_pair()
    image.save(tmp_path / "a.png")
    assert main(["segment", str(tmp_path / "a.png"), "--model", "tiny-test"]) == 2
    assert "classifier" in capsys.readouterr().err


def test_models_cli_lists_the_segmenter(seg_weights: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("DERMLENS_WEIGHTS_DIR", str(seg_weights))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "tiny-seg" in out and "lesion segmentation" in out
