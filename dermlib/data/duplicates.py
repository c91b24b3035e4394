"""Near-duplicate photos: a DCT perceptual hash and Hamming-distance grouping.

Fitzpatrick17k holds the same lesion photographed (or re-encoded, cropped, resized) under different md5
hashes; a split that puts one copy in train and another in test overstates accuracy. Each image gets a
64-bit pHash (computed from a 32x32 grey thumbnail; JPEGs are decoded in draft mode at 1/8 scale, so large
photos are never fully decoded), and images whose hashes differ in at most ``max_distance`` bits are joined
into one group (union-find over all close pairs).

``DEFAULT_MAX_DISTANCE`` was chosen by inspecting pairs in the shared Fitzpatrick17k subset (2,860 images):
see the module constant's comment.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from dermlib.errors import DatasetError

HASH_SIZE = 8  # 8x8 low-frequency DCT coefficients -> 64 bits
_SAMPLE = 32  # the grey thumbnail the DCT runs on (4x the hash size, as in the classic pHash)

# Chosen on the shared Fitzpatrick17k subset (2,860 photos, 64-bit hashes; distances come in even steps).
# Close pairs per distance: 0:10, 2:10, 4:6, 6:8, 8:11, 10:30, 12:63, 14:319, 16:1393 (the random-pair
# bulk starts at 12-14). Looking at the pairs: up to 6 every pair was the same photo (re-encoded, resized,
# re-cropped, a watermark or an eye bar added, sometimes filed under two labels); at 8 and 10 about 5 in 8
# were the same photo or the same lesion re-shot, the rest look-alike flat skin; at 12 about 1 in 8 and at
# 14 chains of unrelated photos form (a group of 82). For splitting, a false merge only keeps two
# unrelated photos together (groups stay at <= 3 images at 10) while a miss leaks a lesion into the test
# set, so the threshold sits at the last distance that still finds mostly real duplicates.
DEFAULT_MAX_DISTANCE = 10
# Dermoscopy photos share a dark vignette ring (the dermatoscope's field of view), which dominates the
# low-frequency DCT: on PH2 (160 photos of 160 different lesions) whole-photo hashes gave 28 pairs at distance
# 10, half of them under two diagnoses. Hashing the central 80% leaves 3 (measured 2026-12-07).
DERMOSCOPY_CENTRE = 0.8


def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix ``D`` so that ``D @ x`` is the DCT of a length-``n`` signal."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    matrix = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    matrix[0] /= np.sqrt(2.0)
    return matrix


_DCT = _dct_matrix(_SAMPLE)


def grey_thumbnail(path: str | os.PathLike[str], size: int = _SAMPLE, centre: float = 1.0) -> np.ndarray:
    """Return a ``size`` x ``size`` float32 grey thumbnail of an image (JPEG decoded in draft mode).

    Args:
        path: The image file.
        size: The thumbnail's side.
        centre: The share of each side kept around the centre before shrinking (1.0: the whole image).

    Raises:
        DatasetError: When the file is missing or not a readable image.
    """
    try:
        with Image.open(path) as image:
            # draft() lets libjpeg decode at 1/2, 1/4 or 1/8 scale: enough pixels for a 32x32 thumbnail.
            image.draft("L", (size * 2, size * 2))
            grey = image.convert("L")
            if centre < 1.0:
                w, h = grey.size
                dx, dy = round(w * (1 - centre) / 2), round(h * (1 - centre) / 2)
                grey = grey.crop((dx, dy, w - dx, h - dy))
            grey = grey.resize((size, size), Image.Resampling.BOX)
            return np.asarray(grey, dtype=np.float32)
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise DatasetError(f"Cannot read image {os.fspath(path)} for duplicate detection: {error}") from error


def phash_array(grey: np.ndarray) -> np.uint64:
    """Return the 64-bit DCT perceptual hash of a 32x32 grey image.

    Bits are set where a low-frequency coefficient exceeds the median of the 8x8 block (DC excluded from
    the median so overall brightness does not move the threshold).
    """
    coefficients = _DCT @ grey.astype(np.float64) @ _DCT.T
    block = coefficients[:HASH_SIZE, :HASH_SIZE].ravel()
    bits = block > np.median(block[1:])
    return np.uint64(int(np.packbits(bits).view(">u8")[0]))


def phash(path: str | os.PathLike[str], centre: float = 1.0) -> np.uint64:
    """Return the 64-bit perceptual hash of the image file at ``path`` (of its central share ``centre``)."""
    return phash_array(grey_thumbnail(path, centre=centre))


def compute_hashes(paths: Sequence[str | os.PathLike[str]], *, workers: int = 2, centre: float = 1.0) -> np.ndarray:
    """Hash many images (threads: PIL releases the GIL while decoding).

    Args:
        paths: Image files.
        workers: Threads to use.
        centre: Hash only this central share of each side (:data:`DERMOSCOPY_CENTRE` for dermoscopy).

    Returns:
        ``uint64`` array of shape ``(len(paths),)``.

    Raises:
        DatasetError: When any file cannot be read (naming it).
    """
    if not paths:
        return np.zeros(0, dtype=np.uint64)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return np.fromiter(pool.map(lambda p: phash(p, centre), paths), dtype=np.uint64, count=len(paths))


def _bits(hashes: np.ndarray) -> np.ndarray:
    """Unpack ``uint64`` hashes into an ``(N, 64)`` 0/1 float32 matrix."""
    as_bytes = np.asarray(hashes, dtype=">u8").view(np.uint8).reshape(-1, 8)
    return np.unpackbits(as_bytes, axis=1).astype(np.float32)


def hamming_matrix(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Return pairwise Hamming distances between two sets of 64-bit hashes as an int matrix."""
    bits_a = _bits(a)
    bits_b = bits_a if b is None else _bits(b)
    # |a xor b| = |a| + |b| - 2 a.b, one matrix product instead of N^2 popcounts.
    dist = bits_a.sum(1)[:, None] + bits_b.sum(1)[None, :] - 2.0 * (bits_a @ bits_b.T)
    return np.rint(dist).astype(np.int16)


