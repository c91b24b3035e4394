"""int8 weight storage: error bounds, round trips through safetensors, and damaged files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from dermlib.errors import ModelError
from dermlib.models import load_model
from dermlib.models.loading import file_sha256, load_state_dict
from dermlib.models.quantize import SCALE_SUFFIX, dequantize_state_dict, is_quantized, quantize_state_dict
from dermlib.models.registry import get_card
from dermlib.testing import synthetic_skin_image


def _state() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    conv = torch.randn(8, 3, 3, 3, generator=g)
    conv[5] = 0.0  # an all-zero output channel must survive (no 0/0 scale)
    conv[2] *= 40.0  # channels of very different magnitude get their own scales
    return {
        "conv.weight": conv,
        "fc.weight": torch.randn(4, 16, generator=g, dtype=torch.float16),
        "fc.bias": torch.randn(4, generator=g),
        "bn.running_var": torch.rand(8, generator=g) + 0.5,
        "bn.num_batches_tracked": torch.tensor(7),
    }


def test_weights_are_int8_with_one_scale_per_output_channel() -> None:
    state = _state()
    q = quantize_state_dict(state)
    assert q["conv.weight"].dtype == torch.int8 and q["conv.weight"].shape == (8, 3, 3, 3)
    assert q["conv.weight" + SCALE_SUFFIX].shape == (8,) and q["fc.weight" + SCALE_SUFFIX].shape == (4,)
    assert int(q["conv.weight"].abs().max()) == 127  # the largest weight of a channel maps to +-127
    assert q["fc.bias"].dtype == torch.float16 and q["bn.running_var"].dtype == torch.float16
    assert torch.equal(q["bn.num_batches_tracked"], torch.tensor(7))
    assert is_quantized(q) and not is_quantized(state)


def test_round_trip_error_is_at_most_half_a_step_per_channel() -> None:
    state = _state()
    back = dequantize_state_dict(quantize_state_dict(state))
    assert set(back) == set(state)
    assert all(v.dtype == torch.float32 for v in back.values() if v.is_floating_point())
    for key in ("conv.weight", "fc.weight"):
        w = state[key].float()
        step = w.abs().flatten(1).amax(dim=1) / 127
        err = (back[key] - w).abs().flatten(1).amax(dim=1)
        assert torch.all(err <= step / 2 + 1e-6), key
    assert torch.equal(back["conv.weight"][5], torch.zeros(3, 3, 3))
    # The small channel is not swamped by the large one (per-channel, not per-tensor, scales).
    small = state["conv.weight"][0]
    assert (back["conv.weight"][0] - small).abs().max() < small.abs().max() / 200
    assert torch.allclose(back["fc.bias"], state["fc.bias"], atol=1e-2)


def test_quantizing_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="already quantized"):
        quantize_state_dict(quantize_state_dict(_state()))


@pytest.mark.parametrize("damage, message", [
    (lambda q: q.pop("conv.weight" + SCALE_SUFFIX), "no scale"),
    (lambda q: q.pop("conv.weight"), "no weight beside it"),
    (lambda q: q.__setitem__("conv.weight" + SCALE_SUFFIX, torch.ones(3)), "does not fit its scale"),
    (lambda q: q.__setitem__("fc.bias" + SCALE_SUFFIX, torch.ones(4)), "not int8"),
])
def test_damaged_files_are_refused(damage, message: str) -> None:
    q = quantize_state_dict(_state())
    damage(q)
    with pytest.raises(ValueError, match=message):
        dequantize_state_dict(q)


def test_a_damaged_int8_model_file_is_a_clean_model_error(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Through the loader: a valid int8 file loads; one whose scale was removed (checksum updated, so only
    the scales are wrong) is refused with a ModelError, not a crash."""
    model_dir = shutil.copytree(tiny_model_dir, tmp_path / "m")
    weights = model_dir / "model.safetensors"
    card = json.loads((model_dir / "card.json").read_text())

    def store(state: dict[str, torch.Tensor]) -> None:
        save_file(state, str(weights))
        card["weights"]["sha256"] = file_sha256(weights)
        (model_dir / "card.json").write_text(json.dumps(card))

    full = load_model(model_dir, device="cpu")
    q = quantize_state_dict(load_file(str(weights)))
    store(q)
    small = load_model(model_dir, device="cpu")  # a valid int8 file loads and computes in float32
    assert all(p.dtype == torch.float32 for p in small.model.parameters())
    x = full.preprocess([synthetic_skin_image(1)])
    assert torch.allclose(small.logits(x), full.logits(x), atol=5e-2)
    key = next(k for k in q if k.endswith(SCALE_SUFFIX))
    del q[key]
    store(q)
    with pytest.raises(ModelError, match=r"int8 weights file of model .* is damaged"):
        load_state_dict(get_card(str(model_dir)))
