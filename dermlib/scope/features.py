"""The frozen ImageNet feature extractor the scope check scores images with.

Fine-tuning collapses what is not skin onto the skin classes: on a fine-tuned network's own pooled features
natural photos are hard to tell from skin, while the same backbone before fine-tuning (its ImageNet
checkpoint) separates them almost completely (README, "Out-of-scope check"). So every model's scope check
runs one extra forward pass of the packaged ImageNet EfficientNet-Lite0, shared by all models and sessions.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from dermlib.errors import ModelError
from dermlib.runtime.memory import release_freed_memory
from dermlib.scope.names import DEFAULT_EXTRACTOR, DEFAULT_EXTRACTOR_SIZE
from dermlib.scope.pixels import extractor_input

#: ``onnxruntime`` (default) or ``torch``: which runtime computes the extractor's forward pass.
BACKEND_ENV = "DERMLENS_SCOPE_BACKEND"

logger = logging.getLogger(__name__)


class _Pooled(torch.nn.Module):
    """The network up to its pooled features (what ONNX export traces)."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network.forward_head(self.network.forward_features(x), pre_logits=True)


def _onnx_session(network: torch.nn.Module, size: int):
    """An ONNX Runtime session of the network's pooled features, exported in memory (nothing is written).

    Measured on 2 CPU cores: 9 ms a photo at 160 px against 15-22 ms for eager torch, whose per-layer
    overhead dominates a network this small (6.4 ms at 128 px; 5.4 ms since graphs are exported for one
    image, 2026-12-06); the features agree to 1e-5 (tests). The export takes about 1.5 s, once per process.
    """
    from dermlib.models.fast import onnx_session

    # One thread, on the caller's: a pool for 6 ms of work costs more than it saves, and its threads'
    # spin-waiting would take the cores from the classifier that runs next. No arena: a one-photo batch
    # gains nothing from it (measured 4.6 against 5.5 ms) and it holds memory.
    session = onnx_session(_Pooled(network), (size, size), threads=1, output_names=["features"])
    release_freed_memory()
    return session


def export_extractor(architecture: str = DEFAULT_EXTRACTOR, size: int = DEFAULT_EXTRACTOR_SIZE) -> bytes:
    """The extractor's pooled-features graph, serialised (for the command line's on-disk cache,
    :mod:`dermlib.runtime`); input ``x`` (N, 3, size, size) as :func:`~dermlib.scope.pixels.extractor_input`.

    Raises:
        ModelError: The packaged ImageNet checkpoint is not installed.
    """
    from dermlib.models.fast import export_onnx
    from dermlib.train.pretrained import load_offline_imagenet

    network = load_offline_imagenet(architecture).eval().requires_grad_(False)
    return export_onnx(_Pooled(network), (int(size), int(size)), output_names=["features"])


class FeatureExtractor:
    """Pooled ImageNet features (the classifier's input, before its last layer) of RGB images.

    Args:
        architecture: A timm architecture with a packaged offline ImageNet checkpoint.
        size: Side of the square input, in pixels.
        backend: ``onnxruntime`` or ``torch`` (default: ``DERMLENS_SCOPE_BACKEND``, else ``onnxruntime``;
            torch is used when ONNX Runtime is missing or the export fails).
    """

    def __init__(self, architecture: str = DEFAULT_EXTRACTOR, size: int = DEFAULT_EXTRACTOR_SIZE,
                 backend: str | None = None) -> None:
        from dermlib.train.pretrained import load_offline_imagenet

        self.architecture = architecture
        self.size = int(size)
        self.network = load_offline_imagenet(architecture).eval().requires_grad_(False)
        self.network = self.network.to(memory_format=torch.channels_last)
        self.num_features = int(self.network.num_features)
        self.backend = "torch"
        self._session = None
        if (backend or os.environ.get(BACKEND_ENV, "onnxruntime")).strip().lower() == "onnxruntime":
            try:
                self._session = _onnx_session(self.network, self.size)
                self.backend = "onnxruntime"
                self.network = None  # ONNX Runtime holds its own copy of the weights
                release_freed_memory()
            except Exception as exc:  # a missing or broken runtime must not cost the check itself
                logger.warning("Scope extractor: ONNX Runtime unavailable (%s); using torch.", exc)

    @property
    def engine(self) -> str:
        """What runs the forward pass: the exported graph's engine (``runtime.engines``), or torch."""
        return "torch" if self._session is None else str(self._session.engine)

    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Resize each image to ``size`` x ``size`` (the whole frame: nothing cropped) and normalise
        (:func:`~dermlib.scope.pixels.extractor_input`)."""
        batch = torch.from_numpy(extractor_input(images, self.size))
        if self._session is not None:  # the exported graph takes the plain layout: no conversion to copy
            return batch
        return batch.contiguous(memory_format=torch.channels_last)

    def __call__(self, images: Sequence[Image.Image], batch_size: int = 64) -> np.ndarray:
        """Features of ``images``, shape (N, num_features), float32."""
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                batch = self.preprocess(images[start : start + batch_size])
                if self._session is not None:
                    chunks.append(self._session.run(None, {"x": batch.contiguous().numpy()})[0].astype(np.float32))
                    continue
                feats = self.network.forward_head(self.network.forward_features(batch), pre_logits=True)
                chunks.append(feats.float().numpy())
        if not chunks:
            return np.zeros((0, self.num_features), dtype=np.float32)
        return np.concatenate(chunks)

    def imagenet_head(self) -> tuple[np.ndarray, np.ndarray]:
        """The ImageNet classifier's weight (1000, D) and bias (1000,), for scores that need logits (ViM)."""
        from dermlib.train.pretrained import load_offline_imagenet

        network = self.network if self.network is not None else load_offline_imagenet(self.architecture)
        head = network.get_classifier()
        return head.weight.detach().numpy().copy(), head.bias.detach().numpy().copy()


@functools.lru_cache(maxsize=2)
def get_extractor(architecture: str = DEFAULT_EXTRACTOR, size: int = DEFAULT_EXTRACTOR_SIZE) -> FeatureExtractor:
    """The process-wide extractor for ``(architecture, size)``; at most two are ever kept.

    Raises:
        ModelError: The packaged ImageNet checkpoint is not installed.
    """
    try:
        return FeatureExtractor(architecture, size)
    except ModelError:
        raise
    except (OSError, RuntimeError) as exc:  # a damaged package file
        raise ModelError(f"The scope check's ImageNet network '{architecture}' could not be loaded: {exc}") from exc
