"""Build a timm model from its card, load its safetensors weights, and run it.

Loading never unpickles anything: weights are read with :mod:`safetensors`, and the card is JSON.
Preprocessing comes from the card through timm's data config, never from literals.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import timm
import torch
from PIL import Image
from timm.data import create_transform, resolve_data_config
from torchvision import transforms as T

from dermlib.errors import CardError, ModelError
from dermlib.images import rgb_for_reading
from dermlib.masking import MaskSpec
from dermlib.models import fast
from dermlib.models.card import ModelCard
from dermlib.models.device import select_device
from dermlib.models.ensemble import Ensemble
from dermlib.models.quantize import dequantize_state_dict, is_quantized
from dermlib.models.registry import get_card
from dermlib.models.slots import INFERENCE_SLOTS_ENV as INFERENCE_SLOTS_ENV  # re-exported
from dermlib.models.slots import inference_slot
from dermlib.models.threads import configure_threads
from dermlib.models.verify import file_sha256 as file_sha256  # re-exported: the training modules import it here
from dermlib.models.verify import read_verified_safetensors

logger = logging.getLogger(__name__)

_ACCELERATOR_MARKERS = ("CUDA", "cuda", "cuDNN", "CUBLAS", "cublas", "NCCL", "NVIDIA", "MPS", "out of memory", "HIP")


def _first_line(error: BaseException | str) -> str:
    """The first line of an error message (at most 200 characters), for a notice a person reads."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def is_accelerator_failure(exc: BaseException) -> bool:
    """Whether an exception is the GPU failing (out of memory, a driver or kernel error), not a bug.

    Args:
        exc: The exception raised by a forward pass or a device transfer.

    Returns:
        True for ``torch.cuda.OutOfMemoryError``, ``torch.AcceleratorError`` and runtime errors whose
        message names the accelerator; such errors are worth retrying on the CPU.
    """
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    accelerator_error = getattr(torch, "AcceleratorError", None)
    if accelerator_error is not None and isinstance(exc, accelerator_error):
        return True
    # torch raises AssertionError("Torch not compiled with CUDA enabled") for a CUDA device on a CPU build.
    return isinstance(exc, (RuntimeError, AssertionError)) and any(m in str(exc) for m in _ACCELERATOR_MARKERS)


def build_model(card: ModelCard) -> torch.nn.Module:
    """Create the (randomly initialised) network a card describes: one timm model, or an ensemble of them.

    Raises:
        ModelError: timm does not know the architecture or rejects the card's arguments.
    """
    if card.is_ensemble:
        specs = [(m["architecture"], dict(m.get("model_kwargs") or {})) for m in card.members]
    else:
        specs = [(card.architecture, card.model_kwargs)]
    networks = []
    for architecture, kwargs in specs:
        try:
            networks.append(timm.create_model(architecture, pretrained=False, num_classes=card.num_classes, **kwargs))
        except (RuntimeError, ValueError, TypeError, KeyError) as exc:
            raise ModelError(f"timm cannot build architecture '{architecture}' for '{card.id}': {exc}") from exc
    if not card.is_ensemble:
        return networks[0]
    sizes = [tuple(m["input_size"][1:]) if m.get("input_size") else None for m in card.members]
    pre = card.preprocessing
    norms = [(pre["mean"], pre["std"], m["mean"], m["std"]) if m.get("mean") and m.get("std") else None
             for m in card.members]
    return Ensemble(networks, input_sizes=sizes, weights=[float(m.get("weight", 1.0)) for m in card.members],
                    renormalize=norms)


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


