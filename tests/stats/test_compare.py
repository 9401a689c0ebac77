"""Reference-value tests for riskreg.stats.summaries and riskreg.stats.compare."""

import json
import math
import time
import tracemalloc
from fractions import Fraction

import numpy as np
import pytest
from scipy import special

from riskreg.stats.compare import (
    MN_METHOD,
    POISSON_CHECKED_METHOD,
    POISSON_METHOD,
    Comparison,
    compare_binary,
    compare_continuous,
    compare_counts,
)
from riskreg.stats.summaries import BinarySummary, ContinuousSummary, CountSummary

# R: datasets::sleep, extra by group
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def no_nan(result: Comparison) -> bool:
    """True when every number in the result is finite or None (JSON-safe)."""
    json.dumps(result.to_dict(), allow_nan=False)
    return True


class TestContinuousSummary:
    def test_matches_numpy(self):
        s = ContinuousSummary.from_values(SLEEP_1)
        assert s.n == 10
        assert s.mean == pytest.approx(np.mean(SLEEP_1), abs=1e-12)
        assert s.variance == pytest.approx(np.var(SLEEP_1, ddof=1), rel=1e-12)
        assert s.sd == pytest.approx(np.std(SLEEP_1, ddof=1), rel=1e-12)

    def test_large_offset_is_stable(self):
        # Values near 1e9 with spread 0.01: naive sum-of-squares loses every digit here.
        x = 1e9 + np.random.default_rng(7).normal(0.0, 0.01, size=1000)
        expected = np.var(x, ddof=1)
        welford = ContinuousSummary.from_values(x)
        merged = ContinuousSummary.empty()
        for chunk in np.array_split(x, 10):
            merged = merged.combine(ContinuousSummary.from_values(chunk))
        d = x - x[0]
        shifted = ContinuousSummary.from_shifted_sums(x.size, x[0], d.sum(), (d * d).sum())
        for s in (welford, merged, shifted):
            assert s.n == 1000
            assert s.variance == pytest.approx(expected, rel=1e-6)
            assert s.mean == pytest.approx(np.mean(x), abs=1e-6)

    def test_combine_equals_pooled(self):
        both = ContinuousSummary.from_values(SLEEP_1 + SLEEP_2)
        merged = ContinuousSummary.from_values(SLEEP_1).combine(ContinuousSummary.from_values(SLEEP_2))
        assert merged.n == both.n
        assert merged.mean == pytest.approx(both.mean, abs=1e-12)
        assert merged.m2 == pytest.approx(both.m2, rel=1e-12)

    def test_small_samples(self):
        assert ContinuousSummary.from_values([]) == ContinuousSummary(0, 0.0, 0.0)
        one = ContinuousSummary.from_values([3.5])
        assert (one.n, one.mean, one.m2, one.variance, one.sd) == (1, 3.5, 0.0, None, None)
        assert ContinuousSummary.from_shifted_sums(0, 5.0, 0.0, 0.0).n == 0
        assert ContinuousSummary.from_values([2.0, 2.0, 2.0]).variance == 0.0

    @pytest.mark.parametrize(
        "build",
        [
            lambda: ContinuousSummary(-1, 0.0, 0.0),
            lambda: ContinuousSummary(3, 1.0, -0.5),
            lambda: ContinuousSummary(2, math.nan, 1.0),
            lambda: ContinuousSummary.from_values([1.0, math.inf]),
            lambda: ContinuousSummary.from_shifted_sums(0, 0.0, 1.0, 1.0),
            lambda: ContinuousSummary(2.5, 1.0, 1.0),
        ],
    )
    def test_invalid_input(self, build):
        with pytest.raises(ValueError):
            build()


