"""Model cards, the registry and loading: round trips and every failure a user can hit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dermlib.errors import CardError, ModelError
from dermlib.models import (
    default_model_id,
    get_card,
    list_models,
    load_card,
    load_model,
    scan_models,
    select_device,
)
from dermlib.testing import write_tiny_model


def _edit_card(folder: Path, **changes) -> None:
    path = folder / "card.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_load_round_trip(tiny_model_dir: Path) -> None:
    loaded = load_model(tiny_model_dir, device="cpu")
    saved = load_file(str(tiny_model_dir / "model.safetensors"))
    state = loaded.model.state_dict()
    assert set(saved) == set(state)
    for key, tensor in saved.items():
        assert torch.equal(state[key].cpu(), tensor), key
    assert loaded.card.class_ids == ["class-0", "class-1", "class-2", "class-3"]
    assert loaded.device.type == "cpu"
    assert loaded.input_size == (96, 96)
    assert not any(p.requires_grad for p in loaded.model.parameters())


def test_preprocessing_comes_from_the_card(tmp_path: Path) -> None:
    folder = write_tiny_model(tmp_path / "m", input_size=64)
    card = json.loads((folder / "card.json").read_text())
    card["preprocessing"]["mean"] = [0.5, 0.5, 0.5]
    card["preprocessing"]["std"] = [0.25, 0.25, 0.25]
    (folder / "card.json").write_text(json.dumps(card))
    loaded = load_model(folder, device="cpu")
    assert loaded.config["input_size"] == (3, 64, 64)
    assert tuple(loaded.config["mean"]) == (0.5, 0.5, 0.5)
    from PIL import Image

    grey = Image.new("RGB", (100, 80), (128, 128, 128))
    x = loaded.preprocess([grey])
    assert x.shape == (1, 3, 64, 64)
    assert torch.allclose(x, torch.full_like(x, (128 / 255 - 0.5) / 0.25), atol=1e-3)


def test_registry_lists_valid_and_reports_broken(tmp_path: Path) -> None:
    write_tiny_model(tmp_path / "b-model", model_id="b-model")
    write_tiny_model(tmp_path / "a-model", model_id="a-model", extra={"default": True})
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "card.json").write_text("{not json")
    cards, problems = scan_models(tmp_path)
    assert [c.id for c in cards] == ["a-model", "b-model"]
    assert len(problems) == 1 and "not valid JSON" in problems[0].problem
    assert next(c.id for c in list_models(tmp_path)) == "a-model"
    assert default_model_id(tmp_path) == "a-model"
    assert get_card("b-model", tmp_path).id == "b-model"
    with pytest.raises(ModelError, match="No model 'zzz'"):
        get_card("zzz", tmp_path)


def test_missing_weights_dir_means_no_models(tmp_path: Path) -> None:
    assert list_models(tmp_path / "does-not-exist") == []
    assert default_model_id(tmp_path / "does-not-exist") is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"classes": []}, "classes"),
        ({"classes": [{"id": "a", "name": "A", "risk_group": "scary"}]}, "risk_group"),
        ({"cam": {}}, "target_layer"),
        ({"preprocessing": {"input_size": [3, 96], "mean": [0, 0, 0], "std": [1, 1, 1],
                            "interpolation": "bicubic"}}, "input_size"),
        ({"calibration": {"temperature": -1}}, "temperature"),
        ({"diagnose": {"offered": "no"}}, "'diagnose' must be an object"),
        ({"diagnose": {"offered": False}}, "diagnose.reason"),
    ],
)
def test_card_schema_errors(tmp_path: Path, change: dict, message: str) -> None:
    folder = write_tiny_model(tmp_path / "m")
    _edit_card(folder, **change)
    with pytest.raises(CardError, match=message):
        load_card(folder)


def test_card_missing_field(tmp_path: Path) -> None:
    folder = write_tiny_model(tmp_path / "m")
    data = json.loads((folder / "card.json").read_text())
    del data["architecture"]
    (folder / "card.json").write_text(json.dumps(data))
    with pytest.raises(CardError, match="missing field 'architecture'"):
        load_card(folder)


def test_class_count_mismatch(tmp_path: Path) -> None:
    folder = write_tiny_model(tmp_path / "m", num_classes=4)
    card = json.loads((folder / "card.json").read_text())
    card["classes"] = card["classes"][:3]
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="do not match its card"):
        load_model(folder, device="cpu")


def test_missing_weights(tmp_path: Path) -> None:
    folder = write_tiny_model(tmp_path / "m")
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="missing"):
        load_model(folder, device="cpu")


def test_tampered_weights_fail_the_checksum(tmp_path: Path) -> None:
    folder = write_tiny_model(tmp_path / "m")
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-10] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum"):
        load_model(folder, device="cpu")


def test_truncated_weights_without_checksum(tmp_path: Path) -> None:
    folder = write_tiny_model(tmp_path / "m")
    card = json.loads((folder / "card.json").read_text())
    card["weights"].pop("sha256")
    (folder / "card.json").write_text(json.dumps(card))
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="corrupt"):
        load_model(folder, device="cpu")


def test_pickle_file_is_refused(tmp_path: Path) -> None:
    folder = write_tiny_model(tmp_path / "m")
    card = json.loads((folder / "card.json").read_text())
    card["weights"].pop("sha256")
    (folder / "card.json").write_text(json.dumps(card))
    torch.save({"x": torch.zeros(1)}, folder / "model.safetensors")  # a pickle pretending to be safetensors
    with pytest.raises(ModelError, match="corrupt or not safetensors"):
        load_model(folder, device="cpu")


def test_unknown_cam_layer(tmp_path: Path) -> None:
    folder = write_tiny_model(tmp_path / "m", target_layer="no.such.layer")
    with pytest.raises(CardError, match=r"no\.such\.layer"):
        load_model(folder, device="cpu")


def test_unknown_architecture(tmp_path: Path) -> None:
    folder = write_tiny_model(tmp_path / "m")
    _edit_card(folder, architecture="not_a_timm_model")
    with pytest.raises(ModelError, match="not_a_timm_model"):
        load_model(folder, device="cpu")


def test_loading_does_not_change_files(tmp_path: Path) -> None:
    folder = write_tiny_model(tmp_path / "m")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    load_model(folder, device="cpu")
    shutil.rmtree(tmp_path / "copy", ignore_errors=True)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_select_device_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    assert select_device("cpu").type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device("cuda").type == "cpu"
    monkeypatch.setenv("DERMLENS_DEVICE", "cpu")
    assert select_device().type == "cpu"
