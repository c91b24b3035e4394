"""Heatmaps from the prediction's own forward pass: no second pass through the network.

A diagnosis is a prediction followed by the top-k maps of the same photo. The engine
(:mod:`dermlib.explain.engine`) needs the target layer's activations and the gradient of each class
score there. Both can come from the prediction:

* **Activations.** While :func:`dermlib.inference.predict` runs one photo, :func:`capture` records the
  target layers' outputs of the un-flipped pass (thread-scoped hooks, removed at once, as in the engine)
  and keeps them in a small bounded cache keyed by a digest of the preprocessed input.
* **Gradients, in closed form.** When the target layer feeds global average pooling and a linear head
  (EfficientNet's ``bn2``, whose output is already activated), the score of class ``c`` is
  ``sum_k W[c, k] * mean_ij A[k, i, j] + b[c]``, so its gradient at every location is ``W[c, k] / (h * w)``
  (times the member's weight in an ensemble). That is exactly what autograd returns; the tests compare
  the two for every method.

So every method except Score-CAM draws the top-k maps of a photo just classified in about a millisecond.
Anything else (a batch, another architecture, a photo not classified a moment ago) takes the engine's
ordinary path.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

from dermlib.models import fast
from dermlib.models.loading import LoadedModel

MAX_ENTRIES = 4  # one per photo being explained at once; a few MB each at most (six-network ensemble)

_cache: OrderedDict[tuple[str, int, bytes], list[torch.Tensor]] = OrderedDict()
_lock = threading.Lock()


def input_key(loaded: LoadedModel, x: torch.Tensor) -> tuple[str, int, bytes]:
    """Cache key of one preprocessed input: the model (card id and object) and a digest of the tensor."""
    data = memoryview(x.detach().float().cpu().contiguous().numpy()).cast("B")
    # SHA-256 runs on the CPU's SHA extensions where they exist: 0.5 ms for a 224 px input, half BLAKE2b's.
    return loaded.card.id, id(loaded.model), hashlib.sha256(data).digest()[:16]


@contextmanager
def capture(loaded: LoadedModel) -> Iterator[None]:
    """Record the target layers' activations of the next single-image forward pass in this thread.

    Only the first call of the network inside the block is recorded (the un-flipped image when the card
    averages with the horizontal flip), and only when its batch holds one image.
    """
    owner = threading.get_ident()
    layers = loaded.target_layers()
    state: dict[str, object] = {}
    acts: dict[int, torch.Tensor] = {}

    def pre_hook(_module: torch.nn.Module, args: tuple) -> None:
        if threading.get_ident() != owner or "key" in state or "skip" in state:
            return
        x = args[0] if args else None
        if not isinstance(x, torch.Tensor) or x.shape[0] != 1:
            state["skip"] = True
            return
        state["key"] = input_key(loaded, x)

    def make_hook(slot: int):
        def hook(_module: torch.nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            if threading.get_ident() != owner or "key" not in state or slot in acts or "done" in state:
                return
            acts[slot] = output.detach().clone()

        return hook

    def post_hook(_module: torch.nn.Module, _args: tuple, _output: object) -> None:
        if threading.get_ident() == owner and "key" in state:
            state["done"] = True  # the flipped pass that may follow is not recorded

    def from_onnx(x: torch.Tensor, features: list[torch.Tensor]) -> None:
        # The ONNX Runtime pass (dermlib.models.fast) returns the feature maps, which are the target
        # layers' outputs when those are EfficientNet's bn2; for other layers the heatmaps take their own pass.
        if "key" in state or "skip" in state or x.shape[0] != 1 or not _features_are_targets(loaded):
            return
        state["key"] = input_key(loaded, x)
        acts.update({slot: f.clone() for slot, f in enumerate(features)})
        state["done"] = True

    handles = [loaded.model.register_forward_pre_hook(pre_hook), loaded.model.register_forward_hook(post_hook)]
    handles += [layer.register_forward_hook(make_hook(slot)) for slot, layer in enumerate(layers)]
    fast.record_features(from_onnx)
    try:
        yield
    finally:
        fast.record_features(None)
        for handle in handles:
            handle.remove()
    if "key" in state and len(acts) == len(layers):
        with _lock:
            _cache[state["key"]] = [acts[slot] for slot in range(len(layers))]  # type: ignore[index]
            _cache.move_to_end(state["key"])  # type: ignore[arg-type]
            while len(_cache) > MAX_ENTRIES:
                _cache.popitem(last=False)


def cached_activations(loaded: LoadedModel, x: torch.Tensor) -> list[torch.Tensor] | None:
    """The activations :func:`capture` recorded for this exact input, or None."""
    if x.shape[0] != 1:
        return None
    key = input_key(loaded, x)
    with _lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
        return found


def clear() -> None:
    """Forget every cached activation (tests; a model reload)."""
    with _lock:
        _cache.clear()


def _is_efficientnet_bn2(owner: torch.nn.Module, layer_name: str) -> bool:
    """Whether the layer is a timm EfficientNet's ``bn2`` (batch norm and activation, the feature extractor's
    last output), and the network ends in average pooling and a linear classifier."""
    from timm.models.efficientnet import EfficientNet

    head = owner.get_classifier() if hasattr(owner, "get_classifier") else None
    return (isinstance(owner, EfficientNet) and layer_name.rpartition(".")[2] == "bn2"
            and isinstance(head, torch.nn.Linear)
            and getattr(getattr(owner, "global_pool", None), "pool_type", None) == "avg")


def _features_are_targets(loaded: LoadedModel) -> bool:
    """Whether the card's target layers are the outputs of the networks' feature extractors, in member order."""
    names = loaded.card.cam_layers
    owners = [_owner_and_weight(loaded, name)[0] for name in names]
    members = list(getattr(loaded.model, "members", [loaded.model]))
    return len(names) == len(members) and all(
        o is m and _is_efficientnet_bn2(o, n) for o, m, n in zip(owners, members, names, strict=True))


def _owner_and_weight(loaded: LoadedModel, layer_name: str) -> tuple[torch.nn.Module, float]:
    """The network a target layer belongs to (the model, or an ensemble member) and its logit weight."""
    prefix = layer_name.rpartition(".")[0]
    owner = loaded.model.get_submodule(prefix) if prefix else loaded.model
    members = getattr(loaded.model, "members", None)
    if members is not None and owner is not loaded.model:
        for i, member in enumerate(members):
            if member is owner:
                return owner, float(loaded.model.member_weights[i])
    return owner, 1.0


def analytic_gradients(
    loaded: LoadedModel, class_indices: Sequence[int], activations: Sequence[torch.Tensor]
) -> list[torch.Tensor] | None:
    """Each target layer's gradient of the requested class scores, in closed form, or None if no closed form.

    The closed form holds when the layer is the last one of a timm EfficientNet's features (``bn2``: batch
    norm and activation) followed by average pooling and a linear classifier.

    Returns:
        One tensor per layer, shape (K, C, h, w): class ``class_indices[i]``'s gradient in row ``i``.
    """
    grads = []
    for name, act in zip(loaded.card.cam_layers, activations, strict=True):
        owner, weight = _owner_and_weight(loaded, name)
        if not _is_efficientnet_bn2(owner, name):
            return None
        head = owner.get_classifier()
        _, channels, h, w = act.shape
        rows = head.weight.detach()[torch.as_tensor(list(class_indices), device=head.weight.device)].float()
        g = (rows * (weight / (h * w)))[:, :, None, None].expand(len(class_indices), channels, h, w)
        grads.append(g.to(act.device))
    return grads

