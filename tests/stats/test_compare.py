"""Reference-value tests for riskreg.stats.summaries and riskreg.stats.compare."""

import json
import math

import numpy as np
import pytest

from riskreg.stats.compare import (
    CHI2_METHOD,
    FISHER_METHOD,
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
        assert CountSummary(3, 6, 12.0).to_dict() == {"n": 3, "events": 6, "exposure": 12.0, "rate": 0.5}

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


class TestTwoProportionChiSquared:
    def test_r_prop_test(self):
        r = compare_binary(BinarySummary(128, 39), BinarySummary(214, 94))
        assert r.method == CHI2_METHOD
        # R: prop.test(c(94, 39), c(214, 128), correct = FALSE)
        #    (output printed at influentialpoints.com/notes/n9rmf3.htm):
        #    X-squared = 6.1026, df = 1, p-value = 0.01350; prop 1 0.4392523, prop 2 0.3046875
        assert r.statistic == pytest.approx(6.1026, abs=1e-4)
        assert r.df == 1.0
        assert r.p_value == pytest.approx(0.01350, abs=1e-5)
        assert r.estimate == pytest.approx(0.4392523 - 0.3046875, abs=1e-7)

    def test_newcombe_example_a(self):
        r = compare_binary(BinarySummary(80, 48), BinarySummary(70, 56))
        assert r.method == CHI2_METHOD
        # Newcombe (1998) Stat Med 17:873, Table II (a) 56/70 - 48/80, method 10: 0.0524 to 0.3339
        assert r.estimate == pytest.approx(0.2, abs=1e-12)
        assert r.ci_low == pytest.approx(0.0524, abs=5e-5)
        assert r.ci_high == pytest.approx(0.3339, abs=5e-5)


class TestFisher:
    def test_tea_tasting(self):
        r = compare_binary(BinarySummary(4, 1), BinarySummary(4, 3))
        assert r.method == FISHER_METHOD and r.statistic is None and r.df is None
        # R: fisher.test(matrix(c(3, 1, 1, 3), 2))  (TeaTasting, ?fisher.test) -> p-value = 0.4857
        assert r.p_value == pytest.approx(0.4857, abs=1e-4)

    def test_newcombe_example_b(self):
        r = compare_binary(BinarySummary(10, 3), BinarySummary(10, 9))
        assert r.method == FISHER_METHOD  # expected non-event cells are 4 < 5
        # Newcombe (1998) Table II (b) 9/10 - 3/10, method 10: 0.1705 to 0.8090
        assert r.ci_low == pytest.approx(0.1705, abs=5e-5)
        assert r.ci_high == pytest.approx(0.8090, abs=5e-5)

    def test_no_events(self):
        r = compare_binary(BinarySummary(20, 0), BinarySummary(10, 0))
        assert r.warnings == ("no-events",) and r.estimate == 0.0 and r.p_value == 1.0
        # Newcombe (1998) Table II (e) 0/10 - 0/20, method 10: -0.1611 to 0.2775
        assert r.ci_low == pytest.approx(-0.1611, abs=5e-5)
        assert r.ci_high == pytest.approx(0.2775, abs=5e-5)
        assert no_nan(r)

    def test_all_events_and_empty_arm(self):
        full = compare_binary(BinarySummary(6, 6), BinarySummary(9, 9))
        assert full.warnings == ("all-events",) and full.p_value == 1.0 and no_nan(full)
        empty = compare_binary(BinarySummary(0, 0), BinarySummary(9, 3))
        assert empty.warnings == ("empty-arm",) and empty.estimate is None and no_nan(empty)


class TestPoissonRatio:
    def test_r_poisson_test(self):
        # Pilot = Fredericia (11 cases / 800), comparison = the other three cities.
        r = compare_counts(CountSummary(3, 21, 1083 + 1050 + 878), CountSummary(1, 11, 800))
        assert r.kind == "count" and r.warnings == ()
        # R: poisson.test(c(11, 6+8+7), c(800, 1083+1050+878))  (?poisson.test, eba1977)
        #    count1 = 11, expected count1 = 6.7174, p-value = 0.07967,
        #    95 percent confidence interval: 0.8584264 4.2772659; rate ratio 1.971488
        assert r.estimate == pytest.approx(1.971488, abs=1e-6)
        assert r.p_value == pytest.approx(0.07967, abs=1e-5)
        assert r.ci_low == pytest.approx(0.8584264, abs=1e-7)
        assert r.ci_high == pytest.approx(4.2772659, abs=1e-7)
        assert r.statistic == 11.0
        assert r.se == pytest.approx(math.sqrt(1 / 11 + 1 / 21), rel=1e-12)

    def test_no_events(self):
        r = compare_counts(CountSummary(5, 0, 10.0), CountSummary(5, 0, 10.0))
        assert r.warnings == ("no-events",) and r.estimate is None and r.p_value is None and no_nan(r)

    def test_no_comparison_events(self):
        r = compare_counts(CountSummary(5, 0, 10.0), CountSummary(5, 4, 10.0))
        assert r.warnings == ("no-comparison-events",)
        assert r.estimate is None and r.ci_high is None and r.ci_low > 0
        # binom.test(4, 4, 0.5) two-sided p-value = 2 * 0.5^4 = 0.125 (exact by hand)
        assert r.p_value == pytest.approx(0.125, abs=1e-12)
        assert no_nan(r)

    def test_no_pilot_events(self):
        r = compare_counts(CountSummary(5, 4, 10.0), CountSummary(5, 0, 10.0))
        assert r.warnings == ("no-pilot-events",)
        assert r.estimate == 0.0 and r.ci_low == 0.0 and r.ci_high > 0 and r.se is None and no_nan(r)

    def test_empty_arm(self):
        r = compare_counts(CountSummary(0, 0, 0.0), CountSummary(5, 4, 10.0))
        assert r.warnings == ("empty-arm",) and r.estimate is None and no_nan(r)
