"""Tests for Lan–DeMets O'Brien–Fleming-type group-sequential boundaries."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.optimize import brentq
from scipy.stats import multivariate_normal, norm

from riskreg.stats.sequential import (
    Z_CAP,
    Boundaries,
    conditional_power,
    equivalence_conditional_power,
    lan_demets_boundaries,
    obrien_fleming_spending,
    observed_boundaries,
)


def _crossing_probability(fractions, z) -> float:
    """Return P(|Z_k| >= z_k for some k) under H0 by Genz's method (scipy), seeded.

    This is an independent second method: it never uses the recursive grid.
    """
    t = np.asarray(fractions, dtype=float)
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    c = np.asarray(z, dtype=float)
    mvn = multivariate_normal(
        mean=np.zeros(len(t)), cov=cov, seed=20240601, maxpts=2_000_000, abseps=1e-8, releps=0
    )
    return 1.0 - float(mvn.cdf(c, lower_limit=-c))


def _second_look_by_quad(t1: float, t2: float, alpha: float = 0.05) -> float:
    """Return the exact second boundary by adaptive quadrature (independent of the grid)."""
    c1 = norm.isf(obrien_fleming_spending(t1, alpha) / 2.0)
    b1, sd1, inc = c1 * math.sqrt(t1), math.sqrt(t1), math.sqrt(t2 - t1)
    target = obrien_fleming_spending(t2, alpha) - obrien_fleming_spending(t1, alpha)

    def excess(c: float) -> float:
        b = c * math.sqrt(t2)

        def integrand(u: float) -> float:
            return norm.pdf(u / sd1) / sd1 * (norm.sf((b - u) / inc) + norm.sf((b + u) / inc))

        return quad(integrand, -b1, b1, epsabs=1e-14, epsrel=1e-11, limit=200)[0] - target

    return brentq(excess, 0.5, 8.0, xtol=1e-10)


# ---------------------------------------------------------------- spending function


def test_spending_reaches_alpha_at_full_information():
    # Definition (gsDesign sfLDOF help page): f(1; alpha) = alpha; two-sided total here is 2 * (alpha/2).
    assert obrien_fleming_spending(1.0, 0.05) == pytest.approx(0.05, abs=1e-15)


def test_spending_matches_rpact_published_alpha_spent():
    # R: rpact::getDesignGroupSequential(kMax = 4, alpha = 0.13, typeOfDesign = "asOF",
    #    informationRates = c(0.4, 0.75, 0.85, 1), ...)$alphaSpent -> 0.016665509 0.080406163 0.10053322 0.13
    #    (rpact tests/testthat/test-f_design_group_sequential.R, one-sided alpha 0.13 = one side of 0.26)
    expected = [0.016665509, 0.080406163, 0.10053322, 0.13]
    for t, one_side in zip([0.4, 0.75, 0.85, 1.0], expected, strict=True):
        assert obrien_fleming_spending(t, 0.26) / 2.0 == pytest.approx(one_side, abs=1e-8)


def test_spending_is_increasing_and_tiny_early():
    values = [obrien_fleming_spending(t) for t in (0.01, 0.1, 0.5, 0.9, 1.0)]
    assert values == sorted(values)
    # Formula 4 - 4 Phi(Phi^-1(1 - 0.0125) / sqrt(0.01)) evaluated in the upper tail: positive, not 0.
    assert 0.0 < values[0] < 1e-100


# ---------------------------------------------------------------- published boundaries


def test_single_final_look_is_fixed_sample_critical_value():
    # R: qnorm(0.975)  -> 1.959964
    assert lan_demets_boundaries([1.0]).z == pytest.approx((1.959964,), abs=1e-6)


def test_three_equal_looks_match_ldbounds_and_gsdesign():
    bounds = lan_demets_boundaries([1 / 3, 2 / 3, 1.0], alpha=0.05)
    # R: ldbounds::ldBounds(3, iuse = 1, alpha = 0.05)$upper.bounds -> 3.7103 2.5114 1.9930
    #    (same as gsDesign::gsDesign(k = 3, test.type = 2, sfu = sfLDOF)$upper$bound, printed to 4 dp)
    assert bounds.z == pytest.approx((3.7103, 2.5114, 1.9930), abs=1e-4)
    assert bounds.alpha_spent[-1] == pytest.approx(0.05, abs=1e-12)


def test_five_equal_looks_match_reboussin_et_al():
    bounds = lan_demets_boundaries([0.2, 0.4, 0.6, 0.8, 1.0], alpha=0.05)
    # R: ldbounds::ldBounds(5, iuse = 1, alpha = 0.05)$upper.bounds -> 4.8769 3.3569 2.6803 2.2898 2.0310
    #    (Reboussin, DeMets, Kim & Lan 2000, Controlled Clinical Trials 21:190, the ldbounds example).
    #    ld98's coarse grid is good to ~1e-4: the exact second value is 3.35701 (checked by
    #    adaptive quadrature below), so the published 3.3569 is met at 1.5e-4.
    assert bounds.z == pytest.approx((4.8769, 3.3569, 2.6803, 2.2898, 2.0310), abs=1.5e-4)


def test_second_look_agrees_with_adaptive_quadrature():
    # Independent numeric method: scipy.integrate.quad on the exact two-look integral.
    for t1, t2 in [(0.2, 0.4), (1 / 3, 2 / 3), (0.5, 0.75), (0.3, 0.301)]:
        exact = _second_look_by_quad(t1, t2)
        assert lan_demets_boundaries([t1, t2]).z[1] == pytest.approx(exact, abs=1e-6)


def test_unequal_looks_match_rpact():
    bounds = lan_demets_boundaries([0.4, 0.75, 0.85, 1.0], alpha=0.26)
    # R: rpact::getDesignGroupSequential(kMax = 4, alpha = 0.13, beta = 0.41, typeOfDesign = "asOF",
    #    typeBetaSpending = "bsKD", informationRates = c(0.4, 0.75, 0.85, 1), gammaB = 2.5,
    #    bindingFutility = FALSE)$criticalValues -> 2.1280732 1.4368565 1.4228730 1.2970881
    #    (rpact tests/testthat/test-f_design_group_sequential.R).  rpact's design is one-sided; the
    #    two-sided symmetric design also stops paths that cross the lower boundary, which at this
    #    large alpha moves the last two boundaries by up to 2.5e-5.
    assert bounds.z[:2] == pytest.approx((2.1280732, 1.4368565), abs=1e-6)
    assert bounds.z[2:] == pytest.approx((1.4228730, 1.2970881), abs=3e-5)


@pytest.mark.parametrize(
    "fractions",
    [
        [0.5, 0.75, 1.0],
        [0.25, 0.5, 0.75, 1.0],
        [0.2, 0.4, 0.6, 0.8, 1.0],
        [0.3, 0.6],  # interim: the final look has not happened yet
    ],
)
def test_cumulative_crossing_agrees_with_genz_integration(fractions):
    bounds = lan_demets_boundaries(fractions)
    # Independent method: scipy multivariate_normal (Genz) with Cov(Z_i, Z_j) = sqrt(t_i / t_j).
    # A crossing-probability error of 1e-7 corresponds to well under 1e-5 in z at these looks.
    for k in range(1, len(fractions) + 1):
        crossing = _crossing_probability(fractions[:k], bounds.z[:k])
        assert crossing == pytest.approx(bounds.alpha_spent[k - 1], abs=1e-7)
        assert crossing == pytest.approx(obrien_fleming_spending(fractions[k - 1]), abs=1e-7)


# ---------------------------------------------------------------- Monte Carlo


def _simulated_first_crossings(fractions, z, sims: int, seed: int) -> np.ndarray:
    """Return, per look, the fraction of null Brownian paths first crossing there (seeded)."""
    rng = np.random.default_rng(seed)
    t = np.asarray(fractions)
    increments = rng.standard_normal((sims, len(t))) * np.sqrt(np.diff(t, prepend=0.0))
    stats = np.cumsum(increments, axis=1) / np.sqrt(t)
    crossed = np.abs(stats) >= np.asarray(z)
    any_cross = crossed.any(axis=1)
    first = np.where(any_cross, crossed.argmax(axis=1), -1)
    return np.array([(first == k).mean() for k in range(len(t))])


def test_monte_carlo_two_million_paths_five_looks():
    fractions = [0.2, 0.4, 0.6, 0.8, 1.0]
    bounds = lan_demets_boundaries(fractions)
    per_look = _simulated_first_crossings(fractions, bounds.z, sims=2_000_000, seed=1983)
    # Lan & DeMets (1983): the probability of first crossing at look k is alpha(t_k) - alpha(t_{k-1}).
    # Standard error of the total at alpha = 0.05 with 2e6 paths is 1.5e-4; allow 4 SE.
    assert per_look.sum() == pytest.approx(0.05, abs=6.2e-4)
    expected = np.diff([0.0, *bounds.alpha_spent])
    se = np.sqrt(expected * (1 - expected) / 2_000_000)
    assert np.all(np.abs(per_look - expected) <= 4 * se + 1e-6)


def test_monte_carlo_unequal_interim_looks_keep_alpha():
    fractions = [0.15, 0.45, 0.7, 1.0]
    bounds = lan_demets_boundaries(fractions, alpha=0.1)
    per_look = _simulated_first_crossings(fractions, bounds.z, sims=400_000, seed=7)
    # SE at alpha = 0.1 with 4e5 paths is 4.7e-4; allow 4 SE.
    assert per_look.sum() == pytest.approx(0.1, abs=1.9e-3)


# ---------------------------------------------------------------- properties and edge cases


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.floats(min_value=0.02, max_value=1.0), min_size=1, max_size=10, unique=True),
    st.sampled_from([0.01, 0.05, 0.1, 0.2]),
)
def test_boundaries_are_finite_and_spend_the_function(raw, alpha):
    fractions = sorted(raw)
    if any(b - a < 1e-3 for a, b in itertools.pairwise(fractions)):
        fractions = sorted({round(t, 2) for t in fractions})
    bounds = lan_demets_boundaries(fractions, alpha=alpha)
    assert len(bounds.z) == len(fractions)
    assert all(math.isfinite(c) and 0.0 < c <= Z_CAP for c in bounds.z)
    assert list(bounds.alpha_spent) == sorted(bounds.alpha_spent)
    assert bounds.alpha_spent[-1] == pytest.approx(obrien_fleming_spending(fractions[-1], alpha), abs=1e-12)


def test_tiny_first_fraction_is_capped_and_later_looks_unaffected():
    bounds = lan_demets_boundaries([0.001, 0.002, 0.5, 1.0])
    assert bounds.z[:2] == (Z_CAP, Z_CAP)
    assert all(math.isfinite(c) for c in bounds.z)
    reference = lan_demets_boundaries([0.5, 1.0])
    # A look whose spend is ~1e-300 removes ~1e-15 of paths: the later boundaries cannot move.
    assert bounds.z[2:] == pytest.approx(reference.z, abs=1e-9)


def test_interim_only_design_spends_less_than_alpha():
    bounds = lan_demets_boundaries([0.3, 0.6])
    assert bounds.alpha_spent[-1] == pytest.approx(obrien_fleming_spending(0.6), abs=1e-15)
    assert bounds.alpha_spent[-1] < 0.05


def test_three_looks_are_fast():
    lan_demets_boundaries([0.3, 0.6, 1.0])
    start = time.perf_counter()
    lan_demets_boundaries([1 / 3, 2 / 3, 1.0])
    assert time.perf_counter() - start < 0.2


def test_to_dict_is_json_ready():
    bounds = lan_demets_boundaries([0.5, 1.0])
    data = bounds.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["alpha"] == 0.05 and len(data["z"]) == 2
    assert isinstance(bounds, Boundaries)
    with pytest.raises(AttributeError):
        bounds.alpha = 0.1  # type: ignore[misc]


@pytest.mark.parametrize(
    "fractions, message",
    [
        ([], "at least one look"),
        ([0.5, 0.5], "strictly increasing"),
        ([0.6, 0.4], "strictly increasing"),
        ([0.0, 1.0], r"\(0, 1\]"),
        ([0.5, 1.2], r"\(0, 1\]"),
        ([float("nan")], "finite"),
        (["0.5"], "number"),
        ([True], "number"),
        ("0.5", "sequence"),
    ],
)
def test_invalid_fractions_raise(fractions, message):
    with pytest.raises(ValueError, match=message):
        lan_demets_boundaries(fractions)


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, float("nan"), "0.05"])
def test_invalid_alpha_raises(alpha):
    with pytest.raises(ValueError, match="alpha"):
        lan_demets_boundaries([0.5, 1.0], alpha=alpha)
    with pytest.raises(ValueError, match="alpha"):
        obrien_fleming_spending(0.5, alpha=alpha)


def test_numpy_fractions_are_accepted():
    bounds = lan_demets_boundaries(np.array([1 / 3, 2 / 3, 1.0]))
    # R: ldbounds::ldBounds(3, iuse = 1, alpha = 0.05)$upper.bounds -> 3.7103 2.5114 1.9930
    assert bounds.z == pytest.approx((3.7103, 2.5114, 1.9930), abs=1e-4)
    assert all(type(t) is float for t in bounds.fractions)


# ================================================================ boundaries at the looks taken


def _final_second_look_by_quad(t1: float, t2: float, alpha: float = 0.05) -> float:
    """Return the boundary of a final second look that spends all alpha left, by adaptive quadrature.

    Independent of the grid: scipy.integrate.quad on the exact two-look integral, with the
    score S = Z sqrt(t) a Brownian motion in information time (valid for t2 > 1 too).
    """
    c1 = norm.isf(obrien_fleming_spending(min(t1, 1.0), alpha) / 2.0)
    b1, sd1, inc = c1 * math.sqrt(t1), math.sqrt(t1), math.sqrt(t2 - t1)
    target = alpha - 2.0 * norm.sf(c1)

    def excess(c: float) -> float:
        b = c * math.sqrt(t2)

        def integrand(u: float) -> float:
            return norm.pdf(u / sd1) / sd1 * (norm.sf((b - u) / inc) + norm.sf((b + u) / inc))

        return quad(integrand, -b1, b1, epsabs=1e-14, epsrel=1e-11, limit=200)[0] - target

    return brentq(excess, 0.5, 8.0, xtol=1e-10)


@pytest.mark.parametrize("final", [False, True])
def test_observed_equal_looks_match_ldbounds(final):
    bounds = observed_boundaries([1 / 3, 2 / 3, 1.0], alpha=0.05, final=final)
    # R: ldbounds::ldBounds(3, iuse = 1, alpha = 0.05)$upper.bounds -> 3.7103 2.5114 1.9930
    #    (same as gsDesign::gsDesign(k = 3, test.type = 2, sfu = sfLDOF)$upper$bound, printed to 4 dp)
    assert bounds.z == pytest.approx((3.7103, 2.5114, 1.9930), abs=1e-4)
    assert bounds.alpha_spent[-1] == pytest.approx(0.05, abs=1e-12)
    assert bounds.final is final


@pytest.mark.parametrize(
    "fractions",
    [[1 / 3, 2 / 3, 1.0], [0.2, 0.4, 0.6, 0.8, 1.0], [0.4, 0.75, 0.85, 1.0], [0.15, 1.0], [1.0]],
)
def test_observed_final_look_at_full_information_equals_lan_demets(fractions):
    # At t = 1 the spending function itself has reached alpha, so "spend the rest" changes nothing.
    planned = lan_demets_boundaries(fractions)
    for final in (False, True):
        observed = observed_boundaries(fractions, final=final)
        assert observed.z == pytest.approx(planned.z, abs=1e-12)
        assert observed.alpha_spent == pytest.approx(planned.alpha_spent, abs=1e-15)


def test_observed_interim_looks_equal_lan_demets():
    # Without final=True and with t <= 1 the observed schedule is the spending function's.
    for fractions in ([0.3], [0.3, 0.6], [0.25, 0.5, 0.8]):
        observed = observed_boundaries(fractions)
        planned = lan_demets_boundaries(fractions)
        assert observed.z == planned.z
        assert observed.alpha_spent == planned.alpha_spent
        assert observed.final is False


@pytest.mark.parametrize("fraction", [0.4, 0.93, 1.0, 1.3])
def test_single_observed_final_look_is_fixed_sample_critical_value(fraction):
    # R: qnorm(0.975) -> 1.959964; a lone final look spends all of alpha wherever it falls.
    bounds = observed_boundaries([fraction], final=True)
    assert bounds.z == pytest.approx((1.959964,), abs=1e-6)
    assert bounds.alpha_spent[-1] == pytest.approx(0.05, abs=1e-15)


@pytest.mark.parametrize(
    "fractions",
    [
        [0.5, 1.2],  # the final look over-ran its planned n by 20 %
        [0.25, 0.5, 0.8, 1.15],
        [1 / 3, 2 / 3, 0.9],  # a short final look still spends the rest
        [0.4, 0.7, 0.93],
        [0.6, 1.05, 1.6],  # an interim look already past the plan, then an over-running final look
    ],
)
def test_final_look_spends_exactly_alpha_by_genz_integration(fractions):
    bounds = observed_boundaries(fractions, alpha=0.05, final=True)
    # Independent method: scipy multivariate_normal (Genz) with Cov(Z_i, Z_j) = sqrt(I_i / I_j),
    # the actual information ratio, also beyond t = 1.
    assert _crossing_probability(fractions, bounds.z) == pytest.approx(0.05, abs=1e-7)
    assert bounds.alpha_spent[-1] == pytest.approx(0.05, abs=1e-12)
    # The interim looks spend the function (sfLDOF at min(t, 1)), as Lan & DeMets (1983) define.
    for k in range(1, len(fractions)):
        crossing = _crossing_probability(fractions[:k], bounds.z[:k])
        assert crossing == pytest.approx(obrien_fleming_spending(min(fractions[k - 1], 1.0)), abs=1e-7)


@pytest.mark.parametrize("t1, t2", [(0.5, 1.2), (0.6, 0.9), (1 / 3, 1.5), (0.5, 0.55)])
def test_final_second_look_agrees_with_adaptive_quadrature(t1, t2):
    # Independent numeric method: scipy.integrate.quad on the exact two-look integral.
    exact = _final_second_look_by_quad(t1, t2)
    assert observed_boundaries([t1, t2], final=True).z[1] == pytest.approx(exact, abs=1e-6)


def test_over_running_final_look_keeps_alpha_by_monte_carlo():
    fractions = [0.5, 1.2]
    bounds = observed_boundaries(fractions, final=True)
    per_look = _simulated_first_crossings(fractions, bounds.z, sims=1_000_000, seed=2006)
    # Brownian paths simulated on information time t (increments of variance t_k - t_{k-1});
    # SE of the total at alpha = 0.05 with 1e6 paths is 2.2e-4: allow 4 SE.
    assert per_look.sum() == pytest.approx(0.05, abs=8.8e-4)


def test_short_final_look_has_lower_boundary_than_planned():
    planned = lan_demets_boundaries([1 / 3, 2 / 3, 1.0])
    short = observed_boundaries([1 / 3, 2 / 3, 0.9], final=True)
    over = observed_boundaries([1 / 3, 2 / 3, 1.2], final=True)
    # Same remaining alpha spent at a look more (less) correlated with the last interim one:
    # more (fewer) of its crossings were already counted there, so the boundary is lower (higher).
    assert short.z[:2] == planned.z[:2] == over.z[:2]
    assert short.z[2] < planned.z[2] < over.z[2]


def test_earlier_boundaries_never_move_when_looks_are_added():
    # A look's boundary depends only on the looks up to it (Lan & DeMets 1983), so the boundary a
    # gate used is the one the recomputation reports later.
    fractions = [0.22, 0.47, 0.81, 1.1]
    full = observed_boundaries(fractions, final=True)
    for k in range(1, len(fractions)):
        assert observed_boundaries(fractions[:k]).z == full.z[:k]


def test_look_without_new_information_leaves_later_boundaries_alone():
    # A gate decided without new primary data is a look at (almost) the same statistic: it may spend
    # only the function's increment over a vanishing interval, so later looks keep the boundaries of the
    # schedule without it (ldbounds, 5 equal looks: 4.8769 3.3569 2.6803 2.2898 2.0310).
    planned = lan_demets_boundaries([0.2, 0.4, 0.6, 0.8, 1.0])
    repeated = observed_boundaries([0.2, 0.4, 0.6, 0.6 + 1e-9, 0.8, 1.0], final=True)
    assert repeated.z[:3] == planned.z[:3]
    assert repeated.z[4:] == pytest.approx(planned.z[3:], abs=1e-7)


def test_final_look_without_new_information_spends_the_rest():
    # In the limit Z_2 = Z_1, so the design rejects when |Z_1| >= c_2 < c_1 and spends 2 (1 - Phi(c_2)):
    # spending all of alpha makes c_2 the fixed-sample value, R: qnorm(0.975) -> 1.959964.
    bounds = observed_boundaries([0.5, 0.5 + 1e-9], final=True)
    assert bounds.z[1] == pytest.approx(1.959964, abs=1e-5)


@pytest.mark.parametrize(
    "fractions",
    [[0.5, 0.50003, 1.0], [0.2, 0.4, 0.41, 0.8, 1.0], [0.25, 0.5, 0.502, 0.75, 1.0], [0.3, 0.301, 1.0]],
)
def test_closely_spaced_looks_keep_alpha_by_genz_integration(fractions):
    # Looks a sliver of information apart, where the grid cannot resolve the increment's kernel at the
    # usual resolution.  Independent method: Genz integration, as above; 1e-6 in alpha is ~1e-5 in z.
    bounds = observed_boundaries(fractions, final=True)
    assert _crossing_probability(fractions, bounds.z) == pytest.approx(0.05, abs=1e-6)


def test_non_final_look_past_full_information_has_nothing_to_spend():
    bounds = observed_boundaries([0.5, 1.1, 1.3])
    # sfLDOF(t) = alpha for t >= 1: the look at 1.1 spends the rest, the look at 1.3 nothing.
    assert bounds.z[2] == Z_CAP
    assert bounds.alpha_spent[1] == pytest.approx(0.05, abs=1e-12)
    assert observed_boundaries([0.5, 1.1]).z == pytest.approx(
        observed_boundaries([0.5, 1.1], final=True).z, abs=1e-12
    )


def test_boundaries_stay_backward_compatible():
    # Code that builds Boundaries without the new field, or replaces fields, keeps working.
    built = Boundaries(fractions=(1.0,), z=(1.96,), alpha_spent=(0.05,), alpha=0.05, method="m")
    assert built.final is False
    planned = lan_demets_boundaries([0.5, 1.0])
    cut = dataclasses.replace(planned, fractions=planned.fractions[:1], z=planned.z[:1])
    assert cut.z == planned.z[:1] and cut.final is False
    data = observed_boundaries([0.5, 1.2], final=True).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["final"] is True and data["fractions"] == [0.5, 1.2]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"fractions": []}, "at least one look"),
        ({"fractions": [0.0, 1.0]}, "greater than 0"),
        ({"fractions": [-0.2, 0.5]}, "greater than 0"),
        ({"fractions": [0.5, 0.5]}, "strictly increasing"),
        ({"fractions": [1.2, 0.9]}, "strictly increasing"),
        ({"fractions": [float("inf")]}, "finite"),
        ({"fractions": [0.5], "final": "yes"}, "final"),
        ({"fractions": [0.5], "final": 1}, "final"),
        ({"fractions": [0.5], "alpha": 1.5}, "alpha"),
    ],
)
def test_observed_invalid_input_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        observed_boundaries(**kwargs)


def test_observed_boundaries_are_fast():
    observed_boundaries([0.2, 0.4, 0.6, 0.8, 1.1], final=True)
    start = time.perf_counter()
    observed_boundaries([0.21, 0.43, 0.58, 0.83, 1.07], final=True)
    assert time.perf_counter() - start < 0.05


# ================================================================ conditional power


def test_conditional_power_is_half_when_the_trend_lands_on_the_boundary():
    # B-value identity (Proschan, Lan & Wittes 2006 ch. 3): under the current trend E[B(1)] = B(t)/t =
    # z / sqrt(t), and B(1) is normal about it, so CP = 1/2 exactly when z / sqrt(t) = c.
    for t, c in [(0.25, 1.96), (0.5, 1.993), (0.8, 2.5)]:
        assert conditional_power(c * math.sqrt(t), t, c) == pytest.approx(0.5, abs=1e-15)


def test_conditional_power_matches_jennison_turnbull_information_form():
    # Jennison & Turnbull (2000) ch. 10: with information I_k now and I_K at the end,
    # CP(theta) = Phi((Z_k sqrt(I_k) - c sqrt(I_K) + theta (I_K - I_k)) / sqrt(I_K - I_k)), and the
    # current-trend estimate theta = Z_k / sqrt(I_k) (here on the natural scale, I = n / sigma^2).
    for n_now, n_final, sigma, z, c in [
        (40, 100, 2.0, 1.3, 1.96),
        (150, 200, 1.0, 2.2, 2.01),
        (10, 90, 3.0, -0.4, 1.96),
    ]:
        info_now, info_final = n_now / sigma**2, n_final / sigma**2
        theta = z / math.sqrt(info_now)
        expected = norm.cdf(
            (z * math.sqrt(info_now) - c * math.sqrt(info_final) + theta * (info_final - info_now))
            / math.sqrt(info_final - info_now)
        )
        assert conditional_power(z, n_now / n_final, c) == pytest.approx(expected, abs=1e-14)


def test_conditional_power_under_a_given_drift():
    # Same formula with a fixed drift theta = E[Z_final] (Proschan, Lan & Wittes 2006 ch. 3):
    # theta = 0 is the chance of a false positive still to come; the design drift z_{a/2} + z_b
    # for 80 % power is the chance under the planned effect.
    z, t, c = 1.1, 0.4, 1.96
    assert conditional_power(z, t, c, drift=0.0) == pytest.approx(
        norm.sf((c - z * math.sqrt(t)) / math.sqrt(1 - t)), abs=1e-15
    )
    design = norm.isf(0.025) + norm.isf(0.2)
    assert conditional_power(z, t, c, drift=design) == pytest.approx(
        norm.sf((c - z * math.sqrt(t) - design * (1 - t)) / math.sqrt(1 - t)), abs=1e-15
    )
    assert (
        conditional_power(z, t, c, drift=0.0)
        < conditional_power(z, t, c)
        < conditional_power(z, t, c, drift=design)
    )


def test_conditional_power_by_simulating_the_remaining_observations():
    # Independent check from raw data: 60 of 150 unit-variance observations are in with mean 0.21;
    # under the current trend the other 90 have that mean.  The final z-test rejects when
    # sqrt(150) * mean_150 >= 1.96.
    rng = np.random.default_rng(1988)
    n_now, n_final, mean_now, c = 60, 150, 0.21, 1.96
    z_now = mean_now * math.sqrt(n_now)
    rest = rng.normal(mean_now, 1.0 / math.sqrt(n_final - n_now), size=1_000_000)  # mean of the other 90
    z_final = (n_now * mean_now + (n_final - n_now) * rest) / n_final * math.sqrt(n_final)
    simulated = float((z_final >= c).mean())
    expected = conditional_power(z_now, n_now / n_final, c)
    # SE sqrt(p (1 - p) / 1e6) <= 5e-4; allow 4 SE.
    assert simulated == pytest.approx(expected, abs=2e-3)


def test_conditional_power_at_or_after_the_final_look_is_the_decision():
    assert conditional_power(2.0, 1.0, 1.96) == 1.0
    assert conditional_power(1.9, 1.0, 1.96) == 0.0
    assert conditional_power(1.96, 1.15, 1.96) == 1.0  # an over-running final look


def test_conditional_power_grows_with_z_and_lies_in_the_unit_interval():
    values = [conditional_power(z, 0.5, 1.96) for z in np.linspace(-4.0, 4.0, 41)]
    assert values == sorted(values)
    assert all(0.0 <= v <= 1.0 for v in values)
    assert values[0] < 1e-10 and values[-1] > 1 - 1e-6


def test_equivalence_conditional_power_is_the_interval_probability():
    # TOST with margin 0.33 and a common standard error: the final estimate under the current trend is
    # N(estimate, (1 - t) se_final^2); success is -margin + c se_final <= estimate_final <= margin - c se_final.
    t, c, margin, se_now, estimate = 0.5, 1.96, 0.33, 0.2, 0.02
    z_lower, z_upper = (estimate + margin) / se_now, (margin - estimate) / se_now
    se_final = se_now * math.sqrt(t)
    sd = se_final * math.sqrt(1 - t)
    exact = norm.cdf((margin - c * se_final - estimate) / sd) - norm.cdf(
        (-margin + c * se_final - estimate) / sd
    )
    value = equivalence_conditional_power(z_lower, z_upper, t, c)
    assert value == pytest.approx(exact, abs=1e-14)
    # Seeded simulation of the final estimate: the same number (SE < 5e-4; allow 4 SE).
    rng = np.random.default_rng(21)
    final = rng.normal(estimate, sd, size=1_000_000)
    z_l, z_u = (final + margin) / se_final, (margin - final) / se_final
    assert float(((z_l >= c) & (z_u >= c)).mean()) == pytest.approx(value, abs=2e-3)
    # The product of the one-sided powers treats countermonotone events as independent: too high
    # (here 0.49 against 0.40), by (1 - P_lower)(1 - P_upper).
    p_lower, p_upper = conditional_power(z_lower, t, c), conditional_power(z_upper, t, c)
    assert p_lower * p_upper - value == pytest.approx((1 - p_lower) * (1 - p_upper), abs=1e-14)
    assert p_lower * p_upper > value + 0.05


def test_equivalence_conditional_power_limits():
    # An interval too narrow to fit the final critical values cannot succeed: max(0, ...) is 0.
    assert equivalence_conditional_power(0.2, 0.2, 0.5, 1.96) == 0.0
    # At the final look it is the TOST decision itself.
    assert equivalence_conditional_power(2.0, 2.5, 1.0, 1.96) == 1.0
    assert equivalence_conditional_power(2.0, 1.5, 1.0, 1.96) == 0.0
    # Far inside the margins, both tests all but surely succeed.
    assert equivalence_conditional_power(9.0, 9.0, 0.5, 1.96) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    "args, message",
    [
        ((float("nan"), 0.5, 1.96), "z"),
        ((1.0, 0.0, 1.96), "fraction"),
        ((1.0, -0.5, 1.96), "fraction"),
        ((1.0, 0.5, "1.96"), "final_boundary"),
        ((True, 0.5, 1.96), "z"),
    ],
)
def test_conditional_power_invalid_input_raises(args, message):
    with pytest.raises(ValueError, match=message):
        conditional_power(*args)
    with pytest.raises(ValueError, match=message):
        equivalence_conditional_power(args[0], 1.0, *args[1:])


def test_conditional_power_invalid_drift_raises():
    with pytest.raises(ValueError, match="drift"):
        conditional_power(1.0, 0.5, 1.96, drift=float("inf"))
