"""ANCOVA from sufficient statistics against full least squares on the individual rows."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as dist

from riskreg.stats.ancova import ArmMoments, ancova


def moments(x: list[float], y: list[float]) -> ArmMoments:
    return ArmMoments.from_sums(
        n=len(x),
        sum_x=math.fsum(x),
        sum_x2=math.fsum(v * v for v in x),
        sum_y=math.fsum(y),
        sum_y2=math.fsum(v * v for v in y),
        sum_xy=math.fsum(a * b for a, b in zip(x, y, strict=True)),
    )


def least_squares(x1, y1, x0, y0):  # type: ignore[no-untyped-def]
    """The textbook fit of y = a + d·pilot + b·x by numpy, for an independent check: (d, se(d), df)."""
    x = np.array([*x1, *x0])
    y = np.array([*y1, *y0])
    design = np.column_stack([np.ones_like(x), [1.0] * len(x1) + [0.0] * len(x0), x])
    coefficients, residuals, *_ = np.linalg.lstsq(design, y, rcond=None)
    df = len(y) - 3
    sigma2 = float(residuals[0]) / df
    covariance = sigma2 * np.linalg.inv(design.T @ design)
    return float(coefficients[1]), math.sqrt(covariance[1, 1]), df


def generated(seed: int, n1: int = 40, n0: int = 45, slope: float = 0.8, effect: float = 1.5):  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    x1 = [rng.gauss(50, 10) for _ in range(n1)]
    x0 = [rng.gauss(48, 10) for _ in range(n0)]
    y1 = [20 + effect + slope * v + rng.gauss(0, 5) for v in x1]
    y0 = [20 + slope * v + rng.gauss(0, 5) for v in x0]
    return x1, y1, x0, y0


def test_the_adjusted_difference_and_its_se_equal_full_least_squares():
    x1, y1, x0, y0 = generated(7)
    found = ancova(moments(x1, y1), moments(x0, y0))
    d, se, df = least_squares(x1, y1, x0, y0)
    assert (found.difference, found.se, found.df) == (
        pytest.approx(d, rel=1e-9),
        pytest.approx(se, rel=1e-9),
        df,
    )
    critical = dist.t.isf(0.025, df)
    assert found.ci == (pytest.approx(d - critical * se), pytest.approx(d + critical * se))
    assert found.p_value == pytest.approx(2 * dist.t.sf(abs(d / se), df))


def test_a_baseline_that_explains_the_outcome_cuts_the_variance():
    x1, y1, x0, y0 = generated(11, slope=0.8)
    found = ancova(moments(x1, y1), moments(x0, y0))
    # the baseline (sd 10, slope 0.8) carries about 64 / (64 + 25) of the outcome's variance
    assert 0.5 < found.variance_reduction < 0.8
    assert found.se < found.unadjusted_se
    # the unadjusted figures are the two-sample (pooled-variance) t ones
    test = dist.ttest_ind(y1, y0)
    assert found.unadjusted_difference / found.unadjusted_se == pytest.approx(test.statistic)


def test_a_baseline_unrelated_to_the_outcome_buys_nothing_much():
    x1, y1, x0, y0 = generated(3, slope=0.0)
    found = ancova(moments(x1, y1), moments(x0, y0))
    assert abs(found.variance_reduction) < 0.1


def test_constant_baselines_are_refused():
    flat = moments([5.0, 5.0, 5.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="the baseline does not vary within the arms"):
        ancova(flat, flat)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n1=st.integers(3, 30), n0=st.integers(3, 30), slope=st.floats(-2, 2))
def test_sufficient_statistics_always_agree_with_least_squares(seed, n1, n0, slope):
    x1, y1, x0, y0 = generated(seed, n1, n0, slope)
    found = ancova(moments(x1, y1), moments(x0, y0))
    d, se, _df = least_squares(x1, y1, x0, y0)
    assert found.difference == pytest.approx(d, rel=1e-6, abs=1e-9)
    assert found.se == pytest.approx(se, rel=1e-6)


# --- units without a baseline: mean imputation with a missing indicator -------------------------

from riskreg.stats.ancova import MissingBaseline, ancova_missing_indicator  # noqa: E402


def indicator_least_squares(rows):  # type: ignore[no-untyped-def]
    """numpy's least squares of y = a + d·pilot + b·x̃ + g·missing on the rows, x̃ the observed mean where x is None."""
    observed = [x for _t, x, _y in rows if x is not None]
    fill = sum(observed) / len(observed)
    design = np.array([[1.0, t, fill if x is None else x, float(x is None)] for t, x, _y in rows])
    y = np.array([y for _t, _x, y in rows])
    beta, residual, _rank, _ = np.linalg.lstsq(design, y, rcond=None)
    df = len(rows) - 4
    s2 = float(residual[0]) / df
    cov = s2 * np.linalg.inv(design.T @ design)
    return float(beta[1]), math.sqrt(cov[1, 1]), float(beta[2]), df


def split(rows, treated):  # type: ignore[no-untyped-def]
    present = [(x, y) for t, x, y in rows if t == treated and x is not None]
    gaps = [y for t, x, y in rows if t == treated and x is None]
    arm = moments([x for x, _ in present], [y for _, y in present]) if present else None
    mean = sum(gaps) / len(gaps) if gaps else 0.0
    gap = MissingBaseline(len(gaps), mean, sum((v - mean) ** 2 for v in gaps)) if gaps else None
    return arm, gap


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_units_without_a_baseline_are_kept_by_a_missing_indicator_as_least_squares_on_the_rows(seed):
    rng = random.Random(seed)
    rows = []
    for i in range(80):
        treated = i % 2
        x = rng.gauss(50, 10)
        y = 20 + 0.6 * x + 3 * treated + rng.gauss(0, 5)
        rows.append((treated, None if rng.random() < 0.25 else x, y))
    pilot, pilot_gap = split(rows, 1)
    comparison, comparison_gap = split(rows, 0)
    found = ancova_missing_indicator(pilot, comparison, pilot_gap, comparison_gap)
    d, se, slope, df = indicator_least_squares(rows)
    assert found.difference == pytest.approx(d, rel=1e-9)
    assert found.se == pytest.approx(se, rel=1e-9)
    assert found.slope == pytest.approx(slope, rel=1e-9)
    assert found.df == df == 76
    assert found.p_value == pytest.approx(2 * dist.t.sf(abs(d / se), df), rel=1e-9)
    # the unadjusted difference uses every unit with an outcome
    means = [np.mean([y for t, _x, y in rows if t == arm]) for arm in (1, 0)]
    assert found.unadjusted_difference == pytest.approx(means[0] - means[1])


def test_with_every_baseline_present_it_is_the_plain_ancova():
    x1, y1, x0, y0 = [1.0, 2, 4, 5], [3.0, 4, 7, 8], [1.0, 3, 4, 6], [2.0, 3, 5, 6]
    plain = ancova(moments(x1, y1), moments(x0, y0))
    assert ancova_missing_indicator(moments(x1, y1), moments(x0, y0)) == plain


def test_an_arm_whose_baselines_are_all_missing_cannot_be_told_from_the_indicator():
    comparison = moments([1.0, 2, 4], [2.0, 3, 5])
    with pytest.raises(ValueError, match="cannot be told apart"):
        ancova_missing_indicator(None, comparison, MissingBaseline(3, 4.0, 2.0), None)
