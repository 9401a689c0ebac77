"""Tests for riskreg.stats.srm: sample ratio mismatch (exact binomial for two arms, chi-squared beyond)."""

import json
import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from riskreg.stats.srm import (
    DEFAULT_THRESHOLD,
    binomial_two_sided_p,
    sample_ratio_check,
    srm_operating_characteristics,
)


def brute_force_p(x: int, n: int, p: float) -> float:
    """R binom.test's two-sided p-value over the whole pmf array (only for test-sized n)."""
    pmf = stats.binom.pmf(np.arange(n + 1), n, p)
    return float(min(1.0, pmf[pmf <= pmf[x] * (1 + 1e-7)].sum()))


class TestBinomialTwoSided:
    def test_r_binom_test_help_example(self):
        # R: binom.test(c(682, 243), p = 3/4)  (?binom.test, Mendel's peas)
        #    -> number of successes = 682, number of trials = 925, p-value = 0.3825
        assert binomial_two_sided_p(682, 925, 0.75) == pytest.approx(0.3825, abs=5e-5)

    @settings(max_examples=300, deadline=None)
    @given(
        n=st.integers(min_value=1, max_value=400),
        p=st.floats(min_value=0.01, max_value=0.99),
        data=st.data(),
    )
    def test_matches_the_whole_pmf_computation(self, n, p, data):
        x = data.draw(st.integers(min_value=0, max_value=n))
        # R binom.test's rule (sum of probabilities <= d * (1 + 1e-7)), summed over the whole array;
        # below 1e-290 both are "zero" and only the underflow differs
        expected = brute_force_p(x, n, p)
        assert binomial_two_sided_p(x, n, p) == pytest.approx(expected, rel=1e-9, abs=1e-290)

    @pytest.mark.parametrize(("x", "n", "p"), [(3, 10, 0.5), (40, 100, 0.3), (0, 25, 0.2), (25, 25, 0.2)])
    def test_matches_scipy_binomtest(self, x, n, p):
        # scipy.stats.binomtest implements R's binom.test rule (its docs cite R)
        assert binomial_two_sided_p(x, n, p) == pytest.approx(stats.binomtest(x, n, p).pvalue, rel=1e-10)

    def test_exact_ties_across_the_mean_are_counted(self):
        # p = 1/2 is symmetric: P(X = x) = P(X = n - x) exactly, so the p-value is 2 P(X >= x)
        # (the 1e-7 tolerance exists for these ties); checked at a pilot size and at 1e9 units
        for x, n in ((60, 100), (500_030_000, 1_000_000_000)):
            assert binomial_two_sided_p(x, n, 0.5) == pytest.approx(
                2 * stats.binom.sf(x - 1, n, 0.5), rel=1e-7
            )

    def test_a_billion_units_in_constant_memory(self):
        n, p = 1_000_000_000, 1 / 3
        x = round(n * p) + 40_000  # about 2.7 standard deviations above the mean
        tracemalloc.start()
        value = binomial_two_sided_p(x, n, p)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 50_000  # bytes: no array proportional to n (one would be 8 GB)
        # the same rule on a window of +-12 SD around the mean (the rest is below 1e-30)
        sd = math.sqrt(n * p * (1 - p))
        k = np.arange(round(n * p - 12 * sd), round(n * p + 12 * sd))
        log_pmf = stats.binom.logpmf(k, n, p)
        level = stats.binom.logpmf(x, n, p) + math.log1p(1e-7)
        expected = np.exp(log_pmf[log_pmf <= level]).sum()
        assert value == pytest.approx(expected, rel=1e-6)
        assert value == pytest.approx(0.0069, abs=5e-4)  # normal approximation: 2 * Phi(-2.683)

    def test_at_the_mean_the_p_value_is_one(self):
        assert binomial_two_sided_p(50, 100, 0.5) == 1.0
        assert binomial_two_sided_p(0, 0, 0.5) == 1.0

    @pytest.mark.parametrize(("x", "n", "p"), [(5, 4, 0.5), (-1, 4, 0.5), (2, 4, 1.0), (2.0, 4, 0.5)])
    def test_invalid(self, x, n, p):
        with pytest.raises(ValueError):
            binomial_two_sided_p(x, n, p)


