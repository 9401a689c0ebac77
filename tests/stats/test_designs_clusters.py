"""Cluster-level analyses: weighted t tests on cluster summaries, ratios on the log scale, the ICC within arms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import optimize, stats

from riskreg.stats.clusters import Cluster, icc_anova
from riskreg.stats.designs import (
    BinaryCluster,
    RateCluster,
    binary_as_clusters,
    cluster_mean_difference,
    cluster_rate_difference,
    cluster_rate_ratio,
    cluster_risk_difference,
    cluster_risk_ratio,
    clusters_needed,
    icc_within_arms,
    rate_cv_within_arms,
)

# R's sleep data (datasets package), extra hours of sleep by drug group, read here as ten
# cluster means per arm so that the equal-weight cluster-level test is the classic t test.
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def cluster(values) -> Cluster:
    values = np.asarray(values, dtype=float)
    return Cluster(len(values), float(values.mean()), float(((values - values.mean()) ** 2).sum()))


def wls(values, weights, arm):
    """Return the arm coefficient of weighted least squares and its SE, as R's lm(v ~ arm, weights = w)."""
    x = np.column_stack([np.ones(len(values)), arm])
    root = np.sqrt(weights)
    beta, rss, *_ = np.linalg.lstsq(x * root[:, None], values * root, rcond=None)
    sigma2 = rss[0] / (len(values) - 2)
    return beta[1], math.sqrt(sigma2 * np.linalg.inv((x * weights[:, None]).T @ x)[1, 1])


def test_equal_weights_give_r_s_pooled_t_test_on_the_sleep_data():
    found = cluster_mean_difference(
        [Cluster(1, v, 0.0) for v in SLEEP_1], [Cluster(1, v, 0.0) for v in SLEEP_2]
    )
    # R: t.test(extra ~ group, data = sleep, var.equal = TRUE)
    #    t = -1.8608, df = 18, p-value = 0.07919; 95 percent CI -3.363874 0.203874
    assert found.estimate == pytest.approx(-1.58)
    assert found.t == pytest.approx(-1.8608, abs=5e-5)
    assert found.df == 18
    assert found.p_value == pytest.approx(0.07919, abs=5e-6)
    assert found.ci == (pytest.approx(-3.363874, abs=1e-6), pytest.approx(0.203874, abs=1e-6))


def test_size_weights_are_weighted_least_squares_on_the_cluster_means():
    rng = np.random.default_rng(7)
    pilot = [cluster(rng.normal(52, 5, rng.integers(3, 40))) for _ in range(5)]
    comparison = [cluster(rng.normal(50, 5, rng.integers(3, 40))) for _ in range(7)]
    found = cluster_mean_difference(pilot, comparison, weighting="size")
    arms = pilot + comparison
    difference, se = wls(
        np.array([c.mean for c in arms]),
        np.array([c.n for c in arms], dtype=float),
        np.array([1.0] * 5 + [0.0] * 7),
    )
    assert (found.estimate, found.se, found.df) == (pytest.approx(difference), pytest.approx(se), 10)
    # weighting by size makes the estimate the difference of the individual-level means
    mean = [sum(c.n * c.mean for c in arm) / sum(c.n for c in arm) for arm in (pilot, comparison)]
    assert found.estimate == pytest.approx(mean[0] - mean[1])
    assert found.p_value == pytest.approx(2 * stats.t.sf(abs(difference / se), 10))


