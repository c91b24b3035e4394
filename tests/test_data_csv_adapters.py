"""HAM10000, PAD-UFES-20, ISIC 2019 and DermNet adapters on project-made layouts and shared data."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from dermlib import config
from dermlib.data import detect, load_index
from dermlib.data import synthetic as syn
from dermlib.data.labels import DERMNET_FOLDERS, DERMNET_LABELS, HAM10000_LABELS, PAD_UFES_20_LABELS
from dermlib.data.schema import validate_index
from dermlib.errors import DatasetError


def check_schema(index: pd.DataFrame) -> None:
    validate_index(index)
    assert all(Path(p).is_file() for p in index["image_path"].dropna())


def shared(name: str) -> Path:
    root = config.shared_data_root()
    if root is None or not (root / name).is_dir():
        pytest.skip(f"shared dataset {name} not present")
    return root / name


def test_ham10000_synthetic(tmp_path: Path) -> None:
    syn.make_ham10000(tmp_path, n_images=6, n_metadata_only=2)
    assert detect(tmp_path) == "ham10000"
    index = load_index("ham10000", tmp_path)
    check_schema(index)
    assert len(index) == 8 and index["image_path"].notna().sum() == 6
    csv = pd.read_csv(tmp_path / "HAM10000_metadata.csv")
    assert list(index["group_id"]) == list(csv["lesion_id"])
    assert list(index["label"]) == list(csv["dx"])
    assert index["sex"].tolist()[:3] == ["male", "female", pd.NA]
    assert index["body_site"].tolist()[:3] == ["back", "face", pd.NA]
    assert index["age"].isna().tolist() == list(csv["age"].isna())
    assert index["fitzpatrick"].isna().all()
    assert index.loc[0, "display_name"] == HAM10000_LABELS[csv.loc[0, "dx"]].display_name


def test_ham10000_dataverse_tab(tmp_path: Path) -> None:
    syn.make_ham10000(tmp_path)
    csv = pd.read_csv(tmp_path / "HAM10000_metadata.csv")
    (tmp_path / "HAM10000_metadata.csv").unlink()
    csv.to_csv(tmp_path / "HAM10000_metadata.tab", sep="\t", index=False)
    assert detect(tmp_path) == "ham10000"
    assert len(load_index("ham10000", tmp_path)) == len(csv)


def test_ham10000_shared() -> None:
    root = shared("ham10000")
    load_index("ham10000", root)
    start = time.perf_counter()
    index = load_index("ham10000", root)
    assert time.perf_counter() - start < 1.0
    check_schema(index)
    assert len(index) == 10015 and index["image_path"].notna().sum() == 170
    assert set(index["label"]) == set(HAM10000_LABELS)
    assert index["group_id"].str.startswith("HAM_").all()
    assert set(index["sex"].dropna()) == {"female", "male"}


def test_pad_ufes_20_synthetic_png_in_csv_jpg_on_disk(tmp_path: Path) -> None:
    syn.make_pad_ufes_20(tmp_path, n_images=6, n_metadata_only=2)
    assert detect(tmp_path) == "pad-ufes-20"
    index = load_index("pad-ufes-20", tmp_path)
    check_schema(index)
    assert index["image_path"].notna().sum() == 6
    assert index["image_path"].dropna().str.endswith(".jpg").all()
    csv = pd.read_csv(tmp_path / "metadata.csv")
    assert list(index["group_id"]) == list(csv["patient_id"])
    assert [None if pd.isna(v) else int(v) for v in index["fitzpatrick"]] == [
        None if pd.isna(v) else int(v) for v in csv["fitspatrick"]
    ]
    assert index["sex"].tolist()[:3] == ["female", "male", pd.NA]
    assert index["body_site"].tolist()[:2] == ["arm", "face"]
    assert set(index["risk_group"]) <= {"benign", "malignant"}


def test_pad_ufes_20_shared() -> None:
    index = load_index("pad-ufes-20", shared("pad-ufes-20"))
    check_schema(index)
    assert len(index) == 2298 and index["image_path"].notna().sum() == 109
    assert set(index["label"]) == set(PAD_UFES_20_LABELS)
    assert index["fitzpatrick"].notna().sum() == 1494


def test_isic2019_synthetic(tmp_path: Path) -> None:
    syn.make_isic2019(tmp_path, n_images=8)
    assert detect(tmp_path) == "isic2019"
    index = load_index("isic2019", tmp_path)
    check_schema(index)
    assert len(index) == 8 and index["image_path"].notna().all()
    assert list(index["label"]) == ["mel", "nv", "bcc", "ak", "bkl", "df", "vasc", "scc"]
    # Rows without a lesion id are their own group; the rest share BCN lesions.
    assert list(index["group_id"][:4]) == [
        "ISIC_0001000_downsampled",
        "ISIC_0001001",
        "BCN_0000001",
        "BCN_0000001",
    ]
    assert index["age"].tolist()[:2] == [35.0, 40.0]
    assert index["body_site"].tolist()[:2] == ["anterior torso", pd.NA]
    assert index.loc[0, "risk_group"] == "malignant" and index.loc[1, "risk_group"] == "benign"


def test_isic2019_without_metadata_and_bad_one_hot(tmp_path: Path) -> None:
    syn.make_isic2019(tmp_path, n_images=3)
    (tmp_path / "ISIC_2019_Training_Metadata.csv").unlink()
    index = load_index("isic2019", tmp_path)
    assert index["age"].isna().all() and list(index["group_id"]) == list(
        index["image_path"].map(lambda p: Path(p).stem)
    )
    truth = pd.read_csv(tmp_path / "ISIC_2019_Training_GroundTruth.csv")
    truth.loc[1, ["MEL", "NV", "BCC"]] = 0.0
    truth.to_csv(tmp_path / "ISIC_2019_Training_GroundTruth.csv", index=False)
    with pytest.raises(DatasetError, match="no class set"):
        load_index("isic2019", tmp_path)


def test_dermnet_synthetic(tmp_path: Path) -> None:
    syn.make_dermnet(tmp_path, n_classes=4, per_class=2)
    assert detect(tmp_path) == "dermnet"
    index = load_index("dermnet", tmp_path)
    check_schema(index)
    assert len(index) == 16
    assert index.groupby("split").size().to_dict() == {"test": 8, "train": 8}
    assert set(index["label"]) <= set(DERMNET_LABELS)
    first = next(iter(DERMNET_FOLDERS))
    row = index[index["label"] == "acne-and-rosacea-photos"].iloc[0]
    assert row["display_name"] == DERMNET_FOLDERS[first].display_name
    assert (index["source"] == "dermnet").all()
    assert len(DERMNET_FOLDERS) == 23


def test_bad_csv_layouts(tmp_path: Path) -> None:
    (tmp_path / "HAM10000_metadata.csv").write_text("image_id,dx\nISIC_1,nv\n")
    with pytest.raises(DatasetError, match=r"lacks the column.*lesion_id"):
        load_index("ham10000", tmp_path)
    with pytest.raises(DatasetError, match=r"Missing metadata file .*metadata\.csv"):
        load_index("pad-ufes-20", tmp_path)
    with pytest.raises(DatasetError, match=r"ISIC_2019_Training_GroundTruth\.csv"):
        load_index("isic2019", tmp_path)
