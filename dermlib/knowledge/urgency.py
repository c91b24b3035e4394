"""How soon to see a doctor for a result: the most urgent Disease Library entry among the likely classes.

The Library's own urgency levels (``routine`` < ``soon`` < ``urgent``) and its "when to see a doctor" text
decide; the Diagnose page's urgency line and the case report both read :func:`urgency_for`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dermlib.inference import Prediction
    from dermlib.knowledge.base import KnowledgeBase
    from dermlib.models import ModelCard

#: A class takes part in the urgency line from this calibrated probability up.
URGENCY_MIN_PROBABILITY = 0.10


@dataclass(frozen=True)
class Urgency:
    """How soon to see a doctor, from the most urgent Disease Library entry among the likely classes.

    Attributes:
        level: The entry's urgency, one of :data:`dermlib.knowledge.URGENCIES` (``routine``, ``soon``, ``urgent``).
        condition_id: The Library entry's id.
        condition_name: The Library entry's name.
        class_name: The model class that led to the entry.
        probability: That class's calibrated probability.
        when_to_see_doctor: The entry's advice.
    """

    level: str
    condition_id: str
    condition_name: str
    class_name: str
    probability: float
    when_to_see_doctor: str

    def sentence(self) -> str:
        """The urgency line, e.g. ``Soon (Melanoma, 34.5%): Seek care within days, ...``."""
        return (f"{self.level.capitalize()} ({self.condition_name}, {self.probability:.1%}): "
                f"{self.when_to_see_doctor}")


def urgency_for(prediction: Prediction, card: ModelCard, kb: KnowledgeBase | None = None,
                min_probability: float = URGENCY_MIN_PROBABILITY) -> tuple[Urgency | None, str]:
    """The urgency line: the most urgent Library entry among the top-k classes of at least ``min_probability``.

    Urgency levels are the Disease Library's own (``routine`` < ``soon`` < ``urgent``); of two entries equally
    urgent the more probable class wins. No urgency is given for a photo out of the model's scope: its
    probabilities mean nothing.

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
    likely = [s for s in prediction.top_k if s.probability >= min_probability]
    if not likely:
        return None, (f"Not given: no condition reaches {min_probability:.0%}. "
                      "If a spot is new, changing, bleeding or worrying you, see a doctor.")
    from dermlib.knowledge import URGENCIES, load_knowledge_base, resolve_card_class

    kb = kb or load_knowledge_base()
    by_id = {c.id: c for c in card.classes}
    best: Urgency | None = None
    for score in likely:
        info = by_id.get(score.label)
        entry = resolve_card_class(kb, card, info) if info is not None else None
        if entry is None or entry.urgency not in URGENCIES:
            continue
        if best is None or URGENCIES.index(entry.urgency) > URGENCIES.index(best.level):
            best = Urgency(entry.urgency, entry.id, entry.name, score.name, score.probability,
                           entry.when_to_see_doctor)
    if best is None:
        return None, ("Not given: the Disease Library has no entry for the likely conditions. "
                      "If a spot is new, changing, bleeding or worrying you, see a doctor.")
    return best, ""
