"""A model answered by its cached ONNX graph: preprocessing in PIL and numpy, the forward pass in ONNX Runtime.

:class:`OnnxModel` offers what :func:`dermlib.inference.build_prediction` and the scope check need from a
:class:`~dermlib.models.LoadedModel` (the card, calibrated probabilities and the members' own), so a
prediction made here is packaged, checked and printed exactly like one made in torch.
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from dermlib.inference import Prediction, build_prediction
from dermlib.masking import MaskSpec
from dermlib.models.card import ModelCard
from dermlib.models.verify import check_file, file_sha256
from dermlib.runtime import cache, geometry
from dermlib.runtime.engines import cpu_session
from dermlib.scope.names import DEFAULT_EXTRACTOR, DEFAULT_EXTRACTOR_SIZE
from dermlib.scope.pixels import extractor_input

logger = logging.getLogger(__name__)


def _softmax(logits: np.ndarray, temperature: float, axis: int) -> np.ndarray:
    z = logits.astype(np.float32) / np.float32(temperature)
    z = np.exp(z - z.max(axis=axis, keepdims=True))
    return (z / z.sum(axis=axis, keepdims=True)).astype(np.float64)


class OnnxModel:
    """One installed model's prediction, from its cached graph.

    Args:
        card: The model's card.
        session: An ONNX Runtime session of the graph :func:`dermlib.runtime.export.export_model` wrote.
        manifest: The entry's manifest (preprocessing steps, normalisation, outputs).
    """

    fallback_notice: str | None = None  # the same attribute as LoadedModel's: there is no GPU to fall back from

    def __init__(self, card: ModelCard, session: Any, manifest: dict[str, Any]) -> None:
        self.card = card
        self.session = session
        self.manifest = manifest
        self.mask = MaskSpec.from_card(card.preprocessing)

    def model_view(self, image: Image.Image) -> Image.Image:
        """The masked, resized and cropped image exactly as the model sees it (as ``LoadedModel.model_view``)."""
        image = image.convert("RGB")
        if self.mask is not None:
            image = self.mask.apply(image)
        return geometry.replay(self.manifest["geometry"], image)

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:
        """A normalised float32 batch (N, 3, H, W)."""
        return geometry.normalise([self.model_view(img) for img in images], self.manifest["mean"], self.manifest["std"])

    def predict_proba_and_members(self, images: Sequence[Image.Image],
                                  batch_size: int = 32) -> tuple[np.ndarray, np.ndarray | None]:
        """Temperature-scaled probabilities (N, C), and for an ensemble each member's (N, M, C), as
        ``LoadedModel.predict_proba_and_members`` computes them (flip averaging when the card asks)."""
        chunks, member_chunks = [], []
        flip = bool(self.manifest.get("hflip_tta"))
        for start in range(0, len(images), batch_size):
            x = self.preprocess(images[start : start + batch_size])
            n = len(x)
            if flip:  # the photo and its mirror image in one pass, averaged (logits, like the torch path)
                x = np.concatenate([x, np.ascontiguousarray(x[:, :, :, ::-1])])
            outputs = self.session.run(None, {"x": x})
            logits = outputs[0]
            members = outputs[1] if len(outputs) > 1 else None
            if flip:
                logits = (logits[:n] + logits[n:]) / 2
                members = None if members is None else (members[:n] + members[n:]) / 2
            chunks.append(_softmax(logits, self.card.temperature, axis=1))
            if members is not None:
                member_chunks.append(_softmax(members, self.card.temperature, axis=2))
        if not chunks:
            return np.zeros((0, self.card.num_classes), dtype=np.float64), None
        return np.concatenate(chunks), (np.concatenate(member_chunks) if member_chunks else None)

    def predict_proba(self, images: Sequence[Image.Image], batch_size: int = 32) -> np.ndarray:
        """Temperature-scaled class probabilities, shape (N, C)."""
        return self.predict_proba_and_members(images, batch_size)[0]


class OnnxExtractor:
    """The scope check's ImageNet features, from the cached extractor graph (as ``FeatureExtractor``)."""

    def __init__(self, session: Any, size: int) -> None:
        self.session = session
        self.size = int(size)

    def __call__(self, images: Sequence[Image.Image], batch_size: int = 64) -> np.ndarray:
        """Features of ``images``, shape (N, D), float32."""
        chunks = [self.session.run(None, {"x": extractor_input(images[i : i + batch_size], self.size)})[0]
                  for i in range(0, len(images), batch_size)]
        return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0, 0), dtype=np.float32)


