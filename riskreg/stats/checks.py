"""Argument checks shared by the statistics modules: each returns the value or raises ValueError naming it."""

from __future__ import annotations

import math
import numbers
import operator


def number(name: str, value: object) -> float:
    """Return value as a finite float, or raise ValueError naming the argument (booleans are no numbers)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def open_unit(name: str, value: object) -> float:
    """Return value if it lies strictly between 0 and 1 (an alpha, a power, a proportion), else raise ValueError."""
    value = number(name, value)
    if not (0.0 < value < 1.0):
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value}")
    return value


def positive(name: str, value: object) -> float:
    """Return value if it is a finite number above 0, else raise ValueError."""
    value = number(name, value)
    if value <= 0.0:
        raise ValueError(f"{name} must be greater than 0, got {value}")
    return value


def whole(name: str, value: object, minimum: int) -> int:
    """Return value as an int if it is a whole number (2.0 included) >= minimum, else raise ValueError."""
    value = number(name, value)
    if value != math.floor(value):
        raise ValueError(f"{name} must be a whole number of units, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {int(value)}")
    return int(value)


def integer(name: str, value: object) -> int:
    """Return value as a non-negative int (Python or numpy integers only: 2.0 is refused), or raise ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, not a boolean")
    try:
        as_int = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if as_int < 0:
        raise ValueError(f"{name} must be >= 0, got {as_int}")
    return as_int
