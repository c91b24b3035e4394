"""Dataset adapters: round trips on project-made layouts and on the shared real data, and bad layouts."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from dermlib import config
from dermlib.data import DATASETS, INDEX_COLUMNS, detect, discover, load_index, summarize_index
from dermlib.data import synthetic as syn
from dermlib.data.schema import empty_index, finalize_index, validate_index
from dermlib.errors import DatasetError


def shared(name: str) -> Path:
    """Return a dataset folder under ../shared/data, skipping the test when it is absent."""
    root = config.shared_data_root()
    if root is None or not (root / name).is_dir():
        pytest.skip(f"shared dataset {name} not present")
    return root / name


def check_schema(index: pd.DataFrame) -> None:
    """Schema checks plus: every image path exists, metadata-only rows hold None."""
    validate_index(index)
    assert all(Path(p).is_file() for p in index["image_path"].dropna())
    assert index.loc[index["image_path"].isna(), "image_path"].map(lambda v: v is None).all()


# --- ImageFolder ---------------------------------------------------------------------------------


def test_imagefolder_risk_folders(tmp_path: Path) -> None:
    syn.make_image_folder(tmp_path / "melanoma-set", ("benign", "malignant"), per_class=3)
    assert detect(tmp_path / "melanoma-set") == "imagefolder"
    index = load_index("imagefolder", tmp_path / "melanoma-set")
    check_schema(index)
    assert len(index) == 6
    assert index["label"].value_counts().to_dict() == {"benign": 3, "malignant": 3}
    assert (index["risk_group"] == index["label"]).all()
    assert (index["source"] == "melanoma-set").all()
    assert index["group_id"].is_unique
    assert index["split"].isna().all()


def test_imagefolder_with_splits_and_plain_classes(tmp_path: Path) -> None:
    syn.make_image_folder(
        tmp_path, ("eczema", "tinea_corporis"), 2, splits=("train", "valid", "test"), images_dir=False
    )
    index = load_index(None, tmp_path)
    check_schema(index)
    assert index.groupby("split").size().to_dict() == {"test": 4, "train": 4, "val": 4}
    assert set(index["display_name"]) == {"Eczema", "Tinea corporis"}
    assert index["risk_group"].isna().all()


def test_dermoscopy_melanoma_shared() -> None:
    root = shared("dermoscopy-melanoma")
    assert detect(root) == "imagefolder"
    index = load_index("imagefolder", root)
    check_schema(index)
    assert index["label"].value_counts().to_dict() == {"benign": 2500, "malignant": 2500}
    assert (index["risk_group"] == index["label"]).all()


# --- Fitzpatrick17k ------------------------------------------------------------------------------


@pytest.mark.parametrize("flat", [False, True])
def test_fitzpatrick17k_synthetic(tmp_path: Path, flat: bool) -> None:
    syn.make_fitzpatrick17k(tmp_path, n_images=6, n_metadata_only=3, flat=flat)
    assert detect(tmp_path) == "fitzpatrick17k"
    index = load_index("fitzpatrick17k", tmp_path)
    check_schema(index)
    assert len(index) == 9
    assert index["image_path"].notna().sum() == 6
    csv = pd.read_csv(tmp_path / "fitzpatrick17k.csv")
    assert list(index["group_id"]) == list(csv["md5hash"])
    # -1 is "unknown"; the rest pass through.
    expected = [pd.NA if v == -1 else v for v in csv["fitzpatrick_scale"]]
    assert [pd.NA if pd.isna(v) else int(v) for v in index["fitzpatrick"]] == expected
    assert set(index["label"]) == {"acne-vulgaris", "melanoma", "seborrheic-keratosis"}
    assert index.set_index("label")["risk_group"].to_dict() == {
        "acne-vulgaris": "non-neoplastic",
        "melanoma": "malignant",
        "seborrheic-keratosis": "benign",
    }
    with_image = index.dropna(subset=["image_path"])
    assert all(
        Path(p).stem == g for p, g in zip(with_image["image_path"], with_image["group_id"], strict=True)
    )
    if not flat:
        assert all(
            Path(p).parent.name == lab
            for p, lab in zip(with_image["image_path"], with_image["label"], strict=True)
        )


def test_fitzpatrick17k_shared_round_trip() -> None:
    root = shared("fitzpatrick17k")
    load_index("fitzpatrick17k", root)  # warm the file system cache
    start = time.perf_counter()
    index = load_index("fitzpatrick17k", root)
    elapsed = time.perf_counter() - start
    check_schema(index)
    assert len(index) == 16577
    assert index["image_path"].notna().sum() == 2860
    assert elapsed < 1.0, f"indexing took {elapsed:.2f}s"
    with_image = index.dropna(subset=["image_path"])
    # The csv label's slug equals the image's folder name.
    assert (with_image["image_path"].map(lambda p: Path(p).parent.name) == with_image["label"]).all()
    assert with_image["label"].nunique() == 21
    assert index["fitzpatrick"].isna().sum() == 565  # the csv's -1 rows
    summary = summarize_index(index)
    assert summary["n_images"] == 2860 and summary["n_records"] == 16577
    assert sum(summary["class_counts"].values()) == 2860
    assert set(summary["risk_group_counts"]) == {"benign", "malignant", "non-neoplastic"}


# --- registry and bad layouts --------------------------------------------------------------------


def test_validate_index_catches_problems() -> None:
    validate_index(empty_index())
    good = finalize_index(pd.DataFrame({"image_path": ["/x.jpg"], "label": ["a"], "group_id": ["g"]}))
    validate_index(good)
    assert tuple(good.columns) == INDEX_COLUMNS
    for column, value in [("risk_group", "unknown"), ("split", "holdout"), ("image_path", "rel.jpg")]:
        bad = good.copy()
        bad[column] = value if column == "image_path" else pd.array([value], dtype="string")
        with pytest.raises(DatasetError, match=column):
            validate_index(bad)
    with pytest.raises(DatasetError, match="columns"):
        validate_index(good.drop(columns=["split"]))


def test_registry_names_match_adapters() -> None:
    assert list(DATASETS) == [a.name for a in DATASETS.values()]
    assert list(DATASETS)[-1] == "imagefolder"  # the generic fallback is tried last


def test_discover_finds_each_dataset(tmp_path: Path) -> None:
    syn.make_fitzpatrick17k(tmp_path / "fitz")
    syn.make_image_folder(tmp_path / "lesions")
    (tmp_path / "empty").mkdir()
    found = discover(tmp_path)
    assert {k: v[1] for k, v in found.items()} == {"fitz": "fitzpatrick17k", "lesions": "imagefolder"}
    assert discover(tmp_path / "missing") == {}


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_index("fitzpatrick17k", tmp_path / "nope")


def test_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="Unknown dataset 'nope'"):
        load_index("nope", tmp_path)


def test_missing_csv(tmp_path: Path) -> None:
    syn.make_image_folder(tmp_path)
    with pytest.raises(DatasetError, match=r"Missing metadata file .*fitzpatrick17k\.csv"):
        load_index("fitzpatrick17k", tmp_path)


def test_wrong_columns(tmp_path: Path) -> None:
    pd.DataFrame({"md5hash": ["a"], "label": ["acne"]}).to_csv(tmp_path / "fitzpatrick17k.csv", index=False)
    with pytest.raises(DatasetError, match=r"lacks the column.*fitzpatrick_scale.*three_partition_label"):
        load_index("fitzpatrick17k", tmp_path)


def test_empty_folder(tmp_path: Path) -> None:
    assert detect(tmp_path) is None
    with pytest.raises(DatasetError, match="does not look like any known dataset"):
        load_index(None, tmp_path)
    with pytest.raises(DatasetError, match="no class folders"):
        load_index("imagefolder", tmp_path)
    (tmp_path / "cls").mkdir()
    (tmp_path / "cls" / "notes.txt").write_text("no images here")
    with pytest.raises(DatasetError, match="hold no image files"):
        load_index("imagefolder", tmp_path)


def test_unreadable_image_with_verify(tmp_path: Path) -> None:
    syn.make_image_folder(tmp_path, ("benign",), per_class=2)
    (tmp_path / "images" / "benign" / "broken.jpg").write_bytes(b"not a jpeg")
    assert len(load_index("imagefolder", tmp_path)) == 3  # indexing never opens images
    with pytest.raises(DatasetError, match=r"(?s)1 image file\(s\) cannot be read:.*broken\.jpg"):
        load_index("imagefolder", tmp_path, verify=True)
