"""Probabilities for boards: better, worse, beyond the margin either way, under a flat or a normal prior."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate, stats

from riskreg.stats.designs import NormalPrior, board_chances, percent


def test_values_from_the_standard_normal_table():
    found = board_chances(1.0, 1.0, higher_is_better=True, margin=0.5)
    # Φ(1) = 0.841345, Φ(0.5) = 0.691462, Φ(−1.5) = 0.066807 (any standard normal table)
    assert found.better == pytest.approx(0.841345, abs=1e-6)
    assert found.worse == pytest.approx(1 - 0.841345, abs=1e-6)
    assert found.clears_margin == pytest.approx(0.691462, abs=1e-6)
    assert found.harm_beyond_margin == pytest.approx(0.066807, abs=1e-6)
    assert found.prior == "flat prior"


def test_lower_is_better_reads_the_other_tail_and_a_ratio_its_log():
    # a rate ratio 0.8 with SE 0.1 on the log scale, fewer events better:
    # P(better) = Φ(−log 0.8 / 0.1) = Φ(2.2314) = 0.987173; margin 1.1: Φ((2.2314 − 0.9531)) = Φ(1.2783)
    found = board_chances(0.8, 0.1, higher_is_better=False, ratio=True, margin=1.1)
    assert found.better == pytest.approx(stats.norm.cdf(-math.log(0.8) / 0.1))
    assert found.better == pytest.approx(0.987173, abs=1e-6)
    assert found.clears_margin == pytest.approx(stats.norm.cdf((-math.log(0.8) - math.log(1.1)) / 0.1))
    assert found.harm_beyond_margin == pytest.approx(stats.norm.sf((math.log(1.1) - math.log(0.8)) / 0.1))


@given(st.floats(-5, 5), st.floats(0.01, 3), st.booleans(), st.floats(0.01, 2))
def test_a_flat_prior_reads_the_estimate_and_its_standard_error(estimate, se, higher, margin):
    found = board_chances(estimate, se, higher, margin=margin)
    oriented = estimate if higher else -estimate
    assert found.better == pytest.approx(stats.norm.cdf(oriented / se), abs=1e-12)
    assert found.clears_margin == pytest.approx(stats.norm.cdf((oriented - margin) / se), abs=1e-12)
    assert found.harm_beyond_margin == pytest.approx(stats.norm.cdf((-margin - oriented) / se), abs=1e-12)
    assert found.better + found.worse == pytest.approx(1.0)
    assert found.clears_margin <= found.better + 1e-12
    assert found.harm_beyond_margin <= found.worse + 1e-12


def test_a_normal_prior_gives_the_posterior_found_by_numerical_integration():
    estimate, se, prior = 0.6, 0.3, NormalPrior(0.0, 0.5)
    found = board_chances(estimate, se, higher_is_better=True, margin=0.2, prior=prior)

    def density(theta: float) -> float:
        return stats.norm.pdf(estimate, theta, se) * stats.norm.pdf(theta, prior.mean, prior.sd)

    total = integrate.quad(density, -10, 10)[0]
    assert found.better == pytest.approx(integrate.quad(density, 0, 10)[0] / total, abs=1e-8)
    assert found.clears_margin == pytest.approx(integrate.quad(density, 0.2, 10)[0] / total, abs=1e-8)
    assert found.harm_beyond_margin == pytest.approx(integrate.quad(density, -10, -0.2)[0] / total, abs=1e-8)
    # conjugate: mean (0.6/0.09)/(1/0.09 + 1/0.25) = 0.441176, sd sqrt(1/(1/0.09 + 1/0.25)) = 0.257248
    assert (found.posterior_mean, found.posterior_sd) == (
        pytest.approx(0.441176, abs=1e-6),
        pytest.approx(0.257248, abs=1e-6),
    )
    assert found.better < board_chances(estimate, se, True).better  # a sceptical prior pulls towards 0


def test_the_chances_in_words_for_a_board():
    found = board_chances(1.0, 1.0, higher_is_better=True, margin=0.5)
    assert found.words() == (
        "an 84 % chance the pilot is better; a 69 % chance it is better by more than the margin; "
        "a 7 % chance it is worse by more than the margin"
    )
    assert board_chances(0.3, 1.0, True).words() == "a 62 % chance the pilot is better"


def test_percentages_never_claim_certainty():
    assert (percent(0.001), percent(0.9999), percent(0.111), percent(0.5)) == (
        "< 1 %",
        "> 99 %",
        "11 %",
        "50 %",
    )


def test_bad_input_is_refused_by_name():
    with pytest.raises(ValueError, match="se must be greater than 0"):
        board_chances(1.0, 0.0, True)
    with pytest.raises(ValueError, match=r"a ratio's margin must be above 1, got 0\.9"):
        board_chances(1.2, 0.1, True, ratio=True, margin=0.9)
    with pytest.raises(ValueError, match=r"prior\.sd must be greater than 0"):
        board_chances(1.0, 1.0, True, prior=NormalPrior(0.0, 0.0))
