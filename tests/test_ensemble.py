"""Ensembles: built by the CLI from trained members, averaged logits, calibrated, explained as one model."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit as st
import torch
import torch.nn.functional as F
from pytorch_grad_cam import GradCAM, HiResCAM, ScoreCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from streamlit.testing.v1 import AppTest

from dermlib.cli import main
from dermlib.data.synthetic import make_fitzpatrick17k
from dermlib.errors import CardError, ModelError
from dermlib.evaluate.reports import model_facts
from dermlib.explain import explain
from dermlib.inference import ClassScore, MemberVote, Prediction, predict
from dermlib.models import build_model, load_model
from dermlib.models.card import ModelCard, load_card
from dermlib.testing import image_bytes, synthetic_skin_image
from dermlib.train.ensemble import build_ensemble
from dermlib.ui.model_summary import member_agreement

PAGE = str(Path(__file__).resolve().parents[1] / "app_pages" / "diagnose.py")


def _train(data: Path, out: Path, architecture: str, size: int) -> Path:
    code = main(["train", "--data-root", str(data), "--dataset", "fitzpatrick17k", "--out", str(out),
                 "--run-dir", str(out.parent / f"run-{out.name}"), "--architecture", architecture,
                 "--pretrained", "none", "--img-size", str(size), "--epochs", "1", "--batch-size", "8",
                 "--workers", "1", "--no-hflip-tta"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Dataset and two members of different architectures and input sizes, trained on the same split."""
    root = tmp_path_factory.mktemp("ens")
    data = make_fitzpatrick17k(root / "fitz", n_images=45, n_metadata_only=0)
    first = _train(data, root / "weights" / "m-effnet", "test_efficientnet", 64)
    second = _train(data, root / "weights" / "m-resnet", "test_resnet", 48)
    return data, first, second


