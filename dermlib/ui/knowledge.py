"""Streamlit rendering of Disease Library entries (used by the Disease Library and Diagnose pages)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import streamlit as st

from dermlib import config
from dermlib.errors import ImageError
from dermlib.knowledge import Condition, dataset_display_name
from dermlib.knowledge.examples import THUMBNAIL_SIZE, example_photos, photo_credits, thumbnail_jpeg
from dermlib.viz.palette import RISK_STREAMLIT_COLORS

RISK_GROUP_LABELS: dict[str, str] = {
    "benign": "Benign",
    "premalignant": "Pre-cancerous (can turn into a cancer)",
    "malignant": "Malignant (cancer)",
    "non-neoplastic": "Non-neoplastic (inflammatory, infectious or other; not a tumour)",
}
URGENCY_LABELS: dict[str, str] = {
    "routine": "Routine",
    "soon": "See a clinician soon",
    "urgent": "Urgent",
}
URGENCY_ADVICE: dict[str, str] = {
    "routine": "Routine: see a GP or dermatologist when convenient; sooner if warning signs below appear.",
    "soon": "See a clinician soon (within weeks), sooner if the warning signs below appear.",
    "urgent": "Urgent: seek same-day or emergency care if this is suspected.",
}
CONTAGIOUS_LABELS: dict[str, str] = {
    "no": "Not contagious",
    "yes": "Contagious",
    "sometimes": "Sometimes contagious",
}
_RISK_COLOURS = RISK_STREAMLIT_COLORS  # one palette for risk groups everywhere (dermlib/viz/palette.py)
# Red means malignant and nothing else; urgency uses other colours, and its words say how urgent.
_URGENCY_COLOURS = {"routine": "gray", "soon": "orange", "urgent": "violet"}
_CONTAGIOUS_COLOURS = {"no": "gray", "yes": "violet", "sometimes": "violet"}

DISCLAIMER = (
    "**Education, not a diagnosis.** The Disease Library explains skin conditions in plain language; "
    "it cannot tell you what you have. If you are worried about your skin, see a health professional, "
    "and seek urgent care for a rapidly spreading rash, fever, blistering of the skin or mouth, or a "
    "mole that bleeds or changes quickly."
)

EXAMPLE_PHOTO_COLUMNS = 4
NO_EXAMPLE_PHOTOS = (
    "Example photos appear here when a dataset that includes this condition is installed "
    "(see the Dataset Explorer)."
)
EXAMPLE_PHOTOS_NOTE = (
    "Skin type is the Fitzpatrick type the dataset records. These are examples, not a reference: "
    "the same condition can look different from one person to another."
)

# Characters that Streamlit markdown would interpret (``$`` starts LaTeX, ``~`` strikes through).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|$~])")


def md_escape(text: str) -> str:
    """Escape entry text so Streamlit shows it literally rather than as markdown or LaTeX."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _url_for_markdown(url: str) -> str:
    # Parentheses would end a markdown link early; percent-encoding keeps the URL equivalent.
    return url.replace("(", "%28").replace(")", "%29")


def review_statement(conditions: Iterable[Condition]) -> str:
    """Say how the given entries were checked, for the page-level disclaimer."""
    reviewed = [c.review.clinician_reviewed for c in conditions]
    if reviewed and all(reviewed):
        return "Entries were checked against their cited references and reviewed by a clinician."
    if any(reviewed):
        return (
            "Entries were checked against their cited references; only some have been reviewed by a "
            "clinician (each entry says which)."
        )
    return "Entries were checked against their cited references but not yet reviewed by a clinician."


def render_disclaimer(conditions: Iterable[Condition]) -> None:
    """Show the education-not-diagnosis notice and how the entries were checked."""
    st.warning(f"{DISCLAIMER}\n\n{review_statement(conditions)}", icon=":material/info:")


def badges(condition: Condition) -> str:
    """Return markdown badges for the entry's risk group, urgency and contagiousness."""
    return " ".join(
        (
            f":{_RISK_COLOURS[condition.risk_group]}-badge[{RISK_GROUP_LABELS[condition.risk_group]}]",
            f":{_URGENCY_COLOURS[condition.urgency]}-badge[{URGENCY_LABELS[condition.urgency]}]",
            f":{_CONTAGIOUS_COLOURS[condition.contagious]}-badge[{CONTAGIOUS_LABELS[condition.contagious]}]",
        )
    )


#: Library entries listed at first and added by each "Show more": all 130 at once made a phone's page 16,000 px
#: tall.
LIBRARY_PAGE_SIZE = 20


def render_condition_row(
    condition: Condition, on_open: Callable[[str], None], key_prefix: str = "dl"
) -> None:
    """Show one condition as a row of a result list: a button named after it, its badges and summary.

    Args:
        condition: The entry.
        on_open: Called with the condition id when the button is pressed.
        key_prefix: Page prefix of the button's widget key (``<prefix>_open_<id>``).
    """
    with st.container(border=True):
        st.button(
            md_escape(condition.name),
            key=f"{key_prefix}_open_{condition.id}",
            on_click=on_open,
            args=(condition.id,),
            help=f"Open the entry for {condition.name}",
            icon=":material/article:",
        )
        st.markdown(badges(condition))
        st.caption(md_escape(condition.summary))


def _bullets(items: Sequence[str]) -> str:
    return "\n".join(f"- {md_escape(item)}" for item in items)


