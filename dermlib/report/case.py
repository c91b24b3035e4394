"""One case gathered for a report: the photo, the prediction, the heatmaps and what the model was measured to do.

:func:`build_case` runs the prediction and the heatmaps (or reuses the ones a page already has) and collects
everything the PDF (:mod:`dermlib.report.pdf`) and the FHIR resource (:mod:`dermlib.report.fhir`) print, so the
two renderers only lay out a finished :class:`CaseReport`. Everything stays in memory.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from dermlib.knowledge.urgency import URGENCY_MIN_PROBABILITY, Urgency, urgency_for  # noqa: F401 (re-exported)
from dermlib.report.text import format_points, plain

if TYPE_CHECKING:  # the heavy modules are imported by build_case, not by rendering a finished case
    import numpy as np
    from PIL import Image

    from dermlib.inference import Prediction
    from dermlib.knowledge import KnowledgeBase
    from dermlib.models import LoadedModel, ModelCard

#: The Fitzpatrick groups the per-skin-type table lists, in this order (as the evaluation writes them).
SKIN_TYPE_GROUPS = ("I-II", "III-IV", "V-VI")
#: Opacity of the heatmap over the model's view in the report (the Diagnose page's default).
HEATMAP_OPACITY = 0.45


@dataclass(frozen=True)
class Heatmap:
    """Where the model looked for one class of the top-k.

    Attributes:
        label: The class id (card order), e.g. ``"melanoma"``.
        name: The class's display name.
        probability: Its calibrated probability.
        overlay: The heatmap blended over the model's view of the photo.
        faithfulness: The map's faithfulness score (see :func:`faithfulness_verdict`), None when not measured.
    """

    label: str
    name: str
    probability: float
    overlay: Image.Image
    faithfulness: float | None = None

    @property
    def faithfulness_text(self) -> str:
        """E.g. ``faithfulness +5 points (faithful)`` or ``faithfulness not measured``."""
        if self.faithfulness is None:
            return "faithfulness not measured"
        return f"faithfulness {format_points(self.faithfulness)} ({faithfulness_verdict(self.faithfulness)})"


@dataclass(frozen=True)
class SkinTypeAccuracy:
    """Top-1 accuracy of the model on one Fitzpatrick group of its test split.

    Attributes:
        group: ``I-II``, ``III-IV`` or ``V-VI``.
        n: Test images of that group (0 when none).
        top1_accuracy: Their top-1 accuracy, None when there were none.
    """

    group: str
    n: int
    top1_accuracy: float | None


@dataclass(frozen=True)
class CaseReport:
    """Everything a case report shows, gathered once (see :func:`build_case`).

    Attributes:
        image: The photo as analysed (upright RGB, at most 1024 px).
        model_view: The photo as the model sees it (masked, resized, cropped).
        card: The model's card.
        prediction: The calibrated prediction with its scope check.
        created: When the report was made (UTC, timezone-aware).
        app_version: The DermLens version.
        report_id: A random id for this report (32 hex digits), also the FHIR resource id.
        heatmaps: One per top-k class, in top-k order; empty when none were drawn.
        cam_method: The registry name of the heatmap method (see :data:`dermlib.explain.CAM_METHODS`).
        urgency: The urgency line's source, None when none applies (see ``urgency_note``).
        urgency_note: Why there is no urgency (out of scope, no Library entry); empty when there is one.
        measured_limits: Plain-language lines on what the model was measured to do and cannot do.
        member_agreement: For an ensemble, what its networks answer on their own (plain text), else None.
        track_record: How often the model was right on test photos when its first answer was this one's
            (plain text), None when its card has no per-class figures.
    """

    image: Image.Image
    model_view: Image.Image
    card: ModelCard
    prediction: Prediction
    created: datetime
    app_version: str
    report_id: str
    heatmaps: tuple[Heatmap, ...] = ()
    cam_method: str | None = None
    urgency: Urgency | None = None
    urgency_note: str = ""
    measured_limits: tuple[str, ...] = ()
    member_agreement: str | None = None
    track_record: str | None = None

    @property
    def model_version(self) -> str:
        """The first 12 hex digits of the weights' SHA-256: the version of the model that answered."""
        sha = str(self.card.weights.get("sha256") or "")
        return sha[:12] if sha else "unknown"

    @property
    def skin_type_accuracy(self) -> tuple[SkinTypeAccuracy, ...]:
        """Top-1 accuracy per Fitzpatrick group of the test split (see :func:`skin_type_accuracy`)."""
        return skin_type_accuracy(self.card)

    @property
    def cam_label(self) -> str | None:
        """The heatmap method as people read it (``Grad-CAM``), None without heatmaps."""
        if not self.cam_method:
            return None
        from dermlib.explain.methods import CAM_METHODS

        spec = CAM_METHODS.get(self.cam_method)
        return spec.label if spec else self.cam_method


