"""How many model computations may run at once in this process (torch-free: the command line's fast
path and the scope check take the same slots as the torch models)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

#: How many model computations may run at once in this process (0: no limit). See :func:`inference_slot`.
INFERENCE_SLOTS_ENV = "DERMLENS_INFERENCE_SLOTS"
_slots_lock = threading.Lock()
_slots: tuple[int, threading.BoundedSemaphore | None] | None = None
_depth = threading.local()


def _semaphore() -> threading.BoundedSemaphore | None:
    global _slots
    raw = os.environ.get(INFERENCE_SLOTS_ENV, "0").strip() or "0"
    try:
        wanted = max(0, int(raw))
    except ValueError:
        wanted = 0
    with _slots_lock:
        if _slots is None or _slots[0] != wanted:
            _slots = (wanted, threading.BoundedSemaphore(wanted) if wanted else None)
        return _slots[1]


@contextlib.contextmanager
def inference_slot() -> Iterator[None]:
    """Hold one of the process's inference slots while a model computes.

    Each torch call already uses every core; several sessions computing at once on a small CPU server
    only thrash the caches and the OpenMP pools. ``DERMLENS_INFERENCE_SLOTS=N`` lets N computations run
    at once and queues the rest (0, the default, means no limit). Re-entrant within a thread.
    """
    depth = getattr(_depth, "value", 0)
    gate = _semaphore() if depth == 0 else None
    if gate is not None:
        gate.acquire()
    _depth.value = depth + 1
    try:
        yield
    finally:
        _depth.value = depth
        if gate is not None:
            gate.release()