def _say(text: str) -> None:
    """A progress note for a person at a terminal (scripts reading stderr see only errors)."""
    if sys.stderr.isatty():
        print(f"note: {text}", file=sys.stderr)


def model_entry(card: ModelCard) -> cache.Entry:
    """The cache entry of a model's graph; verifies its weights file against the card first.

    Raises:
        ModelError: The weights file is missing or does not match the card's checksum.
    """
    path = card.weights_path
    sha = check_file(path, card.weights.get("sha256"), f"The weights file of model '{card.id}'",
                     "Reinstall the model or train one with `python -m dermlib train`.") or file_sha256(path)
    parts = {"weights_sha256": sha, "architecture": card.architecture, "members": card.members,
             "classes": card.class_ids, "preprocessing": card.preprocessing, "inference": card.inference}
    return cache.entry("models", card.id, parts)


def _session_of(target: cache.Entry, build, what: str, threads: int):
    manifest = target.read()
    if manifest is None:
        started = time.perf_counter()
        _say(f"preparing the fast CPU path for {what} (once on this machine; the first run takes longer).")
        manifest = build()
        logger.info("Cached %s in %s (%.1f s).", what, target.folder, time.perf_counter() - started)
    return cpu_session(target.graph, threads, compiled_dir=target.compiled), manifest


def open_model(card: ModelCard, threads: int | None = None) -> OnnxModel:
    """The model's :class:`OnnxModel`, exporting its graph into the cache first if it is not there.

    Args:
        card: An installed model's card.
        threads: Intra-op threads (default: the CPUs this process may use, ``models.threads``).

    Raises:
        ModelError: Missing or damaged weights.
        geometry.UnsupportedStep: Preprocessing this path does not reproduce (use torch).
        OSError: The cache cannot be written.
    """
    from dermlib.models.threads import default_threads

    target = model_entry(card)

    def build() -> dict[str, Any]:
        from dermlib.runtime.export import export_model

        return export_model(card, target)

    session, manifest = _session_of(target, build, f"model '{card.id}'", threads or default_threads())
    return OnnxModel(card, session, manifest)


@functools.lru_cache(maxsize=2)
def open_extractor(architecture: str = DEFAULT_EXTRACTOR, size: int = DEFAULT_EXTRACTOR_SIZE) -> OnnxExtractor:
    """The scope extractor from the cache (exported first if missing), opened once per process; one thread,
    as in the app.

    Raises:
        ModelError: The packaged ImageNet checkpoint is not installed.
        OSError: The cache cannot be written.
    """
    target = cache.entry("extractors", architecture, {"architecture": architecture, "size": int(size)})

    def build() -> dict[str, Any]:
        from dermlib.runtime.export import export_extractor

        return export_extractor(architecture, size, target)

    session, _ = _session_of(target, build, "the scope check", 1)
    return OnnxExtractor(session, size)


def predict_images(model: OnnxModel, images: Sequence[Image.Image], top_k: int = 3,
                   check_scope: bool = True) -> list[Prediction]:
    """Classify RGB images and check their scope, as :func:`dermlib.inference.predict_batch` does.

    Raises:
        ModelError: The model's scope statistics are missing or damaged.
    """
    from dermlib.scope.checker import UNCHECKED, get_checker

    probs, members = model.predict_proba_and_members(images)
    checker = get_checker(model.card) if check_scope else None
    if checker is None:
        scopes = [UNCHECKED] * len(images)
    else:
        scopes = checker.check(list(images), extractor=open_extractor(*checker.extractor_name))
    return [build_prediction(model, row, top_k, None if members is None else members[i], scopes[i])
            for i, row in enumerate(probs)]
