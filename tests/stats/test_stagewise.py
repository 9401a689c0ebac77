"""Tests for inference after a group-sequential stop under the stage-wise ordering."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import multivariate_normal, norm

from riskreg.stats.sequential import (
    Z_CAP,
    StagewiseInference,
    lan_demets_boundaries,
    observed_boundaries,
    stagewise_inference,
)

FIVE = lan_demets_boundaries([0.2, 0.4, 0.6, 0.8, 1.0])


def _genz_tail(fractions, boundaries, z: float, theta: float) -> float:
    """Return P_theta(stop on the upper side before the last look, or reach it with Z >= z) by Genz.

    Independent of the module's grid: scipy multivariate_normal with E[Z_j] = theta sqrt(t_j / t_k)
    and Cov(Z_i, Z_j) = sqrt(t_i / t_j); continuation regions |Z_i| < b_i (seeded).
    """
    t = np.asarray(fractions, dtype=float)
    mean = theta * np.sqrt(t / t[-1])
    total = 0.0
    for j in range(len(t)):
        tt = t[: j + 1]
        cov = np.sqrt(np.minimum.outer(tt, tt) / np.maximum.outer(tt, tt))
        exit_level = boundaries[j] if j < len(t) - 1 else z
        lower = np.array([*(-b for b in boundaries[:j]), exit_level])
        upper = np.array([*boundaries[:j], np.inf])
        mvn = multivariate_normal(
            mean=mean[: j + 1], cov=cov, seed=8, maxpts=2_000_000, abseps=1e-9, releps=0
        )
        total += float(mvn.cdf(upper, lower_limit=lower))
    return total


# ---------------------------------------------------------------- exact identities


@pytest.mark.parametrize("z", [FIVE.z[0], 5.3, 6.0])
def test_stop_at_the_first_look_is_the_naive_analysis(z):
    se = 0.37
    result = stagewise_inference(FIVE.fractions, FIVE.z, 1, z, se)
    # Exact identity (Jennison & Turnbull 2000 ch. 8): at look 1 the ordering is that of Z_1 ~ N(theta, 1),
    # so the p-value is 2 (1 - Phi(z)), the median-unbiased estimate is z se and the CI z se -/+ 1.96 se.
    assert result.p_value == pytest.approx(2 * norm.sf(z), rel=1e-12)
    assert result.median_unbiased == pytest.approx(z * se, abs=1e-14)
    assert result.estimate == pytest.approx(z * se, abs=1e-14)
    half = norm.isf(0.025) * se
    assert result.ci == pytest.approx((z * se - half, z * se + half), abs=1e-12)


@pytest.mark.parametrize("look", [1, 2, 3, 4, 5])
def test_p_value_on_the_boundary_is_the_alpha_spent(look):
    # Under H0 the outcomes at least as extreme as (k, b_k) are exactly the upper crossings at looks 1..k,
    # whose probability is half the two-sided alpha spent by look k (Lan & DeMets 1983 spending; stage-wise
    # ordering, Jennison & Turnbull 2000 ch. 8): the stage-wise p-value is <= alpha exactly when the pilot crossed.
    result = stagewise_inference(FIVE.fractions, FIVE.z, look, FIVE.z[look - 1], 1.0)
    assert result.p_value == pytest.approx(FIVE.alpha_spent[look - 1], rel=1e-8)


def test_interval_at_the_final_boundary_just_touches_zero():
    # Duality of test and interval: at the final boundary the one-sided p is alpha/2, so the CI's lower end is 0.
    result = stagewise_inference(FIVE.fractions, FIVE.z, 5, FIVE.z[-1], 0.5)
    assert result.p_value == pytest.approx(0.05, abs=1e-10)
    assert result.ci[0] == pytest.approx(0.0, abs=1e-9)


# ---------------------------------------------------------------- published values


@pytest.mark.parametrize(
    "events, direction, expected_mue, expected_ci",
    [
        (38, 1.0, 2.4764002, (1.222663, 4.752454)),
        (40, -1.0, 0.41319107, (0.21888803, 0.82206073)),
    ],
)
def test_matches_rpact_survival_example(events, direction, expected_mue, expected_ci):
    # rpact tests/testthat/test-f_analysis_base_survival.R, "three-stage group sequential design and survival
    # data" (and its 'directionUpper' reversed twin): getDesignGroupSequential(kMax = 3, alpha = 0.025,
    # informationRates = c(0.2, 0.4, 1), typeOfDesign = "WT", deltaWT = 0.25, non-binding futility);
    # overallLogRanks c(1.52, 1.38, 2.9) (negated for the twin), overallEvents c(8, 15, 38) (40 for the twin):
    # finalPValues 0.0074535505, medianUnbiasedEstimates 2.4764002 (0.41319107), final CI 1.222663 - 4.752454
    # (0.21888803 - 0.82206073), all hazard ratios.
    # Wang-Tsiatis critical values C t^(deltaWT - 1/2); C solved once by Genz for one-sided level 0.025
    # (checked just below).  rpact's design has no lower boundary; with these boundaries the paths that
    # cross below -b_j and later end above z have probability < 1e-8, so the symmetric continuation
    # regions give the same numbers.
    fractions = (0.2, 0.4, 1.0)
    wt = tuple(2.030716471432112 * t**-0.25 for t in fractions)
    t = np.asarray(fractions)
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    mvn = multivariate_normal(mean=np.zeros(3), cov=cov, seed=1, maxpts=2_000_000, abseps=1e-9, releps=0)
    assert 1.0 - mvn.cdf(np.asarray(wt)) == pytest.approx(0.025, abs=2e-8)

    # Log-rank with 1:1 allocation: log HR = 2 Z / sqrt(events), so the se of the log HR is 2 / sqrt(events).
    result = stagewise_inference(fractions, wt, 3, 2.9, 2.0 / math.sqrt(events), alpha=0.05)
    assert result.p_value / 2.0 == pytest.approx(0.0074535505, rel=1e-6)
    assert math.exp(direction * result.median_unbiased) == pytest.approx(expected_mue, rel=1e-6)
    ci = sorted(math.exp(direction * bound) for bound in result.ci)
    assert ci == pytest.approx(list(expected_ci), rel=1e-6)


# ---------------------------------------------------------------- independent integration


@pytest.mark.parametrize(
    "fractions, boundaries, look, z",
    [
        ((0.25, 0.5, 0.75, 1.0), (2.361, 2.361, 2.361, 2.361), 2, 2.8),  # Pocock-type constant boundaries
        (FIVE.fractions, FIVE.z, 3, 3.1),
        ((0.5, 1.2), observed_boundaries([0.5, 1.2], final=True).z, 2, 2.4),  # over-running final look
    ],
)
def test_estimates_solve_the_tail_equations_by_genz(fractions, boundaries, look, z):
    se = 0.8
    result = stagewise_inference(fractions, boundaries, look, z, se)
    used = (fractions[:look], boundaries[:look])
    # Independent method (Genz): the tail probability at the returned drifts is 1/2, alpha/2 and
    # 1 - alpha/2, and at theta = 0 half the p-value (Jennison & Turnbull 2000 ch. 8 definitions).
    assert _genz_tail(*used, z, result.median_unbiased / se) == pytest.approx(0.5, abs=1e-6)
    assert _genz_tail(*used, z, result.ci[0] / se) == pytest.approx(0.025, abs=1e-6)
    assert _genz_tail(*used, z, result.ci[1] / se) == pytest.approx(0.975, abs=1e-6)
    assert _genz_tail(*used, z, 0.0) == pytest.approx(result.p_value / 2.0, abs=1e-7)


def test_later_stop_has_larger_p_and_shrunken_estimate():
    # Pocock-type boundaries (constant 2.361 for four looks, alpha = 0.05) give every look a real chance
    # to stop, so the naive analysis is visibly too optimistic after a stop at look 3.
    bounds, se, z = (2.361,) * 4, 1.0, 2.6
    result = stagewise_inference((0.25, 0.5, 0.75, 1.0), bounds, 3, z, se)
    naive_p = 2 * norm.sf(z)
    assert result.p_value > naive_p * 1.5
    assert 0.0 < result.median_unbiased < result.estimate - 0.1
    assert result.ci[1] - result.ci[0] > 0.0
    # The O'Brien-Fleming-type design moves the same analysis far less: its early looks rarely stop.
    obf = stagewise_inference(FIVE.fractions, FIVE.z, 3, 3.0, se)
    assert 2 * norm.sf(3.0) < obf.p_value < 2 * norm.sf(3.0) * 1.2
    assert 3.0 - 0.05 < obf.median_unbiased < 3.0


def test_lower_side_stop_is_the_mirror_image():
    # Symmetric boundaries: at the last look any z may occur; negating z negates the estimates and keeps p.
    up = stagewise_inference(FIVE.fractions, FIVE.z, 5, 1.4, 0.3, final=True)
    down = stagewise_inference(FIVE.fractions, FIVE.z, 5, -1.4, 0.3, final=True)
    assert down.p_value == pytest.approx(up.p_value, abs=1e-9)
    assert down.median_unbiased == pytest.approx(-up.median_unbiased, abs=1e-9)
    assert down.ci == pytest.approx((-up.ci[1], -up.ci[0]), abs=1e-9)
    assert up.p_value > 0.05  # not significant: the pilot ran to its end without crossing


def test_look_without_new_information_changes_nothing():
    # A gate without new primary data repeats the statistic; its boundary (a hair above the previous one)
    # stops no extra path, so the inference equals that of the schedule without the repeated look.
    plain = observed_boundaries([0.2, 0.4, 0.6, 0.8, 1.0], final=True)
    repeated = observed_boundaries([0.2, 0.4, 0.6, 0.6 + 1e-9, 0.8, 1.0], final=True)
    for z in (2.3, 3.0):
        a = stagewise_inference(repeated.fractions, repeated.z, 5, z, 1.0)
        b = stagewise_inference(plain.fractions, plain.z, 4, z, 1.0)
        assert a.p_value == pytest.approx(b.p_value, abs=1e-10)
        assert a.median_unbiased == pytest.approx(b.median_unbiased, abs=1e-7)
        assert a.ci == pytest.approx(b.ci, abs=1e-7)


# ---------------------------------------------------------------- Monte Carlo


def _simulate_outcomes(fractions, boundaries, drift: float, sims: int, seed: int):
    """Return (stop look 1-based, Z there) of seeded trials with E[Z_j] = drift sqrt(t_j)."""
    rng = np.random.default_rng(seed)
    t = np.asarray(fractions)
    scores = np.cumsum(rng.standard_normal((sims, len(t))) * np.sqrt(np.diff(t, prepend=0.0)), axis=1)
    stats = (scores + drift * t) / np.sqrt(t)
    crossed = np.abs(stats[:, :-1]) >= np.asarray(boundaries[:-1])
    stop = np.where(crossed.any(axis=1), crossed.argmax(axis=1), len(t) - 1)
    return stop + 1, stats[np.arange(sims), stop]


def test_monte_carlo_median_unbiased_and_covering():
    # The stage-wise estimate is median unbiased and the interval covers with probability 1 - alpha over
    # all outcomes of the design (Jennison & Turnbull 2000 ch. 8), not conditionally on the stop look.
    # For upper stops and the last look each end is increasing in z at a given look, so "end <= truth" is
    # "z <= a threshold" per look: find the thresholds with the public function, then count 200 000
    # seeded simulated pilots against them.  The few lower crossings are analysed one by one, mirrored.
    fractions, bounds = (0.25, 0.5, 0.75, 1.0), (2.361,) * 4
    drift = 2.0  # E[Z] at full information; look k's standard error is 1 / sqrt(t_k), so the truth is 2
    looks, z = _simulate_outcomes(fractions, bounds, drift, 200_000, seed=2000)
    lower = (looks < 4) & (z < 0)

    def analyse(look: int, value: float) -> StagewiseInference:
        se = 1.0 / math.sqrt(fractions[look - 1])
        return stagewise_inference(fractions, bounds, look, value, se, final=look == len(fractions))

    def threshold(look: int, pick) -> float:
        def excess(value: float) -> float:
            return pick(analyse(look, value)) - drift

        low, high = (-10.0 if look == len(fractions) else bounds[look - 1]), 15.0
        if excess(low) >= 0.0:
            return low  # every upper stop at this look lies above the truth
        if excess(high) <= 0.0:
            # The ordering ranks every stop at look k below every upper stop before it, so the ends are
            # bounded at later looks (Jennison & Turnbull 2000 ch. 8): here all of them lie below the truth.
            return math.inf
        return brentq(excess, low, high, xtol=1e-8)

    mirrored = [analyse(int(k), -float(v)) for k, v in zip(looks[lower], z[lower], strict=True)]
    for pick, mirror, expected in [
        (lambda r: r.median_unbiased, lambda r: -r.median_unbiased, 0.5),
        (lambda r: r.ci[0], lambda r: -r.ci[1], 0.975),  # lower end <= truth
        (lambda r: r.ci[1], lambda r: -r.ci[0], 0.025),  # upper end <= truth: a miss
    ]:
        cuts = np.array([threshold(k, pick) for k in range(1, 5)])
        below = int(((z <= cuts[looks - 1]) & ~lower).sum()) + sum(mirror(r) <= drift for r in mirrored)
        # SE sqrt(p (1 - p) / 2e5) <= 1.2e-3; allow 4 SE.
        assert below / len(z) == pytest.approx(expected, abs=4.5e-3)
    # The naive estimate z se is not median unbiased: early stops make it over-state the truth.
    naive = z / np.sqrt(np.asarray(fractions)[looks - 1])
    assert float((naive <= drift).mean()) < 0.5 - 0.02


# ---------------------------------------------------------------- shape, speed, validation


def test_to_dict_is_json_ready_and_frozen():
    result = stagewise_inference(FIVE.fractions, FIVE.z, 2, 3.5, 0.2)
    data = result.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["stop_look"] == 2 and len(data["ci"]) == 2
    assert isinstance(result, StagewiseInference)
    with pytest.raises(AttributeError):
        result.p_value = 0.5  # type: ignore[misc]


def test_stagewise_inference_is_fast():
    stagewise_inference(FIVE.fractions, FIVE.z, 5, 2.2, 0.1, final=True)
    for look, z in [(2, 3.4), (5, 2.2)]:
        start = time.perf_counter()
        stagewise_inference(FIVE.fractions, FIVE.z, look, z, 0.1, final=look == 5)
        assert time.perf_counter() - start < 0.05


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"stop_look": 0}, "stop_look"),
        ({"stop_look": 6}, "stop_look"),
        ({"stop_look": 1.5}, "stop_look"),
        ({"z": 2.0}, "did not cross"),
        ({"z": float("nan")}, "z"),
        ({"estimate_se": 0.0}, "estimate_se"),
        ({"alpha": 0.0}, "alpha"),
        ({"boundaries": FIVE.z[:4]}, "one value per look"),
        ({"boundaries": (*FIVE.z[:4], Z_CAP + 1)}, "boundaries"),
        ({"boundaries": (-1.0, *FIVE.z[1:])}, "boundaries"),
        ({"fractions": (0.2, 0.2, 0.6, 0.8, 1.0)}, "strictly increasing"),
        ({"final": "no"}, "final"),
    ],
)
def test_invalid_input_raises(kwargs, message):
    arguments = {
        "fractions": FIVE.fractions,
        "boundaries": FIVE.z,
        "stop_look": 3,
        "z": 3.0,
        "estimate_se": 0.1,
    } | kwargs
    with pytest.raises(ValueError, match=message):
        stagewise_inference(**arguments)
