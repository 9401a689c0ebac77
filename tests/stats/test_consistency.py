"""The CI never contradicts the p-value at the same level: p < alpha exactly when the CI excludes the null.

Binary outcomes are checked for every 2×2 table with 1..50 units per arm (1,755,625 tables)
at alpha = 0.05 and at an early O'Brien–Fleming-type level 0.0002.  compare_binary takes
~50 µs a table (two brentq searches), too slow for all of them, so the exhaustive part runs
on a vectorised numpy copy of the Miettinen–Nurminen score and rests on one argument:

* the CI is {delta : |z(delta)| <= z_crit} with z(delta) decreasing in delta, so the lower
  limit is above 0 exactly when z(0) > z_crit and the upper limit below 0 exactly when
  z(0) < -z_crit; z(0) taken through the restricted MLE (the CI's route) must therefore
  give the same decision as the p-value's closed-form z;
* monotonicity of z in delta is checked on a grid for every table (up to symmetry); a
  400-point grid, too slow to keep here (~40 s), found no exception either;
* compare_binary itself is run on a random sample, on every table with at most 6 units per
  arm and on every table whose |z(0)| lies within 0.1% of z_crit (the only ones where a
  rounding error could flip a decision): its statistic equals the vectorised z(0), its CI
  limits are roots of the vectorised score, and its CI decision equals p < alpha.

Counts are checked directly through compare_counts (it is fast): exact path on every pair of
event counts 0..30 at four exposure ratios, quasi-Poisson path on a grid of dispersions.
Ties are allowed only where p is within 1e-9 of alpha.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

from riskreg.stats.compare import QUASI_POISSON_METHOD, compare_binary, compare_counts
from riskreg.stats.summaries import BinarySummary, CountSummary

ALPHAS = (0.05, 0.0002)
TIE = 1e-9
MAX_N = 50


def all_tables(max_n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (x1, n1, x2, n2) for every pair of arms with 1..max_n units and 0..n events each."""
    sizes = np.arange(1, max_n + 1)
    n = np.repeat(sizes, sizes + 1)
    x = np.concatenate([np.arange(k + 1) for k in sizes])
    first, second = np.meshgrid(np.arange(n.size), np.arange(n.size), indexing="ij")
    first, second = first.ravel(), second.ravel()
    return x[first].astype(float), n[first].astype(float), x[second].astype(float), n[second].astype(float)


def mn_z(
    x1: np.ndarray, n1: np.ndarray, x2: np.ndarray, n2: np.ndarray, delta: float | np.ndarray
) -> np.ndarray:
    """Vectorised Miettinen–Nurminen score z(delta) for p1 - p2 (pilot = 1), through the restricted MLE.

    Restricted MLE from the closed-form cubic of Farrington & Manning (1990) alone, without
    compare.py's Newton polish: with at most 50 units per arm the cubic keeps ~12 digits,
    which these checks need (the polish matters for arms of millions).  Variance with MN's
    factor N/(N - 1).  Where the variance is 0 the score is 0 at the estimate and ±inf elsewhere.
    """
    p1h, p2h = x1 / n1, x2 / n2
    theta = n2 / n1
    a = 1.0 + theta
    b = -(1.0 + theta + p1h + theta * p2h + delta * (theta + 2.0))
    c = delta * delta + delta * (2.0 * p1h + theta + 1.0) + p1h + theta * p2h
    d = -p1h * delta * (1.0 + delta)
    b3a = b / (3.0 * a)
    v = b3a**3 - b * c / (6.0 * a * a) + d / (2.0 * a)
    u = np.copysign(np.sqrt(np.maximum(b3a * b3a - c / (3.0 * a), 0.0)), v)
    safe_u = np.where(u != 0.0, u, 1.0)
    ratio = np.clip(v / safe_u**3, -1.0, 1.0)
    p1 = np.where(u != 0.0, 2.0 * u * np.cos((np.pi + np.arccos(ratio)) / 3.0), 0.0) - b3a
    p1 = np.clip(p1, np.maximum(0.0, delta), np.minimum(1.0, 1.0 + delta))
    p2 = p1 - delta
    n = n1 + n2
    variance = np.maximum(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2, 0.0) * n / (n - 1)
    variance = np.where(np.abs(delta) >= 1.0, 0.0, variance)
    gap = p1h - p2h - delta
    with np.errstate(divide="ignore", invalid="ignore"):
        z = gap / np.sqrt(variance)
    return np.where(variance > 0.0, z, np.where(gap == 0.0, 0.0, np.copysign(np.inf, gap)))


