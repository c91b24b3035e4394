"""The Disease Library: loading the entries and finding a condition by id, dataset label or text."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from dermlib.errors import KnowledgeError
from dermlib.knowledge.labels import normalise_dataset, normalise_label
from dermlib.knowledge.schema import (
    CONTAGIOUS_VALUES,
    RISK_GROUPS,
    URGENCIES,
    dataset_label_key,
    split_dataset_label,
    validate_entry,
    validate_unique,
)
from dermlib.knowledge.search import RELATIVE_CUTOFF, Bm25fIndex, tokenize

#: Folder of the bundled entries, one ``<id>.json`` per condition.
CONDITIONS_DIR = Path(__file__).resolve().parent / "conditions"
#: ``url_path`` of the Disease Library page in the app's navigation.
DISEASE_LIBRARY_URL_PATH = "disease_library"
#: Query parameter that opens one condition on the Disease Library page.
CONDITION_QUERY_PARAM = "condition"


@dataclass(frozen=True)
class Reference:
    """A source an entry was checked against."""

    title: str
    publisher: str
    url: str


@dataclass(frozen=True)
class Review:
    """How and when an entry was written and checked."""

    date: str
    method: str
    clinician_reviewed: bool


@dataclass(frozen=True)
class Condition:
    """One Disease Library entry (see ``kbplan/BRIEF.md`` for what each field holds)."""

    id: str
    name: str
    aliases: tuple[str, ...]
    dataset_labels: tuple[str, ...]
    risk_group: str
    urgency: str
    contagious: str
    summary: str
    description: str
    appearance: str
    appearance_darker_skin: str
    symptoms: tuple[str, ...]
    causes: tuple[str, ...]
    treatment: str
    when_to_see_doctor: str
    references: tuple[Reference, ...]
    review: Review
    path: Path | None = field(default=None, compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path | None = None) -> Condition:
        """Build a condition from an entry that already passed :func:`validate_entry`."""
        return cls(
            id=data["id"],
            name=data["name"],
            aliases=tuple(data["aliases"]),
            dataset_labels=tuple(data["dataset_labels"]),
            risk_group=data["risk_group"],
            urgency=data["urgency"],
            contagious=data["contagious"],
            summary=data["summary"],
            description=data["description"],
            appearance=data["appearance"],
            appearance_darker_skin=data["appearance_darker_skin"],
            symptoms=tuple(data["symptoms"]),
            causes=tuple(data["causes"]),
            treatment=data["treatment"],
            when_to_see_doctor=data["when_to_see_doctor"],
            references=tuple(Reference(**ref) for ref in data["references"]),
            review=Review(**data["review"]),
            path=path,
        )

    @property
    def dataset_label_pairs(self) -> tuple[tuple[str, str], ...]:
        """The dataset labels split into ``(dataset, label)`` pairs, as the datasets spell them."""
        return tuple(split_dataset_label(value) for value in self.dataset_labels)

    def search_text(self) -> str:
        """All the entry's words in one lower-case string, for free-text search."""
        parts = [
            self.name,
            *self.aliases,
            self.summary,
            self.description,
            self.appearance,
            self.appearance_darker_skin,
            *self.symptoms,
            *self.causes,
            self.treatment,
            self.when_to_see_doctor,
            *(label for _, label in self.dataset_label_pairs),
        ]
        return " ".join(parts).casefold()

    def search_fields(self) -> dict[str, str | tuple[str, ...]]:
        """The entry's text by search field (see ``dermlib.knowledge.search.FIELD_WEIGHTS``)."""
        return {
            "name": self.name,
            "aliases": self.aliases,
            "symptoms": self.symptoms,
            "summary": self.summary,
            "appearance": self.appearance,
            "description": self.description,
            "other": (
                self.appearance_darker_skin,
                *self.causes,
                self.treatment,
                self.when_to_see_doctor,
                *(label for _, label in self.dataset_label_pairs),
            ),
        }


def _as_filter(
    value: str | Iterable[str] | None, allowed: tuple[str, ...], name: str
) -> frozenset[str] | None:
    """Turn a filter argument (one value, several, or None for "any") into a set, rejecting typos."""
    if value is None:
        return None
    values = frozenset([value] if isinstance(value, str) else value)
    unknown = sorted(values - set(allowed))
    if unknown:
        raise ValueError(f"Unknown {name} {unknown[0]!r}; choose from {', '.join(allowed)}")
    return values or None


