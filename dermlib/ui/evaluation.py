"""The Model page's measured sections: a model's evaluation report and its out-of-scope check, from its card.

Everything here reads the card and ``evaluation.json`` only: neither the weights nor a dataset is needed.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dermlib.evaluate import calibration_check_summary, ece_summary, malignant_alert_line
from dermlib.evaluate.reports import (
    agreement_rows,
    frequent_mistakes,
    pair_line,
    selective_line,
    skin_type_coverage_line,
    source_alert_line,
    source_rows,
)
from dermlib.scope.report import comparison_rows, headline_rows, scope_limit_line
from dermlib.ui.charts import chart
from dermlib.viz import eval_charts
from dermlib.viz.scope_charts import scope_roc_figure
from dermlib.viz.tables import display_table


def show_table(frame: pd.DataFrame) -> None:
    """A table showing every row (no scrolling inside it), missing values as a dash."""
    st.dataframe(display_table(frame), hide_index=True, height="content")


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


def show_report(report: dict[str, Any], names: dict[str, str], card: Any = None) -> None:
    """The headline tiles and the tabs of one evaluation report (per class, confusion, calibration, skin type,
    and by data source for a model trained on several).

    Args:
        report: One split's evaluation report (``dermlib.evaluate.evaluation_report``).
        names: Class id -> display name.
        card: The model's card, for the ensemble's agreement table and the malignant alert.
    """
    _show_headline(report)
    sources = source_rows(report)  # a model trained on several data sets is scored on each alone
    per_class, confusion, calibration, skin, *by_source = st.tabs(
        ["Per class", "Confusion matrix", "Calibration and abstention", "By skin type"]
        + (["By data source"] if sources else []))
    for tab in by_source:
        tab.table(display_table(pd.DataFrame(sources)), hide_index=True)
        tab.caption("Each source's photos are scored against all of the model's classes. \"Sub-types counted as "
                    "their condition\": an answer of acne vulgaris for acne, or of malignant melanoma for melanoma, "
                    "counts as right. " + (pair_line(report) or ""))
        if alert := source_alert_line(report):
            tab.caption(alert)
    with per_class:
        st.table(display_table(eval_charts.per_class_table(report, names)), hide_index=True)
        for info in (c for c in getattr(card, "classes", ()) if c.risk_note):
            # The table's group is the data set's, which the malignant figures count by; the Library's may differ.
            st.caption(f"**{info.name}: clinically {info.display_risk}** (the table gives the data set's group, "
                       f"{info.risk_group}). {info.risk_note}")
        if (two_class := eval_charts.two_class_figure(report, names)) is not None:
            chart(st, two_class)  # one-vs-rest AUC bars would show the same number twice
        else:
            chart(st, eval_charts.auc_figure(report, names))
    with confusion:
        normalize = st.toggle("Normalise rows (recall per class)", value=True, key="model_cm_normalize")
        chart(st, eval_charts.confusion_matrix_figure(report, normalize=normalize, class_names=names))
        if mistakes := frequent_mistakes(report, names):
            st.markdown("**Its most frequent mistakes** (test photos)")
            st.table(display_table(pd.DataFrame(mistakes)), hide_index=True)
    with calibration:
        chart(st, eval_charts.reliability_figure(report))
        if summary := ece_summary(report):
            st.caption(summary)
        if check := calibration_check_summary(report):
            st.markdown("**Calibration check on validation and test pooled**")
            if (figure := eval_charts.calibration_check_figure(report)) is not None:
                chart(st, figure)
            st.caption(check)
        chart(st, eval_charts.coverage_accuracy_figure(report))
        if selective := selective_line(report):
            st.markdown(selective)
        _show_agreement(card)
        if alert := malignant_alert_line(card, report):
            st.markdown(alert)
    with skin:
        if coverage := skin_type_coverage_line(report, _skin_tone(card)):
            st.caption(coverage)
        table = eval_charts.skin_type_table(report)
        if table.empty:
            st.info("Skin type was not recorded for the test images, so this cannot be shown.")
        else:
            st.table(display_table(table), hide_index=True)
            chart(st, eval_charts.skin_type_figure(report))
            st.caption("Error bars: 95% interval of top-1 accuracy; a small group gives a wide interval.")
            if missing := eval_charts.skin_types_without_images(report):
                st.caption(f"No test images of skin type {' or '.join(missing)}: not measured, so not shown.")


def _skin_tone(card: Any) -> dict[str, Any]:
    from dermlib.skintone import load_skin_tone  # OpenCV: only once a report is shown

    return load_skin_tone(getattr(card, "path", None))


def show_scope(section: dict[str, Any] | None) -> None:
    """The "What it refuses" section: the card's out-of-scope check and its measured figures, if it has one."""
    st.header("What it refuses")
    if not section:
        st.info("This model has no out-of-scope check: it answers any photo, skin or not.")
        return
    st.write(scope_limit_line(section))
    left, right = st.columns([3, 2])
    if (figure := scope_roc_figure(section)) is not None:
        chart(left, figure)
    with right:
        show_table(pd.DataFrame(headline_rows(section), columns=["measured on the report halves", "value"]))
    with st.expander("Every score compared (the shipped one was chosen on calibration data)"):
        show_table(pd.DataFrame(comparison_rows(section)))