class TestBinaryAndCountSummary:
    def test_derived_values(self):
        assert BinarySummary(8, 2).proportion == 0.25
        assert BinarySummary(0, 0).proportion is None
        assert CountSummary(3, 6, 12.0).rate == 0.5
        assert CountSummary(0, 0, 0.0).rate is None
        assert CountSummary(3, 6, 12.0).to_dict() == {
            "n": 3,
            "events": 6,
            "exposure": 12.0,
            "rate": 0.5,
            "sum_y2_over_t": None,
        }
        # Units (y, t) = (1, 4), (2, 4), (3, 4): Σ y²/t = 14/4.
        assert CountSummary(3, 6, 12.0, 3.5).to_dict()["sum_y2_over_t"] == 3.5
        assert CountSummary(0, 0, 0.0, 0.0).sum_y2_over_t == 0.0
        assert CountSummary(4, 0, 9.0, 0).sum_y2_over_t == 0.0
        # Equal rates in every unit reach the Cauchy–Schwarz floor events²/exposure exactly.
        assert CountSummary(3, 6, 12.0, 3.0).sum_y2_over_t == 3.0

    @pytest.mark.parametrize(
        "build",
        [
            lambda: BinarySummary(-1, 0),
            lambda: BinarySummary(5, 6),
            lambda: BinarySummary(5, True),
            lambda: CountSummary(3, 2, 0.0),
            lambda: CountSummary(3, 2, -1.0),
            lambda: CountSummary(3, -2, 1.0),
            lambda: CountSummary(0, 1, 0.0),
            lambda: CountSummary(3, 6, 12.0, -1.0),
            lambda: CountSummary(3, 6, 12.0, math.nan),
            lambda: CountSummary(3, 6, 12.0, math.inf),
            lambda: CountSummary(3, 6, 12.0, True),
            lambda: CountSummary(3, 6, 12.0, "3.5"),
            lambda: CountSummary(0, 0, 0.0, 1.0),  # an empty arm has no units to sum over
            lambda: CountSummary(3, 0, 12.0, 0.5),  # no events: every y²/t is 0
            lambda: CountSummary(3, 6, 12.0, 2.9),  # below events²/exposure = 3: impossible
        ],
    )
    def test_invalid_input(self, build):
        with pytest.raises(ValueError):
            build()


class TestWelch:
    def sleep(self, alpha=0.05):
        # Pilot = group 1, comparison = group 2, so pilot - comparison is R's group1 - group2.
        return compare_continuous(
            ContinuousSummary.from_values(SLEEP_2), ContinuousSummary.from_values(SLEEP_1), alpha
        )

    def test_sleep(self):
        r = self.sleep()
        assert r.kind == "continuous" and r.warnings == ()
        # R: t.test(extra ~ group, data = sleep)  -> t = -1.8608, df = 17.776, p-value = 0.07939
        assert r.statistic == pytest.approx(-1.8608, abs=1e-4)
        assert r.df == pytest.approx(17.776, abs=1e-3)
        assert r.p_value == pytest.approx(0.07939, abs=1e-5)
        # R: same call, 95 percent confidence interval: -3.3654832  0.2054832; mean 0.75 vs 2.33
        assert r.ci_low == pytest.approx(-3.3654832, abs=1e-7)
        assert r.ci_high == pytest.approx(0.2054832, abs=1e-7)
        assert r.estimate == pytest.approx(-1.58, abs=1e-12)
        assert r.ci_level == 0.95

    def test_hedges_g(self):
        comparison = ContinuousSummary(20, 10.0, 19 * 2.0**2)
        pilot = ContinuousSummary(20, 15.0, 19 * 2.0**2)
        r = compare_continuous(comparison, pilot)
        # R: reproducer::calculateHg(10, 15, 20, 20, 2, 2)  -> HgAdjusted 2.450276 (exact J)
        assert r.effect_size == pytest.approx(2.450276, abs=1e-6)

    def test_zero_variance_in_both_arms(self):
        r = compare_continuous(
            ContinuousSummary.from_values([3.0] * 5), ContinuousSummary.from_values([4.0] * 5)
        )
        assert r.warnings == ("zero-variance",)
        assert r.estimate == 1.0 and r.p_value is None and r.ci_low is None and r.effect_size is None
        assert no_nan(r)

    def test_zero_variance_in_one_arm_is_fine(self):
        r = compare_continuous(
            ContinuousSummary.from_values([3.0] * 5), ContinuousSummary.from_values(SLEEP_1)
        )
        assert r.warnings == () and r.p_value is not None
        # With one variance zero, Welch df = n - 1 of the other arm.
        assert r.df == pytest.approx(9.0, abs=1e-12)

    def test_too_few_and_empty(self):
        one = compare_continuous(ContinuousSummary.from_values([1.0]), ContinuousSummary.from_values(SLEEP_1))
        assert one.warnings == ("too-few-units",) and one.estimate == pytest.approx(-0.25)
        assert one.p_value is None and one.se is None
        empty = compare_continuous(ContinuousSummary.empty(), ContinuousSummary.from_values(SLEEP_1))
        assert empty.warnings == ("empty-arm",) and empty.estimate is None
        assert no_nan(one) and no_nan(empty)

    @pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 1.5, math.nan])
    def test_invalid_alpha(self, alpha):
        with pytest.raises(ValueError, match="alpha"):
            self.sleep(alpha)

    def test_to_dict_is_json_ready(self):
        d = self.sleep().to_dict()
        assert json.loads(json.dumps(d)) == d
        assert d["warnings"] == [] and isinstance(d["p_value"], float)


