"""Tests for power, sample size and minimum detectable effect calculations."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from riskreg.stats.power import (
    PowerResult,
    crossing_probabilities,
    inflation_factor,
    mde_binary,
    mde_continuous,
    mde_count,
    power_binary,
    power_continuous,
    power_count,
    sequential_power,
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


# ---------------------------------------------------------------- non-inferiority: binary and count


def test_binary_non_inferiority_matches_chow_shao_wang():
    # Chow, Shao & Wang 2008, Sample Size Calculations in Clinical Research, 2nd ed., §4.2 (p. 90):
    # response rates 0.85 (test) and 0.65 (reference), non-inferiority margin 10 %, one-sided
    # alpha 0.05, power 80 % -> n = (z_a + z_b)^2 (0.85 * 0.15 + 0.65 * 0.35) / (0.20 + 0.10)^2 ~ 24.4 -> 25
    # per group.  Here alpha is two-sided, so one-sided 0.05 is alpha = 0.10.
    result = size_binary(0.65, 0.85, alpha=0.10, power=0.8, margin=0.10)
    assert result.n_required == (25, 25)
    z = stats.norm.isf(0.05) + stats.norm.isf(0.2)
    closed = z**2 * (0.85 * 0.15 + 0.65 * 0.35) / 0.30**2
    assert result.n_per_arm[0] == pytest.approx(closed, rel=1e-10)
    assert closed == pytest.approx(24.38, abs=0.01)
    assert result.assumptions["test"] == "non-inferiority" and result.assumptions["better"] == "higher"
    assert "non-inferiority" in result.method


def test_binary_non_inferiority_with_no_true_difference_and_ratio():
    # Julious 2010, Sample Sizes for Clinical Trials, §5 (Blackwelder's formula): with no true
    # difference n_c = (z_{1-a/2} + z_b)^2 [p(1-p) + p(1-p)/r] / margin^2 (unpooled variance)
    result = size_binary(0.72, 0.72, power=0.9, ratio=2.0, margin=0.08)
    z = stats.norm.isf(0.025) + stats.norm.isf(0.1)
    closed = z**2 * 0.72 * 0.28 * (1 + 1 / 2) / 0.08**2
    assert result.n_per_arm == pytest.approx((closed, 2 * closed), rel=1e-10)


def test_binary_non_inferiority_when_lower_is_better_is_the_mirror_image():
    # lower is better from 0.35 to 0.15 is higher is better from 0.65 to 0.85 (p -> 1 - p)
    lower = size_binary(0.35, 0.15, alpha=0.10, margin=0.10, better="lower")
    assert lower.n_per_arm == pytest.approx(
        size_binary(0.65, 0.85, alpha=0.10, margin=0.10).n_per_arm, rel=1e-12
    )
    assert lower.assumptions["better"] == "lower"
    # a pilot worse by the margin cannot be shown non-inferior, whichever side is worse
    with pytest.raises(ValueError, match="cannot be shown non-inferior"):
        size_binary(0.30, 0.40, margin=0.10, better="lower")


def test_binary_non_inferiority_power_by_simulation():
    n_c, n_p, p_c, p_p, margin = 150, 150, 0.7, 0.68, 0.12
    predicted = power_binary(n_c, n_p, p_c, p_p, margin=margin).power
    rng = np.random.default_rng(20260101)
    x_c = rng.binomial(n_c, p_c, 40_000) / n_c
    x_p = rng.binomial(n_p, p_p, 40_000) / n_p
    se = np.sqrt(x_c * (1 - x_c) / n_c + x_p * (1 - x_p) / n_p)
    simulated = np.mean((x_p - x_c + margin) / se > stats.norm.isf(0.025))
    # Wald (unpooled) non-inferiority test simulated 40,000 times: SE ~ 0.0025; the planning formula
    # uses the true proportions in the variance, a normal approximation good to about 0.01 here.
    assert simulated == pytest.approx(predicted, abs=0.015)


def test_mde_binary_non_inferiority_inverts_power():
    for decrease in (False, True):
        mde = mde_binary(200, 200, 0.3, power=0.8, decrease=decrease, margin=0.1)
        better = "lower" if decrease else "higher"
        achieved = power_binary(200, 200, 0.3, mde.assumptions["p_pilot"], margin=0.1, better=better)
        assert achieved.power == pytest.approx(0.8, abs=1e-9)
        assert mde.assumptions["test"] == "non-inferiority" and mde.assumptions["better"] == better
    # with 200 per arm equal arms do not yet give 80 %: the pilot must be a little better
    assert mde_binary(200, 200, 0.3, power=0.8, margin=0.1).effect > 0
    assert mde_binary(200, 200, 0.3, power=0.8, decrease=True, margin=0.1).effect < 0


def test_count_non_inferiority_matches_the_wald_formula():
    rate, exposure, margin, ratio = 0.05, 4.0, 1.5, 1.0
    for rho, better in ((1.0, "lower"), (0.9, "lower"), (1.1, "higher")):
        result = size_count(rate, rho, exposure, power=0.8, ratio=ratio, margin=margin, better=better)
        # n_c = (z_{1-a/2} + z_b)^2 (1/(rate T) + 1/(rate rho T r)) / (benefit + log margin)^2, with the
        # benefit log(rho) signed as a gain (delta-method log rate ratio variance, Rothman et al. 2008)
        benefit = math.log(rho) if better == "higher" else -math.log(rho)
        z = stats.norm.isf(0.025) + stats.norm.isf(0.2)
        closed = (
            z**2
            * (1 / (rate * exposure) + 1 / (rate * rho * exposure * ratio))
            / (benefit + math.log(margin)) ** 2
        )
        assert result.n_per_arm[0] == pytest.approx(closed, rel=1e-10)
        assert result.assumptions["test"] == "non-inferiority"
    with pytest.raises(ValueError, match="margin"):
        size_count(rate, 1.0, exposure, margin=0.8)
    with pytest.raises(ValueError, match="better than the margin"):
        size_count(rate, 1.6, exposure, margin=1.5, better="lower")


def test_count_non_inferiority_power_by_simulation():
    n, rate, exposure, margin = 400, 0.05, 4.0, 1.5
    predicted = power_count(n, n, rate, 1.0, exposure, margin=margin, better="lower").power
    rng = np.random.default_rng(77)
    y_c = rng.poisson(rate * exposure * n, 40_000)
    y_p = rng.poisson(rate * exposure * n, 40_000)
    z = (math.log(margin) - np.log(y_p / y_c)) / np.sqrt(1 / y_p + 1 / y_c)
    simulated = np.mean(z > stats.norm.isf(0.025))
    # Wald test with observed events (about 80 per arm) simulated 40,000 times: SE ~ 0.0025
    assert simulated == pytest.approx(predicted, abs=0.015)


def test_mde_count_non_inferiority_inverts_power():
    for better in ("lower", "higher"):
        mde = mde_count(300, 300, 0.05, 4.0, power=0.8, margin=1.5, better=better)
        assert power_count(300, 300, 0.05, mde.effect, 4.0, margin=1.5, better=better).power == pytest.approx(
            0.8, abs=1e-9
        )
    # 300 per arm is too few for 80 % with equal rates: the pilot must be better (ratio < 1 when lower is better)
    assert mde_count(300, 300, 0.05, 4.0, margin=1.5, better="lower").effect < 1.0
    assert mde_count(300, 300, 0.05, 4.0, margin=1.5, better="higher").effect > 1.0


def test_continuous_non_inferiority_when_lower_is_better():
    # the same one-sided test as test_non_inferiority_is_one_sided_at_half_alpha, with the sign flipped
    result = size_continuous(delta=-0.4, sd=1.0, alpha=0.10, power=0.9, margin=0.6, better="lower")
    # R: power.t.test(power = .90, delta = 1, alternative = "one.sided")  -> n = 17.84713
    assert result.n_per_arm[0] == pytest.approx(17.84713, abs=R_UNIROOT_TOL)
    assert result.assumptions["better"] == "lower"
    mde = mde_continuous(40, 40, sd=2.0, power=0.8, margin=0.5, better="lower")
    assert mde.effect == pytest.approx(
        -mde_continuous(40, 40, sd=2.0, power=0.8, margin=0.5).effect, abs=1e-12
    )
    with pytest.raises(ValueError, match="margin - delta"):
        size_continuous(1.0, 1.0, margin=0.5, better="lower")
    with pytest.raises(ValueError, match="better"):
        size_continuous(1.0, 1.0, margin=0.5, better="up")


@pytest.mark.parametrize(
    "call",
    [
        lambda: size_binary(0.5, 0.5, margin=1.0),
        lambda: power_binary(50, 50, 0.5, 0.5, margin=-0.1),
        lambda: mde_binary(50, 50, 0.5, margin=1.5),
        lambda: power_count(50, 50, 1.0, 1.0, 1.0, margin=1.0),
        lambda: mde_count(50, 50, 1.0, 1.0, margin=0.5),
    ],
)
def test_invalid_margins(call):
    with pytest.raises(ValueError, match="margin"):
        call()


# ---------------------------------------------------------------- group-sequential designs


def test_crossing_probabilities_match_rpact_one_sided():
    # R (rpact tests/testthat/test-f_design_group_sequential.R):
    #   x1 <- getDesignInverseNormal(kMax = 3, informationRates = c(0.2, 0.4, 1), alpha = 0.03, sided = 1,
    #                                beta = 0.14, typeOfDesign = "asHSD", gammaA = 0)
    #   x1$criticalValues -> 2.5121443 2.4228747 2.0280392
    #   getDesignCharacteristics(x1): shift = 9.4594101, power = 0.12783451 0.34055165 0.86,
    #   inflationFactor = 1.0788327, nFixed = 8.7681899
    z = [2.5121443, 2.4228747, 2.0280392]
    cumulative = crossing_probabilities([0.2, 0.4, 1.0], z, math.sqrt(9.4594101))
    assert cumulative == pytest.approx((0.12783451, 0.34055165, 0.86), abs=2e-7)
    assert 9.4594101 / (stats.norm.isf(0.03) + stats.norm.isf(0.14)) ** 2 == pytest.approx(
        1.0788327, abs=1e-7
    )


def test_crossing_probabilities_stop_at_the_lower_boundary_as_rpact():
    # R (rpact, as above): x3 <- getDesignInverseNormal(kMax = 3, informationRates = c(0.3, 0.7, 1),
    #   alpha = 0.03, sided = 1, beta = 0.34, typeOfDesign = "asKD", gammaA = 2.2, typeBetaSpending = "bsKD",
    #   gammaB = 3.2): criticalValues 2.8594012 2.2435708 1.9735737, futilityBounds -1.1558435 0.72836893;
    #   getDesignCharacteristics(x3): shift = 5.551371, power = 0.058336437 0.398246 0.66
    z = [2.8594012, 2.2435708, 1.9735737]
    futility = [-1.1558435, 0.72836893, 0.0]  # the last look's lower value stops nothing
    cumulative = crossing_probabilities([0.3, 0.7, 1.0], z, math.sqrt(5.551371), futility)
    assert cumulative == pytest.approx((0.058336437, 0.398246, 0.66), abs=2e-7)


def _obrien_fleming(k: int, beta: float) -> tuple[float, float]:
    """Return C_B(K, 0.05) and the maximum-information ratio of the classic O'Brien-Fleming test."""
    from scipy.optimize import brentq

    looks = [(i + 1) / k for i in range(k)]

    def bounds(c: float) -> list[float]:
        return [c * math.sqrt(k / (i + 1)) for i in range(k)]

    def upper(c: float, drift: float) -> float:
        return crossing_probabilities(looks, bounds(c), drift, [-b for b in bounds(c)])[-1]

    c = brentq(lambda c: 2 * upper(c, 0.0) - 0.05, 1.5, 3.0)
    drift = brentq(lambda d: upper(c, d) - (1 - beta), 1.0, 6.0)
    return c, (drift / (stats.norm.isf(0.025) + stats.norm.isf(beta))) ** 2