def faithfulness_verdict(score: float) -> str:
    """One word for a faithfulness score, the same as the Diagnose page's
    (:func:`dermlib.explain.faithfulness.verdict`; that module imports torch only to measure)."""
    from dermlib.explain.faithfulness import verdict

    return verdict(score)


def skin_type_accuracy(card: ModelCard) -> tuple[SkinTypeAccuracy, ...]:
    """Top-1 accuracy per Fitzpatrick group as the card's test metrics record it.

    Returns:
        One row per group of :data:`SKIN_TYPE_GROUPS` (n = 0 and accuracy None where unmeasured); empty when the
        card records no skin type for any test image (e.g. dermoscopy), which the report prints as "not recorded".
    """
    groups = ((card.metrics or {}).get("by_skin_type") or {}).get("groups") or {}
    rows = []
    for name in SKIN_TYPE_GROUPS:
        g = groups.get(name) if isinstance(groups.get(name), dict) else {}
        n = int(g.get("n") or 0)
        acc = g.get("top1_accuracy")
        rows.append(SkinTypeAccuracy(name, n, float(acc) if n and acc is not None else None))
    return tuple(rows) if any(r.n for r in rows) else ()


def app_version() -> str:
    """The DermLens version: ``dermlib.__version__``, else the installed package's, else ``dev``."""
    import dermlib

    version = getattr(dermlib, "__version__", None)
    if version:
        return str(version)
    from importlib import metadata

    try:
        return metadata.version("dermlens")
    except metadata.PackageNotFoundError:
        return "dev"


def build_case(
    loaded: LoadedModel,
    image: Image.Image,
    top_k: int = 3,
    cam_method: str | None = None,
    faithfulness: Mapping[str, float] | None = None,
    now: datetime | None = None,
    *,
    prediction: Prediction | None = None,
    maps: np.ndarray | Sequence[np.ndarray] | None = None,
    kb: KnowledgeBase | None = None,
    report_id: str | None = None,
) -> CaseReport:
    """Gather one case: predict, draw the top-k heatmaps, and collect the model's measured limits.

    Args:
        loaded: A model from :func:`dermlib.models.load_model`.
        image: The RGB photo (see :func:`dermlib.images.load_image`).
        top_k: How many classes to list (ignored when ``prediction`` is given).
        cam_method: A key of :data:`dermlib.explain.CAM_METHODS` (default ``gradcam``).
        faithfulness: Per class id, the heatmap's faithfulness score
            (:attr:`dermlib.explain.faithfulness.Faithfulness.score`); classes left out print "not measured".
        now: The report's time (default: now); a naive datetime is taken as UTC.
        prediction: The prediction a page already has for this image (default: computed here).
        maps: The top-k heatmaps a page already has, (k, H, W) in [0, 1] in top-k order (default: computed).
        kb: The Disease Library for the urgency line (default: the bundled one).
        report_id: The report's id (default: a random UUID, 32 hex digits).

    Returns:
        The case, ready for :func:`dermlib.report.render_pdf` and :func:`dermlib.report.to_fhir`.

    Raises:
        ValueError: ``maps`` does not hold one map per top-k class, or ``cam_method`` is unknown.
        ModelError: The model's scope statistics are missing or damaged.
    """
    from dermlib.explain.methods import DEFAULT_CAM_METHOD, get_cam_method
    from dermlib.explain.overlay import overlay_heatmap
    from dermlib.inference import predict
    from dermlib.ui.model_summary import measured_limits, member_agreement, track_record

    method = get_cam_method(cam_method or DEFAULT_CAM_METHOD).name
    if prediction is None:
        prediction = predict(loaded, image, top_k=top_k)
    card = loaded.card
    if maps is None:
        from dermlib.explain.engine import explain

        maps = explain(loaded, image, [card.class_ids.index(s.label) for s in prediction.top_k], method)
    if len(maps) != len(prediction.top_k):
        raise ValueError(f"Got {len(maps)} heatmaps for {len(prediction.top_k)} top-k classes.")
    view = loaded.model_view(image)
    scores = dict(faithfulness or {})
    heatmaps = tuple(
        Heatmap(s.label, s.name, s.probability, overlay_heatmap(view, cam, HEATMAP_OPACITY),
                None if scores.get(s.label) is None else float(scores[s.label]))
        for s, cam in zip(prediction.top_k, maps, strict=True)
    )
    urgency, note = urgency_for(prediction, card, kb)
    agreement = member_agreement(prediction, card)
    created = now or datetime.now(UTC)
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return CaseReport(
        image=image.convert("RGB"),
        model_view=view,
        card=card,
        prediction=prediction,
        created=created.astimezone(UTC),
        app_version=app_version(),
        report_id=report_id or uuid.uuid4().hex,
        heatmaps=heatmaps,
        cam_method=method,
        urgency=urgency,
        urgency_note=note,
        measured_limits=tuple(plain(line) for line in measured_limits(card)),
        member_agreement=plain(agreement[0]) if agreement else None,
        track_record=plain(record) if (record := track_record(prediction, card)) else None,
    )
