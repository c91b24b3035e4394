"""AppTest tests of the Disease Library page (app_pages/disease_library.py) and the entry renderer."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dermlib.errors import KnowledgeError
from dermlib.knowledge import CONTAGIOUS_VALUES, RISK_GROUPS, URGENCIES, KnowledgeBase, load_knowledge_base
from dermlib.ui.knowledge import (
    CONTAGIOUS_LABELS,
    RISK_GROUP_LABELS,
    URGENCY_ADVICE,
    URGENCY_LABELS,
    md_escape,
    review_statement,
)

PAGE = str(Path(__file__).resolve().parents[1] / "app_pages" / "disease_library.py")


def _bundled() -> KnowledgeBase:
    # A broken entry must fail these tests with the validator's message, not abort their collection.
    try:
        kb = load_knowledge_base()
    except KnowledgeError as exc:
        pytest.fail(str(exc))
    if len(kb) == 0:
        pytest.skip("no knowledge-base entries yet")
    return kb


def run_page(condition: str | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=30)
    if condition is not None:
        at.query_params["condition"] = condition
    at.run()
    assert not at.exception, at.exception
    return at


def listed_ids(at: AppTest) -> list[str]:
    """Ids of the whole result list, in display order (one button each, named after it), pressing "Show more"
    until every match is listed."""
    while any(b.key == "dl_more" for b in at.button):
        at.button(key="dl_more").click().run()
        assert not at.exception
    return [b.key.removeprefix("dl_open_") for b in at.button if b.key and b.key.startswith("dl_open_")]


def test_the_list_grows_by_pages_and_a_new_search_starts_again() -> None:
    from dermlib.ui.knowledge import LIBRARY_PAGE_SIZE as PAGE_SIZE

    kb = _bundled()
    at = run_page()
    first = [b.key for b in at.button if b.key and b.key.startswith("dl_open_")]
    assert len(first) == min(PAGE_SIZE, len(kb))
    assert f"{len(kb)} of {len(kb)} conditions; the first {PAGE_SIZE} are listed" in [c.value for c in at.caption]
    at.button(key="dl_more").click().run()
    assert len([b for b in at.button if b.key and b.key.startswith("dl_open_")]) == min(2 * PAGE_SIZE, len(kb))
    at.text_input(key="dl_search").input("skin").run()  # a new search: its first page only
    assert len([b for b in at.button if b.key and b.key.startswith("dl_open_")]) <= PAGE_SIZE


def assert_disclaimer(at: AppTest) -> None:
    kb = _bundled()
    text = " ".join(w.value for w in at.warning)
    assert "not a diagnosis" in text
    assert review_statement(kb) in text


def assert_detail_of(at: AppTest, condition_id: str) -> None:
    kb = _bundled()
    condition = kb.get(condition_id)
    assert [t.value for t in at.title] == [condition.name]
    assert md_escape(condition.appearance_darker_skin) in [i.value for i in at.info]
    markdown = "\n".join(m.value for m in at.markdown)
    assert md_escape(condition.when_to_see_doctor) in markdown
    for ref in condition.references:
        assert f"]({ref.url.replace('(', '%28').replace(')', '%29')})" in markdown
    assert not listed_ids(at)
    assert_disclaimer(at)


def test_display_texts_cover_every_enum_value() -> None:
    # The filters offer the schema's values; each needs a display text or the page would raise.
    assert set(RISK_GROUP_LABELS) == set(RISK_GROUPS)
    assert set(URGENCY_LABELS) == set(URGENCY_ADVICE) == set(URGENCIES)
    assert set(CONTAGIOUS_LABELS) == set(CONTAGIOUS_VALUES)


def test_md_escape_keeps_entry_text_literal() -> None:
    assert md_escape("costs $5 or ~10 *per* [day]") == r"costs \$5 or \~10 \*per\* \[day\]"


def test_list_view_lists_every_condition_with_the_disclaimer() -> None:
    kb = _bundled()
    at = run_page()
    assert at.title[0].value == "Disease Library"
    assert listed_ids(at) == kb.ids
    assert f"{len(kb)} of {len(kb)} conditions" in [c.value for c in at.caption]
    assert_disclaimer(at)


def test_search_box_ranks_and_filters() -> None:
    kb = _bundled()
    target = kb.conditions[len(kb) // 2]
    at = run_page()
    at.text_input(key="dl_search").input(target.name).run()
    ids = listed_ids(at)
    assert ids[0] == target.id
    assert ids == [c.id for c in kb.search(target.name)]
    # Results are ranked, not all-words, so only words no entry contains give an empty list.
    at.text_input(key="dl_search").input("zzqx qwvv").run()
    assert listed_ids(at) == []
    assert any("No condition matches" in i.value for i in at.info)


def test_psoriasis_search_finds_psoriasis_first() -> None:
    _bundled()
    at = run_page()
    at.text_input(key="dl_search").input("Psoriasis").run()
    assert listed_ids(at)[0] == "psoriasis"


def test_placeholder_example_finds_tinea_first_and_buttons_carry_names() -> None:
    kb = _bundled()
    at = run_page()
    at.text_input(key="dl_search").input("itchy rings").run()
    ids = listed_ids(at)
    assert ids[0] == "tinea"
    buttons = {b.key: b.label for b in at.button if b.key and b.key.startswith("dl_open_")}
    assert buttons["dl_open_tinea"] == md_escape(kb.get("tinea").name)
    assert all(buttons[f"dl_open_{i}"] == md_escape(kb.get(i).name) for i in ids)
    assert "Open" not in buttons.values()


def test_filters_narrow_the_list() -> None:
    kb = _bundled()
    at = run_page()
    at.multiselect(key="dl_risk").select("malignant").run()
    ids = listed_ids(at)
    assert ids == [c.id for c in kb.search(risk_group="malignant")]
    assert all(kb.get(i).risk_group == "malignant" for i in ids)
    at.multiselect(key="dl_urgency").select("routine").run()
    assert listed_ids(at) == [c.id for c in kb.search(risk_group="malignant", urgency="routine")]
    at.multiselect(key="dl_risk").unselect("malignant").run()
    at.multiselect(key="dl_urgency").unselect("routine").run()
    at.multiselect(key="dl_contagious").select("yes").select("sometimes").run()
    ids = listed_ids(at)
    assert ids == [c.id for c in kb.search(contagious=["yes", "sometimes"])]
    assert all(kb.get(i).contagious != "no" for i in ids)
    assert f"{len(ids)} of {len(kb)} conditions" in [c.value for c in at.caption]


def test_open_button_shows_the_detail_and_back_returns_to_the_list() -> None:
    kb = _bundled()
    target = kb.conditions[0]
    at = run_page()
    at.button(key=f"dl_open_{target.id}").click().run()
    assert not at.exception
    assert at.query_params["condition"] == target.id
    assert_detail_of(at, target.id)
    at.button(key="dl_back").click().run()
    assert "condition" not in at.query_params
    assert listed_ids(at) == kb.ids


def test_deep_link_opens_psoriasis() -> None:
    at = run_page("psoriasis")
    assert_detail_of(at, "psoriasis")
    markdown = "\n".join(m.value for m in at.markdown)
    assert "Datasets that include it" in markdown and "Installed models that can predict it" in markdown
    lines = {line.split("`")[1]: line for line in markdown.splitlines() if line.startswith("- ") and "`" in line}
    if "clinical-common38-ensemble" in lines:  # the shipped weights: a benchmark kept off the Diagnose picker
        assert lines["clinical-common38-ensemble"].endswith("not offered on Diagnose")
        assert "not offered" not in lines["clinical-common38"]


def test_deep_link_accepts_a_dataset_label() -> None:
    at = run_page("ham10000:mel")
    assert_detail_of(at, "melanoma")


def test_unknown_condition_shows_a_message_and_the_list() -> None:
    kb = _bundled()
    at = run_page("no-such-condition")
    assert any("no condition called" in e.value and "no-such-condition" in e.value for e in at.error)
    assert listed_ids(at) == kb.ids


def _render_every_entry() -> None:
    # Runs as a Streamlit script: render every entry once, noting which (if any) raise.
    import streamlit as st

    from dermlib.knowledge import load_knowledge_base
    from dermlib.ui.knowledge import render_condition

    failures = []
    for condition in load_knowledge_base():
        try:
            render_condition(condition)
        except Exception as exc:
            failures.append(f"{condition.id}: {exc!r}")
    st.session_state["failures"] = failures


def test_every_entry_renders_its_detail_view() -> None:
    kb = _bundled()
    at = AppTest.from_function(_render_every_entry, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["failures"] == []
    assert [t.value for t in at.title] == [c.name for c in kb]
    darker = {i.value for i in at.info}
    assert all(md_escape(c.appearance_darker_skin) in darker for c in kb)


def test_broken_library_shows_an_error_instead_of_crashing(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> KnowledgeBase:
        raise KnowledgeError("Knowledge-base entry acne.json: field 'summary' must not be empty")

    monkeypatch.setattr("dermlib.knowledge.base._load_default", broken)
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.run()
    assert not at.exception
    assert any("cannot be loaded" in e.value and "acne.json" in e.value for e in at.error)


def test_detail_lists_the_installed_models_that_predict_it(monkeypatch: pytest.MonkeyPatch) -> None:
    target = _bundled().conditions[0]
    other = _bundled().conditions[-1]
    fake = types.ModuleType("dermlib.models")
    cards = [
        types.SimpleNamespace(
            id="demo-net",
            name="Demo network",
            classes=[types.SimpleNamespace(id=target.id, name=target.name, risk_group=target.risk_group)],
            training={"dataset": "my-own-dataset"},
        ),
        types.SimpleNamespace(
            id="other-net",
            name="Other network",
            classes=[types.SimpleNamespace(id=other.id, name=other.name, risk_group=other.risk_group)],
            training={},
        ),
    ]
    fake.list_models = lambda: cards  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dermlib.models", fake)
    at = run_page(target.id)
    markdown = "\n".join(m.value for m in at.markdown)
    assert "Demo network (`demo-net`)" in markdown
    assert "Other network" not in markdown or target.id == other.id


# --- example photos ----------------------------------------------------------------------------------


def _image_captions(at: AppTest) -> list[str]:
    return [caption for image in at.get("image") for caption in image.captions]


def test_entry_shows_four_example_photos_with_skin_types_and_credits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dermlib.knowledge.examples import DATASET_CREDITS
    from tests.test_library_examples import make_library_data

    monkeypatch.setenv("DERMLENS_DATA_ROOT", str(make_library_data(tmp_path / "data")))
    at = run_page("psoriasis")
    assert_detail_of(at, "psoriasis")
    assert "Example photos" in [s.value for s in at.subheader]
    captions = _image_captions(at)
    assert len(captions) == 4
    assert all(c.startswith("Fitzpatrick ") and c.endswith(" · Fitzpatrick17k") for c in captions)
    credit = DATASET_CREDITS["fitzpatrick17k"]
    assert any(c.value.startswith("Photos: ") and md_escape(credit) in c.value for c in at.caption)
    # Unrecorded skin types say so, and each source is credited once.
    at = run_page("eczema")
    captions = _image_captions(at)
    assert captions[0] == "Fitzpatrick II · Fitzpatrick17k"
    assert captions[1:] == ["Skin type not recorded · DermNet NZ"] * 3
    credits = [c.value for c in at.caption if c.value.startswith("Photos: ")]
    assert len(credits) == 1 and md_escape(DATASET_CREDITS["dermnet-nz"]) in credits[0]


def test_entry_without_a_dataset_shows_no_photos_and_one_caption(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dermlib.ui.knowledge import NO_EXAMPLE_PHOTOS

    (tmp_path / "empty").mkdir()
    for root in (tmp_path / "empty", tmp_path / "missing"):
        monkeypatch.setenv("DERMLENS_DATA_ROOT", str(root))
        at = run_page("psoriasis")
        assert_detail_of(at, "psoriasis")
        assert not at.get("image")
        assert "Example photos" not in [s.value for s in at.subheader]
        assert [c.value for c in at.caption].count(NO_EXAMPLE_PHOTOS) == 1


def test_the_list_view_shows_no_photos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_library_examples import make_library_data

    monkeypatch.setenv("DERMLENS_DATA_ROOT", str(make_library_data(tmp_path / "data")))
    at = run_page()
    assert not at.get("image")


def test_a_condition_covered_inside_a_wider_class_names_the_model_and_the_class() -> None:
    from dermlib.knowledge import load_knowledge_base, models_for, models_within
    from dermlib.knowledge.base import DERMNET_CATEGORY_COVERS

    kb = load_knowledge_base()
    assert all(entry in kb for entries in DERMNET_CATEGORY_COVERS.values() for entry in entries)
    within = {card.id: name for card, name in models_within("impetigo", kb)}
    if "clinical-common38" not in within:
        pytest.skip("the shipped common-conditions model is not installed")
    assert within["clinical-common38"] == "Bacterial skin infection (impetigo, cellulitis, ...)"
    assert models_for("impetigo", kb) == [] and models_within("psoriasis", kb) == []  # psoriasis is named itself
    at = run_page("herpes-zoster")
    markdown = "\n".join(m.value for m in at.markdown)
    assert "None of the installed models predicts it" not in markdown
    assert "(`clinical-common38`), within its class “Herpes simplex and shingles”" in markdown