def test_recursion_reproduces_the_obrien_fleming_tables():
    # Jennison & Turnbull 2000, Group Sequential Methods, Tables 2.3 and 2.8 (as checked by
    # gsDesign's own unit tests, inst/unitTests/runit.output.R test.JT.OFss):
    #   gsDesign(k = 5, test.type = 2, sfu = "OF", beta = 0.2)$n.I[5] -> 1.028, C_B(5, 0.05) = 2.040
    #   gsDesign(k = 20, test.type = 2, sfu = "OF", beta = 0.1)$n.I[20] -> 1.045
    c, ratio = _obrien_fleming(5, 0.2)
    assert c == pytest.approx(2.040, abs=5e-4)
    assert ratio == pytest.approx(1.028, abs=5e-4)
    assert _obrien_fleming(20, 0.1)[1] == pytest.approx(1.045, abs=5e-4)


def test_inflation_factor_of_lan_demets_obrien_fleming():
    factors = [inflation_factor([(i + 1) / k for i in range(k)], 0.05, 0.8) for k in (1, 2, 3, 4, 5)]
    assert factors[0] == 1.0
    # computed here: 1.0037, 1.0128, 1.0196, 1.0247 (the recursion is checked against rpact and the
    # tables above; the factor itself by simulation below).  Each look costs a little, and Lan-DeMets
    # OBF-type spending costs less than the classic O'Brien-Fleming test (1.008, 1.017, 1.024, 1.028
    # for K = 2..5 by _obrien_fleming; K = 5 is the gsDesign / Jennison & Turnbull value above)
    assert factors[1:] == pytest.approx([1.00373, 1.01279, 1.01964, 1.02472], abs=2e-5)
    assert all(a < b for a, b in itertools.pairwise(factors))
    assert factors[4] < _obrien_fleming(5, 0.2)[1]


