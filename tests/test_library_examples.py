"""Example photos of Disease Library entries (dermlib.knowledge.examples), on synthetic and real datasets."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from dermlib.data import synthetic as syn
from dermlib.errors import ImageError
from dermlib.knowledge import load_knowledge_base
from dermlib.knowledge.examples import (
    DATASET_CREDITS,
    SKIN_TYPE_NOT_RECORDED,
    ExamplePhoto,
    _photo_index,
    example_photos,
    photo_credits,
    skin_type_label,
    thumbnail,
    thumbnail_jpeg,
)

SKIN_TYPE = re.compile(r"^Fitzpatrick (I|II|III|IV|V|VI)$")
FITZ_CREDIT = DATASET_CREDITS["fitzpatrick17k"]
DERMNET_CREDIT = DATASET_CREDITS["dermnet-nz"]


def write_fitzpatrick17k(root: Path, rows: list[tuple[str, int]], seed: int = 1000) -> list[Path]:
    """A Fitzpatrick17k-shaped folder: ``fitzpatrick17k.csv`` + ``images/<label>/<md5>.jpg``, one per row.

    Args:
        rows: ``(label, Fitzpatrick type or -1)`` per photo.
    """
    records, paths = [], []
    for k, (label, fitz) in enumerate(rows):
        made = syn.make_image(root / "images" / "_tmp" / f"{k}.jpg", seed + k)
        digest = syn._md5(made)
        target = root / "images" / label / f"{digest}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        made.replace(target)
        paths.append(target)
        records.append(
            {
                "md5hash": digest,
                "fitzpatrick_scale": fitz,
                "fitzpatrick_centaur": fitz,
                "label": label,
                "nine_partition_label": "inflammatory",
                "three_partition_label": "non-neoplastic",
                "url": f"https://example.invalid/{label}/{k}.jpg",
            }
        )
    (root / "images" / "_tmp").rmdir()
    pd.DataFrame(records).to_csv(root / "fitzpatrick17k.csv", index=False)
    return paths


def make_library_data(root: Path) -> Path:
    """A data root with psoriasis in Fitzpatrick17k (two photos of each type I-VI, two unrecorded), eczema
    once (type II), and DermNet NZ eczema and psoriasis photos (no skin types)."""
    rows = [("psoriasis", t) for t in (1, 2, 3, 4, 5, 6) for _ in range(2)] + [("psoriasis", -1)] * 2
    write_fitzpatrick17k(root / "fitzpatrick17k", [*rows, ("eczema", 2)])
    syn.make_dermnet_nz(root / "dermnet", categories=("eczema", "psoriasis"), per_class=5)
    return root


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    return make_library_data(tmp_path / "data")


def condition(condition_id: str):
    return load_knowledge_base().get(condition_id)


def test_four_photos_spread_over_skin_types_with_credit(data_root: Path) -> None:
    photos = example_photos(condition("psoriasis"), data_root)
    assert len(photos) == 4
    assert all(isinstance(p, ExamplePhoto) for p in photos)
    # Skin types are known here, so all four come from Fitzpatrick17k, one or more from each group.
    assert {p.dataset for p in photos} == {"fitzpatrick17k"}
    assert all(SKIN_TYPE.match(p.skin_type) for p in photos)
    groups = {(p.fitzpatrick + 1) // 2 for p in photos}  # 1: I-II, 2: III-IV, 3: V-VI
    assert groups == {1, 2, 3}
    # Darkest group first in the draw, so the fourth photo is also V-VI; shown sorted I to VI.
    assert sum(p.fitzpatrick >= 5 for p in photos) == 2
    assert [p.fitzpatrick for p in photos] == sorted(p.fitzpatrick for p in photos)
    assert all(p.credit == FITZ_CREDIT and p.dataset_title == "Fitzpatrick17k" for p in photos)
    assert "Groh et al." in FITZ_CREDIT and "CC BY-NC-SA 3.0" in FITZ_CREDIT
    assert photo_credits(photos) == f"Photos: {FITZ_CREDIT}"
    assert all(p.path.is_file() and p.path.is_relative_to(data_root) for p in photos)
    assert all(p.label == "psoriasis" for p in photos)


def test_choice_is_deterministic_and_independent_of_the_mount_point(data_root: Path, tmp_path: Path) -> None:
    psoriasis = condition("psoriasis")
    first = example_photos(psoriasis, data_root)
    assert example_photos(psoriasis, data_root) == first
    moved = tmp_path / "elsewhere"
    shutil.copytree(data_root, moved)
    assert [p.path.name for p in example_photos(psoriasis, moved)] == [p.path.name for p in first]
    # Another seed draws other photos but spreads them the same way.
    other = example_photos(psoriasis, data_root, seed=7)
    assert len(other) == 4 and {(p.fitzpatrick + 1) // 2 for p in other} == {1, 2, 3}
    assert len(example_photos(psoriasis, data_root, n=2)) == 2


def test_unrecorded_skin_types_fill_the_rest_across_datasets(data_root: Path) -> None:
    photos = example_photos(condition("eczema"), data_root)
    assert len(photos) == 4
    assert photos[0].dataset == "fitzpatrick17k" and photos[0].skin_type == "Fitzpatrick II"
    rest = photos[1:]
    assert {p.dataset for p in rest} == {"dermnet-nz"}
    assert all(p.skin_type == SKIN_TYPE_NOT_RECORDED and p.fitzpatrick is None for p in rest)
    assert all(p.dataset_title == "DermNet NZ" and p.credit == DERMNET_CREDIT for p in rest)
    assert photo_credits(photos) == f"Photos: {FITZ_CREDIT}; {DERMNET_CREDIT}"
    assert "dermnetnz.org" in DERMNET_CREDIT


def test_one_photo_per_lesion_group_and_no_listed_copies(tmp_path: Path) -> None:
    # DermNet NZ: photos 0 and 1 share a near-duplicate group; photo 0 is listed as a copy of another set's.
    root = syn.make_dermnet_nz(tmp_path / "dermnet", categories=("psoriasis",), per_class=4, n_copies=1)
    meta = pd.read_csv(root / "metadata.csv")
    photos = example_photos(condition("psoriasis"), tmp_path)
    names = {p.path.stem for p in photos}
    assert meta["md5"][0] not in names
    assert names == set(meta["md5"][1:])  # the pair's other photo stands for the group


def test_corrupt_files_are_skipped(tmp_path: Path) -> None:
    paths = write_fitzpatrick17k(tmp_path / "fitz", [("psoriasis", t) for t in (1, 3, 5, 6, 2)])
    broken = {paths[0], paths[2]}
    paths[0].write_bytes(b"not an image at all")
    paths[2].write_bytes(paths[2].read_bytes()[:200])  # truncated JPEG
    photos = example_photos(condition("psoriasis"), tmp_path)
    assert len(photos) == 3
    assert not broken & {p.path for p in photos}
    with pytest.raises(ImageError):
        thumbnail(str(paths[0]))


def test_no_data_root_or_no_matching_dataset_gives_no_photos(
    tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    psoriasis = condition("psoriasis")
    assert example_photos(psoriasis, tmp_path / "missing") == []
    (tmp_path / "empty").mkdir()
    assert example_photos(psoriasis, tmp_path / "empty") == []
    monkeypatch.setenv("DERMLENS_DATA_ROOT", str(tmp_path / "empty"))
    assert example_photos(psoriasis) == []  # the configured root wins, even when empty
    monkeypatch.setenv("DERMLENS_DATA_ROOT", str(data_root))
    assert len(example_photos(psoriasis)) == 4
    assert example_photos(condition("melanoma"), data_root) == []  # no installed set labels it
    assert example_photos(psoriasis, data_root, n=0) == []


def test_thumbnails_are_small_and_the_index_cache_is_bounded(data_root: Path) -> None:
    photo = example_photos(condition("psoriasis"), data_root)[0]
    image = thumbnail(photo, size=32)
    assert image.mode == "RGB" and max(image.size) == 32
    data = thumbnail_jpeg(photo)
    assert data[:2] == b"\xff\xd8"
    assert _photo_index.cache_info().maxsize == 8


def test_skin_type_label_uses_roman_numerals() -> None:
    numerals = ["I", "II", "III", "IV", "V", "VI"]
    assert [skin_type_label(t) for t in range(1, 7)] == [f"Fitzpatrick {r}" for r in numerals]
    assert skin_type_label(None) == skin_type_label(pd.NA) == skin_type_label(-1) == SKIN_TYPE_NOT_RECORDED
    assert photo_credits([]) == ""


@pytest.mark.data
def test_real_data_acne_and_psoriasis_get_four_photos(shared_data: Path) -> None:
    started = time.perf_counter()
    acne = example_photos(condition("acne"), shared_data)
    first = time.perf_counter() - started
    assert len(acne) == 4
    assert {p.dataset for p in acne} == {"fitzpatrick17k"}  # skin types recorded there
    assert any(p.fitzpatrick is not None and p.fitzpatrick >= 5 for p in acne)
    assert all(SKIN_TYPE.match(p.skin_type) for p in acne)
    psoriasis = example_photos(condition("psoriasis"), shared_data)
    assert len(psoriasis) == 4
    assert all(p.credit == DERMNET_CREDIT for p in psoriasis)
    assert all(max(thumbnail(p).size) <= 256 for p in acne + psoriasis)
    started = time.perf_counter()
    assert example_photos(condition("acne"), shared_data) == acne
    assert time.perf_counter() - started < max(first, 0.05)
