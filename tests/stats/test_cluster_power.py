"""riskreg.stats.cluster_power: the t test on cluster summaries, planned (issue 18)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from riskreg.stats import cluster_power as cp
from riskreg.stats.power import power_continuous

Z = norm.isf(0.025) + norm.isf(0.2)  # z_{1 − α/2} + z_{1 − β} at α = 0.05, power 0.8: 2.8016


def test_a_cluster_summary_has_the_unit_variance_times_the_design_effect_over_m():
    # Eldridge, Ashby & Kerry (2006): DE = 1 + ((CV² + 1)·m − 1)·ICC; by hand, sd 12, m 25, ICC 0.05:
    # DE = 1 + 24·0.05 = 2.2, so a cluster mean's variance is 144·2.2/25 = 12.672
    assert cp.summary_variance(144, 25, 0.05) == pytest.approx(12.672)
    # with CV 0.5: DE = 1 + (1.25·25 − 1)·0.05 = 2.5125, variance 144·2.5125/25 = 14.472
    assert cp.summary_variance(144, 25, 0.05, 0.5) == pytest.approx(14.472)
    # ICC 0: the cluster mean of m independent units, σ²/m
    assert cp.summary_variance(144, 25, 0.0) == pytest.approx(144 / 25)


def test_the_power_is_the_two_sample_t_test_on_k_cluster_means():
    # With equal sizes the cluster means are independent normals with variance σ²·DE/m (Donner &
    # Klar 2000, §5.2), so the power is R's power.t.test(n = k, delta, sd = √(σ²·DE/m)): the
    # package's own noncentral-t power with the clusters as units
    v = cp.summary_variance(144, 25, 0.05)
    found = cp.t_power(6, (v, v), (7, 7))
    assert found.df == 12
    assert found.se == pytest.approx(math.sqrt(2 * v / 7))
    assert found.power == pytest.approx(power_continuous(7, 7, 6, math.sqrt(v)).power, abs=1e-12)


def test_the_power_matches_a_simulated_cluster_means_t_test():
    # Monte Carlo of the analysis `pilot analyse` runs: 7 clusters of 25 per arm, ICC 0.05, sd 12,
    # a difference of 6, t test on the cluster means; 20 000 trials give power ± 0.006 (1 SE)
    rng = np.random.default_rng(18)
    trials, k, m, icc, sd, delta = 20_000, 7, 25, 0.05, 12.0, 6.0
    between, within = math.sqrt(icc) * sd, math.sqrt(1 - icc) * sd

    def cluster_means(shift: float) -> np.ndarray:
        return shift + rng.normal(0, between, (trials, k)) + rng.normal(0, within / math.sqrt(m), (trials, k))

    a, b = cluster_means(delta), cluster_means(0.0)
    pooled = (a.var(axis=1, ddof=1) + b.var(axis=1, ddof=1)) / 2
    t = (a.mean(axis=1) - b.mean(axis=1)) / np.sqrt(pooled * 2 / k)
    from scipy.stats import t as t_dist

    simulated = float((np.abs(t) > t_dist.isf(0.025, 2 * k - 2)).mean())
    v = cp.summary_variance(sd**2, m, icc)
    assert cp.t_power(delta, (v, v), (k, k)).power == pytest.approx(simulated, abs=0.02)


def test_clusters_needed_agree_with_hayes_and_bennett_plus_one():
    # Hayes & Bennett (1999, Int J Epidemiol 28:319–326, eq. 1 with the ICC's DE; Hayes & Moulton
    # 2017, §7.3): k = 1 + (z_{α/2} + z_β)²·2σ²·DE/(m·δ²). By hand for δ 4, sd 12, m 25, ICC 0.05:
    # 1 + 7.849·2·144·2.2/(25·16) = 1 + 12.433 = 13.43, so 14 clusters per arm
    v = cp.summary_variance(144, 25, 0.05)
    hayes_bennett = 1 + Z**2 * 2 * v / 16
    assert hayes_bennett == pytest.approx(13.4326, abs=1e-4)
    exact = cp.clusters_for_power(4, (v, v))
    assert math.ceil(exact) == math.ceil(hayes_bennett) == 14
    assert exact == pytest.approx(hayes_bennett, abs=0.1)
    # the design-effect rule without the t correction: ⌈143·2.2/25⌉ = ⌈12.58⌉ = 13, one fewer
    assert cp.t_power(4, (v, v), (14, 14)).power >= 0.8 > cp.t_power(4, (v, v), (13, 13)).power


def test_clusters_needed_follow_crtsize_n4means_iteration():
    # CRTSize::n4means (two-tailed, n < 30) iterates
    #   k = 2σ²(1 + (m − 1)ρ)(qt(1 − α/2, 2(k − 1)) + qt(power, 2(k − 1)))²/(m·δ²)
    # until it moves by less than 1; its k (total clusters per arm) rounds up to ours
    from scipy.stats import t as t_dist

    for delta, sd, m, icc in ((4, 12, 25, 0.05), (5, 10, 20, 0.1), (0.5, 1, 10, 0.02)):
        v = cp.summary_variance(sd**2, m, icc)
        k = 2 * v * Z**2 / delta**2
        previous = 0.0
        while abs(k - previous) > 1:
            previous = k
            df = 2 * (previous - 1)
            k = 2 * v * (t_dist.isf(0.025, df) + t_dist.ppf(0.8, df)) ** 2 / delta**2
        assert math.ceil(cp.clusters_for_power(delta, (v, v))) == math.ceil(k)


def test_binary_clusters_agree_with_hayes_and_bennett_for_proportions():
    # Hayes & Bennett (1999), proportions with the ICC's DE (Hayes & Moulton §7.3):
    # k = 1 + (z_{α/2} + z_β)²·(p₀q₀ + p₁q₁)·DE/(m·(p₁ − p₀)²). By hand for 0.3 → 0.45, m 30, ICC 0.02:
    # DE = 1.58; 1 + 7.849·(0.21 + 0.2475)·1.58/(30·0.0225) = 1 + 8.405 = 9.41, so 10 per arm
    variances = cp.binary_variances(0.3, 0.45, 30, 0.02)
    assert variances == pytest.approx((0.21 * 1.58 / 30, 0.2475 * 1.58 / 30))
    hayes_bennett = 1 + Z**2 * (0.21 + 0.2475) * 1.58 / (30 * 0.15**2)
    assert hayes_bennett == pytest.approx(9.405, abs=1e-3)
    assert math.ceil(cp.clusters_for_power(0.15, variances)) == math.ceil(hayes_bennett) == 10


def test_an_unequal_allocation_gives_the_pilot_ratio_times_the_clusters():
    v = cp.summary_variance(144, 25, 0.05)
    k = cp.clusters_for_power(4, (v, v), ratio=2)
    assert cp.t_power(4, (v, v), (k, 2 * k)).power == pytest.approx(0.8)
    assert k < cp.clusters_for_power(4, (v, v))  # more pilot clusters: fewer comparison ones


def test_the_detectable_distance_inverts_the_power():
    v = cp.summary_variance(100, 20, 0.1)
    distance = cp.t_distance(0.9, (v, v), (8, 8), 0.05)
    assert cp.t_power(distance, (v, v), (8, 8), 0.05).power == pytest.approx(0.9)


@pytest.mark.parametrize(("decrease", "margin"), [(False, 0.0), (True, 0.0), (False, 0.1), (True, 0.05)])
def test_the_binary_mde_inverts_the_power(decrease, margin):
    change = cp.binary_mde(0.3, (6, 6), 30, 0.02, 0.0, 0.05, 0.8, decrease, margin)
    p_pilot = 0.3 + change
    benefit = -change if decrease else change
    distance = benefit + margin if margin else abs(change)
    variances = cp.binary_variances(0.3, p_pilot, 30, 0.02)
    assert cp.t_power(distance, variances, (6, 6)).power == pytest.approx(0.8, abs=1e-9)
    assert (change < 0) == decrease or margin > 0


def test_the_smallest_size_is_two_clusters_per_arm():
    v = cp.summary_variance(1, 5, 0.01)
    assert cp.clusters_for_power(50, (v, v)) == 2.0
    assert cp.clusters_for_power(50, (v, v), ratio=0.5) == 4.0  # the pilot arm keeps two


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: cp.summary_variance(1, 0.5, 0.1), "mean_size must be at least 1, got 0.5"),
        (lambda: cp.summary_variance(1, 5, 1.0), "icc must be at least 0 and below 1, got 1.0"),
        (lambda: cp.t_power(1, (1, 1), (1, 5)), "clusters must be at least 2, got 1"),
        (lambda: cp.clusters_for_power(0, (1, 1)), "distance must be greater than 0, got 0.0"),
        (lambda: cp.binary_variances(0.3, 1.2, 10, 0.1), "p_pilot must be strictly between 0 and 1, got 1.2"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(call, message):
    with pytest.raises(ValueError, match=f"^{message}$".replace("(", r"\(").replace(")", r"\)")):
        call()
