"""How soon to see a doctor for a result: the most urgent Disease Library entry among the likely classes.

The Library's own urgency levels (``routine`` < ``soon`` < ``urgent``) and its "when to see a doctor" text
decide; the Diagnose page's urgency line and the case report both read :func:`urgency_for`.

A model that knows many conditions spreads a malignant lesion's probability over several malignant classes,
none of which may reach :data:`URGENCY_MIN_PROBABILITY`. So a card may also carry a *malignant alert*
(``calibration.malignant_alert``, fitted on the validation split by :func:`fit_malignant_alert`): when the
malignant classes together reach its threshold, the most probable of them counts as well.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from dermlib.inference import Prediction
    from dermlib.knowledge.base import KnowledgeBase
    from dermlib.models import ModelCard

#: A class takes part in the urgency line from this calibrated probability up.
URGENCY_MIN_PROBABILITY = 0.10
#: The malignant alert's threshold is the highest one that still flags this share of the validation split's
#: malignant photos. 95%: what the top-3 rule above caught with the 21-condition default (95.5% of its
#: malignant test photos), so that no model falls below it where a miss costs most.
MALIGNANT_ALERT_SENSITIVITY = 0.95
#: Fewer malignant validation photos than this give no alert: the threshold would be chosen on noise.
MALIGNANT_ALERT_MIN_POSITIVES = 20
#: The advice for a likely class of the malignant risk group that no Library entry describes (a dermoscopy
#: model's plain "malignant"): it must not go without an urgency line because the Library cannot name it.
MALIGNANT_WITHOUT_ENTRY = (
    "Have this lesion examined by a doctor within a few weeks, and sooner if it is growing, changing, bleeding "
    "or sore. Only an examination, usually with a dermatoscope and where needed a biopsy, can tell whether it "
    "is a cancer; this result neither shows nor rules that out."
)
#: ... and for a likely benign class no entry describes (the dermoscopy model's "benign"): a routine line, so
#: that a reassuring answer is never read as an all-clear.
BENIGN_WITHOUT_ENTRY = (
    "Nothing in this result calls for an early visit, but it cannot rule a problem out: have a spot that is "
    "new, growing, changing, bleeding or worrying you checked by a doctor."
)


@dataclass(frozen=True)
class Urgency:
    """How soon to see a doctor, from the most urgent Disease Library entry among the likely classes.

    Attributes:
        level: The entry's urgency, one of :data:`dermlib.knowledge.URGENCIES` (``routine``, ``soon``, ``urgent``).
        condition_id: The Library entry's id; empty for a benign or malignant class no entry describes.
        condition_name: The Library entry's name (that class's name where there is no entry).
        class_name: The model class that led to the entry.
        probability: That class's calibrated probability.
        when_to_see_doctor: The entry's advice.
        malignant_total: Set when the malignant alert raised it: the malignant classes' summed probability.
    """

    level: str
    condition_id: str
    condition_name: str
    class_name: str
    probability: float
    when_to_see_doctor: str
    malignant_total: float | None = None

    def because(self, digits: int = 1) -> str:
        """What raised it, e.g. ``Melanoma, 34.5%`` or ``malignant conditions together 23.0%, most likely
        Melanoma``: the model's class name, as the result's chart writes it (the Library entry may be called
        otherwise, "Atopic eczema" for the class "Eczema")."""
        if self.malignant_total is not None:
            return f"malignant conditions together {self.malignant_total:.{digits}%}, most likely {self.class_name}"
        return f"{self.class_name}, {self.probability:.{digits}%}"

    def reason(self, prediction: Prediction | None = None, digits: int = 0) -> str:
        """Why the line says what it says, worded so that it is not read as the diagnosis.

        The line follows the most urgent condition among the likely ones, which need not be the first answer,
        and it is given even when the model is not sure (a possible melanoma must not go unmentioned). Said
        plainly, "because of Dermatomyositis, 12%" beside a first answer of eczema, or beside "no diagnosis",
        read as one.

        Args:
            prediction: The prediction the line is for; without it, plainly "because of ...".
            digits: Decimals of the percentage.
        """
        because = self.because(digits)
        first = prediction.top_k[0].name if prediction is not None and prediction.top_k else None
        if prediction is None or self.malignant_total is not None or (
                self.class_name == first and not prediction.uncertain):
            return f"because of {because}"
        if self.class_name == first:
            return f"to be safe: {because} is the likeliest possibility, though the model is not sure"
        return f"to be safe: {because} is among the possibilities, and the most urgent of them"

    def sentence(self, prediction: Prediction | None = None) -> str:
        """The urgency line, e.g. ``Soon (because of Melanoma, 34.5%): Seek care within days, ...``."""
        return f"{self.level.capitalize()} ({self.reason(prediction, 1)}): {self.when_to_see_doctor}"


def urgency_for(prediction: Prediction, card: ModelCard, kb: KnowledgeBase | None = None,
                min_probability: float = URGENCY_MIN_PROBABILITY) -> tuple[Urgency | None, str]:
    """The urgency line: the most urgent Library entry among the top-k classes of at least ``min_probability``.

    Urgency levels are the Disease Library's own (``routine`` < ``soon`` < ``urgent``); of two entries equally
    urgent the more probable class wins. When the card's malignant alert fires (the malignant classes together
    reach its threshold), the most probable malignant class joins them. No urgency is given for a photo out
    of the model's scope: its probabilities mean nothing.

    Args:
        prediction: The prediction.
        card: The model's card (its training dataset tells the Library how to read the class ids).
        kb: The Disease Library (default: the bundled one).
        min_probability: The smallest calibrated probability a class needs to count.

    Returns:
        ``(urgency, "")``, or ``(None, why there is none)``.
    """
    if not prediction.in_scope:
        return None, "Not given: the photo is outside what this model can read."
    likely = [(s.label, s.name, s.probability, None) for s in prediction.top_k if s.probability >= min_probability]
    alert = malignant_alert_fires(prediction, card)
    if alert is not None:
        likely.append(alert)
    if not likely:
        return None, (f"Not given: no condition reaches {min_probability:.0%}. "
                      "If a spot is new, changing, bleeding or worrying you, see a doctor.")
    from dermlib.knowledge import URGENCIES, load_knowledge_base, resolve_card_class

    kb = kb or load_knowledge_base()
    by_id = {c.id: c for c in card.classes}
    best: Urgency | None = None
    for label, name, probability, total in likely:
        info = by_id.get(label)
        entry = resolve_card_class(kb, card, info) if info is not None else None
        if entry is None and info is not None and info.risk_group == "malignant":
            found = Urgency("soon", "", name, name, probability, MALIGNANT_WITHOUT_ENTRY, total)
        elif entry is None and info is not None and info.risk_group == "benign":
            found = Urgency("routine", "", name, name, probability, BENIGN_WITHOUT_ENTRY, total)
        elif entry is None or entry.urgency not in URGENCIES:
            continue
        else:
            found = Urgency(entry.urgency, entry.id, entry.name, name, probability, entry.when_to_see_doctor, total)
        if best is None or URGENCIES.index(found.level) > URGENCIES.index(best.level):
            best = found
    if best is None:
        return None, ("Not given: the Disease Library has no entry for the likely conditions. "
                      "If a spot is new, changing, bleeding or worrying you, see a doctor.")
    return best, ""


def alert_threshold(card: ModelCard) -> float | None:
    """The card's malignant-alert threshold; None when it has no alert or needs none."""
    return (card.calibration.get("malignant_alert") or {}).get("threshold")


