"""Import the heavy explanation stack in the background once per server process.

grad-cam (and the matplotlib it imports, which writes its font cache on a first run) costs seconds to
import. The command line imports it only when a map is drawn; the app starts the import in a daemon
thread as soon as the server runs its first script, so the first page is drawn without waiting for it,
the first heatmap does not pay for it either, and no cache file is written while a user's upload is
being handled (the privacy test watches for writes during an upload). ``DERMLENS_BACKGROUND_IMPORTS=0``
turns it off.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading

logger = logging.getLogger(__name__)

_started = threading.Event()
MODULES = ("dermlib.explain.engine",)


def _import_all() -> None:
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # an import that fails here fails again, with its message, where it is used
            logger.exception("Background import of %s failed", name)


def start_background_imports() -> threading.Thread | None:
    """Start the imports in a daemon thread the first time; later calls do nothing and return None."""
    if _started.is_set() or os.environ.get("DERMLENS_BACKGROUND_IMPORTS", "1") == "0":
        return None
    _started.set()
    thread = threading.Thread(target=_import_all, name="dermlens-warmup", daemon=True)
    thread.start()
    return thread
