"""Reshape transforms: turn transformer token maps into (B, C, h, w) feature maps for CAM."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def vit_reshape(tensor: torch.Tensor, num_prefix_tokens: int = 1) -> torch.Tensor:
    """(B, prefix + h*w, C) tokens of a ViT -> (B, C, h, w), dropping class/register tokens."""
    tokens = tensor[:, num_prefix_tokens:, :]
    side = math.isqrt(tokens.shape[1])
    if side * side != tokens.shape[1]:
        raise ValueError(f"Cannot arrange {tokens.shape[1]} tokens on a square grid.")
    return tokens.reshape(tensor.shape[0], side, side, tensor.shape[2]).permute(0, 3, 1, 2)


def swin_reshape(tensor: torch.Tensor) -> torch.Tensor:
    """timm Swin stages output (B, h, w, C) -> (B, C, h, w)."""
    if tensor.dim() == 3:  # older layouts: (B, h*w, C)
        side = math.isqrt(tensor.shape[1])
        tensor = tensor.reshape(tensor.shape[0], side, side, tensor.shape[2])
    return tensor.permute(0, 3, 1, 2)


def get_reshape(kind: str | None, model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The reshape transform a card's ``cam.reshape`` names (None for CNNs)."""
    if kind is None:
        return None
    if kind == "vit":
        prefix = int(getattr(model, "num_prefix_tokens", 1))
        return lambda t: vit_reshape(t, prefix)
    if kind == "swin":
        return swin_reshape
    raise ValueError(f"Unknown reshape '{kind}'.")
