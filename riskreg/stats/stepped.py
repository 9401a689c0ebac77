"""Stepped-wedge pilots: the Hussey–Hughes mixed model from cluster-period summaries, and its power.

In a stepped wedge every cluster starts in the comparison condition and crosses to the pilot
at its own, randomised period. Hussey & Hughes (2007, Contemp Clin Trials 28:182–191) model
unit k of cluster i in period j as

    y_ijk = μ + β_j + θ·X_ij + α_i + e_ijk,   α_i ~ N(0, τ²),  e_ijk ~ N(0, σ²),

with fixed period effects β_j (secular trend), X_ij = 1 once cluster i has switched, and a
random cluster intercept. θ is the pilot effect.

Everything the model needs sits in each cluster-period cell's n, mean and within-cell sum of
squares: X is constant inside a cell, so the units' deviations from their cell mean carry
σ² alone (N − C degrees of freedom over C cells), and the cell means have covariance
σ²/n_ij on the diagonal plus τ² within a cluster. The restricted likelihood (REML) written
that way is the individual-level one up to a constant, so ``hussey_hughes_fit`` gives what
lme4's ``lmer(y ~ factor(period) + treated + (1 | cluster))`` or a GLS fit on individual
rows with the REML variance components gives, without the rows. σ² is profiled out, and
the one remaining parameter γ = τ²/σ² is found by a bounded one-dimensional search, so a
cluster variance of 0 is reached exactly when the data put it there.

The test: Hussey & Hughes use the Wald z; with few clusters a t reference is safer, and
``df`` lets the caller give one (``clusters − 2`` is a conservative common choice); the
default is z, as in the paper.

Planning uses the paper's closed form for Var(θ̂) with known σ² and τ² (their eq. 8):

    Var(θ̂) = I·s²·(s² + T·τ²) / ((I·U − W)·s² + (U² + I·T·U − T·W − I·V)·τ²),

where s² = σ²/m is a cell mean's variance, U = Σ X_ij, W = Σ_j (Σ_i X_ij)², V = Σ_i (Σ_j X_ij)².
Pure: numbers in, frozen dataclasses out.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize as _optimize

from riskreg.stats import checks, tails


@dataclass(frozen=True)
class Cell:
    """One cluster in one period: its units' count, mean and sum of squares about that mean."""

    cluster: Hashable
    period: int
    treated: bool
    n: int
    mean: float
    within_ss: float


@dataclass(frozen=True)
class SteppedResult:
    """The pilot effect θ from the Hussey–Hughes model, with its interval, test and variance components."""

    estimate: float
    se: float
    ci: tuple[float, float]
    statistic: float  # z, or t when df is given
    df: int | None
    p_value: float
    tau2: float  # between-cluster variance
    sigma2: float  # within-cluster (residual) variance
    icc: float  # τ² / (τ² + σ²)
    clusters: int
    periods: int
    method: str


@dataclass(frozen=True)
class SteppedPower:
    """Planning numbers for a stepped-wedge schedule: Var(θ̂), its SE, power and the design effect."""

    variance: float
    se: float
    power: float
    design_effect: float  # Var(θ̂) over that of individual randomisation of the same I·T·m units


def schedule_matrix(switch_periods: Sequence[int], periods: int) -> tuple[tuple[int, ...], ...]:
    """Return the I × T treatment matrix: cluster i is on the pilot from period ``switch_periods[i]`` on.

    Periods count from 0; a switch period equal to ``periods`` leaves that cluster untreated.
    """
    periods = checks.whole("periods", periods, 2)
    rows = []
    for i, switch in enumerate(switch_periods):
        switch = checks.whole(f"switch_periods[{i}]", switch, 0)
        if switch > periods:
            raise ValueError(f"switch_periods[{i}] must be at most {periods}, got {switch}")
        rows.append(tuple(1 if j >= switch else 0 for j in range(periods)))
    return tuple(rows)