def malignant_alert_fires(prediction: Prediction, card: ModelCard) -> tuple[str, str, float, float] | None:
    """The most probable malignant class when the card's malignant alert fires, else None.

    Returns:
        ``(class id, class name, its probability, the malignant classes' summed probability)``.
    """
    threshold = alert_threshold(card)
    total = float(prediction.risk.get("malignant", 0.0))
    if threshold is None or total < float(threshold) or total <= 0.0:
        return None
    malignant = [(p, c) for c, p in zip(card.classes, prediction.probabilities, strict=True)
                 if c.risk_group == "malignant"]
    p, info = max(malignant, key=lambda pc: pc[0])
    return info.id, info.name, float(p), total


def urgency_flags(probs: np.ndarray, malignant: np.ndarray, threshold: float | None,
                  min_probability: float = URGENCY_MIN_PROBABILITY, k: int = 3) -> np.ndarray:
    """Per row of ``probs``: would the urgency line name a malignant class? (A malignant class in the top
    ``k`` with at least ``min_probability``, or the malignant classes together at ``threshold`` or more.)

    What the Diagnose page does, without the Disease Library: evaluation code scores the rule with it.

    Args:
        probs: Calibrated probabilities, shape (N, C).
        malignant: Boolean mask of the malignant classes, shape (C,).
        threshold: The card's malignant-alert threshold, or None for none.
        min_probability: As :func:`urgency_for`.
        k: How many classes the page lists.
    """
    probs = np.asarray(probs, dtype=np.float64)
    malignant = np.asarray(malignant, dtype=bool)
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    rows = np.arange(len(probs))[:, None]
    named = (malignant[top] & (probs[rows, top] >= min_probability)).any(axis=1)
    if threshold is not None:
        named |= probs[:, malignant].sum(axis=1) >= float(threshold)
    return named