def pooled_z(x1: np.ndarray, n1: np.ndarray, x2: np.ndarray, n2: np.ndarray) -> np.ndarray:
    """Vectorised MN z at delta = 0 in closed form: the restricted MLE is the pooled proportion."""
    n = n1 + n2
    pooled = (x1 + x2) / n
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2) * n / (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (x1 / n1 - x2 / n2) / np.sqrt(variance)
    return np.where(variance > 0.0, z, 0.0)


@pytest.fixture(scope="module")
def tables() -> dict[str, np.ndarray]:
    """Every table with 1..50 units per arm, with its closed-form z(0) and its z(0) through the MLE."""
    x1, n1, x2, n2 = all_tables(MAX_N)
    return {
        "x1": x1,
        "n1": n1,
        "x2": x2,
        "n2": n2,
        "z0": pooled_z(x1, n1, x2, n2),
        "z0_mle": mn_z(x1, n1, x2, n2, 0.0),
    }


def z_crit(alpha: float) -> float:
    return -float(special.ndtri(alpha / 2.0))


class TestBinaryExhaustive:
    def test_table_count(self, tables):
        assert tables["x1"].size == sum(n + 1 for n in range(1, MAX_N + 1)) ** 2 == 1_755_625

    @pytest.mark.parametrize("alpha", ALPHAS)
    def test_p_below_alpha_iff_ci_excludes_zero(self, tables, alpha):
        p = 2.0 * special.ndtr(-np.abs(tables["z0"]))
        # By monotonicity: lower limit > 0 iff z(0) > z_crit; upper limit < 0 iff z(0) < -z_crit.
        excludes = np.abs(tables["z0_mle"]) > z_crit(alpha)
        rejects = p < alpha
        disagree = (excludes != rejects) & (np.abs(p - alpha) > TIE)
        first = [
            tuple(int(tables[k][i]) for k in ("x1", "n1", "x2", "n2")) for i in np.flatnonzero(disagree)[:5]
        ]
        assert not disagree.any(), first
        # Both decisions occur often: the check is not vacuous.
        assert 0.05 < rejects.mean() < 0.95

    def test_z_through_the_mle_is_the_closed_form_at_zero(self, tables):
        assert np.allclose(tables["z0_mle"], tables["z0"], rtol=1e-9, atol=1e-12)

    def test_score_decreases_in_delta(self, tables):
        # One table per symmetry class: swapping arms and complementing events both map
        # z(delta) to -z(-delta), so monotonicity holds for all four members or none.
        x1, n1, x2, n2 = (tables[k] for k in ("x1", "n1", "x2", "n2"))

        def key(a, b, c, d):
            return ((a * 51 + b) * 51 + c) * 51 + d

        keys = np.stack([key(x1, n1, x2, n2), key(x2, n2, x1, n1), key(n1 - x1, n1, n2 - x2, n2)])
        keys = np.vstack([keys, key(n2 - x2, n2, n1 - x1, n1)])
        keep = keys[0] == keys.min(axis=0)
        x1, n1, x2, n2 = x1[keep], n1[keep], x2[keep], n2[keep]
        assert x1.size > 400_000
        grid = np.concatenate([np.linspace(-0.995, 0.995, 15), [-0.02, 0.02]])
        grid.sort()
        previous = mn_z(x1, n1, x2, n2, grid[0])
        for delta in grid[1:]:
            current = mn_z(x1, n1, x2, n2, delta)
            assert np.all(current <= previous + 1e-9 * np.maximum(1.0, np.abs(previous))), delta
            previous = current

    def test_compare_binary_matches_on_sample_small_tables_and_near_ties(self, tables):
        x1, n1, x2, n2, z0 = (tables[k] for k in ("x1", "n1", "x2", "n2", "z0"))
        rng = np.random.default_rng(20240622)
        chosen = set(rng.choice(x1.size, size=1500, replace=False).tolist())
        chosen |= set(np.flatnonzero((n1 <= 6) & (n2 <= 6)).tolist())
        near = np.zeros(x1.size, bool)
        for alpha in ALPHAS:
            near |= np.abs(np.abs(z0) - z_crit(alpha)) < 1e-3 * z_crit(alpha)
        assert near.sum() > 1000  # the tables where a decision could hinge on rounding
        chosen |= set(np.flatnonzero(near).tolist())
        for i in sorted(chosen):
            t = int(x1[i]), int(n1[i]), int(x2[i]), int(n2[i])
            for alpha in ALPHAS:
                r = compare_binary(BinarySummary(t[3], t[2]), BinarySummary(t[1], t[0]), alpha)
                assert r.statistic == pytest.approx(z0[i], rel=1e-12, abs=1e-12), t
                excludes = r.ci_low > 0.0 or r.ci_high < 0.0
                assert excludes == (r.p_value < alpha) or abs(r.p_value - alpha) <= TIE, (t, alpha)
                # Each finite limit is a root of the vectorised score: |z| = z_crit there.
                bounds = np.array([r.ci_low, r.ci_high])
                zs = mn_z(*(np.full(2, float(v)) for v in t), bounds)
                for bound, z, sign in zip(bounds, zs, (1.0, -1.0), strict=True):
                    if abs(bound) < 1.0:
                        assert z == pytest.approx(sign * z_crit(alpha), rel=1e-7), (t, alpha, bound)


# --- counts ----------------------------------------------------------------------------------

EXPOSURE_RATIOS = (1.0, 0.5, 2.0, 1.37)  # T_pilot / T_comparison


def excludes_one(r) -> bool:
    """The rate-ratio CI excludes 1 (an upper bound of None is infinite)."""
    return r.ci_low > 1.0 or (r.ci_high is not None and r.ci_high < 1.0)


def check(r, alpha: float) -> None:
    assert excludes_one(r) == (r.p_value < alpha) or abs(r.p_value - alpha) <= TIE, r


class TestCountsExhaustive:
    @pytest.mark.parametrize("alpha", ALPHAS)
    @pytest.mark.parametrize("ratio", EXPOSURE_RATIOS)
    def test_exact_path(self, alpha, ratio):
        rejections = 0
        for x_c in range(31):
            for x_p in range(31):
                r = compare_counts(CountSummary(4, x_c, 10.0), CountSummary(4, x_p, 10.0 * ratio), alpha)
                if x_c + x_p == 0:
                    assert r.p_value is None and r.ci_low is None
                    continue
                check(r, alpha)
                rejections += r.p_value < alpha
        assert rejections > 20

    @pytest.mark.parametrize("alpha", [1e-10, 1e-20])
    @pytest.mark.parametrize("ratio", [1.0, 1.37])
    def test_exact_path_at_extreme_levels(self, alpha, ratio):
        # Levels of very early looks, with ties only within 1e-9 *relative* to alpha: the CI's
        # tails must be as accurate as the p-value's (1 - alpha/2 would round to 1 at 1e-20).
        rejections = 0
        for x_c in range(0, 301, 10):
            for x_p in range(0, 301, 10):
                if x_c + x_p:
                    r = compare_counts(CountSummary(4, x_c, 10.0), CountSummary(4, x_p, 10.0 * ratio), alpha)
                    assert excludes_one(r) == (r.p_value < alpha) or abs(r.p_value - alpha) <= 1e-9 * alpha, r
                    rejections += r.p_value < alpha
        assert rejections > 20

    @pytest.mark.parametrize("alpha", ALPHAS)
    @pytest.mark.parametrize("dispersion", [1.05, 2.0, 4.0, 10.0])
    def test_quasi_poisson_path(self, alpha, dispersion):
        units = 10  # per arm: N - 2 = 18 df
        quasi = 0
        for ratio in EXPOSURE_RATIOS:
            exposure_c, exposure_p = 10.0, 10.0 * ratio
            for x_c in range(31):
                for x_p in range(31):
                    if x_c + x_p == 0:
                        continue
                    # Split the Pearson sum phi (N - 2) between the arms that have events.
                    pearson = dispersion * (2 * units - 2)
                    share_c = x_c / (x_c + x_p)
                    s2_c = (pearson * share_c + x_c) * x_c / exposure_c
                    s2_p = (pearson * (1 - share_c) + x_p) * x_p / exposure_p
                    r = compare_counts(
                        CountSummary(units, x_c, exposure_c, s2_c),
                        CountSummary(units, x_p, exposure_p, s2_p),
                        alpha,
                    )
                    assert r.dispersion == pytest.approx(dispersion, rel=1e-9)
                    check(r, alpha)
                    if x_c and x_p:
                        assert r.method == QUASI_POISSON_METHOD and r.df == 18.0
                        quasi += 1
                    else:
                        assert r.warnings[0] == "overdispersion-ignored"
        assert quasi == 4 * 30 * 30


# --- properties --------------------------------------------------------------------------------

quick = settings(deadline=None, max_examples=80)


@st.composite
def binary_table(draw):
    n1, n2 = draw(st.integers(1, 400)), draw(st.integers(1, 400))
    return draw(st.integers(0, n1)), n1, draw(st.integers(0, n2)), n2


@st.composite
def overdispersed_pair(draw):
    """Two count arms with per-unit sums, from a Pearson sum drawn on its own."""
    arms = []
    for _ in range(2):
        n = draw(st.integers(1, 60))
        events = draw(st.integers(0, 500))
        exposure = draw(st.floats(0.1, 1e4, allow_nan=False))
        pearson = draw(st.floats(0.0, 2000.0, allow_nan=False)) if events else 0.0
        arms.append(CountSummary(n, events, exposure, (pearson + events) * events / exposure))
    return arms


class TestProperties:
    @quick
    @given(binary_table(), st.sampled_from([0.05, 0.01, 0.2, 0.0002, 1e-10]))
    def test_binary(self, table, alpha):
        x1, n1, x2, n2 = table
        r = compare_binary(BinarySummary(n2, x2), BinarySummary(n1, x1), alpha)
        assert 0.0 <= r.p_value <= 1.0
        assert -1.0 <= r.ci_low <= r.estimate <= r.ci_high <= 1.0
        assert (r.ci_low > 0.0 or r.ci_high < 0.0) == (r.p_value < alpha) or abs(r.p_value - alpha) <= TIE
        # Intervals are nested: a smaller alpha never gives a shorter interval.
        wider = compare_binary(BinarySummary(n2, x2), BinarySummary(n1, x1), alpha / 10)
        assert wider.ci_low <= r.ci_low + 1e-12 and r.ci_high <= wider.ci_high + 1e-12
        assert wider.p_value == r.p_value and math.isfinite(r.statistic)

    @quick
    @given(overdispersed_pair(), st.sampled_from([0.05, 0.01, 0.0002]))
    def test_counts(self, arms, alpha):
        comparison, pilot = arms
        r = compare_counts(comparison, pilot, alpha)
        if r.p_value is None:
            assert comparison.events + pilot.events == 0
            return
        assert 0.0 <= r.p_value <= 1.0
        if r.estimate is not None:
            high = math.inf if r.ci_high is None else r.ci_high
            assert r.ci_low * (1 - 1e-12) <= r.estimate <= high * (1 + 1e-12)
        check(r, alpha)
        swapped = compare_counts(pilot, comparison, alpha)
        assert swapped.p_value == pytest.approx(r.p_value, rel=1e-9, abs=1e-15)
        assert swapped.dispersion == r.dispersion
