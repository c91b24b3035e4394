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
from dermlib.evaluate import (
    calibration_check_summary,
    ece_summary,
    limitation_notes,
    malignant_alert_line,
    model_reports,
)
from dermlib.evaluate.reports import agreement_rows, class_rows, model_facts, pair_line, source_rows, training_facts
from dermlib.scope.report import comparison_rows, headline_rows, scope_limit_line
from dermlib.ui.lesion import outliner_summary
from dermlib.viz import eval_charts
from dermlib.viz.scope_charts import scope_roc_figure
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


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _table(frame: pd.DataFrame) -> None:
    """A table showing every row (no scrolling inside it), missing values as a dash."""
    st.dataframe(display_table(frame), hide_index=True, height="content")


def _facts_table(facts: dict[str, str]) -> None:
    if facts:
        _table(pd.DataFrame({"": list(facts.keys()), "value": list(facts.values())}))


def _show_headline(report: dict[str, Any]) -> None:
    st.caption(f"Measured on {report.get('n', 0)} held-out test images the model never saw in training.")
    tiles = eval_charts.headline_tiles(report)
    for start in range(0, len(tiles), 4):
        columns = st.columns(4)
        for column, (label, value, help_text) in zip(columns, tiles[start : start + 4], strict=False):
            column.metric(label, value, help=help_text)


def _show_agreement(card: Any) -> None:
    rows = agreement_rows(card)
    if rows:
        st.markdown("**When the ensemble's networks disagree** (validation split)")
        st.dataframe(pd.DataFrame(rows), hide_index=True)
        st.caption("The Diagnose page quotes the row that matches each photo when its networks disagree.")


def _show_report(report: dict[str, Any], names: dict[str, str], card: Any = None) -> None:
    _show_headline(report)
    sources = source_rows(report)  # a model trained on several data sets is scored on each alone
    per_class, confusion, calibration, skin, *by_source = st.tabs(
        ["Per class", "Confusion matrix", "Calibration and abstention", "By skin type"]
        + (["By data source"] if sources else []))
    for tab in by_source:
        tab.table(display_table(pd.DataFrame(sources)), hide_index=True)
        tab.caption(pair_line(report) or "")
    with per_class:
        st.table(display_table(eval_charts.per_class_table(report, names)), hide_index=True)
        if (two_class := eval_charts.two_class_figure(report, names)) is not None:
            st.plotly_chart(two_class)  # one-vs-rest AUC bars would show the same number twice
        else:
            st.plotly_chart(eval_charts.auc_figure(report, names))
    with confusion:
        normalize = st.toggle("Normalise rows (recall per class)", value=True, key="model_cm_normalize")
        st.plotly_chart(eval_charts.confusion_matrix_figure(report, normalize=normalize, class_names=names))
    with calibration:
        st.plotly_chart(eval_charts.reliability_figure(report))
        if summary := ece_summary(report):
            st.caption(summary)
        if check := calibration_check_summary(report):
            st.markdown("**Calibration check on validation and test pooled**")
            if (figure := eval_charts.calibration_check_figure(report)) is not None:
                st.plotly_chart(figure)
            st.caption(check)
        st.plotly_chart(eval_charts.coverage_accuracy_figure(report))
        selective = report.get("selective")
        if selective:
            coverage, accuracy = _fmt(selective.get("coverage")), _fmt(selective.get("accuracy"))
            st.markdown(
                f"With the app's uncertainty thresholds the model answers **{coverage}** of test images "
                f"with **{accuracy}** accuracy; on the images it flags as uncertain its accuracy is "
                f"{_fmt(selective.get('accuracy_abstained'))}."
            )
        _show_agreement(card)
        if alert := malignant_alert_line(card, report):
            st.markdown(alert)
    with skin:
        table = eval_charts.skin_type_table(report)
        if table.empty:
            st.info("Skin type was not recorded for the test images, so this cannot be shown.")
        else:
            st.table(display_table(table), hide_index=True)
            st.plotly_chart(eval_charts.skin_type_figure(report))
            st.caption("Error bars: 95% interval of top-1 accuracy; a small group gives a wide interval.")
            if missing := eval_charts.skin_types_without_images(report):
                st.caption(f"No test images of skin type {' or '.join(missing)}: not measured, so not shown.")


def _show_scope(section: dict[str, Any] | None) -> None:
    st.header("What it refuses")
    if not section:
        st.info("This model has no out-of-scope check: it answers any photo, skin or not.")
        return
    st.write(scope_limit_line(section))
    left, right = st.columns([3, 2])
    if (figure := scope_roc_figure(section)) is not None:
        left.plotly_chart(figure)
    with right:
        _table(pd.DataFrame(headline_rows(section), columns=["measured on the report halves", "value"]))
    with st.expander("Every score compared (the shipped one was chosen on calibration data)"):
        _table(pd.DataFrame(comparison_rows(section)))


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
        _table(pd.DataFrame(class_rows(card)))

    st.header("How it was trained")
    facts, counts = training_facts(card)
    if not facts and not counts:
        st.info("The model card does not describe its training.")
    _facts_table(facts)
    names = {c.id: c.name for c in card.classes}
    for name, mapping in counts.items():
        if mapping:  # an empty mapping (no skin type recorded) would be an empty table
            with st.expander(name.capitalize().replace("Fitzpatrick", "Fitzpatrick skin type")):
                _table(count_table(name, mapping, names))

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
        _show_report(report, names, card)

    _show_scope(card.raw.get("scope"))
    outliner_summary(card)  # dermoscopy models: the lesion outliner's measured Dice

    st.header("Limitations")
    notes = list(getattr(card, "limitations", None) or ())
    if report is not None:
        notes += limitation_notes(report)
    for note in notes:
        st.markdown(f"- {note}")
    st.caption(
        "DermLens is decision support and education, not a diagnosis. A clinician should examine any "
        "lesion that is changing, bleeding or worrying."
    )


main()
