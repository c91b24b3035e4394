"""The scope check run on every prediction: is this a photo of skin, of the model's modality, good enough?

The fitted statistics travel with the model: ``scope.safetensors`` beside the weights (checksum in the card,
verified like the weights) and the ``scope`` section of the card (score, threshold, extractor, quality
thresholds and the measured figures). :func:`get_checker` loads them once per model file;
:meth:`ScopeChecker.check` answers for one image.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from dermlib.errors import ModelError
from dermlib.models.card import ModelCard
from dermlib.models.threads import SCOPE_PARALLEL_ENV, scope_check_beside
from dermlib.scope.detectors import OODScore, create_score
from dermlib.scope.names import DEFAULT_EXTRACTOR, DEFAULT_EXTRACTOR_SIZE
from dermlib.scope.quality import QualityWarning, measure, quality_warnings

if TYPE_CHECKING:
    import torch

#: Anything that turns RGB images into pooled features, shape (N, D): the shared torch or ONNX Runtime
#: :class:`~dermlib.scope.features.FeatureExtractor`, or the command line's cached graph
#: (:mod:`dermlib.runtime`).
Extractor = Callable[[Sequence[Image.Image]], np.ndarray]

SCOPE_FILE = "scope.safetensors"

#: Result codes and the reason stored with them.
REASONS = {
    "in_scope": "in scope",
    "not_skin": "not a photo of skin of the kind this model knows",
    "wrong_modality": "wrong imaging modality",
    "unchecked": "not checked: the model has no scope statistics",
}
_MODALITY_WORDS = {"clinical": "an ordinary clinical photo of skin", "dermoscopy": "a dermoscopy image"}


@dataclass(frozen=True)
class ScopeResult:
    """The scope check's answer for one image.

    Attributes:
        in_scope: False for a photo that is not skin of the model's kind, or of the other modality.
        code: ``in_scope``, ``not_skin``, ``wrong_modality`` or ``unchecked``.
        score: The out-of-distribution score (higher = further from the training photos); None if unchecked.
        threshold: Scores above it are out of scope.
        modality_probability: Probability that the image is of the *other* modality than the model's.
        message: One plain sentence for the page, empty when in scope.
        suggested_model: Id of an installed model of the image's modality, when it is the wrong one.
        quality: Quality warnings (a warning, never a refusal).
    """

    in_scope: bool
    code: str
    score: float | None
    threshold: float | None
    modality_probability: float | None = None
    message: str = ""
    suggested_model: str | None = None
    quality: tuple[QualityWarning, ...] = field(default=())

    @property
    def reason(self) -> str:
        """The reason in words (see :data:`REASONS`)."""
        return REASONS[self.code]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``score``, ``threshold``, ``reason``, ``quality`` and the details behind them."""
        return {
            "score": None if self.score is None else round(self.score, 6),
            "threshold": None if self.threshold is None else round(self.threshold, 6),
            "reason": self.reason,
            "code": self.code,
            "message": self.message,
            "other_modality_probability": None if self.modality_probability is None
            else round(self.modality_probability, 6),
            "suggested_model": self.suggested_model,
            "quality": [w.to_dict() for w in self.quality],
        }


UNCHECKED = ScopeResult(True, "unchecked", None, None)


def other_modality(task: str) -> str:
    """The modality a model of ``task`` does not read (clinical <-> dermoscopy)."""
    return "clinical" if task == "dermoscopy" else "dermoscopy"


