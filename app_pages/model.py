"""Model page: what the selected model is, how it was trained, how well it works, and where it fails.

Everything shown comes from the model card (and an optional ``evaluation.json`` beside it); the page
needs neither the weights nor the dataset.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dermlib.config import weights_dir
from dermlib.errors import DermLensError
from dermlib.evaluate import limitation_notes, model_reports
from dermlib.evaluate.external import external_test_lines
from dermlib.evaluate.reports import class_rows, model_facts, training_commands, training_facts
from dermlib.ui.evaluation import show_report, show_scope, show_table
from dermlib.ui.lesion import outliner_summary
from dermlib.viz.tables import count_table, display_table

NO_MODEL_HELP = """
DermLens reads each model from its own folder under the weights directory (`{weights}`):
a `card.json` (what the model is and how well it works) beside a `model.safetensors` file.

To get one:
* train one on a public dataset with the training command: `python -m dermlib train --help`;
* or copy an existing model folder into the weights directory;
* or point the app at another folder with the environment variable `DERMLENS_WEIGHTS_DIR`.
"""


def _installed_models() -> tuple[list[Any], list[str]]:
    """Cards of the installed models and problems to show (never raises)."""
    try:
        import dermlib.models as models
    except ImportError as exc:
        return [], [f"The model registry is not available in this installation ({exc})."]
    try:
        if hasattr(models, "scan_models"):
            _, broken = models.scan_models()
            problems = [f"{b.folder.name}: {b.problem}" for b in broken]
        else:
            problems = []
        return list(models.list_models()), problems
    except (DermLensError, OSError) as exc:
        return [], [str(exc)]


def _facts_table(facts: dict[str, str]) -> None:
    if facts:  # st.table wraps long values (a lineage, a mask's reason); st.dataframe would cut them off
        st.table(display_table(pd.DataFrame({"": list(facts.keys()), "value": list(facts.values())})),
                 hide_index=True)


def main() -> None:
    """Render the Model page."""
    st.title("Model")
    cards, problems = _installed_models()
    for problem in problems:
        st.warning(problem)
    if not cards:
        st.info("No model is installed yet.")
        st.markdown(NO_MODEL_HELP.format(weights=weights_dir()))
        return

    card = st.selectbox("Model", cards, format_func=lambda c: f"{c.name} ({c.id})", key="model_page_model")
    if getattr(card, "description", ""):
        st.write(card.description)

    st.header("What it is")
    _facts_table(model_facts(card))
    with st.expander(f"Classes ({len(card.classes)})"):
        show_table(pd.DataFrame(class_rows(card)))

    st.header("How it was trained")
    facts, counts = training_facts(card)
    if not facts and not counts:
        st.info("The model card does not describe its training.")
    _facts_table(facts)
    if commands := training_commands(card):
        with st.expander("The commands that trained it"):
            st.code(commands, language="bash", wrap_lines=True)
    names = {c.id: c.name for c in card.classes}
    for name, mapping in counts.items():
        if mapping:  # an empty mapping (no skin type recorded) would be an empty table
            with st.expander(name.capitalize().replace("Fitzpatrick", "Fitzpatrick skin type")):
                show_table(count_table(name, mapping, names))

    st.header("How well it works")
    reports, report_problems = model_reports(card)
    for problem in report_problems:
        st.warning(problem)
    report: dict[str, Any] | None = None
    if not reports:
        st.info("This model's card holds no evaluation report, so its accuracy is unknown.")
    else:
        split = "test" if "test" in reports else next(iter(reports))
        if len(reports) > 1:
            split = st.radio("Evaluation split", list(reports), horizontal=True, key="model_page_split")
        report = reports[split]
        show_report(report, names, card)

    show_scope(card.raw.get("scope"))
    outliner_summary(card)  # dermoscopy models: the lesion outliner's measured Dice

    st.header("Limitations")
    notes = external_test_lines(card.raw.get("external_tests")) + list(getattr(card, "limitations", None) or ())
    if report is not None:
        notes += limitation_notes(report, class_names=names)
    for note in notes:
        st.markdown(f"- {note}")
    st.caption(
        "DermLens is decision support and education, not a diagnosis. A clinician should examine any "
        "lesion that is changing, bleeding or worrying."
    )


main()
