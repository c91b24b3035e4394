"""Ranked free-text search for the Disease Library: BM25F over weighted entry fields.

Scoring is Okapi BM25 in its multi-field form, BM25F (Robertson, Zaragoza and Taylor, 2004): for a term,
each field's count is length-normalised within that field (``b_f``), weighted by the field's weight
(``w_f``, :data:`FIELD_WEIGHTS`), and the weighted counts are summed before one saturation (``k1``)::

    tf~(t, d) = sum_f  w_f * tf(t, d, f) / (1 - b_f + b_f * len(d, f) / avglen(f))
    score(t, d) = idf(t) * tf~ / (k1 + tf~)
    idf(t) = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))

with ``k1`` = :data:`K1` (1.5) and ``b_f`` = :data:`B` (0.75) except for the alias list
(:data:`FIELD_B`). A mention in a name counts more than one in a description, and rare words count
more than common ones. A query's score for an entry is the sum over its distinct words.

Text normalisation, the same for entries and queries (:func:`tokenize`):

1. Unicode accents folded (``Behçet`` -> ``behcet``), lower-cased, apostrophes dropped
   (``athlete's`` -> ``athletes``), split on anything that is not a letter or digit. Hyphenated
   compounds in entries are indexed both as parts and joined (``bull's-eye`` -> ``bulls``, ``eye``,
   ``bullseye``; ``ring-shaped`` -> ``ring``, ``shaped``, ``ringshaped``), and a few closed compounds
   under their parts too (:data:`COMPOUNDS`: ``ringworm`` -> ``ringworm``, ``ring``, ``worm``).
2. :data:`STOP_WORDS` (a short English list) removed.
3. British spellings folded to American ones by three rules (``ae``/``oe`` inside a word -> ``e``:
   naevus, oedema, seborrhoeic; ``-our`` -> ``-or``: colour, tumour; ``-ise``/``-ised``/``-ising``/
   ``-isation`` -> ``-iz...``), plus a few irregular plurals (:data:`IRREGULAR`).
4. :func:`stem`: a light English suffix stripper (plural ``-s``/``-es``/``-ies``, ``-ing``, ``-ed``,
   ``-ness``, ``-ful``, adjective ``-y``, final ``-e``), so "itchy", "itching" and "itches" meet "itch".

Queries are then expanded (:func:`expand_term`): each word also matches the words of its
:data:`SYNONYM_GROUPS` group (lay and clinical words for the same thing: ring/annular, sole/plantar,
dark/pigmented), at :data:`SYNONYM_WEIGHT` of the word's own score; a word that no entry contains
matches the entry words it begins (``pimp`` -> ``pimples``), at :data:`PREFIX_WEIGHT`, and one that begins none
matches the entry words spelt most like it (``psoraisis`` -> ``psoriasis``), at :data:`TYPO_WEIGHT`. A word's
score in an entry is the best of its expansions, so a synonym never counts twice. Entries scoring under
:data:`RELATIVE_CUTOFF` of the best are left out.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

#: BM25 term-frequency saturation (Okapi's usual 1.2-2.0) and length normalisation.
K1 = 1.5
B = 0.75
#: Per-field length normalisation where it differs from B: an alias list is a list of names, and an
#: entry with many names should not have each of them count for less.
FIELD_B: dict[str, float] = {"aliases": 0.3}

#: Field weights of a Disease Library entry: names count most, then symptoms, then the descriptive text.
FIELD_WEIGHTS: dict[str, float] = {
    "name": 4.0,
    "aliases": 3.0,
    "symptoms": 2.0,
    "summary": 1.5,
    "appearance": 1.5,
    "description": 1.0,
    "other": 0.5,  # darker-skin appearance, causes, treatment, when to see a doctor, dataset labels
}

#: Share of a word's own score that a synonym of it earns, and a word that the typed word begins.
SYNONYM_WEIGHT = 0.5
PREFIX_WEIGHT = 0.8
#: Shortest typed word that is expanded to the entry words it begins.
MIN_PREFIX = 3
#: A typed word that no entry contains and that begins no entry word is matched to the entry words spelt most
#: like it (difflib's ratio at least TYPO_CUTOFF, at most MAX_TYPO_MATCHES of them), from MIN_TYPO_LENGTH
#: letters up: "psoraisis" finds psoriasis, while short words, where one letter makes another word, do not.
TYPO_WEIGHT = 0.7
TYPO_CUTOFF = 0.8
MAX_TYPO_MATCHES = 2
MIN_TYPO_LENGTH = 5
#: Entries scoring under this share of the best one among those that pass the page's filters are left out:
#: a common word ("skin" is in every entry) would otherwise list the whole Library.
RELATIVE_CUTOFF = 0.15

_STOP_WORD_TEXT = """
a about after all also an and any are as at be been before being but by can could did do does doing
for from had has have having he her here hers him his how i if in into is it its itself just like
me more most my no nor not of off on once only or other our out own same she should so some such
than that the their them then there these they this those through to too under until up very was
we were what when where which while who whom why will with would you your
"""
#: Words too common in English to say anything about a condition.
STOP_WORDS: frozenset[str] = frozenset(_STOP_WORD_TEXT.split())

#: Irregular forms that the suffix rules cannot join (after spelling folding).
IRREGULAR: dict[str, str] = {
    "feet": "foot",
    "teeth": "tooth",
    "children": "child",
    "lice": "louse",
    "women": "woman",
    "men": "man",
    "loss": "lose",
    "lost": "lose",
}

#: Words the suffix rules would spoil (``scabies`` is not ``scab``, ``shiny`` not ``shin``, ``hives``
#: not ``HIV``).
PROTECTED: frozenset[str] = frozenset(
    {"scabies", "herpes", "rabies", "caries", "species", "series", "diabetes", "shiny", "hives", "various"}
)

#: Lay and clinical words that name the same thing. Each line is one group; every word in a group
#: matches the others (at SYNONYM_WEIGHT). Deliberately short: only where patients and textbooks
#: differ, never to fit a particular query.
SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("ring", "ringworm", "annular", "circular"),
    ("sole", "plantar", "foot", "acral"),
    ("palm", "palmar", "acral"),
    ("dark", "pigmented", "black", "brown", "hyperpigmented"),
    ("white", "pale", "depigmented", "hypopigmented", "depigmentation"),
    ("colour", "pigment", "pigmentation"),
    ("spot", "macule", "lesion"),
    ("mole", "nevus", "nevi"),
    ("bump", "lump", "papule", "nodule"),
    ("growth", "tumour", "neoplasm"),
    ("blister", "vesicle", "bulla", "bullous"),
    ("pus", "pustule", "pustular"),
    ("scale", "flake", "flaky"),
    ("crust", "scab"),
    ("sore", "ulcer", "erosion"),
    ("itch", "pruritus", "pruritic"),
    ("red", "erythema", "erythematous"),
    ("rash", "eruption"),
    ("hives", "wheal", "welt"),
    ("wart", "verruca", "verrucous"),
    ("bald", "alopecia"),
    ("face", "facial"),
    ("armpit", "axilla", "axillary"),
    ("groin", "inguinal"),
    ("sun", "solar", "sunlight", "actinic"),
    ("fungus", "fungal", "fungi"),
    ("cancer", "carcinoma", "malignant"),
    ("birthmark", "congenital"),
    ("bruise", "purpura"),
    ("swollen", "swelling", "edema"),
    ("pain", "tender"),
    ("greasy", "oily"),
    ("butterfly", "malar"),
    ("bullseye", "target"),
)

#: Closed compounds of everyday words that entries use; entry text is also indexed under the parts,
#: so "rings" meets "ringworm" and "nail" meets "toenail" (the whole word is kept too).
COMPOUNDS: dict[str, tuple[str, ...]] = {
    "ringworm": ("ring", "worm"),
    "toenail": ("toe", "nail"),
    "fingernail": ("finger", "nail"),
    "blackhead": ("black", "head"),
    "whitehead": ("white", "head"),
    "birthmark": ("birth", "mark"),
    "sunburn": ("sun", "burn"),
    "sunlight": ("sun", "light"),
    "eyelid": ("eye", "lid"),
    "eyelash": ("eye", "lash"),
    "eyebrow": ("eye", "brow"),
    "armpit": ("arm", "pit"),
}

_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_APOSTROPHES = re.compile(r"['’‘`]")
_VOWELS = frozenset("aeiouy")


def _fold(text: str) -> str:
    """Lower-case, strip accents and drop apostrophes."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _APOSTROPHES.sub("", plain)