def _model_line(card: Any, within: str | None = None) -> str:
    name = getattr(card, "name", None) or getattr(card, "id", "model")
    model_id = getattr(card, "id", None)
    suffix = f" (`{model_id}`)" if model_id and model_id != name else ""
    if within:
        suffix += f", within its class “{md_escape(within)}”"
    # A benchmark model kept off the Diagnose picker (card "diagnose.offered": false) is found elsewhere.
    withheld = getattr(card, "diagnose_withheld", None) is not None and not config.offer_all_models()
    where = ": on the Model page and the command line, not offered on Diagnose" if withheld else ""
    return f"- {md_escape(str(name))}{suffix}{where}"


# Process-wide, keyed by file path: dataset photos are the same for every session (never uploads), and 64
# thumbnails of 256 px as JPEG bytes are about 1-2 MB, so the cache cannot grow past that.
@st.cache_data(show_spinner=False, max_entries=64)
def _thumbnail(path: str, size: int = THUMBNAIL_SIZE) -> bytes | None:
    try:
        return thumbnail_jpeg(path, size)
    except ImageError:
        return None


def render_example_photos(condition: Condition, data_root: str | os.PathLike[str] | None = None) -> None:
    """Show up to four example photos of the entry from the installed datasets, their sources credited.

    Each photo is captioned with its skin type and dataset; one caption below credits the sources. With
    no dataset that holds the condition, one caption says where photos would come from.

    Args:
        condition: The entry.
        data_root: A folder of datasets; None for ``dermlib.knowledge.examples.default_data_root``.
    """
    photos = example_photos(condition, data_root, n=EXAMPLE_PHOTO_COLUMNS)
    shown = [(photo, data) for photo in photos if (data := _thumbnail(str(photo.path))) is not None]
    if not shown:
        st.caption(NO_EXAMPLE_PHOTOS)
        return
    st.subheader("Example photos")
    for column, (photo, data) in zip(st.columns(EXAMPLE_PHOTO_COLUMNS), shown, strict=False):
        skin_type = photo.skin_type[:1].upper() + photo.skin_type[1:]
        column.image(data, caption=f"{skin_type} · {photo.dataset_title}", width="stretch")
    st.caption(md_escape(photo_credits(photo for photo, _ in shown)) + ". " + EXAMPLE_PHOTOS_NOTE)


def render_condition(
    condition: Condition,
    models: Sequence[Any] = (),
    *,
    within: Sequence[tuple[Any, str]] = (),
    photos: bool = False,
    data_root: str | os.PathLike[str] | None = None,
) -> None:
    """Show every section of one entry, darker-skin presentation first after the summary.

    Args:
        condition: The entry.
        models: Installed model cards that can predict it (see ``dermlib.knowledge.models_for``).
        within: ``(card, class name)`` of installed models that cover it inside a wider class
            (``dermlib.knowledge.models_within``).
        photos: Also show example photos from the installed datasets (after "How it looks").
        data_root: Where to look for them; None for the configured data root.
    """
    st.title(condition.name)
    if condition.aliases:
        st.caption("Also called: " + md_escape(", ".join(condition.aliases)))
    st.markdown(badges(condition))
    st.markdown(md_escape(condition.summary))
    advice = URGENCY_ADVICE[condition.urgency]
    {"urgent": st.error, "soon": st.warning, "routine": st.info}[condition.urgency](
        advice, icon=":material/schedule:"
    )

    st.subheader("On brown and black skin")
    st.info(md_escape(condition.appearance_darker_skin), icon=":material/palette:")

    st.subheader("What it is")
    st.markdown(md_escape(condition.description))
    st.subheader("How it looks")
    st.markdown(md_escape(condition.appearance))
    if photos:
        render_example_photos(condition, data_root)
    symptoms, causes = st.columns(2)
    with symptoms:
        st.subheader("Symptoms")
        st.markdown(_bullets(condition.symptoms))
    with causes:
        st.subheader("Causes and risk factors")
        st.markdown(_bullets(condition.causes))
    st.subheader("Treatment")
    st.markdown(md_escape(condition.treatment))
    st.subheader("When to see a doctor")
    st.markdown(md_escape(condition.when_to_see_doctor))

    st.subheader("In DermLens")
    by_dataset: dict[str, list[str]] = {}
    for dataset, label in condition.dataset_label_pairs:
        by_dataset.setdefault(dataset, []).append(label)
    dataset_lines = [
        f"- **{md_escape(dataset_display_name(dataset))}**: " + ", ".join(f"`{label}`" for label in labels)
        for dataset, labels in by_dataset.items()
    ]
    dataset_text = "\n".join(dataset_lines) or "None of the datasets DermLens knows labels it."
    st.markdown("**Datasets that include it**\n\n" + dataset_text)
    lines = [_model_line(m) for m in models]
    lines += [_model_line(card, within=name) for card, name in within]
    model_lines = "\n".join(lines) or "None of the installed models predicts it."
    st.markdown("**Installed models that can predict it**\n\n" + model_lines)

    st.subheader("References")
    st.markdown(
        "\n".join(
            f"- [{md_escape(ref.title)}]({_url_for_markdown(ref.url)}) ({md_escape(ref.publisher)})"
            for ref in condition.references
        )
    )
    review = condition.review
    checked = (
        "reviewed by a clinician"
        if review.clinician_reviewed
        else "checked against the references above, not yet reviewed by a clinician"
    )
    st.caption(f"Entry dated {review.date}: {checked}. {md_escape(review.method)}")
