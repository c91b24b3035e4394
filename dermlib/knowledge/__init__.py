"""The Disease Library: one validated JSON entry per condition that a model or dataset can name.

Typical use::

    from dermlib.knowledge import load_knowledge_base, condition_link

    kb = load_knowledge_base()
    kb.resolve("nv", dataset="ham10000").name        # 'Melanocytic nevus' (or as the entry names it)
    kb.search("itch", urgency="routine")
    condition_link("fitzpatrick17k:acne vulgaris")   # 'disease_library?condition=acne'
"""

from __future__ import annotations

from dermlib.knowledge.base import (
    CONDITION_QUERY_PARAM,
    CONDITIONS_DIR,
    DISEASE_LIBRARY_URL_PATH,
    Condition,
    KnowledgeBase,
    Reference,
    Review,
    card_dataset,
    clear_knowledge_base_cache,
    condition_link,
    condition_url,
    load_knowledge_base,
    models_for,
    models_within,
    resolve_card_class,
)
from dermlib.knowledge.labels import (
    DATASET_DISPLAY_NAMES,
    KNOWN_DATASET_LABELS,
    RISK_GROUP_CLASS_IDS,
    dataset_display_name,
    normalise_dataset,
    normalise_label,
)
from dermlib.knowledge.schema import (
    CONTAGIOUS_VALUES,
    RISK_GROUPS,
    SUMMARY_MAX_CHARS,
    URGENCIES,
    url_problem,
    validate_entry,
    validate_unique,
)

__all__ = [
    "CONDITIONS_DIR",
    "CONDITION_QUERY_PARAM",
    "CONTAGIOUS_VALUES",
    "DATASET_DISPLAY_NAMES",
    "DISEASE_LIBRARY_URL_PATH",
    "KNOWN_DATASET_LABELS",
    "RISK_GROUPS",
    "RISK_GROUP_CLASS_IDS",
    "SUMMARY_MAX_CHARS",
    "URGENCIES",
    "Condition",
    "KnowledgeBase",
    "Reference",
    "Review",
    "card_dataset",
    "clear_knowledge_base_cache",
    "condition_link",
    "condition_url",
    "dataset_display_name",
    "load_knowledge_base",
    "models_for",
    "models_within",
    "normalise_dataset",
    "normalise_label",
    "resolve_card_class",
    "url_problem",
    "validate_entry",
    "validate_unique",
]
