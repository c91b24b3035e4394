"""Filling the cache: export a model's (or the scope extractor's) forward pass with torch, once per machine.

The only module of :mod:`dermlib.runtime` that imports torch, and only when an entry is missing.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from dermlib.models.card import ModelCard
from dermlib.models.ensemble import Ensemble
from dermlib.models.fast import export_onnx
from dermlib.models.loading import load_model
from dermlib.runtime import geometry
from dermlib.runtime.cache import Entry


class _Logits(torch.nn.Module):
    """The network's logits; for an ensemble also each member's (what the Diagnose page's votes need)."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if isinstance(self.network, Ensemble):
            members = self.network.member_logits(x)
            return self.network.combine(members), members
        return (self.network(x),)


def export_model(card: ModelCard, target: Entry) -> dict[str, Any]:
    """Export a model's prediction graph (logits, and members' logits for an ensemble) into ``target``.

    Raises:
        ModelError: The model cannot be loaded (missing or damaged weights).
        geometry.UnsupportedStep: Its preprocessing is not one :func:`geometry.replay` reproduces.
        OSError: The cache cannot be written.
    """
    started = time.perf_counter()
    loaded = load_model(card, device="cpu")
    steps = geometry.describe(loaded.geometric.transforms)
    normalize = next(t for t in loaded.normalize.transforms if type(t).__name__ == "Normalize")
    outputs = ["logits", "members"] if isinstance(loaded.model, Ensemble) else ["logits"]
    graph = export_onnx(_Logits(loaded.model), loaded.input_size, output_names=outputs)
    return target.write(graph, {
        "kind": "model", "model": card.id, "weights_sha256": card.weights.get("sha256"),
        "geometry": steps, "mean": [float(v) for v in normalize.mean], "std": [float(v) for v in normalize.std],
        "input_size": list(loaded.input_size), "outputs": outputs,
        "hflip_tta": bool(card.inference.get("hflip_tta")), "export_s": round(time.perf_counter() - started, 2),
    })


def export_extractor(architecture: str, size: int, target: Entry) -> dict[str, Any]:
    """Export the scope check's ImageNet feature extractor into ``target``.

    Raises:
        ModelError: The packaged ImageNet checkpoint is not installed.
        OSError: The cache cannot be written.
    """
    from dermlib.scope.features import export_extractor as export_graph

    started = time.perf_counter()
    graph = export_graph(architecture, size)
    return target.write(graph, {"kind": "extractor", "architecture": architecture, "size": int(size),
                                "export_s": round(time.perf_counter() - started, 2)})