def _spelling(word: str) -> str:
    """Fold a British spelling to the American one (naevus -> nevus, colour -> color, ...)."""
    # ae/oe inside a word only: toe, shoe, striae and larvae keep theirs.
    if word.startswith(("toe", "shoe")):
        return word
    word = re.sub(r"(?<=.)(ae|oe)(?=[a-rt-z]|s.)", lambda m: m.group(1)[1], word)
    word = re.sub(r"^(ae|oe)(?=[a-z]{2})", "e", word)
    if len(word) >= 6:
        word = re.sub(r"our(s?)$", r"or\1", word)
    return re.sub(r"is(e|ed|es|ing|ation|ations)$", r"iz\1", word)


def _undouble(word: str) -> str:
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz" and word[-1] not in _VOWELS:
        return word[:-1]
    return word


def _has_vowel(word: str) -> bool:
    return any(ch in _VOWELS for ch in word)


def stem(word: str) -> str:
    """Strip common English suffixes from one lower-case word (a light, conservative stemmer).

    Plural ``-ies``/``-es``/``-s``, then one of ``-ing``, ``-ed``, ``-ness``, ``-ful`` or adjective
    ``-y``, then a final ``-e``; the remaining stem keeps at least three letters and a vowel. Words of
    three letters or fewer, and :data:`PROTECTED` words, are left alone.
    """
    word = IRREGULAR.get(word, word)
    if len(word) <= 3 or word in PROTECTED:
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith(("sses", "ches", "shes", "xes", "zes")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed", "ness", "ful"):
        base = word[: -len(suffix)]
        if not word.endswith(suffix) or len(base) < 3 or not _has_vowel(base):
            continue
        if suffix == "ed" and base.endswith("e"):  # bleed, need
            break
        word = _undouble(base) if suffix in ("ing", "ed") else base
        break
    else:
        if word.endswith("y") and len(word) > 3 and word[-2] not in _VOWELS:
            word = word[:-1]
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


@functools.lru_cache(maxsize=65536)
def normalise_word(word: str) -> str:
    """Return the index form of one folded word: spelling folded, then stemmed."""
    return stem(_spelling(word))


def tokenize(text: str, entry: bool = False) -> list[str]:
    """Split text into normalised index terms, stop words removed (see the module docstring).

    Args:
        text: Entry or query text.
        entry: Index entry text: also emit each hyphenated compound joined into one word (so that a
            query's ``bullseye`` meets an entry's ``bull's-eye``) and the parts of :data:`COMPOUNDS`.
    """
    terms: list[str] = []
    for compound in _WORD.findall(_fold(text)):
        parts = compound.split("-")
        for part in parts:
            if part not in STOP_WORDS:
                term = normalise_word(part)
                terms.append(term)
                if entry:
                    terms.extend(_COMPOUND_PARTS.get(term, ()))
        if entry and len(parts) > 1:
            terms.append(normalise_word("".join(parts)))
    return terms


def _build_synonyms(groups: Iterable[Sequence[str]]) -> dict[str, frozenset[str]]:
    synonyms: dict[str, set[str]] = {}
    for group in groups:
        terms = {normalise_word(_fold(word)) for word in group}
        for term in terms:
            synonyms.setdefault(term, set()).update(terms - {term})
    return {term: frozenset(others) for term, others in synonyms.items()}


_SYNONYMS = _build_synonyms(SYNONYM_GROUPS)
_COMPOUND_PARTS = {
    normalise_word(word): tuple(normalise_word(part) for part in parts) for word, parts in COMPOUNDS.items()
}


def expand_term(term: str) -> dict[str, float]:
    """Return the index terms a normalised query term matches, each with its weight (itself 1.0)."""
    expanded = dict.fromkeys(sorted(_SYNONYMS.get(term, ())), SYNONYM_WEIGHT)
    expanded[term] = 1.0
    return expanded


class Bm25fIndex:
    """A BM25F index over documents made of named text fields.

    Args:
        documents: ``{doc_id: {field: text or list of texts}}``; fields missing from ``field_weights``
            are ignored.
        field_weights: Weight of each field (see :data:`FIELD_WEIGHTS`).
        k1: Term-frequency saturation.
        b: Length normalisation, 0 (none) to 1 (full); one value, or one per field (others get :data:`B`).
    """

    def __init__(
        self,
        documents: Mapping[str, Mapping[str, str | Sequence[str]]],
        field_weights: Mapping[str, float] = FIELD_WEIGHTS,
        k1: float = K1,
        b: float | Mapping[str, float] = FIELD_B,
    ) -> None:
        self.k1 = k1
        self.field_weights = dict(field_weights)
        self.b = {f: b if isinstance(b, int | float) else b.get(f, B) for f in self.field_weights}
        self._postings: dict[str, dict[str, dict[str, int]]] = {}  # term -> doc -> field -> count
        self._lengths: dict[str, dict[str, int]] = {}  # doc -> field -> length
        for doc_id, fields in documents.items():
            self._lengths[doc_id] = {}
            for field_name in self.field_weights:
                value = fields.get(field_name, "")
                text = value if isinstance(value, str) else " \n ".join(value)
                terms = tokenize(text, entry=True)
                self._lengths[doc_id][field_name] = len(terms)
                for term, count in Counter(terms).items():
                    self._postings.setdefault(term, {}).setdefault(doc_id, {})[field_name] = count
        n_docs = max(len(self._lengths), 1)
        self._avg_length = {
            f: max(sum(lengths[f] for lengths in self._lengths.values()) / n_docs, 1.0) for f in self.field_weights
        }
        self._vocabulary = sorted(self._postings)

    def __len__(self) -> int:
        return len(self._lengths)

    def idf(self, term: str) -> float:
        """Inverse document frequency of a normalised term (0 when no document has it)."""
        df = len(self._postings.get(term, ()))
        if df == 0:
            return 0.0
        return math.log(1.0 + (len(self) - df + 0.5) / (df + 0.5))

    def _weighted_tf(self, term: str) -> dict[str, float]:
        """The field-weighted, length-normalised count tf~ of one term in each document that has it."""
        weighted = {}
        for doc_id, counts in self._postings.get(term, {}).items():
            lengths = self._lengths[doc_id]
            weighted[doc_id] = sum(
                self.field_weights[f] * count / (1.0 - self.b[f] + self.b[f] * lengths[f] / self._avg_length[f])
                for f, count in counts.items()
            )
        return weighted

    def term_scores(self, term: str) -> dict[str, float]:
        """BM25F score of one normalised term in each document that contains it."""
        return self.concept_scores({term: 1.0})

    def concept_scores(self, expansions: Mapping[str, float]) -> dict[str, float]:
        """BM25F score of one query word, given the index terms it matches and their weights."""
        best: dict[str, float] = {}
        for word, weight in expansions.items():
            idf = self.idf(word)
            for doc_id, tf in self._weighted_tf(word).items():
                best[doc_id] = max(best.get(doc_id, 0.0), weight * idf * tf / (self.k1 + tf))
        return best

    def expand(self, term: str) -> dict[str, float]:
        """The index terms one query term matches, with weights: synonyms, prefixes of unknown words, or,
        for an unknown word that begins none, the closest spellings (``psoraisis`` -> ``psoriasis``)."""
        expanded = expand_term(term)
        if term not in self._postings and len(term) >= MIN_PREFIX:
            for word in self._vocabulary:
                if word.startswith(term) and word != term:
                    expanded.setdefault(word, PREFIX_WEIGHT)
            if not any(word in self._postings for word in expanded):
                for word in self.close_spellings(term):
                    expanded.setdefault(word, TYPO_WEIGHT)
        return expanded

    def close_spellings(self, term: str) -> list[str]:
        """Index terms spelt like an unknown query term: a slip of one or two letters in a long enough word."""
        if len(term) < MIN_TYPO_LENGTH:
            return []
        return difflib.get_close_matches(term, self._vocabulary, n=MAX_TYPO_MATCHES, cutoff=TYPO_CUTOFF)

    def scores(self, query: str) -> dict[str, float]:
        """Score every document that matches at least one word of the query (higher is better)."""
        total: dict[str, float] = {}
        for term in dict.fromkeys(tokenize(query)):  # each distinct word once, in order
            for doc_id, score in self.concept_scores(self.expand(term)).items():
                total[doc_id] = total.get(doc_id, 0.0) + score
        return {doc_id: score for doc_id, score in total.items() if score > 0}
