"""The case report's two download buttons (PDF and FHIR JSON), generated in memory when clicked.

Streamlit (1.67) accepts a callable as a download button's ``data``: it runs only when the user clicks, on a
thread of its own, and its bytes go to Streamlit's in-memory media store. So showing the buttons costs nothing
on a rerun, and no report is ever written to the server's disk. The report's id and time are kept in this
session's memo for the prediction shown, so the PDF and the FHIR JSON (which embeds the same PDF) describe one
report however often they are downloaded.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import streamlit as st

from dermlib.ui.session import session_memo

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from dermlib.inference import Prediction
    from dermlib.models import LoadedModel

PDF_MIME = "application/pdf"
FHIR_MIME = "application/fhir+json"


def report_payloads(
    loaded: LoadedModel,
    image: Image.Image,
    prediction: Prediction,
    maps: np.ndarray | Sequence[np.ndarray] | None = None,
    faithfulness: Mapping[str, float] | None = None,
    *,
    cam_method: str | None = None,
    report_id: str | None = None,
    created: datetime | None = None,
) -> tuple[Callable[[], bytes], Callable[[], bytes]]:
    """Two callables that build the PDF and the FHIR JSON of one case on first call (once for both).

    Args:
        loaded: The model that made the prediction.
        image: The photo that was classified.
        prediction: Its prediction.
        maps: Its top-k heatmaps, (k, H, W) in top-k order; None draws them (``cam_method``) on first call.
        faithfulness: Per class id, the heatmap's faithfulness score; None prints "not measured".
        cam_method: The method ``maps`` were drawn with (default ``gradcam``).
        report_id: The report's id (default: random).
        created: The report's time (default: the first call).

    Returns:
        ``(pdf_bytes, fhir_json_bytes)``: each takes no argument, as ``st.download_button`` wants.
    """
    lock = threading.Lock()
    built: dict[str, Any] = {}

    def case_and_pdf() -> tuple[Any, bytes]:
        with lock:  # the two buttons may be clicked at once; the case is built once
            if "pdf" not in built:
                from dermlib.report.case import build_case
                from dermlib.report.pdf import render_pdf

                case = build_case(loaded, image, cam_method=cam_method, faithfulness=faithfulness, now=created,
                                  prediction=prediction, maps=maps, report_id=report_id)
                built["case"], built["pdf"] = case, render_pdf(case)
            return built["case"], built["pdf"]

    def pdf_bytes() -> bytes:
        return case_and_pdf()[1]

    def fhir_bytes() -> bytes:
        from dermlib.report.fhir import fhir_json

        case, pdf = case_and_pdf()
        return fhir_json(case, pdf).encode("utf-8")

    return pdf_bytes, fhir_bytes


def report_downloads(
    loaded: LoadedModel,
    image: Image.Image,
    prediction: Prediction,
    maps: np.ndarray | Sequence[np.ndarray] | None = None,
    faithfulness: Mapping[str, float] | None = None,
    key_prefix: str = "diagnose",
    *,
    cam_method: str | None = None,
) -> None:
    """Show "Download report (PDF)" and "Download FHIR JSON" buttons for one prediction.

    Nothing is computed until a button is clicked (then about 0.1 s with ``maps`` given); clicking does not
    rerun the page.

    Args:
        loaded: The model that made the prediction (e.g. ``get_loaded_model(...)``).
        image: The photo that was classified (the one passed to ``cached_prediction``).
        prediction: Its prediction.
        maps: Its top-k heatmaps as the page drew them (``cached_cams``), (k, H, W) in top-k order; None
            draws Grad-CAM maps (or ``cam_method``'s) when a button is clicked.
        faithfulness: Per class id, the heatmap's faithfulness score
            (:attr:`dermlib.explain.faithfulness.Faithfulness.score`); None prints "not measured".
        key_prefix: Prefix of the buttons' widget keys (the page's name).
        cam_method: The method ``maps`` were drawn with, for the caption (default ``gradcam``).
    """
    card = loaded.card
    memo_key = (key_prefix, card.id, str(card.weights.get("sha256")), prediction.probabilities,
                tuple(s.label for s in prediction.top_k), cam_method)
    report_id, created = session_memo("report", memo_key, lambda: (uuid.uuid4().hex, datetime.now(UTC)))
    pdf_bytes, fhir_bytes = report_payloads(loaded, image, prediction, maps, faithfulness, cam_method=cam_method,
                                            report_id=report_id, created=created)
    stem = f"dermlens-report-{created:%Y%m%d-%H%M%S}"
    left, right = st.columns(2)
    left.download_button("Download report (PDF)", data=pdf_bytes, file_name=f"{stem}.pdf", mime=PDF_MIME,
                         key=f"{key_prefix}_report_pdf", on_click="ignore", icon=":material/download:",
                         help="One or two pages: the photo, the result, the heatmaps, the model's measured "
                              "limits and the disclaimer.")
    right.download_button("Download FHIR JSON", data=fhir_bytes, file_name=f"{stem}.fhir.json", mime=FHIR_MIME,
                          key=f"{key_prefix}_report_fhir", on_click="ignore", icon=":material/download:",
                          help="A FHIR R4 DiagnosticReport (status preliminary, the PDF embedded) for clinics "
                               "that keep records.")
    st.caption("The report is made in this session's memory when you click, and is never saved on the server.")
