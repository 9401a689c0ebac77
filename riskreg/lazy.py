"""Defer a standard-library package that SQLAlchemy imports but no riskreg command uses.

SQLAlchemy's ``util.langhelpers`` imports ``importlib.metadata`` (for entry-point plugins,
which riskreg has none of) as it loads: about 13 ms of every command's start-up. It is
stood in for by a placeholder module with the real one's spec, which import statements
accept as it is (``importlib.util.LazyLoader`` would not do: Python 3.11's import statement
reads ``__spec__``, and that loads a lazy module); the first attribute a caller reads
imports the real module, which takes the placeholder's place.

``asyncio`` cannot be deferred so: SQLAlchemy 2.1's ``util.concurrency`` reads
``asyncio.iscoroutine`` as it loads, so any program that imports SQLAlchemy pays for
asyncio (about 22 ms here), the minimal Core scripts of ``bench/startup.py`` too.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

DEFERRED = ("importlib.metadata",)


class Deferred(types.ModuleType):
    """A placeholder for a module not imported yet: any attribute read imports the real module."""

    def __init__(self, spec: Any) -> None:
        super().__init__(spec.name)
        self.__spec__ = spec
        self.__loader__ = spec.loader
        if spec.submodule_search_locations is not None:
            self.__path__ = list(spec.submodule_search_locations)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(_real(self.__name__), attribute)


def _real(name: str) -> types.ModuleType:
    """Import the real module in the placeholder's place (once) and return it."""
    held = sys.modules.get(name)
    if isinstance(held, Deferred):
        del sys.modules[name]
        held = importlib.import_module(name)
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, held)
    return held if held is not None else importlib.import_module(name)


def defer(name: str) -> None:
    """Stand a placeholder in for ``name`` unless it is imported already (or cannot be found)."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None:
        return
    placeholder = Deferred(spec)
    sys.modules[name] = placeholder
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, placeholder)


def defer_rarely_used() -> None:
    """Defer every package in ``DEFERRED``."""
    for name in DEFERRED:
        defer(name)
