"""How far the ITA skin-type estimate can be trusted, and what a page may say with it.

:func:`measure_agreement` scores the estimate against annotated Fitzpatrick types (a 3 x 3 confusion
table of groups, the Spearman correlation of ITA with the type 1-6, group accuracy and linearly weighted
Cohen's kappa). :func:`top1_by_estimated_group` gives a model's test accuracy per *estimated* group, the
number a page can quote for a photo whose skin type nobody annotated. Both are stored in the model
folder's ``skin_tone.json`` (written by ``benchmarks/skin_tone_agreement.py``) and read back by
:func:`estimate_group`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy.stats import spearmanr

from dermlib.evaluate.metrics import SKIN_TYPE_GROUPS, round_floats, wilson_interval
from dermlib.skintone.ita import CENTRE_BOX, CHARDON_CATEGORIES, estimate_ita

SKIN_TONE_FILE = "skin_tone.json"
GROUPS: tuple[str, ...] = tuple(SKIN_TYPE_GROUPS)
#: Below these the estimate is reported as unreliable: a group right less than 60% of the time, or an ITA
#: that explains less than a moderate share of the annotated type's order, should not be shown as a fact.
MIN_GROUP_ACCURACY = 0.6
MAX_SPEARMAN = -0.5  # ITA falls as the type rises, so agreement is a strongly negative correlation


def _group_of_type(fitzpatrick: float) -> str | None:
    for name, types in SKIN_TYPE_GROUPS.items():
        if fitzpatrick in types:
            return name
    return None


def exclusion_boxes(card: Any | None) -> list[tuple[float, float, float, float]]:
    """The boxes ITA leaves out for a model: the centre, plus the card's watermark mask boxes."""
    boxes = [CENTRE_BOX]
    mask = ((getattr(card, "preprocessing", None) or {}).get("mask") or {}) if card is not None else {}
    boxes.extend(tuple(float(v) for v in box) for box in mask.get("boxes", []))
    return boxes


def measure_agreement(images: Sequence[str | Path], fitzpatrick: Sequence[Any],
                      exclude: Sequence[tuple[float, float, float, float]] = (CENTRE_BOX,)) -> dict[str, Any]:
    """Compare the ITA group of each photo with its annotated Fitzpatrick type.

    Args:
        images: Image files.
        fitzpatrick: Annotated type 1-6 per image (anything else is skipped).
        exclude: Boxes to leave out of the skin pixels (see :func:`~dermlib.skintone.ita.estimate_ita`).

    Returns:
        ``n`` (photos with a type and an estimate), ``n_no_estimate``, ``confusion`` ({"rows": annotated
        groups, "columns": estimated groups, "matrix"}), ``group_accuracy`` (+ Wilson ``_ci95``),
        ``weighted_kappa``, ``spearman`` (ITA vs type 1-6) and ``reliable`` with the rule behind it.
    """
    itas, types, truth, guess = [], [], [], []
    skipped = 0
    for path, fitz in zip(images, fitzpatrick, strict=True):
        try:
            value = float(fitz)
        except (TypeError, ValueError):
            continue
        group = _group_of_type(value)
        if group is None:
            continue
        with Image.open(path) as img:
            estimate = estimate_ita(img, exclude)
        if estimate is None:
            skipped += 1
            continue
        itas.append(estimate.ita)
        types.append(value)
        truth.append(GROUPS.index(group))
        guess.append(GROUPS.index(estimate.group))
    n = len(truth)
    matrix = np.zeros((3, 3), dtype=int)
    for t, g in zip(truth, guess, strict=True):
        matrix[t, g] += 1
    correct = int(np.trace(matrix))
    accuracy = correct / n if n else None
    rho = float(spearmanr(itas, types).statistic) if n > 2 else None
    reliable = bool(accuracy is not None and rho is not None and accuracy >= MIN_GROUP_ACCURACY
                    and rho <= MAX_SPEARMAN)
    ci = wilson_interval(correct, n)
    return round_floats({
        "n": n,
        "n_no_estimate": skipped,
        "confusion": {"rows": "annotated group", "columns": "ITA group", "groups": list(GROUPS),
                      "matrix": matrix.tolist()},
        "group_accuracy": accuracy,
        "group_accuracy_ci95": list(ci) if ci else None,
        "weighted_kappa": _weighted_kappa(matrix),
        "spearman": rho,
        "reliable": reliable,
        "reliable_rule": f"group accuracy >= {MIN_GROUP_ACCURACY} and Spearman(ITA, type) <= {MAX_SPEARMAN}",
        "thresholds": [{"category": name, "ita_above": lower if np.isfinite(lower) else None, "group": group}
                       for name, lower, group in CHARDON_CATEGORIES],
    })


