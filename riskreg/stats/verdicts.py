"""Turn a confidence interval into a pre-registered verdict, and adjust p-values (Holm).

``judge`` first maps the interval onto a "benefit" scale on which higher is always better
and the null is 0: differences are negated when lower is better, and ratios are put on
the log scale first (so a ratio margin m is the symmetric band (1/m, m)).  Every rule below
is then a plain comparison of the interval bounds with 0 and with -margin/+margin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["BETTER", "TESTS", "VERDICTS", "holm", "judge"]

VERDICTS = ("superior", "non-inferior", "equivalent", "inferior", "harm", "inconclusive")
TESTS = ("superiority", "non-inferiority", "equivalence")
BETTER = ("higher", "lower")


def _check_margin(test: str, margin: float | None, ratio: bool) -> float | None:
    """Return the margin on the benefit scale (log for ratios), or raise ValueError if invalid."""
    if margin is None:
        if test == "superiority":
            return None
        raise ValueError(f"a {test} test needs a margin")
    value = float(margin)
    if ratio:
        if not (math.isfinite(value) and value > 1.0):
            raise ValueError(f"a ratio margin must be a finite number > 1, got {margin}")
        return math.log(value)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"a difference margin must be a finite number > 0, got {margin}")
    return value


def _to_benefit(
    low: float | None, high: float | None, better: str, ratio: bool
) -> tuple[float, float] | None:
    """Map a CI onto the benefit scale (higher is better, null 0); None if a bound is missing."""
    if low is None or high is None:
        return None
    low, high = float(low), float(high)
    if math.isnan(low) or math.isnan(high):
        raise ValueError("confidence bounds must not be NaN (use None for an undefined bound)")
    if low > high:
        raise ValueError(f"ci_low ({low}) is greater than ci_high ({high})")
    if ratio:
        if low < 0.0:
            raise ValueError(f"a ratio CI cannot have negative bounds, got {low}")
        # A ratio CI may start at 0 (no pilot events): log(0) = -inf keeps the ordering.
        low, high = (math.log(v) if v > 0.0 else -math.inf for v in (low, high))
    return (low, high) if better == "higher" else (-high, -low)


def _superiority(low: float, high: float) -> str:
    """Verdict of a superiority test on the benefit scale."""
    if low > 0.0:
        return "superior"
    if high < 0.0:
        return "harm"
    return "inconclusive"


def _non_inferiority(low: float, high: float, margin: float) -> str:
    """Verdict of a non-inferiority test on the benefit scale with tolerated loss ``margin``."""
    if low > 0.0:
        return "superior"
    if low > -margin:
        return "non-inferior"
    if high < -margin:
        return "inferior"
    if high < 0.0:
        return "harm"
    return "inconclusive"


def _equivalence(low: float, high: float, margin: float, tost: tuple[float, float] | None) -> str:
    """Verdict of an equivalence test: TOST on the 1-2α CI, then the 1-α CI for the rest."""
    if tost is not None and -margin < tost[0] and tost[1] < margin:
        return "equivalent"
    if high < -margin:
        return "inferior"
    if low > margin:
        return "superior"
    if high < 0.0:
        return "harm"
    return "inconclusive"


def judge(
    test: str,
    better: str,
    ci_low: float | None,
    ci_high: float | None,
    *,
    margin: float | None = None,
    ratio: bool = False,
    equivalence_ci: tuple[float | None, float | None] | None = None,
) -> str:
    """Return the verdict (one of VERDICTS) that the (1-α) CI supports for the given test.

    ``margin`` is in the metric's units for differences (> 0) and a ratio (> 1) for ratios;
    for ratios the tolerated worse ratio is ``margin`` when lower is better and ``1/margin``
    when higher is better.  ``equivalence_ci`` is the 1-2α CI, required for equivalence.
    A None bound means the data could not support any claim: "inconclusive".
    """
    if test not in TESTS:
        raise ValueError(f"test must be one of {', '.join(TESTS)}; got {test!r}")
    if better not in BETTER:
        raise ValueError(f"better must be 'higher' or 'lower'; got {better!r}")
    benefit_margin = _check_margin(test, margin, ratio)
    if test == "equivalence" and equivalence_ci is None:
        raise ValueError("an equivalence test needs equivalence_ci (the 1-2α CI)")
    bounds = _to_benefit(ci_low, ci_high, better, ratio)
    if bounds is None:
        return "inconclusive"
    low, high = bounds
    if test == "superiority":
        return _superiority(low, high)
    if test == "non-inferiority":
        return _non_inferiority(low, high, benefit_margin)
    tost = _to_benefit(equivalence_ci[0], equivalence_ci[1], better, ratio)
    return _equivalence(low, high, benefit_margin, tost)


def holm(p_values: Sequence[float]) -> tuple[float, ...]:
    """Return Holm-adjusted p-values in the input order, as R ``p.adjust(p, "holm")``."""
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise ValueError("p_values must be a flat sequence of numbers")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("p-values must lie between 0 and 1")
    m = p.size
    order = np.argsort(p, kind="stable")
    # R: pmin(1, cummax((n - i + 1) * p[o]))[ro]
    stepped = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    adjusted = np.empty(m)
    adjusted[order] = stepped
    return tuple(float(v) for v in adjusted)
