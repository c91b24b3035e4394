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
import os
import sys
import threading

#: ``DERMLENS_GC_FREEZE=0`` turns :func:`freeze_long_lived` off.
FREEZE_ENV = "DERMLENS_GC_FREEZE"

_freeze_lock = threading.Lock()
_modules_when_frozen = 0


def release_freed_memory() -> None:
    """Collect garbage and return free heap pages to the system (glibc only; a no-op elsewhere)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def freeze_long_lived(force: bool = False) -> bool:
    """Move the objects of every module imported so far out of reach of the cyclic garbage collector.

    A full collection visits every tracked object, and a server that has imported torch, timm, grad-cam,
    plotly and Streamlit holds a great many that live as long as the process. Streamlit collects fully after
    every script run (``runner.postScriptGC``), and the Diagnose page reruns twice per upload (the uploader
    first clears the previous file): each collection took 0.35-0.40 s on 2 cores, while the server could
    read no message, which was most of an upload's time to result (docs/RELIABILITY.md). After a collection,
    :func:`gc.freeze` moves every surviving object to the permanent generation, which later collections skip.

    It acts only when modules were imported since the last time (or when ``force`` is set), so it costs one
    collection per batch of new imports, a handful per process. Objects that are alive at that moment stay
    out of later collections: one that becomes part of an unreachable cycle afterwards is not freed. That is
    why it runs between script runs, when what is alive is mostly module state.

    Args:
        force: Collect and freeze even if no module was imported since the last time.

    Returns:
        True when it collected and froze.
    """
    global _modules_when_frozen
    if os.environ.get(FREEZE_ENV, "1") == "0":
        return False
    with _freeze_lock:
        modules = len(sys.modules)
        if not force and modules <= _modules_when_frozen:
            return False
        gc.collect()
        gc.freeze()
        _modules_when_frozen = modules
    return True


#: ``DERMLENS_ALLOW_TRITON=1`` lets the server import Triton after all (see :func:`keep_triton_out`).
TRITON_ENV = "DERMLENS_ALLOW_TRITON"


def keep_triton_out() -> bool:
    """Stop torch from importing Triton, the GPU kernel compiler, in this process.

    torch 2.14 imports Triton as it is itself imported (a CUDA kernel of its own registers a Triton
    version), and so maps 96 MB of Triton's native library into every process, GPU or not. The app never
    compiles a kernel: it runs its networks through ONNX Runtime, and through torch's eager operators for
    the heatmaps. Measured in a fresh virtual environment (docs/RELIABILITY.md): importing torch, timm and
    Streamlit takes 863 MB instead of 964 MB without Triton, and torch falls back to its other kernels, as it
    does on any machine where Triton is not installed.

    It must run before torch is first imported; afterwards it changes nothing. The command line and the
    training code do not call it. ``DERMLENS_ALLOW_TRITON=1`` turns it off.

    Returns:
        True when Triton is kept out; False when it was already imported or the variable allows it.
    """
    if os.environ.get(TRITON_ENV, "0") == "1" or sys.modules.get("triton") is not None:
        return False
    # A None entry makes every later `import triton` raise ImportError, which torch treats as "not installed".
    sys.modules["triton"] = None  # type: ignore[assignment]
    return True