def load_state_dict(card: ModelCard) -> dict[str, torch.Tensor]:
    """Read and verify the weights file of a card; int8 files (:mod:`dermlib.models.quantize`) come back
    expanded to float32.

    Raises:
        ModelError: The file is missing, does not match the card's checksum, is not safetensors, or is an
            int8 file whose scales do not fit its weights.
    """
    state = read_verified_safetensors(card.weights_path, card.weights.get("sha256"),
                                      f"The weights file of model '{card.id}'",
                                      "Reinstall the model or train one with `python -m dermlib train`.")
    if not is_quantized(state):
        return state
    try:
        return dequantize_state_dict(state)
    except ValueError as exc:
        raise ModelError(f"The int8 weights file of model '{card.id}' is damaged: {exc}") from exc


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
    fallback_notice: str | None = None
    mask: MaskSpec | None = None
    # ONNX Runtime session of the prediction's forward pass (dermlib.models.fast), built on first use.
    fast: Any = field(default=None, repr=False)
    _fast_tried: bool = field(default=False, repr=False)
    _fast_thread: threading.Thread | None = field(default=None, repr=False)
    # The last image's model view: a page asks for the same photo's view three or four times per upload
    # (prediction, page, heatmaps). A weak reference, so the cache never keeps a user's photo alive.
    _last_view: tuple[weakref.ref, Image.Image] | None = field(default=None, repr=False)
    # The target layers, found once per network: walking named_modules() cost 1.5 ms per prediction.
    _layers: tuple[int, list[torch.nn.Module]] | None = field(default=None, repr=False)

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the model input."""
        _, h, w = self.config["input_size"]
        return int(h), int(w)

    def model_view(self, image: Image.Image) -> Image.Image:
        """The masked, resized and cropped image exactly as the model sees it (before normalisation).

        The card's mask (``preprocessing.mask``, see :mod:`dermlib.masking`) is applied to the full photo
        first, as in training, so a watermark box covers the same part of the photo in both.
        """
        last = self._last_view
        if last is not None and last[0]() is image:
            return last[1].copy()  # a copy: callers may draw on what they get
        view = rgb_for_reading(image)  # the mask and the resize below make new images
        if self.mask is not None:
            view = self.mask.apply(view)
        view = self.geometric(view)
        self._last_view = (weakref.ref(image), view)  # one assignment: safe across sessions' threads
        return view.copy()

    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Turn RGB images into a normalised batch on the model's device."""
        batch = torch.stack([self.normalize(self.model_view(img)) for img in images])
        return self._to_device(batch)

    def _to_device(self, batch: torch.Tensor) -> torch.Tensor:
        batch = batch.to(self.device)
        # channels_last speeds up torch's convolutions; a batch the exported graph will run stays as it is,
        # since the graph wants the plain layout and each conversion is a copy.
        graph_runs_it = self.fast is not None and batch.shape[0] <= fast.MAX_BATCH
        if self.channels_last and not graph_runs_it:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """Raw logits for a preprocessed batch, averaged with the horizontal flip when the card asks."""
        return self.logits_and_members(batch)[0]

    def logits_and_members(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits as :meth:`logits`, plus each ensemble member's own logits from the same pass.

        Returns:
            ``(logits (B, C), member_logits (B, M, C))``; the second is None for a single network.
        """

        def run(x: torch.Tensor, first: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
            small = self.device.type == "cpu" and x.shape[0] <= fast.MAX_BATCH
            onnx = self.fast_forward(wait=False) if small else None
            if onnx is not None:
                out, features = onnx(x)
                if first:
                    fast.offer_features(x, features)  # the heatmaps that follow can reuse this pass
                if isinstance(self.model, Ensemble):
                    return self.model.combine(out.float()), out.float()
                return out.float(), None
            if isinstance(self.model, Ensemble):
                members = self.model(x, return_members=True).float()
                return self.model.combine(members), members
            return self.model(x).float(), None

        with torch.inference_mode():
            out, members = run(batch, True)
            if self.card.inference.get("hflip_tta"):
                flipped, flipped_members = run(torch.flip(batch, dims=[3]), False)
                out = (out + flipped) / 2
                members = None if members is None else (members + flipped_members) / 2
        return out, members

    def fast_forward(self, wait: bool = True) -> fast.OnnxForward | None:
        """The ONNX Runtime forward pass for predictions, or None to use torch.

        The export takes 1-8 s (one network to six), so a prediction does not wait for it: with
        ``wait=False`` the first call starts it in a background thread and torch answers until it is ready.

        Args:
            wait: Build it now (or wait for the build under way) instead of returning None meanwhile.
        """
        if self._fast_tried:
            return self.fast
        with self.lock:
            if self._fast_tried:
                return self.fast
            if self._fast_thread is None:
                model, size, device = self.model, self.input_size, self.device

                def build() -> None:
                    self.fast = fast.build(model, size, device)
                    self._fast_tried = True

                self._fast_thread = fast.start_export(build)
            thread = self._fast_thread
        if wait:
            thread.join()
            return self.fast
        return None

    def fall_back_to_cpu(self, reason: BaseException | str) -> None:
        """Move this model to the CPU after the accelerator failed; later calls run there.

        The network is rebuilt from the verified weights file rather than copied off the GPU, because after
        some CUDA errors the device can no longer be read from. Safe to call from several threads: the first
        caller moves the model, later callers find it on the CPU already.

        Args:
            reason: The accelerator's exception (or a description), quoted in :attr:`fallback_notice`.
        """
        with self.lock:
            if self.device.type == "cpu":
                return
            failed = self.device
            # load_model verifies the checksum again and builds exactly what the first load built.
            self.model = load_model(self.card, device="cpu").model
            self.device = torch.device("cpu")
            self.fast, self._fast_tried, self._fast_thread = None, False, None
            self.fallback_notice = (f"The GPU ({failed}) failed ({_first_line(reason)}), so this model now runs "
                                    "on the CPU. Results are the same; they take longer.")
            logger.warning("Model %s: %s", self.card.id, self.fallback_notice)
            if torch.cuda.is_available():
                # A broken CUDA context cannot even free its cache.
                with contextlib.suppress(RuntimeError):
                    torch.cuda.empty_cache()

    def run_with_fallback(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn``; if the accelerator fails during it, move to the CPU and run it once more.

        Args:
            fn: A function that does all its work from scratch (preprocessing included), so a retry
                builds its tensors on the new device.

        Returns:
            Whatever ``fn`` returns.
        """
        started_on = self.device
        with inference_slot():
            try:
                return fn()
            except Exception as exc:
                if started_on.type == "cpu" or not is_accelerator_failure(exc):
                    raise
                self.fall_back_to_cpu(exc)
                return fn()

    def predict_proba(self, images: Sequence[Image.Image], batch_size: int = 32) -> np.ndarray:
        """Temperature-scaled class probabilities, shape (N, C).

        Falls back to the CPU (see :meth:`run_with_fallback`) when the GPU runs out of memory or fails.
        """
        return self.predict_proba_and_members(images, batch_size)[0]

    def predict_proba_and_members(self, images: Sequence[Image.Image],
                                  batch_size: int = 32) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities as :meth:`predict_proba`, plus each ensemble member's, shape (N, M, C).

        Members' logits are scaled by the ensemble's temperature, so their probabilities are on the same
        scale as the ensemble's. The second item is None for a single network.
        """
        return self.run_with_fallback(lambda: self._predict_proba(images, batch_size))

    def _predict_proba(self, images: Sequence[Image.Image], batch_size: int) -> tuple[np.ndarray, np.ndarray | None]:
        chunks, member_chunks = [], []
        temperature = self.card.temperature
        for start in range(0, len(images), batch_size):
            logits, members = self.logits_and_members(self.preprocess(images[start : start + batch_size]))
            chunks.append(torch.softmax(logits / temperature, dim=1).cpu().numpy())
            if members is not None:
                member_chunks.append(torch.softmax(members / temperature, dim=2).cpu().numpy())
        if not chunks:
            return np.zeros((0, self.card.num_classes), dtype=np.float64), None
        members_out = np.concatenate(member_chunks).astype(np.float64) if member_chunks else None
        return np.concatenate(chunks).astype(np.float64), members_out

    def embed(self, images: Sequence[Image.Image], batch_size: int = 32) -> np.ndarray:
        """Pooled backbone features (the classifier's input), shape (N, D); falls back to the CPU like
        :meth:`predict_proba`."""
        return self.run_with_fallback(lambda: self._embed(images, batch_size))

    def _embed(self, images: Sequence[Image.Image], batch_size: int) -> np.ndarray:
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                batch = self.preprocess(images[start : start + batch_size])
                feats = self.model.forward_head(self.model.forward_features(batch), pre_logits=True)
                chunks.append(feats.float().cpu().numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)

    def target_layers(self) -> list[torch.nn.Module]:
        """The CAM target layers named (dotted) in the card: one, or one per ensemble member.

        Raises:
            CardError: No module of one of those names exists in the network.
        """
        found = self._layers
        if found is not None and found[0] == id(self.model):
            return list(found[1])
        modules = dict(self.model.named_modules())
        missing = [name for name in self.card.cam_layers if name not in modules]
        if missing:
            raise CardError(f"Model '{self.card.id}': CAM target layer '{missing[0]}' does not exist in "
                            f"{self.card.architecture_label}.")
        layers = [modules[name] for name in self.card.cam_layers]
        self._layers = (id(self.model), layers)  # one assignment: safe across sessions' threads
        return list(layers)


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
    configure_threads()  # the CPUs this process may really use (affinity, cgroup quota, DERMLENS_THREADS)
    network = build_model(card)
    state = load_state_dict(card)
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise ModelError(
            f"The weights of model '{card.id}' do not match its card ({card.architecture_label}, "
            f"{card.num_classes} classes): {first[0] if first else exc}"
        ) from exc
    target = torch.device(device) if isinstance(device, torch.device) else select_device(device)
    network.eval().requires_grad_(False)
    channels_last = True
    notice = None
    try:
        network = network.to(target, memory_format=torch.channels_last)
    except Exception as exc:
        if target.type == "cpu" or not is_accelerator_failure(exc):
            raise
        notice = (f"The GPU ({target}) could not take the model ({_first_line(exc)}), so it runs on the CPU. "
                  "Results are the same; they take longer.")
        logger.warning("Model %s: %s", card.id, notice)
        target = torch.device("cpu")
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
        fallback_notice=notice,
        mask=MaskSpec.from_card(card.preprocessing),
        # The backend is chosen now (DERMLENS_PREDICT_BACKEND); the ONNX session is built on first use.
        _fast_tried=target.type != "cpu" or fast.backend_choice() != "onnxruntime",
    )
    loaded.target_layers()  # fail at load time, not at the first explanation
    return loaded
