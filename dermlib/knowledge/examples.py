"""Example photos for a Disease Library entry, read from the datasets installed under the data root.

Nothing is copied into the repository: the photos are found at run time through the dataset adapters
(``dermlib.data``) and shown with their source credited. Typical use::

    from dermlib.knowledge import load_knowledge_base
    from dermlib.knowledge.examples import example_photos, photo_credits, thumbnail

    photos = example_photos(load_knowledge_base().get("acne"))     # [] when no dataset holds it
    [p.skin_type for p in photos]       # e.g. ['Fitzpatrick I', 'Fitzpatrick III', 'Fitzpatrick V', ...]
    photo_credits(photos)               # 'Photos: Fitzpatrick17k (Groh et al., CVPR 2021), CC BY-NC-SA 3.0'
    thumbnail(photos[0])                # a PIL image, longest side 256 px

How photos are chosen: every photo on disk whose dataset label maps to the entry
(``Condition.dataset_label_pairs``) is a candidate; candidates are ordered by a hash of the seed and the
file name (deterministic, and independent of where the data root is mounted); photos with a recorded
skin type come first, taken round-robin over the Fitzpatrick groups V-VI, III-IV and I-II, so that dark
skin is shown wherever the data has it; photos without a skin type fill the remaining places, alternating
between datasets. One photo per lesion group (near-duplicates share a ``group_id``), none of the DermNet
NZ photos listed as copies of another set's, and files that do not decode are skipped.
"""

from __future__ import annotations

import functools
import io
import os
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PIL import Image

from dermlib import config
from dermlib.errors import DermLensError, ImageError
from dermlib.images import load_image
from dermlib.knowledge.base import Condition
from dermlib.knowledge.labels import dataset_display_name, normalise_dataset, normalise_label

#: Example photos shown per entry by default.
DEFAULT_COUNT = 4
#: Longest side of a thumbnail, in pixels.
THUMBNAIL_SIZE = 256
#: Fitzpatrick groups in the order photos are drawn from them: darkest first, because it is the rarest.
SKIN_TYPE_GROUPS: tuple[tuple[int, ...], ...] = ((5, 6), (3, 4), (1, 2))
#: What a photo without a recorded skin type says instead of one.
SKIN_TYPE_NOT_RECORDED = "skin type not recorded"
_ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI"}
# Undecodable files tolerated per call before giving up on the rest (a broken copy of a dataset).
_MAX_BAD_FILES = 16

#: Source and licence of each dataset's photos, by adapter name, as ``../shared/data/README.md`` gives them.
DATASET_CREDITS: dict[str, str] = {
    "fitzpatrick17k": (
        "Fitzpatrick17k (Groh et al., CVPR 2021; DermaAmin and Atlas Dermatologico atlases), CC BY-NC-SA 3.0"
    ),
    "dermnet-nz": "DermNet NZ images © DermNet (dermnetnz.org), non-commercial research and teaching use only",
    "dermnet": "DermNet NZ images © DermNet (dermnetnz.org), non-commercial research and teaching use only",
    "ham10000": "HAM10000 (Tschandl et al., Sci Data 2018), CC BY-NC-SA 4.0",
    "pad-ufes-20": "PAD-UFES-20 (Pacheco et al., Data in Brief 2020), CC BY 4.0",
    "isic2019": "ISIC 2019 challenge (ISIC archive), CC BY-NC 4.0",
}


@dataclass(frozen=True)
class ExamplePhoto:
    """One example photo of a condition, with what a page must show beside it.

    Attributes:
        path: The image file under the data root (read at run time, never copied).
        dataset: The adapter name of its dataset (``"fitzpatrick17k"``).
        dataset_title: The dataset's display name (``"Fitzpatrick17k"``).
        credit: The dataset's source and licence, to credit wherever the photo is shown.
        skin_type: ``"Fitzpatrick V"`` (I-VI notation) or ``"skin type not recorded"``.
        label: The dataset's own label of the photo (``"acne-vulgaris"``).
        fitzpatrick: The Fitzpatrick type 1-6, or None when the dataset records none.
    """

    path: Path
    dataset: str
    dataset_title: str
    credit: str
    skin_type: str
    label: str
    fitzpatrick: int | None = None


def skin_type_label(fitzpatrick: object) -> str:
    """Write a Fitzpatrick type 1-6 in I-VI notation (``"Fitzpatrick V"``); anything else is "not recorded"."""
    try:
        value = int(fitzpatrick)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return SKIN_TYPE_NOT_RECORDED
    return f"Fitzpatrick {_ROMAN[value]}" if value in _ROMAN else SKIN_TYPE_NOT_RECORDED