def _restricted_by_roots(x1: int, n1: int, x2: int, n2: int, delta: float) -> tuple[float, float]:
    """Restricted MLE of (p1, p2) under p1 - p2 = delta, independently of compare.py's cubic formula.

    The likelihood equation in p2, multiplied out by p1(1 - p1)p2(1 - p2), is solved with numpy's
    polynomial roots; the feasible root or end point with the highest log-likelihood wins.
    """
    p2 = np.polynomial.Polynomial([0.0, 1.0])
    p1 = p2 + delta
    equation = (
        x1 * (1 - p1) * p2 * (1 - p2)
        - (n1 - x1) * p1 * p2 * (1 - p2)
        + x2 * p1 * (1 - p1) * (1 - p2)
        - (n2 - x2) * p1 * (1 - p1) * p2
    )
    low, high = max(0.0, -delta), min(1.0, 1.0 - delta)
    candidates = [low, high] + [
        r.real for r in equation.roots() if abs(r.imag) < 1e-9 and low <= r.real <= high
    ]

    def loglik(q2: float) -> float:
        q1 = q2 + delta
        return float(
            special.xlogy(x1, q1)
            + special.xlog1py(n1 - x1, -q1)
            + special.xlogy(x2, q2)
            + special.xlog1py(n2 - x2, -q2)
        )

    best = max(candidates, key=loglik)
    return best + delta, best


def _mn_p(x1: int, n1: int, x2: int, n2: int, delta: float) -> float:
    """Two-sided MN score p-value for H0: p1 - p2 = delta, from the independent restricted MLE."""
    estimate = x1 / n1 - x2 / n2
    q1, q2 = _restricted_by_roots(x1, n1, x2, n2, delta)
    n = n1 + n2
    variance = (q1 * (1 - q1) / n1 + q2 * (1 - q2) / n2) * n / (n - 1)
    if variance <= 0.0:
        return 1.0 if abs(estimate - delta) < 1e-12 else 0.0
    return float(2.0 * special.ndtr(-abs(estimate - delta) / math.sqrt(variance)))


def grid_inversion(x1: int, n1: int, x2: int, n2: int, alpha: float = 0.05) -> tuple[float, float]:
    """Return the MN CI by brute force: p(delta) on a grid of 401 points, then bisection at the two edges.

    Also checks that the accepted grid points form one run (the inverted set is an interval).
    """
    grid = np.linspace(-1.0, 1.0, 401)
    accepted = np.array([_mn_p(x1, n1, x2, n2, d) >= alpha for d in grid])
    inside = np.flatnonzero(accepted)
    assert inside.size and np.all(np.diff(inside) == 1), "the accepted set is not an interval"

    def edge(out: float, into: float) -> float:
        for _ in range(60):
            middle = (out + into) / 2
            if _mn_p(x1, n1, x2, n2, middle) >= alpha:
                into = middle
            else:
                out = middle
        return into

    first, last = inside[0], inside[-1]
    low = grid[0] if first == 0 else edge(grid[first - 1], grid[first])
    high = grid[-1] if last == grid.size - 1 else edge(grid[last + 1], grid[last])
    return float(low), float(high)


def binary(
    x_pilot: int, n_pilot: int, x_comparison: int, n_comparison: int, alpha: float = 0.05
) -> Comparison:
    """compare_binary with the pilot's numbers first, as the references print them (pilot - comparison)."""
    return compare_binary(BinarySummary(n_comparison, x_comparison), BinarySummary(n_pilot, x_pilot), alpha)


