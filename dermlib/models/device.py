"""Choose where a model runs: CUDA, then Apple MPS, then the CPU; overridable."""

from __future__ import annotations

import os

import torch

DEVICE_ENV = "DERMLENS_DEVICE"


def select_device(preferred: str | torch.device | None = None) -> torch.device:
    """Return the device to run on.

    Args:
        preferred: ``"cuda"``, ``"cuda:1"``, ``"mps"``, ``"cpu"`` or ``"auto"``; when None, the
            ``DERMLENS_DEVICE`` environment variable, else ``"auto"``.

    Returns:
        The requested device when it is available, else the best available one (a requested but
        missing accelerator falls back to the CPU rather than failing).
    """
    choice = str(preferred or os.environ.get(DEVICE_ENV) or "auto").lower()
    if choice.startswith("cuda"):
        return torch.device(choice) if torch.cuda.is_available() else torch.device("cpu")
    if choice == "mps":
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())
