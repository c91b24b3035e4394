"""Train / validation / test splits that keep related images together.

Several images of one lesion (HAM10000 ``lesion_id``), one patient (PAD-UFES-20) or near-duplicate
photos (Fitzpatrick17k) must never sit on both sides of a split, or the test score measures memory
instead of skill. :func:`stratified_group_split` assigns whole groups, greedily, to whichever split
brings the per-label counts closest to their quotas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

SPLIT_NAMES = ("train", "val", "test")


def stratified_group_split(
    labels: Sequence[Any] | np.ndarray,
    groups: Sequence[Any] | np.ndarray | None,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
) -> np.ndarray:
    """Split rows into train / val / test, keeping each group on one side and stratifying by label.

    Groups are visited from largest to smallest (ties in a seeded random order); each goes to the split
    whose squared shortfall against its quotas (per label, relative to the label's size, plus the
    split's overall size) drops the most. Splits with a fraction of 0 receive nothing.

    Args:
        labels: Label per row (any hashable values).
        groups: Group per row (lesion, patient, duplicate cluster). None, or a missing value (None/NaN)
            in a row, makes that row its own group.
        fractions: Target fractions of train, val and test (normalised to sum to 1).
        seed: Seed of the tie order; the same inputs and seed always give the same split.

    Returns:
        Array of ``'train'``, ``'val'`` or ``'test'`` per row (dtype object).

    Raises:
        ValueError: On mismatched lengths or invalid fractions.
    """
    label_codes, _ = pd.factorize(pd.Series(list(labels), dtype=object), use_na_sentinel=False)
    n = label_codes.shape[0]
    if groups is None:
        group_codes = np.arange(n)
    else:
        group_series = pd.Series(list(groups), dtype=object)
        if group_series.shape[0] != n:
            raise ValueError(f"labels has {n} rows but groups has {group_series.shape[0]}")
        group_codes, _ = pd.factorize(group_series)  # missing -> -1
        missing = group_codes < 0
        group_codes = group_codes.astype(np.int64)
        group_codes[missing] = group_codes.max(initial=-1) + 1 + np.arange(int(missing.sum()))
    frac = np.asarray(fractions, dtype=np.float64)
    if frac.shape != (len(SPLIT_NAMES),) or np.any(frac < 0) or frac.sum() <= 0:
        raise ValueError(f"fractions must be three non-negative numbers, got {tuple(fractions)}")
    frac = frac / frac.sum()
    if n == 0:
        return np.array([], dtype=object)

    n_labels = int(label_codes.max()) + 1
    n_groups = int(group_codes.max()) + 1
    # counts[g, l]: rows of label l in group g (sparse in practice; kept per group as index lists).
    sizes = np.bincount(group_codes, minlength=n_groups)
    order_rows = np.argsort(group_codes, kind="stable")
    starts = np.r_[0, np.cumsum(sizes)]
    label_total = np.bincount(label_codes, minlength=n_labels).astype(np.float64)

    quota = frac[:, None] * label_total[None, :]  # (S, L)
    size_quota = frac * n
    current = np.zeros_like(quota)
    size_current = np.zeros(len(SPLIT_NAMES))
    open_splits = frac > 0

    rng = np.random.default_rng(seed)
    visit = rng.permutation(n_groups)
    visit = visit[np.argsort(-sizes[visit], kind="stable")]

    assignment = np.empty(n_groups, dtype=np.int64)
    for g in visit:
        rows = order_rows[starts[g] : starts[g + 1]]
        lab, cnt = np.unique(label_codes[rows], return_counts=True)
        w = label_total[lab]
        # Change in sum_l (current - quota)^2 / total_l if this group joins each split; the size term
        # keeps the split sizes on target when labels alone do not decide.
        delta = ((2 * cnt * (current[:, lab] - quota[:, lab]) + cnt**2) / w).sum(axis=1)
        size_n = sizes[g]
        delta += (2 * size_n * (size_current - size_quota) + size_n**2) / n
        delta[~open_splits] = np.inf
        s = int(np.argmin(delta))
        assignment[g] = s
        current[s, lab] += cnt
        size_current[s] += size_n
    return np.asarray(SPLIT_NAMES, dtype=object)[assignment[group_codes]]