class ModalityClassifier:
    """Logistic regression on unit-length ImageNet features: probability that an image is dermoscopy."""

    def __init__(self, coef: np.ndarray, intercept: float, mean: np.ndarray, scale: np.ndarray) -> None:
        self.coef, self.intercept = np.asarray(coef, np.float64), float(intercept)
        self.mean, self.scale = np.asarray(mean, np.float64), np.asarray(scale, np.float64)

    def dermoscopy_probability(self, features: np.ndarray) -> np.ndarray:
        """P(dermoscopy) per row of ``features``."""
        z = np.asarray(features, np.float64)
        z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        logit = ((z - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(logit, -50, 50)))

    def state(self) -> dict[str, torch.Tensor]:
        """Named tensors for the sidecar."""
        import torch

        return {"modality.coef": torch.tensor(self.coef, dtype=torch.float32),
                "modality.intercept": torch.tensor([self.intercept], dtype=torch.float32),
                "modality.mean": torch.tensor(self.mean, dtype=torch.float32),
                "modality.scale": torch.tensor(self.scale, dtype=torch.float32)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ModalityClassifier:
        """Inverse of :meth:`state` (its values may be torch tensors or numpy arrays)."""
        def array(name: str) -> np.ndarray:
            return np.asarray(state[name], dtype=np.float64)

        return cls(array("modality.coef"), float(array("modality.intercept").reshape(-1)[0]),
                   array("modality.mean"), array("modality.scale"))


def load_scope_state(card: ModelCard) -> dict[str, np.ndarray]:
    """Read and verify a model's scope sidecar (as numpy arrays: the check needs no torch).

    Raises:
        ModelError: The card has no scope section, or the file is missing, damaged or not safetensors.
    """
    from dermlib.models.verify import read_verified_safetensors

    section = card.raw.get("scope") or {}
    if not section or card.path is None:
        raise ModelError(f"Model '{card.id}' has no scope statistics; fit them with `python -m dermlib scope fit`.")
    return read_verified_safetensors(card.path / str(section.get("file", SCOPE_FILE)), section.get("sha256"),
                                     f"The scope statistics file of model '{card.id}'",
                                     "Reinstall the model or refit them with `python -m dermlib scope fit`.",
                                     framework="numpy")


class ScopeChecker:
    """One model's scope check, ready to run.

    Args:
        card: The model's card (its ``scope`` section says what to run).
        state: The sidecar's arrays (:func:`load_scope_state`).
        extractor: The frozen feature extractor (default: the one the card names, shared process-wide, built
            on the first image: a checker asked only to score features, as another model's is, never needs it).
    """

    def __init__(self, card: ModelCard, state: dict[str, Any], extractor: Extractor | None = None) -> None:
        section = card.raw["scope"]
        self.card = card
        self.task = card.task or "clinical"
        self.score_name = str(section["score"])
        self.threshold = float(section["threshold"])
        self.max_other_probability = float(section["modality"]["max_other_probability"])
        self.quality_thresholds = dict(section.get("quality", {}).get("thresholds", {}))
        ext = section.get("extractor", {})
        self.extractor_name = (str(ext.get("architecture", DEFAULT_EXTRACTOR)),
                               int(ext.get("size", DEFAULT_EXTRACTOR_SIZE)))
        self._extractor = extractor
        prefix = f"score.{self.score_name}."
        self.ood: OODScore = create_score(self.score_name).load_state(
            {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
        self.modality = ModalityClassifier.from_state(state)

    @property
    def extractor(self) -> Extractor:
        """The feature extractor (the shared one the card names unless one was given)."""
        if self._extractor is None:
            from dermlib.scope.features import get_extractor

            self._extractor = get_extractor(*self.extractor_name)
        return self._extractor

    def features(self, images: list[Image.Image]) -> np.ndarray:
        """The extractor's features of ``images``."""
        return self.extractor(images)

    def scores(self, features: np.ndarray) -> np.ndarray:
        """OOD score per row of ``features``."""
        return self.ood.score(features)

    def other_probability(self, features: np.ndarray) -> np.ndarray:
        """Probability, per row, that the image is of the other modality than the model's."""
        p = self.modality.dermoscopy_probability(features)
        return p if self.task != "dermoscopy" else 1.0 - p

    def check_features(self, features: np.ndarray, measures: list[dict[str, float]] | None = None) -> list[ScopeResult]:
        """Scope results for precomputed features (one row per image) and optional quality measures."""
        scores = self.scores(features)
        other = self.other_probability(features)
        results = []
        for i in range(len(features)):
            score, other_p = float(scores[i]), float(other[i])
            code, suggested = self._decide_row(features[i : i + 1], score, other_p)
            quality = tuple(quality_warnings(measures[i], self.quality_thresholds)) if measures else ()
            results.append(ScopeResult(code == "in_scope", code, score, self.threshold, other_p,
                                       self.message(code, suggested), suggested, quality))
        return results

    def _decide_row(self, feature_row: np.ndarray, score: float, other_p: float) -> tuple[str, str | None]:
        # The other modality's probability only makes it "the wrong modality" when the image also lies within
        # an installed model of that modality's training photos; otherwise it is simply not skin of our kind.
        # So a natural photo shown to the dermoscopy model is refused as "not a dermoscopy image of skin",
        # not sent to the clinical model.
        if other_p > self.max_other_probability:
            alternative = _alternative_checker(self.card, other_modality(self.task))
            if alternative is not None:
                if float(alternative.scores(feature_row)[0]) <= alternative.threshold:
                    return "wrong_modality", alternative.card.id
                return "not_skin", None
            # No model of the other modality to ask: far from our own photos as well means not skin.
            return ("not_skin" if score > self.threshold else "wrong_modality"), None
        return ("not_skin" if score > self.threshold else "in_scope"), None

    def message(self, code: str, suggested: str | None) -> str:
        """The sentence the page shows for a result code."""
        if code == "not_skin":
            return f"This does not look like {_MODALITY_WORDS.get(self.task, 'a photo of skin')} of the kind this " \
                   "model was trained on, so DermLens gives no diagnosis for it."
        if code == "wrong_modality":
            other = other_modality(self.task)
            text = f"This looks like {_MODALITY_WORDS[other]}, but this model reads only " \
                   f"{_MODALITY_WORDS.get(self.task, 'its own kind of image')}."
            if not suggested:
                return text + f" No model for {other} images is installed."
            # The page's picker lists names, the command line takes ids: name both.
            name = _model_name(suggested)
            return text + (f" Choose the model '{name}' ({suggested}) instead." if name and name != suggested
                           else f" Use the model '{suggested}' instead.")
        return ""

    def check(self, images: list[Image.Image], extractor: Extractor | None = None) -> list[ScopeResult]:
        """Scope results for RGB images (see :func:`dermlib.images.load_image`).

        Args:
            images: The images.
            extractor: Compute the features with this one instead (the command line's cached graph).
        """
        if not images:
            return []
        features = extractor(images) if extractor is not None else self.features(images)
        return self.check_features(features, [measure(img) for img in images])


@functools.lru_cache(maxsize=8)
def _checker_for(path: str, weights_sha: str, scope_sha: str) -> ScopeChecker:
    from dermlib.models.card import load_card

    card = load_card(Path(path))
    return ScopeChecker(card, load_scope_state(card))


def get_checker(card: ModelCard) -> ScopeChecker | None:
    """The cached checker of a model, or None when its card has no scope statistics.

    Raises:
        ModelError: The card names statistics that are missing or damaged.
    """
    section = card.raw.get("scope")
    if not section or card.path is None:
        return None
    return _checker_for(str(card.path), str(card.weights.get("sha256", "")), str(section.get("sha256", "")))


def _alternative_checker(card: ModelCard, modality: str) -> ScopeChecker | None:
    """The checker of an installed model (the default first) that reads ``modality``, if any."""
    from dermlib.models.registry import list_models

    root = card.path.parent if card.path is not None else None
    try:
        candidates = [c for c in list_models(root) if c.task == modality and c.raw.get("scope")]
    except (OSError, ModelError):
        return None
    for other in sorted(candidates, key=lambda c: (not c.default, c.id)):
        try:
            return get_checker(other)
        except ModelError:
            continue
    return None


def check_images(card: ModelCard, images: list[Image.Image]) -> list[ScopeResult]:
    """The scope check for a model's images: :data:`UNCHECKED` results when the model has no statistics.

    Raises:
        ModelError: The statistics named by the card are missing or damaged.
    """
    checker = get_checker(card)
    if checker is None:
        return [UNCHECKED for _ in images]
    return checker.check(images)


PARALLEL_ENV = SCOPE_PARALLEL_ENV  # ``0`` runs the check after the classifier (models.threads)
_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def start_check(card: ModelCard, images: list[Image.Image]) -> Future[list[ScopeResult]]:
    """Start :func:`check_images`; its answer is the returned future's result.

    For one photo on a machine with a second usable CPU it runs in a worker thread, so that the
    extractor's single-threaded ONNX Runtime pass (about 10 ms) overlaps the classifier's instead of
    following it; otherwise it runs here and the future is already done. Errors (missing or damaged
    statistics: :class:`~dermlib.errors.ModelError`) are raised by ``result()``.
    """
    from dermlib.models.slots import inference_slot

    def run() -> list[ScopeResult]:
        with inference_slot():
            return check_images(card, images)

    if len(images) == 1 and get_checker(card) is not None and scope_check_beside():
        global _pool
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dermlens-scope")
            return _pool.submit(run)
    done: Future[list[ScopeResult]] = Future()
    try:
        done.set_result(run())
    except Exception as exc:  # handed to the caller by result(), as from the worker thread
        done.set_exception(exc)
    return done


def _model_name(model_id: str) -> str | None:
    """The installed model's display name, or None when its card cannot be read."""
    from dermlib.models import get_card

    try:
        return get_card(model_id).name
    except Exception:  # a message must never fail because a card did
        return None