def _weighted_kappa(matrix: np.ndarray) -> float | None:
    """Linearly weighted Cohen's kappa of a square confusion table (ordered categories)."""
    total = matrix.sum()
    if total == 0:
        return None
    k = matrix.shape[0]
    weights = 1 - np.abs(np.subtract.outer(np.arange(k), np.arange(k))) / (k - 1)
    observed = (weights * matrix).sum() / total
    expected = (weights * np.outer(matrix.sum(1), matrix.sum(0))).sum() / total**2
    return float((observed - expected) / (1 - expected)) if expected < 1 else None


#: The group of a photo with too little visible skin for an estimate.
NO_ESTIMATE = "no estimate"


def estimated_groups(images: Sequence[str | Path],
                     exclude: Sequence[tuple[float, float, float, float]] = (CENTRE_BOX,)) -> list[str]:
    """The ITA group of each image (``I-II``, ``III-IV``, ``V-VI``; ``"no estimate"`` where too little skin shows)."""
    groups = []
    for path in images:
        with Image.open(path) as img:
            estimate = estimate_ita(img, exclude)
        groups.append(NO_ESTIMATE if estimate is None else estimate.group)
    return groups


def top1_by_estimated_group(images: Sequence[str | Path], correct: Sequence[bool],
                            exclude: Sequence[tuple[float, float, float, float]] = (CENTRE_BOX,)) -> dict[str, Any]:
    """A model's top-1 accuracy on test photos grouped by their *estimated* skin-type group.

    Args:
        images: Image files.
        correct: Whether the model's first answer was right, per image.
        exclude: Boxes ITA leaves out.

    Returns:
        ``{group: {"n", "top1_accuracy", "top1_accuracy_ci95"}}`` plus ``"no estimate"`` for photos with
        too little visible skin.
    """
    return _top1_by_group(estimated_groups(images, exclude), correct)


def _top1_by_group(groups: Sequence[str], correct: Sequence[bool]) -> dict[str, Any]:
    """Top-1 accuracy (with a Wilson interval) per group label."""
    buckets: dict[str, list[bool]] = {g: [] for g in (*GROUPS, NO_ESTIMATE)}
    for group, right in zip(groups, correct, strict=True):
        buckets[group].append(bool(right))
    out = {}
    for group, values in buckets.items():
        k, n = int(sum(values)), len(values)
        ci = wilson_interval(k, n)
        out[group] = {"n": n, "top1_accuracy": k / n if n else None, "top1_accuracy_ci95": list(ci) if ci else None}
    return round_floats(out)


