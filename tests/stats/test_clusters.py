"""Cluster designs: the ICC, the design effect and the cluster-level t test."""

from __future__ import annotations

import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as dist

from riskreg.stats.clusters import Cluster, clustering, compare_cluster_means, design_effect, icc_anova


def cluster(values: list[float]) -> Cluster:
    mean = statistics.fmean(values)
    return Cluster(len(values), mean, sum((v - mean) ** 2 for v in values))


def test_icc_of_a_hand_worked_balanced_example():
    # clusters {1, 2, 3} and {4, 5, 6}: MSB = 3·(2 − 3.5)² + 3·(5 − 3.5)² = 13.5 on 1 df,
    # MSW = (2 + 2) / 4 = 1, n₀ = 3: ICC = (13.5 − 1) / (13.5 + 2·1) = 12.5 / 15.5
    assert icc_anova([cluster([1, 2, 3]), cluster([4, 5, 6])]) == pytest.approx(12.5 / 15.5)


def test_icc_is_truncated_at_zero_when_clusters_differ_less_than_chance():
    assert icc_anova([cluster([1, 5, 3]), cluster([2, 4, 3.2])]) == 0.0


def test_design_effects_of_eldridge_ashby_and_kerry():
    # m̄ = 20, ICC = 0.05: 1 + 19·0.05 = 1.95; with CV 0.5: 1 + (1.25·20 − 1)·0.05 = 2.2
    assert design_effect(20, 0.05) == pytest.approx(1.95)
    assert design_effect(20, 0.05, 0.5) == pytest.approx(2.2)
    with pytest.raises(ValueError, match="icc must be between 0 and 1"):
        design_effect(20, 1.5)


def test_clustering_gives_the_effective_sample_size():
    found = clustering([cluster([1, 2, 3]), cluster([4, 5, 6])])
    assert found.design_effect == pytest.approx(1 + 2 * (12.5 / 15.5))
    assert found.effective_n == pytest.approx(6 / found.design_effect)


def test_the_cluster_level_t_test_is_scipy_s_two_sample_t_on_the_means():
    rng = random.Random(3)
    pilot = [cluster([rng.gauss(52, 5) for _ in range(rng.randint(5, 30))]) for _ in range(6)]
    comparison = [cluster([rng.gauss(50, 5) for _ in range(rng.randint(5, 30))]) for _ in range(5)]
    found = compare_cluster_means(pilot, comparison)
    reference = dist.ttest_ind([c.mean for c in pilot], [c.mean for c in comparison])
    assert (found.t, found.p_value, found.df) == (
        pytest.approx(reference.statistic),
        pytest.approx(reference.pvalue),
        9,
    )
    assert found.clusters == (6, 5)


def test_too_few_clusters_are_refused():
    with pytest.raises(ValueError, match="each arm needs at least two clusters with units"):
        compare_cluster_means([cluster([1, 2])], [cluster([3, 4]), cluster([5, 6])])


@given(st.lists(st.lists(st.floats(-100, 100), min_size=2, max_size=8), min_size=2, max_size=6))
def test_the_icc_lies_between_zero_and_one(groups):
    try:
        icc = icc_anova([cluster(g) for g in groups])
    except ValueError:
        return
    assert 0.0 <= icc <= 1.0 + 1e-9
