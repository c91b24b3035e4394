"""Grouped, stratified train / val / test splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dermlib.config import shared_data_root
from dermlib.evaluate import stratified_group_split


def _data(seed: int, n_groups: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Groups of 1-6 images sharing one label (as lesions do), with unbalanced labels."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 7, n_groups)
    group_labels = rng.choice(["nevus", "melanoma", "bcc", "acne"], n_groups, p=[0.5, 0.2, 0.2, 0.1])
    groups = np.repeat([f"lesion{i}" for i in range(n_groups)], sizes)
    labels = np.repeat(group_labels, sizes)
    return labels, groups


@pytest.mark.parametrize("seed", range(12))
def test_groups_never_straddle_and_labels_are_stratified(seed: int) -> None:
    labels, groups = _data(seed)
    split = stratified_group_split(labels, groups, seed=seed)
    assert set(split) == {"train", "val", "test"}
    sides = pd.Series(split).groupby(groups).nunique()
    assert (sides == 1).all()
    shares = pd.crosstab(labels, split, normalize="index")
    np.testing.assert_allclose(shares["train"], 0.7, atol=0.05)
    np.testing.assert_allclose(shares["val"], 0.15, atol=0.05)
    np.testing.assert_allclose(shares["test"], 0.15, atol=0.05)
    sizes = pd.Series(split).value_counts(normalize=True)
    assert sizes["train"] == pytest.approx(0.7, abs=0.03)


def test_deterministic_for_a_seed() -> None:
    labels, groups = _data(0)
    a = stratified_group_split(labels, groups, seed=7)
    np.testing.assert_array_equal(a, stratified_group_split(labels, groups, seed=7))
    assert not np.array_equal(a, stratified_group_split(labels, groups, seed=8))


def test_zero_fraction_and_missing_groups() -> None:
    labels, groups = _data(1)
    split = stratified_group_split(labels, groups, fractions=(0.8, 0.2, 0.0))
    assert set(split) == {"train", "val"}
    # No groups, or missing groups: every such row stands alone.
    labels = np.array(["a", "b"] * 50)
    assert pd.Series(stratified_group_split(labels, None)).value_counts().to_dict() == {
        "train": 70,
        "val": 15,
        "test": 15,
    }
    groups = np.array([None, np.nan] * 40 + ["g"] * 20, dtype=object)
    split = stratified_group_split(labels, groups)
    assert len(set(split[-20:])) == 1
    assert len(set(split[:80])) == 3


def test_invalid_input() -> None:
    with pytest.raises(ValueError, match="groups"):
        stratified_group_split(["a", "b"], ["g"])
    with pytest.raises(ValueError, match="fractions"):
        stratified_group_split(["a", "b"], None, fractions=(1.0, -0.5, 0.5))
    assert stratified_group_split([], []).shape == (0,)


@pytest.fixture(scope="module")
def ham_metadata() -> pd.DataFrame:
    root = shared_data_root()
    path = root / "ham10000" / "HAM10000_metadata.csv" if root else None
    if path is None or not path.is_file():
        pytest.skip("HAM10000 metadata not available under ../shared/data")
    return pd.read_csv(path)


@pytest.mark.data
def test_ham10000_lesions_stay_together(ham_metadata: pd.DataFrame) -> None:
    split = stratified_group_split(ham_metadata["dx"], ham_metadata["lesion_id"], seed=0)
    assert (pd.Series(split).groupby(ham_metadata["lesion_id"].to_numpy()).nunique() == 1).all()
    shares = pd.crosstab(ham_metadata["dx"].to_numpy(), split, normalize="index")
    # Seven classes, the rarest with 115 images: each within 3 points of its quota.
    np.testing.assert_allclose(shares[["train", "val", "test"]], [[0.7, 0.15, 0.15]] * 7, atol=0.03)