def close_pairs(hashes: np.ndarray, max_distance: int, *, chunk: int = 1024) -> np.ndarray:
    """Return the ``(i, j)`` index pairs (``i < j``) whose hashes differ in at most ``max_distance`` bits.

    Works in row chunks so memory stays at ``chunk x N`` (about 20 MB for 5,000 images).

    Returns:
        ``int64`` array of shape ``(P, 3)``: i, j and the distance.
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    n = len(hashes)
    bits = _bits(hashes)
    ones = bits.sum(1)
    found: list[np.ndarray] = []
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        dist = ones[start:stop, None] + ones[None, :] - 2.0 * (bits[start:stop] @ bits.T)
        rows, cols = np.nonzero(np.rint(dist) <= max_distance)
        rows = rows + start
        keep = rows < cols
        found.append(
            np.stack([rows[keep], cols[keep], np.rint(dist[rows[keep] - start, cols[keep]])], axis=1)
        )
    if not found:
        return np.zeros((0, 3), dtype=np.int64)
    return np.concatenate(found).astype(np.int64)


def _components(n: int, pairs: np.ndarray) -> np.ndarray:
    """Union-find over ``pairs``; returns the root index of each of ``n`` items."""
    parent = np.arange(n)

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    for i, j in pairs[:, :2]:
        ri, rj = find(int(i)), find(int(j))
        if ri != rj:
            # The lower index becomes the root so group ids follow input order deterministically.
            parent[max(ri, rj)] = min(ri, rj)
    return np.array([find(i) for i in range(n)])


def group_ids_from_hashes(
    hashes: np.ndarray, names: Sequence[str], max_distance: int = DEFAULT_MAX_DISTANCE
) -> list[str]:
    """Group items whose hashes are within ``max_distance`` bits; each group is named after its first item.

    Args:
        hashes: ``uint64`` hashes.
        names: One name per hash (e.g. file stems); a group's id is ``"dup:" + name of its first member``.
        max_distance: Largest Hamming distance (bits of 64) that still counts as a near-duplicate.

    Returns:
        One group id per item.
    """
    roots = _components(len(hashes), close_pairs(hashes, max_distance))
    return [f"dup:{names[r]}" for r in roots]


def near_duplicate_groups(
    paths: Sequence[str | os.PathLike[str]],
    max_distance: int = DEFAULT_MAX_DISTANCE,
    *,
    hashes: np.ndarray | None = None,
    workers: int = 2,
) -> list[str]:
    """Assign every image a near-duplicate group id.

    Images whose perceptual hashes differ in at most ``max_distance`` of 64 bits end up in one group,
    transitively (union-find). An image with no near-duplicate is a group of its own.

    Args:
        paths: Image files.
        max_distance: Hamming-distance threshold (see :data:`DEFAULT_MAX_DISTANCE` for how it was chosen).
        hashes: Precomputed hashes of ``paths`` (from :func:`compute_hashes`) to skip reading images.
        workers: Threads for hashing.

    Returns:
        One id per path, ``"dup:<stem of the group's first path>"``, in input order.

    Raises:
        DatasetError: When an image cannot be read.
    """
    if hashes is None:
        hashes = compute_hashes(paths, workers=workers)
    names = [Path(p).stem for p in paths]
    return group_ids_from_hashes(hashes, names, max_distance)


def duplicate_pairs(
    paths: Sequence[str | os.PathLike[str]],
    max_distance: int = DEFAULT_MAX_DISTANCE,
    *,
    hashes: np.ndarray | None = None,
) -> pd.DataFrame:
    """List near-duplicate pairs for a report.

    Returns:
        Columns ``path_a``, ``path_b``, ``distance``, sorted by distance.
    """
    if hashes is None:
        hashes = compute_hashes(paths)
    pairs = close_pairs(hashes, max_distance)
    as_str = [os.fspath(p) for p in paths]
    frame = pd.DataFrame(
        {
            "path_a": [as_str[i] for i in pairs[:, 0]],
            "path_b": [as_str[j] for j in pairs[:, 1]],
            "distance": pairs[:, 2].astype(int),
        }
    )
    return frame.sort_values(["distance", "path_a"], ignore_index=True)


def with_duplicate_groups(
    index: pd.DataFrame,
    max_distance: int = DEFAULT_MAX_DISTANCE,
    *,
    hashes: np.ndarray | None = None,
    workers: int = 2,
) -> pd.DataFrame:
    """Return a copy of an index whose ``group_id`` also joins near-duplicate images.

    Existing groups (lesion, patient) are kept and merged with near-duplicate groups transitively, so
    a split by ``group_id`` keeps both the same lesion and copies of the same photo on one side.
    Metadata-only rows keep their group.

    Args:
        index: A table from :func:`dermlib.data.load_index`.
        max_distance: Hamming-distance threshold.
        hashes: Precomputed hashes of ``index.image_path`` for rows with an image, in row order.
        workers: Threads for hashing.
    """
    out = index.copy()
    has_image = out["image_path"].notna().to_numpy()
    paths = out.loc[has_image, "image_path"].tolist()
    if hashes is None:
        hashes = compute_hashes(paths, workers=workers)
    n = len(out)
    rows = np.flatnonzero(has_image)
    pairs = close_pairs(hashes, max_distance)
    edges = [np.stack([rows[pairs[:, 0]], rows[pairs[:, 1]]], axis=1)]
    # Rows sharing an existing group id are joined too (chain each row to the first row of its group).
    codes, _ = pd.factorize(out["group_id"].fillna(pd.Series(range(n), index=out.index).astype(str)))
    first = pd.Series(np.arange(n)).groupby(codes).transform("min").to_numpy()
    edges.append(np.stack([first, np.arange(n)], axis=1)[first != np.arange(n)])
    roots = _components(n, np.concatenate(edges))
    original = out["group_id"].astype("string").fillna("").to_numpy(dtype=object)
    out["group_id"] = pd.array([original[r] for r in roots], dtype="string")
    return out
