"""Lesion measurements from a binary lesion mask: the A, B and C of the ABCD rule of dermoscopy, and D in pixels.

The ABCD rule of dermoscopy (Stolz et al., "ABCD rule of dermatoscopy: a new practical method for early
recognition of malignant melanoma", Eur J Dermatol 4:521-527, 1994) scores a pigmented lesion by its
Asymmetry (0, 1 or 2 axes of asymmetry), Border, Colours (how many of white, red, light brown, dark
brown, blue-grey and black are present) and Differential structures. What :func:`measure_lesion`
computes from a mask (and, for colours, the image):

* ``asymmetry``: for each of the two principal axes of the lesion (second moments, through the centroid),
  the fraction of the lesion area that does not overlap its mirror image across that axis; 0 is
  perfectly symmetric. (Where the moments leave the axes undefined, a near-circle or a star, the
  perpendicular pair with the lowest asymmetry is used instead: :func:`lesion_axes`.)
  ``asymmetry_score`` counts the axes whose value exceeds :data:`ASYMMETRY_THRESHOLD`, on the scale of
  PH2's expert annotation (0 symmetric, 1 symmetric in one axis, 2 asymmetric). This is **shape**
  asymmetry only: the dermatologist's A also weighs the distribution of colours and structures across
  each axis, which a mask does not show.
* ``border_irregularity``: compactness, perimeter^2 / (4 pi area) of the outer contour, 1.0 for a circle
  and larger for ragged or elongated outlines (Stolz's B counts abrupt border cut-offs per octant
  instead; compactness is the usual image-analysis stand-in).
* ``colours``: which of the six ABCD colours cover at least :data:`MIN_COLOUR_FRACTION` of the lesion,
  from simple per-pixel rules in CIELAB (see :func:`classify_colours`).
* ``diameter_pixels``: the longest extent (maximum Feret diameter) **in pixels**. The D of the clinical
  ABCD mnemonic (> 6 mm) needs millimetres, and a photo carries no known scale, so no millimetre value
  is given.

Every measure is taken on the largest connected component of the mask, with its holes filled (a hole in
a predicted mask is usually a pale part of the lesion the model missed). A lesion cut off by the image
edge is measured as cut, which makes it look more asymmetric than it is.

What was tuned on what (PH2, 160 images, expert masks): the images were sorted by id; those at odd
(0-based) positions (IMD003, IMD008, ..., 80 images) were the tuning half, those at even positions
(IMD002, IMD006, ..., 80 images) were held out and used for nothing but reporting
(``benchmarks/ph2_measure_agreement.py`` prints both halves separately).

* :data:`ASYMMETRY_THRESHOLD` was the value in 0.02-0.40 (step 0.01) with the highest Cohen's kappa
  against the experts' asymmetry on the tuning half.
* The colour rule thresholds started from hand-set values read off the CIELAB coordinates of the named
  colours; the lightness and hue cut-offs of black, dark brown, light brown and blue-grey were then chosen
  by a small grid search maximising the mean balanced accuracy of the six colour flags (less 0.05 x the
  mean absolute error of the colour count) on the tuning half, within ranges that keep the names'
  meaning. Whether to correct exposure (scale L* to the skin around the lesion: yes) and colour cast
  (shift a*, b* by the skin's: no, it agreed worse) was decided on the same half. The white and red
  rules kept their hand-set values: the tuning half has 9 white and 4 red lesions, too few to tune on,
  and no white setting the search tried found PH2's white areas. :data:`MIN_COLOUR_FRACTION` (5 %) was
  fixed beforehand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image

#: An axis whose asymmetry (non-overlapping fraction of the lesion area) exceeds this counts towards
#: ``asymmetry_score``. Tuned on the odd-positioned half of PH2 (see the module docstring).
ASYMMETRY_THRESHOLD = 0.11
#: A colour is present when at least this fraction of the lesion's pixels is classified as that colour
#: (fixed beforehand, not tuned; it also keeps a few dark hairs from counting as "black").
MIN_COLOUR_FRACTION = 0.05
#: The six colours of the ABCD rule of dermoscopy (Stolz et al. 1994), in that order.
COLOUR_NAMES: tuple[str, ...] = ("white", "red", "light brown", "dark brown", "blue-grey", "black")

# Colour rules (CIELAB, D65, L* 0-100; chroma C* = hypot(a*, b*); hue h = atan2(b*, a*) in degrees).
# The six colour *names* and what they mean are the ABCD rule's (Stolz et al. 1994). Their readings follow
# the dermoscopy literature on where the pigment lies: melanin in the stratum corneum looks black, at the
# dermo-epidermal junction light to dark brown by its density, in the dermis grey to blue (the Tyndall
# effect); haemoglobin gives red, fibrosis or regression white (Braun and Kerl, "Colors", dermoscopedia.org;
# Kittler, "Colors used in pattern analysis", dermoscopedia.org). The numeric thresholds are this module's
# own: first set by hand from the CIELAB values of the named colours, then the marked ones chosen on the
# PH2 tuning half (module docstring). They are read on L*' = L* x SKIN_REFERENCE_L / (skin L*), a crude
# exposure correction against the skin around the lesion (PH2's skin lies between L* 55 and 95 or so).
#: The L* that the median skin around a lesion is scaled to (about PH2's median skin lightness).
SKIN_REFERENCE_L = 75.0
#: black: L*' below this (tuned).
BLACK_MAX_L = 30.0
#: white: L*' at least this (brighter than the reference skin) and chroma below WHITE_MAX_CHROMA.
WHITE_MIN_L = 80.0
WHITE_MAX_CHROMA = 15.0
#: blue-grey: darker than PIGMENT_MAX_L and either nearly achromatic (chroma below GREY_MAX_CHROMA) or of a
#: bluish hue (below BLUE_MAX_HUE or above BLUE_MIN_HUE degrees), i.e. neither red nor yellow-brown
#: (GREY_MAX_CHROMA and BLUE_MAX_HUE tuned, BLUE_MIN_HUE set by hand).
GREY_MAX_CHROMA = 10.0
BLUE_MAX_HUE = 20.0
BLUE_MIN_HUE = 100.0
#: red: a* at least RED_MIN_A at a hue below RED_MAX_HUE (red, not orange-brown), L*' below RED_MAX_L.
RED_MIN_A = 30.0
RED_MAX_HUE = 45.0
RED_MAX_L = 75.0
#: Pigmented (brown) pixels are darker than this L*' (tuned); lighter ones are skin-like and count for nothing.
PIGMENT_MAX_L = 65.0
#: dark brown: brown pixels darker than DARK_BROWN_MAX_L, or of a redder hue than BROWN_SPLIT_HUE (tuned);
#: the other brown pixels (yellow-brown hue, moderate lightness) are light brown.
DARK_BROWN_MAX_L = 40.0
BROWN_SPLIT_HUE = 45.0
#: The skin reference is the median of a ring around the lesion (its inner and outer edge at 1 and 2 times
#: SKIN_RING_FRACTION x sqrt(lesion area) from the border); ring pixels darker than SKIN_MIN_L (the
#: dermoscope's dark vignette, hairs) are left out, and with fewer than MIN_SKIN_PIXELS left, no exposure
#: correction is made.
SKIN_RING_FRACTION = 0.1
SKIN_MIN_L = 30.0
MIN_SKIN_PIXELS = 200
#: Principal axes are replaced by a search for the least asymmetric perpendicular pair when the second
#: moments' minor / major ratio exceeds this (2 of PH2's 160 expert masks; see :func:`lesion_axes`).
ISOTROPY_RATIO = 0.9
AXIS_SEARCH_STEP_DEGREES = 2.0
_AXIS_SEARCH_SIZE = 128
_DP_EPSILON = 1.0


@dataclass(frozen=True)
class LesionMeasurements:
    """Measurements of one lesion (the largest connected component of its mask, holes filled).

    Attributes:
        area_fraction: Lesion pixels / image pixels.
        area_pixels: Lesion pixels.
        bbox: ``(x0, y0, x1, y1)`` in image pixels; ``x1`` and ``y1`` are exclusive.
        asymmetry: Per principal axis (major, then minor; see :func:`lesion_axes`), the fraction of the
            lesion area that does not overlap the lesion mirrored across that axis through the centroid, in
            [0, 1]; 0 = symmetric.
        asymmetry_score: How many of the two axes exceed :data:`ASYMMETRY_THRESHOLD` (0, 1 or 2; like
            PH2's expert score: 0 symmetric, 1 symmetric in one axis, 2 asymmetric). Shape only.
        border_irregularity: Compactness perimeter^2 / (4 pi area) of the outer contour; 1.0 for a
            circle, larger for ragged (or elongated) borders.
        colours: Names (from :data:`COLOUR_NAMES`) of the ABCD colours present; empty without an image.
        colour_count: ``len(colours)``.
        diameter_pixels: Longest extent of the lesion (maximum distance between two boundary pixel
            centres), in pixels. The ABCD rule's diameter is in millimetres, but an image has no known
            scale, so the value stays in pixels.
    """

    area_fraction: float
    area_pixels: int
    bbox: tuple[int, int, int, int]
    asymmetry: tuple[float, float]
    asymmetry_score: int
    border_irregularity: float
    colours: tuple[str, ...]
    colour_count: int
    diameter_pixels: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values: floats rounded to 4 digits, lists instead of tuples."""
        return {
            "area_fraction": round(float(self.area_fraction), 4),
            "bbox": [int(v) for v in self.bbox],
            "asymmetry": [round(float(v), 4) for v in self.asymmetry],
            "asymmetry_score": int(self.asymmetry_score),
            "border_irregularity": round(float(self.border_irregularity), 4),
            "colours": list(self.colours),
            "colour_count": int(self.colour_count),
            "diameter_pixels": round(float(self.diameter_pixels), 4),
        }


def binary_mask(mask: Any) -> np.ndarray:
    """A 2-D bool array from a bool, 0-1 (or probability) or 0-255 mask (array or PIL image).

    Values above 0.5 count as lesion when the mask's maximum is at most 1, above 127 otherwise.

    Raises:
        ValueError: The mask is not 2-D.
    """
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"mask must be a 2-D (H, W) array, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr.copy()
    arr = arr.astype(np.float64)
    return arr > (127.0 if arr.size and np.nanmax(arr) > 1.0 else 0.5)


def largest_component(mask: Any) -> np.ndarray:
    """The largest 8-connected component of ``mask`` with its holes filled, as a bool array.

    Raises:
        ValueError: The mask is not 2-D or has no lesion pixels.
    """
    binary = binary_mask(mask)
    if not binary.any():
        raise ValueError("mask is empty: it has no lesion pixels")
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    biggest = 1 + int(np.argmax(stats[1:count, cv2.CC_STAT_AREA]))
    component = (labels == biggest).astype(np.uint8)
    contour = _outer_contour(component)
    filled = np.zeros_like(component)
    cv2.drawContours(filled, [contour], -1, 1, thickness=cv2.FILLED)
    return filled.astype(bool) | component.astype(bool)


def principal_axes(mask: Any) -> tuple[tuple[float, float], tuple[float, float]]:
    """Centroid and principal-axis angles of a mask's lesion pixels, from their second central moments.

    Args:
        mask: A 2-D mask (every lesion pixel counts; pass :func:`largest_component` for the main blob).

    Returns:
        ``((cx, cy), (major, minor))``: the centroid in pixel coordinates (x right, y down) and the angles
        of the major and minor axes in radians from the +x axis (towards +y), ``minor = major + pi/2``.
        For a shape with equal second moments (a circle, a square) the major axis is arbitrary.

    Raises:
        ValueError: The mask is not 2-D or empty.
    """
    binary = binary_mask(mask)
    moments = cv2.moments(binary.astype(np.uint8), binaryImage=True)
    if moments["m00"] == 0:
        raise ValueError("mask is empty: it has no lesion pixels")
    cx, cy = moments["m10"] / moments["m00"], moments["m01"] / moments["m00"]
    major = 0.5 * math.atan2(2.0 * moments["mu11"], moments["mu20"] - moments["mu02"])
    return (cx, cy), (major, major + math.pi / 2.0)


def axis_asymmetry(mask: Any, centre: tuple[float, float], angle: float) -> float:
    """Fraction of the lesion area not overlapping the lesion mirrored across a line.

    Args:
        mask: 2-D lesion mask.
        centre: A point ``(x, y)`` on the mirror line (pixel coordinates).
        angle: The line's angle in radians from the +x axis.

    Returns:
        ``1 - |M and mirror(M)| / |M|`` in [0, 1] (0 = symmetric about the line). The mirror image is
        resampled bilinearly, so the value is smooth in the angle rather than stepped by the pixel grid.

    Raises:
        ValueError: The mask is not 2-D or empty.
    """
    canvas, cx, cy = _mirror_canvas(binary_mask(mask), centre)
    return _mismatch(canvas, cx, cy, angle)


def lesion_axes(mask: Any) -> tuple[tuple[float, float], tuple[float, float]]:
    """The two perpendicular axes through the centroid across which asymmetry is measured.

    These are the principal axes (:func:`principal_axes`), unless the second moments are nearly equal in
    every direction (minor / major eigenvalue above :data:`ISOTROPY_RATIO`: a near-circle, a square, a
    star), where the principal directions are set by noise. Then the pair of perpendicular axes is placed
    where the summed asymmetry is lowest (searched every :data:`AXIS_SEARCH_STEP_DEGREES` degrees on a
    reduced copy of the mask, then refined in quarter steps at full size), as the ABCD rule places its
    two axes (Stolz et al. 1994).

    Returns:
        ``((cx, cy), (first, second))``: centroid and the two axis angles in radians, ``second = first +
        pi/2``.
    """
    binary = binary_mask(mask)
    centre, angles = principal_axes(binary)
    moments = cv2.moments(binary.astype(np.uint8), binaryImage=True)
    mu20, mu02, mu11 = moments["mu20"], moments["mu02"], moments["mu11"]
    spread = math.hypot(mu20 - mu02, 2.0 * mu11)
    major, minor = (mu20 + mu02 + spread) / 2.0, (mu20 + mu02 - spread) / 2.0
    if major <= 0 or minor / major <= ISOTROPY_RATIO:
        return centre, angles
    canvas, cx, cy = _mirror_canvas(binary, centre)
    full = (canvas, cx, cy)
    ys, xs = np.nonzero(binary)
    scale = min(1.0, _AXIS_SEARCH_SIZE / float(max(np.ptp(xs), np.ptp(ys)) + 1))
    if scale < 1.0:  # coarse search on a reduced copy, the lesion at most _AXIS_SEARCH_SIZE px across
        canvas = cv2.resize(canvas, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        cx, cy = (cx + 0.5) * scale - 0.5, (cy + 0.5) * scale - 0.5

    def total(c: np.ndarray, x: float, y: float, t: float) -> float:
        return _mismatch(c, x, y, t) + _mismatch(c, x, y, t + math.pi / 2.0)

    step = math.radians(AXIS_SEARCH_STEP_DEGREES)
    coarse = np.arange(0.0, math.pi / 2.0, step)
    best = float(coarse[int(np.argmin([total(canvas, cx, cy, t) for t in coarse]))])
    fine = best + np.linspace(-step, step, 9)  # then within one step either side, at full resolution
    first = float(fine[int(np.argmin([total(*full, t) for t in fine]))])
    return centre, (first, first + math.pi / 2.0)


def _mirror_canvas(binary: np.ndarray, centre: tuple[float, float]) -> tuple[np.ndarray, float, float]:
    """The lesion on a float canvas with room for its mirror image about any line through ``centre``.

    Returns:
        The canvas and ``centre`` in the canvas's coordinates.
    """
    ys, xs = np.nonzero(binary)
    if xs.size == 0:
        raise ValueError("mask is empty: it has no lesion pixels")
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    # A mirror image about a line through `centre` keeps every pixel's distance from it: a square canvas
    # around the centre, its half-side the largest such distance (plus a margin), holds both images.
    radius = math.ceil(float(np.sqrt(((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2).max()))) + 2
    ox, oy = math.floor(centre[0]) - radius, math.floor(centre[1]) - radius
    canvas = np.zeros((2 * radius + 2, 2 * radius + 2), np.float32)
    canvas[y0 - oy:y1 - oy, x0 - ox:x1 - ox] = binary[y0:y1, x0:x1]
    return canvas, centre[0] - ox, centre[1] - oy


def _mismatch(canvas: np.ndarray, cx: float, cy: float, angle: float) -> float:
    """1 - overlap / area of a float mask and its mirror image across the line through (cx, cy) at angle."""
    c2, s2 = math.cos(2.0 * angle), math.sin(2.0 * angle)
    # Reflection across the line through (cx, cy) at `angle`: p' = R (p - c) + c. It is its own inverse.
    matrix = np.array([[c2, s2, cx - c2 * cx - s2 * cy], [s2, -c2, cy - s2 * cx + c2 * cy]], np.float64)
    mirrored = cv2.warpAffine(canvas, matrix, (canvas.shape[1], canvas.shape[0]), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    area = float(canvas.sum())
    overlap = float(np.minimum(canvas, mirrored).sum())
    return float(min(1.0, max(0.0, 1.0 - overlap / area)))


def classify_colours(rgb_pixels: np.ndarray, skin_lightness: float | None = None) -> np.ndarray:
    """The ABCD colour of each pixel: an index into :data:`COLOUR_NAMES`, or -1 for none.

    The rules, on CIELAB (L*' = L* scaled so that ``skin_lightness`` becomes :data:`SKIN_REFERENCE_L`;
    no scaling when it is ``None``), tried in this order, the first that matches wins:

    1. black: L*' < :data:`BLACK_MAX_L`.
    2. white: L*' >= :data:`WHITE_MIN_L` and chroma < :data:`WHITE_MAX_CHROMA`.
    3. blue-grey: L*' < :data:`PIGMENT_MAX_L` and (chroma < :data:`GREY_MAX_CHROMA` or hue <
       :data:`BLUE_MAX_HUE` or hue > :data:`BLUE_MIN_HUE`): grey or bluish, neither red nor yellow-brown.
    4. red: L*' < :data:`RED_MAX_L`, a* >= :data:`RED_MIN_A` and hue < :data:`RED_MAX_HUE`.
    5. dark brown: L*' < :data:`PIGMENT_MAX_L` and (L*' < :data:`DARK_BROWN_MAX_L` or hue <
       :data:`BROWN_SPLIT_HUE`).
    6. light brown: any other pixel with L*' < :data:`PIGMENT_MAX_L` (a yellow-brown hue, moderately dark).
    7. none: the rest (skin-like pink or beige, bright pixels with colour).

    Args:
        rgb_pixels: ``(N, 3)`` (or ``(H, W, 3)``) sRGB uint8 values.
        skin_lightness: Median L* of the skin around the lesion, or ``None``.

    Returns:
        An int array of the input's leading shape.
    """
    rgb = np.asarray(rgb_pixels, dtype=np.uint8)
    shape = rgb.shape[:-1]
    lab = cv2.cvtColor(rgb.reshape(-1, 1, 3).astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab).reshape(-1, 3)
    lightness, a, b = lab[:, 0], lab[:, 1], lab[:, 2]
    if skin_lightness is not None and skin_lightness > 0:
        lightness = np.clip(lightness * (SKIN_REFERENCE_L / skin_lightness), 0.0, 100.0)
    chroma = np.hypot(a, b)
    hue = np.degrees(np.arctan2(b, a))
    pigmented = lightness < PIGMENT_MAX_L
    rules = (
        ("black", lightness < BLACK_MAX_L),
        ("white", (lightness >= WHITE_MIN_L) & (chroma < WHITE_MAX_CHROMA)),
        ("blue-grey", pigmented & ((chroma < GREY_MAX_CHROMA) | (hue < BLUE_MAX_HUE) | (hue > BLUE_MIN_HUE))),
        ("red", (lightness < RED_MAX_L) & (a >= RED_MIN_A) & (hue < RED_MAX_HUE)),
        ("dark brown", pigmented & ((lightness < DARK_BROWN_MAX_L) | (hue < BROWN_SPLIT_HUE))),
        ("light brown", pigmented),
    )
    out = np.full(lab.shape[0], -1, np.int64)
    free = np.ones(lab.shape[0], bool)
    for name, match in rules:
        hit = match & free
        out[hit] = COLOUR_NAMES.index(name)
        free &= ~hit
    return out.reshape(shape)


def skin_lightness(image: Any, lesion: np.ndarray, exclude: np.ndarray | None = None) -> float | None:
    """Median L* of the skin in a ring around the lesion, or ``None`` when too little skin shows.

    Args:
        image: RGB uint8 (H, W, 3) array or PIL image.
        lesion: Bool (H, W) lesion mask (the main component).
        exclude: Bool (H, W) pixels never counted as skin (the whole segmentation, speckles included).
    """
    rgb = _rgb_array(image, lesion.shape)
    inner = max(3, round(SKIN_RING_FRACTION * math.sqrt(float(lesion.sum()))))
    lesion8 = lesion.astype(np.uint8)
    near = cv2.dilate(lesion8, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * inner + 1,) * 2)) > 0
    far = cv2.dilate(lesion8, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (4 * inner + 1,) * 2)) > 0
    ring = far & ~near
    if exclude is not None:
        ring &= ~exclude
    if ring.sum() < MIN_SKIN_PIXELS:
        return None
    lab = cv2.cvtColor(rgb[ring].reshape(-1, 1, 3).astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    lightness = lab.reshape(-1, 3)[:, 0]
    lightness = lightness[lightness >= SKIN_MIN_L]
    if lightness.size < MIN_SKIN_PIXELS:
        return None
    return float(np.median(lightness))


def colour_fractions(image: Any, mask: Any) -> dict[str, float]:
    """Fraction of the lesion's pixels in each ABCD colour (pixels matching no colour are in none).

    Args:
        image: RGB uint8 (H, W, 3) array or PIL image.
        mask: 2-D lesion mask of the image's size; its largest component (holes filled) is the lesion.

    Returns:
        ``{colour name: fraction}`` for every name in :data:`COLOUR_NAMES`.

    Raises:
        ValueError: Empty or non-2-D mask, or an image of another size or not RGB.
    """
    whole = binary_mask(mask)
    lesion = largest_component(whole)
    rgb = _rgb_array(image, lesion.shape)
    labels = classify_colours(rgb[lesion], skin_lightness(rgb, lesion, exclude=whole))
    counts = np.bincount(labels[labels >= 0], minlength=len(COLOUR_NAMES))
    return {name: float(counts[i]) / float(labels.size) for i, name in enumerate(COLOUR_NAMES)}


def measure_lesion(mask: Any, image: Any = None) -> LesionMeasurements:
    """Measure the lesion outlined by ``mask``: area, box, asymmetry, border, colours, diameter.

    Args:
        mask: 2-D bool, 0-1 or 0-255 array (or PIL image), nonzero (above half range) = lesion.
        image: The RGB uint8 (H, W, 3) array or PIL image the mask belongs to, for the colours; without
            it ``colours`` is empty.

    Returns:
        The :class:`LesionMeasurements`.

    Raises:
        ValueError: The mask is not 2-D or has no lesion pixels, or the image is not RGB of the mask's size.
    """
    whole = binary_mask(mask)
    if not whole.any():
        raise ValueError("mask is empty: it has no lesion pixels")
    rgb = _rgb_array(image, whole.shape) if image is not None else None
    # Shape measures use only the largest connected component: a segmentation model's stray speckles (hair,
    # a dark corner, a distant freckle) must not move the centroid, tilt the axes or add to the perimeter.
    lesion = largest_component(whole)
    height, width = lesion.shape
    area = int(lesion.sum())

    contour = _outer_contour(lesion.astype(np.uint8))
    x, y, w, h = cv2.boundingRect(contour)

    centre, angles = lesion_axes(lesion)
    canvas, cx, cy = _mirror_canvas(lesion, centre)
    asymmetry = (_mismatch(canvas, cx, cy, angles[0]), _mismatch(canvas, cx, cy, angles[1]))
    score = sum(1 for value in asymmetry if value > ASYMMETRY_THRESHOLD)

    colours: tuple[str, ...] = ()
    if rgb is not None:
        labels = classify_colours(rgb[lesion], skin_lightness(rgb, lesion, exclude=whole))
        counts = np.bincount(labels[labels >= 0], minlength=len(COLOUR_NAMES))
        colours = tuple(name for i, name in enumerate(COLOUR_NAMES) if counts[i] >= MIN_COLOUR_FRACTION * area)

    return LesionMeasurements(
        area_fraction=area / float(height * width),
        area_pixels=area,
        bbox=(int(x), int(y), int(x + w), int(y + h)),
        asymmetry=asymmetry,
        asymmetry_score=int(score),
        border_irregularity=_compactness(contour),
        colours=colours,
        colour_count=len(colours),
        diameter_pixels=_max_feret(contour),
    )


def _outer_contour(component: np.ndarray) -> np.ndarray:
    """The outer contour (pixel centres, every boundary pixel) of a single 8-connected uint8 component."""
    contours, _ = cv2.findContours(component, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return max(contours, key=len)


def _compactness(contour: np.ndarray) -> float:
    """perimeter^2 / (4 pi area) of the contour simplified to within 1 px.

    The 8-connected pixel chain overstates a smooth outline's length by the grid's staircase (a digital
    circle comes out 10-30 % above 1); simplifying it to within one pixel (Douglas-Peucker) removes the
    staircase but not real notches, and perimeter and area then come from the same polygon, for which
    perimeter^2 >= 4 pi area holds exactly.
    """
    polygon = cv2.approxPolyDP(contour, _DP_EPSILON, True)
    perimeter = cv2.arcLength(polygon, True)
    area = cv2.contourArea(polygon)
    if perimeter <= 0.0 or area <= 0.0:
        return 1.0  # a point or a one-pixel-wide line: no area to compare the outline with
    return float(perimeter * perimeter / (4.0 * math.pi * area))


def _max_feret(contour: np.ndarray) -> float:
    """Largest distance between two points of the contour's convex hull (pixel centres)."""
    hull = cv2.convexHull(contour).reshape(-1, 2).astype(np.float64)
    if len(hull) < 2:
        return 0.0
    diffs = hull[:, None, :] - hull[None, :, :]
    return float(np.sqrt((diffs ** 2).sum(-1)).max())


def _rgb_array(image: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``image`` as an RGB uint8 (H, W, 3) array, checked against the mask's ``(H, W)``."""
    if isinstance(image, Image.Image):
        image = image.convert("RGB")
    rgb = np.asarray(image)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"image must be RGB (H, W, 3), got shape {rgb.shape}")
    if rgb.shape[:2] != tuple(shape):
        raise ValueError(f"image size {rgb.shape[1]}x{rgb.shape[0]} (W x H) does not match the mask's "
                         f"{shape[1]}x{shape[0]}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {rgb.dtype}")
    return rgb