class KnowledgeBase:
    """The loaded Disease Library: conditions by id, with lookup by dataset label and search.

    Args:
        conditions: Validated conditions (ids, aliases and dataset labels unique).
    """

    def __init__(self, conditions: Iterable[Condition]) -> None:
        ordered = sorted(conditions, key=lambda c: (c.name.casefold(), c.id))
        self._by_id: dict[str, Condition] = {c.id: c for c in ordered}
        self._by_alias: dict[str, str] = {}
        self._by_name: dict[str, set[str]] = {}
        self._by_dataset_label: dict[tuple[str, str], str] = {}
        self._by_label_part: dict[str, set[str]] = {}
        self._name_slugs: dict[str, frozenset[str]] = {}  # slugs of the name and id
        self._alias_slugs: dict[str, frozenset[str]] = {}
        self._name_words: dict[str, tuple[str, ...]] = {}
        for c in ordered:
            for alias in c.aliases:
                self._by_alias.setdefault(normalise_label(alias), c.id)
            self._by_name.setdefault(normalise_label(c.name), set()).add(c.id)
            for value in c.dataset_labels:
                key = dataset_label_key(value)
                self._by_dataset_label[key] = c.id
                self._by_label_part.setdefault(key[1], set()).add(c.id)
            self._name_slugs[c.id] = frozenset({normalise_label(c.name), normalise_label(c.id)} - {""})
            self._alias_slugs[c.id] = frozenset({normalise_label(a) for a in c.aliases} - {""})
            # Each name and alias as normalised words, to find a typed phrase inside one ("skin cancer" in the
            # alias "melanoma skin cancer").
            self._name_words[c.id] = tuple(" ".join(tokenize(t)) for t in (c.name, *c.aliases))
        self._datasets = {dataset for dataset, _ in self._by_dataset_label}

    def __len__(self) -> int:
        return len(self._by_id)

    @functools.cached_property
    def _index(self) -> Bm25fIndex:
        """The search index, built on the first search (loading stays cheap for lookups)."""
        return Bm25fIndex({c.id: c.search_fields() for c in self._by_id.values()})

    def __iter__(self) -> Iterator[Condition]:
        return iter(self._by_id.values())

    def __contains__(self, condition_id: object) -> bool:
        return condition_id in self._by_id

    @property
    def conditions(self) -> list[Condition]:
        """All conditions, sorted by display name."""
        return list(self._by_id.values())

    @property
    def ids(self) -> list[str]:
        """All condition ids, in display-name order."""
        return list(self._by_id)

    def get(self, condition_id: str) -> Condition:
        """Return the condition with this id.

        Args:
            condition_id: An entry id such as ``"psoriasis"``.

        Raises:
            KnowledgeError: When the library has no such entry.
        """
        try:
            return self._by_id[condition_id]
        except KeyError:
            raise KnowledgeError(f"The Disease Library has no condition with id {condition_id!r}.") from None

    def resolve(self, label: str, dataset: str | None = None) -> Condition | None:
        """Find the condition a model class or dataset label names.

        Accepts an entry id (``"acne"``), a ``"dataset:label"`` string (``"fitzpatrick17k:acne vulgaris"``)
        or a label with its dataset (``("nv", "ham10000")``). Case, spaces and underscores do not matter.
        With a dataset the library knows, the dataset's own label wins, then entry ids and aliases. A bare
        label tries ids, then aliases, then display names, then any dataset's label when only one
        condition carries it (HAM10000's ``"bcc"`` and PAD-UFES-20's ``"BCC"`` agree, so ``"bcc"`` resolves).

        Args:
            label: The label, id or ``dataset:label`` string.
            dataset: The dataset the label comes from, if known.

        Returns:
            The condition, or None when nothing (or more than one thing) matches.
        """
        if not isinstance(label, str):
            return None
        text = label.strip()
        if ":" in text:
            prefix, rest = text.split(":", 1)
            if dataset is None or normalise_dataset(prefix) == normalise_dataset(dataset):
                dataset, text = prefix, rest
        slug = normalise_label(text)
        if not slug:
            return None
        if dataset is not None and normalise_dataset(dataset) in self._datasets:
            found = self._by_dataset_label.get((normalise_dataset(dataset), slug))
            if found is not None:
                return self._by_id[found]
            return self._resolve_name(slug)
        return self._resolve_bare(slug)

    def _resolve_name(self, slug: str) -> Condition | None:
        if slug in self._by_id:
            return self._by_id[slug]
        if slug in self._by_alias:
            return self._by_id[self._by_alias[slug]]
        named = self._by_name.get(slug, set())
        if len(named) == 1:
            return self._by_id[next(iter(named))]
        return None

    def _resolve_bare(self, slug: str) -> Condition | None:
        found = self._resolve_name(slug)
        if found is not None:
            return found
        labelled = self._by_label_part.get(slug, set())
        if len(labelled) == 1:
            return self._by_id[next(iter(labelled))]
        return None

    def search(
        self,
        text: str = "",
        risk_group: str | Iterable[str] | None = None,
        urgency: str | Iterable[str] | None = None,
        contagious: str | Iterable[str] | None = None,
    ) -> list[Condition]:
        """Find conditions by words and filters, best match first.

        Words are ranked by BM25F over the entry's fields (name and aliases weigh most, then symptoms,
        then summary and appearance, then description, then the rest), after light normalisation
        (case, stop words, suffixes, British spellings) and a short lay/clinical synonym map; see
        :mod:`dermlib.knowledge.search`. An entry whose name or id is exactly the query comes first,
        then one with the query as an alias, then one whose name or an alias holds the typed words in
        order ("skin cancer" in "melanoma skin cancer"). Entries that match none of the words, or score under
        :data:`~dermlib.knowledge.search.RELATIVE_CUTOFF` of the best entry that passes the filters, are left
        out; ties keep name order.

        Args:
            text: Free text; empty returns every condition that passes the filters, in name order.
            risk_group: One value or several of ``benign``, ``premalignant``, ``malignant``, ``non-neoplastic``.
            urgency: One value or several of ``routine``, ``soon``, ``urgent``.
            contagious: One value or several of ``no``, ``yes``, ``sometimes``.

        Returns:
            The matching conditions, best first.

        Raises:
            ValueError: When a filter value is not one of the allowed values.
        """
        risks = _as_filter(risk_group, RISK_GROUPS, "risk group")
        urgencies = _as_filter(urgency, URGENCIES, "urgency")
        contagion = _as_filter(contagious, CONTAGIOUS_VALUES, "contagious value")
        candidates = [
            c
            for c in self._by_id.values()
            if (risks is None or c.risk_group in risks)
            and (urgencies is None or c.urgency in urgencies)
            and (contagion is None or c.contagious in contagion)
        ]
        query = " ".join(text.split())
        if not query:
            return candidates
        slug = normalise_label(query)
        scores = self._index.scores(query)
        # The cut-off is relative to the best entry that passed the filters, so a filter never empties a list.
        floor = RELATIVE_CUTOFF * max((scores.get(c.id, 0.0) for c in candidates), default=0.0)
        ranked: list[tuple[int, float, Condition]] = []
        words = tokenize(query)
        phrase = " ".join(words) if len(words) > 1 else None
        for c in candidates:
            tier = 0 if slug in self._name_slugs[c.id] else 1 if slug in self._alias_slugs[c.id] else 3
            if tier == 3 and phrase and any(f" {phrase} " in f" {name} " for name in self._name_words[c.id]):
                tier = 2  # the typed words, in order, inside a name or alias
            if tier < 3 or (c.id in scores and scores[c.id] >= floor):
                ranked.append((tier, -scores.get(c.id, 0.0), c))
        # sorted() is stable and candidates are already in name order
        return [c for *_, c in sorted(ranked, key=lambda item: item[:2])]

    def datasets_for(self, condition_id: str) -> list[str]:
        """Return the names of the datasets whose labels map to this condition, sorted.

        Raises:
            KnowledgeError: When the library has no such entry.
        """
        condition = self.get(condition_id)
        return sorted({dataset for dataset, _ in condition.dataset_label_pairs})


