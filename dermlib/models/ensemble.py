"""Ensembles: several trained networks that answer as one model, with one card and one weights file.

An ensemble card has ``"architecture": "ensemble"`` and a ``members`` list; each member names its timm
architecture, its native input size and normalisation, and its weight in the average. The weights file holds the
:class:`Ensemble` module's state dict (``members.0.*``, ``members.1.*``, ...), optionally stored as
float16 (half the size) or int8 (a quarter, :mod:`dermlib.models.quantize`): loading turns the values back
into float32 parameters.

The ensemble's logits are the weighted mean of its members' logits, so one temperature calibrates it,
and Grad-CAM can explain the ensemble's own prediction: the card's CAM layers are one layer per member
(``members.0.bn2``, ``members.1.bn2``), the gradients of the ensemble's class score reach every one of
them, and their maps are averaged the way grad-cam combines several target layers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dermlib.models.card import ENSEMBLE_ARCHITECTURE

__all__ = ["ENSEMBLE_ARCHITECTURE", "Ensemble"]


class Ensemble(nn.Module):
    """Average the logits of several classifiers that share their classes (in the same order).

    Args:
        members: The member networks (timm models with ``forward_features`` / ``forward_head``).
        input_sizes: Each member's (height, width). An input of another size is resized for that
            member (bilinear, differentiable, so CAM gradients flow back through it).
        weights: Each member's weight in the average (normalised to sum to 1); default equal.
        renormalize: For each member, ``None`` or ``(input_mean, input_std, member_mean, member_std)``
            (three numbers each): the input, normalised with the first pair, is re-normalised with the
            second for that member (an affine map, so gradients pass through).
    """

    def __init__(self, members: Sequence[nn.Module], input_sizes: Sequence[tuple[int, int] | None] | None = None,
                 weights: Sequence[float] | None = None,
                 renormalize: Sequence[tuple[Sequence[float], ...] | None] | None = None) -> None:
        super().__init__()
        if not members:
            raise ValueError("An ensemble needs at least one member.")
        self.members = nn.ModuleList(members)
        sizes = list(input_sizes) if input_sizes is not None else [None] * len(members)
        raw = [float(w) for w in weights] if weights is not None else [1.0] * len(members)
        if len(sizes) != len(members) or len(raw) != len(members):
            raise ValueError("input_sizes and weights need one entry per member.")
        if any(w < 0 for w in raw) or sum(raw) <= 0:
            raise ValueError("Member weights must be non-negative and not all zero.")
        self.input_sizes = [tuple(int(v) for v in s) if s is not None else None for s in sizes]
        self.member_weights = [w / sum(raw) for w in raw]
        norms = list(renormalize) if renormalize is not None else [None] * len(members)
        if len(norms) != len(members):
            raise ValueError("renormalize needs one entry per member.")
        self._affine = []
        for i, norm in enumerate(norms):
            if norm is None:
                self._affine.append(False)
                continue
            in_mean, in_std, m_mean, m_std = (torch.tensor([float(v) for v in t]).view(1, 3, 1, 1) for t in norm)
            if torch.equal(in_mean, m_mean) and torch.equal(in_std, m_std):
                self._affine.append(False)
                continue
            # x_member = (x * in_std + in_mean - m_mean) / m_std; not persistent: not part of the weights.
            self.register_buffer(f"_scale{i}", in_std / m_std, persistent=False)
            self.register_buffer(f"_shift{i}", (in_mean - m_mean) / m_std, persistent=False)
            self._affine.append(True)

    def _member_input(self, x: torch.Tensor, i: int) -> torch.Tensor:
        if self._affine[i]:
            x = x * getattr(self, f"_scale{i}") + getattr(self, f"_shift{i}")
        size = self.input_sizes[i]
        if size is None or tuple(x.shape[-2:]) == size:
            return x
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each member's feature map (a list: members may differ in channels and grid size)."""
        return [m.forward_features(self._member_input(x, i)) for i, m in enumerate(self.members)]

    def forward_head(self, features: list[torch.Tensor], pre_logits: bool = False) -> torch.Tensor:
        """Weighted mean of the members' logits, or their pooled features side by side (``pre_logits``)."""
        if pre_logits:
            return torch.cat([m.forward_head(f, pre_logits=True) for m, f in zip(self.members, features, strict=True)],
                             dim=1)
        return self.combine(self._heads(features))

    def member_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Each member's own logits, shape (B, members, num_classes)."""
        return self._heads(self.forward_features(x))

    def _heads(self, features: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack([m.forward_head(f) for m, f in zip(self.members, features, strict=True)], dim=1)

    def combine(self, member_logits: torch.Tensor) -> torch.Tensor:
        """The ensemble's logits from :meth:`member_logits` (the weighted mean over members)."""
        weights = member_logits.new_tensor(self.member_weights)
        return (member_logits * weights[None, :, None]).sum(dim=1)

    def forward(self, x: torch.Tensor, return_members: bool = False) -> torch.Tensor:
        """Ensemble logits, shape (B, num_classes); or, with ``return_members``, :meth:`member_logits`.

        Both go through ``__call__`` so that module hooks on the ensemble see every pass.
        """
        if return_members:
            return self.member_logits(x)
        return self.forward_head(self.forward_features(x))