@pytest.fixture(scope="module")
def ensemble32(members: tuple[Path, Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    data, first, second = members
    out = tmp_path_factory.mktemp("ens32") / "ens"
    assert main(["ensemble", str(first), str(second), "--out", str(out), "--data", str(data),
                 "--dtype", "float32", "--weights", "3", "1"]) == 0
    return out


def test_hide_test_prints_validation_figures_and_still_writes_the_test_ones(
        members: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Candidates chosen on validation under a rule fixed in advance: building one must not show its test line."""
    data, first, second = members
    out = tmp_path / "candidate"
    assert main(["ensemble", str(first), str(second), "--out", str(out), "--data", str(data), "--hide-test"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "evaluation.json").read_text())
    assert f"val: top-1 {report['val']['top1_accuracy']:.3f}" in printed
    assert "test: top-1" not in printed and "test: not printed (--hide-test)" in printed
    assert report["test"]["n"] > 0 and load_card(out).metrics["top1_accuracy"] == report["test"]["top1_accuracy"]


def test_cli_writes_a_calibrated_evaluated_ensemble(members: tuple[Path, Path, Path], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    data, first, second = members
    out = tmp_path / "weights" / "both"
    assert main(["ensemble", str(first), str(second), "--out", str(out), "--data", str(data)]) == 0
    assert "Ensemble written to" in capsys.readouterr().out
    card = load_card(out)
    assert card.is_ensemble and card.architecture_label == "ensemble of test_efficientnet + test_resnet"
    assert card.cam_layers == ["members.0.bn2", "members.1.layer4"]
    assert card.preprocessing["input_size"] == [3, 64, 64]
    assert [m["input_size"] for m in card.members] == [[3, 64, 64], [3, 48, 48]]
    assert card.class_ids == load_card(first).class_ids
    assert card.calibration["temperature"] > 0 and "min_top1_probability" in card.calibration
    stats = card.calibration["member_agreement"]  # measured on validation, quoted on the Diagnose page
    assert stats["n"] == json.loads((out / "evaluation.json").read_text())["val"]["n"]
    assert 0 <= stats["disagree_rate"] <= 1
    assert card.metrics["split"] == "test" and card.metrics["n"] == load_card(first).metrics["n"]
    assert json.loads((out / "evaluation.json").read_text())["test"]["n"] == card.metrics["n"]
    assert (out / "splits.csv").read_bytes() == (first / "splits.csv").read_bytes()
    # float16 storage: about half the members' float32 bytes together.
    member_bytes = (first / "model.safetensors").stat().st_size + (second / "model.safetensors").stat().st_size
    assert card.weights["dtype"] == "float16"
    assert card.weights["bytes"] < 0.55 * member_bytes
    assert len(card.training["ensemble_of"]) == 2
    facts = model_facts(card)  # what the Model page shows
    assert facts["Architecture"] == "ensemble of test_efficientnet + test_resnet"
    assert facts["Ensemble members"] == "test_efficientnet at 64 px, weight 0.50; test_resnet at 48 px, weight 0.50"


def test_flip_averaging_can_be_set_for_the_ensemble(members: tuple[Path, Path, Path], ensemble32: Path,
                                                   tmp_path: Path) -> None:
    data, first, second = members
    assert load_card(first).inference["hflip_tta"] is False
    flipped = build_ensemble([first, second], tmp_path / "flip", data, dtype="float32", hflip_tta=True)
    assert load_card(ensemble32).inference["hflip_tta"] is False  # the lead member's setting
    assert load_card(flipped).inference["hflip_tta"] is True
    assert json.loads((flipped / "args.json").read_text())["hflip_tta"] is True
    plain, mirrored = load_model(ensemble32, device="cpu"), load_model(flipped, device="cpu")
    images = [synthetic_skin_image(s) for s in range(2)]
    x = plain.preprocess(images)
    with torch.inference_mode():
        both = (mirrored.model(x) + mirrored.model(torch.flip(x, dims=[3]))) / 2
        assert not torch.allclose(mirrored.model(x), both, atol=1e-4)  # the photos are not mirror-symmetric
    assert torch.allclose(plain.logits(x), plain.model(x), atol=1e-5)
    assert torch.allclose(mirrored.logits(x), both, atol=1e-5)
    # The CLI switches it off for an ensemble whose lead member averages flips.
    lead = tmp_path / "lead"
    shutil.copytree(first, lead)
    raw = json.loads((lead / "card.json").read_text())
    raw["inference"]["hflip_tta"] = True
    (lead / "card.json").write_text(json.dumps(raw))
    assert main(["ensemble", str(lead), str(second), "--out", str(tmp_path / "keep"), "--data", str(data)]) == 0
    assert load_card(tmp_path / "keep").inference["hflip_tta"] is True
    assert main(["ensemble", str(lead), str(second), "--out", str(tmp_path / "noflip"), "--data", str(data),
                 "--no-hflip-tta"]) == 0
    assert load_card(tmp_path / "noflip").inference["hflip_tta"] is False


def test_logits_are_the_weighted_mean_of_the_members(members: tuple[Path, Path, Path], ensemble32: Path) -> None:
    _, first, second = members
    ens = load_model(ensemble32, device="cpu")
    a, b = load_model(first, device="cpu"), load_model(second, device="cpu")
    images = [synthetic_skin_image(s) for s in range(3)]
    x = ens.preprocess(images)
    # The ResNet member was trained at 48 px with ImageNet normalisation: the ensemble adapts its input.
    lead, own = ens.card.preprocessing, b.card.preprocessing
    mean_in, std_in, mean_b, std_b = (torch.tensor(v).view(1, 3, 1, 1)
                                      for v in (lead["mean"], lead["std"], own["mean"], own["std"]))
    assert not torch.equal(mean_in, mean_b)
    x_b = F.interpolate((x * std_in + mean_in - mean_b) / std_b, size=(48, 48), mode="bilinear", align_corners=False)
    expected = (3 * a.logits(x) + 1 * b.logits(x_b)) / 4
    assert torch.allclose(ens.logits(x), expected, atol=1e-5)
    # predict() applies the ensemble's own temperature to those logits.
    probs = ens.predict_proba(images)
    assert np.allclose(probs, torch.softmax(expected / ens.card.temperature, dim=1).numpy(), atol=1e-5)
    assert predict(ens, images[0], top_k=2).top_k[0].probability == pytest.approx(float(probs[0].max()), abs=1e-6)
    # Each member's own answer comes from the same pass, on the ensemble's temperature.
    result = predict(ens, images[0], top_k=2)
    own = [torch.softmax(logit / ens.card.temperature, dim=1)[0] for logit in (a.logits(x[:1]), b.logits(x_b[:1]))]
    assert [m.architecture for m in result.members] == ["test_efficientnet", "test_resnet"]
    assert [m.input_px for m in result.members] == [64, 48]
    for vote, p in zip(result.members, own, strict=True):
        assert vote.top.label == ens.card.class_ids[int(p.argmax())]
        assert vote.top.probability == pytest.approx(float(p.max()), abs=1e-5)
        assert vote.agrees == (vote.top.label == result.top_k[0].label)
    assert result.to_dict()["members"][1]["label"] == result.members[1].top.label
    assert result.to_dict()["members"][1]["input_px"] == 48
    assert predict(a, images[0]).members == () and "members" not in predict(a, images[0]).to_dict()
    # Features for the Dataset Explorer: both members' pooled features side by side.
    features = ens.embed(images)
    assert features.shape == (3, a.embed(images[:1]).shape[1] + b.embed(images[:1]).shape[1])
    assert np.allclose(features[:, : a.embed(images[:1]).shape[1]], a.embed(images), atol=1e-5)


def test_float16_storage_changes_predictions_only_slightly(members: tuple[Path, Path, Path], ensemble32: Path,
                                                           tmp_path: Path) -> None:
    data, first, second = members
    out = build_ensemble([first, second], tmp_path / "half", data, member_weights=[3, 1], dtype="float16")
    half, full = load_model(out, device="cpu"), load_model(ensemble32, device="cpu")
    assert all(p.dtype == torch.float32 for p in half.model.parameters())  # stored half, computed in float32
    x = full.preprocess([synthetic_skin_image(s) for s in range(4)])
    assert torch.allclose(half.logits(x), full.logits(x), atol=5e-2)


@pytest.mark.parametrize("method, package", [("gradcam", GradCAM), ("hirescam", HiResCAM), ("scorecam", ScoreCAM)])
def test_cam_explains_the_ensembles_own_prediction(ensemble32: Path, method: str, package: type,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from dermlib.explain import methods

    monkeypatch.setattr(methods, "SCORE_CAM_MAX_CHANNELS", None)  # every channel, as grad-cam's Score-CAM
    loaded = load_model(ensemble32, device="cpu")
    image = synthetic_skin_image(5)
    classes = [2, 0]
    ours = explain(loaded, image, classes, method)
    # grad-cam's own multi-layer result on a private copy: the target is the ensemble's logit.
    net = build_model(loaded.card)
    net.load_state_dict(loaded.model.state_dict())
    net.eval()
    modules = dict(net.named_modules())
    layers = [modules[name] for name in loaded.card.cam_layers]
    x = loaded.preprocess([image])
    with package(model=net, target_layers=layers) as cam:
        ref = np.stack([cam(x, [ClassifierOutputTarget(c)])[0] for c in classes])
    assert ours.shape == ref.shape == (2, 64, 64)
    assert np.allclose(ours, ref, atol=2e-4), float(np.abs(ours - ref).max())
    assert not any(m._forward_hooks for m in loaded.model.modules())


def test_effnet_ensemble_maps_after_prediction_reuse_its_pass(members: tuple[Path, Path, Path],
                                                               tmp_path: Path) -> None:
    from dermlib.explain import reuse

    data, first, _ = members
    second = _train(data, tmp_path / "weights" / "m-effnet-b", "test_efficientnet", 56)
    out = tmp_path / "pair"
    assert main(["ensemble", str(first), str(second), "--out", str(out), "--data", str(data),
                 "--dtype", "float32", "--weights", "3", "1"]) == 0
    loaded = load_model(out, device="cpu")
    loaded.fast_forward(wait=True)  # no background export may run the network while passes are counted
    image = synthetic_skin_image(9)
    classes = [loaded.card.class_ids.index(s.label) for s in predict(loaded, image, top_k=2).top_k]
    calls = []
    handle = loaded.model.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        reused = {m: explain(loaded, image, classes, m) for m in ("gradcam", "gradcam++", "xgradcam")}
    finally:
        handle.remove()
    assert not calls  # closed-form gradients for both members, weighted 3:1
    reuse.clear()
    for method, maps in reused.items():
        own = explain(loaded, image, classes, method)
        assert np.allclose(maps, own, atol=1e-5), (method, float(np.abs(maps - own).max()))


def test_mismatched_members_are_refused(members: tuple[Path, Path, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture) -> None:
    data, first, second = members
    other_split = shutil.copytree(second, tmp_path / "other-split")
    splits = pd.read_csv(other_split / "splits.csv")
    test_row = splits.index[splits["split"] == "test"][0]
    splits.loc[test_row, "split"] = "train"  # one of the ensemble's test images seen in training
    splits.to_csv(other_split / "splits.csv", index=False)
    assert main(["ensemble", str(first), str(other_split), "--out", str(tmp_path / "x"), "--data", str(data)]) == 2
    assert "different split" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()

    reordered = shutil.copytree(second, tmp_path / "reordered")
    card = json.loads((reordered / "card.json").read_text())
    card["classes"] = card["classes"][::-1]
    (reordered / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="same classes"):
        build_ensemble([first, reordered], tmp_path / "y", data)
    with pytest.raises(ModelError, match="at least two"):
        build_ensemble([first], tmp_path / "z", data)
    before = (first / "model.safetensors").read_bytes()
    with pytest.raises(ModelError, match="members' own folders"):
        build_ensemble([first, second], first, data)
    assert (first / "model.safetensors").read_bytes() == before


def test_another_seed_reuses_a_members_split(members: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """``--splits`` keeps the test images fixed while the seed changes, so the new run can join the ensemble."""
    data, first, _ = members
    args = ["train", "--data-root", str(data), "--dataset", "fitzpatrick17k", "--architecture", "test_efficientnet",
            "--pretrained", "none", "--img-size", "48", "--epochs", "1", "--batch-size", "8", "--workers", "1",
            "--no-hflip-tta", "--seed", "3"]
    fresh = tmp_path / "weights" / "fresh"
    assert main([*args, "--out", str(fresh), "--run-dir", str(tmp_path / "run-fresh")]) == 0
    reused = tmp_path / "weights" / "reused"
    assert main([*args, "--out", str(reused), "--run-dir", str(tmp_path / "run-reused"), "--splits", str(first)]) == 0

    columns = ["image", "split", "group_id"]
    lead = pd.read_csv(first / "splits.csv")[columns]
    assert not pd.read_csv(fresh / "splits.csv")[columns].equals(lead)  # seed 3 alone draws another split
    pd.testing.assert_frame_equal(pd.read_csv(reused / "splits.csv")[columns], lead)
    assert load_card(reused).metrics["n"] == load_card(first).metrics["n"]
    out = tmp_path / "weights" / "pair"
    assert main(["ensemble", str(first), str(reused), "--out", str(out), "--data", str(data)]) == 0
    with pytest.raises(ModelError, match="different split"):
        build_ensemble([first, fresh], tmp_path / "refused", data)


def test_splits_option_rejects_a_bad_file(members: tuple[Path, Path, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    data, _, _ = members
    args = ["train", "--data-root", str(data), "--dataset", "fitzpatrick17k", "--architecture", "test_efficientnet",
            "--pretrained", "none", "--epochs", "1", "--out", str(tmp_path / "m"), "--run-dir", str(tmp_path / "run")]
    assert main([*args, "--splits", str(tmp_path / "nowhere")]) == 2
    assert "No splits file" in capsys.readouterr().err
    (tmp_path / "bad.csv").write_text("name,fold\na.jpg,1\n")
    assert main([*args, "--splits", str(tmp_path / "bad.csv")]) == 2
    assert "is not a splits table" in capsys.readouterr().err
    (tmp_path / "elsewhere.csv").write_text("image,split\nnot-here.jpg,train\n")
    assert main([*args, "--splits", str(tmp_path / "elsewhere.csv")]) == 2
    assert "None of the images" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_member_agreement_text(ensemble32: Path) -> None:
    def vote(arch: str, label: str, agrees: bool) -> MemberVote:
        return MemberVote(arch, ClassScore(label, label.title(), 0.6, "benign"), agrees)

    top = (ClassScore("nevus", "Nevus", 0.7, "benign"),)
    base = Prediction("ens", (0.7, 0.3), top, {"benign": 1.0}, False)
    assert member_agreement(base) is None
    same = replace(base, members=(vote("lite2", "nevus", True), vote("lite0", "nevus", True)))
    text, disagree = member_agreement(same)
    assert not disagree and text.startswith("Both networks") and "network 2 (lite0): Nevus (60%)" in text
    sized = replace(base, members=(MemberVote("lite0", ClassScore("nevus", "Nevus", 0.6, "benign"), True, 288),))
    assert "network 1: Nevus (60%) (each a lite0 at 288 px)" in member_agreement(sized)[0]
    split = replace(base, members=(vote("a", "nevus", True), vote("b", "wart", False), vote("c", "nevus", True)))
    text, disagree = member_agreement(split)
    assert disagree and split.members_disagree and "The 3 networks of this ensemble disagree" in text
    card = ModelCard.from_dict({**json.loads((ensemble32 / "card.json").read_text()), "calibration": {
        "member_agreement": {"n": 10, "disagree_rate": 0.3, "accuracy_when_agree": 0.8,
                             "accuracy_when_disagree": 0.4}}})
    text, _ = member_agreement(split, card)
    assert "2 of 3 pick the ensemble's top answer on their own" in text
    assert text.endswith("disagreed on 30% of photos; the ensemble's top answer was right on 40% of those, "
                         "against 80% when they agreed.")  # a card without counts keeps the summary


def test_disagreement_quotes_the_accuracy_for_as_many_agreeing_networks(ensemble32: Path) -> None:
    def vote(label: str, agrees: bool) -> MemberVote:
        return MemberVote("lite0", ClassScore(label, label.title(), 0.6, "benign"), agrees)

    top = (ClassScore("nevus", "Nevus", 0.7, "benign"),)
    base = Prediction("ens", (0.7, 0.3), top, {"benign": 1.0}, False)
    rows = [{"agreeing": 0, "n": 0, "accuracy": None}, {"agreeing": 1, "n": 5, "accuracy": 0.2},
            {"agreeing": 2, "n": 15, "accuracy": 0.4}, {"agreeing": 3, "n": 30, "accuracy": 0.5},
            {"agreeing": 4, "n": 100, "accuracy": 0.9}]
    card = ModelCard.from_dict({**json.loads((ensemble32 / "card.json").read_text()), "calibration": {
        "member_agreement": {"n": 150, "disagree_rate": 0.33, "accuracy_when_agree": 0.9,
                             "accuracy_when_disagree": 0.42, "by_agreeing": rows}}})
    three = replace(base, members=(vote("nevus", True),) * 3 + (vote("wart", False),))
    text, disagree = member_agreement(three, card)
    assert disagree and "3 of 4 pick the ensemble's top answer" in text
    assert text.endswith("when exactly 3 of 4 networks agreed with the ensemble's top answer (30 photos), it was "
                         "right on 50%, against 90% when all 4 agreed (100 photos).")
    # 2 of 4 happened on only 15 photos: pooled with 1 of 4 (5 photos), (15 * 0.4 + 5 * 0.2) / 20 = 35%.
    two = replace(base, members=(vote("nevus", True),) * 2 + (vote("wart", False),) * 2)
    assert member_agreement(two, card)[0].endswith(
        "when 2 or fewer of 4 networks agreed with the ensemble's top answer (20 photos), it was right on 35%, "
        "against 90% when all 4 agreed (100 photos).")
    # No network picks the ensemble's answer, and no validation photo was like that: no figure is invented.
    none = replace(base, members=(vote("wart", False),) * 4)
    text, _ = member_agreement(none, card)
    assert "0 of 4 pick" in text and "or fewer" not in text and "exactly" not in text
    assert text.endswith("disagreed on 33% of photos; the ensemble's top answer was right on 42% of those, "
                         "against 90% when they agreed.")  # falls back to the overall summary


def test_ensemble_card_schema(ensemble32: Path) -> None:
    raw = json.loads((ensemble32 / "card.json").read_text())
    for members, phrase in (([], "non-empty 'members'"), ([{"architecture": "ensemble"}], "cannot itself"),
                            ([{"architecture": "test_resnet", "input_size": [48, 48]}], "input_size"),
                            ([{"architecture": "test_resnet", "weight": -1}], "weight")):
        with pytest.raises(CardError, match=phrase):
            ModelCard.from_dict({**raw, "members": members})
    with pytest.raises(CardError, match="target_layer"):
        ModelCard.from_dict({**raw, "cam": {"target_layer": ["members.0.bn2", ""]}})
    twins = [{**raw["members"][0], "input_size": [3, size, size]} for size in (80, 64)]
    label = ModelCard.from_dict({**raw, "members": twins}).architecture_label
    assert label == "ensemble of 2 x test_efficientnet (80, 64 px)"
    mixed = [*twins, raw["members"][1], {**raw["members"][0], "input_size": [3, 72, 72]}]
    label = ModelCard.from_dict({**raw, "members": mixed}).architecture_label
    assert label == "ensemble of 3 x test_efficientnet (80, 64, 72 px) + test_resnet (48 px)"


def test_wrong_cam_layer_fails_at_load(ensemble32: Path, tmp_path: Path) -> None:
    broken = shutil.copytree(ensemble32, tmp_path / "broken")
    card = json.loads((broken / "card.json").read_text())
    card["cam"]["target_layer"] = ["members.0.bn2", "members.1.no_such_layer"]
    (broken / "card.json").write_text(json.dumps(card))
    with pytest.raises(CardError, match=r"members\.1\.no_such_layer"):
        load_model(broken, device="cpu")


def test_diagnose_page_runs_an_ensemble(ensemble32: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "weights"
    shutil.copytree(ensemble32, root / "ens")
    monkeypatch.setenv("DERMLENS_WEIGHTS_DIR", str(root))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(PAGE).run(timeout=60)
    assert not at.exception
    at.file_uploader(key="diagnose_upload").upload("lesion.png", image_bytes(synthetic_skin_image(2)), "image/png")
    at.run(timeout=120)
    assert not at.exception
    assert len(at.get("plotly_chart")) == 2
    assert len(at.get("image")) >= 4  # model view, original, one overlay per class (3 classes)
    assert "Where the model looked" in "\n".join(s.value for s in at.subheader)
    shown = "\n".join(str(e.value) for e in (*at.caption, *at.info))
    assert "networks agree on" in shown or "networks pick" in shown  # plain words first
    details = "\n".join(str(e.value) for e in at.markdown)  # each network's answer, one click away
    assert "networks of this ensemble" in details and "network 2 (test_resnet at 48 px):" in details


def test_member_agreement_stats_by_hand() -> None:
    from dermlib.train.finalize import member_agreement_stats

    # 4 images, 2 members, 3 classes. Members agree on images 0 and 1 and disagree on 2 and 3.
    members = np.array([
        [[5, 0, 0], [4, 0, 0]],
        [[0, 5, 0], [0, 4, 0]],
        [[5, 0, 0], [0, 4, 0]],
        [[0, 0, 5], [0, 4, 0]],
    ], dtype=float)
    ensemble = members.mean(axis=1)  # top classes 0, 1, 0, 2
    labels = np.array([0, 2, 0, 1])  # right, wrong, right, wrong
    # Members picking the ensemble's top class: 2, 2, 1 (member 0 only), 1 (member 0 only).
    assert member_agreement_stats(ensemble, members, labels) == {
        "n": 4, "disagree_rate": 0.5, "accuracy_when_agree": 0.5, "accuracy_when_disagree": 0.5,
        "by_agreeing": [{"agreeing": 0, "n": 0, "accuracy": None}, {"agreeing": 1, "n": 2, "accuracy": 0.5},
                        {"agreeing": 2, "n": 2, "accuracy": 0.5}]}
    assert member_agreement_stats(ensemble[:2], members[:2], labels[:2])["accuracy_when_disagree"] is None


def test_int8_storage_is_a_quarter_and_predicts_almost_the_same(members: tuple[Path, Path, Path],
                                                                 ensemble32: Path, tmp_path: Path) -> None:
    data, first, second = members
    assert main(["ensemble", str(first), str(second), "--out", str(tmp_path / "q"), "--data", str(data),
                 "--dtype", "int8", "--weights", "3", "1"]) == 0
    card = load_card(tmp_path / "q")
    assert card.weights["dtype"] == "int8" and "stored as int8" in card.training["combination"]
    assert card.weights["bytes"] < 0.4 * (ensemble32 / "model.safetensors").stat().st_size
    small, full = load_model(tmp_path / "q", device="cpu"), load_model(ensemble32, device="cpu")
    assert all(p.dtype == torch.float32 for p in small.model.parameters())
    x = full.preprocess([synthetic_skin_image(s) for s in range(4)])
    assert torch.allclose(small.logits(x), full.logits(x), atol=5e-2)
    # It is calibrated and evaluated as itself, like any other ensemble.
    assert card.calibration["temperature"] > 0 and card.metrics["n"] == load_card(ensemble32).metrics["n"]


def test_ensemble_keeps_the_lead_members_reviewed_risk_labels(members: tuple[Path, Path, Path],
                                                              tmp_path: Path) -> None:
    import shutil

    data, first, second = members
    lead = tmp_path / "weights" / first.name
    shutil.copytree(first, lead)
    card = json.loads((lead / "card.json").read_text())
    card["classes"][0].update(risk_label="premalignant", risk_note="Reviewed (a test source).")
    (lead / "card.json").write_text(json.dumps(card))
    out = build_ensemble([lead, second], tmp_path / "ens", data)
    classes = json.loads((out / "card.json").read_text())["classes"]
    assert classes[0]["risk_label"] == "premalignant" and classes[0]["risk_note"] == "Reviewed (a test source)."
    assert classes[0]["risk_group"] == card["classes"][0]["risk_group"]
    assert not any("risk_label" in c for c in classes[1:])


def test_calibrate_can_store_a_single_model_in_float16(members: tuple[Path, Path, Path], tmp_path: Path) -> None:
    data, first, _ = members
    folder = tmp_path / "half"
    shutil.copytree(first, folder)
    full = load_model(first, device="cpu")
    assert main(["calibrate", "--model", str(folder), "--data", str(data), "--store-dtype", "float16"]) == 0
    card = load_card(folder)
    assert card.weights["dtype"] == "float16"
    assert card.weights["bytes"] < 0.6 * (first / "model.safetensors").stat().st_size
    half = load_model(folder, device="cpu")  # the new checksum verifies
    assert all(p.dtype == torch.float32 for p in half.model.parameters())
    x = full.preprocess([synthetic_skin_image(s) for s in range(4)])
    assert torch.allclose(half.logits(x), full.logits(x), atol=1e-2)
    # Recalibrated and re-evaluated on the stored weights: the same test split, fresh figures.
    assert card.metrics["n"] == load_card(first).metrics["n"] and card.calibration["temperature"] > 0
    with pytest.raises(ModelError, match="ensemble"):
        from dermlib.train.finalize import store_weights

        ens = tmp_path / "ens"
        assert main(["ensemble", str(first), str(members[2]), "--out", str(ens), "--data", str(data)]) == 0
        store_weights(ens, "float16")


def test_score_cam_on_a_pair_shares_one_networks_budget_of_passes(ensemble32: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A pair is offered Score-CAM: each of its two layers scores a quarter of a single network's channels,
    so the masked images through the pair cost what one network's Score-CAM costs."""
    from dermlib.explain import methods

    monkeypatch.setattr(methods, "SCORE_CAM_MAX_CHANNELS", 8)
    loaded = load_model(ensemble32, device="cpu")
    assert len(loaded.card.members) == 2 and methods.unavailable_reason(loaded.card, "scorecam") is None
    assert methods.score_cam_channels(1) == 8 and methods.score_cam_channels(2) == 2
    batches: list[int] = []
    handle = loaded.model.register_forward_hook(lambda _m, args, _out: batches.append(int(args[0].shape[0])))
    try:
        maps = explain(loaded, synthetic_skin_image(5), [2, 0], "scorecam")
    finally:
        handle.remove()
    assert maps.shape == (2, 64, 64) and maps.min() >= 0 and maps.max() <= 1
    # One pass of the photo for the activations, then 2 masked images for each of the 2 layers.
    assert sorted(batches) == [1, 2, 2], batches
    three = replace(loaded.card, members=(*loaded.card.members, loaded.card.members[0]))
    assert methods.unavailable_reason(three, "scorecam") is None and methods.score_cam_channels(3) == 1
    four = replace(loaded.card, members=(*three.members, loaded.card.members[0]))
    assert "4 networks" in methods.unavailable_reason(four, "scorecam")
