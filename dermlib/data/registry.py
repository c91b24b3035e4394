"""The dataset registry: one dict by name feeds the page, the CLI choices and the tests."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from dermlib.data.adapters import (
    Adapter,
    DermNet,
    DermNetNZ,
    Fitzpatrick17k,
    Ham10000,
    ImageFolder,
    Isic2019,
    PadUfes20,
    Ph2,
)
from dermlib.data.combined import FITZ_DERMNET
from dermlib.data.files import list_subfolders, verify_images
from dermlib.errors import DatasetError

# Order matters for detect(): specific layouts first, the generic image folder last.
DATASETS: dict[str, Adapter] = {
    adapter.name: adapter
    for adapter in (FITZ_DERMNET, Fitzpatrick17k(), Ham10000(), PadUfes20(), Isic2019(), DermNetNZ(), Ph2(), DermNet(),
                    ImageFolder())
}


def get_adapter(name: str) -> Adapter:
    """Return the adapter registered as ``name``.

    Raises:
        DatasetError: When no adapter has that name (the message lists the known ones).
    """
    try:
        return DATASETS[name]
    except KeyError:
        raise DatasetError(f"Unknown dataset {name!r}; known: {', '.join(DATASETS)}.") from None


def detect(root: str | os.PathLike[str]) -> str | None:
    """Return the name of the first adapter that recognises the folder, or ``None``.

    Args:
        root: A dataset folder.
    """
    path = Path(root).expanduser()
    if not path.is_dir():
        return None
    for name, adapter in DATASETS.items():
        if adapter.detect(path):
            return name
    return None


def load_index(name: str | None, root: str | os.PathLike[str], *, verify: bool = False) -> pd.DataFrame:
    """Index the dataset in ``root`` with the adapter called ``name``.

    Args:
        name: A key of :data:`DATASETS`, or ``None`` to :func:`detect` it.
        root: The dataset folder.
        verify: Also open every image header and fail on unreadable files (slower; off by default).

    Returns:
        The standard index table (see :mod:`dermlib.data.schema`).

    Raises:
        DatasetError: Unknown name, undetectable or bad layout, or (with ``verify``) unreadable images.
    """
    if name is None:
        name = detect(root)
        if name is None:
            raise DatasetError(
                f"{root} does not look like any known dataset layout "
                f"({'; '.join(f'{a.title}: {a.layout}' for a in DATASETS.values())})."
            )
    index = get_adapter(name).load(root)
    if verify:
        verify_images(index["image_path"])
    return index


def discover(data_root: str | os.PathLike[str]) -> dict[str, tuple[Path, str]]:
    """Find datasets in a data root: the root itself and each of its immediate sub-folders.

    Args:
        data_root: A folder such as :func:`dermlib.config.data_root`.

    Returns:
        ``{folder name: (folder, adapter name)}`` for every sub-folder an adapter recognises, sorted by
        name; the root itself when no sub-folder is a dataset but the root is.
    """
    root = Path(data_root).expanduser()
    if not root.is_dir():
        return {}
    found: dict[str, tuple[Path, str]] = {}
    for folder in list_subfolders(root):
        name = detect(folder)
        if name is not None:
            found[folder.name] = (folder, name)
    if not found:
        # A data root may also be a single dataset itself.
        name = detect(root)
        if name is not None:
            found[root.name] = (root, name)
    return dict(sorted(found.items()))
