"""Tests for Lan–DeMets O'Brien–Fleming-type group-sequential boundaries."""

from __future__ import annotations

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
    lan_demets_boundaries,
    obrien_fleming_spending,
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