def dataset_credit(dataset: str) -> str:
    """Return the credit line of a dataset (its display name when no credit is on record)."""
    key = normalise_dataset(dataset)
    for name, credit in DATASET_CREDITS.items():
        if normalise_dataset(name) == key:
            return credit
    return dataset_display_name(dataset)


def photo_credits(photos: Iterable[ExamplePhoto]) -> str:
    """One line crediting the sources of these photos (``"Photos: A; B"``), empty when there are none."""
    credits = list(dict.fromkeys(photo.credit for photo in photos))
    return "Photos: " + "; ".join(credits) if credits else ""


def default_data_root() -> Path | None:
    """The data root the Disease Library reads photos from when none is given.

    ``DERMLENS_DATA_ROOT`` when it is set (even to an empty folder: then no photos); otherwise the app's
    ``data/`` folder, or ``../shared/data`` (development and CI) when ``data/`` holds no dataset, as the
    Dataset Explorer opens on it.
    """
    root = config.data_root()
    if os.environ.get(config.DATA_ROOT_ENV) or _discover(str(root)):
        return root
    return config.shared_data_root()


def _discover(root: str) -> dict[str, tuple[Path, str]]:
    from dermlib.data import discover  # lazy: importing this module stays cheap

    try:
        return discover(root)
    except (DermLensError, OSError):
        return {}


@functools.lru_cache(maxsize=8)
def _photo_index(adapter: str, folder: str) -> pd.DataFrame:
    """The photos on disk of one dataset: path, label slug, skin type, group (a few columns, cached).

    A dataset that cannot be indexed contributes no photos; the empty answer is cached like any other.
    """
    from dermlib.data import get_adapter, load_index

    columns = ["image_path", "label", "fitzpatrick", "group_id"]
    try:
        index = load_index(adapter, folder)
        copies = getattr(get_adapter(adapter), "copies", None)
        dropped = copies(folder) if callable(copies) else set()
    except (DermLensError, OSError, ValueError):
        return pd.DataFrame({c: [] for c in columns})
    index = index.loc[index["image_path"].notna(), columns]
    if dropped:  # DermNet NZ photos that are (cropped) copies of another set's: never show one twice
        stems = index["image_path"].map(lambda p: Path(p).stem)
        index = index[~stems.isin(dropped)]
    labels = index["label"].astype(str)
    slugs = dict(zip(labels.unique(), map(normalise_label, labels.unique()), strict=True))
    return pd.DataFrame(
        {
            "image_path": index["image_path"].to_numpy(dtype=object),
            "label": labels.to_numpy(dtype=object),
            "slug": labels.map(slugs).to_numpy(dtype=object),
            "fitzpatrick": index["fitzpatrick"].to_numpy(dtype=object),
            "group_id": index["group_id"].astype(str).to_numpy(dtype=object),
        }
    )


@functools.lru_cache(maxsize=1024)
def _decodes(path: str) -> bool:
    """Whether the file decodes as an image (at thumbnail size; the answer is remembered per path)."""
    try:
        load_image(path, max_side=THUMBNAIL_SIZE)
    except ImageError:
        return False
    return True


def clear_example_caches() -> None:
    """Forget the cached dataset indexes, decode checks and choices (after changing a dataset's files)."""
    _photo_index.cache_clear()
    _decodes.cache_clear()
    _choose.cache_clear()


def _order_key(seed: int, dataset: str, path: str) -> int:
    # The file name, not the full path: the same photos whatever folder the data root is mounted at.
    return zlib.crc32(f"{seed}\0{dataset}\0{os.path.basename(path)}".encode())


_Candidate = tuple[tuple[str, str], ExamplePhoto]  # ((dataset, lesion group), photo)


def _interleave(streams: Sequence[Iterator[_Candidate]]) -> Iterator[_Candidate]:
    """Round-robin over several iterators until all are exhausted."""
    live = list(streams)
    while live:
        for stream in list(live):
            item = next(stream, None)
            if item is None:
                live.remove(stream)
            else:
                yield item


def _candidates(condition: Condition, datasets: Sequence[tuple[str, str]], seed: int) -> list[pd.DataFrame]:
    """The candidate rows of each installed dataset that labels the condition, in drawing order."""
    wanted: dict[str, set[str]] = {}
    for dataset, label in condition.dataset_label_pairs:
        wanted.setdefault(normalise_dataset(dataset), set()).add(normalise_label(label))
    frames = []
    for folder, adapter in datasets:
        labels = wanted.get(normalise_dataset(adapter))
        if not labels:
            continue
        rows = _photo_index(adapter, folder)
        rows = rows[rows["slug"].isin(labels)]
        if rows.empty:
            continue
        order = [_order_key(seed, adapter, p) for p in rows["image_path"]]
        rows = rows.assign(dataset=adapter, order=order).sort_values(["order", "image_path"], kind="stable")
        frames.append(rows)
    return frames


