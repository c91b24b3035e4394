"""Disease Library page: search the knowledge base and read one condition in full.

Deep link: ``disease_library?condition=<id>`` opens that condition (``dermlib.knowledge.condition_link``
builds such links for other pages).
"""

from __future__ import annotations

import streamlit as st

from dermlib.errors import KnowledgeError
from dermlib.knowledge import (
    CONDITION_QUERY_PARAM,
    CONTAGIOUS_VALUES,
    RISK_GROUPS,
    URGENCIES,
    KnowledgeBase,
    load_knowledge_base,
    models_for,
    models_within,
)
from dermlib.ui.knowledge import (
    CONTAGIOUS_LABELS,
    LIBRARY_PAGE_SIZE,
    RISK_GROUP_LABELS,
    URGENCY_LABELS,
    md_escape,
    render_condition,
    render_condition_row,
    render_disclaimer,
)


def _open(condition_id: str) -> None:
    st.query_params[CONDITION_QUERY_PARAM] = condition_id


def _close() -> None:
    st.query_params.pop(CONDITION_QUERY_PARAM, None)


def _show_more() -> None:
    st.session_state["dl_shown"] = st.session_state.get("dl_shown", LIBRARY_PAGE_SIZE) + LIBRARY_PAGE_SIZE


def _list_view(kb: KnowledgeBase) -> None:
    st.title("Disease Library")
    query = st.text_input("Search conditions", key="dl_search", placeholder="e.g. itchy rings, mole, eczema")
    filtered = any(st.session_state.get(k) for k in ("dl_risk", "dl_urgency", "dl_contagious"))
    with st.expander("Filter by risk group, urgency or contagiousness", expanded=filtered):
        risk_col, urgency_col, contagious_col = st.columns(3)
        risk = risk_col.multiselect(
            "Risk group", RISK_GROUPS, key="dl_risk", format_func=RISK_GROUP_LABELS.__getitem__
        )
        urgency = urgency_col.multiselect(
            "Urgency", URGENCIES, key="dl_urgency", format_func=URGENCY_LABELS.__getitem__
        )
        contagious = contagious_col.multiselect(
            "Contagious", CONTAGIOUS_VALUES, key="dl_contagious", format_func=CONTAGIOUS_LABELS.__getitem__
        )
    results = kb.search(
        query, risk_group=risk or None, urgency=urgency or None, contagious=contagious or None
    )
    asked = (query, tuple(risk), tuple(urgency), tuple(contagious))
    if st.session_state.get("dl_asked") != asked:  # a new search starts from the top of its list
        st.session_state["dl_asked"], st.session_state["dl_shown"] = asked, LIBRARY_PAGE_SIZE
    shown = results[: st.session_state.get("dl_shown", LIBRARY_PAGE_SIZE)]
    st.caption(f"{len(results)} of {len(kb)} conditions"
               + (f"; the first {len(shown)} are listed" if len(shown) < len(results) else ""))
    if not results:
        st.info("No condition matches. Try other words (a symptom, a body part, a name) or clear a filter.")
    for condition in shown:
        render_condition_row(condition, on_open=_open)
    if len(shown) < len(results):
        st.button(f"Show {min(LIBRARY_PAGE_SIZE, len(results) - len(shown))} more", key="dl_more", on_click=_show_more,
                  icon=":material/expand_more:")


def main() -> None:
    """Render the Disease Library: a condition's detail when the URL names one, else the search list."""
    try:
        kb = load_knowledge_base()
    except KnowledgeError as exc:
        st.error(f"The Disease Library cannot be loaded: {md_escape(str(exc))}")
        return
    render_disclaimer(kb)

    requested = st.query_params.get(CONDITION_QUERY_PARAM)
    if requested:
        condition = kb.get(requested) if requested in kb else kb.resolve(requested)
        if condition is not None:
            st.button("All conditions", key="dl_back", on_click=_close, icon=":material/arrow_back:")
            render_condition(condition, models=models_for(condition.id, kb),
                             within=models_within(condition.id, kb), photos=True)
            return
        st.error(
            f"The Disease Library has no condition called “{md_escape(requested)}”. "
            "Search the list below instead."
        )
    _list_view(kb)


main()
