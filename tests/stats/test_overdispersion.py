"""Overdispersed counts: the Pearson dispersion from per-arm sums, and the quasi-Poisson path it switches on."""

import math

import numpy as np
import pytest
from scipy import special

from riskreg.stats.compare import (
    POISSON_CHECKED_METHOD,
    POISSON_METHOD,
    POISSON_OVERDISPERSED_METHOD,
    QUASI_POISSON_METHOD,
    compare_counts,
    pearson_dispersion,
)
from riskreg.stats.summaries import CountSummary
from riskreg.stats.verdicts import judge

# R: datasets::InsectSprays, count by spray (12 plots each)
INSECT_SPRAYS = {
    "A": [10, 7, 20, 14, 14, 12, 10, 23, 17, 20, 14, 13],
    "B": [11, 17, 21, 11, 16, 14, 17, 17, 19, 21, 7, 13],
    "C": [0, 1, 7, 2, 3, 1, 2, 1, 3, 0, 1, 4],
    "D": [3, 5, 12, 6, 4, 3, 5, 5, 5, 5, 2, 4],
    "E": [3, 5, 3, 5, 3, 6, 1, 1, 3, 2, 6, 4],
    "F": [11, 9, 15, 22, 15, 16, 13, 10, 26, 26, 24, 13],
}


def summarise(y: np.ndarray, t: np.ndarray) -> CountSummary:
    """Per-arm sufficient statistics of units with counts y and exposures t."""
    return CountSummary(int(y.size), int(y.sum()), float(t.sum()), float((y.astype(float) ** 2 / t).sum()))


def glm_quasipoisson(y: np.ndarray, t: np.ndarray, pilot: np.ndarray) -> tuple[float, float, float]:
    """Fit y ~ arm + offset(log t) by IRLS per unit; return (log rate ratio, quasi-Poisson SE, φ̂).

    An independent computation of what R's glm(family = quasipoisson) reports: Pearson
    dispersion Σ (y - μ)²/μ / (N - 2) and SE = sqrt(φ̂ [(XᵀWX)⁻¹]₂₂).
    """
    x = np.column_stack([np.ones(y.size), pilot.astype(float)])
    offset = np.log(t)
    beta = np.array([math.log(y.sum() / t.sum()), 0.0])
    for _ in range(100):
        eta = x @ beta + offset
        mu = np.exp(eta)
        working = eta - offset + (y - mu) / mu
        updated = np.linalg.solve(x.T @ (mu[:, None] * x), x.T @ (mu * working))
        if np.max(np.abs(updated - beta)) < 1e-13:
            beta = updated
            break
        beta = updated
    mu = np.exp(x @ beta + offset)
    phi = float(((y - mu) ** 2 / mu).sum() / (y.size - 2))
    covariance = phi * np.linalg.inv(x.T @ (mu[:, None] * x))
    return float(beta[1]), float(math.sqrt(covariance[1, 1])), phi


