"""The Diagnose page's heatmap panel: maps on one colour scale, a colour bar, and their faithfulness."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from dermlib.explain import CAM_METHODS, DEFAULT_CAM_METHOD, overlay_heatmap
from dermlib.explain.faithfulness import CHANCE_MARGIN, signed_points
from dermlib.explain.methods import unavailable_reason
from dermlib.explain.overlay import colour_bar, shared_scale
from dermlib.ui.common import cached_cams
from dermlib.ui.session import keep_widget, session_memo

SCALE_NOTE = ("All maps share one colour scale: each is scaled by its class's probability relative to the top "
              "class, so a class at a tenth of the top probability shows at most a tenth of the heat.")


def cached_faithfulness(loaded: Any, key: str, image_digest: str, image: Any, indices: tuple[int, ...],
                        method: str, maps: np.ndarray) -> list:
    """Faithfulness of the maps (:mod:`dermlib.explain.faithfulness`), once per image, classes and method."""
    from dermlib.explain.faithfulness import faithfulness

    return session_memo("faithfulness", (key, image_digest, indices, method),
                        lambda: faithfulness(loaded, image, list(indices), maps))


def _maps(loaded: Any, key: str, image_digest: str, image: Any, indices: tuple[int, ...], method: str) -> np.ndarray:
    spec = CAM_METHODS[method]
    if not spec.slow:
        with st.spinner(f"Computing {spec.label} heatmaps…"):
            return cached_cams(loaded, key, image_digest, image, indices, method)
    # Progress between batches of masked images; each update is also where Streamlit stops this run when the
    # user changes the input, so a slow method never holds the session.
    bar = st.progress(0.0, text=f"Computing {spec.label} heatmaps…")
    maps = cached_cams(loaded, key, image_digest, image, indices, method,
                       progress=lambda done, total: bar.progress(done / total, text=f"{spec.label}: "
                                                                 f"{done} of {total} masked images"))
    bar.empty()
    return maps


@st.fragment
def cam_panel(loaded: Any, key: str, image_digest: str, image: Any, view: Any, prediction: Any) -> None:
    """Method and opacity pickers, the maps two to a row, the colour bar, and the faithfulness check.

    A fragment: moving the opacity or picking another method reruns this panel only, never the prediction.
    """
    st.subheader("Where the model looked")
    col_method, col_opacity = st.columns(2)
    offered = [m for m in CAM_METHODS if unavailable_reason(loaded.card, m) is None]
    keep_widget("diagnose_cam_method", offered)
    keep_widget("diagnose_opacity")
    method = col_method.selectbox(
        "Explanation method", offered, index=offered.index(DEFAULT_CAM_METHOD),
        format_func=lambda m: CAM_METHODS[m].label, key="diagnose_cam_method",
    )
    opacity = col_opacity.slider("Heatmap opacity", 0.0, 1.0, 0.45, 0.05, key="diagnose_opacity")
    spec = CAM_METHODS[method]
    st.caption(spec.description + (" It takes a second or two." if spec.slow else ""))
    for reason in filter(None, (unavailable_reason(loaded.card, m) for m in CAM_METHODS)):
        st.caption(reason)
    indices = tuple(loaded.card.class_ids.index(s.label) for s in prediction.top_k)
    maps = _maps(loaded, key, image_digest, image, indices, method)
    scores = list(prediction.top_k)
    if spec.class_specific:
        shown = shared_scale(maps, [s.probability for s in scores])
        captions = [f"{s.name} ({s.probability:.0%})" for s in scores]
    else:  # one map for every class: drawing it under each class caption would suggest otherwise
        shown, captions = maps[:1], [f"{spec.label}: the same map for every class"]
    tiles = [(view, "Original")] + [
        (overlay_heatmap(view, cam, opacity), caption) for cam, caption in zip(shown, captions, strict=True)]
    for start in range(0, len(tiles), 2):  # two to a row: large enough to read; click a map to enlarge it
        for col, (picture, caption) in zip(st.columns(2), tiles[start:start + 2], strict=False):
            col.image(picture, caption=caption, width="stretch")
    st.image(colour_bar(), caption=spec.colour_scale, width=360)
    st.caption((SCALE_NOTE + " " if spec.class_specific else "") + spec.reading_note)
    # One map per listed class, also for a class-agnostic method (its single map stands for every class).
    per_class = maps if spec.class_specific else np.repeat(maps[:1], len(indices), axis=0)
    results = _faithfulness_check(loaded, key, image_digest, image, indices, method, per_class, scores)
    st.subheader("Keep this case")
    st.caption("A one- or two-page PDF (photo, result, heatmaps, the model's measured limits) and the same result "
               "as a FHIR R4 DiagnosticReport for clinic records.")
    from dermlib.ui.report import report_downloads

    report_downloads(loaded, image, prediction, maps=per_class, cam_method=method,
        faithfulness={s.label: r.score for s, r in zip(scores, results, strict=True)} if results else None)


def _faithfulness_check(loaded: Any, key: str, image_digest: str, image: Any, indices: tuple[int, ...],
                        method: str, maps: np.ndarray, scores: list) -> list | None:
    """On request: how far each class's probability falls when its map's hottest pixels are removed (None when
    the user has not asked)."""
    keep_widget("diagnose_faithfulness")
    if not st.toggle("Test whether these heatmaps can be trusted", key="diagnose_faithfulness",
                     help="Removes the 20% most highlighted pixels (filled in from their surroundings) and "
                          "measures the class's probability again, against removing 20% at random. A few "
                          "seconds on an ensemble."):
        return None
    with st.spinner("Removing the highlighted pixels and asking the model again…"):
        results = cached_faithfulness(loaded, key, image_digest, image, indices, method, maps)
    # Verdict first and short headers: in the page's column a wide table cut the verdict off.
    rows = [{"Class": s.name, "Verdict": r.verdict, "Score": signed_points(r.score),
             "Probability": f"{r.probability:.0%}", "Hot 20% out": f"{r.after_top:.0%}",
             "Random 20% out": f"{r.after_random:.0%}"} for s, r in zip(scores, results, strict=True)]
    st.table(rows)  # a table wraps its text; a data frame scrolls sideways
    low, high = signed_points(-CHANCE_MARGIN), signed_points(CHANCE_MARGIN)
    st.caption("Probability: the class's calibrated probability on the photo as it is; \"Hot 20% out\": with its "
               "map's hottest 20% of pixels removed; \"Random 20% out\": with a random 20% removed. Score: the "
               f"first drop minus the second, in percentage points. The verdict is \"faithful\" from {high} points "
               "up: removing the map's hottest pixels then costs the class more than removing as many at random. "
               f"Between {low} and {high} the map is no better than chance at showing what the model used; the "
               "higher the score, the stronger the evidence.")
    return results
