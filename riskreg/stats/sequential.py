"""Lan–DeMets O'Brien–Fleming-type group-sequential boundaries for staged pilots.

A staged pilot looks at its accumulating data several times.  Testing at the
fixed-sample level at every look would inflate the false-positive rate, so each
look gets a stricter critical value.  This module computes those values with the
Lan & DeMets (1983) alpha-spending approach, using the O'Brien–Fleming-type
spending function (R ``gsDesign::sfLDOF``, ``ldbounds`` ``iuse = 1``), for a
two-sided test with symmetric boundaries.

The boundaries are exact for the canonical joint distribution of the looks
(standardised statistics Z_k of a Brownian motion observed at information
fractions t_k, so Cov(Z_i, Z_j) = sqrt(t_i / t_j) for t_i <= t_j).  The crossing
probabilities are computed by the Armitage–McPherson–Rowe recursive numerical
integration on a grid (as ``ldbounds`` / the Fortran program ld98 do), with
Simpson's rule from scipy, and each boundary is solved with ``brentq``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from riskreg.stats import checks

# scipy.integrate and scipy.optimize load lazily, in the functions below: only a second
# look needs integration, and importing them costs about 0.15 s that a one-stage analysis
# would otherwise pay on every run.


def _sf(x: Any) -> Any:
    """Standard normal upper tail (scipy.stats.norm.sf), from scipy.special: quicker to load."""
    return special.ndtr(-np.asarray(x, dtype=float))


def _isf(p: float) -> float:
    """Standard normal upper-tail quantile (scipy.stats.norm.isf)."""
    return float(-special.ndtri(p))


def _pdf(x: Any) -> Any:
    """Standard normal density (scipy.stats.norm.pdf)."""
    x = np.asarray(x, dtype=float)
    return np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


__all__ = ["Z_CAP", "Boundaries", "lan_demets_boundaries", "obrien_fleming_spending"]

METHOD = (
    "Lan–DeMets O'Brien–Fleming-type spending (gsDesign sfLDOF), two-sided symmetric, "
    "exact recursive integration"
)

# Largest reported critical value.  ldbounds truncates at 8 by default ("essentially
# no truncation"): P(|Z| >= 8) < 1.3e-15 under H0, far below what any pilot can
# resolve, and beyond it the incremental spend is smaller than the integration error.
Z_CAP = 8.0

# The continuation density is negligible beyond this many standard deviations of the
# score statistic (mass outside < 1e-23), so the grid never needs to reach further.
_TAIL_SD = 10.0
# Grid resolution: points per standard deviation of the density being integrated and
# per standard deviation of the next increment's kernel.  Simpson's rule on a
# Gaussian sampled this finely is accurate far beyond the 1e-4 target in z.
_POINTS_PER_SD = 40
_MAX_GRID = 2001
# Incremental spends below this are not resolvable by the integration; the look's
# boundary is then set to Z_CAP.
_MIN_SPEND = 1e-15
_XTOL = 1e-12


@dataclass(frozen=True)
class Boundaries:
    """Two-sided symmetric critical values |z| for each look of a staged pilot."""

    fractions: tuple[float, ...]
    z: tuple[float, ...]
    alpha_spent: tuple[float, ...]
    alpha: float
    method: str

    def to_dict(self) -> dict:
        """Return the boundaries as JSON-ready plain values."""
        return {
            "fractions": [float(t) for t in self.fractions],
            "z": [float(c) for c in self.z],
            "alpha_spent": [float(a) for a in self.alpha_spent],
            "alpha": float(self.alpha),
            "method": self.method,
        }


def _check_fraction(t: float) -> float:
    """Return t as a float, or raise ValueError if it is not in (0, 1]."""
    t = checks.number("information fraction", t)
    if not (0.0 < t <= 1.0):
        raise ValueError(f"information fraction must be in (0, 1], got {t}")
    return t


def obrien_fleming_spending(t: float, alpha: float = 0.05) -> float:
    """Return the cumulative two-sided alpha spent by information fraction t.

    Each side spends alpha/2 as 2 - 2 Phi(Phi^-1(1 - alpha/4) / sqrt(t)) (gsDesign
    ``sfLDOF`` with one-sided alpha/2; ldbounds ``iuse = 1`` with alpha/2 per side),
    so the two-sided total is 4 - 4 Phi(Phi^-1(1 - alpha/4) / sqrt(t)), which equals
    alpha at t = 1.  (Lan & DeMets' 1983 form 2 - 2 Phi(Phi^-1(1 - alpha/2) / sqrt(t))
    for |Z| spends differently before t = 1 and is not what those packages compute.)
    """
    t = _check_fraction(t)
    alpha = checks.open_unit("alpha", alpha)
    # The upper tail is evaluated with sf so that tiny early spends keep full
    # relative precision instead of cancelling to 0 in 1 - cdf.
    return float(4.0 * _sf(_isf(alpha / 4.0) / math.sqrt(t)))


def _check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    """Return validated information fractions, or raise ValueError."""
    if isinstance(fractions, (str, bytes)) or not isinstance(fractions, (Sequence, np.ndarray)):
        raise ValueError("fractions must be a sequence of information fractions in (0, 1]")
    fractions = list(np.ravel(fractions)) if isinstance(fractions, np.ndarray) else list(fractions)
    if len(fractions) == 0:
        raise ValueError("fractions must contain at least one look")
    checked = tuple(_check_fraction(t) for t in fractions)
    for earlier, later in itertools.pairwise(checked):
        if not later > earlier:
            raise ValueError(f"fractions must be strictly increasing, got {earlier} then {later}")
    return checked


def _grid(half_width: float, step: float) -> np.ndarray:
    """Return an odd-length uniform grid on [-half_width, half_width] (Simpson needs odd)."""
    intervals = max(2, math.ceil(2.0 * half_width / step))
    intervals += intervals % 2
    intervals = min(intervals, _MAX_GRID - 1)
    return np.linspace(-half_width, half_width, intervals + 1)


def _exit_probability(b: float, grid: np.ndarray, density: np.ndarray, increment_sd: float) -> float:
    """Return P(no earlier crossing and |S_k| >= b) given the continuation density.

    S_k = S_{k-1} + N(0, increment_sd^2); the two tails are evaluated with sf for
    relative precision when b is far out.
    """
    from scipy.integrate import simpson

    upper = _sf((b - grid) / increment_sd)
    lower = _sf((b + grid) / increment_sd)
    return float(simpson(density * (upper + lower), x=grid))


def _propagate(
    grid: np.ndarray, density: np.ndarray, new_grid: np.ndarray, increment_sd: float
) -> np.ndarray:
    """Return the sub-density of S_k on new_grid for paths that never crossed before look k."""
    from scipy.integrate import simpson

    kernel = _pdf((new_grid[:, None] - grid[None, :]) / increment_sd) / increment_sd
    return simpson(kernel * density[None, :], x=grid, axis=1)


def _solve_boundary(
    target: float, grid: np.ndarray, density: np.ndarray, t_k: float, increment_sd: float
) -> float:
    """Return the critical |z| at look k whose exit probability equals target."""
    from scipy.optimize import brentq

    root_t = math.sqrt(t_k)

    def excess(c: float) -> float:
        return _exit_probability(c * root_t, grid, density, increment_sd) - target

    if target < _MIN_SPEND or excess(Z_CAP) >= 0.0:
        return Z_CAP
    # At c = 0 every surviving path exits, so the exit probability is the surviving
    # mass (about 1 - alpha spent so far), which exceeds the target unless alpha is
    # so close to 1 that the grid's truncation error matters: then reject outright.
    if excess(0.0) <= 0.0:
        return 0.0
    return float(brentq(excess, 0.0, Z_CAP, xtol=_XTOL, rtol=4 * np.finfo(float).eps, maxiter=200))


def _continuation_grid(c: float, t_k: float, next_increment_sd: float) -> np.ndarray:
    """Return the grid for S_k on the continuation region |S_k| < c sqrt(t_k)."""
    sd = math.sqrt(t_k)
    half_width = min(c * sd, _TAIL_SD * sd)
    step = min(sd, next_increment_sd) / _POINTS_PER_SD
    return _grid(half_width, step)


def lan_demets_boundaries(fractions: Sequence[float], alpha: float = 0.05) -> Boundaries:
    """Return two-sided Lan–DeMets O'Brien–Fleming-type boundaries for the given looks.

    ``fractions`` are the information fractions t_1 < ... < t_K in (0, 1]; the last
    may be below 1 when only interim looks have happened so far.  The boundary c_k
    solves P(|Z_1| < c_1, ..., |Z_{k-1}| < c_{k-1}, |Z_k| >= c_k) = alpha(t_k) - alpha(t_{k-1})
    under H0.  Boundaries above ``Z_CAP`` (only for looks with negligible spend) are
    reported as ``Z_CAP``; ``alpha_spent`` then records the spend actually used.
    """
    looks = _check_fractions(fractions)
    alpha = checks.open_unit("alpha", alpha)
    nominal = [obrien_fleming_spending(t, alpha) for t in looks]

    z: list[float] = []
    spent: list[float] = []
    # Look 1 needs no integration: Z_1 is standard normal.
    first = min(float(_isf(nominal[0] / 2.0)), Z_CAP) if nominal[0] > 0.0 else Z_CAP
    z.append(first)
    spent.append(float(2.0 * _sf(first)))

    if len(looks) > 1:
        increments = [math.sqrt(b - a) for a, b in itertools.pairwise(looks)]
        grid = _continuation_grid(first, looks[0], increments[0])
        density = _pdf(grid / math.sqrt(looks[0])) / math.sqrt(looks[0])
        for k in range(1, len(looks)):
            # Spend what the function allows by t_k minus what was actually spent so far,
            # so any capped look's tiny excess is absorbed by the next one.
            target = nominal[k] - spent[-1]
            c = _solve_boundary(target, grid, density, looks[k], increments[k - 1])
            used = _exit_probability(c * math.sqrt(looks[k]), grid, density, increments[k - 1])
            z.append(c)
            spent.append(spent[-1] + (target if c < Z_CAP else used))
            if k + 1 < len(looks):
                new_grid = _continuation_grid(c, looks[k], increments[k])
                density = _propagate(grid, density, new_grid, increments[k - 1])
                grid = new_grid

    return Boundaries(
        fractions=looks,
        z=tuple(z),
        alpha_spent=tuple(spent),
        alpha=alpha,
        method=METHOD,
    )