class TestPearsonDispersion:
    def test_insect_sprays_glm_dispersion(self):
        arms = [summarise(np.array(v), np.ones(len(v))) for v in INSECT_SPRAYS.values()]
        # R: summary(glm(count ~ spray, family = quasipoisson, data = InsectSprays))$dispersion
        #    -> 1.507713 (Pearson X² / 66 residual df)
        assert pearson_dispersion(arms) == pytest.approx(1.507713, abs=5e-7)

    def test_matches_per_unit_computation(self):
        rng = np.random.default_rng(20240623)
        for _ in range(20):
            n_c, n_p = (int(v) for v in rng.integers(2, 80, size=2))
            t = rng.uniform(0.2, 5.0, n_c + n_p)
            y = rng.negative_binomial(rng.uniform(0.3, 5.0), 0.3, size=n_c + n_p)
            if y[:n_c].sum() == 0 or y[n_c:].sum() == 0:
                continue
            # Direct per-unit Pearson statistic with each arm's own rate (numpy, by definition).
            pearson = 0.0
            for arm in (slice(0, n_c), slice(n_c, None)):
                fitted = y[arm].sum() / t[arm].sum() * t[arm]
                pearson += ((y[arm] - fitted) ** 2 / fitted).sum()
            expected = pearson / (n_c + n_p - 2)
            comparison, pilot = summarise(y[:n_c], t[:n_c]), summarise(y[n_c:], t[n_c:])
            assert pearson_dispersion([comparison, pilot]) == pytest.approx(expected, rel=1e-10)
            assert compare_counts(comparison, pilot).dispersion == pytest.approx(expected, rel=1e-10)

    def test_arm_without_events_adds_nothing(self):
        # Comparison units (y, t) (0, 1) × 4; pilot (1, 1), (5, 1), (0, 1): λ = 2,
        # Pearson = (1 + 25 + 0)/2 - 6 = 7, φ̂ = 7 / (7 - 2) = 1.4 (by hand).
        comparison, pilot = CountSummary(4, 0, 4.0, 0.0), CountSummary(3, 6, 3.0, 26.0)
        assert pearson_dispersion([comparison, pilot]) == pytest.approx(1.4, rel=1e-12)

    def test_unknown_or_undefined(self):
        known = CountSummary(5, 10, 5.0, 30.0)
        assert pearson_dispersion([known, CountSummary(5, 10, 5.0)]) is None
        assert pearson_dispersion([CountSummary(1, 3, 1.0, 9.0), CountSummary(1, 4, 1.0, 16.0)]) is None
        assert pearson_dispersion([CountSummary(3, 0, 3.0, 0.0), CountSummary(3, 0, 3.0, 0.0)]) is None


class TestQuasiPoisson:
    def test_matches_glm_on_insect_sprays(self):
        # Pilot = spray C, comparison = spray A, 12 plots each, exposure 1 per plot.
        y_a, y_c = np.array(INSECT_SPRAYS["A"]), np.array(INSECT_SPRAYS["C"])
        y = np.concatenate([y_a, y_c])
        t = np.ones(y.size)
        is_pilot = np.repeat([0, 1], 12)
        r = compare_counts(summarise(y_a, t[:12]), summarise(y_c, t[12:]))
        log_ratio, se, phi = glm_quasipoisson(y, t, is_pilot)
        assert r.method == QUASI_POISSON_METHOD and r.df == 22.0
        # Independent computation: IRLS fit of the per-unit GLM (glm_quasipoisson above).
        assert r.dispersion == pytest.approx(phi, rel=1e-10)
        assert math.log(r.estimate) == pytest.approx(log_ratio, abs=1e-10)
        assert r.se == pytest.approx(se, rel=1e-8)
        assert r.statistic == pytest.approx(log_ratio / se, rel=1e-8)
        # Sums by hand: A 174 insects, C 25: ratio 25/174.
        assert r.estimate == pytest.approx(25 / 174, rel=1e-12)
        from scipy.stats import t as student  # test only: an independent t distribution

        assert r.p_value == pytest.approx(2 * student.sf(abs(log_ratio / se), 22), rel=1e-8)
        quantile = student.ppf(0.975, 22)
        assert r.ci_low == pytest.approx(math.exp(log_ratio - quantile * se), rel=1e-8)
        assert r.ci_high == pytest.approx(math.exp(log_ratio + quantile * se), rel=1e-8)

    def test_unequal_exposures_match_glm(self):
        rng = np.random.default_rng(20240624)
        t = rng.uniform(0.5, 3.0, 60)
        y = rng.negative_binomial(0.8, 0.8 / (0.8 + 2.0 * t))
        is_pilot = np.repeat([0, 1], 30)
        r = compare_counts(summarise(y[:30], t[:30]), summarise(y[30:], t[30:]), alpha=0.1)
        log_ratio, se, phi = glm_quasipoisson(y, t, is_pilot)
        assert r.method == QUASI_POISSON_METHOD
        # Independent computation: IRLS fit of the per-unit GLM.
        assert (r.dispersion, math.log(r.estimate), r.se) == pytest.approx((phi, log_ratio, se), rel=1e-8)
        half = -special.stdtrit(58, 0.05) * se
        assert (r.ci_low, r.ci_high) == pytest.approx(
            (math.exp(log_ratio - half), math.exp(log_ratio + half)), rel=1e-10
        )

    def test_paths(self):
        equi = compare_counts(CountSummary(3, 6, 3.0, 12.0), CountSummary(3, 6, 3.0, 12.0))
        # All six units at the same rate 2: Pearson statistic 0, φ̂ = 0 (by hand).
        assert equi.dispersion == 0.0 and equi.method == POISSON_CHECKED_METHOD
        unknown = compare_counts(CountSummary(3, 6, 3.0, 30.0), CountSummary(3, 6, 3.0))
        assert unknown.dispersion is None and unknown.method == POISSON_METHOD and unknown.warnings == ()
        # Comparison (0, 1) × 3; pilot (0, 1), (0, 1), (6, 1): φ̂ = (36/2 - 6) / 4 = 3 (by hand).
        fallback = compare_counts(CountSummary(3, 0, 3.0, 0.0), CountSummary(3, 6, 3.0, 36.0))
        assert fallback.dispersion == pytest.approx(3.0) and fallback.method == POISSON_OVERDISPERSED_METHOD
        assert fallback.warnings == ("overdispersion-ignored", "no-comparison-events")
        assert fallback.ci_high is None and fallback.ci_low > 0

    def test_huge_counts(self):
        comparison = CountSummary(1000, 10**15, 1e15, 3e15)
        pilot = CountSummary(1000, 10**15 + 10**8, 1e15, 3e15 * (1 + 2e-7))
        r = compare_counts(comparison, pilot)
        assert r.method == QUASI_POISSON_METHOD and r.dispersion > 1e5
        assert r.ci_low < r.estimate < r.ci_high and 0.0 < r.p_value < 1.0

    def test_tiny_alpha_stays_finite(self):
        r = compare_counts(CountSummary(10, 40, 10.0, 400.0), CountSummary(10, 60, 10.0, 600.0), alpha=1e-15)
        assert r.method == QUASI_POISSON_METHOD and 0.0 < r.ci_low < r.estimate < r.ci_high


