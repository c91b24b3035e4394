"""The Diagnose page's result: prediction, scope refusal, charts, Library links and heatmaps.

Kept apart from the page so that the page can draw its model picker and uploader before anything here
(torch, timm, plotly, grad-cam's callers) is imported: the page imports this module only once a model is
loaded, which is what keeps a new server's first page under 5 s (docs/RELIABILITY.md).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dermlib.errors import DermLensError
from dermlib.models import LoadedModel, ModelCard
from dermlib.ui.charts import chart
from dermlib.ui.common import cached_prediction, decode_image, digest, model_cache_key
from dermlib.ui.heatmaps import cam_panel
from dermlib.ui.lesion import lesion_section
from dermlib.ui.model_summary import (
    agreement_headline,
    condition_links,
    member_agreement,
    plain_uncertainty,
    record_rows,
    risk_notes,
    scope_details,
    track_record,
    urgency_line,
)
from dermlib.ui.session import keep_widget
from dermlib.viz.prediction_charts import probability_chart, risk_chart


def analyse(card: ModelCard, loaded: LoadedModel, upload: Any) -> None:
    """Decode the upload, predict, and draw the result (or the scope refusal) and the heatmaps.

    Args:
        card: The chosen model's card.
        loaded: That model, loaded.
        upload: The uploaded or photographed file (anything with ``getvalue()``).

    Raises:
        DermLensError: The model failed in a way the page reports as "could not be analysed".
    """
    data = upload.getvalue()
    image_digest = digest(data)
    try:
        image = decode_image(data, image_digest)
    except DermLensError as exc:
        st.error(f"**This file cannot be used.** {exc}")
        return

    keep_widget("diagnose_top_k", range(1, min(5, card.num_classes) + 1))
    top_k = st.slider("How many diagnoses to list", 1, min(5, card.num_classes), min(3, card.num_classes),
                      key="diagnose_top_k")
    key = model_cache_key(card)
    prediction = cached_prediction(loaded, key, image_digest, image, top_k)
    # The answer is drawn above the lesion section, although the section decides which photo it is for (the
    # lesion crop, if asked for): on a phone the outline and its measurements pushed it two screens down.
    answer = st.container()
    if prediction.in_scope:  # dermoscopy: outline, measurements, and the crop if the user asks for it
        image, seen_digest = lesion_section(card, image, image_digest)
        if seen_digest != image_digest:
            image_digest, prediction = seen_digest, cached_prediction(loaded, key, seen_digest, image, top_k)

    with answer:
        for warning in prediction.scope.quality:
            st.warning(f"**Photo quality:** {warning.message} {warning.advice}", icon=":material/photo_camera:")
    view = loaded.model_view(image)
    if prediction.in_scope:
        with answer:
            _result(card, prediction, view)
        cam_panel(loaded, key, image_digest, image, view, prediction)
        return
    # Out of scope: the refusal comes first, and nothing that reads as a diagnosis is drawn by default.
    # Refusal first, photo second: on a phone the columns stack in this order.
    message, photo = st.columns([3, 2])
    photo.image(view, caption="Your photo (as the model would see it)", width="stretch")
    message.error(f"**{prediction.scope.message}**", icon=":material/block:")
    message.caption(scope_details(prediction.scope))
    with st.expander("Show the model's output anyway (for reviewers: it means nothing for this image)"):
        _result(card, prediction, view)
        keep_widget("diagnose_scope_cams")
        if st.toggle("Also compute the heatmaps", key="diagnose_scope_cams"):
            cam_panel(loaded, key, image_digest, image, view, prediction)


def _result(card: ModelCard, prediction, view) -> None:
    """The model's view, the probability and risk charts, and links to the Library."""
    # The answer first and the photo second: on a phone the columns stack in this order.
    told, seen = st.columns([3, 2])
    seen.image(view, caption="What the model sees (resized and cropped)", width="stretch")
    with told:
        if prediction.uncertain:
            st.warning(
                "**The model is not sure about this image, so DermLens does not offer a diagnosis:** "
                + "; ".join(plain_uncertainty(prediction)) + ". The list below is shown for transparency only. "
                "Please have the skin examined by a clinician."
            )
        if urgency := urgency_line(prediction, card):
            level, text = urgency
            icon = ":material/emergency:" if level == "urgent" else None
            (st.info if level == "routine" else st.warning)(text, icon=icon)
        listed = ", ".join(f"{s.name} {s.probability:.0%}" for s in prediction.top_k)
        chart(st, probability_chart(prediction), alt=f"Top diagnoses by calibrated probability: {listed}.",
              key="diagnose_prob_chart")
        if record := track_record(prediction, card):
            st.caption(record)
            if len(rows := record_rows(prediction, card)) > 1:
                with st.expander("Its record for each listed condition"):
                    st.table(pd.DataFrame(rows), hide_index=True)  # a table: no cell is cut off
                    st.caption("From the model card's per-class figures on photos it never trained on; the first "
                               "row is the line above.")
        if agreement := member_agreement(prediction, card):
            text, disagree = agreement
            (st.info if disagree else st.caption)(agreement_headline(prediction))
            with st.expander("Each network's answer"):
                st.markdown(text)
        if prediction.uncertain:
            with st.expander("Technical details"):
                st.caption("Abstention rule: " + "; ".join(prediction.reasons) + ".")
        st.markdown("**Risk groups** (probability summed over the classes in each group)")
        groups = ", ".join(f"{g} {p:.0%}" for g, p in prediction.risk.items())
        chart(st, risk_chart(prediction), alt=f"Probability by risk group: {groups}.", key="diagnose_risk_chart")
        for note in risk_notes(prediction, card):
            st.caption(note)
        links = condition_links(prediction, card)
        if links:
            st.markdown("Learn more: " + " · ".join(links))