def _stream(rows: pd.DataFrame) -> Iterator[_Candidate]:
    columns = ["image_path", "label", "fitzpatrick", "group_id", "dataset"]
    for path, label, fitzpatrick, group, dataset in rows[columns].itertuples(index=False):
        known = None if pd.isna(fitzpatrick) else int(fitzpatrick)
        photo = ExamplePhoto(
            path=Path(path),
            dataset=dataset,
            dataset_title=dataset_display_name(dataset),
            credit=dataset_credit(dataset),
            skin_type=skin_type_label(known),
            label=str(label),
            fitzpatrick=known,
        )
        yield (dataset, group), photo


def example_photos(
    condition: Condition, data_root: str | os.PathLike[str] | None = None, n: int = DEFAULT_COUNT, seed: int = 0
) -> list[ExamplePhoto]:
    """Choose up to ``n`` example photos of a condition from the datasets installed under a data root.

    The choice is deterministic for a given seed and set of files (see the module docstring): photos with
    a recorded skin type first, spread round-robin over Fitzpatrick V-VI, III-IV and I-II; then photos
    without one, alternating between datasets; one photo per lesion group; undecodable files skipped.
    The answer is sorted by skin type (I to VI, unrecorded last). Dataset indexes (8 datasets) and choices
    (64) are cached in-process, so only the first call for a dataset pays for indexing it;
    :func:`clear_example_caches` forgets them. Problems with the data (no root, an unreadable dataset,
    corrupt files) mean fewer photos, never an exception.

    Args:
        condition: The Disease Library entry.
        data_root: A folder of datasets (or one dataset); None for :func:`default_data_root`.
        n: The most photos to return.
        seed: Changes which photos are drawn, not how they are spread.

    Returns:
        The photos; empty when no installed dataset holds the condition, or there is no data root.
    """
    root = Path(data_root) if data_root is not None else default_data_root()
    if root is None or n <= 0 or not root.is_dir():
        return []
    # Listing the data root is cheap (milliseconds) and keeps a newly installed dataset visible; the
    # choice itself is remembered per set of datasets.
    datasets = tuple(sorted((str(folder), adapter) for folder, adapter in _discover(str(root)).values()))
    return list(_choose(condition, datasets, n, seed)) if datasets else []


@functools.lru_cache(maxsize=64)
def _choose(condition: Condition, datasets: tuple[tuple[str, str], ...], n: int, seed: int) -> tuple[ExamplePhoto, ...]:
    """The photos :func:`example_photos` returns, for the datasets found (cached: a few paths each)."""
    frames = _candidates(condition, datasets, seed)
    by_skin_type = [
        _interleave([_stream(f[f["fitzpatrick"].isin(types)]) for f in frames]) for types in SKIN_TYPE_GROUPS
    ]
    unrecorded = _interleave([_stream(f[f["fitzpatrick"].isna()]) for f in frames])

    chosen: list[ExamplePhoto] = []
    seen_groups: set[tuple[str, str]] = set()
    bad = 0

    def take(stream: Iterator[_Candidate]) -> ExamplePhoto | None:
        nonlocal bad
        for group, photo in stream:
            if group in seen_groups:
                continue
            if bad >= _MAX_BAD_FILES:
                return None
            if not _decodes(str(photo.path)):
                bad += 1
                continue
            seen_groups.add(group)
            return photo
        return None

    live = list(by_skin_type)
    while live and len(chosen) < n:
        for stream in list(live):
            photo = take(stream)
            if photo is None:
                live.remove(stream)
                continue
            chosen.append(photo)
            if len(chosen) == n:
                break
    while len(chosen) < n and (photo := take(unrecorded)) is not None:
        chosen.append(photo)
    chosen.sort(key=lambda p: (p.fitzpatrick is None, p.fitzpatrick or 0))
    return tuple(chosen)


def thumbnail(photo: ExamplePhoto | str | os.PathLike[str], size: int = THUMBNAIL_SIZE) -> Image.Image:
    """Decode a photo straight to a small RGB image (longest side ``size``; JPEGs decode at reduced scale).

    Raises:
        ImageError: When the file is missing, corrupt or not an image.
    """
    path = photo.path if isinstance(photo, ExamplePhoto) else Path(photo)
    return load_image(path, max_side=size)


def thumbnail_jpeg(
    photo: ExamplePhoto | str | os.PathLike[str], size: int = THUMBNAIL_SIZE, quality: int = 85
) -> bytes:
    """The :func:`thumbnail` as JPEG bytes (a few tens of KB: what a page caches instead of pixels).

    Raises:
        ImageError: When the file is missing, corrupt or not an image.
    """
    buffer = io.BytesIO()
    thumbnail(photo, size).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
