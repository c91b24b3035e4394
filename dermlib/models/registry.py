"""The registry of installed models: every folder of the weights directory that holds a card.

Both the Streamlit pickers and the CLI's ``--model`` choices come from :func:`list_models`. A registry
holds two tasks: classifiers (every card but segmentation ones) and lesion segmenters
(``"task": "segmentation"``, :mod:`dermlib.segment`); each listing asks for one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dermlib.config import weights_dir
from dermlib.errors import CardError, ModelError
from dermlib.models.card import CARD_FILE, ModelCard, load_card


@dataclass(frozen=True)
class BrokenModel:
    """A model folder whose card could not be read, with the reason (shown in the app and CLI)."""

    folder: Path
    problem: str


def scan_models(root: str | Path | None = None, kind: str = "classifier"
                ) -> tuple[list[ModelCard], list[BrokenModel]]:
    """Read every model card under ``root`` (default: the configured weights directory).

    Args:
        root: The weights directory.
        kind: ``"classifier"``, ``"segmentation"`` or ``"all"``: which task's cards to return (broken
            folders are always listed: their task cannot be known).

    Returns:
        The valid cards sorted by id, and the folders whose card failed with the reason.
    """
    root = Path(root) if root is not None else weights_dir()
    cards: list[ModelCard] = []
    broken: list[BrokenModel] = []
    if not root.is_dir():
        return cards, broken
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and (p / CARD_FILE).exists()):
        try:
            cards.append(load_card(folder))
        except CardError as exc:
            broken.append(BrokenModel(folder, str(exc)))
    seen: set[str] = set()
    unique: list[ModelCard] = []
    for card in sorted(cards, key=lambda c: c.id):
        if card.id in seen:
            broken.append(BrokenModel(card.path or root, f"duplicate model id '{card.id}'"))
            continue
        seen.add(card.id)
        unique.append(card)
    if kind != "all":
        unique = [c for c in unique if c.is_segmentation == (kind == "segmentation")]
    return unique, broken


def list_models(root: str | Path | None = None, kind: str = "classifier") -> list[ModelCard]:
    """Return the cards of the valid installed models of one task (``kind`` as in :func:`scan_models`),
    sorted with the default model first."""
    cards, _ = scan_models(root, kind)
    return sorted(cards, key=lambda c: (not c.default, c.id))


def get_card(model_id: str, root: str | Path | None = None) -> ModelCard:
    """Return the card of an installed model.

    Args:
        model_id: The card's ``id``, or a path to a model folder.
        root: Weights directory (default: configured).

    Raises:
        ModelError: No such model is installed.
    """
    as_path = Path(model_id)
    if (as_path / CARD_FILE).is_file():
        return load_card(as_path)
    cards, broken = scan_models(root, "all")
    for card in cards:
        if card.id == model_id:
            return card
    for item in broken:
        if item.folder.name == model_id:
            raise ModelError(f"Model '{model_id}' is installed but broken: {item.problem}")
    available = ", ".join(c.id for c in cards) or "none"
    raise ModelError(f"No model '{model_id}' is installed (available: {available}).")


def default_model_id(root: str | Path | None = None, kind: str = "classifier") -> str | None:
    """Id of the model the app opens with (of one task): the card marked ``default``, else the first; None
    if none."""
    cards = list_models(root, kind)
    return cards[0].id if cards else None