def _read_entry(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise KnowledgeError(
            f"Knowledge-base entry {path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KnowledgeError(f"Knowledge-base entry {path}: cannot be read ({exc})") from None
    validate_entry(data, path)
    return data


def _load_folder(folder: Path) -> KnowledgeBase:
    if not folder.is_dir():
        raise KnowledgeError(f"The knowledge-base folder {folder} does not exist.")
    # Hidden files are editor or writer temporaries, not entries.
    paths = sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))
    entries = [(path, _read_entry(path)) for path in paths]
    validate_unique(entries)
    return KnowledgeBase(Condition.from_dict(data, path) for path, data in entries)


@functools.lru_cache(maxsize=1)
def _load_default() -> KnowledgeBase:
    return _load_folder(CONDITIONS_DIR)


def load_knowledge_base(folder: str | Path | None = None) -> KnowledgeBase:
    """Load and validate every entry of a knowledge-base folder.

    The bundled library (``folder=None``) is read once per process and cached; call
    :func:`clear_knowledge_base_cache` after editing its files.

    Args:
        folder: A folder of ``<id>.json`` entries; None for the bundled library.

    Returns:
        The knowledge base.

    Raises:
        KnowledgeError: When the folder is missing or an entry is unreadable, fails the schema, or
            clashes with another entry; the message names the file and the field.
    """
    if folder is None:
        return _load_default()
    return _load_folder(Path(folder))


def clear_knowledge_base_cache() -> None:
    """Forget the cached bundled library so that the next load reads the files again."""
    _load_default.cache_clear()


def condition_url(condition_id: str) -> str:
    """Return the relative URL of a condition's page in the Disease Library."""
    return f"{DISEASE_LIBRARY_URL_PATH}?{urlencode({CONDITION_QUERY_PARAM: condition_id})}"


