"""AppTest tests of the Disease Library page (pages/disease_library.py) and the entry renderer."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dermlib.knowledge import load_knowledge_base
from dermlib.ui.knowledge import md_escape, review_statement

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "disease_library.py")
KB = load_knowledge_base()

pytestmark = pytest.mark.skipif(len(KB) == 0, reason="no knowledge-base entries yet")


def run_page(condition: str | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=30)
    if condition is not None:
        at.query_params["condition"] = condition
    at.run()
    assert not at.exception, at.exception
    return at


def listed_ids(at: AppTest) -> list[str]:
    """Ids of the conditions in the result list, in display order (one Open button each)."""
    return [b.key.removeprefix("dl_open_") for b in at.button if b.key and b.key.startswith("dl_open_")]


def assert_disclaimer(at: AppTest) -> None:
    text = " ".join(w.value for w in at.warning)
    assert "not a diagnosis" in text
    assert review_statement(KB) in text


def assert_detail_of(at: AppTest, condition_id: str) -> None:
    condition = KB.get(condition_id)
    assert [t.value for t in at.title] == [condition.name]
    assert md_escape(condition.appearance_darker_skin) in [i.value for i in at.info]
    markdown = "\n".join(m.value for m in at.markdown)
    assert md_escape(condition.when_to_see_doctor) in markdown
    for ref in condition.references:
        assert f"]({ref.url.replace('(', '%28').replace(')', '%29')})" in markdown
    assert not listed_ids(at)
    assert_disclaimer(at)


def test_list_view_lists_every_condition_with_the_disclaimer() -> None:
    at = run_page()
    assert at.title[0].value == "Disease Library"
    assert listed_ids(at) == KB.ids
    assert f"{len(KB)} of {len(KB)} conditions" in [c.value for c in at.caption]
    assert_disclaimer(at)


def test_search_box_ranks_and_filters() -> None:
    target = KB.conditions[len(KB) // 2]
    at = run_page()
    at.text_input(key="dl_search").input(target.name).run()
    ids = listed_ids(at)
    assert ids[0] == target.id
    assert ids == [c.id for c in KB.search(target.name)]
    at.text_input(key="dl_search").input("zzqx no such condition").run()
    assert listed_ids(at) == []
    assert any("No condition matches" in i.value for i in at.info)


def test_psoriasis_search_finds_psoriasis_first() -> None:
    at = run_page()
    at.text_input(key="dl_search").input("Psoriasis").run()
    assert listed_ids(at)[0] == "psoriasis"


def test_filters_narrow_the_list() -> None:
    at = run_page()
    at.multiselect(key="dl_risk").select("malignant").run()
    ids = listed_ids(at)
    assert ids == [c.id for c in KB.search(risk_group="malignant")]
    assert all(KB.get(i).risk_group == "malignant" for i in ids)
    at.multiselect(key="dl_urgency").select("routine").run()
    assert listed_ids(at) == [c.id for c in KB.search(risk_group="malignant", urgency="routine")]
    at.multiselect(key="dl_risk").unselect("malignant").run()
    at.multiselect(key="dl_urgency").unselect("routine").run()
    at.multiselect(key="dl_contagious").select("yes").select("sometimes").run()
    ids = listed_ids(at)
    assert ids == [c.id for c in KB.search(contagious=["yes", "sometimes"])]
    assert all(KB.get(i).contagious != "no" for i in ids)
    assert f"{len(ids)} of {len(KB)} conditions" in [c.value for c in at.caption]


def test_open_button_shows_the_detail_and_back_returns_to_the_list() -> None:
    target = KB.conditions[0]
    at = run_page()
    at.button(key=f"dl_open_{target.id}").click().run()
    assert not at.exception
    assert at.query_params["condition"] == target.id
    assert_detail_of(at, target.id)
    at.button(key="dl_back").click().run()
    assert "condition" not in at.query_params
    assert listed_ids(at) == KB.ids


def test_deep_link_opens_psoriasis() -> None:
    at = run_page("psoriasis")
    assert_detail_of(at, "psoriasis")
    markdown = "\n".join(m.value for m in at.markdown)
    assert "Datasets that include it" in markdown and "Installed models that can predict it" in markdown


def test_deep_link_accepts_a_dataset_label() -> None:
    at = run_page("ham10000:mel")
    assert_detail_of(at, "melanoma")


def test_unknown_condition_shows_a_message_and_the_list() -> None:
    at = run_page("no-such-condition")
    assert any("no condition called" in e.value and "no-such-condition" in e.value for e in at.error)
    assert listed_ids(at) == KB.ids


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
    at = AppTest.from_function(_render_every_entry, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["failures"] == []
    assert [t.value for t in at.title] == [c.name for c in KB]
    darker = {i.value for i in at.info}
    assert all(md_escape(c.appearance_darker_skin) in darker for c in KB)
