"""The DermNet NZ adapter and the combined Fitzpatrick17k + DermNet NZ dataset, synthetic and real."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dermlib.data import DATASETS, detect, load_index
from dermlib.data import synthetic as syn
from dermlib.data.adapters import DermNetNZ
from dermlib.data.combined import FITZ_DERMNET, CombinedAdapter, CombinedPart
from dermlib.data.labels import DERMNET_NZ_CATEGORIES
from dermlib.data.schema import validate_index

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_dermnet_nz_synthetic(tmp_path: Path) -> None:
    root = syn.make_dermnet_nz(tmp_path / "dermnet", per_class=4)
    assert detect(root) == "dermnet-nz"
    index = load_index("dermnet-nz", root)
    validate_index(index)
    meta = pd.read_csv(root / "metadata.csv")
    assert len(index) == len(meta) == 12
    assert sorted(index["label"].unique()) == ["eczema", "melanoma", "psoriasis"]
    # group_id comes from the csv: the two photos of a near-duplicate pair share one.
    assert index["group_id"].tolist() == meta["group_id"].tolist()
    assert index["group_id"].value_counts().max() == 2
    assert index["fitzpatrick"].isna().all()
    assert set(index["source"]) == {"dermnet-nz"}
    assert index.loc[index["label"] == "melanoma", "risk_group"].eq("malignant").all()
    assert index.loc[0, "display_name"] == DERMNET_NZ_CATEGORIES[index.loc[0, "label"]].display_name
    adapter = DermNetNZ()
    assert adapter.copies(root) == {meta.loc[0, "md5"]}
    # Each photo was shown on two topic pages ("Eczema topic|Other topic"): two rows, one per topic.
    sub = adapter.sub_labels(root)
    assert len(sub) == 24 and sub["record"].value_counts().eq(2).all()
    assert set(sub.loc[sub["label"] == "eczema", "sub_label"]) == {"Eczema topic", "Other topic"}
    meta.drop(columns="dermnet_topic").to_csv(root / "metadata.csv", index=False)
    assert adapter.sub_labels(root) is None
    assert DATASETS["fitzpatrick17k"].sub_labels(root) is None and not DATASETS["fitzpatrick17k"].sub_label_title
    meta.to_csv(root / "metadata.csv", index=False)
    assert adapter.metadata(root)["eczema_psoriasis"].dropna().isin(["eczema", "psoriasis"]).all()


def test_old_dermnet_layout_is_still_the_kaggle_adapter(tmp_path: Path) -> None:
    root = syn.make_dermnet(tmp_path / "kaggle")
    assert detect(root) == "dermnet"
    assert "dermnet-nz" in DATASETS and "dermnet" in DATASETS


def _toy_combined(tmp_path: Path) -> tuple[CombinedAdapter, Path, pd.DataFrame]:
    root = tmp_path / "data"
    fitz = syn.make_fitzpatrick17k(root / "fitz", n_images=12, n_metadata_only=0)
    syn.make_dermnet_nz(root / "dn", per_class=4, n_copies=2)
    fitz_index = load_index("fitzpatrick17k", fitz)
    keys = [str(Path(p).relative_to(fitz.resolve())) for p in fitz_index["image_path"]]
    fixed = pd.DataFrame({"image": keys, "label": fitz_index["label"], "group_id": [f"grp{i // 2}" for i in
                          range(len(keys))], "split": (["train", "train", "val", "test"] * 3)[: len(keys)]})
    fixed.to_csv(tmp_path / "splits.csv", index=False)
    adapter = CombinedAdapter("toy", "Toy", "Toy combined", parts=(
        CombinedPart("fitzpatrick17k", "fitz", fixed_split=str(tmp_path / "splits.csv")),
        CombinedPart("dermnet-nz", "dn", drop_copies=True, label_map={"melanoma": "melanoma"}),
    ))
    return adapter, root, fixed


def test_combined_keeps_the_fixed_split_and_drops_copies(tmp_path: Path) -> None:
    adapter, root, fixed = _toy_combined(tmp_path)
    assert adapter.detect(root)
    index = adapter.load(root)
    validate_index(index)
    fitz = index[index["source"] == "fitzpatrick17k"]
    dn = index[index["source"] == "dermnet-nz"]
    assert len(fitz) == 12 and len(dn) == 12 - 2
    by_name = dict(zip(fixed["image"].map(lambda k: Path(k).name), fixed["split"], strict=True))
    assert [by_name[Path(p).name] for p in fitz["image_path"]] == fitz["split"].tolist()
    assert dn["split"].isna().all()
    copies = set(pd.read_csv(root / "dn" / "copies_in_other_sets.csv")["md5"])
    assert not set(dn["image_path"].map(lambda p: Path(p).stem)) & copies
    # Group ids carry their source so two sets' groups cannot collide.
    assert fitz["group_id"].str.startswith("fitzpatrick17k:").all()
    assert dn["group_id"].str.startswith("dermnet-nz:").all()
    # The shared condition is one class; the others keep their own ids.
    assert set(index["label"]) == {"acne-vulgaris", "melanoma", "seborrheic-keratosis", "eczema", "psoriasis"}
    assert set(index.loc[index["label"] == "melanoma", "source"]) == {"fitzpatrick17k", "dermnet-nz"}


def test_fitz_dermnet_is_registered_and_detected_first() -> None:
    assert next(iter(DATASETS)) == "fitz-dermnet"
    assert DATASETS["fitz-dermnet"] is FITZ_DERMNET


@pytest.mark.data
def test_dermnet_nz_real(shared_data: Path) -> None:
    root = shared_data / "dermnet"
    if not root.is_dir():
        pytest.skip("dermnet not present")
    assert detect(root) == "dermnet-nz"
    index = load_index("dermnet-nz", root)
    validate_index(index)
    meta = pd.read_csv(root / "metadata.csv")
    assert len(index) == len(meta) and index["image_path"].notna().all()
    assert set(index["label"]) == set(DERMNET_NZ_CATEGORIES) and index["label"].nunique() == 24
    assert index["group_id"].tolist() == meta["group_id"].tolist()
    # The eczema-versus-psoriasis column names exactly the photos of those two categories, so the slice
    # can be taken by label (as the evaluation does) without the extra column.
    flagged = meta["eczema_psoriasis"].notna()
    assert (meta.loc[flagged, "eczema_psoriasis"] == meta.loc[flagged, "category"]).all()
    assert set(meta.loc[~flagged, "category"]).isdisjoint({"eczema", "psoriasis"})
    # Every photo names at least one DermNet topic, and a category groups several.
    sub = DermNetNZ().sub_labels(root)
    assert sub["record"].nunique() == len(meta) and set(sub["label"]) == set(DERMNET_NZ_CATEGORIES)
    eczema = set(sub.loc[sub["label"] == "eczema", "sub_label"])
    assert {"Atopic dermatitis", "Hand dermatitis"} <= eczema and len(eczema) >= 10


@pytest.mark.data
def test_fitz_dermnet_real(shared_data: Path) -> None:
    if not (shared_data / "dermnet").is_dir() or not (shared_data / "fitzpatrick17k").is_dir():
        pytest.skip("fitzpatrick17k or dermnet not present")
    assert detect(shared_data) == "fitz-dermnet"
    index = load_index("fitz-dermnet", shared_data)
    validate_index(index)
    assert index["label"].nunique() == 38
    fitz = index[index["source"] == "fitzpatrick17k"]
    shipped = pd.read_csv(REPO_ROOT / "weights" / "clinical-fitz21" / "splits.csv")
    ours = dict(zip(fitz["image_path"].map(lambda p: Path(p).name), fitz["split"], strict=True))
    assert ours == dict(zip(shipped["image"].map(lambda k: Path(k).name), shipped["split"], strict=True))
    dn = index[index["source"] == "dermnet-nz"]
    copies = set(pd.read_csv(shared_data / "dermnet" / "copies_in_other_sets.csv")["md5"])
    assert len(dn) == 3082 - len(copies & set(pd.read_csv(shared_data / "dermnet" / "metadata.csv")["md5"]))
    assert not set(dn["image_path"].map(lambda p: Path(p).stem)) & copies