class TestSampleRatioCheck:
    def test_two_arms_use_the_exact_binomial_test(self):
        r = sample_ratio_check([682, 243], [3, 1])
        # R: binom.test(c(682, 243), p = 3/4) -> p-value = 0.3825 (?binom.test)
        assert r.p_value == pytest.approx(0.3825, abs=5e-5)
        assert r.ok and r.chi2 is None and r.df == 1 and "binomial" in r.method
        assert r.expected == pytest.approx((693.75, 231.25))

    def test_default_threshold_is_one_percent(self):
        assert DEFAULT_THRESHOLD == 0.01
        assert sample_ratio_check([10, 12], [1, 1]).threshold == 0.01

    def test_r_equal_allocation_three_arms(self):
        r = sample_ratio_check([20, 15, 25], [1, 1, 1])
        # R: chisq.test(c(A = 20, B = 15, C = 25))  (?chisq.test) -> X-squared = 2.5, df = 2, p-value = 0.2865
        assert r.chi2 == pytest.approx(2.5, abs=1e-12)
        assert r.df == 2 and "chi-squared" in r.method
        assert r.p_value == pytest.approx(0.2865, abs=1e-4)
        assert r.ok and r.expected == pytest.approx((20.0, 20.0, 20.0))

    def test_r_given_probabilities(self):
        r = sample_ratio_check([89, 37, 30, 28, 2], [40, 20, 20, 15, 5])
        # R: chisq.test(c(89,37,30,28,2), p = c(40,20,20,15,5), rescale.p = TRUE)  (?chisq.test)
        #    -> X-squared = 9.9901, df = 4, p-value = 0.04059
        assert r.chi2 == pytest.approx(9.9901, abs=1e-4)
        assert r.p_value == pytest.approx(0.04059, abs=1e-5)
        assert r.ok  # 0.04 is above the 0.01 threshold

    def test_mismatch_flagged(self):
        r = sample_ratio_check([600, 400], [0.5, 0.5])
        # exact: 2 P(X >= 600), X ~ Binomial(1000, 1/2) (symmetric, so twice one tail): about 2.7e-10
        assert r.p_value == pytest.approx(2 * stats.binom.sf(599, 1000, 0.5), rel=1e-8)
        assert not r.ok and r.warnings == ()

    def test_threshold_is_strict(self):
        counts = [60, 40]
        p = sample_ratio_check(counts, [1, 1]).p_value
        assert sample_ratio_check(counts, [1, 1], threshold=p).ok
        assert not sample_ratio_check(counts, [1, 1], threshold=p * 1.0001).ok

    def test_no_units(self):
        r = sample_ratio_check([0, 0], [1, 2])
        assert r.ok and r.warnings == ("no-units",) and r.chi2 is None and r.p_value is None
        data = json.loads(json.dumps(r.to_dict(), allow_nan=False))
        assert data["counts"] == [0, 0] and set(data) >= {"p_value", "ok", "threshold", "method"}

    def test_small_pilots_need_no_warning_with_the_exact_test(self):
        r = sample_ratio_check([3, 1], [1, 1])
        # exact: P(X <= 1) + P(X >= 3) for Binomial(4, 1/2) = (1 + 4 + 4 + 1) / 16 = 0.625
        assert r.p_value == pytest.approx(0.625, abs=1e-12) and r.warnings == ()
        assert sample_ratio_check([3, 1, 2], [1, 1, 1]).warnings == ("small-expected-counts",)

    @pytest.mark.parametrize(
        ("counts", "allocation", "threshold"),
        [
            ([10, -1], [1, 1], 0.001),
            ([10, 5], [1, 1, 1], 0.001),
            ([10, 5], [1, 0], 0.001),
            ([10], [1], 0.001),
            ([10, 5], [1, 1], 0.0),
            ([10, 5], [1, 1], 1.0),
            ([10, 5.5], [1, 1], 0.001),
        ],
    )
    def test_invalid(self, counts, allocation, threshold):
        with pytest.raises(ValueError):
            sample_ratio_check(counts, allocation, threshold)


def brute_force_rates(n: int, threshold: float, loss: float) -> tuple[float, float]:
    """False-alarm and detection rates summed over every possible count (the definition)."""
    total_null, total_loss = 2 * n, round((2 - loss) * n)
    null = sum(
        stats.binom.pmf(x, total_null, 0.5)
        for x in range(total_null + 1)
        if binomial_two_sided_p(x, total_null, 0.5) < threshold
    )
    hit = sum(
        stats.binom.pmf(x, total_loss, 1 / (2 - loss))
        for x in range(total_loss + 1)
        if brute_force_p(x, total_loss, 0.5) < threshold
    )
    return float(null), float(hit)


class TestOperatingCharacteristics:
    @pytest.mark.parametrize(("n", "threshold"), [(50, 0.01), (100, 0.001), (300, 0.05)])
    def test_match_the_sum_over_every_count(self, n, threshold):
        oc = srm_operating_characteristics(n, threshold)
        false_alarm, detection = brute_force_rates(n, threshold, 0.2)
        assert oc.false_alarm == pytest.approx(false_alarm, rel=1e-9)
        assert oc.detection == pytest.approx(detection, rel=1e-9)
        assert oc.false_alarm <= threshold  # an exact test never exceeds its level
        assert (oc.total_null, oc.total_loss) == (2 * n, round(1.8 * n))

    def test_the_table_behind_the_default(self):
        # The issue: "chi-squared at p < 0.001 cannot see a 20 % loss in one arm at any pilot size up to 300".
        at = {th: srm_operating_characteristics(300, th) for th in (0.001, 0.01, 0.05)}
        assert at[0.001].detection < 0.25  # about 0.23
        assert 0.45 < at[0.01].detection < 0.5  # about 0.48: twice as often, for < 1 % false alarms
        assert at[0.01].false_alarm < 0.01
        # normal approximation: 300 vs 240 expected, flagged from 301 of 540 (p < 0.01), and
        # X ~ Binomial(540, 1/1.8) has mean 300, sd 11.55: P(X >= 301) ~ 1 - Phi(0.5 / 11.55) = 0.48
        assert at[0.01].flagged_above_loss == 301

    def test_json_ready(self):
        data = srm_operating_characteristics(100, 0.01).to_dict()
        assert json.loads(json.dumps(data, allow_nan=False)) == data
        assert {"false_alarm", "detection", "n_per_arm", "threshold", "loss"} <= set(data)

    @pytest.mark.parametrize(("n", "threshold", "loss"), [(0, 0.01, 0.2), (10, 0.0, 0.2), (10, 0.01, 1.0)])
    def test_invalid(self, n, threshold, loss):
        with pytest.raises(ValueError):
            srm_operating_characteristics(n, threshold, loss)