class TestMiettinenNurminen:
    @pytest.mark.parametrize(
        ("table", "low", "high"),
        [
            # Newcombe (1998) Stat Med 17:873, Table II (a) 56/70 - 48/80, method 6 (Miettinen–Nurminen);
            # as reproduced with SAS in WUSS 2016 paper 127, p. 9, and in the cicalc R package tests
            pytest.param((56, 70, 48, 80), 0.0528, 0.3382, id="newcombe-a"),
            # Newcombe (1998) Table II (b) 9/10 - 3/10, method 6; same two secondary sources
            pytest.param((9, 10, 3, 10), 0.1700, 0.8406, id="newcombe-b"),
            # Newcombe (1998) Table II (d) 5/56 - 0/29, method 6 (R ratesci tests/testthat/test3.R,
            # "Newcombe RD example (d), Miettinen-Nurminen")
            pytest.param((5, 56, 0, 29), -0.0326, 0.1933, id="newcombe-d"),
            # Newcombe (1998) Table II, 10/10 - 0/20, method 6; same sources as (a); upper limit 1
            pytest.param((10, 10, 0, 20), 0.7156, 1.0, id="newcombe-10/10-0/20"),
            # HIV trial 84/101 - 89/105, Miettinen–Nurminen: WUSS 2016 paper 127 (SAS PROC FREQ RISKDIFF)
            pytest.param((84, 101, 89, 105), -0.1191, 0.0860, id="wuss-hiv"),
            # Fagerland, Lydersen & Laake (2017) Statistical Analysis of Contingency Tables, ch. 4:
            # CHRNA4 genotype and XFS (Ritland et al. 2007) 0/16 - 15/72, MN asymptotic score
            # -0.3164 to -0.0056 (R contingencytables, tests/testthat/test-ch4.R)
            pytest.param((0, 16, 15, 72), -0.3164, -0.0056, id="fagerland-chrna4"),
        ],
    )
    def test_published_intervals(self, table, low, high):
        r = binary(*table)
        assert r.method == MN_METHOD and r.kind == "binary"
        assert r.estimate == pytest.approx(table[0] / table[1] - table[2] / table[3], abs=1e-15)
        # Published limits are rounded to 4 decimals (source in the parameter's comment).
        assert r.ci_low == pytest.approx(low, abs=5e-5)
        assert r.ci_high == pytest.approx(high, abs=5e-5)
        assert no_nan(r)

    @pytest.mark.parametrize(
        ("table", "low", "high"),
        [
            # NOT a verified published value (Newcombe 1998 Table II (c) 6/7 - 2/7, method 6, is
            # believed to read 0.0342 to 0.8534): compare_binary's output to 7 decimals, checked
            # in the test body against the independent grid inversion
            pytest.param((6, 7, 2, 7), 0.0341755, 0.8534053, id="6/7-2/7"),
            # Unpublished: 0/10 - 20/20, the estimate -1 is the lower limit; grid inversion in the body
            pytest.param((0, 10, 20, 20), -1.0, -0.7156187, id="0/10-20/20"),
        ],
    )
    def test_unpublished_intervals_by_grid_inversion(self, table, low, high):
        r = binary(*table)
        # Independent computation: numpy polynomial roots for the restricted MLE, p(delta) on a
        # grid, bisection at the edges of the accepted set.
        grid_low, grid_high = grid_inversion(*table)
        assert r.ci_low == pytest.approx(grid_low, abs=1e-9)
        assert r.ci_high == pytest.approx(grid_high, abs=1e-9)
        # Regression values (compare_binary itself, 7 decimals; see the parameter's comment).
        assert r.ci_low == pytest.approx(low, abs=5e-8)
        assert r.ci_high == pytest.approx(high, abs=5e-8)

    @pytest.mark.parametrize(
        ("n_pilot", "n_comparison"), [(10, 20), (20, 10), (7, 7), (1, 3), (10**12, 10**12), (3, 10**9)]
    )
    @pytest.mark.parametrize("alpha", [0.05, 0.0002])
    def test_no_events_in_closed_form(self, n_pilot, n_comparison, alpha):
        r = binary(0, n_pilot, 0, n_comparison, alpha)
        # By hand: with no events the restricted MLE for delta > 0 is (delta, 0), so
        # V = delta (1 - delta) / n_pilot × N/(N - 1) and delta = z sqrt(V) gives
        # delta = k/(1 + k), k = z² N / ((N - 1) n_pilot); mirrored below with n_comparison.
        # For 0/10 - 0/20 this is -0.1658 to 0.2844 (Newcombe 1998 Table II (e), method 6, as
        # far as recalled: unconfirmed, so the closed form is the reference here).
        z = -special.ndtri(alpha / 2)
        n = n_pilot + n_comparison
        k_high = z * z * n / ((n - 1) * n_pilot)
        k_low = z * z * n / ((n - 1) * n_comparison)
        assert r.ci_high == pytest.approx(k_high / (1 + k_high), rel=1e-12)
        assert r.ci_low == pytest.approx(-k_low / (1 + k_low), rel=1e-12)
        # Complementing every outcome negates the interval.
        full = binary(n_pilot, n_pilot, n_comparison, n_comparison, alpha)
        assert (full.ci_low, full.ci_high) == pytest.approx((-r.ci_high, -r.ci_low), rel=1e-12)
        assert r.p_value == full.p_value == 1.0

    @pytest.mark.parametrize(
        "case",
        [
            (0, 10**12, 0, 10**12, -3.84e-12),  # the cubic alone put the MLE at 5e-10, not 0
            (1, 10**12, 2, 10**12, 1e-12),
            (3, 10**12, 7, 10**12, -2e-12),
            (5, 4571251174, 3, 4957805407, 1.007985545231358e-09),
            (0, 74, 1, 105800743456, -7.142363486284347e-09),
            (1, 565265540, 1, 11740402198, 1.6700360551601098e-09),
            (56, 70, 48, 80, 0.0528),
            (9, 10, 3, 10, -0.3),
        ],
    )
    def test_restricted_mle_against_exact_arithmetic(self, case):
        from riskreg.stats.compare import _mn_restricted

        x1, n1, x2, n2, delta = case
        exact_delta = Fraction(delta)

        def score(p2: Fraction) -> Fraction:
            p1 = p2 + exact_delta
            terms = ((x1, p1), (-(n1 - x1), 1 - p1), (x2, p2), (-(n2 - x2), 1 - p2))
            return sum((Fraction(c) / p for c, p in terms if c), Fraction(0))

        # Independent computation: the likelihood score in exact rational arithmetic, bisected
        # (it decreases in p2); an end point when the score already has the wrong sign there.
        low, high = max(Fraction(0), -exact_delta), min(Fraction(1), 1 - exact_delta)
        tiny = (high - low) / 10**30
        if score(low + tiny) <= 0:
            expected = low
        elif score(high - tiny) >= 0:
            expected = high
        else:
            a, b = low + tiny, high - tiny
            for _ in range(120):
                middle = Fraction((a + b) / 2).limit_denominator(10**40)
                a, b = (middle, b) if score(middle) > 0 else (a, middle)
            expected = a
        p1, p2 = _mn_restricted(x1, n1, x2, n2, delta)
        q1, q2 = float(expected + exact_delta), float(expected)
        variance = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
        assert variance == pytest.approx(q1 * (1 - q1) / n1 + q2 * (1 - q2) / n2, rel=1e-9)
        assert p2 == pytest.approx(q2, rel=1e-9, abs=1e-300)

    def test_agrees_with_grid_inversion_on_random_tables(self):
        rng = np.random.default_rng(20240620)
        for _ in range(12):
            n1, n2 = (int(v) for v in rng.integers(1, 120, size=2))
            x1, x2 = int(rng.integers(0, n1 + 1)), int(rng.integers(0, n2 + 1))
            alpha = float(rng.choice([0.05, 0.01, 0.2]))
            r = binary(x1, n1, x2, n2, alpha)
            low, high = grid_inversion(x1, n1, x2, n2, alpha)
            # Independent computation (see grid_inversion); both should be exact to ~1e-12.
            assert (r.ci_low, r.ci_high) == pytest.approx((low, high), abs=1e-9), (x1, n1, x2, n2, alpha)

    def test_p_value_is_prop_test_with_the_mn_factor(self):
        r = binary(94, 214, 39, 128)
        n = 214 + 128
        # R: prop.test(c(94, 39), c(214, 128), correct = FALSE)  (output printed at
        #    influentialpoints.com/notes/n9rmf3.htm): X-squared = 6.1026, df = 1.  The MN score
        #    z at 0 has z² = X² (N - 1)/N.
        assert r.statistic**2 == pytest.approx(6.1026 * (n - 1) / n, abs=1e-4)
        assert r.p_value == pytest.approx(special.chdtrc(1, 6.1026 * (n - 1) / n), abs=2e-6)
        assert r.statistic > 0 and r.df is None  # pilot higher: z > 0
        # Not R's prop.test p-value 0.01350: the N/(N - 1) factor makes it slightly larger.
        assert r.p_value > 0.01350

    def test_identity_with_pearson_chi_squared(self):
        from scipy.stats import chi2_contingency  # test only: an independent Pearson X²

        rng = np.random.default_rng(20240621)
        for _ in range(50):
            n1, n2 = (int(v) for v in rng.integers(2, 300, size=2))
            x1, x2 = int(rng.integers(0, n1 + 1)), int(rng.integers(0, n2 + 1))
            if x1 + x2 in (0, n1 + n2):
                continue  # X² is 0/0 there; covered by test_edges
            table = [[x1, n1 - x1], [x2, n2 - x2]]
            x_squared = chi2_contingency(table, correction=False).statistic
            n = n1 + n2
            r = binary(x1, n1, x2, n2)
            # Identity: MN's z² at difference 0 is Pearson's X² (R prop.test(correct = FALSE)) × (N - 1)/N.
            assert r.statistic**2 == pytest.approx(x_squared * (n - 1) / n, rel=1e-9, abs=1e-12)
            assert r.p_value == pytest.approx(special.chdtrc(1, x_squared * (n - 1) / n), rel=1e-9, abs=1e-15)

    def test_edges(self):
        none = binary(0, 10, 0, 20)
        assert none.warnings == ("no-events",) and none.estimate == 0.0
        assert none.p_value == 1.0 and none.statistic == 0.0 and none.ci_low < 0 < none.ci_high
        full = binary(6, 6, 9, 9)
        assert full.warnings == ("all-events",) and full.p_value == 1.0 and full.ci_low < 0 < full.ci_high
        top = binary(10, 10, 0, 20)
        assert top.ci_high == 1.0 and top.estimate == 1.0 and top.p_value < 1e-6
        bottom = binary(0, 10, 20, 20)
        assert bottom.ci_low == -1.0 and bottom.estimate == -1.0
        one = binary(1, 1, 0, 1)  # the smallest table: N - 1 = 1
        assert one.ci_high == 1.0 and -1.0 < one.ci_low < 0.0 and one.p_value > 0.05
        for r in (none, full, top, bottom, one):
            assert no_nan(r) and -1.0 <= r.ci_low <= r.estimate <= r.ci_high <= 1.0
        empty = compare_binary(BinarySummary(0, 0), BinarySummary(9, 3))
        assert empty.warnings == ("empty-arm",) and empty.estimate is None and no_nan(empty)

    def test_levels(self):
        r95, r99 = binary(56, 70, 48, 80), binary(56, 70, 48, 80, alpha=0.01)
        assert r99.ci_low < r95.ci_low and r99.ci_high > r95.ci_high and r99.ci_level == 0.99
        assert r99.p_value == r95.p_value
        # An extreme level (an early O'Brien–Fleming look) stays finite: z_crit = -ndtri(alpha/2).
        tiny = binary(56, 70, 48, 80, alpha=1e-12)
        assert -1.0 < tiny.ci_low < 0.0 < tiny.ci_high < 1.0 and no_nan(tiny)

    def test_large_arms(self):
        r = binary(520_000, 1_000_000, 500_000, 1_000_000)
        # Large samples: the score interval approaches the Wald interval 0.02 ± 1.96 SE.
        wald = 1.959963984540054 * r.se
        assert r.ci_low == pytest.approx(0.02 - wald, abs=1e-6)
        assert r.ci_high == pytest.approx(0.02 + wald, abs=1e-6)
        assert r.p_value < 1e-100


