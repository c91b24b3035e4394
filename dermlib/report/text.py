"""Words and numbers shared by the PDF and the FHIR report: the disclaimer, how a probability is printed.

This module imports nothing heavy: the renderers import it, and :func:`dermlib.report.case.build_case` is what
pulls in torch.
"""

from __future__ import annotations

import re
import unicodedata

#: The decision-support disclaimer, as :data:`dermlib.ui.common.DISCLAIMER` says it without Markdown (that module
#: imports Streamlit, which a report built on the command line must not load; a test keeps the two equal).
DISCLAIMER_TEXT = (
    "DermLens is decision support, not a diagnosis. It can be wrong, it has only seen the conditions "
    "it was trained on, and it does not replace an examination by a clinician. If a spot is new, "
    "changing, bleeding or worrying you, see a doctor."
)

#: What the model's answer is worth when the photo is out of scope (the CLI's wording).
OUT_OF_SCOPE_NOTE = "The model's output below means nothing for this image."

#: The Diagnose page's wording when the model abstains.
UNCERTAIN_NOTE = ("The model is not sure about this image, so DermLens does not offer a diagnosis. "
                  "The list is shown for transparency only. Please have the skin examined by a clinician.")

#: Characters outside Latin-1 that the report's texts use, and their nearest Latin-1 spelling.
_LATIN1_SPELLING = {
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": " - ", "\u2212": "-",
    "\u2018": "'", "\u2019": "'", "\u201a": ",", "\u201c": '"', "\u201d": '"', "\u201e": '"',
    "\u2026": "...", "\u2022": "-", "\u00b7": "-", "\u2192": "->", "\u2190": "<-", "\u2264": "<=",
    "\u2265": ">=", "\u2248": "~", "\u2260": "!=", "\u00a0": " ", "\u202f": " ", "\u2009": " ",
}
_MARKDOWN = re.compile(r"\*\*|__|`")


def format_probability(probability: float) -> str:
    """A calibrated probability as every report prints it, e.g. ``34.5%``."""
    return f"{probability:.1%}"


def format_points(score: float) -> str:
    """A faithfulness score (a probability difference) in percentage points, e.g. ``+5 points``."""
    from dermlib.explain.faithfulness import signed_points  # numpy only at import: no torch

    return f"{signed_points(score)} points"


def plain(text: str) -> str:
    """Text without Markdown emphasis (``**bold**``, ``__x__``, backticks), for the PDF and FHIR."""
    return _MARKDOWN.sub("", text)


def latin1(text: str) -> str:
    """The text in Latin-1, the character set of the PDF's core fonts.

    Dashes, quotes, ellipses and comparison signs get their ASCII spelling; accented letters outside
    Latin-1 lose their accent (NFKD); anything left becomes ``?``.
    """
    out = []
    for ch in text:
        if ord(ch) < 256:
            out.append(ch)
            continue
        if ch in _LATIN1_SPELLING:
            out.append(_LATIN1_SPELLING[ch])
            continue
        decomposed = unicodedata.normalize("NFKD", ch).encode("latin-1", "ignore").decode("latin-1")
        out.append(decomposed or "?")
    return "".join(out)
