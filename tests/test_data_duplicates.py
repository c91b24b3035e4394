"""Perceptual hashing and near-duplicate grouping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dermlib import config
from dermlib.data import (
    DEFAULT_MAX_DISTANCE,
    compute_hashes,
    duplicate_pairs,
    load_index,
    near_duplicate_groups,
    with_duplicate_groups,
)
from dermlib.data import synthetic as syn
from dermlib.data.duplicates import close_pairs, hamming_matrix, phash
from dermlib.errors import DatasetError


def _copies(tmp_path: Path) -> list[Path]:
    """a, a re-encoded smaller as PNG, a cropped by a few pixels, b, c (unrelated)."""
    a = syn.make_image(tmp_path / "a.jpg", 1, size=(400, 300))
    with Image.open(a) as image:
        image.resize((200, 150)).save(tmp_path / "a_small.png")
        image.crop((6, 4, 394, 296)).save(tmp_path / "a_crop.jpg", quality=70)
    b = syn.make_image(tmp_path / "b.jpg", 2, size=(400, 300))
    c = syn.make_image(tmp_path / "c.jpg", 3, size=(300, 400))
    return [a, tmp_path / "a_small.png", tmp_path / "a_crop.jpg", b, c]


def test_hamming_matches_popcount() -> None:
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, size=20, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    expected = np.array([[bin(int(x) ^ int(y)).count("1") for y in hashes] for x in hashes])
    assert (hamming_matrix(hashes) == expected).all()
    pairs = close_pairs(hashes, 30, chunk=7)
    want = {(i, j) for i in range(20) for j in range(i + 1, 20) if expected[i, j] <= 30}
    assert {(int(i), int(j)) for i, j, _ in pairs} == want
    assert all(expected[i, j] == d for i, j, d in pairs)


def test_copies_group_and_strangers_do_not(tmp_path: Path) -> None:
    paths = _copies(tmp_path)
    groups = near_duplicate_groups(paths)
    assert groups[0] == groups[1] == groups[2] == "dup:a"
    assert groups[3] == "dup:b" and groups[4] == "dup:c"
    assert phash(paths[0]) == phash(paths[0])
    pairs = duplicate_pairs(paths)
    assert {(Path(a).name, Path(b).name) for a, b in zip(pairs["path_a"], pairs["path_b"], strict=True)} == {
        ("a.jpg", "a_small.png"),
        ("a.jpg", "a_crop.jpg"),
        ("a_small.png", "a_crop.jpg"),
    }
    assert pairs["distance"].is_monotonic_increasing
    # max_distance=-1 joins nothing.
    assert len(set(near_duplicate_groups(paths, max_distance=-1))) == 5


def test_transitive_union() -> None:
    hashes = np.array([0b0, 0b11, 0b1111, 0xFFFF_FFFF_FFFF_FFFF], dtype=np.uint64)
    assert near_duplicate_groups(["x", "y", "z", "w"], max_distance=2, hashes=hashes) == [
        "dup:x",
        "dup:x",
        "dup:x",
        "dup:w",
    ]


def test_unreadable_image_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not really")
    with pytest.raises(DatasetError, match=r"bad\.jpg"):
        compute_hashes([bad])


def test_with_duplicate_groups_merges_lesions_and_copies(tmp_path: Path) -> None:
    paths = [str(p) for p in _copies(tmp_path)]
    index = pd.DataFrame(
        {
            "image_path": [*paths, None],
            "group_id": pd.array(["L1", "L2", "L3", "L4", "L4", "L5"], dtype="string"),
        }
    )
    out = with_duplicate_groups(index)
    assert list(out["group_id"]) == ["L1", "L1", "L1", "L4", "L4", "L5"]
    assert list(index["group_id"]) == ["L1", "L2", "L3", "L4", "L4", "L5"]  # input untouched


@pytest.mark.slow
def test_fitzpatrick_shared_duplicates() -> None:
    root = config.shared_data_root()
    if root is None or not (root / "fitzpatrick17k").is_dir():
        pytest.skip("shared Fitzpatrick17k not present")
    index = load_index("fitzpatrick17k", root / "fitzpatrick17k").dropna(subset=["image_path"])
    groups = near_duplicate_groups(index["image_path"].tolist()[:600])
    sizes = pd.Series(groups).value_counts()
    assert sizes.max() <= 5 and (sizes > 1).any()
    assert DEFAULT_MAX_DISTANCE == 10


def test_a_centre_share_leaves_the_border_out_of_the_hash(tmp_path: Path) -> None:
    from dermlib.data.duplicates import DERMOSCOPY_CENTRE, grey_thumbnail

    pixels = np.zeros((200, 300), dtype=np.uint8)
    pixels[30:170, 45:255] = 255  # a white field inside a dark ring 15% of each side wide
    Image.fromarray(pixels).convert("RGB").save(tmp_path / "ringed.png")
    whole = grey_thumbnail(tmp_path / "ringed.png")
    inner = grey_thumbnail(tmp_path / "ringed.png", centre=0.7)
    assert whole.shape == inner.shape == (32, 32)
    assert whole[0].max() < 10 and inner.min() > 245  # the ring is in one thumbnail and not in the other
    assert phash(tmp_path / "ringed.png", DERMOSCOPY_CENTRE) == compute_hashes([tmp_path / "ringed.png"],
                                                                               centre=DERMOSCOPY_CENTRE)[0]


def test_ph2_lesions_are_not_near_duplicates_once_the_ring_is_left_out() -> None:
    from dermlib.data.duplicates import DERMOSCOPY_CENTRE, compute_hashes

    root = config.shared_data_root()
    if root is None or not (root / "ph2" / "metadata.csv").is_file():
        pytest.skip("the shared PH2 folder is not present")
    paths = list(load_index("ph2", root / "ph2")["image_path"])  # 160 photos of 160 lesions
    whole = close_pairs(compute_hashes(paths), DEFAULT_MAX_DISTANCE)
    centre = close_pairs(compute_hashes(paths, centre=DERMOSCOPY_CENTRE), DEFAULT_MAX_DISTANCE)
    assert len(whole) >= 20 and len(centre) <= len(whole) // 5  # 28 and 3 when measured
