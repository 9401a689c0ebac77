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
Simpson's rule, and each boundary is solved with ``brentq``.

Beyond the planned schedule, the module serves the decision rule in which the looks
are the gate decisions (DESIGN §5):

* ``observed_boundaries`` recomputes the boundaries at the information fractions of
  the looks actually taken (a look may over-run its planned n, so t > 1 is allowed),
  and lets the final look spend whatever alpha is left;
* ``conditional_power`` and ``equivalence_conditional_power`` give the chance of
  success at the final look under the current trend (B-value method);
* ``stagewise_inference`` gives the p-value, median-unbiased estimate and confidence
  interval after a pilot stopped at a boundary, under the stage-wise ordering.
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

# scipy.optimize loads lazily, in the functions below: only a second look needs a root
# search, and importing it costs time that a one-stage analysis would otherwise pay on
# every run.  (Simpson's rule is done with explicit weights, so scipy.integrate is not needed.)


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


__all__ = [
    "Z_CAP",
    "Boundaries",
    "StagewiseInference",
    "conditional_power",
    "equivalence_conditional_power",
    "lan_demets_boundaries",
    "obrien_fleming_spending",
    "observed_boundaries",
    "stagewise_inference",
]

METHOD = (
    "Lan–DeMets O'Brien–Fleming-type spending (gsDesign sfLDOF), two-sided symmetric, "
    "exact recursive integration"
)
OBSERVED_METHOD = (
    "Lan–DeMets O'Brien–Fleming-type spending (gsDesign sfLDOF) at the observed information "
    "fractions, two-sided symmetric, exact recursive integration"
)
FINAL_METHOD = OBSERVED_METHOD + "; the final look spends all remaining alpha"
STAGEWISE_METHOD = (
    "stage-wise ordering (Armitage 1957; Jennison & Turnbull 2000 ch. 8), exact recursive "
    "integration with exponential tilting; two-sided p is twice the one-sided"
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
# Simpson's rule integrates a Gaussian kernel (or its integral, a smooth step) almost exactly
# once the grid step is at most half the kernel's sd: the error falls like
# exp(-2 pi^2 (sd / 2 step)^2).  A look that adds almost no information (a gate without new
# data, or looks so close that the grid cap bites) has a narrower kernel; the narrow-kernel
# forms below handle it instead of sampling a kernel the grid cannot see.
_RESOLVED = 2.0
# Points per sd of the increment just taken, which blurs the earlier boundary's cut into
# an erf-shaped edge of the density: Simpson's error there is about (step / sd)^4 of the
# edge's small mass.
_EDGE_POINTS_PER_SD = 8
# Around a step narrower than the grid: extra nodes over +/- this many kernel sd ...
_STEP_WINDOW = 12.0
# ... this many of them (step sd / 20).
_STEP_NODES = 481
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
    # True when the last look is the final one and spent all alpha left (observed_boundaries
    # with final=True); defaulted so that code building Boundaries positionally keeps working.
    final: bool = False

    def to_dict(self) -> dict:
        """Return the boundaries as JSON-ready plain values."""
        return {
            "fractions": [float(t) for t in self.fractions],
            "z": [float(c) for c in self.z],
            "alpha_spent": [float(a) for a in self.alpha_spent],
            "alpha": float(self.alpha),
            "method": self.method,
            "final": bool(self.final),
        }


@dataclass(frozen=True)
class StagewiseInference:
    """P-value, median-unbiased estimate and confidence interval after a sequential stop."""

    stop_look: int  # 1-based number of the look at which the pilot stopped
    z: float  # observed statistic at that look (positive: the side it stopped on)
    estimate: float  # naive estimate z * se, biased away from 0 by the early stop
    p_value: float  # two-sided, stage-wise ordering
    median_unbiased: float
    ci: tuple[float, float]  # at 1 - alpha, stage-wise ordering
    alpha: float
    method: str

    def to_dict(self) -> dict:
        """Return the inference as JSON-ready plain values."""
        return {
            "stop_look": int(self.stop_look),
            "z": float(self.z),
            "estimate": float(self.estimate),
            "p_value": float(self.p_value),
            "median_unbiased": float(self.median_unbiased),
            "ci": [float(self.ci[0]), float(self.ci[1])],
            "alpha": float(self.alpha),
            "method": self.method,
        }


def _check_fraction(t: float, over_run: bool = False) -> float:
    """Return t as a float, or raise ValueError if it is not in (0, 1] (or > 0 when over_run)."""
    t = checks.number("information fraction", t)
    if over_run:
        if not t > 0.0:
            raise ValueError(f"information fraction must be greater than 0, got {t}")
    elif not (0.0 < t <= 1.0):
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


def _check_fractions(fractions: Sequence[float], over_run: bool = False) -> tuple[float, ...]:
    """Return validated information fractions (strictly increasing), or raise ValueError."""
    if isinstance(fractions, (str, bytes)) or not isinstance(fractions, (Sequence, np.ndarray)):
        raise ValueError("fractions must be a sequence of information fractions in (0, 1]")
    fractions = list(np.ravel(fractions)) if isinstance(fractions, np.ndarray) else list(fractions)
    if len(fractions) == 0:
        raise ValueError("fractions must contain at least one look")
    checked = tuple(_check_fraction(t, over_run) for t in fractions)
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


def _simpson_weights(grid: np.ndarray) -> np.ndarray:
    """Return composite Simpson weights for an odd-length uniform grid."""
    weights = np.ones(len(grid))
    weights[1:-1:2] = 4.0
    weights[2:-1:2] = 2.0
    return weights * (grid[1] - grid[0]) / 3.0


def _resolved(grid: np.ndarray, increment_sd: float) -> bool:
    """Return True if the grid step resolves a Gaussian kernel of this sd."""
    return increment_sd >= _RESOLVED * (grid[1] - grid[0])


def _step_nodes(
    grid: np.ndarray, density: np.ndarray, increment_sd: float, levels: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Return nodes and density x weights to integrate density(u) K(u), K stepping near levels.

    K is a normal tail in u of sd increment_sd, so it changes only within a few sd of
    each level.  On a grid that resolves it these are the grid and Simpson's weights;
    otherwise fine nodes are added across each step, the (smooth) density is interpolated
    there and the trapezoid rule is used.
    """
    if _resolved(grid, increment_sd):
        return grid, _simpson_weights(grid) * density
    half = _STEP_WINDOW * increment_sd
    windows = [np.linspace(level - half, level + half, _STEP_NODES) for level in levels]
    nodes = np.unique(np.concatenate([grid, *windows]))
    nodes = nodes[(nodes >= grid[0]) & (nodes <= grid[-1])]
    widths = np.diff(nodes)
    weights = np.zeros(len(nodes))
    weights[:-1] += widths / 2.0
    weights[1:] += widths / 2.0
    return nodes, weights * np.interp(nodes, grid, density)


def _exit_probability(b: float, grid: np.ndarray, density: np.ndarray, increment_sd: float) -> float:
    """Return P(no earlier crossing and |S_k| >= b) given the continuation density.

    S_k = S_{k-1} + N(0, increment_sd^2); the two tails are evaluated with sf for
    relative precision when b is far out.
    """
    nodes, weighted = _step_nodes(grid, density, increment_sd, (b, -b))
    upper = _sf((b - nodes) / increment_sd)
    lower = _sf((b + nodes) / increment_sd)
    return float(np.dot(weighted, upper + lower))


def _propagate(
    grid: np.ndarray, density: np.ndarray, new_grid: np.ndarray, increment_sd: float
) -> np.ndarray:
    """Return the sub-density of S_k on new_grid for paths that never crossed before look k."""
    if _resolved(grid, increment_sd):
        weighted = _simpson_weights(grid) * density
        # The kernel is below 1e-22 of its peak beyond _TAIL_SD sd: when that reach is a
        # small part of the grid (a short increment on a fine grid), each new point needs
        # only the band of old points within it.
        reach = _TAIL_SD * increment_sd
        width = math.ceil(2.0 * reach / (grid[1] - grid[0])) + 2
        if width >= len(grid):
            kernel = _pdf((new_grid[:, None] - grid[None, :]) / increment_sd) / increment_sd
            return kernel @ weighted
        index = np.searchsorted(grid, new_grid - reach)[:, None] + np.arange(width)[None, :]
        valid = index < len(grid)
        index = np.where(valid, index, len(grid) - 1)
        kernel = _pdf((new_grid[:, None] - grid[index]) / increment_sd) / increment_sd
        return np.where(valid, kernel * weighted[index], 0.0).sum(axis=1)
    # A kernel narrower than the grid (new_grid then comes from _next_grid and lies within
    # grid): the smooth density convolved with N(0, sd^2) is g + sd^2 g'' / 2 up to
    # O(sd^4).  The cut at the old region's ends moves by O(sd) only; keeping it at the
    # grid's ends conserves the mass, where sampling the blurred cut would not.
    step = grid[1] - grid[0]
    smoothed = density + 0.5 * increment_sd**2 * np.gradient(np.gradient(density, step), step)
    return np.interp(new_grid, grid, smoothed)


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


def _next_grid(
    c: float, t_k: float, next_increment_sd: float, grid: np.ndarray, increment_sd: float
) -> np.ndarray:
    """Return the grid for S_k on |S_k| < c sqrt(t_k), given the grid of the look before."""
    if _resolved(grid, increment_sd):
        # The increment just taken blurs the earlier boundary's cut over about its sd: the
        # new grid resolves that edge as well as the next increment's kernel.
        sd = math.sqrt(t_k)
        half_width = min(c * sd, _TAIL_SD * sd)
        step = min(min(sd, next_increment_sd) / _POINTS_PER_SD, increment_sd / _EDGE_POINTS_PER_SD)
        return _grid(half_width, step)
    # After an increment narrower than the old grid resolves, S_k has all but stayed put:
    # keep the old (finer) step, and the old region where it is the tighter, so that the
    # cut left by the earlier boundary falls on the grid's end instead of inside a cell.
    half_width = min(c * math.sqrt(t_k), _TAIL_SD * math.sqrt(t_k), float(grid[-1]))
    return _grid(half_width, float(grid[1] - grid[0]))


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
    return _spend(looks, alpha, final=False, method=METHOD)


def observed_boundaries(fractions: Sequence[float], alpha: float = 0.05, final: bool = False) -> Boundaries:
    """Return the boundaries at the information fractions of the looks actually taken.

    ``fractions`` are observed primary units over the planned final n at each look taken
    so far, strictly increasing and > 0; they may exceed 1 when a look over-ran the plan.
    Cumulative spending is the O'Brien–Fleming-type function at min(t, 1), so it is alpha
    from t = 1 on: a non-final look after one at t >= 1 has nothing left to spend and
    gets ``Z_CAP``.  With ``final=True`` the last look is the pilot's final one and spends
    all the alpha not yet spent, whatever its fraction (a short final look at t = 0.93
    as much as an over-running one at t = 1.2), so the whole design spends exactly alpha.

    The looks are the increments of one Brownian motion in information time, so the
    correlation sqrt(t_i / t_j) = sqrt(I_i / I_j) is the actual information ratio also
    beyond t = 1.  Each boundary depends only on the looks up to it, so boundaries
    already used at earlier gates never move when a later look is added.
    """
    looks = _check_fractions(fractions, over_run=True)
    alpha = checks.open_unit("alpha", alpha)
    if not isinstance(final, (bool, np.bool_)):
        raise ValueError(f"final must be True or False, got {final!r}")
    final = bool(final)
    return _spend(looks, alpha, final=final, method=FINAL_METHOD if final else OBSERVED_METHOD)


def _spend(looks: tuple[float, ...], alpha: float, final: bool, method: str) -> Boundaries:
    """Return the boundaries that spend the O'Brien–Fleming-type function at the given looks."""
    # Beyond t = 1 the function has nothing left to spend: it is alpha there.
    nominal = [obrien_fleming_spending(min(t, 1.0), alpha) for t in looks]
    if final:
        nominal[-1] = alpha

    z: list[float] = []
    spent: list[float] = []
    # Look 1 needs no integration: Z_1 is standard normal.
    first = min(float(_isf(nominal[0] / 2.0)), Z_CAP) if nominal[0] > 0.0 else Z_CAP
    z.append(first)
    spent.append(float(2.0 * _sf(first)))

    if len(looks) > 1:
        # The recursion runs on the score scale S_k = Z_k sqrt(t_k), whose increments have
        # variance t_k - t_{k-1}: nothing in it assumes t <= 1.
        increments = [math.sqrt(b - a) for a, b in itertools.pairwise(looks)]
        grid = _continuation_grid(first, looks[0], increments[0])
        density = _pdf(grid / math.sqrt(looks[0])) / math.sqrt(looks[0])
        for k in range(1, len(looks)):
            # Spend what the function allows by t_k minus what was actually spent so far,
            # so any capped look's tiny excess is absorbed by the next one (and a final
            # look takes exactly what is left of alpha).
            target = nominal[k] - spent[-1]
            c = _solve_boundary(target, grid, density, looks[k], increments[k - 1])
            used = _exit_probability(c * math.sqrt(looks[k]), grid, density, increments[k - 1])
            z.append(c)
            spent.append(spent[-1] + (target if c < Z_CAP else used))
            if k + 1 < len(looks):
                new_grid = _next_grid(c, looks[k], increments[k], grid, increments[k - 1])
                density = _propagate(grid, density, new_grid, increments[k - 1])
                grid = new_grid

    return Boundaries(
        fractions=looks,
        z=tuple(z),
        alpha_spent=tuple(spent),
        alpha=alpha,
        method=method,
        final=final,
    )


# ---------------------------------------------------------------- conditional power


def conditional_power(z: float, fraction: float, final_boundary: float, drift: float | None = None) -> float:
    """Return the conditional power of reaching z >= final_boundary at the final look.

    ``z`` is the one-sided statistic now (positive = the wanted direction) at
    information fraction ``fraction`` = t of the planned final information, and
    ``final_boundary`` = c is the critical value the final look will use.  With the
    B-value B(t) = z sqrt(t) (Lan & Wittes 1988; Proschan, Lan & Wittes 2006 ch. 3;
    Jennison & Turnbull 2000 ch. 10), B(1) - B(t) ~ N(theta (1 - t), 1 - t) for the drift
    theta = E[Z at t = 1], so

        CP(theta) = 1 - Phi((c - z sqrt(t) - theta (1 - t)) / sqrt(1 - t)).

    By default the drift is the current trend, theta = B(t) / t = z / sqrt(t), which
    gives CP = 1 - Phi((c - z / sqrt(t)) / sqrt(1 - t)); pass ``drift`` to use another
    (0 for the null, the design's E[Z_final] for the planned effect).  The power is
    non-binding: it ignores any interim boundaries still to come, so it is the chance
    of success at the final look alone.  At t >= 1 nothing is left to observe and the
    result is 1.0 if z >= c, else 0.0.
    """
    z = checks.number("z", z)
    t = checks.positive("fraction", fraction)
    c = checks.number("final_boundary", final_boundary)
    if drift is not None:
        drift = checks.number("drift", drift)
    if t >= 1.0:
        return 1.0 if z >= c else 0.0
    theta = z / math.sqrt(t) if drift is None else drift
    remaining = 1.0 - t
    return float(_sf((c - z * math.sqrt(t) - theta * remaining) / math.sqrt(remaining)))


def equivalence_conditional_power(
    z_lower: float, z_upper: float, fraction: float, final_boundary: float
) -> float:
    """Return the current-trend conditional power that both one-sided tests of a TOST succeed.

    ``z_lower`` = (estimate + margin) / se and ``z_upper`` = (margin - estimate) / se are
    the two one-sided statistics now.  Both are functions of the same final estimate,
    the first increasing and the second decreasing in it, so success is the event
    a <= estimate_final <= b for one normal variable: the two events are countermonotone
    (perfectly negatively dependent, whatever the trend), and

        P(both) = max(0, P_lower + P_upper - 1)

    exactly (the Fréchet lower bound), with P_lower and P_upper from
    ``conditional_power``.  Each marginal uses its own current trend, z / sqrt(t); for
    a TOST with a common standard error both trends are the same estimate, so this is
    exact.  The product P_lower * P_upper would treat the tests as independent and
    always over-states the chance, by (1 - P_lower)(1 - P_upper).
    """
    lower = conditional_power(z_lower, fraction, final_boundary)
    upper = conditional_power(z_upper, fraction, final_boundary)
    return float(max(0.0, lower + upper - 1.0))


# ---------------------------------------------------------------- inference after a stop


def _check_boundaries(boundaries: Sequence[float], looks: int) -> tuple[float, ...]:
    """Return the boundaries as floats in (0, Z_CAP], one per look, or raise ValueError."""
    if isinstance(boundaries, (str, bytes)) or not isinstance(boundaries, (Sequence, np.ndarray)):
        raise ValueError("boundaries must be a sequence of critical values, one per look")
    values = list(np.ravel(boundaries)) if isinstance(boundaries, np.ndarray) else list(boundaries)
    if len(values) != looks:
        raise ValueError(
            f"boundaries must have one value per look: {looks} fractions, {len(values)} boundaries"
        )
    checked = tuple(checks.number("boundary", b) for b in values)
    for b in checked:
        # The integration grid spans the whole continuation region |Z| < b only up to Z_CAP.
        if not (0.0 < b <= Z_CAP):
            raise ValueError(f"boundaries must be in (0, {Z_CAP:g}], got {b}")
    return checked


class _StagewiseTail:
    """P_theta(outcome at least as extreme as (k, z)) under the stage-wise ordering.

    Stopping on the upper side at an earlier look ranks above (k, z); at look k a larger
    z ranks above.  The null sub-densities of S_j = Z_j sqrt(t_j) on the continuation
    regions are computed once; a drift theta (E[Z_k] = theta, so S has drift
    mu = theta / sqrt(t_k) per unit of information) then enters by exponential tilting:
    the likelihood ratio of a path is exp(mu S_j - mu^2 t_j / 2), so every tail
    evaluation is k one-dimensional integrals over stored grids instead of a new
    recursion.  For the exit at look j the tilt and the Gaussian increment combine to

        int g_{j-1}(u) exp(mu u - mu^2 t_{j-1} / 2) P(N(u + mu d_j, d_j) >= a_j) du,

    d_j = t_j - t_{j-1}, a_j the exit level on the S scale.
    """

    def __init__(self, looks: tuple[float, ...], bounds: tuple[float, ...], z: float) -> None:
        self.looks = looks
        self.levels = [b * math.sqrt(t) for b, t in zip(bounds, looks, strict=True)]
        self.levels[-1] = z * math.sqrt(looks[-1])
        self.parts: list[tuple[np.ndarray, np.ndarray, float, float, float]] = []
        if len(looks) == 1:
            return
        increments = [math.sqrt(b - a) for a, b in itertools.pairwise(looks)]
        grid = _continuation_grid(bounds[0], looks[0], increments[0])
        density = _pdf(grid / math.sqrt(looks[0])) / math.sqrt(looks[0])
        for j in range(1, len(looks)):
            # (nodes, weight x null density, t_{j-1}, increment sd, exit level at j); the drift
            # moves the exit step by mu d_j, a small fraction of the node window when d_j is small.
            nodes, weighted = _step_nodes(grid, density, increments[j - 1], (self.levels[j],))
            self.parts.append((nodes, weighted, looks[j - 1], increments[j - 1], self.levels[j]))
            if j + 1 < len(looks):
                new_grid = _next_grid(bounds[j], looks[j], increments[j], grid, increments[j - 1])
                density = _propagate(grid, density, new_grid, increments[j - 1])
                grid = new_grid

    def __call__(self, theta: float) -> float:
        """Return the stage-wise tail probability at drift theta (z-scale at the stop look)."""
        mu = theta / math.sqrt(self.looks[-1])
        # Look 1: Z_1 ~ N(theta sqrt(t_1 / t_k), 1), no integration needed.
        total = float(_sf((self.levels[0] - mu * self.looks[0]) / math.sqrt(self.looks[0])))
        for nodes, weighted, t_before, sd, level in self.parts:
            # The exponent mu u - mu^2 t / 2 is at most u^2 / (2 t) <= Z_CAP^2 / 2: no overflow.
            tilt = np.exp(mu * nodes - 0.5 * mu * mu * t_before)
            exit_ = _sf((level - nodes - mu * sd * sd) / sd)
            total += float(np.dot(weighted, tilt * exit_))
        return min(max(total, 0.0), 1.0)


def _solve_drift(tail: _StagewiseTail, target: float, start: float) -> float:
    """Return the drift theta at which the (increasing) tail probability equals target."""
    from scipy.optimize import brentq

    def excess(theta: float) -> float:
        return tail(theta) - target

    # The roots lie within a few units of z; widen the bracket until it holds the root.
    width = 8.0
    low, high = start - width, start + width
    for _ in range(60):
        if excess(low) < 0.0 < excess(high):
            break
        if excess(low) >= 0.0:
            low -= width
        if excess(high) <= 0.0:
            high += width
        width *= 2.0
    else:  # pragma: no cover - the tail is a distribution function in theta
        raise ValueError(f"could not bracket the drift for tail probability {target}")
    return float(brentq(excess, low, high, xtol=1e-10, rtol=4 * np.finfo(float).eps, maxiter=200))


def stagewise_inference(
    fractions: Sequence[float],
    boundaries: Sequence[float],
    stop_look: int,
    z: float,
    estimate_se: float,
    alpha: float = 0.05,
    *,
    final: bool = False,
) -> StagewiseInference:
    """Return the stage-wise-ordering p-value, median-unbiased estimate and CI after a stop.

    ``fractions`` and ``boundaries`` are the information fractions and two-sided
    critical values |z| of the looks (for example an ``observed_boundaries`` result);
    only looks 1..stop_look are used.  ``stop_look`` is 1-based: 1 is the first look.
    ``z`` is the statistic at that look, on the side it stopped (z >= the boundary; for
    a stop on the lower boundary pass -z and negate the estimates back).  With
    ``final=True`` the stop look is the pilot's last look, reached without crossing,
    and z may be anything.  ``estimate_se`` is the standard error of the estimate at
    the stop look, so the naive estimate is z * se.

    Under a drift theta (E[Z_j] = theta sqrt(t_j / t_k)) the stage-wise tail is
    P_theta(cross the upper boundary at a look j < k) + P_theta(no crossing before k and
    Z_k >= z), with continuation regions |Z_j| < b_j: a lower crossing also stops the
    pilot and counts as less extreme (Jennison & Turnbull 2000 ch. 8, two-sided tests).
    The one-sided p-value is the tail at theta = 0 (two-sided: twice the smaller tail,
    at most 1), the median-unbiased estimate solves tail = 1/2, and the 1 - alpha
    interval solves tail = alpha/2 and 1 - alpha/2 (the tail increases with theta);
    drifts convert to the estimate's scale as theta * se.  The estimate is median
    unbiased over all outcomes of the design, not conditionally on stopping at look k.
    At look 1 all of this reduces to the naive z-test and z +/- Phi^-1(1 - alpha/2).
    """
    looks = _check_fractions(fractions, over_run=True)
    bounds = _check_boundaries(boundaries, len(looks))
    k = checks.whole("stop_look", stop_look, 1)
    if k > len(looks):
        raise ValueError(f"stop_look must be at most the number of looks ({len(looks)}), got {k}")
    z = checks.number("z", z)
    se = checks.positive("estimate_se", estimate_se)
    alpha = checks.open_unit("alpha", alpha)
    if not isinstance(final, (bool, np.bool_)):
        raise ValueError(f"final must be True or False, got {final!r}")
    if not final and z < bounds[k - 1]:
        raise ValueError(
            f"z = {z} did not cross look {k}'s boundary {bounds[k - 1]}: pass final=True "
            "if the pilot ended there without crossing, or -z for a lower crossing"
        )
    looks, bounds = looks[:k], bounds[:k]
    half = alpha / 2.0

    if k == 1:
        # A stop at the first look is a fixed-sample test: the ordering is just z.
        one_sided = float(_sf(z))
        width = _isf(half)
        theta_mue, theta_low, theta_high = z, z - width, z + width
    else:
        tail = _StagewiseTail(looks, bounds, z)
        one_sided = tail(0.0)
        theta_mue = _solve_drift(tail, 0.5, z)
        theta_low = _solve_drift(tail, half, theta_mue)
        theta_high = _solve_drift(tail, 1.0 - half, theta_mue)

    return StagewiseInference(
        stop_look=k,
        z=z,
        estimate=z * se,
        p_value=float(min(1.0, 2.0 * min(one_sided, 1.0 - one_sided))),
        median_unbiased=theta_mue * se,
        ci=(theta_low * se, theta_high * se),
        alpha=alpha,
        method=STAGEWISE_METHOD,
    )
