"""Warm the server up in the background once the Diagnose page is on screen.

grad-cam (and the matplotlib it imports, which writes its font cache on a first run) costs seconds to
import, and the ONNX Runtime export of the prediction's network 1-8 s. Neither may delay the first page:
importing an extension module such as torch holds the interpreter lock, so a thread importing it beside
the first script run starved the server's event loop and the first page took 7.8 s instead of 3.1 s
(`benchmarks/load_test.py`, 2 cores). So the Diagnose page calls :func:`warm_up` after its uploader is
drawn and its model loaded: the imports and the export then run while the user picks a photo. The command
line imports grad-cam only when a map is drawn. ``DERMLENS_BACKGROUND_IMPORTS=0`` turns it off.

When the imports are done, the thread freezes what they left behind (:func:`freeze_after_run`), so that
Streamlit's collection after every script run stops walking it; the page's own end-of-run freeze waits
for the thread, so the first page is not held up by a collection.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import threading
from typing import Any

logger = logging.getLogger(__name__)

_started = threading.Event()
_finished = threading.Event()
# grad-cam for the heatmaps, plotly for the result's charts: both are first needed by the first upload.
MODULES = ("dermlib.explain.engine", "dermlib.viz.prediction_charts")


def _import_all(loaded: Any = None) -> None:
    from dermlib.runtime.memory import freeze_long_lived

    try:
        for name in MODULES:
            try:
                importlib.import_module(name)
            except Exception:  # an import that fails here fails again, with its message, where it is used
                logger.exception("Background import of %s failed", name)
        if loaded is not None:
            # Freeze after the export too: what is alive in a running export would never be collected.
            with contextlib.suppress(Exception):  # a failed export is reported by the first prediction
                loaded.fast_forward(wait=True)
        freeze_long_lived()
    finally:
        _finished.set()


def freeze_after_run() -> bool:
    """At the end of a script run: freeze the objects of newly imported modules, unless the warm-up is still
    importing (it freezes when it is done).

    Returns:
        True when it collected and froze (see :func:`dermlib.runtime.memory.freeze_long_lived`).
    """
    from dermlib.runtime.memory import freeze_long_lived

    if _started.is_set() and not _finished.is_set():
        return False
    return freeze_long_lived()


def enabled() -> bool:
    """False when ``DERMLENS_BACKGROUND_IMPORTS=0``."""
    return os.environ.get("DERMLENS_BACKGROUND_IMPORTS", "1") != "0"


def start_background_imports(loaded: Any = None) -> threading.Thread | None:
    """Start the imports in a daemon thread the first time; later calls do nothing and return None.

    Args:
        loaded: A model whose ONNX export the thread waits for before it freezes (optional).
    """
    if _started.is_set() or not enabled():
        return None
    _started.set()
    thread = threading.Thread(target=_import_all, args=(loaded,), name="dermlens-warmup", daemon=True)
    thread.start()
    return thread


def warm_up(loaded: Any) -> None:
    """Start the explanation imports (once per process) and the model's ONNX export (once per model).

    Args:
        loaded: A :class:`dermlib.models.LoadedModel`; its export starts in the background where it uses
            ONNX Runtime (on a CPU), and is a no-op where it already ran or does not apply.
    """
    if not enabled():
        return
    try:
        loaded.fast_forward(wait=False)
    except Exception:  # the first prediction tries again and reports what goes wrong
        logger.exception("Background ONNX export failed to start")
    start_background_imports(loaded)
