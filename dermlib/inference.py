"""Prediction: calibrated probabilities, the top-k list, risk-group totals and abstention."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from dermlib.evaluate.calibration import normalized_entropy as _normalized_entropy
from dermlib.models.card import ModelCard
from dermlib.scope.checker import UNCHECKED, ScopeResult, start_check

if TYPE_CHECKING:  # torch and timm: imported where a model runs, so packaging a result needs neither
    from dermlib.models.loading import LoadedModel
    from dermlib.runtime.model import OnnxModel

# Used only when a card carries no thresholds of its own (an uncalibrated model): abstain readily.
DEFAULT_MIN_TOP1 = 0.5
DEFAULT_MAX_NORMALIZED_ENTROPY = 0.75


@dataclass(frozen=True)
class ClassScore:
    """One entry of the top-k list."""

    label: str
    name: str
    probability: float
    risk_group: str


@dataclass(frozen=True)
class MemberVote:
    """What one member of an ensemble would answer on its own.

    Attributes:
        architecture: The member's timm architecture.
        top: The member's most probable class, with its probability on the ensemble's temperature.
        agrees: Whether that class is also the ensemble's most probable one.
        input_px: The side of the square image the member sees (members of one architecture may differ).
    """

    architecture: str
    top: ClassScore
    agrees: bool
    input_px: int | None = None

    @property
    def label(self) -> str:
        """Architecture and input size, e.g. ``tf_efficientnet_lite0 at 288 px``."""
        return f"{self.architecture} at {self.input_px} px" if self.input_px else self.architecture


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one image.

    Attributes:
        model_id: The card id of the model that answered.
        probabilities: Calibrated probability of every class, in card order.
        top_k: The k most probable classes, most probable first.
        risk: Probability summed per risk group (benign / malignant / non-neoplastic).
        uncertain: True when the model should not be trusted on this image.
        reasons: Why it is uncertain (empty when it is not).
        normalized_entropy: Entropy of the probabilities divided by log(C), in [0, 1].
        members: For an ensemble, each member's own top class (empty for a single network).
        scope: The scope check: whether the image is a photo of skin of the model's modality, with quality
            warnings. When ``scope.in_scope`` is False, the probabilities are the model's output for an image
            it was never meant to read: pages hide them by default.
    """

    model_id: str
    probabilities: tuple[float, ...]
    top_k: tuple[ClassScore, ...]
    risk: dict[str, float]
    uncertain: bool
    reasons: tuple[str, ...] = field(default=())
    normalized_entropy: float = 0.0
    members: tuple[MemberVote, ...] = field(default=())
    scope: ScopeResult = UNCHECKED

    @property
    def in_scope(self) -> bool:
        """False when the scope check found the image out of scope (not skin, or the wrong modality)."""
        return self.scope.in_scope

    @property
    def members_disagree(self) -> bool:
        """True when an ensemble's members do not all pick the ensemble's top class."""
        return any(not m.agrees for m in self.members)

    def to_dict(self) -> dict:
        """JSON-ready form used by the CLI (``top_k``, ``risk``, ``uncertain``, ``in_scope``, ``scope``)."""
        return {
            "model": self.model_id,
            "in_scope": self.scope.in_scope,
            "scope": self.scope.to_dict(),
            "top_k": [
                {"label": s.label, "name": s.name, "probability": round(s.probability, 6)} for s in self.top_k
            ],
            "risk": {k: round(v, 6) for k, v in self.risk.items()},
            "uncertain": self.uncertain,
            "uncertain_reasons": list(self.reasons),
            **({"members": [{"architecture": m.architecture, "input_px": m.input_px, "label": m.top.label,
                             "probability": round(m.top.probability, 6), "agrees": m.agrees}
                            for m in self.members]} if self.members else {}),
        }


def normalized_entropy(probs: np.ndarray) -> np.ndarray:
    """Entropy / log(C) per row (0 one-hot, 1 uniform); a single vector counts as one row."""
    return np.atleast_1d(_normalized_entropy(np.atleast_2d(np.asarray(probs, dtype=np.float64))))


def uncertainty_reasons(probs: np.ndarray, calibration: dict) -> list[str]:
    """Why a probability vector should not be trusted, judged by the card's thresholds."""
    min_top1 = float(calibration.get("min_top1_probability", DEFAULT_MIN_TOP1))
    max_ent = float(calibration.get("max_normalized_entropy", DEFAULT_MAX_NORMALIZED_ENTROPY))
    top1 = float(np.max(probs))
    ent = float(normalized_entropy(probs)[0])
    reasons = []
    if top1 < min_top1:
        a, b = _distinct(top1 * 100, min_top1 * 100, 0)
        reasons.append(f"the most likely class has only {a}% probability (needs at least {b}%)")
    if ent > max_ent:
        a, b = _distinct(ent, max_ent, 2)
        reasons.append(f"the probabilities are spread over many classes (entropy {a} > {b})")
    return reasons