def condition_link(label: str, dataset: str | None = None, kb: KnowledgeBase | None = None) -> str | None:
    """Return the Disease Library link for a model class or dataset label, for other pages to show.

    Args:
        label: A condition id, ``dataset:label`` string, or a label of ``dataset``.
        dataset: The dataset the label comes from, if known.
        kb: The knowledge base to use; the bundled one by default.

    Returns:
        ``"disease_library?condition=<id>"``, or None when the label names no condition.
    """
    condition = (kb or load_knowledge_base()).resolve(label, dataset)
    return condition_url(condition.id) if condition is not None else None


def card_dataset(card: Any) -> str | None:
    """Return the training dataset name recorded on a model card, or None when it has none."""
    training = getattr(card, "training", None)
    if not isinstance(training, dict):
        return None
    dataset = training.get("dataset")
    if isinstance(dataset, dict):
        dataset = dataset.get("name") or dataset.get("id")
    return dataset if isinstance(dataset, str) and dataset.strip() else None


def resolve_card_class(kb: KnowledgeBase, card: Any, class_info: Any) -> Condition | None:
    """Resolve one class of a model card to a condition, by class id then class name."""
    dataset = card_dataset(card)
    for label in (getattr(class_info, "id", None), getattr(class_info, "name", None)):
        if isinstance(label, str):
            found = kb.resolve(label, dataset)
            if found is not None:
                return found
    return None


def _installed_cards() -> list[Any]:
    """The installed model cards; none when the registry cannot be imported or fails (no models installed, a
    broken card): the Disease Library works without models."""
    try:
        from dermlib.models import list_models  # lazy: the library must load without torch

        return list(list_models())
    except Exception:  # any failure means "no models", by design
        return []


def models_for(condition_id: str, kb: KnowledgeBase | None = None) -> list[Any]:
    """Return the cards of the installed models that can predict this condition.

    Models come from ``dermlib.models.list_models()``; when that cannot be imported or fails (no
    models installed, a broken card), the answer is an empty list: the Disease Library works without
    models.

    Args:
        condition_id: An entry id.
        kb: The knowledge base to resolve card classes with; the bundled one by default.

    Returns:
        ``ModelCard`` objects, in the order ``list_models()`` gives them.
    """
    kb = kb or load_knowledge_base()
    cards = _installed_cards()
    found = []
    for card in cards:
        try:
            classes = list(card.classes)
        except Exception:
            continue
        for class_info in classes:
            condition = resolve_card_class(kb, card, class_info)
            if condition is not None and condition.id == condition_id:
                found.append(card)
                break
    return found


#: Library entries that a class of a wider DermNet NZ category covers without naming them: the DermNet topic
#: pages the category's photos were shown on (``dermnet/metadata.csv``, ``dermnet_topic``), where at least 17
#: photos of the category came from the entry's topic. A model trained on those categories learns these
#: conditions as part of the class, so the Library must not say that no installed model predicts them.
DERMNET_CATEGORY_COVERS: dict[str, tuple[str, ...]] = {
    "bacterial-infection": ("impetigo", "cellulitis"),
    "bullous-disease": ("bullous-pemphigoid", "acquired-autoimmune-bullous-diseaseherpes-gestationis"),
    "eczema": ("stasis-edema",),
    "fungal-infection": ("onychomycosis",),
    "herpes": ("herpes-simplex", "herpes-zoster"),
    "light-related": ("photodermatoses",),
    "melanocytic-naevus": ("congenital-nevus", "halo-nevus"),
    "psoriasis": ("pustular-psoriasis",),
    "rosacea": ("rhinophyma",),
    "vasculitis-purpura": ("vasculitis",),
}
#: Training datasets whose class ids are DermNet NZ categories.
DERMNET_CATEGORY_DATASETS = frozenset({"dermnet-nz", "fitz-dermnet"})


def models_within(condition_id: str, kb: KnowledgeBase | None = None) -> list[tuple[Any, str]]:
    """The installed models that cover a condition inside a wider class (impetigo inside "Bacterial skin
    infection"), with that class's name; models that name the condition itself are :func:`models_for`'s.

    Returns:
        ``(card, class name)`` pairs, in the order ``list_models()`` gives the cards.
    """
    kb = kb or load_knowledge_base()
    cards = _installed_cards()
    found = []
    for card in cards:
        if card_dataset(card) not in DERMNET_CATEGORY_DATASETS:
            continue
        classes = list(getattr(card, "classes", ()))
        covering = [c for c in classes if condition_id in DERMNET_CATEGORY_COVERS.get(getattr(c, "id", ""), ())]
        if covering and not any(getattr(resolve_card_class(kb, card, c), "id", None) == condition_id
                                for c in classes):  # a model that names it is models_for's
            found.append((card, str(covering[0].name)))
    return found
