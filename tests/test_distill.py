"""Distillation: the loss, the teacher's targets (only on its own training photos), and a CLI run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dermlib.cli import main
from dermlib.data.synthetic import make_fitzpatrick17k
from dermlib.errors import TrainingError
from dermlib.train.distill import OnlineTeacher, compute_teacher_targets, distillation_loss


def test_loss_is_cross_entropy_without_targets_and_grows_with_disagreement() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    ce = torch.tensor([0.3, 0.9])
    targets = torch.softmax(logits / 2.0, dim=1)
    none = torch.zeros(2, dtype=torch.bool)
    assert torch.isclose(distillation_loss(logits, ce, targets, none, 0.5, 2.0), ce.mean())
    both = torch.ones(2, dtype=torch.bool)
    agree = distillation_loss(logits, ce, targets, both, 1.0, 2.0)
    assert torch.isclose(agree, torch.tensor(0.0), atol=1e-6)  # the student already matches the teacher
    wrong = torch.softmax(-logits / 2.0, dim=1)
    assert distillation_loss(logits, ce, wrong, both, 1.0, 2.0) > 0.1


def _train(data: Path, out: Path, *extra: str) -> int:
    return main(["train", "--data-root", str(data), "--dataset", "fitzpatrick17k", "--out", str(out),
                 "--run-dir", str(out.parent / f"run-{out.name}"), "--architecture", "test_efficientnet",
                 "--pretrained", "none", "--img-size", "48", "--epochs", "1", "--batch-size", "8",
                 "--workers", "1", "--no-hflip-tta", *extra])


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("distil")
    data = make_fitzpatrick17k(root / "fitz", n_images=45, n_metadata_only=0)
    assert _train(data, root / "weights" / "teacher") == 0
    return data, root / "weights" / "teacher"


def test_targets_only_for_the_teachers_training_photos(teacher: tuple[Path, Path]) -> None:
    from dermlib.models.registry import get_card

    data, folder = teacher
    card = get_card(str(folder))
    splits = pd.read_csv(folder / "splits.csv")
    rows = pd.DataFrame({"image_path": [str(data / p) for p in splits["image"]]})
    student_classes = ["extra-class", *card.class_ids]
    got = compute_teacher_targets(str(folder), rows, student_classes, temperature=2.0)
    assert got.has_target.tolist() == (splits["split"] == "train").tolist()
    assert np.allclose(got.probs[got.has_target].sum(axis=1), 1.0, atol=1e-5)
    assert (got.probs[:, 0] == 0).all()  # a class the teacher does not know
    assert (got.probs[~got.has_target] == 0).all()
    with pytest.raises(TrainingError, match="classes the student does not"):
        compute_teacher_targets(str(folder), rows, card.class_ids[1:])


def test_cli_trains_a_student_and_records_the_teacher(teacher: tuple[Path, Path], tmp_path: Path) -> None:
    data, folder = teacher
    out = tmp_path / "student"
    assert _train(data, out, "--teacher", str(folder), "--splits", str(folder), "--distill-alpha", "0.7") == 0
    card = json.loads((out / "card.json").read_text())
    taught = card["training"]["teacher"]
    n_train = int((pd.read_csv(folder / "splits.csv")["split"] == "train").sum())
    assert taught["id"] == "teacher" and taught["alpha"] == 0.7 and taught["photos_with_targets"] == n_train
    assert pd.read_csv(out / "splits.csv")["split"].tolist() == pd.read_csv(folder / "splits.csv")["split"].tolist()
    assert _train(data, tmp_path / "mixed", "--teacher", str(folder), "--mixup", "0.2") == 2


def test_online_teacher_matches_the_fixed_targets_on_the_unaugmented_view(teacher: tuple[Path, Path]) -> None:
    from dermlib.images import load_image
    from dermlib.models.loading import load_model
    from dermlib.models.registry import get_card

    data, folder = teacher
    card = get_card(str(folder))
    splits = pd.read_csv(folder / "splits.csv")
    rows = pd.DataFrame({"image_path": [str(data / p) for p in splits["image"]]})
    student_classes = [*card.class_ids, "extra-class"]
    fixed = compute_teacher_targets(str(folder), rows, student_classes, temperature=3.0)
    # A student that normalises differently from the teacher: the online teacher must undo it.
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    online = OnlineTeacher(str(folder), rows, student_classes, mean, std, temperature=3.0, device="cpu")
    assert online.has_target.tolist() == fixed.has_target.tolist()
    loaded = load_model(card, device="cpu")
    t_mean = torch.tensor(loaded.config["mean"]).view(1, 3, 1, 1)
    t_std = torch.tensor(loaded.config["std"]).view(1, 3, 1, 1)
    picked = np.flatnonzero(fixed.has_target)[:6]
    teacher_batch = loaded.preprocess([load_image(rows["image_path"].iloc[i]) for i in picked])
    student_batch = (teacher_batch * t_std + t_mean - torch.tensor(mean).view(1, 3, 1, 1)) \
        / torch.tensor(std).view(1, 3, 1, 1)
    got = online(student_batch)
    assert got.shape == (len(picked), len(student_classes))
    assert not got.requires_grad
    assert np.allclose(got.numpy(), fixed.probs[picked], atol=1e-4)
    assert (got[:, -1] == 0).all()
    # A view at another size is resized to the teacher's: still a distribution over the student's classes.
    small = torch.nn.functional.interpolate(student_batch, size=(32, 32), mode="bilinear", align_corners=False)
    assert torch.allclose(online(small).sum(dim=1), torch.ones(len(picked)), atol=1e-5)
    assert online.seconds > 0


def test_cli_distils_on_augmented_views(teacher: tuple[Path, Path], tmp_path: Path) -> None:
    data, folder = teacher
    out = tmp_path / "student"
    assert _train(data, out, "--teacher", str(folder), "--splits", str(folder), "--teacher-views", "augmented") == 0
    taught = json.loads((out / "card.json").read_text())["training"]["teacher"]
    assert taught["views"] == "augmented" and "augmented view" in taught["targets"]
    assert taught["photos_with_targets"] == int((pd.read_csv(folder / "splits.csv")["split"] == "train").sum())
    with pytest.raises(SystemExit):  # argparse refuses it before anything is trained
        _train(data, tmp_path / "bad", "--teacher", str(folder), "--teacher-views", "sometimes")


def test_transfer_rows_are_taught_by_the_teacher_alone() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    targets = torch.softmax(torch.tensor([[0.0, 2.0, 0.0], [0.0, 1.0, 0.0]]) / 2.0, dim=1)
    has = torch.ones(2, dtype=torch.bool)
    transfer = torch.tensor([True, False])
    ce = torch.tensor([0.0, 0.9])  # a transfer row has no label, so no cross-entropy
    log_student = torch.log_softmax(logits / 2.0, dim=1)
    kl = (targets * (targets.log() - log_student)).sum(dim=1)
    want = (4.0 * kl[0] + (0.5 * ce[1] + 0.5 * 4.0 * kl[1])) / 2
    got = distillation_loss(logits, ce, targets, has, 0.5, 2.0, transfer=transfer)
    assert torch.isclose(got, want)
    # Without the flag the first row would get alpha, not 1.
    assert not torch.isclose(distillation_loss(logits, ce, targets, has, 0.5, 2.0), want)


def test_transfer_set_leaves_out_held_out_and_student_photos(teacher: tuple[Path, Path]) -> None:
    from dermlib.data.registry import load_index
    from dermlib.train.distill import transfer_rows

    data, folder = teacher
    splits = pd.read_csv(folder / "splits.csv")
    # The teacher's own data as a transfer set for a student with other photos: only its training split is left.
    got = transfer_rows(str(folder), data, "fitzpatrick17k", pd.DataFrame({"image_path": ["elsewhere/x.jpg"]}))
    want = {Path(p).name for p in splits.loc[splits["split"] == "train", "image"]}
    assert {Path(p).name for p in got["image_path"]} == want
    assert got["transfer"].all() and got["source"].eq("fitzpatrick17k").all()
    with pytest.raises(TrainingError, match="No transfer photos"):
        transfer_rows(str(folder), data, "fitzpatrick17k", load_index("fitzpatrick17k", data))


def test_cli_distils_with_a_transfer_set(teacher: tuple[Path, Path], tmp_path: Path) -> None:
    from dermlib.data.synthetic import make_dermnet_nz

    data, folder = teacher
    extra = make_dermnet_nz(tmp_path / "dn", per_class=3)
    n_extra = len(list((extra / "images").rglob("*.jpg")))
    n_train = int((pd.read_csv(folder / "splits.csv")["split"] == "train").sum())
    for views in ("fixed", "augmented"):
        out = tmp_path / f"student-{views}"
        assert _train(data, out, "--teacher", str(folder), "--splits", str(folder), "--teacher-views", views,
                      "--transfer-data", str(extra), "--transfer-mask-box", "0", "0.64", "0.46", "1") == 0
        card = json.loads((out / "card.json").read_text())
        taught = card["training"]["teacher"]
        assert taught["photos_with_targets"] == n_train + n_extra
        assert taught["transfer"]["photos"] == n_extra and taught["transfer"]["mask"]["boxes"] == [[0, 0.64, 0.46, 1]]
        # The transfer photos are not part of the student's own splits, and its classes are the teacher's.
        assert len(pd.read_csv(out / "splits.csv")) == len(pd.read_csv(folder / "splits.csv"))
        assert [c["id"] for c in card["classes"]] == [c["id"] for c in json.loads((folder / "card.json")
                                                                                   .read_text())["classes"]]
        assert "preprocessing" in card and "mask" not in card["preprocessing"]  # the mask was for transfer photos
    assert _train(data, tmp_path / "no-teacher", "--transfer-data", str(extra)) == 2
    assert _train(data, tmp_path / "sampler", "--teacher", str(folder), "--transfer-data", str(extra),
                  "--balance", "sampler") == 2


def test_student_keeps_the_teachers_reviewed_risk_labels(teacher: tuple[Path, Path], tmp_path: Path) -> None:
    import shutil

    data, folder = teacher
    reviewed = tmp_path / "reviewed-teacher"
    shutil.copytree(folder, reviewed)
    card = json.loads((reviewed / "card.json").read_text())
    first = card["classes"][0]
    first.update(risk_label="premalignant", risk_note="Reviewed: premalignant (a test source).")
    (reviewed / "card.json").write_text(json.dumps(card))
    out = tmp_path / "student"
    assert _train(data, out, "--teacher", str(reviewed), "--splits", str(reviewed)) == 0
    classes = {c["id"]: c for c in json.loads((out / "card.json").read_text())["classes"]}
    assert classes[first["id"]]["risk_label"] == "premalignant"
    assert classes[first["id"]]["risk_note"] == "Reviewed: premalignant (a test source)."
    assert classes[first["id"]]["risk_group"] == first["risk_group"]  # the dataset's group stays for the sums
    assert not any("risk_label" in c for i, c in classes.items() if i != first["id"])
