"""Hold the cyclic garbage collector off while a command starts up.

A command's start-up imports click, SQLAlchemy, its ORM and riskreg's modules: a few
hundred thousand objects that live as long as the process. The collector would scan them
over and over as they are made (about 150 collections in a 0.5 s start-up, one of them of
every object) and free none of them: 40-50 ms of a 4-row ``pilot data``, measured. So the
collector waits until the command starts its work (it opens the register, or computes a
plan); the objects made by then are frozen (``gc.freeze``), so that later collections,
which could never free them, do not scan them either.
"""

from __future__ import annotations

import gc

_paused = False


def pause() -> None:
    """Stop automatic collection until ``resume`` (unless something else had stopped it)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume() -> None:
    """Freeze what start-up made and collect automatically again, if ``pause`` stopped it."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