def slices_by_estimated_group(groups: Sequence[str], correct: Sequence[bool], sources: Sequence[str],
                              probs: np.ndarray, labels: Sequence[str], class_ids: Sequence[str]) -> dict[str, Any]:
    """Per estimated group: top-1 over all photos and for each data source, and the eczema-versus-psoriasis slice.

    For a source with no skin-type labels (DermNet NZ) the estimate is the only window onto skin tone, so
    these figures are reported, always beside the estimate's own agreement, never as a measurement by type.

    Args:
        groups: Each test photo's group from :func:`estimated_groups`.
        correct: Whether the model's first answer was right, per photo.
        sources: Each photo's data source.
        probs: The model's probabilities (N, C), for the pair slice.
        labels: True class id per photo.
        class_ids: The model's class ids (columns of ``probs``).

    Returns:
        ``{"top1": {group: {"n", "top1_accuracy", "top1_accuracy_ci95"}}, "top1_by_source": {source: the
        same}, "eczema_vs_psoriasis": {group: pair slice}}``; the last is empty when the model lacks either
        class.
    """
    from dermlib.evaluate.slices import ECZEMA_PSORIASIS, pair_ranking

    groups_a, correct_a, sources_a = np.asarray(groups), np.asarray(correct, bool), np.asarray(sources)
    labels_a, probs = np.asarray(labels, dtype=object), np.asarray(probs)
    by_source: dict[str, Any] = {}
    for source in sorted(set(sources_a.tolist())):
        rows = sources_a == source
        by_source[source] = _top1_by_group(groups_a[rows].tolist(), correct_a[rows].tolist())
    pairs: dict[str, Any] = {}
    if all(c in class_ids for c in ECZEMA_PSORIASIS):
        for group in (*GROUPS, NO_ESTIMATE):
            rows = groups_a == group
            pairs[group] = pair_ranking(probs[rows], labels_a[rows], class_ids)
    return {"top1": _top1_by_group(groups_a.tolist(), correct_a.tolist()), "top1_by_source": by_source,
            "eczema_vs_psoriasis": pairs}


def load_skin_tone(folder: str | Path | None) -> dict[str, Any]:
    """A model folder's stored ``skin_tone.json``, or ``{}`` when it has none or the file cannot be read."""
    if folder is None or not (Path(folder) / SKIN_TONE_FILE).is_file():
        return {}
    try:
        stored = json.loads((Path(folder) / SKIN_TONE_FILE).read_text())
    except (OSError, ValueError):  # a damaged side file must not take a page down; the card still stands
        return {}
    return stored if isinstance(stored, dict) else {}


def estimate_group(image: Image.Image, card: Any) -> dict[str, Any]:
    """Estimate the skin-type group of a photo and quote the model's test accuracy on that group.

    Args:
        image: The RGB photo (as :func:`dermlib.images.load_image` returns it).
        card: The model's :class:`~dermlib.models.card.ModelCard` (its folder holds ``skin_tone.json``).

    Returns:
        ``{"group", "ita", "category", "reliable", "model_top1", "n", "message"}``. ``group`` is None when
        too little skin is visible; ``model_top1`` and ``n`` are None when the model folder has no
        measurement. ``reliable`` is False when the estimate's agreement with annotated types fell short
        of the rule in ``skin_tone.json`` (or was never measured); ``message`` is one sentence for a page
        and says so.
    """
    stored = load_skin_tone(getattr(card, "path", None))
    agreement = stored.get("agreement") or {}
    reliable = bool(agreement.get("reliable", False))
    estimate = estimate_ita(image, exclusion_boxes(card))
    if estimate is None:
        return {"group": None, "ita": None, "category": None, "reliable": False, "model_top1": None, "n": None,
                "message": "Too little healthy skin is visible to estimate the skin tone."}
    measured = (stored.get("top1_by_estimated_group") or {}).get(estimate.group) or {}
    top1, n = measured.get("top1_accuracy"), measured.get("n")
    message = f"Estimated skin tone: {estimate.category} (ITA {estimate.ita:.0f}°, types {estimate.group})"
    if top1 is not None and n:
        message += f"; on {n} test photos estimated {estimate.group} the model was right {top1:.0%} of the time"
    if not reliable:
        accuracy = agreement.get("group_accuracy")
        how = f" (it matched the annotated group on {accuracy:.0%} of Fitzpatrick17k photos)" if accuracy else ""
        message += f". This colour estimate is not reliable{how}, so take it as a rough guide only."
    else:
        message += "."
    return {"group": estimate.group, "ita": estimate.ita, "category": estimate.category, "reliable": reliable,
            "model_top1": top1, "n": n, "message": message}
