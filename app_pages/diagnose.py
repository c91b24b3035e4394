"""Diagnose: upload or photograph a skin condition; see top-k diagnoses and where the model looked."""

from __future__ import annotations

import logging

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from dermlib.errors import DermLensError
from dermlib.images import UPLOAD_EXTENSIONS
from dermlib.models import ModelCard, scan_models
from dermlib.ui.common import NO_MODEL_HELP, get_loaded_model, model_cache_key, show_disclaimer
from dermlib.ui.model_summary import diagnose_models, measured_limits, other_models_hint, withheld_line
from dermlib.ui.session import forget_photo, keep_photo, keep_widget
from dermlib.ui.warmup import warm_up

logger = logging.getLogger("dermlens.diagnose")


def main() -> None:
    """Render the Diagnose page.

    The picker and the uploader are drawn before the model is loaded (and before torch is imported), so a
    new server shows the page at once and loads the model while the user chooses a photo.
    """
    st.title("Diagnose")
    show_disclaimer()

    cards, broken = scan_models()
    for item in broken:
        st.error(f"A model in `{item.folder.name}` cannot be used: {item.problem}")
    if not cards:
        st.warning(NO_MODEL_HELP)
        return

    offered = diagnose_models(cards)  # the default first; heavy benchmark models only where asked for
    by_id = {c.id: c for c in offered}
    keep_widget("diagnose_model", list(by_id))  # a trip to another page keeps the model, options and photo
    model_id = st.selectbox(
        "Model", list(by_id), format_func=lambda i: by_id[i].name, key="diagnose_model",
        help="Clinical models expect ordinary photos; dermoscopy models expect dermatoscope images.",
    )
    card = by_id[model_id]
    if hint := other_models_hint(card, offered):
        st.caption(hint)
    if note := withheld_line(cards):  # folded: most visitors only need the models they can pick
        with st.expander("Why some installed models are not in this list"):
            st.caption(note)
    _model_notes(card)
    load_problem = st.empty()  # above the uploader, where a broken model's message belongs
    upload = _photo_input()

    try:
        loaded = get_loaded_model(card, model_cache_key(card))
    except DermLensError as exc:
        load_problem.error(f"The model could not be loaded: {exc}")
        return
    warm_up(loaded)  # grad-cam's import and the ONNX export, while the user picks a photo
    if upload is None:
        return
    from dermlib.ui.diagnosis import analyse  # torch, plotly and the heatmaps: after the first page is up

    # Filled at the end: a GPU failure during this run's prediction also moves the model to the CPU.
    device_notice = st.empty()
    try:
        analyse(card, loaded, upload)
    except DermLensError as exc:
        st.error(f"This image could not be analysed: {exc}")
    except Exception:  # the session must survive anything the model does; the log gets the traceback
        logger.exception("Analysis failed for model %s", card.id)
        st.error("Something went wrong while analysing this image. The app is still running: try again, "
                 "or try another photo or model.")
    if loaded.fallback_notice:
        device_notice.warning(loaded.fallback_notice, icon=":material/computer:")


SOURCES = ("Upload a photo", "Take a photo")


def _photo_input() -> UploadedFile | None:
    """The image source choice and its uploader or camera; the photo, or None before one is given.

    The photo the user had when leaving the page comes back on return (the widgets themselves forget it).
    """
    keep_widget("diagnose_source", SOURCES)
    source = st.radio("Image source", SOURCES, horizontal=True, key="diagnose_source")
    widget_key = "diagnose_upload" if source == SOURCES[0] else "diagnose_camera"
    had_state = widget_key in st.session_state
    if source == SOURCES[0]:
        upload = st.file_uploader(
            "Photo of the skin condition", type=list(UPLOAD_EXTENSIONS), key=widget_key,
            help="JPEG, PNG, WebP, HEIC, GIF, BMP or TIFF. The photo stays in this session's memory and is "
                 "never saved.",
        )
    else:
        upload = st.camera_input("Photograph the skin condition", key=widget_key)
    photo, restored = keep_photo(widget_key, upload, had_state)
    if restored:
        note, clear = st.columns([4, 1], vertical_alignment="center")
        note.info(f"Your photo from before ({photo.name}) is shown again. Choose another above to replace it.",
                  icon=":material/history:")
        if clear.button("Clear it", key="diagnose_clear_kept", icon=":material/close:"):
            forget_photo(widget_key)
            st.rerun()
    if photo is None:
        st.caption("Frame the affected skin closely, in good light, in focus, without filters.")
    return photo


def _model_notes(card: ModelCard) -> None:
    with st.expander("What this model can and cannot do (measured)", expanded=False):
        for line in measured_limits(card):
            st.markdown(f"- {line}")


main()
