"""Stratified (multi-site) comparisons against published values and their defining properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskreg.stats.stratified import (
    BinaryStratum,
    MeanStratum,
    RateStratum,
    cmh_test,
    cochran_q,
    inverse_variance,
    mh_odds_ratio,
    mh_rate_ratio,
    mh_risk_difference,
    mh_risk_ratio,
)

# R's UCBAdmissions (datasets package): admitted and rejected applicants by gender, in six
# departments. "Pilot" stands for Male and "comparison" for Female, so the pooled odds ratio
# is that of admission for men against women, as R's x[1, 1, k] orientation gives it.
UCB = {  # department: (male admitted, male rejected, female admitted, female rejected)
    "A": (512, 313, 89, 19),
    "B": (353, 207, 17, 8),
    "C": (120, 205, 202, 391),
    "D": (138, 279, 131, 244),
    "E": (53, 138, 94, 299),
    "F": (22, 351, 24, 317),
}
STRATA = [BinaryStratum(ma, ma + mr, fa, fa + fr) for ma, mr, fa, fr in UCB.values()]


def test_mh_odds_ratio_and_its_interval_match_r_mantelhaen_test():
    # R 4.x: mantelhaen.test(UCBAdmissions) -> common odds ratio 0.9046968,
    # 95 percent confidence interval 0.7719074 1.0603298 (RBG variance)
    pooled = mh_odds_ratio(STRATA)
    assert pooled.estimate == pytest.approx(0.9046968, abs=5e-8)
    assert pooled.ci == (pytest.approx(0.7719074, abs=5e-8), pytest.approx(1.0603298, abs=5e-8))


def test_cmh_statistic_matches_r_with_and_without_the_continuity_correction():
    # R: mantelhaen.test(UCBAdmissions) -> Mantel-Haenszel X-squared = 1.4269, df = 1, p-value = 0.2323;
    #    mantelhaen.test(UCBAdmissions, correct = FALSE) -> X-squared = 1.5246, p-value = 0.2169
    corrected, plain = cmh_test(STRATA), cmh_test(STRATA, continuity=False)
    assert (round(corrected.statistic, 4), round(corrected.p_value, 4)) == (1.4269, 0.2323)
    assert (round(plain.statistic, 4), round(plain.p_value, 4)) == (1.5246, 0.2169)


def test_departments_disagree_which_is_simpsons_paradox_in_q():
    # Department A admits women far more readily than men; the others hardly differ. Q on the
    # per-department log odds ratios (Woolf variances), 5 df, is computed here independently.
    logs = [math.log(ma * fr / (mr * fa)) for ma, mr, fa, fr in UCB.values()]
    variances = [1 / ma + 1 / mr + 1 / fa + 1 / fr for ma, mr, fa, fr in UCB.values()]
    weights = [1 / v for v in variances]
    centre = sum(w * x for w, x in zip(weights, logs, strict=True)) / sum(weights)
    q = sum(w * (x - centre) ** 2 for w, x in zip(weights, logs, strict=True))
    found = mh_odds_ratio(STRATA).heterogeneity
    assert found is not None
    assert (found.q, found.df) == (pytest.approx(q), 5)
    assert found.i_squared == pytest.approx((q - 5) / q)
    assert found.p_value < 0.01
    assert mh_odds_ratio(STRATA).per_stratum[0] == pytest.approx(512 * 19 / (313 * 89))


def test_q_and_i_squared_match_borenstein_style_hand_computation():
    # Three studies with effects 0.1, 0.3, 0.5 and variances 0.01 each: pooled 0.3,
    # Q = (0.2² + 0 + 0.2²) / 0.01 = 8 on 2 df, I² = (8 - 2) / 8 = 0.75, p = exp(-4) (chi-square 2 df)
    found = cochran_q([0.1, 0.3, 0.5], [0.01, 0.01, 0.01])
    assert found is not None
    assert (found.q, found.df, found.i_squared) == (pytest.approx(8.0), 2, pytest.approx(0.75))
    assert found.p_value == pytest.approx(math.exp(-4.0))
    assert cochran_q([0.2], [0.01]) is None


def test_greenland_robins_rate_ratio_on_a_hand_checked_pair_of_strata():
    # Two strata: 10 events / 100 person-years against 5 / 100, and 20 / 400 against 10 / 400.
    # MH numerator Σ a t0 / T = 10·100/200 + 20·400/800 = 15, denominator Σ c t1 / T = 2.5 + 5 = 7.5:
    # IRR = 2. Var(log) = Σ t1 t0 (a + c) / T² / (15 · 7.5) = (0.25·15 + 0.25·30) / 112.5 = 0.1.
    pooled = mh_rate_ratio([RateStratum(10, 100, 5, 100), RateStratum(20, 400, 10, 400)])
    assert pooled.estimate == pytest.approx(2.0)
    assert pooled.se == pytest.approx(math.sqrt(0.1))
    assert pooled.heterogeneity is not None and pooled.heterogeneity.q == pytest.approx(0.0)


def test_mh_risk_difference_with_one_stratum_is_the_crude_difference_and_its_wald_variance():
    one = [BinaryStratum(30, 100, 20, 100)]
    pooled = mh_risk_difference(one)
    assert pooled.estimate == pytest.approx(0.1)
    assert pooled.se == pytest.approx(math.sqrt(0.3 * 0.7 / 100 + 0.2 * 0.8 / 100))


def test_inverse_variance_pooling_weights_by_precision():
    pooled = inverse_variance([MeanStratum(1.0, 1.0), MeanStratum(3.0, 3.0)])
    assert pooled.estimate == pytest.approx((1.0 + 1.0) / (1.0 + 1 / 3))  # (1·1 + 3·⅓) / (1 + ⅓)
    assert pooled.se == pytest.approx(math.sqrt(1 / (1 + 1 / 3)))


def test_bad_strata_are_refused_by_name():
    with pytest.raises(ValueError, match="pilot_events \\(5\\) cannot exceed pilot_n \\(4\\)"):
        mh_risk_ratio([BinaryStratum(5, 4, 1, 4)])
    with pytest.raises(ValueError, match="no stratum has units in both arms"):
        mh_odds_ratio([BinaryStratum(1, 4, 0, 0)])
    with pytest.raises(ValueError, match="needs events in both arms"):
        mh_risk_ratio([BinaryStratum(0, 4, 1, 4)])


table = st.builds(
    lambda n1, n0, f1, f0: BinaryStratum(round(f1 * n1), n1, round(f0 * n0), n0),
    st.integers(5, 400),
    st.integers(5, 400),
    st.floats(0.05, 0.95),
    st.floats(0.05, 0.95),
)


@settings(max_examples=150, deadline=None)
@given(stratum=table)
def test_one_stratum_gives_the_crude_estimates(stratum):
    a, n1, c, n0 = stratum.pilot_events, stratum.pilot_n, stratum.comparison_events, stratum.comparison_n
    if not (0 < a < n1 and 0 < c < n0):
        return
    assert mh_risk_ratio([stratum]).estimate == pytest.approx((a / n1) / (c / n0))
    assert mh_odds_ratio([stratum]).estimate == pytest.approx(a * (n0 - c) / ((n1 - a) * c))
    assert mh_risk_difference([stratum]).estimate == pytest.approx(a / n1 - c / n0)


@settings(max_examples=100, deadline=None)
@given(strata=st.lists(table, min_size=2, max_size=6), seed=st.randoms())
def test_the_order_of_the_strata_changes_nothing(strata, seed):
    if not all(0 < s.pilot_events < s.pilot_n and 0 < s.comparison_events < s.comparison_n for s in strata):
        return
    shuffled = list(strata)
    seed.shuffle(shuffled)
    for pool in (mh_risk_ratio, mh_odds_ratio, mh_risk_difference):
        first, second = pool(strata), pool(shuffled)
        assert second.estimate == pytest.approx(first.estimate)
        assert second.se == pytest.approx(first.se)
