"""Skin tone where no label exists: the Individual Typology Angle (ITA) of a photo's healthy skin.

DermNet NZ photos, and every photo a user uploads, come without a Fitzpatrick skin type. This package
estimates a skin-type group from colour (:mod:`~dermlib.skintone.ita`), measures how well that estimate
agrees with the annotated types of Fitzpatrick17k (:mod:`~dermlib.skintone.agreement`), and lets a page
quote a model's accuracy on test photos of the estimated group, saying so when the estimate is not
reliable enough to lean on.
"""

from __future__ import annotations

from dermlib.skintone.agreement import (
    SKIN_TONE_FILE,
    estimate_group,
    estimated_groups,
    load_skin_tone,
    measure_agreement,
    slices_by_estimated_group,
    top1_by_estimated_group,
)
from dermlib.skintone.ita import CHARDON_CATEGORIES, ItaEstimate, estimate_ita, ita_category

__all__ = [
    "CHARDON_CATEGORIES",
    "SKIN_TONE_FILE",
    "ItaEstimate",
    "estimate_group",
    "estimate_ita",
    "estimated_groups",
    "ita_category",
    "load_skin_tone",
    "measure_agreement",
    "slices_by_estimated_group",
    "top1_by_estimated_group",
]