def fit_malignant_alert(probs: np.ndarray, truth_malignant: np.ndarray, malignant: np.ndarray,
                        sensitivity: float = MALIGNANT_ALERT_SENSITIVITY,
                        min_positives: int = MALIGNANT_ALERT_MIN_POSITIVES) -> dict | None:
    """The malignant alert for a card, chosen on validation photos.

    The threshold on the malignant classes' summed probability is the highest one at which the urgency
    line (:func:`urgency_flags`, the top-3 rule included) still names a malignant class for at least
    ``sensitivity`` of the malignant photos. Where the top-3 rule reaches that alone, the threshold is None:
    no alert is needed.

    Args:
        probs: Calibrated validation probabilities, shape (N, C).
        truth_malignant: Whether each photo's true class is malignant, shape (N,).
        malignant: Boolean mask of the malignant classes, shape (C,).
        sensitivity: The share of malignant photos the line must name.
        min_positives: Fewest malignant photos to fit on.

    Returns:
        ``threshold`` (None: not needed), ``target_sensitivity``, ``val_sensitivity``, ``val_specificity``,
        ``n_malignant`` and ``n``; None when the model has no malignant class or too few malignant photos.
    """
    probs = np.asarray(probs, dtype=np.float64)
    truth = np.asarray(truth_malignant, dtype=bool)
    malignant = np.asarray(malignant, dtype=bool)
    if not malignant.any() or truth.sum() < min_positives or (~truth).sum() == 0:
        return None
    base = urgency_flags(probs, malignant, None)
    total = probs[:, malignant].sum(axis=1)
    needed = int(np.ceil(sensitivity * truth.sum()))
    missed_sums = np.sort(total[truth & ~base])[::-1]  # malignant photos the top-3 rule misses
    still_needed = needed - int((truth & base).sum())
    threshold = None
    if still_needed > 0:
        # Rounded down for the card: rounding up could leave the photo that sets it just above the line.
        threshold = math.floor(float(missed_sums[min(still_needed, len(missed_sums)) - 1]) * 1e6) / 1e6
    flags = urgency_flags(probs, malignant, threshold)
    return {"threshold": threshold, "target_sensitivity": sensitivity,
            "val_sensitivity": round(float(flags[truth].mean()), 4),
            "val_specificity": round(float((~flags[~truth]).mean()), 4),
            "n_malignant": int(truth.sum()), "n": len(truth)}


def score_malignant_alert(probs: np.ndarray, truth_malignant: np.ndarray, malignant: np.ndarray,
                          threshold: float | None) -> dict:
    """How the urgency line does on held-out photos, with the malignant alert and without it.

    Returns:
        ``threshold``, ``n_malignant``, ``n_other`` and, for ``with_alert`` and ``top3_rule_only``,
        ``sensitivity``, ``specificity`` and their 95% Wilson intervals.
    """
    from dermlib.evaluate.metrics import wilson_interval

    def interval(k: int, n: int) -> list[float] | None:
        ci = wilson_interval(k, n)
        return None if ci is None else [round(float(v), 4) for v in ci]

    truth = np.asarray(truth_malignant, dtype=bool)
    out: dict = {"threshold": threshold, "n_malignant": int(truth.sum()),
                 "n_other": int((~truth).sum())}
    for key, t in (("with_alert", threshold), ("top3_rule_only", None)):
        flags = urgency_flags(probs, malignant, t)
        hit, cleared = int(flags[truth].sum()), int((~flags[~truth]).sum())
        out[key] = {"sensitivity": round(hit / max(1, truth.sum()), 4),
                    "sensitivity_ci95": interval(hit, int(truth.sum())),
                    "specificity": round(cleared / max(1, (~truth).sum()), 4),
                    "specificity_ci95": interval(cleared, int((~truth).sum()))}
    return out
