"""Reports on parts of a test split: per data source, and the pairwise slices clinicians ask about.

A model trained on a combined dataset (e.g. Fitzpatrick17k + DermNet NZ) is scored on each source
separately, because the sources differ in what they photograph and who is in the photos: DermNet NZ
has no skin-type labels and mostly light skin, so only the Fitzpatrick17k part can be read per skin
type. Pure numpy and pandas, like the rest of :mod:`dermlib.evaluate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dermlib.evaluate.metrics import evaluation_report, round_floats, wilson_interval

#: The pair a combined clinical model most needs to tell apart: both are common, red and scaly.
ECZEMA_PSORIASIS: tuple[str, str] = ("eczema", "psoriasis")

#: Class ids that name a clinical sub-type of another class id. Fitzpatrick17k keeps these five labels
#: apart from their parent (so ``clinical-fitz21``'s 21-label task is unchanged), while a DermNet NZ
#: category holds the sub-type among its topics: its "acne" photos are all of DermNet's "Acne vulgaris"
#: topic, its "eczema" includes "Dyshidrotic eczema (pompholyx)", its "melanoma" includes melanoma in situ
#: and the other melanoma topics. Scored per category, a sub-type's probability counts for its parent.
SUBTYPE_OF: dict[str, str] = {
    "acne-vulgaris": "acne",
    "basal-cell-carcinoma-morpheiform": "basal-cell-carcinoma",
    "dyshidrotic-eczema": "eczema",
    "malignant-melanoma": "melanoma",
    "superficial-spreading-melanoma-ssm": "melanoma",
}


def merge_subtypes(probs: np.ndarray, labels: np.ndarray, class_ids: Sequence[str], risk_groups: Sequence[str],
                   subtype_of: dict[str, str] | None = None
                   ) -> tuple[np.ndarray, np.ndarray, list[str], list[str], dict[str, str]]:
    """Fold each sub-type class into its parent class: probabilities summed, labels renamed.

    Only sub-types whose parent is also a class are folded; the others stay as they are.

    Args:
        probs: Probabilities (N, C).
        labels: True class indices (N,).
        class_ids: Class id of each column.
        risk_groups: Risk group of each class.
        subtype_of: ``{sub-type id: parent id}`` (default :data:`SUBTYPE_OF`).

    Returns:
        ``(probs (N, K), labels (N,), class_ids (K), risk_groups (K), folded {sub-type: parent})``, the
        remaining classes in their original order.
    """
    subtype_of = SUBTYPE_OF if subtype_of is None else subtype_of
    ids = list(class_ids)
    folded = {c: p for c, p in subtype_of.items() if c in ids and p in ids}
    kept = [c for c in ids if c not in folded]
    column = {c: kept.index(folded.get(c, c)) for c in ids}
    target = np.array([column[c] for c in ids], dtype=np.int64)
    merge = np.zeros((len(ids), len(kept)), dtype=np.float64)
    merge[np.arange(len(ids)), target] = 1.0
    probs = np.asarray(probs, dtype=np.float64) @ merge
    labels = target[np.asarray(labels, dtype=np.int64)]
    risk = [risk_groups[ids.index(c)] for c in kept]
    return probs, labels, kept, risk, folded


def pair_ranking(probs: np.ndarray, labels: Sequence[str], class_ids: Sequence[str],
                 pair: tuple[str, str] = ECZEMA_PSORIASIS) -> dict[str, Any]:
    """How often a model ranks the right one of two classes above the other, on photos of either.

    Only the two probabilities are compared, so the score asks "eczema or psoriasis?" of a photo known to
    be one of the two, whatever else the model ranks first.

    Args:
        probs: Probabilities (N, C).
        labels: True class id per row (any ids; rows of other classes are ignored).
        class_ids: Class id of each column.
        pair: The two class ids.

    Returns:
        ``{"pair", "n", "n_by_class", "correct", "rate", "rate_ci95" (Wilson), "by_class": {id: rate}}``;
        ``rate`` is None when no row belongs to the pair.

    Raises:
        ValueError: One of the pair is not a class of the model.
    """
    missing = [c for c in pair if c not in class_ids]
    if missing:
        raise ValueError(f"{', '.join(missing)} is not a class of this model")
    a, b = (list(class_ids).index(c) for c in pair)
    labels = np.asarray(labels, dtype=object)
    probs = np.asarray(probs, dtype=np.float64)
    rows = np.isin(labels, pair)
    is_a = labels[rows] == pair[0]
    right = np.where(is_a, probs[rows, a] > probs[rows, b], probs[rows, b] > probs[rows, a])
    n, k = int(rows.sum()), int(right.sum())
    by_class = {c: (float(right[(is_a if c == pair[0] else ~is_a)].mean())
                    if (is_a if c == pair[0] else ~is_a).any() else None) for c in pair}
    ci = wilson_interval(k, n)
    return round_floats({
        "pair": list(pair),
        "n": n,
        "n_by_class": {pair[0]: int(is_a.sum()), pair[1]: int((~is_a).sum())},
        "correct": k,
        "rate": k / n if n else None,
        "rate_ci95": list(ci) if ci else None,
        "by_class": by_class,
    })


def source_reports(probs: np.ndarray, labels: np.ndarray, sources: Sequence[str], class_ids: Sequence[str],
                   risk_groups: Sequence[str], fitzpatrick: Any = None,
                   uncertain_thresholds: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """One :func:`evaluation_report` per data source (the model's full class list in each).

    Predictions into classes a source does not hold count as errors of that source, which is what a
    user of that kind of photo would see.

    Args:
        probs: Probabilities (N, C).
        labels: True class indices (N,).
        sources: The ``source`` of each row (the index column).
        class_ids: Class id of each column.
        risk_groups: Risk group of each class.
        fitzpatrick: Skin type per row, or None.
        uncertain_thresholds: Abstention thresholds, as for :func:`evaluation_report`.

    Returns:
        ``{source: report}``, sources in sorted order.
    """
    sources = np.asarray(sources, dtype=object)
    fitz = None if fitzpatrick is None else np.asarray(fitzpatrick, dtype=object)
    out = {}
    for source in sorted(set(sources.tolist())):
        rows = sources == source
        out[str(source)] = evaluation_report(probs[rows], labels[rows], class_ids, risk_groups,
                                             None if fitz is None else fitz[rows],
                                             uncertain_thresholds=uncertain_thresholds)
    return out


def slice_summary(probs: np.ndarray, labels: np.ndarray, sources: Sequence[str], class_ids: Sequence[str],
                  risk_groups: Sequence[str], fitzpatrick: Any = None,
                  uncertain_thresholds: dict[str, Any] | None = None) -> dict[str, Any]:
    """What :func:`dermlib.train.finalize.finalize_model` adds to a multi-source model's test report.

    Returns:
        ``{"by_source": {source: report}, "eczema_vs_psoriasis": {"all": ..., source: ...}}``; the slice is
        left out when the model lacks one of the two classes. When the model has a sub-type class beside its
        parent (:data:`SUBTYPE_OF`), ``"by_source_categories"`` scores each source again with the sub-types
        folded into their parents (no abstention: the thresholds belong to the unfolded probabilities) and
        ``"folded_subtypes"`` names them.
    """
    out: dict[str, Any] = {"by_source": source_reports(probs, labels, sources, class_ids, risk_groups,
                                                       fitzpatrick, uncertain_thresholds)}
    m_probs, m_labels, m_ids, m_risk, folded = merge_subtypes(probs, labels, class_ids, risk_groups)
    if folded:
        out["by_source_categories"] = source_reports(m_probs, m_labels, sources, m_ids, m_risk, fitzpatrick)
        out["folded_subtypes"] = folded
    if all(c in class_ids for c in ECZEMA_PSORIASIS):
        names = np.asarray(class_ids, dtype=object)[np.asarray(labels, dtype=np.int64)]
        sources = np.asarray(sources, dtype=object)
        pairs = {"all": pair_ranking(probs, names, class_ids)}
        for source in sorted(set(sources.tolist())):
            rows = sources == source
            pairs[str(source)] = pair_ranking(probs[rows], names[rows], class_ids)
        out["eczema_vs_psoriasis"] = pairs
    return out
