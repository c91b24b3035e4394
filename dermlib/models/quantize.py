"""Compact weight storage: int8 weight matrices with one scale per output channel.

Used only to make weight files smaller (an ensemble of several networks within the 25 MB a model may
take); the network still computes in float32, because the weights are expanded again on loading. Each
convolution or linear weight ``w`` (two or more dimensions) is stored as ``round(w / s)`` in int8 with
``s = max|w| / 127`` per output channel, so no weight moves by more than ``s / 2``. Biases and norm
statistics are small and sensitive, so they stay in float16.

A quantized file is still plain safetensors: the int8 tensor keeps the weight's name and its scales sit
beside it under ``<name>`` + :data:`SCALE_SUFFIX`.
"""

from __future__ import annotations

import torch

#: Suffix of the per-output-channel scale stored beside each int8 weight.
SCALE_SUFFIX = ".__int8_scale"

_INT8_MAX = 127


def quantize_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Store weight tensors as int8 plus per-output-channel float32 scales; other floats as float16.

    Args:
        state: A float state dict (any float dtype).

    Returns:
        A new state dict ready for :func:`safetensors.torch.save_file`.

    Raises:
        ValueError: A key already ends with :data:`SCALE_SUFFIX`.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith(SCALE_SUFFIX):
            raise ValueError(f"'{key}' clashes with the int8 scale naming; this state dict is already quantized.")
        if not value.is_floating_point():
            out[key] = value.contiguous()
        elif value.ndim >= 2:
            w = value.detach().float()
            peak = w.abs().flatten(1).amax(dim=1)
            # An all-zero channel gets scale 1 so that dequantizing gives zeros, not 0/0.
            scale = torch.where(peak > 0, peak / _INT8_MAX, torch.ones_like(peak))
            view = scale.view(-1, *([1] * (w.ndim - 1)))
            out[key] = torch.round(w / view).clamp_(-_INT8_MAX, _INT8_MAX).to(torch.int8).contiguous()
            out[key + SCALE_SUFFIX] = scale.contiguous()
        else:
            out[key] = value.detach().to(torch.float16).contiguous()
    return out


#: Stored precisions of a weights file; every one is expanded to float32 on loading.
STORAGE_DTYPES = ("float32", "float16", "int8")


def stored_state_dict(state: dict[str, torch.Tensor], dtype: str) -> dict[str, torch.Tensor]:
    """A state dict in the precision it is to be stored in (``float32``, ``float16`` or ``int8``).

    Raises:
        ValueError: Unknown dtype.
    """
    if dtype == "int8":
        return quantize_state_dict(state)
    if dtype not in STORAGE_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(STORAGE_DTYPES)}, not '{dtype}'.")
    target = torch.float16 if dtype == "float16" else torch.float32
    return {k: (v.detach().to(target) if v.is_floating_point() else v).contiguous() for k, v in state.items()}


def is_quantized(state: dict[str, torch.Tensor]) -> bool:
    """Whether a state dict read from disk holds int8 weights written by :func:`quantize_state_dict`."""
    return any(key.endswith(SCALE_SUFFIX) for key in state)


def dequantize_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Expand a state dict written by :func:`quantize_state_dict` back to float32 weights.

    Args:
        state: The stored tensors (int8 weights with their scales, other tensors as stored).

    Returns:
        A state dict with the original keys; every floating-point tensor is float32.

    Raises:
        ValueError: A scale without its weight, an int8 weight without its scale, or a scale whose length
            is not the weight's number of output channels (a damaged or hand-edited file).
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith(SCALE_SUFFIX):
            if key[: -len(SCALE_SUFFIX)] not in state:
                raise ValueError(f"int8 scale '{key}' has no weight beside it.")
            continue
        scale = state.get(key + SCALE_SUFFIX)
        if value.dtype == torch.int8:
            if scale is None:
                raise ValueError(f"int8 weight '{key}' has no scale beside it.")
            if value.ndim < 2 or scale.ndim != 1 or scale.shape[0] != value.shape[0]:
                raise ValueError(f"int8 weight '{key}' {tuple(value.shape)} does not fit its scale "
                                 f"{tuple(scale.shape)}.")
            out[key] = value.float() * scale.float().view(-1, *([1] * (value.ndim - 1)))
        elif scale is not None:
            raise ValueError(f"'{key}' has an int8 scale but is stored as {value.dtype}, not int8.")
        else:
            out[key] = value.float() if value.is_floating_point() else value
    return out
