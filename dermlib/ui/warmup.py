"""Warm the server up in the background once the Diagnose page is on screen.

grad-cam (and the matplotlib it imports, which writes its font cache on a first run) costs seconds to
import, and the ONNX Runtime export of the prediction's network 1-8 s. Neither may delay the first page:
importing an extension module such as torch holds the interpreter lock, so a thread importing it beside
the first script run starved the server's event loop and the first page took 7.8 s instead of 3.1 s
(`benchmarks/load_test.py`, 2 cores). So the Diagnose page calls :func:`warm_up` after its uploader is
drawn and its model loaded: the imports and the export then run while the user picks a photo. The command
line imports grad-cam only when a map is drawn. ``DERMLENS_BACKGROUND_IMPORTS=0`` turns it off.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from typing import Any

logger = logging.getLogger(__name__)

_started = threading.Event()
MODULES = ("dermlib.explain.engine",)


def _import_all() -> None:
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # an import that fails here fails again, with its message, where it is used
            logger.exception("Background import of %s failed", name)


def enabled() -> bool:
    """False when ``DERMLENS_BACKGROUND_IMPORTS=0``."""
    return os.environ.get("DERMLENS_BACKGROUND_IMPORTS", "1") != "0"


def start_background_imports() -> threading.Thread | None:
    """Start the imports in a daemon thread the first time; later calls do nothing and return None."""
    if _started.is_set() or not enabled():
        return None
    _started.set()
    thread = threading.Thread(target=_import_all, name="dermlens-warmup", daemon=True)
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
    start_background_imports()
    try:
        loaded.fast_forward(wait=False)
    except Exception:  # the first prediction tries again and reports what goes wrong
        logger.exception("Background ONNX export failed to start")
