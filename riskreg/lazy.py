"""Defer modules that riskreg's commands import, through their libraries, but never use.

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
it loads: the same function either way. Any other submodule of a deferred package runs
the real package first (``_PackageFirst``), as an ordinary import would have.

The same placeholders stand in for some submodules of numpy and scipy once their package
is imported (by the commands that analyse), as the package's attributes only: an import
of one of them stays an ordinary import. scipy's array-API layer reads every name
numpy lists as it loads, and numpy imports a listed submodule when it is read:
``numpy.testing``, ``numpy.ma``, ``numpy.f2py`` and five more, about 90 ms of every
analysing command, none of which riskreg uses. ``scipy.optimize`` (for ``brentq``)
imports ``scipy.spatial`` (about 25 ms) for one optimiser riskreg never calls. These can
be deferred only once their package has run (numpy imports its submodules lazily only
from version 2): a finder (``_ThenDefer``) defers them right after the package's own
import, whoever imports it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Sequence
from typing import Any

DEFERRED = ("asyncio", "importlib.metadata")
# packages whose submodules are deferred as soon as the package has been imported
DEFERRED_AFTER = {
    "numpy": ("testing", "ma", "f2py", "polynomial", "random", "ctypeslib", "rec", "char"),
    # scipy.optimize (brentq, for boundaries and score intervals) imports it for shgo alone
    "scipy": ("spatial",),
}
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
    if not isinstance(held, Deferred):  # imported already, or a package attribute's placeholder
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
    """Defer every package in ``DEFERRED``, and the submodules of ``DEFERRED_AFTER`` once their package is imported."""
    if not any(isinstance(finder, _PackageFirst) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PackageFirst())
    for name in DEFERRED:
        defer(name)
    for package, submodules in DEFERRED_AFTER.items():
        defer_after_import(package, submodules)


def defer_after_import(package: str, submodules: Sequence[str]) -> None:
    """Defer ``package``'s ``submodules`` now if it is imported already, else right after its import."""
    if package in sys.modules:
        _defer_submodules(package, submodules)
    elif not any(isinstance(f, _ThenDefer) and f.package == package for f in sys.meta_path):
        sys.meta_path.insert(0, _ThenDefer(package, submodules))


def _defer_submodules(package: str, submodules: Sequence[str]) -> None:
    """Bind placeholders for these submodules as the package's attributes, and nowhere else.

    Reading the attribute (as scipy does) imports nothing. ``sys.modules`` is left alone, so
    any import of a submodule, or of one of its own (``scipy.spatial.distance``), is an
    ordinary import that runs the real package first and then takes the placeholder's place.
    """
    imported = sys.modules[package]
    for submodule in submodules:
        name = f"{package}.{submodule}"
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is not None:
            setattr(imported, submodule, Deferred(spec))


class _ThenDefer:
    """A finder for one package that defers some of its submodules right after the package runs.

    It finds nothing itself: it asks the other finders for the package's spec and wraps its
    loader (``_DeferringLoader``), then leaves ``sys.meta_path``: it is used once. (Neither
    class derives from ``importlib.abc``, whose import costs every command about 7 ms: the
    import system needs only these methods.)
    """

    def __init__(self, package: str, submodules: Sequence[str]) -> None:
        self.package, self.submodules = package, tuple(submodules)

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.package:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _DeferringLoader(spec.loader, self.submodules)
        return spec


class _DeferringLoader:
    """Runs a package with its own loader (which then takes this one's place), then defers its submodules."""

    def __init__(self, loader: Any, submodules: tuple[str, ...]) -> None:
        self.loader, self.submodules = loader, submodules

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__loader__ = module.__spec__.loader = self.loader  # type: ignore[union-attr]
        self.loader.exec_module(module)
        _defer_submodules(module.__name__, self.submodules)


class _PackageFirst:
    """A finder that runs a deferred package before any submodule of it is imported.

    The import system finds a package's submodule through the package's ``__path__``,
    which a placeholder has, so without this finder ``import asyncio.events`` would run
    that submodule alone, before its package. It does not expect that: its C accelerator
    then crashes the interpreter. Only the submodules ``FROM_SUBMODULE`` reads import
    alone (``asyncio.coroutines``, which imports nothing of its package).
    """

    @staticmethod
    def find_spec(fullname: str, path: Any = None, target: Any = None) -> Any:
        package = fullname.rpartition(".")[0]
        if fullname in _ALONE or not isinstance(sys.modules.get(package), Deferred):
            return None
        _real(package)  # as an ordinary import would have run it, first
        module = sys.modules.get(fullname)
        if module is None:
            return None  # the package did not import it: the usual finders will
        # The package imported it: give that module back instead of running it twice. The
        # import system prefers a module's own spec to the one found, so lend it this one.
        spec = importlib.util.spec_from_loader(fullname, _Imported(module))
        module.__spec__ = spec
        return spec


_ALONE = frozenset(FROM_SUBMODULE.values())


class _Imported:
    """A loader that hands back a module already imported (and puts its own spec back)."""

    def __init__(self, module: types.ModuleType) -> None:
        self.module, self.spec = module, module.__spec__

    def create_module(self, spec: Any) -> types.ModuleType:
        return self.module

    def exec_module(self, module: types.ModuleType) -> None:
        module.__spec__ = self.spec