def _check_schedule(schedule: Sequence[Sequence[int]]) -> np.ndarray:
    x = np.asarray(schedule, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError("the schedule needs at least two clusters and two periods")
    if not np.isin(x, (0.0, 1.0)).all():
        raise ValueError("the schedule holds 0 (comparison) and 1 (pilot) only")
    return x


def hussey_hughes_variance(schedule: Sequence[Sequence[int]], cell_variance: float, tau2: float) -> float:
    """Return Var(θ̂) for a schedule (I × T of 0/1) by Hussey & Hughes's closed form (2007, eq. 8).

    ``cell_variance`` is s² = σ²/m, the variance of one cluster-period mean of m units;
    ``tau2`` the between-cluster variance.
    """
    x = _check_schedule(schedule)
    s2 = checks.positive("cell_variance", cell_variance)
    if checks.number("tau2", tau2) < 0:
        raise ValueError(f"tau2 must be >= 0, got {tau2}")
    clusters, periods = x.shape
    u = x.sum()
    w = float((x.sum(axis=0) ** 2).sum())
    v = float((x.sum(axis=1) ** 2).sum())
    denominator = (clusters * u - w) * s2 + (
        u**2 + clusters * periods * u - periods * w - clusters * v
    ) * tau2
    if denominator <= 1e-12 * clusters * s2 * max(u, 1.0):
        raise ValueError("the schedule cannot separate the pilot effect from the periods")
    return float(clusters * s2 * (s2 + periods * tau2) / denominator)


def stepped_wedge_power(
    schedule: Sequence[Sequence[int]],
    effect: float,
    sd: float,
    icc: float,
    cell_size: int,
    alpha: float = 0.05,
) -> SteppedPower:
    """Return the power of the Wald test of θ for a schedule, with m = ``cell_size`` units per cluster-period.

    ``sd`` is the total standard deviation of one unit's outcome, split by ``icc`` into
    τ² = icc·sd² between clusters and σ² = (1 − icc)·sd² within (Hussey & Hughes 2007, §3).
    The design effect compares Var(θ̂) with 4·sd²/(I·T·m), the variance of the same units
    randomised one by one into two equal arms.
    """
    sd = checks.positive("sd", sd)
    if not 0.0 <= checks.number("icc", icc) < 1.0:
        raise ValueError(f"icc must be at least 0 and below 1, got {icc}")
    m = checks.whole("cell_size", cell_size, 1)
    alpha = checks.open_unit("alpha", alpha)
    effect = checks.number("effect", effect)
    variance = hussey_hughes_variance(schedule, (1 - icc) * sd**2 / m, icc * sd**2)
    se = math.sqrt(variance)
    critical = tails.norm_isf(alpha / 2)
    # Both tails, as a two-sided test; the far tail is negligible except for tiny effects.
    power = tails.norm_sf(critical - abs(effect) / se) + tails.norm_cdf(-critical - abs(effect) / se)
    x = np.asarray(schedule)
    individual = 4 * sd**2 / (x.size * m)
    return SteppedPower(variance=variance, se=se, power=power, design_effect=variance / individual)


class _Cells:
    """The cells' sums that make the likelihood cheap for any γ = τ²/σ² (Sherman–Morrison per cluster)."""

    def __init__(self, cells: Sequence[Cell]) -> None:
        used = [c for c in cells if _checked(c).n > 0]
        periods = sorted({c.period for c in used})
        clusters = list(dict.fromkeys(c.cluster for c in used))
        if len(clusters) < 2 or len(periods) < 2:
            raise ValueError("the model needs at least two clusters and two periods with units")
        treated = {c.treated for c in used}
        if treated != {True, False}:
            raise ValueError("the model needs cells both before and after the switch")
        column = {p: k for k, p in enumerate(periods[1:], start=1)}
        self.p = len(periods) + 1  # intercept, period effects after the first, θ last
        n = np.array([c.n for c in used], dtype=float)
        # Centre the means: the intercept absorbs the shift, and the sums of squares keep their digits.
        means = np.array([c.mean for c in used])
        centre = float(np.dot(n, means) / n.sum())
        y = means - centre
        x = np.zeros((len(used), self.p))
        x[:, 0] = 1.0
        for row, c in enumerate(used):
            if c.period in column:
                x[row, column[c.period]] = 1.0
            x[row, -1] = 1.0 if c.treated else 0.0
        index = {name: k for k, name in enumerate(clusters)}
        member = np.array([index[c.cluster] for c in used])
        self.sxx = (x * n[:, None]).T @ x
        self.sxy = (x * n[:, None]).T @ y
        self.syy = float(np.dot(n, y * y))
        self.b = np.zeros((len(clusters), self.p))
        np.add.at(self.b, member, x * n[:, None])
        self.c = np.bincount(member, weights=n * y, minlength=len(clusters))
        self.sizes = np.bincount(member, weights=n, minlength=len(clusters))
        self.within = math.fsum(c.within_ss for c in used)
        self.total = int(n.sum())
        self.clusters, self.periods = len(clusters), len(periods)
        if self.total - self.p <= 0:
            raise ValueError("the model needs more units than fixed effects")

    def gls(self, gamma: float) -> tuple[np.ndarray, np.ndarray, float]:
        """Return β̂, (X'V₀⁻¹X)⁻¹ and the residual quadratic form, for V = σ²·V₀ with V₀ = D⁻¹ + γ·11'."""
        w = gamma / (1.0 + gamma * self.sizes)
        xvx = self.sxx - (self.b * w[:, None]).T @ self.b
        xvy = self.sxy - (self.b * w[:, None]).T @ self.c
        yvy = self.syy - float(np.dot(w, self.c * self.c))
        try:
            inverse = np.linalg.inv(xvx)
        except np.linalg.LinAlgError:
            raise ValueError("the schedule cannot separate the pilot effect from the periods") from None
        beta = inverse @ xvy
        return beta, inverse, max(yvy - float(beta @ xvy), 0.0)

    def profile_deviance(self, gamma: float) -> float:
        """Return −2 × the REML log-likelihood with σ² profiled out, up to a constant."""
        _beta, inverse, quadratic = self.gls(gamma)
        sigma2 = (quadratic + self.within) / (self.total - self.p)
        _sign, logdet = np.linalg.slogdet(inverse)
        return float(
            (self.total - self.p) * math.log(max(sigma2, 1e-300))
            + np.log1p(gamma * self.sizes).sum()
            - logdet  # log|X'V₀⁻¹X| = −log|(X'V₀⁻¹X)⁻¹|
        )


def _checked(cell: Cell) -> Cell:
    checks.whole("n", cell.n, 0)
    checks.whole("period", cell.period, 0)
    checks.number("mean", cell.mean)
    if checks.number("within_ss", cell.within_ss) < 0:
        raise ValueError(f"within_ss must be >= 0, got {cell.within_ss}")
    return cell


def _reml_gamma(model: _Cells) -> float:
    """Return the REML γ = τ²/σ², searched as φ = γ/(1 + γ) in [0, 1) so that 0 is reachable."""

    def deviance(phi: float) -> float:
        return model.profile_deviance(phi / (1.0 - phi))

    grid = np.linspace(0.0, 0.995, 200)
    values = [deviance(float(phi)) for phi in grid]
    best = int(np.argmin(values))
    low, high = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    found = _optimize.minimize_scalar(
        deviance, bounds=(low, high), method="bounded", options={"xatol": 1e-10}
    )
    phi = float(found.x) if found.fun < values[best] else float(grid[best])
    if deviance(0.0) <= deviance(phi):
        phi = 0.0  # the boundary: the clusters differ no more than their units would make them
    return phi / (1.0 - phi)


def hussey_hughes_fit(
    cells: Sequence[Cell],
    level: float = 0.95,
    df: int | None = None,
    components: tuple[float, float] | None = None,
) -> SteppedResult:
    """Return θ̂ from the Hussey–Hughes model fitted to cluster-period cells, by REML and GLS.

    ``components`` = (σ², τ²) fixes the variance components instead of estimating them
    (GLS with a known compound-symmetry covariance, as the paper's design calculations do).
    ``df`` gives a t reference for the test and interval; None keeps the paper's z.
    """
    level = checks.open_unit("level", level)
    model = _Cells(cells)
    if components is None:
        gamma = _reml_gamma(model)
        beta, inverse, quadratic = model.gls(gamma)
        sigma2 = (quadratic + model.within) / (model.total - model.p)
        tau2 = gamma * sigma2
        method = "Hussey-Hughes linear mixed model (REML), period fixed effects, random cluster intercept"
    else:
        sigma2 = checks.positive("sigma2", components[0])
        tau2 = checks.number("tau2", components[1])
        if tau2 < 0:
            raise ValueError(f"tau2 must be >= 0, got {tau2}")
        beta, inverse, _quadratic = model.gls(tau2 / sigma2)
        method = "Hussey-Hughes model by GLS with the given variance components"
    estimate = float(beta[-1])
    se = math.sqrt(sigma2 * float(inverse[-1, -1]))
    if df is None:
        upper, quantile = tails.norm_sf, tails.norm_isf
    else:
        whole = checks.whole("df", df, 1)
        upper, quantile = (lambda x: tails.t_sf(x, whole)), (lambda p: tails.t_isf(p, whole))
    statistic = estimate / se if se > 0 else math.copysign(math.inf, estimate) if estimate else 0.0
    half = quantile((1 - level) / 2) * se
    return SteppedResult(
        estimate=estimate,
        se=se,
        ci=(estimate - half, estimate + half),
        statistic=statistic,
        df=df,
        p_value=2 * upper(abs(statistic)),
        tau2=tau2,
        sigma2=sigma2,
        icc=tau2 / (tau2 + sigma2) if tau2 + sigma2 > 0 else 0.0,
        clusters=model.clusters,
        periods=model.periods,
        method=method,
    )


__all__ = [
    "Cell",
    "SteppedPower",
    "SteppedResult",
    "hussey_hughes_fit",
    "hussey_hughes_variance",
    "schedule_matrix",
    "stepped_wedge_power",
]
