"""How many CPU threads inference may use: the CPUs this process can really run on, not the machine's.

``os.cpu_count()`` reports the host's cores. A container (Streamlit Community Cloud grants a fraction of
a core to two cores) is limited by its CPU affinity mask and by the cgroup CPU quota; more torch threads
than that leaves OpenMP threads waiting for each other, and a prediction that takes 40 ms with one
thread took 10 s with two on a two-core machine whose other core was busy. The count used is::

    DERMLENS_THREADS  else  OMP_NUM_THREADS  else  max(1, floor(min(affinity CPUs, cgroup quota)))

Only the intra-op pool of torch is set; the scope check's ONNX Runtime session runs one thread of its own.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

THREADS_ENV = "DERMLENS_THREADS"
#: ``1`` (default where at least two CPUs are usable): the scope check of a single photo runs in a worker
#: thread while the classifier computes (:func:`dermlib.scope.checker.start_check`); ``0``: after it.
SCOPE_PARALLEL_ENV = "DERMLENS_SCOPE_PARALLEL"
_CGROUP_ROOT = Path("/sys/fs/cgroup")

_configured: int | None = None


def affinity_cpus() -> int:
    """CPUs in this process's affinity mask (``os.cpu_count()`` where the platform has no mask)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cgroup_cpu_quota(root: Path = _CGROUP_ROOT) -> float | None:
    """The cgroup CPU quota in CPUs (e.g. 0.5 or 2.0), or None when there is no limit.

    Reads cgroup v2's ``cpu.max`` (``"<quota> <period>"`` or ``"max <period>"``), else cgroup v1's
    ``cpu/cpu.cfs_quota_us`` and ``cpu/cpu.cfs_period_us`` (quota -1: no limit).

    Args:
        root: The cgroup file-system mount (a test passes a temporary folder laid out the same way).
    """
    try:
        text = (root / "cpu.max").read_text().split()
        if len(text) == 2 and text[0] != "max":
            return max(float(text[0]) / float(text[1]), 0.0) or None
        if text:
            return None
    except (OSError, ValueError, ZeroDivisionError):
        pass
    try:
        quota = float((root / "cpu" / "cpu.cfs_quota_us").read_text().strip())
        period = float((root / "cpu" / "cpu.cfs_period_us").read_text().strip())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError, ZeroDivisionError):
        return None


def usable_cpus(root: Path = _CGROUP_ROOT) -> float:
    """The CPU capacity this process can use: the affinity count, capped by the cgroup quota."""
    cpus = float(affinity_cpus())
    quota = cgroup_cpu_quota(root)
    return min(cpus, quota) if quota else cpus


def _explicit_threads() -> int | None:
    """The count set in ``DERMLENS_THREADS``, else ``OMP_NUM_THREADS``; None when neither is set.

    Raises:
        ValueError: One of the two variables is set but not a positive integer.
    """
    for name in (THREADS_ENV, "OMP_NUM_THREADS"):
        raw = os.environ.get(name, "").strip()
        if not raw:
            continue
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value < 1:
            raise ValueError(f"{name} must be a positive whole number of threads, got {raw!r}.")
        return value
    return None


def default_threads(root: Path = _CGROUP_ROOT) -> int:
    """Threads for inference: ``DERMLENS_THREADS``, else ``OMP_NUM_THREADS``, else the usable whole CPUs.

    Raises:
        ValueError: One of the two variables is set but not a positive integer.
    """
    return _explicit_threads() or max(1, math.floor(usable_cpus(root)))


def scope_check_beside(root: Path = _CGROUP_ROOT) -> bool:
    """Whether the scope check of one photo runs beside the classifier: ``DERMLENS_SCOPE_PARALLEL``, else
    whenever at least two CPUs are usable."""
    raw = os.environ.get(SCOPE_PARALLEL_ENV, "").strip()
    if raw:
        return raw not in ("0", "false", "no", "off")
    return usable_cpus(root) >= 2


def prediction_threads(root: Path = _CGROUP_ROOT) -> int:
    """Threads of the prediction's exported graph (:mod:`dermlib.models.fast`).

    :func:`default_threads`, less the CPU that the scope check takes when it runs beside the classifier:
    on 2 cores, with the check beside it, one diagnosis took 57 ms p50 / 67 ms p95 with a one-thread
    graph against 67 / 148 ms with two (2026-12-06), because two threads on two busy cores wait for each
    other at every layer. A count set in ``DERMLENS_THREADS`` or ``OMP_NUM_THREADS`` is used as it is.
    """
    explicit = _explicit_threads()
    if explicit:
        return explicit
    total = default_threads(root)
    return max(1, total - 1) if scope_check_beside(root) else total


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op thread count once per process (later calls only report it).

    A benchmark or a test that wants another count calls ``torch.set_num_threads`` itself afterwards.

    Args:
        threads: The count to use the first time (default: :func:`default_threads`).

    Returns:
        The count in effect.
    """
    global _configured
    import torch

    if _configured is None:
        _configured = int(threads or default_threads())
        if torch.get_num_threads() != _configured:
            torch.set_num_threads(_configured)
    return torch.get_num_threads()