def central_p(x: int, n: int, q: Fraction) -> float:
    """Exact central two-sided binomial p-value in rational arithmetic: 2 min(P(X <= x), P(X >= x))."""
    pmf = [math.comb(n, k) * q**k * (1 - q) ** (n - k) for k in range(n + 1)]
    return float(min(Fraction(1), 2 * min(sum(pmf[: x + 1]), sum(pmf[x:]))))


class TestPoissonRatio:
    def test_r_poisson_test(self):
        # Pilot = Fredericia (11 cases / 800), comparison = the other three cities.
        r = compare_counts(CountSummary(3, 21, 1083 + 1050 + 878), CountSummary(1, 11, 800))
        assert r.kind == "count" and r.warnings == () and r.method == POISSON_METHOD
        # R: poisson.test(c(11, 6+8+7), c(800, 1083+1050+878))  (?poisson.test, eba1977)
        #    95 percent confidence interval: 0.8584264 4.2772659; rate ratio 1.971488
        assert r.estimate == pytest.approx(1.971488, abs=1e-6)
        assert r.ci_low == pytest.approx(0.8584264, abs=1e-7)
        assert r.ci_high == pytest.approx(4.2772659, abs=1e-7)
        # Central p = 2 P(X >= 11), X ~ Binomial(32, 800/3811), computed exactly with fractions
        # (= R 2 * pbinom(10, 32, 800/3811, lower.tail = FALSE)); R's poisson.test prints
        # p-value = 0.07967 for this table: the minimum-likelihood rule, which its CI does not invert.
        assert r.p_value == pytest.approx(central_p(11, 32, Fraction(800, 3811)), rel=1e-12)
        assert r.p_value == pytest.approx(0.1120173, abs=1e-7)
        assert r.statistic == 11.0 and r.df is None and r.dispersion is None
        assert r.se == pytest.approx(math.sqrt(1 / 11 + 1 / 21), rel=1e-12)

    def test_central_p_agrees_with_its_ci_where_r_minimum_likelihood_does_not(self):
        r = compare_counts(CountSummary(1, 9, 2.0), CountSummary(1, 0, 1.0))
        # X ~ Binomial(9, 1/3), x = 0: central p = 2 (2/3)^9 = 1024/19683 (exact by hand).
        assert r.p_value == pytest.approx(1024 / 19683, rel=1e-12)
        # R binom.test / poisson.test(c(0, 9), c(1, 2)) minimum-likelihood p-value: 0.0343
        # (scipy.stats.binomtest(0, 9, 1/3).pvalue, the same rule) is below 0.05 while the
        # 95% CI, 0 to 1.0133, contains 1; the central p-value (0.052) agrees with the CI.
        assert r.ci_low == 0.0 and 1.0 < r.ci_high < 1.02
        assert r.p_value > 0.05

    @pytest.mark.parametrize(
        ("x", "n", "q"),
        [(0, 1, Fraction(1, 2)), (3, 10, Fraction(1, 2)), (7, 40, Fraction(2, 7)), (25, 60, Fraction(3, 10))],
    )
    def test_central_p_small_tables(self, x, n, q):
        # Exact rational arithmetic: 2 min(P(X <= x), P(X >= x)) under Binomial(n, q).
        expected = central_p(x, n, q)
        exposure_pilot, exposure_comparison = q, 1 - q  # q = T_pilot / (T_pilot + T_comparison)
        r = compare_counts(
            CountSummary(2, n - x, float(exposure_comparison)), CountSummary(2, x, float(exposure_pilot))
        )
        assert r.p_value == pytest.approx(expected, rel=1e-11)

    def test_no_events(self):
        r = compare_counts(CountSummary(5, 0, 10.0), CountSummary(5, 0, 10.0))
        assert r.warnings == ("no-events",) and r.estimate is None and r.p_value is None and no_nan(r)

    def test_no_comparison_events(self):
        r = compare_counts(CountSummary(5, 0, 10.0), CountSummary(5, 4, 10.0))
        assert r.warnings == ("no-comparison-events",)
        assert r.estimate is None and r.ci_high is None and r.ci_low > 0
        # binom.test(4, 4, 0.5) central two-sided p-value = 2 * 0.5^4 = 0.125 (exact by hand)
        assert r.p_value == pytest.approx(0.125, abs=1e-12)
        assert no_nan(r)

    def test_no_pilot_events(self):
        r = compare_counts(CountSummary(5, 4, 10.0), CountSummary(5, 0, 10.0))
        assert r.warnings == ("no-pilot-events",)
        assert r.estimate == 0.0 and r.ci_low == 0.0 and r.ci_high > 0 and r.se is None and no_nan(r)

    def test_empty_arm(self):
        r = compare_counts(CountSummary(0, 0, 0.0), CountSummary(5, 4, 10.0))
        assert r.warnings == ("empty-arm",) and r.estimate is None and no_nan(r)

    def test_dispersion_at_most_one_keeps_the_exact_test(self):
        # Units (y, t): comparison (2, 1), (3, 1), (1, 1); pilot (4, 2), (5, 2), (3, 2).
        comparison = CountSummary(3, 6, 3.0, 4 + 9 + 1)
        pilot = CountSummary(3, 12, 6.0, (16 + 25 + 9) / 2)
        r = compare_counts(comparison, pilot)
        # By hand: λ = 2 and 2; Pearson = 14/2 - 6 + 25/2 - 12 = 1.5; φ̂ = 1.5 / (6 - 2) = 0.375.
        assert r.dispersion == pytest.approx(0.375, rel=1e-12)
        assert r.method == POISSON_CHECKED_METHOD and r.df is None and r.statistic == 12.0
        plain = compare_counts(CountSummary(3, 6, 3.0), CountSummary(3, 12, 6.0))
        assert (r.p_value, r.ci_low, r.ci_high) == (plain.p_value, plain.ci_low, plain.ci_high)
        assert r.to_dict()["dispersion"] == pytest.approx(0.375)

    def test_one_unit_per_arm_has_no_dispersion(self):
        r = compare_counts(CountSummary(1, 5, 1.0, 25.0), CountSummary(1, 9, 1.0, 81.0))
        assert r.dispersion is None and r.warnings == ("dispersion-undefined",) and r.method == POISSON_METHOD

    def test_1e15_events_in_constant_time_and_memory(self):
        comparison = CountSummary(20, 10**15, 1e15)
        pilot = CountSummary(20, 10**15 + 10**8, 1e15)
        compare_counts(comparison, pilot)  # warm up scipy's first call
        tracemalloc.start()
        start = time.perf_counter()
        r = compare_counts(comparison, pilot)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        # The old per-outcome pmf needed 8 bytes per possible count (16 PB here).
        assert elapsed < 0.05 and peak < 200_000
        # x = 1e15 + 1e8 of n = 2e15 + 1e8 at q0 = 1/2: mean n/2, sd sqrt(n)/2; the binomial is
        # normal to ~1e-9 here, so p = 2 Φ(-z) with z = (x - n/2) / (sqrt(n)/2) (by hand).
        n = 2 * 10**15 + 10**8
        z = (10**15 + 10**8 - n / 2) / (math.sqrt(n) / 2)
        assert r.p_value == pytest.approx(2 * special.ndtr(-z), rel=1e-6)
        assert r.estimate == pytest.approx(1 + 1e-7, rel=1e-15)
        # Clopper–Pearson ≈ Wald on the logit of q at this size: ratio × exp(± 1.96 sqrt(1/x1 + 1/x2)).
        half = 1.959963984540054 * math.sqrt(1 / (10**15 + 10**8) + 1 / 10**15)
        assert r.ci_low == pytest.approx(r.estimate * math.exp(-half), rel=1e-12)
        assert r.ci_high == pytest.approx(r.estimate * math.exp(half), rel=1e-12)
        assert (r.p_value < 0.05) == (r.ci_low > 1.0)

    def test_large_exposure_and_small_counts(self):
        r = compare_counts(CountSummary(10, 3, 1e15), CountSummary(10, 12, 1e15))
        assert r.estimate == pytest.approx(4.0) and r.ci_low > 1.0 and r.p_value < 0.05
        assert r.p_value == pytest.approx(central_p(12, 15, Fraction(1, 2)), rel=1e-12)