def test_inflation_factor_by_simulation():
    # Three equal looks, alpha 0.05, power 0.8: simulate the z-statistics of a two-arm trial with known
    # sd whose maximum size is the fixed design's times the inflation factor; the boundaries are the
    # Lan-DeMets ones (gsDesign sfLDOF, k = 3: 3.7103 2.5114 1.9930).
    factor = inflation_factor([1 / 3, 2 / 3, 1.0], 0.05, 0.8)
    drift = math.sqrt(factor) * (stats.norm.isf(0.025) + stats.norm.isf(0.2))
    rng = np.random.default_rng(31337)
    paths = 400_000
    # Z_k = S_k / sqrt(t_k) where S has independent N(drift dt, dt) increments
    increments = rng.normal(drift / 3, math.sqrt(1 / 3), (paths, 3))
    z = np.cumsum(increments, axis=1) / np.sqrt([1 / 3, 2 / 3, 1.0])
    bounds = np.array([3.7103, 2.5114, 1.9930])
    upper, lower = z >= bounds, z <= -bounds
    first_up = np.where(upper.any(axis=1), upper.argmax(axis=1), 3)
    first_down = np.where(lower.any(axis=1), lower.argmax(axis=1), 3)
    simulated = np.mean(first_up < first_down)
    # 400,000 paths: SE 0.0006, allow 5 SE
    assert simulated == pytest.approx(0.8, abs=0.003)


