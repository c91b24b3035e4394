"""Lesion measurements (dermlib.segment.measure) on synthetic shapes and colours with known answers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from dermlib.segment.measure import (
    ASYMMETRY_THRESHOLD,
    COLOUR_NAMES,
    MIN_COLOUR_FRACTION,
    LesionMeasurements,
    axis_asymmetry,
    classify_colours,
    colour_fractions,
    largest_component,
    lesion_axes,
    measure_lesion,
    principal_axes,
)

H, W = 240, 320
SKIN = (225, 185, 165)  # light skin, CIELAB about (78, 11, 16)
# sRGB values that the colour names denote (CIELAB in the comments).
DARK_BROWN = (120, 75, 45)  # (36, 15, 25)
BLUE_GREY = (100, 110, 130)  # (46, 1, -13): slate blue-grey
GREY = (124, 120, 116)  # (50, 1, 3): a warm neutral grey, blue-grey in the ABCD rule
LIGHT_BROWN = (190, 130, 80)  # (59, 18, 36): tan
BLACK = (25, 20, 20)  # (7, 2, 1)
RED = (200, 40, 50)  # (44, 61, 35)
WHITE = (245, 245, 245)  # (96, 0, 0)
PINK = (230, 170, 170)  # (75, 22, 9): skin-like pink, none of the six

REPO_ROOT = Path(__file__).resolve().parents[1]
PH2 = REPO_ROOT.parent / "shared" / "data" / "ph2"


def blank() -> np.ndarray:
    return np.zeros((H, W), np.uint8)


def circle(radius: int = 60, centre: tuple[int, int] = (160, 120)) -> np.ndarray:
    mask = blank()
    cv2.circle(mask, centre, radius, 255, thickness=-1)
    return mask


def ellipse(angle: float = 0.0) -> np.ndarray:
    mask = blank()
    cv2.ellipse(mask, (160, 120), (90, 40), angle, 0, 360, 255, thickness=-1)
    return mask


def bumped_circle() -> np.ndarray:
    """A circle with a large round bump on its right: symmetric about the horizontal line only."""
    mask = circle(60, (150, 120))
    cv2.circle(mask, (215, 120), 35, 255, thickness=-1)
    return mask


def teardrop() -> np.ndarray:
    """A circle joined to a triangle pointing up-right: symmetric about its long axis only."""
    mask = circle(45, (120, 150))
    cv2.fillPoly(mask, [np.array([[90, 120], [150, 180], [260, 20]], np.int32)], 255)
    return mask


def star(points: int = 10, outer: float = 90, inner: float = 45, turn: float = 7.0) -> np.ndarray:
    """A star whose first tip points ``turn`` degrees from +x; mirror-symmetric about every tip."""
    mask = blank()
    angles = np.arange(2 * points) * math.pi / points + math.radians(turn)
    radii = np.where(np.arange(2 * points) % 2 == 0, outer, inner)
    polygon = np.stack([160 + radii * np.cos(angles), 120 + radii * np.sin(angles)], 1)
    cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 255)
    return mask


def painted(mask: np.ndarray, *regions: tuple[np.ndarray, tuple[int, int, int]]) -> np.ndarray:
    """An RGB image of skin with each (region, colour) painted in turn."""
    image = np.empty((H, W, 3), np.uint8)
    image[:] = SKIN
    for region, colour in regions:
        image[region.astype(bool)] = colour
    return image


# --- asymmetry ---------------------------------------------------------------------------------------


def test_circle_is_symmetric_and_compact() -> None:
    m = measure_lesion(circle())
    assert max(m.asymmetry) < 0.05
    assert m.asymmetry_score == 0
    assert 0.9 <= m.border_irregularity <= 1.15
    assert m.diameter_pixels == pytest.approx(120, abs=2)


@pytest.mark.parametrize("radius", [15, 40, 100])
def test_compactness_of_digital_circles_is_close_to_one(radius: int) -> None:
    """The pixel staircase is smoothed out: a raw 8-connected chain gives 1.1-1.25 for these circles."""
    assert 0.98 <= measure_lesion(circle(radius)).border_irregularity <= 1.06


@pytest.mark.parametrize("angle", [0.0, 30.0, 60.0, 110.0])
def test_ellipse_is_symmetric_about_its_own_axes(angle: float) -> None:
    m = measure_lesion(ellipse(angle))
    assert max(m.asymmetry) < 0.05
    assert m.asymmetry_score == 0
    assert m.diameter_pixels == pytest.approx(180, abs=2)


def test_principal_axes_follow_a_rotated_ellipse() -> None:
    (cx, cy), (major, minor) = principal_axes(ellipse(30.0))
    assert (cx, cy) == pytest.approx((160, 120), abs=0.5)
    # cv2.ellipse turns from +x towards +y (clockwise on screen), as principal_axes measures.
    assert math.degrees(major) % 180 == pytest.approx(30, abs=1)
    assert minor - major == pytest.approx(math.pi / 2)


def test_asymmetry_across_a_wrong_axis_is_large() -> None:
    """The same ellipse mirrored across a line 45 degrees off its axes does not overlap itself."""
    mask = ellipse(0.0)
    assert axis_asymmetry(mask, (160, 120), 0.0) < 0.02
    assert axis_asymmetry(mask, (160, 120), math.pi / 4) > 0.3


@pytest.mark.parametrize("make", [bumped_circle, teardrop], ids=["bump", "teardrop"])
def test_asymmetric_shapes_exceed_the_threshold_on_one_axis(make) -> None:
    m = measure_lesion(make())
    assert max(m.asymmetry) > ASYMMETRY_THRESHOLD
    assert min(m.asymmetry) < 0.05  # each of these is still mirror-symmetric about one axis
    assert m.asymmetry_score == 1


def test_l_shape_with_unequal_arms_is_asymmetric_on_both_axes() -> None:
    mask = blank()
    mask[30:210, 60:110] = 255  # long vertical arm
    mask[170:210, 60:180] = 255  # shorter horizontal arm
    m = measure_lesion(mask)
    assert min(m.asymmetry) > ASYMMETRY_THRESHOLD
    assert m.asymmetry_score == 2


def test_star_uses_its_symmetry_axes_not_arbitrary_moment_axes() -> None:
    """A star's second moments are equal in every direction, so its "principal" axes are set by noise and
    cut across its arms; the axes are searched instead, and land on its tips (every 18 degrees from 7)."""
    mask = star(turn=7.0)
    m = measure_lesion(mask)
    assert max(m.asymmetry) < 0.05
    (_, _), (first, _) = lesion_axes(largest_component(mask))
    offset = (math.degrees(first) - 7.0) % 18.0
    assert min(offset, 18.0 - offset) < 1.5
    centre, moment_axes = principal_axes(mask)
    assert max(axis_asymmetry(mask, centre, t) for t in moment_axes) > 0.2  # what the moment axes alone give


def test_speckles_outside_the_lesion_do_not_change_asymmetry() -> None:
    clean = bumped_circle()
    speckled = clean.copy()
    for x, y in [(10, 10), (300, 15), (20, 225), (310, 230), (290, 200)]:
        cv2.circle(speckled, (x, y), 3, 255, thickness=-1)
    a, b = measure_lesion(clean), measure_lesion(speckled)
    assert b.asymmetry == a.asymmetry
    assert b.border_irregularity == a.border_irregularity
    assert (b.area_pixels, b.bbox, b.diameter_pixels) == (a.area_pixels, a.bbox, a.diameter_pixels)
    # ... while the same speckles would move the centroid and axes of the whole mask.
    whole_centre, whole_axes = principal_axes(speckled)
    naive = [axis_asymmetry(speckled > 0, whole_centre, t) for t in whole_axes]
    assert naive != pytest.approx(list(a.asymmetry), abs=1e-3)


# --- border, area, box -------------------------------------------------------------------------------


def test_star_border_is_far_more_irregular_than_a_circle() -> None:
    circle_b = measure_lesion(circle()).border_irregularity
    star_b = measure_lesion(star()).border_irregularity
    assert star_b > 1.5 * circle_b
    assert star_b > 2.0


def test_jagged_outline_is_more_irregular_than_a_smooth_one() -> None:
    angles = np.linspace(0, 2 * math.pi, 120, endpoint=False)
    radii = 60 + 10 * np.where(np.arange(120) % 2 == 0, 1, -1)  # a saw-tooth edge
    jagged = blank()
    polygon = np.stack([160 + radii * np.cos(angles), 120 + radii * np.sin(angles)], 1)
    cv2.fillPoly(jagged, [np.round(polygon).astype(np.int32)], 255)
    assert measure_lesion(jagged).border_irregularity > 1.3 * measure_lesion(circle()).border_irregularity


def test_rectangle_area_fraction_bbox_and_diameter_are_exact() -> None:
    mask = np.zeros((H, W), bool)
    mask[50:130, 60:260] = True  # 80 rows x 200 columns
    m = measure_lesion(mask)
    assert m.area_pixels == 80 * 200
    assert m.area_fraction == pytest.approx(80 * 200 / (H * W), abs=0, rel=1e-12)
    assert m.bbox == (60, 50, 260, 130)
    assert m.diameter_pixels == pytest.approx(math.hypot(199, 79))
    assert max(m.asymmetry) < 1e-6


def test_holes_are_filled() -> None:
    ring = circle(60)
    cv2.circle(ring, (160, 120), 20, 0, thickness=-1)
    assert measure_lesion(ring).area_pixels == measure_lesion(circle(60)).area_pixels


def test_mask_formats_give_the_same_measurements() -> None:
    base = bumped_circle()
    expected = measure_lesion(base)
    for variant in (base > 0, (base > 0).astype(np.int64), (base > 0).astype(np.float32), Image.fromarray(base),
                    Image.fromarray(base).convert("1")):
        assert measure_lesion(variant) == expected


# --- colours -----------------------------------------------------------------------------------------


def halves(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    left = mask.astype(bool).copy()
    left[:, 160:] = False
    return left, mask.astype(bool) & ~left


def test_two_colour_lesion_counts_exactly_those_two() -> None:
    mask = circle(70)
    left, right = halves(mask)
    m = measure_lesion(mask, painted(mask, (left, DARK_BROWN), (right, BLUE_GREY)))
    assert m.colours == ("dark brown", "blue-grey")
    assert m.colour_count == 2


@pytest.mark.parametrize(("rgb", "name"), [(LIGHT_BROWN, "light brown"), (DARK_BROWN, "dark brown"),
                                           (BLUE_GREY, "blue-grey"), (GREY, "blue-grey"), (BLACK, "black"),
                                           (RED, "red"),
                                           (WHITE, "white")])
def test_single_colour_lesion_counts_one(rgb: tuple[int, int, int], name: str) -> None:
    mask = circle(70)
    m = measure_lesion(mask, painted(mask, (mask, rgb)))
    assert m.colours == (name,)
    assert m.colour_count == 1


def test_skin_like_pink_counts_for_nothing() -> None:
    mask = circle(70)
    left, right = halves(mask)
    m = measure_lesion(mask, painted(mask, (left, PINK), (right, DARK_BROWN)))
    assert m.colours == ("dark brown",)
    fractions = colour_fractions(painted(mask, (left, PINK), (right, DARK_BROWN)), mask)
    assert sum(fractions.values()) == pytest.approx(0.5, abs=0.02)


def test_a_colour_below_the_minimum_fraction_is_not_present() -> None:
    mask = circle(70)
    area = int((mask > 0).sum())
    speck = np.zeros_like(mask, bool)
    ys, xs = np.nonzero(mask)
    speck[ys[: int(0.5 * MIN_COLOUR_FRACTION * area)], xs[: int(0.5 * MIN_COLOUR_FRACTION * area)]] = True
    m = measure_lesion(mask, painted(mask, (mask, LIGHT_BROWN), (speck, BLACK)))
    assert m.colours == ("light brown",)


def test_colours_are_read_against_the_surrounding_skin() -> None:
    """The same lesion photographed darker (skin and lesion scaled alike) keeps its colour names."""
    mask = circle(70)
    left, right = halves(mask)
    image = painted(mask, (left, LIGHT_BROWN), (right, DARK_BROWN))
    darker = (image.astype(np.float32) * 0.8).round().astype(np.uint8)
    assert measure_lesion(mask, image).colours == measure_lesion(mask, darker).colours == ("light brown",
                                                                                            "dark brown")


def test_no_image_means_no_colours_and_pil_images_work() -> None:
    mask = circle(70)
    assert measure_lesion(mask).colours == ()
    assert measure_lesion(mask).colour_count == 0
    image = painted(mask, (mask, DARK_BROWN))
    assert measure_lesion(mask, Image.fromarray(image)).colours == ("dark brown",)


def test_classify_colours_names_each_reference_colour() -> None:
    pixels = np.array([WHITE, RED, LIGHT_BROWN, DARK_BROWN, BLUE_GREY, BLACK, PINK], np.uint8)
    labels = classify_colours(pixels, skin_lightness=78.0)
    assert [COLOUR_NAMES[i] if i >= 0 else None for i in labels] == [*COLOUR_NAMES, None]


# --- errors and output -------------------------------------------------------------------------------


def test_empty_mask_raises() -> None:
    with pytest.raises(ValueError, match="empty"):
        measure_lesion(blank())
    with pytest.raises(ValueError, match="empty"):
        measure_lesion(np.zeros((H, W), bool), painted(blank()))


def test_non_2d_mask_raises() -> None:
    with pytest.raises(ValueError, match="2-D"):
        measure_lesion(np.zeros((H, W, 3), np.uint8))
    with pytest.raises(ValueError, match="2-D"):
        measure_lesion(np.zeros(10, np.uint8))


def test_image_of_another_size_raises() -> None:
    mask = circle()
    with pytest.raises(ValueError, match="does not match"):
        measure_lesion(mask, np.zeros((H + 1, W, 3), np.uint8))
    with pytest.raises(ValueError, match="RGB"):
        measure_lesion(mask, np.zeros((H, W), np.uint8))


def test_to_dict_is_json_ready_with_the_listed_keys() -> None:
    mask = circle(70)
    left, right = halves(mask)
    m = measure_lesion(mask, painted(mask, (left, DARK_BROWN), (right, BLUE_GREY)))
    assert isinstance(m, LesionMeasurements)
    d = m.to_dict()
    assert set(d) == {"area_fraction", "bbox", "asymmetry", "asymmetry_score", "border_irregularity", "colours",
                      "colour_count", "diameter_pixels"}
    back = json.loads(json.dumps(d))
    assert back == d
    assert isinstance(d["bbox"], list) and isinstance(d["asymmetry"], list) and isinstance(d["colours"], list)
    assert d["colours"] == ["dark brown", "blue-grey"]
    assert d["area_fraction"] == round(m.area_fraction, 4)
    assert all(isinstance(v, int) for v in d["bbox"])
    with pytest.raises(AttributeError):
        m.area_pixels = 0  # type: ignore[misc]  # frozen


# --- PH2 (real data, skipped when absent) ------------------------------------------------------------


@pytest.mark.data
@pytest.mark.skipif(not (PH2 / "metadata.csv").is_file(), reason="PH2 not under ../shared/data")
def test_ph2_agreement_script_runs_on_a_split_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    try:
        import ph2_measure_agreement as bench
    finally:
        sys.path.remove(str(REPO_ROOT / "benchmarks"))
    splits = tmp_path / "splits.csv"
    splits.write_text("image,label,split\nph2/images/IMD002.jpg,x,test\nph2/images/IMD003.jpg,x,test\n"
                      "ph2/images/IMD006.jpg,x,train\nph2/images/IMD008.jpg,x,test\n")
    assert bench.read_ids(splits) == ["IMD002", "IMD003", "IMD008"]
    assert bench.main(["--data-root", str(PH2.parent), "--ids", str(splits), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    groups = list(result["groups"].values())
    assert [g["n"] for g in groups] == [1, 2, 3]  # IMD002 held out; IMD003, IMD008 in the tuning half
    assert set(groups[2]["colours"]) == set(COLOUR_NAMES)
    assert result["problems"] == []
