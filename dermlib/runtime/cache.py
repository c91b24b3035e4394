"""Where the command line keeps its ONNX graphs, and how an entry is named, written and verified.

An entry is a folder ``<cache>/<kind>/<name>-<key>/`` holding ``graph.onnx`` and ``manifest.json``. The key
hashes everything the graph depends on (for a model: the SHA-256 of its weights, its architecture, classes and
preprocessing; for the scope extractor: its architecture and size) and :data:`GRAPH_VERSION`, so a retrained
model or a changed export gets a new entry and an old one is never used by mistake. The manifest records the
graph's own SHA-256, checked every time the graph is opened: a damaged file is rebuilt, never run. At most
:data:`KEEP_PER_NAME` entries are kept per model id, so retraining a model never grows the cache without bound.

The cache holds only what the installed models already contain, nothing of the photos. It lives in
``DERMLENS_CACHE_DIR``, else ``$XDG_CACHE_HOME/dermlens``, else ``~/.cache/dermlens``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dermlib.models.verify import file_sha256

CACHE_ENV = "DERMLENS_CACHE_DIR"
#: Bumped whenever what is exported or how it is preprocessed changes: older entries are then ignored.
GRAPH_VERSION = 2
GRAPH_FILE = "graph.onnx"
#: Entries kept per model id (or extractor): a retrained model's older graphs beyond this are deleted.
KEEP_PER_NAME = 2
MANIFEST_FILE = "manifest.json"
COMPILED_FOLDER = "openvino"


def cache_dir() -> Path:
    """The cache's root folder (not created here)."""
    configured = os.environ.get(CACHE_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "dermlens"


def entry_key(parts: dict[str, Any]) -> str:
    """A short, stable digest of what an entry depends on (plus :data:`GRAPH_VERSION`)."""
    text = json.dumps({**parts, "graph_version": GRAPH_VERSION}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Entry:
    """One cached graph: ``folder/graph.onnx``, ``folder/manifest.json`` and, once OpenVINO has opened it,
    ``folder/openvino/`` with its compiled form."""

    folder: Path

    @property
    def graph(self) -> Path:
        """The ONNX file."""
        return self.folder / GRAPH_FILE

    @property
    def compiled(self) -> Path:
        """Where OpenVINO keeps its compiled form of the graph (0.05 s to open instead of 0.25 s to compile)."""
        return self.folder / COMPILED_FOLDER

    def read(self) -> dict[str, Any] | None:
        """The manifest, when the entry is complete and its graph matches the recorded SHA-256; else None."""
        try:
            manifest = json.loads((self.folder / MANIFEST_FILE).read_text())
            if manifest.get("graph_version") != GRAPH_VERSION or file_sha256(self.graph) != manifest.get("sha256"):
                return None
        except (OSError, ValueError):
            return None
        return manifest

    def write(self, graph: bytes, manifest: dict[str, Any]) -> dict[str, Any]:
        """Store a graph and its manifest, each atomically (another process never reads half a file).

        Raises:
            OSError: The cache folder cannot be written.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        manifest = {**manifest, "graph_version": GRAPH_VERSION, "sha256": hashlib.sha256(graph).hexdigest(),
                    "bytes": len(graph)}
        _atomic_write(self.graph, graph)
        _atomic_write(self.folder / MANIFEST_FILE, json.dumps(manifest, indent=1).encode())
        self._prune_siblings()
        return manifest

    def _prune_siblings(self) -> None:
        """Keep the cache bounded: of the entries for the same name (earlier weights of a retrained model),
        only the :data:`KEEP_PER_NAME` newest survive, this one included."""
        name = self.folder.name.rsplit("-", 1)[0]
        siblings = [p for p in self.folder.parent.iterdir()
                    if p.is_dir() and p != self.folder and p.name.rsplit("-", 1)[0] == name]
        siblings.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        for old in siblings[KEEP_PER_NAME - 1:]:
            shutil.rmtree(old, ignore_errors=True)


KINDS = ("models", "extractors")


def entries(root: Path | None = None) -> list[tuple[Entry, dict[str, Any] | None]]:
    """Every entry folder in the cache, with its manifest (None when incomplete, stale or damaged)."""
    base = root or cache_dir()
    found = []
    for kind in KINDS:
        folder = base / kind
        if folder.is_dir():
            found.extend((Entry(sub), Entry(sub).read()) for sub in sorted(folder.iterdir()) if sub.is_dir())
    return found


def folder_bytes(folder: Path) -> int:
    """Total size of the files in a folder and its subfolders (the graph, its manifest, OpenVINO's blobs)."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def entry(kind: str, name: str, parts: dict[str, Any], root: Path | None = None) -> Entry:
    """The entry of ``kind`` (``models`` or ``extractors``) for ``name`` and what it depends on."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return Entry((root or cache_dir()) / kind / f"{safe}-{entry_key(parts)}")


def _atomic_write(path: Path, data: bytes) -> None:
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as fh:
            fh.write(data)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
