"""The Diagnose page's lesion section (dermoscopy models): outline, measurements, and the optional crop."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st
from PIL import Image

from dermlib.errors import DermLensError
from dermlib.models import ModelCard, list_models
from dermlib.ui.session import keep_widget, session_memo

# One line per measurement, in words a reader of the table needs (the ABCD rule of dermoscopy).
EXPLANATIONS = {
    "Area": "Share of the image the outlined lesion covers.",
    "Asymmetry": "Mismatch when the lesion is folded along each of its two main axes (0 = mirror image); "
                 "asymmetry in both axes is the A of the ABCD rule.",
    "Border": "Perimeter squared over area, scaled so a circle is 1.0; ragged or notched borders score higher.",
    "Colours": "Dermoscopic colours found inside the outline (of white, red, light brown, dark brown, blue-grey, "
               "black); more colours weigh towards melanoma.",
    "Longest extent": "In pixels only: a photo has no known scale, so this is not a diameter in mm.",
}


def segmentation_models() -> list[ModelCard]:
    """Installed lesion segmentation models, default first."""
    return list_models(kind="segmentation")


@st.cache_resource(show_spinner="Loading the lesion outliner…", max_entries=1)
def _segmenter(_card: ModelCard, cache_key: str) -> Any:
    """One loaded segmenter for all sessions (a few MB; only the newest weights file is kept)."""
    from dermlib.segment.model import load_segmenter

    return load_segmenter(_card)


def lesion_mask(card: ModelCard, image: Image.Image, image_digest: str) -> np.ndarray:
    """The lesion mask of an upload, computed once per image in this session."""
    from dermlib.ui.common import model_cache_key

    segmenter = _segmenter(card, model_cache_key(card))
    return session_memo("lesion_mask", (card.id, image_digest), lambda: segmenter.segment(image))


def measurement_rows(values: dict[str, Any]) -> list[dict[str, str]]:
    """The measurements as table rows: measurement, value, what it means."""
    a1, a2 = values["asymmetry"]
    rows = [
        ("Area", f"{values['area_fraction']:.0%} of the image"),
        ("Asymmetry", f"{a1:.2f} and {a2:.2f} ({values['asymmetry_score']} of 2 axes asymmetric)"),
        ("Border", f"{values['border_irregularity']:.2f}"),
        ("Colours", f"{values['colour_count']}: {', '.join(values['colours'])}" if values["colours"] else "none"),
        ("Longest extent", f"{values['diameter_pixels']:.0f} px"),
    ]
    return [{"Measurement": name, "Value": value, "What it means": EXPLANATIONS[name]} for name, value in rows]


def lesion_section(classifier: ModelCard, image: Image.Image, image_digest: str) -> tuple[Image.Image, str]:
    """Render the lesion outline section for a dermoscopy classifier and return what the classifier sees.

    Returns:
        The image to classify (the photo, or its lesion crop when the user asks for it) and its memo key.
    """
    if classifier.task != "dermoscopy":  # before the weights folder is scanned: 15 ms on every clinical upload
        return image, image_digest
    models = segmentation_models()
    if not models:
        return image, image_digest
    from dermlib.segment.crop import crop_to_lesion
    from dermlib.segment.measure import measure_lesion
    from dermlib.segment.overlay import draw_outline

    seg_card = models[0]
    try:
        mask = lesion_mask(seg_card, image, image_digest)
    except DermLensError as exc:
        st.warning(f"The lesion outline is not available: {exc}")
        return image, image_digest
    crop_default = bool((classifier.preprocessing.get("lesion_crop") or {}).get("default", False))
    st.subheader("The lesion")
    show, use_crop = st.columns(2)
    keep_widget("diagnose_outline")
    keep_widget("diagnose_crop")
    outline = show.toggle("Draw the lesion outline", value=True, key="diagnose_outline")
    cropped = use_crop.toggle("Classify the lesion crop", value=crop_default, key="diagnose_crop",
                              help=crop_note(classifier))
    left, right = st.columns([2, 3])
    shown = draw_outline(image, mask) if outline and mask.any() else image
    left.image(shown, caption=f"Outline by {seg_card.name}" if outline else "Your photo", width="stretch")
    result = crop_to_lesion(image, mask)
    with right:
        if not mask.any():
            st.info("No lesion was outlined in this image, so there is nothing to measure.")
        else:
            import pandas as pd

            # A static table: the explanations wrap instead of being cut off in a scrolling grid.
            st.table(pd.DataFrame(measurement_rows(measure_lesion(mask, image).to_dict())).set_index("Measurement"))
        st.caption(f"**What the classifier saw:** {result.reason if cropped else 'the whole photo'}. "
                   + crop_note(classifier))
    if cropped and result.box is not None:
        return result.image, f"{image_digest}:crop:{result.box}"
    return image, image_digest


def crop_note(classifier: ModelCard) -> str:
    """One sentence on what cropping to the lesion did to this classifier's measured accuracy."""
    measured = (classifier.preprocessing.get("lesion_crop") or {}).get("measured") or {}
    if not measured:
        return "Cropping to the lesion was not measured for this model."
    return (f"Measured on its test split: balanced accuracy {measured['with_crop']:.3f} with the crop, "
            f"{measured['without_crop']:.3f} without.")


def outliner_summary(classifier: ModelCard) -> None:
    """The Model page's note on the lesion outliner a dermoscopy classifier is shown with: its measured Dice."""
    models = segmentation_models()
    if classifier.task != "dermoscopy" or not models:
        return
    seg = models[0]
    test = (seg.metrics or {}).get("test") or {}
    st.header("Lesion outliner used with it")
    st.write(f"**{seg.name}** (`{seg.id}`, {seg.architecture_label}): {seg.description}")
    if test.get("dice") is not None:
        low, high = test.get("dice_ci95") or (None, None)
        interval = f" (95% interval {low:.3f}-{high:.3f})" if low is not None else ""
        st.markdown(f"Dice on its {test['n']} held-out test images: **{test['dice']:.3f}**{interval}, IoU "
                    f"{test['iou']:.3f}.")
        rows = [{"diagnosis": name, "images": g["n"], "Dice": f"{g['dice']:.3f}", "IoU": f"{g['iou']:.3f}"}
                for name, g in (test.get("by_diagnosis") or {}).items()]
        if rows:
            import pandas as pd

            st.table(pd.DataFrame(rows).set_index("diagnosis"))
    st.caption(crop_note(classifier) + " " + " ".join(seg.limitations))
