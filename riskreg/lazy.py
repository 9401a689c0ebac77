"""Defer two standard-library packages that SQLAlchemy imports but no register command uses.

SQLAlchemy imports ``asyncio`` (for its async extension; with it come ssl, socket,
subprocess, logging and concurrent.futures) and ``importlib.metadata`` (for entry-point
plugins, which riskreg has none of) as it loads: 35 to 50 ms of every command's start-up.
Each is stood in for by a placeholder module with the real one's spec, which import
statements accept as it is (``importlib.util.LazyLoader`` would not do: Python 3.11's
import statement reads ``__spec__``, and that loads a lazy module); the first attribute a
caller reads imports the real module, which takes the placeholder's place.

One attribute is read as SQLAlchemy loads: ``asyncio.iscoroutine`` (bound in
``util.concurrency``). The placeholder serves it from ``asyncio.coroutines``, the small
submodule that defines it (standard library only), which the real package re-exports when
it loads: the same function either way.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

DEFERRED = ("asyncio", "importlib.metadata")
# attributes a placeholder serves from a submodule without loading the whole package
FROM_SUBMODULE = {("asyncio", "iscoroutine"): "asyncio.coroutines"}


class Deferred(types.ModuleType):
    """A placeholder for a module not imported yet: any attribute read imports the real module."""

    def __init__(self, spec: Any) -> None:
        super().__init__(spec.name)
        self.__spec__ = spec
        self.__loader__ = spec.loader
        if spec.submodule_search_locations is not None:
            self.__path__ = list(spec.submodule_search_locations)

    def __getattr__(self, attribute: str) -> Any:
        submodule = FROM_SUBMODULE.get((self.__name__, attribute))
        if submodule is not None:
            return getattr(importlib.import_module(submodule), attribute)
        return getattr(_real(self.__name__), attribute)


def _real(name: str) -> types.ModuleType:
    """Import the real module in the placeholder's place (once) and return it.

    Submodules imported meanwhile (``asyncio.coroutines``) are bound on the real package
    before it runs, as the import system would have bound them, so the package's own
    ``from .coroutines import *`` finds them.
    """
    held = sys.modules.get(name)
    if not isinstance(held, Deferred):
        return held if held is not None else importlib.import_module(name)
    spec = held.__spec__
    module = importlib.util.module_from_spec(spec)
    prefix = name + "."
    for key, submodule in list(sys.modules.items()):
        if key.startswith(prefix) and "." not in key[len(prefix) :]:
            setattr(module, key[len(prefix) :], submodule)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    except BaseException:
        sys.modules[name] = held
        raise
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return module


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
