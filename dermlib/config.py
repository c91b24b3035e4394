"""Where DermLens finds its weights and data.

Both locations can be overridden with environment variables so that a deployment (or a test) can
point the app elsewhere without code changes:

* ``DERMLENS_WEIGHTS_DIR``: folder of model folders (default: ``weights/`` in the repository; for a
  ``pip install``-ed dermlib, which has no repository around it, ``weights/`` in the working directory).
* ``DERMLENS_DATA_ROOT``: folder holding datasets (default: ``data/`` in the repository).
* ``DERMLENS_OFFER_ALL_MODELS``: ``1`` offers every installed model on the Diagnose page, also those whose card
  keeps them out of it (the benchmark ensembles, too heavy for a shared demo server).
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

WEIGHTS_ENV = "DERMLENS_WEIGHTS_DIR"
DATA_ROOT_ENV = "DERMLENS_DATA_ROOT"
OFFER_ALL_ENV = "DERMLENS_OFFER_ALL_MODELS"


def weights_dir() -> Path:
    """Return the folder that holds one sub-folder per installed model."""
    if os.environ.get(WEIGHTS_ENV):
        return Path(os.environ[WEIGHTS_ENV])
    repository = PROJECT_ROOT / "weights"
    return repository if repository.is_dir() else Path.cwd() / "weights"


def offer_all_models() -> bool:
    """Whether ``DERMLENS_OFFER_ALL_MODELS`` asks the Diagnose page to offer every installed model."""
    return os.environ.get(OFFER_ALL_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def env_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    """The value of environment variable ``name`` (trimmed, lower case), or ``default`` when it is unset.

    Raises:
        ValueError: The variable holds something other than one of ``choices``.
    """
    value = (os.environ.get(name) or default).strip().lower()
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}.")
    return value


def data_root() -> Path:
    """Return the configured data root (it may not exist on a fresh clone)."""
    return Path(os.environ.get(DATA_ROOT_ENV) or PROJECT_ROOT / "data")


def shared_data_root() -> Path | None:
    """Return ``../shared/data`` beside the repository when present (development and CI only)."""
    candidate = PROJECT_ROOT.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None
