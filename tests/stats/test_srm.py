"""Tests for riskreg.stats.srm: sample ratio mismatch via chi-squared goodness of fit."""

import json

import pytest

from riskreg.stats.srm import sample_ratio_check


class TestSampleRatioCheck:
    def test_r_equal_allocation(self):
        r = sample_ratio_check([20, 15, 25], [1, 1, 1])
        # R: chisq.test(c(A = 20, B = 15, C = 25))  (?chisq.test) -> X-squared = 2.5, df = 2, p-value = 0.2865
        assert r.chi2 == pytest.approx(2.5, abs=1e-12)
        assert r.df == 2
        assert r.p_value == pytest.approx(0.2865, abs=1e-4)
        assert r.ok and r.expected == pytest.approx((20.0, 20.0, 20.0))

    def test_r_given_probabilities(self):
        r = sample_ratio_check([89, 37, 30, 28, 2], [40, 20, 20, 15, 5])
        # R: chisq.test(c(89,37,30,28,2), p = c(40,20,20,15,5), rescale.p = TRUE)  (?chisq.test)
        #    -> X-squared = 9.9901, df = 4, p-value = 0.04059
        assert r.chi2 == pytest.approx(9.9901, abs=1e-4)
        assert r.p_value == pytest.approx(0.04059, abs=1e-5)
        assert r.ok  # 0.04 is far above the 0.001 threshold

    def test_mismatch_flagged(self):
        r = sample_ratio_check([600, 400], [0.5, 0.5])
        # chi2 = (100^2 + 100^2) / 500 = 40 on 1 df; p = 2.5e-10 < 0.001
        assert r.chi2 == pytest.approx(40.0, abs=1e-12)
        assert not r.ok and r.warnings == ()

    def test_no_units(self):
        r = sample_ratio_check([0, 0], [1, 2])
        assert r.ok and r.warnings == ("no-units",) and r.chi2 is None and r.p_value is None
        assert json.loads(json.dumps(r.to_dict(), allow_nan=False))["counts"] == [0, 0]

    def test_small_expected_counts_warned(self):
        r = sample_ratio_check([3, 1], [1, 1])
        assert r.warnings == ("small-expected-counts",) and r.p_value is not None

    @pytest.mark.parametrize(
        ("counts", "allocation", "threshold"),
        [
            ([10, -1], [1, 1], 0.001),
            ([10, 5], [1, 1, 1], 0.001),
            ([10, 5], [1, 0], 0.001),
            ([10], [1], 0.001),
            ([10, 5], [1, 1], 0.0),
            ([10, 5.5], [1, 1], 0.001),
        ],
    )
    def test_invalid(self, counts, allocation, threshold):
        with pytest.raises(ValueError):
            sample_ratio_check(counts, allocation, threshold)
