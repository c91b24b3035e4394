"""The ITA skin-tone estimate, its agreement measurement, and what a page may quote with it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from dermlib.models.card import load_card
from dermlib.skintone import estimate_group, estimate_ita, ita_category, measure_agreement, top1_by_estimated_group
from dermlib.skintone.agreement import SKIN_TONE_FILE, exclusion_boxes
from dermlib.skintone.ita import CENTRE_BOX
from dermlib.testing import write_tiny_model

LIGHT, MEDIUM, DARK = (236, 204, 184), (198, 144, 110), (92, 60, 44)


def photo(colour: tuple[int, int, int], lesion: tuple[int, int, int] = (120, 20, 30)) -> Image.Image:
    """Uniform skin with a lesion-coloured centre (which the estimate must ignore)."""
    pixels = np.zeros((120, 160, 3), dtype=np.uint8)
    pixels[:] = colour
    pixels[35:85, 45:115] = lesion
    return Image.fromarray(pixels)


def expected_ita(colour: tuple[int, int, int]) -> float:
    lab = cv2.cvtColor(np.array([[colour]], dtype=np.float32) / 255.0, cv2.COLOR_RGB2Lab)[0, 0]
    return math.degrees(math.atan((lab[0] - 50) / lab[2]))


def test_ita_follows_the_formula_and_ignores_the_centre() -> None:
    for colour, group in ((LIGHT, "I-II"), (MEDIUM, "III-IV"), (DARK, "V-VI")):
        estimate = estimate_ita(photo(colour))
        assert estimate is not None
        assert estimate.ita == pytest.approx(expected_ita(colour), abs=0.05)
        assert estimate.group == group
        assert estimate.skin_fraction > 0.5


def test_chardon_thresholds() -> None:
    assert ita_category(60) == ("very light", "I-II")
    assert ita_category(41.5) == ("light", "I-II")
    assert ita_category(30) == ("intermediate", "III-IV")
    assert ita_category(10.5) == ("tan", "III-IV")
    assert ita_category(-29) == ("brown", "V-VI")
    assert ita_category(-45) == ("dark", "V-VI")


def test_no_estimate_without_skin_coloured_pixels() -> None:
    assert estimate_ita(Image.new("RGB", (100, 80), (40, 90, 200))) is None


def test_agreement_table_and_accuracy_by_estimated_group(tmp_path: Path) -> None:
    paths = []
    for i, colour in enumerate([LIGHT, LIGHT, MEDIUM, DARK]):
        path = tmp_path / f"{i}.png"
        photo(colour).save(path)
        paths.append(path)
    out = measure_agreement(paths, [1, 5, 3, 6])  # the second one is "wrong"
    assert out["n"] == 4 and out["confusion"]["matrix"] == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    assert out["group_accuracy"] == 0.75
    assert out["spearman"] < -0.5 and out["reliable"] is True  # three of four right, ITA falls as type rises
    assert measure_agreement(paths, [5, 6, 1, 1])["reliable"] is False  # the order reversed
    by_group = top1_by_estimated_group(paths, [True, False, True, True])
    assert (by_group["I-II"]["n"], by_group["I-II"]["top1_accuracy"]) == (2, 0.5)
    assert by_group["V-VI"]["n"] == 1 and by_group["no estimate"]["n"] == 0


def test_estimate_group_quotes_the_stored_accuracy_and_says_when_unreliable(tmp_path: Path) -> None:
    folder = write_tiny_model(tmp_path / "m")
    card = load_card(folder)
    out = estimate_group(photo(DARK), card)
    assert out["group"] == "V-VI" and out["reliable"] is False and out["model_top1"] is None
    assert "not reliable" in out["message"]
    stored = {"agreement": {"reliable": True, "group_accuracy": 0.7},
              "top1_by_estimated_group": {"V-VI": {"n": 40, "top1_accuracy": 0.6}}}
    (folder / SKIN_TONE_FILE).write_text(json.dumps(stored))
    out = estimate_group(photo(DARK), card)
    assert (out["reliable"], out["model_top1"], out["n"]) == (True, 0.6, 40)
    assert "40 test photos" in out["message"] and "60%" in out["message"] and "not reliable" not in out["message"]
    stored["agreement"] = {"reliable": False, "group_accuracy": 0.47}
    (folder / SKIN_TONE_FILE).write_text(json.dumps(stored))
    out = estimate_group(photo(DARK), card)
    assert out["reliable"] is False and "47%" in out["message"] and out["model_top1"] == 0.6
    assert estimate_group(Image.new("RGB", (90, 90), (40, 90, 200)), card)["group"] is None


def test_exclusion_boxes_add_the_card_mask() -> None:
    class Card:
        def __init__(self) -> None:
            self.preprocessing = {"mask": {"boxes": [[0.0, 0.64, 0.46, 1.0]]}}

    assert exclusion_boxes(Card())[1] == (0.0, 0.64, 0.46, 1.0)
    assert len(exclusion_boxes(None)) == 1


def test_phone_photo_agreement_reads_pad_ufes_20_and_is_none_without_it(tmp_path: Path) -> None:
    import sys

    from dermlib.data.synthetic import make_pad_ufes_20

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    try:
        import skin_tone_agreement as bench
    finally:
        sys.path.pop(0)
    assert bench.phone_agreement(tmp_path, [CENTRE_BOX]) is None  # no pad-ufes-20/ under the root
    make_pad_ufes_20(tmp_path / "pad-ufes-20", n_images=6, n_metadata_only=2)
    out = bench.phone_agreement(tmp_path, [CENTRE_BOX])
    # Types cycle 1, 2, none, 6 over the rows: 5 of the 6 photos with an image have one; the 2 rows
    # without an image are not counted.
    assert out["n"] + out["n_no_estimate"] == 5
    assert out["data"] == "pad-ufes-20, 6 smartphone photos with an image (5 with a type)"
    assert sum(map(sum, out["confusion"]["matrix"])) == out["n"]


def test_slices_by_estimated_group_split_by_source_and_score_the_pair() -> None:
    from dermlib.skintone import slices_by_estimated_group

    classes = ["eczema", "psoriasis", "acne"]
    groups = ["I-II", "I-II", "V-VI", "V-VI", "no estimate"]
    sources = ["dermnet-nz", "fitzpatrick17k", "dermnet-nz", "dermnet-nz", "fitzpatrick17k"]
    labels = ["eczema", "psoriasis", "psoriasis", "acne", "eczema"]
    probs = np.array([[0.7, 0.2, 0.1],   # eczema, ranked above psoriasis: right
                      [0.6, 0.3, 0.1],   # psoriasis taken for eczema: wrong
                      [0.2, 0.5, 0.3],   # psoriasis: right
                      [0.1, 0.2, 0.7],   # acne: not in the pair
                      [0.3, 0.6, 0.1]])  # eczema taken for psoriasis: wrong
    correct = probs.argmax(1) == np.array([classes.index(label) for label in labels])
    out = slices_by_estimated_group(groups, correct.tolist(), sources, probs, labels, classes)
    dermnet = out["top1_by_source"]["dermnet-nz"]
    assert (dermnet["I-II"]["n"], dermnet["I-II"]["top1_accuracy"]) == (1, 1.0)
    assert (dermnet["V-VI"]["n"], dermnet["V-VI"]["top1_accuracy"]) == (2, 1.0)
    assert dermnet["III-IV"]["n"] == 0 and dermnet["III-IV"]["top1_accuracy"] is None
    assert out["top1_by_source"]["fitzpatrick17k"]["I-II"]["top1_accuracy"] == 0.0
    pair = out["eczema_vs_psoriasis"]
    assert (pair["I-II"]["n"], pair["I-II"]["correct"]) == (2, 1)
    assert (pair["V-VI"]["n"], pair["V-VI"]["correct"]) == (1, 1)  # the acne photo is left out
    assert (pair["no estimate"]["n"], pair["no estimate"]["correct"]) == (1, 0)
    assert slices_by_estimated_group(groups, correct.tolist(), sources, probs[:, [2, 1, 0]], labels,
                                     ["acne", "psoriasis", "other"])["eczema_vs_psoriasis"] == {}
