"""Tests for power, sample size and minimum detectable effect calculations."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from riskreg.stats.power import (
    PowerResult,
    mde_binary,
    mde_continuous,
    mde_count,
    power_binary,
    power_continuous,
    power_count,
    size_binary,
    size_continuous,
    size_count,
)

# R's power.*.test solve with uniroot(tol = .Machine$double.eps^0.25 ~ 1.2e-4), so sizes R prints
# agree with the exact root to about 1e-4.
R_UNIROOT_TOL = 1.5e-4

# ---------------------------------------------------------------- continuous: R references


def test_power_continuous_matches_power_t_test():
    result = power_continuous(20, 20, delta=1.0, sd=1.0)
    # R: power.t.test(n = 20, delta = 1)  -> power = 0.8689528
    assert result.power == pytest.approx(0.8689528, abs=1e-7)
    assert result.kind == "power_continuous" and result.n_required is None


def test_size_continuous_matches_power_t_test():
    result = size_continuous(delta=1.0, sd=1.0, power=0.9)
    # R: power.t.test(delta = 1, sd = 1, power = 0.9)  -> n = 22.02110
    assert result.n_per_arm == pytest.approx((22.02110, 22.02110), abs=R_UNIROOT_TOL)
    assert result.n_required == (23, 23)


def test_non_inferiority_is_one_sided_at_half_alpha():
    # Non-inferiority at alpha = 0.10 is a one-sided test at 0.05 of an effect delta + margin = 1.
    result = size_continuous(delta=0.4, sd=1.0, alpha=0.10, power=0.9, margin=0.6)
    # R: power.t.test(power = .90, delta = 1, alternative = "one.sided")  -> n = 17.84713
    assert result.n_per_arm[0] == pytest.approx(17.84713, abs=R_UNIROOT_TOL)
    assert result.assumptions["test"] == "non-inferiority"
    assert "non-inferiority" in result.method


def test_unequal_allocation_continuous_by_simulation():
    n_c, n_p, delta = 15, 30, 0.8
    predicted = power_continuous(n_c, n_p, delta=delta, sd=1.0).power
    rng = np.random.default_rng(20240601)
    comparison = rng.normal(0.0, 1.0, (20_000, n_c))
    pilot = rng.normal(delta, 1.0, (20_000, n_p))
    test = stats.ttest_ind(pilot, comparison, axis=1)
    simulated = np.mean((test.pvalue < 0.05) & (test.statistic > 0))
    # Pooled two-sample t-test (Student 1908) simulated 20,000 times: SE ~ 0.0033, allow 4 SE.
    assert simulated == pytest.approx(predicted, abs=0.013)


def test_continuous_power_is_symmetric_in_arms_and_sign():
    a = power_continuous(12, 30, delta=0.7, sd=1.3).power
    b = power_continuous(30, 12, delta=-0.7, sd=1.3).power
    assert a == pytest.approx(b, abs=1e-14)


def test_mde_continuous_inverts_power():
    mde = mde_continuous(20, 20, sd=1.0, power=0.8689528016921269)
    # R: power.t.test(n = 20, delta = 1) -> power = 0.8689528, so the MDE at that power is delta = 1.
    assert mde.effect == pytest.approx(1.0, abs=1e-6)
    unequal = mde_continuous(10, 40, sd=2.0, power=0.8)
    # the MDE inverts the noncentral t with cdflib (special.nctdtrinc), whose search stops at
    # a relative 1e-8; R's power.t.test solves with uniroot to .Machine$double.eps^0.25 ≈ 1e-4
    assert power_continuous(10, 40, unequal.effect, sd=2.0).power == pytest.approx(0.8, abs=1e-8)


@settings(max_examples=30, deadline=None)
@given(
    delta=st.floats(min_value=0.05, max_value=3.0),
    sd=st.floats(min_value=0.2, max_value=5.0),
    ratio=st.sampled_from([0.5, 1.0, 1.5, 3.0]),
    power=st.floats(min_value=0.5, max_value=0.95),
)
def test_size_continuous_round_trip(delta, sd, ratio, power):
    result = size_continuous(delta, sd, power=power, ratio=ratio)
    n_c, n_p = result.n_per_arm
    assert n_p == pytest.approx(ratio * n_c, rel=1e-12)
    if n_c > 2.0 and n_p > 2.0:  # not clamped at the minimum design
        # Power at the real-valued solution, recomputed directly from the noncentral t.
        df = n_c + n_p - 2
        ncp = delta / (sd * math.sqrt(1 / n_c + 1 / n_p))
        assert stats.nct.sf(stats.t.isf(0.025, df), df, ncp) == pytest.approx(power, abs=1e-9)
    achieved = power_continuous(*result.n_required, delta=delta, sd=sd).power
    assert achieved >= power - 1e-12


def test_huge_effect_returns_minimum_design():
    result = size_continuous(delta=100.0, sd=1.0, power=0.9)
    assert result.n_required == (2, 2)
    assert power_continuous(2, 2, 100.0, 1.0).power >= 0.9


# ---------------------------------------------------------------- binary: R references


def test_power_binary_matches_power_prop_test():
    result = power_binary(50, 50, 0.50, 0.75)
    # R: power.prop.test(n = 50, p1 = .50, p2 = .75)  -> power = 0.7401659
    #    (?power.prop.test example comment: "power = 0.740")
    assert result.power == pytest.approx(0.7401659, abs=1e-7)


def test_size_binary_matches_power_prop_test():
    result = size_binary(0.50, 0.75, power=0.90)
    # R: power.prop.test(p1 = .50, p2 = .75, power = .90)  -> n = 76.7  (?power.prop.test example comment;
    #    the printed value is 76.7069, which is the closed-form Fleiss inversion computed below)
    assert result.n_per_arm[0] == pytest.approx(76.7, abs=0.05)
    z_a, z_b = stats.norm.isf(0.025), stats.norm.isf(0.10)
    closed_form = ((z_a * math.sqrt(2 * 0.625 * 0.375) + z_b * math.sqrt(0.25 + 0.1875)) / 0.25) ** 2
    assert result.n_per_arm[0] == pytest.approx(closed_form, abs=1e-8)
    assert result.n_required == (77, 77)


def test_size_binary_tiny_difference_matches_power_prop_test():
    result = size_binary(0.5, 0.501, alpha=0.001, power=0.90)
    # R: power.prop.test(p1 = .5, p2 = 0.501, sig.level = .001, power = 0.90)  -> n = 10451937
    #    (?power.prop.test example comment)
    assert result.n_per_arm[0] == pytest.approx(10451937, abs=1.0)


def test_mde_binary_matches_power_prop_test():
    result = mde_binary(50, 50, 0.5, power=0.90)
    # R: power.prop.test(n = 50, p1 = .5, power = .90)  -> p2 = 0.8026  (?power.prop.test example comment)
    assert result.assumptions["p_pilot"] == pytest.approx(0.8026, abs=5e-5)
    assert result.effect == pytest.approx(0.3026, abs=5e-5)
    assert result.assumptions["direction"] == "increase"


def test_mde_binary_decrease_is_mirror_of_increase():
    increase = mde_binary(80, 80, 0.3, power=0.8).effect
    # Mirror symmetry p -> 1 - p of the two-proportion test: a decrease from 0.7 of that size
    # has the target power.
    assert power_binary(80, 80, 0.7, 0.7 - increase).power == pytest.approx(0.8, abs=1e-10)


def test_mde_binary_asked_for_a_decrease_gives_the_mirrored_decrease():
    decrease = mde_binary(80, 80, 0.7, power=0.8, decrease=True)
    assert decrease.effect == pytest.approx(-mde_binary(80, 80, 0.3, power=0.8).effect, abs=1e-12)
    assert (decrease.assumptions["direction"], decrease.assumptions["p_pilot"]) == (
        "decrease",
        pytest.approx(0.7 + decrease.effect, abs=1e-12),
    )
    assert power_binary(80, 80, 0.7, 0.7 + decrease.effect).power == pytest.approx(0.8, abs=1e-10)


def test_mde_continuous_with_a_margin_is_the_difference_that_shows_non_inferiority():
    mde = mde_continuous(40, 40, sd=2.0, power=0.8, margin=0.5)
    assert mde.assumptions["test"] == "non-inferiority"
    # the same inverse as without a margin, shifted by it (cdflib's 1e-8, see above)
    assert mde.effect == pytest.approx(mde_continuous(40, 40, sd=2.0, power=0.8).effect - 0.5, abs=1e-12)
    assert power_continuous(40, 40, mde.effect, sd=2.0, margin=0.5).power == pytest.approx(0.8, abs=1e-8)


def test_unequal_allocation_binary_by_simulation():
    n_c, n_p, p_c, p_p = 200, 400, 0.3, 0.4
    predicted = power_binary(n_c, n_p, p_c, p_p).power
    rng = np.random.default_rng(7)
    x_c = rng.binomial(n_c, p_c, 40_000)
    x_p = rng.binomial(n_p, p_p, 40_000)
    pooled = (x_c + x_p) / (n_c + n_p)
    z = (x_p / n_p - x_c / n_c) / np.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_p))
    simulated = np.mean(z > stats.norm.isf(0.025))
    # Pooled two-proportion z-test (Fleiss et al. 2003, §4.2) simulated 40,000 times: SE ~ 0.0023, allow 4 SE.
    assert simulated == pytest.approx(predicted, abs=0.01)


def test_size_binary_with_ratio_reaches_power():
    result = size_binary(0.2, 0.3, power=0.8, ratio=2.0)
    n_c, n_p = result.n_per_arm
    assert n_p == pytest.approx(2 * n_c)
    assert power_binary(*result.n_required, 0.2, 0.3).power >= 0.8


# ---------------------------------------------------------------- count


def test_size_count_matches_wald_formula():
    rate, rho, exposure, ratio = 2.0, 0.7, 1.5, 2.0
    result = size_count(rate, rho, exposure, power=0.8, ratio=ratio)
    # Wald formula: n_c = (z_{1-a/2} + z_{1-b})^2 (1/(rate T) + 1/(rate rho T r)) / log(rho)^2
    #   (log rate ratio variance 1/E_c + 1/E_p: Rothman, Greenland & Lash 2008, Modern Epidemiology, ch. 14)
    z = stats.norm.isf(0.025) + stats.norm.isf(0.2)
    closed = z**2 * (1 / (rate * exposure) + 1 / (rate * rho * exposure * ratio)) / math.log(rho) ** 2
    assert result.n_per_arm[0] == pytest.approx(closed, rel=1e-10)
    assert result.n_per_arm[1] == pytest.approx(ratio * closed, rel=1e-10)
    assert result.effect == rho


@pytest.mark.parametrize("n_c, n_p", [(75, 75), (60, 120)])
def test_power_count_by_simulation(n_c, n_p):
    rate, rho, exposure = 2.0, 0.7, 1.0
    predicted = power_count(n_c, n_p, rate, rho, exposure).power
    rng = np.random.default_rng(1991)
    y_c = rng.poisson(rate * exposure * n_c, 40_000)
    y_p = rng.poisson(rate * rho * exposure * n_p, 40_000)
    z = np.log((y_p / n_p) / (y_c / n_c)) / np.sqrt(1 / y_p + 1 / y_c)
    simulated = np.mean(z < -stats.norm.isf(0.025))
    # Wald test with observed events simulated 40,000 times (SE ~ 0.002); the planning formula uses
    # expected events, a normal approximation good to about 0.01 at these event counts.
    assert simulated == pytest.approx(predicted, abs=0.015)


def test_mde_count_reports_reduction_and_inverts_power():
    result = mde_count(75, 75, 2.0, 1.0, power=0.8)
    assert 0.0 < result.effect < 1.0
    assert result.assumptions["direction"] == "reduction"
    assert power_count(75, 75, 2.0, result.effect, 1.0).power == pytest.approx(0.8, abs=1e-10)
    # Consistent with sizing: 75 per arm is the ceiling of the size for rate ratio 0.7.
    assert result.effect == pytest.approx(0.7, abs=2e-3)


def test_mde_count_impossible_with_too_few_events():
    with pytest.raises(ValueError, match="too few expected events"):
        mde_count(1, 1, 0.01, 1.0, power=0.99)


def test_count_increase_is_sized_too():
    result = size_count(1.0, 1.5, 2.0, power=0.9)
    assert power_count(*result.n_required, 1.0, 1.5, 2.0).power >= 0.9


# ---------------------------------------------------------------- results and validation


def test_to_dict_is_json_ready():
    for result in (
        size_continuous(0.5, 1.0),
        power_binary(40, 60, 0.2, 0.35),
        mde_count(100, 100, 1.0, 1.0),
    ):
        data = result.to_dict()
        assert json.loads(json.dumps(data)) == data
        assert isinstance(result, PowerResult)
    with pytest.raises(AttributeError):
        result.alpha = 0.1  # type: ignore[misc]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: size_continuous(1.0, 0.0), "sd"),
        (lambda: size_continuous(1.0, -1.0), "sd"),
        (lambda: size_continuous(0.0, 1.0), "delta must be non-zero"),
        (lambda: size_continuous(1.0, 1.0, power=1.0), "power"),
        (lambda: size_continuous(1.0, 1.0, power=0.0), "power"),
        (lambda: size_continuous(1.0, 1.0, power=0.01), "alpha/2"),
        (lambda: size_continuous(1.0, 1.0, alpha=1.5), "alpha"),
        (lambda: size_continuous(1.0, 1.0, ratio=0.0), "ratio"),
        (lambda: size_continuous(1.0, 1.0, margin=-0.1), "margin"),
        (lambda: size_continuous(-1.0, 1.0, margin=0.5), "delta \\+ margin"),
        (lambda: size_continuous(float("nan"), 1.0), "finite"),
        (lambda: power_continuous(1, 20, 1.0, 1.0), "n_comparison"),
        (lambda: power_continuous(20, 2.5, 1.0, 1.0), "whole number"),
        (lambda: power_continuous(20, True, 1.0, 1.0), "number"),
        (lambda: mde_continuous(20, 20, 1.0, power=1.2), "power"),
        (lambda: size_binary(0.5, 0.5), "must differ"),
        (lambda: size_binary(0.0, 0.5), "p_comparison"),
        (lambda: size_binary(0.5, 1.0), "p_pilot"),
        (lambda: power_binary(50, 50, 1.2, 0.5), "p_comparison"),
        (lambda: power_binary(0, 50, 0.2, 0.5), "n_comparison"),
        (lambda: mde_binary(50, 50, 0.5, power=1.0), "power"),
        (lambda: size_count(1.0, 1.0, 1.0), "rate_ratio must differ"),
        (lambda: size_count(0.0, 0.8, 1.0), "rate_comparison"),
        (lambda: size_count(1.0, 0.8, 0.0), "exposure_per_unit"),
        (lambda: power_count(10, 10, 1.0, -0.5, 1.0), "rate_ratio"),
        (lambda: mde_count(10, 10, 1.0, 1.0, power=0.0), "power"),
    ],
)
def test_invalid_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_huge_size_raises():
    with pytest.raises(ValueError, match="too small"):
        size_continuous(1e-6, 1.0)


def test_no_effect_gives_half_alpha():
    # ?power.t.test / ?power.prop.test (strict = FALSE): "the power will be half the significance
    # level if the true difference is zero".
    assert power_continuous(30, 30, 0.0, 1.0).power == pytest.approx(0.025, abs=1e-12)
    assert power_binary(30, 30, 0.4, 0.4).power == pytest.approx(0.025, abs=1e-12)
    assert power_count(30, 30, 1.0, 1.0, 1.0).power == pytest.approx(0.025, abs=1e-12)


def test_numpy_scalars_are_accepted():
    result = power_binary(np.int64(50), 50, np.float64(0.5), 0.75)
    # R: power.prop.test(n = 50, p1 = .50, p2 = .75)  -> power = 0.7401659
    assert result.power == pytest.approx(0.7401659, abs=1e-7)