class TestFalseHarmSimulation:
    def test_negative_binomial_no_difference(self):
        """Overdispersed counts with no true difference: "harm" at most 2.5% of the time.

        Negative binomial counts, shape 0.5 and mean 2 per unit (variance 2 + 2²/0.5 = 10, so
        φ ≈ 5), exposure 1, 100 units per arm, 2000 seeded replicates.  Harm (lower is better,
        the whole 95% CI above 1) is a one-sided 2.5% error.
        """
        rng = np.random.default_rng(20240615)
        reps, units, shape, mean = 2000, 100, 0.5, 2.0
        y = rng.negative_binomial(shape, shape / (shape + mean), size=(reps, 2, units))
        events, squares = y.sum(axis=2), (y.astype(float) ** 2).sum(axis=2)
        harm = poisson_harm = 0
        for i in range(reps):
            comparison = CountSummary(units, int(events[i, 0]), float(units), float(squares[i, 0]))
            pilot = CountSummary(units, int(events[i, 1]), float(units), float(squares[i, 1]))
            r = compare_counts(comparison, pilot)
            harm += judge("superiority", "lower", r.ci_low, r.ci_high, ratio=True) == "harm"
            # The same data without the per-unit sums: the exact Poisson test of before.
            old = compare_counts(
                CountSummary(units, int(events[i, 0]), float(units)),
                CountSummary(units, int(events[i, 1]), float(units)),
            )
            poisson_harm += judge("superiority", "lower", old.ci_low, old.ci_high, ratio=True) == "harm"
        mc_se = math.sqrt(0.025 * 0.975 / reps)
        # This seed: 0.0275 quasi-Poisson.
        assert harm / reps <= 0.025 + 3 * mc_se
        # The Poisson test ignores φ ≈ 5: its SE is ~sqrt(5) too small, so the one-sided error is
        # about Φ(-1.96/sqrt(5)) = 0.19; this seed gives 0.1855 (seeds 1 and 2: 0.176, 0.1885).
        assert poisson_harm / reps > 0.15