def test_sequential_power_round_trips_the_inflation_factor():
    looks, alpha = [0.3, 0.6, 1.0], 0.05
    for target in (0.8, 0.9):
        factor = inflation_factor(looks, alpha, target)
        z_a = stats.norm.isf(alpha / 2)
        # the fixed design with the inflated n has drift sqrt(factor) (z_a + z_b)
        fixed_power = stats.norm.cdf(math.sqrt(factor) * (z_a + stats.norm.isf(1 - target)) - z_a)
        assert sequential_power(looks, alpha, fixed_power) == pytest.approx(target, abs=1e-9)
        assert sequential_power(looks, alpha, target) < target  # the same n with looks has less power
    assert sequential_power([1.0], alpha, 0.8) == 0.8
    assert sequential_power(looks, alpha, 1.0) == 1.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: inflation_factor([0.5, 0.9]), "information fraction 1"),
        (lambda: inflation_factor([0.5, 0.5, 1.0]), "increasing"),
        (lambda: inflation_factor([0.0, 1.0]), r"\(0, 1\]"),
        (lambda: inflation_factor([], 0.05), "at least one"),
        (lambda: inflation_factor("0.5,1"), "sequence"),
        (lambda: inflation_factor([0.5, 1.0], power=0.01), "alpha/2"),
        (lambda: crossing_probabilities([0.5, 1.0], [2.0], 1.0), "2 looks"),
        (lambda: crossing_probabilities([0.5, 1.0], [2.0, 2.0], 1.0, [2.5, 0.0]), "below"),
        (lambda: crossing_probabilities([1.0], [float("nan")], 1.0), "finite"),
        (lambda: sequential_power([0.5, 1.0], 0.05, 1.5), "fixed_power"),
    ],
)
def test_invalid_sequential_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
