"""Build a timm model from its card, load its safetensors weights, and run it.

Loading never unpickles anything: weights are read with :mod:`safetensors`, and the card is JSON.
Preprocessing comes from the card through timm's data config, never from literals.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import timm
import torch
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load_file
from timm.data import create_transform, resolve_data_config
from torchvision import transforms as T

from dermlib.errors import CardError, ModelError
from dermlib.models.card import ModelCard
from dermlib.models.device import select_device
from dermlib.models.registry import get_card


def build_model(card: ModelCard) -> torch.nn.Module:
    """Create the (randomly initialised) timm network a card describes.

    Raises:
        ModelError: timm does not know the architecture or rejects the card's arguments.
    """
    try:
        return timm.create_model(
            card.architecture, pretrained=False, num_classes=card.num_classes, **card.model_kwargs
        )
    except (RuntimeError, ValueError, TypeError, KeyError) as exc:
        raise ModelError(f"timm cannot build architecture '{card.architecture}' for '{card.id}': {exc}") from exc


def data_config(card: ModelCard, model: torch.nn.Module | None = None) -> dict[str, Any]:
    """Resolve timm's data config with the card's preprocessing taking precedence (args > cfg > defaults)."""
    pre = card.preprocessing
    args = {
        "input_size": tuple(pre["input_size"]),
        "interpolation": pre["interpolation"],
        "mean": tuple(pre["mean"]),
        "std": tuple(pre["std"]),
        "crop_pct": pre.get("crop_pct", 1.0),
        "crop_mode": pre.get("crop_mode", "center"),
    }
    return resolve_data_config(args=args, model=model)


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_state_dict(card: ModelCard) -> dict[str, torch.Tensor]:
    """Read and verify the weights file of a card.

    Raises:
        ModelError: The file is missing, does not match the card's checksum, or is not safetensors.
    """
    path = card.weights_path
    if not path.is_file():
        raise ModelError(
            f"The weights file of model '{card.id}' is missing ({path}). Reinstall the model or train "
            "one with `python -m dermlib train`."
        )
    expected = card.weights.get("sha256")
    if expected and file_sha256(path) != expected:
        raise ModelError(
            f"The weights file of model '{card.id}' does not match the checksum in its card: it is "
            "damaged or was replaced. Reinstall the model."
        )
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"The weights file of model '{card.id}' is corrupt or not safetensors ({exc}).") from exc


@dataclass
class LoadedModel:
    """A model ready for inference, with its card, device and preprocessing.

    One instance is shared by every user session of the app, so nothing here mutates the network
    after loading; explanations attach thread-scoped hooks and remove them (see :mod:`dermlib.explain`).
    """

    card: ModelCard
    model: torch.nn.Module
    device: torch.device
    config: dict[str, Any]
    transform: T.Compose
    geometric: T.Compose
    normalize: T.Compose
    channels_last: bool = True
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the model input."""
        _, h, w = self.config["input_size"]
        return int(h), int(w)

    def model_view(self, image: Image.Image) -> Image.Image:
        """The resized and cropped image exactly as the model sees it (before normalisation)."""
        return self.geometric(image.convert("RGB"))

    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Turn RGB images into a normalised batch on the model's device."""
        batch = torch.stack([self.normalize(self.model_view(img)) for img in images])
        return self._to_device(batch)

    def _to_device(self, batch: torch.Tensor) -> torch.Tensor:
        batch = batch.to(self.device)
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """Raw logits for a preprocessed batch, averaged with the horizontal flip when the card asks."""
        with torch.inference_mode():
            out = self.model(batch).float()
            if self.card.inference.get("hflip_tta"):
                out = (out + self.model(torch.flip(batch, dims=[3])).float()) / 2
        return out

    def predict_proba(self, images: Sequence[Image.Image], batch_size: int = 32) -> np.ndarray:
        """Temperature-scaled class probabilities, shape (N, C)."""
        chunks = []
        for start in range(0, len(images), batch_size):
            logits = self.logits(self.preprocess(images[start : start + batch_size]))
            chunks.append(torch.softmax(logits / self.card.temperature, dim=1).cpu().numpy())
        if not chunks:
            return np.zeros((0, self.card.num_classes), dtype=np.float32)
        return np.concatenate(chunks).astype(np.float64)

    def embed(self, images: Sequence[Image.Image], batch_size: int = 32) -> np.ndarray:
        """Pooled backbone features (the classifier's input), shape (N, D)."""
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                batch = self.preprocess(images[start : start + batch_size])
                feats = self.model.forward_head(self.model.forward_features(batch), pre_logits=True)
                chunks.append(feats.float().cpu().numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)

    def target_layer(self) -> torch.nn.Module:
        """The CAM target layer named (dotted) in the card.

        Raises:
            CardError: No module of that name exists in the network.
        """
        name = self.card.cam["target_layer"]
        modules = dict(self.model.named_modules())
        if name not in modules:
            raise CardError(
                f"Model '{self.card.id}': CAM target layer '{name}' does not exist in {self.card.architecture}."
            )
        return modules[name]


def load_model(
    model: str | Path | ModelCard,
    device: str | torch.device | None = None,
    weights_root: str | Path | None = None,
) -> LoadedModel:
    """Load an installed model for inference.

    Args:
        model: A model id from the registry, a model folder, or a card.
        device: Where to run (default: CUDA, then MPS, then CPU; see :func:`select_device`).
        weights_root: Weights directory to look the id up in (default: configured).

    Returns:
        The loaded model in eval mode.

    Raises:
        ModelError: The model is missing, its weights are corrupt, or they do not match the card.
    """
    card = model if isinstance(model, ModelCard) else get_card(str(model), weights_root)
    network = build_model(card)
    state = load_state_dict(card)
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise ModelError(
            f"The weights of model '{card.id}' do not match its card ({card.architecture}, "
            f"{card.num_classes} classes): {first[0] if first else exc}"
        ) from exc
    target = torch.device(device) if isinstance(device, torch.device) else select_device(device)
    network.eval().requires_grad_(False)
    channels_last = True
    network = network.to(target, memory_format=torch.channels_last)
    config = data_config(card, network)
    transform = create_transform(**config, is_training=False)
    steps = list(transform.transforms)
    split = next(
        (i for i, t in enumerate(steps) if isinstance(t, T.ToTensor) or type(t).__name__ == "MaybeToTensor"),
        len(steps),
    )
    loaded = LoadedModel(
        card=card,
        model=network,
        device=target,
        config=config,
        transform=transform,
        geometric=T.Compose(steps[:split]),
        normalize=T.Compose(steps[split:]),
        channels_last=channels_last,
    )
    loaded.target_layer()  # fail at load time, not at the first explanation
    return loaded
