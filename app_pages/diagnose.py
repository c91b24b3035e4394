"""Diagnose: upload or photograph a skin condition; see top-k diagnoses and where the model looked."""

from __future__ import annotations

import logging

import streamlit as st

from dermlib.errors import DermLensError
from dermlib.images import UPLOAD_EXTENSIONS
from dermlib.models import LoadedModel, ModelCard, scan_models
from dermlib.ui.common import (
    NO_MODEL_HELP,
    cached_prediction,
    decode_image,
    digest,
    get_loaded_model,
    model_cache_key,
    show_disclaimer,
)
from dermlib.ui.heatmaps import cam_panel
from dermlib.ui.lesion import lesion_section
from dermlib.ui.model_summary import (
    agreement_headline,
    condition_links,
    measured_limits,
    member_agreement,
    other_models_hint,
    plain_uncertainty,
    risk_notes,
    scope_details,
    urgency_line,
)
from dermlib.viz.prediction_charts import probability_chart, risk_chart

logger = logging.getLogger("dermlens.diagnose")


def main() -> None:
    """Render the Diagnose page."""
    st.title("Diagnose")
    show_disclaimer()

    cards, broken = scan_models()
    for item in broken:
        st.error(f"A model in `{item.folder.name}` cannot be used: {item.problem}")
    if not cards:
        st.warning(NO_MODEL_HELP)
        return

    # The card marked default comes first, as in list_models().
    by_id = {c.id: c for c in sorted(cards, key=lambda c: (not c.default, c.id))}
    model_id = st.selectbox(
        "Model", list(by_id), format_func=lambda i: by_id[i].name, key="diagnose_model",
        help="Clinical models expect ordinary photos; dermoscopy models expect dermatoscope images.",
    )
    card = by_id[model_id]
    if hint := other_models_hint(card, cards):
        st.caption(hint)
    _model_notes(card)

    try:
        loaded = get_loaded_model(card, model_cache_key(card))
    except DermLensError as exc:
        st.error(f"The model could not be loaded: {exc}")
        return
    # Filled at the end: a GPU failure during this run's prediction also moves the model to the CPU.
    device_notice = st.empty()
    try:
        _analyse(card, loaded)
    except DermLensError as exc:
        st.error(f"This image could not be analysed: {exc}")
    except Exception:  # the session must survive anything the model does; the log gets the traceback
        logger.exception("Analysis failed for model %s", card.id)
        st.error("Something went wrong while analysing this image. The app is still running: try again, "
                 "or try another photo or model.")
    if loaded.fallback_notice:
        device_notice.warning(loaded.fallback_notice, icon="🖥️")


def _analyse(card: ModelCard, loaded: LoadedModel) -> None:
    """Image input, prediction, charts and heatmaps for one loaded model."""
    source = st.radio("Image source", ["Upload a photo", "Take a photo"], horizontal=True, key="diagnose_source")
    if source == "Upload a photo":
        upload = st.file_uploader(
            "Photo of the skin condition", type=list(UPLOAD_EXTENSIONS), key="diagnose_upload",
            help="JPEG, PNG, WebP, HEIC, GIF, BMP or TIFF. The photo stays in this session's memory and is "
                 "never saved.",
        )
    else:
        upload = st.camera_input("Photograph the skin condition", key="diagnose_camera")
    if upload is None:
        st.caption("Frame the affected skin closely, in good light, in focus, without filters.")
        return

    data = upload.getvalue()
    image_digest = digest(data)
    try:
        image = decode_image(data, image_digest)
    except DermLensError as exc:
        st.error(f"This file cannot be used: {exc}")
        return

    top_k = st.slider("How many diagnoses to list", 1, min(5, card.num_classes), min(3, card.num_classes),
                      key="diagnose_top_k")
    key = model_cache_key(card)
    prediction = cached_prediction(loaded, key, image_digest, image, top_k)
    if prediction.in_scope:  # dermoscopy: outline, measurements, and the crop if the user asks for it
        image, seen_digest = lesion_section(card, image, image_digest)
        if seen_digest != image_digest:
            image_digest, prediction = seen_digest, cached_prediction(loaded, key, seen_digest, image, top_k)

    for warning in prediction.scope.quality:
        st.warning(f"**Photo quality:** {warning.message} {warning.advice}", icon="📷")
    view = loaded.model_view(image)
    if prediction.in_scope:
        _result(card, prediction, view)
        cam_panel(loaded, key, image_digest, image, view, prediction)
        return
    # Out of scope: the refusal comes first, and nothing that reads as a diagnosis is drawn by default.
    left, right = st.columns([2, 3])
    left.image(view, caption="Your photo (as the model would see it)", width="stretch")
    right.error(f"**{prediction.scope.message}**", icon="🚫")
    right.caption(scope_details(prediction.scope))
    with st.expander("Show the model's output anyway (for reviewers: it means nothing for this image)"):
        _result(card, prediction, view)
        if st.toggle("Also compute the heatmaps", key="diagnose_scope_cams"):
            cam_panel(loaded, key, image_digest, image, view, prediction)


def _result(card: ModelCard, prediction, view) -> None:
    """The model's view, the probability and risk charts, and links to the Library."""
    left, right = st.columns([2, 3])
    left.image(view, caption="What the model sees (resized and cropped)", width="stretch")
    with right:
        if prediction.uncertain:
            st.warning(
                "**The model is not sure about this image, so DermLens does not offer a diagnosis:** "
                + "; ".join(plain_uncertainty(prediction)) + ". The list below is shown for transparency only. "
                "Please have the skin examined by a clinician."
            )
        if urgency := urgency_line(prediction, card):
            level, text = urgency
            (st.info if level == "routine" else st.warning)(text, icon="🚨" if level == "urgent" else None)
        st.plotly_chart(probability_chart(prediction), key="diagnose_prob_chart")
        if agreement := member_agreement(prediction, card):
            text, disagree = agreement
            (st.info if disagree else st.caption)(agreement_headline(prediction))
            with st.expander("Each network's answer"):
                st.markdown(text)
        if prediction.uncertain:
            with st.expander("Technical details"):
                st.caption("Abstention rule: " + "; ".join(prediction.reasons) + ".")
        st.markdown("**Risk groups** (probability summed over the classes in each group)")
        st.plotly_chart(risk_chart(prediction), key="diagnose_risk_chart")
        for note in risk_notes(prediction, card):
            st.caption(note)
        links = condition_links(prediction, card)
        if links:
            st.markdown("Learn more: " + " · ".join(links))


def _model_notes(card: ModelCard) -> None:
    with st.expander("What this model can and cannot do (measured)", expanded=False):
        for line in measured_limits(card):
            st.markdown(f"- {line}")


main()
