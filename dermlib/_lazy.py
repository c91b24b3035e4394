"""Package attributes imported on first use (PEP 562), shared by the packages that export lazily."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``exports[name]`` when ``name`` is first read, then caches it.

    Args:
        package: The package's name (for the error message).
        exports: ``{attribute: module that defines it}``.
        namespace: The package's ``globals()``, where the value is kept after the first read.
    """

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        namespace[name] = value
        return value

    return __getattr__