def _distinct(value: float, limit: float, digits: int) -> tuple[str, str]:
    """Both numbers with as few decimals (from ``digits``) as tell them apart: never "0.51 > 0.51"."""
    for d in range(digits, digits + 4):
        a, b = f"{value:.{d}f}", f"{limit:.{d}f}"
        if a != b:
            return a, b
    return a, b


def build_prediction(loaded: LoadedModel | OnnxModel, probs: np.ndarray, top_k: int = 3,
                     member_probs: np.ndarray | None = None, scope: ScopeResult = UNCHECKED) -> Prediction:
    """Package one probability vector as a :class:`Prediction`.

    Args:
        loaded: The model that produced the probabilities.
        probs: Calibrated probabilities, shape (C,).
        top_k: How many classes to list.
        member_probs: For an ensemble, each member's probabilities, shape (M, C).
        scope: The image's scope check (default: not checked).
    """
    card = loaded.card
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    k = max(1, min(int(top_k), card.num_classes))
    order = np.argsort(-probs, kind="stable")[:k]
    top = tuple(_score(card, i, probs[i]) for i in order)
    risk: dict[str, float] = {}
    for info, p in zip(card.classes, probs, strict=True):
        risk[info.risk_group] = risk.get(info.risk_group, 0.0) + float(p)
    reasons = uncertainty_reasons(probs, card.calibration)
    members: tuple[MemberVote, ...] = ()
    if member_probs is not None and card.is_ensemble:
        member_probs = np.asarray(member_probs, dtype=np.float64).reshape(len(card.members), card.num_classes)
        members = tuple(
            MemberVote(str(spec["architecture"]), _score(card, int(np.argmax(row)), row.max()),
                       int(np.argmax(row)) == int(order[0]), int(spec["input_size"][-1]))
            for spec, row in zip(card.members, member_probs, strict=True)
        )
    return Prediction(
        model_id=card.id,
        probabilities=tuple(float(p) for p in probs),
        top_k=top,
        risk=dict(sorted(risk.items(), key=lambda kv: -kv[1])),
        uncertain=bool(reasons),
        reasons=tuple(reasons),
        normalized_entropy=float(normalized_entropy(probs)[0]),
        members=members,
        scope=scope,
    )


def _score(card: ModelCard, index: int, probability: float) -> ClassScore:
    info = card.classes[index]
    return ClassScore(info.id, info.name, float(probability), info.risk_group)


def predict(loaded: LoadedModel, image: Image.Image, top_k: int = 3, check_scope: bool = True) -> Prediction:
    """Classify one RGB image, and check that it is in the model's scope.

    Args:
        loaded: A model from :func:`dermlib.models.load_model`.
        image: An RGB image (see :func:`dermlib.images.load_image`).
        top_k: How many classes to list.
        check_scope: Run the scope check (see :mod:`dermlib.scope`); off only for evaluation code that
            scores a model's own test photos.

    Returns:
        The calibrated prediction (with the members' own answers for an ensemble) and its scope check.

    Raises:
        ModelError: The model's scope statistics are missing or damaged.
    """
    return predict_batch(loaded, [image], top_k=top_k, check_scope=check_scope)[0]


def predict_batch(loaded: LoadedModel, images: list[Image.Image], top_k: int = 3,
                  check_scope: bool = True) -> list[Prediction]:
    """Classify several RGB images in batches; one :class:`Prediction` per image (see :func:`predict`)."""
    # Started first: for one photo it runs beside the classifier on a second CPU (dermlib.scope.checker).
    scope_job = start_check(loaded.card, list(images)) if check_scope else None
    if len(images) == 1:
        # Keep the target layers' activations of this pass: the top-k heatmaps that usually follow then
        # need no second pass through the network (see dermlib.explain.reuse).
        from dermlib.explain import reuse

        with reuse.capture(loaded):
            probs, members = loaded.predict_proba_and_members(images)
    else:
        probs, members = loaded.predict_proba_and_members(images)
    scopes = scope_job.result() if scope_job is not None else [UNCHECKED] * len(images)
    return [build_prediction(loaded, row, top_k, None if members is None else members[i], scopes[i])
            for i, row in enumerate(probs)]
