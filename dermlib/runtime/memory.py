"""Handing freed memory back to the system after a rare, large, transient allocation.

The server runs with glibc's default malloc settings, so memory freed by a large one-off job (an ONNX
export of a six-network ensemble, a batch of masked images for Score-CAM, the faithfulness check's batch)
stays in the process as free heap pages, and each thread that did such a job keeps its own arena of them.
Measured on the 4-session tour of every page (``benchmarks/bench_pages.py``): the peak varied between 2.0
and 2.5 GB from run to run with the same code, depending on which thread's arena was holding what when
the next job started. ``malloc_trim(0)`` returns every arena's free pages; it takes a few milliseconds, so
it is called after such jobs only, never per prediction.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc


def release_freed_memory() -> None:
    """Collect garbage and return free heap pages to the system (glibc only; a no-op elsewhere)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
