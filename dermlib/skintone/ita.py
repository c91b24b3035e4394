"""Individual Typology Angle (ITA) of the healthy skin in a photo, and the skin-type group it suggests.

ITA = atan((L* - 50) / b*) in degrees, on CIELAB colour (Chardon, Cretois and Hourseau, Int J Cosmet
Sci 13:191-208, 1991). Higher is lighter. Chardon's categories are very light (> 55), light (41 to 55),
intermediate (28 to 41), tan (10 to 28), brown (-30 to 10) and dark (< -30); here they are mapped onto
the Fitzpatrick groups the rest of DermLens reports: very light and light -> I-II, intermediate and tan ->
III-IV, brown and dark -> V-VI. That mapping is a convention, not an equivalence: ITA measures colour
under whatever light the photo was taken in, Fitzpatrick type is a person's response to sun.

"Healthy skin" is approximated without a segmentation model: pixels outside the central region (where
photos put the lesion), outside any mask box of the model card (a watermark), whose colour passes a
YCrCb skin-colour test, and not blown out or in deep shadow. The photo's ITA is the median over them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

#: Chardon et al. (1991) ITA categories: (name, lower bound in degrees, Fitzpatrick group), lightest first.
CHARDON_CATEGORIES: tuple[tuple[str, float, str], ...] = (
    ("very light", 55.0, "I-II"),
    ("light", 41.0, "I-II"),
    ("intermediate", 28.0, "III-IV"),
    ("tan", 10.0, "III-IV"),
    ("brown", -30.0, "V-VI"),
    ("dark", -float("inf"), "V-VI"),
)
#: The central box (fractions) left out as the probable lesion.
CENTRE_BOX: tuple[float, float, float, float] = (0.25, 0.25, 0.75, 0.75)
#: Fewer skin pixels than this share of the analysed ones and no estimate is given.
MIN_SKIN_FRACTION = 0.03
_ANALYSIS_SIZE = 160


@dataclass(frozen=True)
class ItaEstimate:
    """The ITA of a photo's healthy-looking skin and what it maps to.

    Attributes:
        ita: Median ITA in degrees over the skin pixels.
        category: Chardon's category name.
        group: ``I-II``, ``III-IV`` or ``V-VI``.
        skin_fraction: Share of the analysed pixels judged skin (low values: little healthy skin seen).
    """

    ita: float
    category: str
    group: str
    skin_fraction: float


def ita_category(ita: float) -> tuple[str, str]:
    """Chardon's category and the Fitzpatrick group of an ITA value (degrees)."""
    for name, lower, group in CHARDON_CATEGORIES:
        if ita > lower:
            return name, group
    return CHARDON_CATEGORIES[-1][0], CHARDON_CATEGORIES[-1][2]


def skin_mask(rgb: np.ndarray, exclude: Sequence[tuple[float, float, float, float]] = (CENTRE_BOX,)) -> np.ndarray:
    """Boolean (H, W) mask of pixels that look like skin and lie outside the ``exclude`` boxes (fractions).

    The YCrCb bounds (Cr 133-173, Cb 77-127; Chai and Ngan 1999) hold across skin tones because they
    constrain chroma, not brightness; very dark or very bright pixels are dropped because their chroma
    is unreliable.
    """
    ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    y, cr, cb = ycrcb[..., 0], ycrcb[..., 1], ycrcb[..., 2]
    mask = (cr >= 133) & (cr <= 173) & (cb >= 77) & (cb <= 127) & (y >= 25) & (y <= 245)
    h, w = mask.shape
    for x0, y0, x1, y1 in exclude:
        mask[int(y0 * h):int(np.ceil(y1 * h)), int(x0 * w):int(np.ceil(x1 * w))] = False
    return mask


def estimate_ita(image: Image.Image,
                 exclude: Sequence[tuple[float, float, float, float]] = (CENTRE_BOX,)) -> ItaEstimate | None:
    """Estimate the ITA of the healthy skin in an RGB photo.

    Args:
        image: Any PIL image (converted to RGB, analysed at a shorter side of 160 px).
        exclude: Boxes (x0, y0, x1, y1 fractions) to leave out: the centre (the lesion) and, from a card,
            its watermark mask.

    Returns:
        The estimate, or None when too few pixels look like skin (e.g. a close-up of the lesion only).
    """
    rgb_image = image.convert("RGB")
    scale = _ANALYSIS_SIZE / min(rgb_image.size)
    if scale < 1:
        rgb_image = rgb_image.resize((max(1, round(rgb_image.width * scale)), max(1, round(rgb_image.height * scale))),
                                     Image.Resampling.BILINEAR)
    rgb = np.asarray(rgb_image, dtype=np.uint8)
    mask = skin_mask(rgb, exclude)
    fraction = float(mask.mean())
    if fraction < MIN_SKIN_FRACTION:
        return None
    # float32 input in [0, 1] gives CIELAB in real units: L* 0-100, b* signed.
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    lightness, b = lab[..., 0][mask], lab[..., 2][mask]
    # Skin pixels have b* > 0 (the YCrCb test keeps yellow-red chroma); the floor only avoids dividing by 0.
    ita = float(np.median(np.degrees(np.arctan((lightness - 50.0) / np.maximum(b, 1e-3)))))
    category, group = ita_category(ita)
    return ItaEstimate(ita=round(ita, 2), category=category, group=group, skin_fraction=round(fraction, 4))
