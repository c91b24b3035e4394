"""Checksums and verified safetensors reads, without torch (the command line's fast path needs them too)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(path: Path, sha256: str | None, what: str, remedy: str) -> str | None:
    """Check that a file exists and matches the SHA-256 a card records for it.

    Args:
        path: The file.
        sha256: The digest the card records (None: not checked).
        what: How messages name the file, e.g. ``"The weights file of model 'x'"``.
        remedy: What to do when the file is missing.

    Returns:
        The file's digest when it was computed (``sha256`` given), else None.

    Raises:
        ModelError: The file is missing or does not match the checksum.
    """
    from dermlib.errors import ModelError

    if not path.is_file():
        raise ModelError(f"{what} is missing ({path}). {remedy}")
    if not sha256:
        return None
    if file_sha256(path) != sha256:
        raise ModelError(f"{what} does not match the checksum in its card: it is damaged or was replaced. "
                         "Reinstall the model.")
    return sha256


def read_verified_safetensors(path: Path, sha256: str | None, what: str, remedy: str,
                              framework: str = "pt") -> dict[str, Any]:
    """Read a safetensors file after checking it against the SHA-256 a card records for it.

    Args:
        path: The file.
        sha256: The digest the card records (None: not checked).
        what: How messages name the file, e.g. ``"The weights file of model 'x'"``.
        remedy: What to do when the file is missing.
        framework: ``"pt"`` for torch tensors, ``"numpy"`` for arrays (no torch import).

    Raises:
        ModelError: The file is missing, does not match the checksum, or is not safetensors.
    """
    from safetensors import SafetensorError

    from dermlib.errors import ModelError

    check_file(path, sha256, what, remedy)
    try:
        if framework == "numpy":
            from safetensors.numpy import load_file as load_numpy

            return load_numpy(str(path))
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{what} is corrupt or not safetensors ({exc}).") from exc