@given(st.lists(st.integers(1, 50), min_size=4, max_size=10), st.integers(0, 10_000))
def test_minimum_variance_weights_run_from_size_at_icc_0_to_equal_at_icc_1(sizes, seed):
    rng = np.random.default_rng(seed)
    arms = [[Cluster(m, float(rng.normal()), 0.0) for m in sizes[: len(sizes) // 2]], []]
    arms[1] = [Cluster(m, float(rng.normal()), 0.0) for m in sizes[len(sizes) // 2 :]]
    try:
        size = cluster_mean_difference(*arms, weighting="size")
    except ValueError:
        return
    at_zero = cluster_mean_difference(*arms, weighting="minimum-variance", icc=0.0)
    at_one = cluster_mean_difference(*arms, weighting="minimum-variance", icc=1.0)
    equal = cluster_mean_difference(*arms, weighting="equal")
    assert (at_zero.estimate, at_zero.se) == (pytest.approx(size.estimate), pytest.approx(size.se))
    assert (at_one.estimate, at_one.se) == (pytest.approx(equal.estimate), pytest.approx(equal.se))


def test_risk_difference_and_ratio_are_t_tests_on_cluster_proportions_and_their_logs():
    pilot = [BinaryCluster(40, 12), BinaryCluster(25, 5), BinaryCluster(60, 21), BinaryCluster(33, 8)]
    comparison = [BinaryCluster(50, 20), BinaryCluster(30, 14), BinaryCluster(45, 15)]
    p1, p0 = [c.events / c.n for c in pilot], [c.events / c.n for c in comparison]
    difference = cluster_risk_difference(pilot, comparison)
    assert difference.t == pytest.approx(stats.ttest_ind(p1, p0).statistic)
    assert difference.estimate == pytest.approx(np.mean(p1) - np.mean(p0))
    ratio = cluster_risk_ratio(pilot, comparison)
    reference = stats.ttest_ind(np.log(p1), np.log(p0))
    assert (ratio.t, ratio.p_value) == (pytest.approx(reference.statistic), pytest.approx(reference.pvalue))
    # the ratio of geometric means, and an interval symmetric on the log scale
    assert ratio.estimate == pytest.approx(stats.gmean(p1) / stats.gmean(p0))
    assert math.log(ratio.ci[1]) - math.log(ratio.estimate) == pytest.approx(stats.t.isf(0.025, 5) * ratio.se)
    assert (ratio.log_scale, ratio.zero_correction) == (True, 0.0)


def test_a_cluster_without_events_adds_a_half_to_every_cluster_for_the_log_scale():
    pilot = [BinaryCluster(20, 0), BinaryCluster(25, 3), BinaryCluster(30, 4)]
    comparison = [BinaryCluster(20, 6), BinaryCluster(25, 9)]
    ratio = cluster_risk_ratio(pilot, comparison)
    logs = [[math.log((c.events + 0.5) / (c.n + 1)) for c in arm] for arm in (pilot, comparison)]
    assert ratio.t == pytest.approx(stats.ttest_ind(*logs).statistic)
    assert ratio.zero_correction == 0.5
    rates = cluster_rate_ratio(
        [RateCluster(0, 10.0), RateCluster(2, 12.0)], [RateCluster(5, 9.0), RateCluster(7, 11.0)]
    )
    logs = [[math.log(0.5 / 10), math.log(2.5 / 12)], [math.log(5.5 / 9), math.log(7.5 / 11)]]
    assert rates.t == pytest.approx(stats.ttest_ind(*logs).statistic)


def test_rate_difference_weighted_by_exposure_is_the_difference_of_overall_rates():
    pilot = [RateCluster(12, 100.0), RateCluster(30, 150.0), RateCluster(7, 40.0)]
    comparison = [RateCluster(20, 90.0), RateCluster(41, 160.0), RateCluster(9, 30.0)]
    found = cluster_rate_difference(pilot, comparison, weighting="size")
    assert found.estimate == pytest.approx(49 / 290 - 70 / 280)
    rates = [[c.events / c.exposure for c in arm] for arm in (pilot, comparison)]
    _difference, se = wls(
        np.array(rates[0] + rates[1]),
        np.array([c.exposure for c in pilot + comparison]),
        np.array([1.0] * 3 + [0.0] * 3),
    )
    assert found.se == pytest.approx(se)


def dense_reml_icc(values, clusters, arm):
    """Return the REML ICC of y ~ arm + (1 | cluster), written out on the rows (Nelder–Mead on logs)."""
    y = np.asarray(values)
    x = np.column_stack([np.ones(len(y)), arm])
    z = np.column_stack([np.asarray(clusters) == c for c in sorted(set(clusters))]).astype(float)

    def deviance(log_parameters):
        sigma2, tau2 = np.exp(log_parameters)
        vi = np.linalg.inv(sigma2 * np.eye(len(y)) + tau2 * z @ z.T)
        xvx = x.T @ vi @ x
        r = y - x @ np.linalg.solve(xvx, x.T @ vi @ y)
        return -np.linalg.slogdet(vi)[1] + np.linalg.slogdet(xvx)[1] + r @ vi @ r

    found = optimize.minimize(
        deviance, [0.0, -1.0], method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12}
    )
    sigma2, tau2 = np.exp(found.x)
    return tau2 / (tau2 + sigma2)


def test_icc_within_arms_equals_reml_for_balanced_clusters():
    # With equal cluster sizes the ANOVA estimator is the REML estimator when it is positive
    # (Searle, Casella & McCulloch, Variance Components, 1992, §4.7), here with the arm fixed.
    rng = np.random.default_rng(11)
    values, labels, arm, pilot, comparison = [], [], [], [], []
    for k in range(8):
        ys = rng.normal(1.0 * (k < 4) + rng.normal(0, 0.7), 1.0, 6)
        (pilot if k < 4 else comparison).append(cluster(ys))
        values += list(ys)
        labels += [k] * 6
        arm += [1.0 if k < 4 else 0.0] * 6
    found = icc_within_arms(pilot, comparison)
    assert found > 0
    assert found == pytest.approx(dense_reml_icc(values, labels, arm), rel=1e-4)


def test_pooling_the_arms_would_count_the_effect_as_clustering():
    # identical clusters inside each arm, a large effect between arms: no clustering within arms
    pilot = [cluster([10, 11, 12]), cluster([10, 11, 12])]
    comparison = [cluster([0, 1, 2]), cluster([0, 1, 2])]
    assert icc_within_arms(pilot, comparison) == 0.0
    assert icc_anova(pilot + comparison) > 0.9


def test_binary_clusters_are_their_zero_one_values():
    (found,) = binary_as_clusters([BinaryCluster(5, 2)])
    expected = cluster([1, 1, 0, 0, 0])
    assert (found.n, found.mean, found.within_ss) == (5, expected.mean, pytest.approx(expected.within_ss))


def test_the_rate_cv_recovers_the_simulated_between_cluster_variation():
    # 400 clusters per arm, true rates gamma-distributed with CV k = 0.3 about 0.2 and 0.15
    rng = np.random.default_rng(5)
    arms = []
    for mean in (0.2, 0.15):
        exposure = rng.uniform(50, 150, 400)
        rates = rng.gamma(1 / 0.09, mean * 0.09, 400)
        arms.append(
            [
                RateCluster(float(e), float(t))
                for e, t in zip(rng.poisson(rates * exposure), exposure, strict=True)
            ]
        )
    # the moment estimator's sampling SD here is about 0.015: 0.04 is over 2.5 of them
    assert rate_cv_within_arms(*arms) == pytest.approx(0.3, abs=0.04)


def test_cluster_analysis_holds_alpha_where_the_naive_t_test_does_not():
    # 6 clusters per arm of 30 units, ICC 0.05, no effect; 2,000 seeded pilots. The Monte-Carlo
    # SE of a rejection rate near 0.05 is 0.005, so 0.06 is two of them above α.
    rng = np.random.default_rng(2024)
    cluster_rejections = naive_rejections = 0
    runs = 2000
    for _ in range(runs):
        effects = rng.normal(0, math.sqrt(0.05), (12, 1))
        units = effects + rng.normal(0, math.sqrt(0.95), (12, 30))
        clusters = [cluster(row) for row in units]
        cluster_rejections += cluster_mean_difference(clusters[:6], clusters[6:]).p_value < 0.05
        naive_rejections += stats.ttest_ind(units[:6].ravel(), units[6:].ravel()).pvalue < 0.05
    assert cluster_rejections / runs <= 0.06
    # design effect 1 + 29·0.05 = 2.45: the naive test rejects about 17 % of the time
    assert naive_rejections / runs > 0.12


def test_bad_input_is_refused_by_name():
    two = [BinaryCluster(10, 2), BinaryCluster(10, 3)]
    with pytest.raises(ValueError, match="events \\(11\\) cannot exceed n \\(10\\)"):
        cluster_risk_difference([BinaryCluster(10, 11), BinaryCluster(10, 1)], two)
    with pytest.raises(ValueError, match="each arm needs at least two clusters with units"):
        cluster_risk_difference([BinaryCluster(10, 2)], two)
    with pytest.raises(ValueError, match="minimum-variance weights need the icc"):
        cluster_risk_difference(two, two, weighting="minimum-variance")
    with pytest.raises(ValueError, match="weighting must be one of equal, size, minimum-variance"):
        cluster_risk_difference(two, two, weighting="median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="do not vary within the arms"):
        cluster_risk_difference(two[:1] * 2, two[1:] * 2)
    with pytest.raises(ValueError, match="exposure must be >= 0"):
        cluster_rate_ratio([RateCluster(1, -1.0)], [RateCluster(1, 1.0)])


def test_clusters_needed_carry_the_individual_sample_size_times_the_design_effect():
    # n = 100 per arm, m = 20, ICC 0.05: DE = 1.95, 195 units, 9.75 → 10 clusters per arm
    assert clusters_needed(100, 20, 0.05) == 10
    # unequal sizes, CV 0.5: DE = 1 + (1.25·20 − 1)·0.05 = 2.2, 220 units → 11 clusters
    assert clusters_needed(100, 20, 0.05, 0.5) == 11
    assert clusters_needed(10, 50, 0.0) == 2  # never fewer than two clusters per arm


@given(
    st.lists(st.floats(-10, 10), min_size=2, max_size=6), st.lists(st.floats(-10, 10), min_size=2, max_size=6)
)
def test_swapping_the_arms_negates_the_difference_and_inverts_the_ratio(ones, zeros):
    pilot = [BinaryCluster(20, int(abs(v)) + 1) for v in ones]
    comparison = [BinaryCluster(20, int(abs(v)) + 2) for v in zeros]
    try:
        forward = cluster_risk_ratio(pilot, comparison)
    except ValueError:
        return
    backward = cluster_risk_ratio(comparison, pilot)
    assert backward.estimate == pytest.approx(1 / forward.estimate)
    assert backward.p_value == pytest.approx(forward.p_value)
    shuffled = cluster_risk_ratio(pilot[::-1], comparison[::-1])
    assert shuffled.estimate == pytest.approx(forward.estimate)


# --- baseline adjustment in cluster designs: the two-stage method -------------------------------


def test_two_stage_adjustment_is_the_t_test_on_cluster_mean_residuals_of_the_pooled_regression():
    """Hayes & Moulton (2017) §10.3, computed independently with numpy and scipy on the rows."""
    import random

    import numpy as np
    from scipy import stats as dist

    from riskreg.stats.ancova import ArmMoments, MissingBaseline
    from riskreg.stats.designs import CovariateCluster, cluster_adjusted_difference

    rng = random.Random(11)
    rows = []  # (cluster, arm, baseline or None, outcome)
    for cluster in range(12):
        arm = cluster % 2
        level = rng.gauss(0, 2)
        for _ in range(rng.randint(6, 14)):
            x = rng.gauss(40, 8)
            rows.append(
                (
                    cluster,
                    arm,
                    None if rng.random() < 0.15 else x,
                    10 + 0.7 * x + 2 * arm + level + rng.gauss(0, 4),
                )
            )
    observed = [x for _c, _a, x, _y in rows if x is not None]
    fill = sum(observed) / len(observed)
    design = np.array([[1.0, fill if x is None else x, float(x is None)] for _c, _a, x, _y in rows])
    outcome = np.array([y for *_rest, y in rows])
    beta, *_ = np.linalg.lstsq(design, outcome, rcond=None)
    residual = outcome - design @ beta
    means = {
        c: float(np.mean([r for r, row in zip(residual, rows, strict=True) if row[0] == c]))
        for c in range(12)
    }
    reference = dist.ttest_ind([means[c] for c in range(1, 12, 2)], [means[c] for c in range(0, 12, 2)])

    def cluster(c: int) -> CovariateCluster:
        present = [(x, y) for cc, _a, x, y in rows if cc == c and x is not None]
        gaps = [y for cc, _a, x, y in rows if cc == c and x is None]
        xs, ys = [x for x, _ in present], [y for _, y in present]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        moments = ArmMoments(
            len(xs),
            mx,
            my,
            sum((x - mx) ** 2 for x in xs),
            sum((y - my) ** 2 for y in ys),
            sum((x - mx) * (y - my) for x, y in present),
        )
        gap = None
        if gaps:
            mg = sum(gaps) / len(gaps)
            gap = MissingBaseline(len(gaps), mg, sum((y - mg) ** 2 for y in gaps))
        return CovariateCluster(moments, gap)

    found = cluster_adjusted_difference(
        [cluster(c) for c in range(1, 12, 2)], [cluster(c) for c in range(0, 12, 2)]
    )
    assert found.estimate == pytest.approx(
        np.mean([means[c] for c in range(1, 12, 2)]) - np.mean([means[c] for c in range(0, 12, 2)]), rel=1e-9
    )
    assert found.t == pytest.approx(reference.statistic, rel=1e-9)
    assert found.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert found.df == 10
