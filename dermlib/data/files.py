"""Listing image files quickly and opening them cheaply.

Adapters list each folder once (``os.scandir``) and never decode images; the helpers that do read pixels
(:func:`open_thumbnail`) use JPEG draft mode so a large photo is decoded at a fraction of its size.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from dermlib.errors import DatasetError

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".heic", ".heif"}
)


def is_image_name(name: str) -> bool:
    """Return whether a file name has an image extension (case-insensitive); hidden files never count."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def list_images(folder: Path) -> list[str]:
    """Return the absolute paths of the image files directly inside ``folder``, sorted by name.

    Args:
        folder: A directory.

    Returns:
        Paths as ``str`` (one ``scandir`` call; no file is opened).
    """
    with os.scandir(folder) as entries:
        paths = [e.path for e in entries if is_image_name(e.name) and e.is_file()]
    paths.sort()
    return [os.path.abspath(p) for p in paths]


def list_subfolders(folder: Path) -> list[Path]:
    """Return the non-hidden sub-directories of ``folder``, sorted by name."""
    with os.scandir(folder) as entries:
        dirs = [Path(e.path) for e in entries if e.is_dir() and not e.name.startswith((".", "_"))]
    return sorted(dirs, key=lambda p: p.name)


def images_by_stem(root: Path, max_depth: int = 3) -> dict[str, str]:
    """Map file stem -> absolute path for every image under ``root`` (down to ``max_depth`` levels).

    CSV-described datasets name images by id without (or with a wrong) extension, so they are matched on
    the stem. When two files share a stem the first in sorted order wins, which keeps results stable.

    Args:
        root: Folder to search.
        max_depth: How many folder levels below ``root`` to descend.

    Returns:
        A dict from stem (file name without extension) to absolute path.
    """
    found: dict[str, str] = {}
    stack: list[tuple[str, int]] = [(os.path.abspath(root), 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            with os.scandir(folder) as entries:
                items = sorted(entries, key=lambda e: e.name)
        except OSError:
            continue
        for entry in items:
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                if depth < max_depth:
                    stack.append((entry.path, depth + 1))
            elif is_image_name(entry.name):
                found.setdefault(os.path.splitext(entry.name)[0], entry.path)
    return found


def verify_images(paths: Iterable[str | None]) -> None:
    """Check that every image file exists, is non-empty and has a readable image header.

    Only the header is parsed (PIL opens lazily), so this is cheap compared with decoding.

    Args:
        paths: Image paths; ``None`` entries (metadata-only rows) are skipped.

    Raises:
        DatasetError: Listing up to ten unreadable files and how many there are in all.
    """
    bad: list[str] = []
    for path in paths:
        if path is None:
            continue
        try:
            if os.path.getsize(path) == 0:
                raise OSError("empty file")
            with Image.open(path) as image:
                image.size  # noqa: B018 - touching the header is the check
        except (OSError, UnidentifiedImageError, ValueError) as error:
            bad.append(f"{path} ({error.__class__.__name__}: {error})")
    if bad:
        shown = "\n  ".join(bad[:10])
        raise DatasetError(f"{len(bad)} image file(s) cannot be read:\n  {shown}")


def open_thumbnail(path: str | os.PathLike[str], size: int = 256) -> Image.Image:
    """Open an image as an RGB thumbnail whose longer side is at most ``size`` pixels.

    JPEGs are decoded in draft mode (DCT scaling), so a 4000-pixel photo costs about as much as a
    500-pixel one.

    Args:
        path: Image file.
        size: Longest side of the result in pixels.

    Returns:
        A loaded RGB ``PIL.Image``.

    Raises:
        DatasetError: When the file is missing or not a readable image.
    """
    try:
        with Image.open(path) as image:
            image.draft("RGB", (size, size))
            image = image.convert("RGB")
            image.thumbnail((size, size))
            return image
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise DatasetError(f"Cannot read image {os.fspath(path)}: {error}") from error
