"""Schema of a Disease Library entry, checked by hand (no jsonschema dependency).

One JSON file per condition, ``conditions/<id>.json``, with exactly the keys of :data:`ENTRY_KEYS`.
:func:`validate_entry` checks one parsed file; :func:`validate_unique` checks what must hold across
files (no id, alias or dataset label claimed twice). Both raise :class:`~dermlib.errors.KnowledgeError`
whose message names the file and the field, so a contributor can fix the entry without reading code.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dermlib.errors import KnowledgeError
from dermlib.knowledge.labels import normalise_dataset, normalise_label

# "premalignant": a lesion that can turn into a cancer (actinic keratosis), which the datasets file as malignant.
RISK_GROUPS: tuple[str, ...] = ("benign", "premalignant", "malignant", "non-neoplastic")
URGENCIES: tuple[str, ...] = ("routine", "soon", "urgent")
CONTAGIOUS_VALUES: tuple[str, ...] = ("no", "yes", "sometimes")
SUMMARY_MAX_CHARS = 300
MIN_REFERENCES = 2

#: Paragraph fields: non-empty strings.
TEXT_FIELDS: tuple[str, ...] = (
    "name",
    "summary",
    "description",
    "appearance",
    "appearance_darker_skin",
    "treatment",
    "when_to_see_doctor",
)
#: Fields holding an enum value, with the allowed values.
ENUM_FIELDS: dict[str, tuple[str, ...]] = {
    "risk_group": RISK_GROUPS,
    "urgency": URGENCIES,
    "contagious": CONTAGIOUS_VALUES,
}
#: List-of-string fields, and whether they may be empty (an entry may exist for education alone,
#: e.g. shingles, with no dataset naming it).
LIST_FIELDS: dict[str, bool] = {
    "aliases": True,
    "dataset_labels": True,
    "symptoms": False,
    "causes": False,
}
ENTRY_KEYS: frozenset[str] = frozenset(
    {"id", *TEXT_FIELDS, *ENUM_FIELDS, *LIST_FIELDS, "references", "review"}
)
REFERENCE_KEYS: frozenset[str] = frozenset({"title", "publisher", "url"})
REVIEW_KEYS: frozenset[str] = frozenset({"date", "method", "clinician_reviewed"})

ID_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_DATASET_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def _error(source: str | Path, field: str, problem: str) -> KnowledgeError:
    return KnowledgeError(f"Knowledge-base entry {source}: field '{field}' {problem}")


def url_problem(url: str) -> str | None:
    """Say what is wrong with a reference URL, or return None when it is a well-formed https URL.

    Args:
        url: The URL to check.

    Returns:
        A short description of the problem, or None.
    """
    if not url or any(ch.isspace() for ch in url):
        return "must be a URL without spaces"
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unbalanced IPv6 bracket
        return f"is not a valid URL ({exc})"
    if parts.scheme != "https":
        return "must start with https://"
    host = parts.hostname or ""
    if "." not in host or host.startswith(".") or host.endswith(".") or "@" in parts.netloc:
        return "must name a web host such as www.example.org"
    return None


def split_dataset_label(value: str) -> tuple[str, str]:
    """Split ``"dataset:label"`` at its first colon.

    Args:
        value: A dataset label such as ``"ham10000:nv"``.

    Returns:
        ``(dataset, label)``.

    Raises:
        ValueError: When there is no colon.
    """
    dataset, sep, label = value.partition(":")
    if not sep:
        raise ValueError(f"{value!r} is not of the form dataset:label")
    return dataset, label


def _check_text(source: str | Path, field: str, value: Any) -> None:
    if not isinstance(value, str):
        raise _error(source, field, f"must be a string, got {type(value).__name__}")
    if not value.strip():
        raise _error(source, field, "must not be empty")


def _check_string_list(source: str | Path, field: str, value: Any, *, may_be_empty: bool) -> None:
    if not isinstance(value, list):
        raise _error(source, field, f"must be a list of strings, got {type(value).__name__}")
    if not value and not may_be_empty:
        raise _error(source, field, "must list at least one item")
    for i, item in enumerate(value):
        _check_text(source, f"{field}[{i}]", item)


def _check_dataset_label(source: str | Path, field: str, value: str) -> None:
    dataset, sep, label = value.partition(":")
    if not sep:
        raise _error(source, field, f"must be of the form dataset:label, got {value!r}")
    if not _DATASET_PATTERN.fullmatch(dataset):
        raise _error(source, field, f"has a dataset name {dataset!r} that is not lower-case-hyphenated")
    if not label.strip() or label != label.strip() or not normalise_label(label):
        raise _error(source, field, f"has an empty or badly spaced label in {value!r}")


def _check_references(source: str | Path, value: Any) -> None:
    if not isinstance(value, list):
        raise _error(source, "references", f"must be a list, got {type(value).__name__}")
    if len(value) < MIN_REFERENCES:
        raise _error(source, "references", f"must list at least {MIN_REFERENCES} references")
    for i, ref in enumerate(value):
        field = f"references[{i}]"
        if not isinstance(ref, dict):
            raise _error(source, field, "must be an object with title, publisher and url")
        _check_keys(source, field, ref, REFERENCE_KEYS)
        for key in ("title", "publisher", "url"):
            _check_text(source, f"{field}.{key}", ref[key])
        problem = url_problem(ref["url"])
        if problem:
            raise _error(source, f"{field}.url", f"{problem} (got {ref['url']!r})")


def _check_review(source: str | Path, value: Any) -> None:
    if not isinstance(value, dict):
        raise _error(source, "review", "must be an object with date, method and clinician_reviewed")
    _check_keys(source, "review", value, REVIEW_KEYS)
    _check_text(source, "review.date", value["date"])
    try:
        dt.date.fromisoformat(value["date"])
    except ValueError:
        raise _error(source, "review.date", f"must be a date YYYY-MM-DD, got {value['date']!r}") from None
    _check_text(source, "review.method", value["method"])
    if not isinstance(value["clinician_reviewed"], bool):
        raise _error(source, "review.clinician_reviewed", "must be true or false")


def _check_keys(source: str | Path, field: str, data: Mapping[str, Any], expected: frozenset[str]) -> None:
    missing = sorted(expected - data.keys())
    if missing:
        raise _error(source, f"{field}.{missing[0]}" if field else missing[0], "is missing")
    extra = sorted(data.keys() - expected)
    if extra:
        raise _error(source, f"{field}.{extra[0]}" if field else extra[0], "is not a known field")


def validate_entry(data: Any, source: str | Path, *, expected_id: str | None = None) -> None:
    """Check one parsed entry against the schema.

    Args:
        data: The parsed JSON.
        source: The file it came from (used in error messages).
        expected_id: The id the entry must carry (its file stem); defaults to ``Path(source).stem``.

    Raises:
        KnowledgeError: Naming the file and the first failing field.
    """
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise KnowledgeError(f"Knowledge-base entry {source}: must be a JSON object, got {kind}")
    _check_keys(source, "", data, ENTRY_KEYS)

    entry_id = data["id"]
    _check_text(source, "id", entry_id)
    if not ID_PATTERN.fullmatch(entry_id):
        raise _error(source, "id", f"must be lower-case letters, digits and single hyphens, got {entry_id!r}")
    stem = expected_id if expected_id is not None else Path(source).stem
    if entry_id != stem:
        raise _error(source, "id", f"must equal the file name {stem!r}, got {entry_id!r}")

    for field in TEXT_FIELDS:
        _check_text(source, field, data[field])
    if len(data["summary"]) > SUMMARY_MAX_CHARS:
        raise _error(
            source, "summary", f"must be at most {SUMMARY_MAX_CHARS} characters, has {len(data['summary'])}"
        )

    for field, allowed in ENUM_FIELDS.items():
        if data[field] not in allowed:
            raise _error(source, field, f"must be one of {', '.join(allowed)}; got {data[field]!r}")

    for field, may_be_empty in LIST_FIELDS.items():
        _check_string_list(source, field, data[field], may_be_empty=may_be_empty)
    for i, label in enumerate(data["dataset_labels"]):
        _check_dataset_label(source, f"dataset_labels[{i}]", label)

    _check_references(source, data["references"])
    _check_review(source, data["review"])


def dataset_label_key(value: str) -> tuple[str, str]:
    """Return the matching key of a ``dataset:label`` string: normalised dataset and label slug."""
    dataset, label = split_dataset_label(value)
    return normalise_dataset(dataset), normalise_label(label)


def validate_unique(entries: Iterable[tuple[str | Path, Mapping[str, Any]]]) -> None:
    """Check that no id, alias or dataset label is claimed by two entries.

    Aliases and labels compare in normalised form (case, spaces and underscores ignored). An alias may
    repeat its own entry's id but not another entry's id or alias.

    Args:
        entries: ``(source, data)`` pairs of entries that each passed :func:`validate_entry`.

    Raises:
        KnowledgeError: Naming both files and the clashing field.
    """
    entries = list(entries)
    ids: dict[str, str | Path] = {}
    for source, data in entries:
        if data["id"] in ids:
            raise _error(source, "id", f"{data['id']!r} is already used by {ids[data['id']]}")
        ids[data["id"]] = source

    aliases: dict[str, tuple[str | Path, str]] = {}
    labels: dict[tuple[str, str], str | Path] = {}
    for source, data in entries:
        for i, alias in enumerate(data["aliases"]):
            field = f"aliases[{i}]"
            key = normalise_label(alias)
            if key in ids and ids[key] != source:
                raise _error(source, field, f"{alias!r} is the id of another entry ({ids[key]})")
            if key in aliases:
                other, other_id = aliases[key]
                where = "this entry" if other_id == data["id"] else str(other)
                raise _error(source, field, f"{alias!r} is already an alias in {where}")
            aliases[key] = (source, data["id"])
        for i, label in enumerate(data["dataset_labels"]):
            key = dataset_label_key(label)
            if key in labels:
                where = "this entry" if labels[key] == source else str(labels[key])
                raise _error(source, f"dataset_labels[{i}]", f"{label!r} is already listed in {where}")
            labels[key] = source
