"""Property-based tests (hypothesis) for comparisons, verdicts and Holm adjustment."""

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from riskreg.stats.compare import compare_binary, compare_continuous, compare_counts
from riskreg.stats.summaries import BinarySummary, ContinuousSummary, CountSummary
from riskreg.stats.verdicts import VERDICTS, holm, judge

# scipy calls are slow on first use, so a deadline would make the suite flaky.  Applied per
# test (not as a loaded profile) so other test modules keep their own hypothesis settings.
quick = settings(deadline=None, max_examples=60)

# Values on a 0.01 grid keep the data realistic and away from float-precision corner cases.
values = st.lists(st.integers(-100_000, 100_000).map(lambda i: i / 100), min_size=2, max_size=30)


@st.composite
def binary_arm(draw):
    n = draw(st.integers(1, 200))
    return BinarySummary(n, draw(st.integers(0, n)))


@st.composite
def count_arm(draw):
    n = draw(st.integers(1, 100))
    exposure = draw(st.floats(0.5, 500.0, allow_nan=False))
    return CountSummary(n, draw(st.integers(1, 200)), exposure)


def assert_mirrored(a, b):
    """b is the comparison with arms swapped: the difference and CI are negated."""
    assert b.estimate == pytest.approx(-a.estimate, abs=1e-9)
    assert b.ci_low == pytest.approx(-a.ci_high, abs=1e-9)
    assert b.ci_high == pytest.approx(-a.ci_low, abs=1e-9)
    assert b.p_value == pytest.approx(a.p_value, rel=1e-9, abs=1e-12)


def contains(r) -> bool:
    """The CI contains the point estimate."""
    tolerance = 1e-9 * max(1.0, abs(r.estimate))
    return r.ci_low - tolerance <= r.estimate <= r.ci_high + tolerance


class TestComparisonProperties:
    @quick
    @given(values, values)
    def test_continuous_swap_and_containment(self, xs, ys):
        a_sum, b_sum = ContinuousSummary.from_values(xs), ContinuousSummary.from_values(ys)
        r = compare_continuous(a_sum, b_sum)
        assume(r.p_value is not None)  # skip zero-variance draws
        assert_mirrored(r, compare_continuous(b_sum, a_sum))
        assert contains(r)
        assert 0.0 <= r.p_value <= 1.0

    @quick
    @given(values, values, st.integers(-10_000, 10_000))
    def test_welch_p_unchanged_by_common_shift(self, xs, ys, c):
        r = compare_continuous(ContinuousSummary.from_values(xs), ContinuousSummary.from_values(ys))
        assume(r.p_value is not None)
        shifted = compare_continuous(
            ContinuousSummary.from_values([x + c for x in xs]),
            ContinuousSummary.from_values([y + c for y in ys]),
        )
        assert shifted.p_value == pytest.approx(r.p_value, rel=1e-6, abs=1e-9)
        assert shifted.estimate == pytest.approx(r.estimate, abs=1e-6)

    @quick
    @given(binary_arm(), binary_arm())
    def test_binary_swap_and_containment(self, a, b):
        r = compare_binary(a, b)
        assert_mirrored(r, compare_binary(b, a))
        assert contains(r)
        assert -1.0 <= r.ci_low <= r.ci_high <= 1.0

    @quick
    @given(count_arm(), count_arm())
    def test_count_swap_inverts_ratio(self, a, b):
        r, swapped = compare_counts(a, b), compare_counts(b, a)
        assert swapped.estimate == pytest.approx(1 / r.estimate, rel=1e-9)
        assert swapped.ci_low == pytest.approx(1 / r.ci_high, rel=1e-6)
        assert swapped.ci_high == pytest.approx(1 / r.ci_low, rel=1e-6)
        assert swapped.p_value == pytest.approx(r.p_value, rel=1e-6, abs=1e-12)
        assert contains(r)


bound = st.floats(-10.0, 10.0, allow_nan=False)
margins = st.floats(0.01, 5.0, allow_nan=False)


class TestVerdictProperties:
    @quick
    @given(
        st.sampled_from(["superiority", "non-inferiority"]),
        st.sampled_from(["higher", "lower"]),
        bound,
        bound,
        margins,
    )
    def test_difference_verdicts_match_ci(self, test, better, a, b, margin):
        low, high = min(a, b), max(a, b)
        verdict = judge(test, better, low, high, margin=margin)
        assert verdict in VERDICTS
        # Distance from the null and the margin in the "better" direction.
        worst, best = (low, high) if better == "higher" else (-high, -low)
        if verdict == "superior":
            assert worst > 0
        if verdict == "harm":
            assert best < 0
        if verdict == "non-inferior":
            assert -margin < worst <= 0
        if verdict == "inferior":
            assert test == "non-inferiority" and best < -margin

    @quick
    @given(
        st.sampled_from(["higher", "lower"]),
        st.floats(0.05, 20.0),
        st.floats(0.05, 20.0),
        st.floats(1.01, 3.0),
    )
    def test_ratio_verdicts_match_ci(self, better, a, b, margin):
        low, high = min(a, b), max(a, b)
        verdict = judge("non-inferiority", better, low, high, margin=margin, ratio=True)
        tolerated = margin if better == "lower" else 1 / margin
        if verdict == "superior":
            assert (high < 1) if better == "lower" else (low > 1)
        if verdict == "non-inferior":
            assert (high < tolerated) if better == "lower" else (low > tolerated)
        if verdict == "inferior":
            assert (low > tolerated) if better == "lower" else (high < tolerated)

    @quick
    @given(bound, bound, margins)
    def test_equivalent_means_tost_ci_inside_margin(self, a, b, margin):
        low, high = min(a, b), max(a, b)
        # A 1-2α CI is narrower than the 1-α CI: shrink it by a quarter on each side.
        quarter = (high - low) / 4
        tost = (low + quarter, high - quarter)
        verdict = judge("equivalence", "higher", low, high, margin=margin, equivalence_ci=tost)
        assert (verdict == "equivalent") == (-margin < tost[0] and tost[1] < margin)
        if verdict in ("superior", "inferior"):
            assert low > margin or high < -margin


class TestHolmProperties:
    @quick
    @given(st.lists(st.floats(0.0, 1.0, allow_nan=False), max_size=20))
    def test_monotone_and_bounded(self, ps):
        adjusted = holm(ps)
        assert len(adjusted) == len(ps)
        for raw, adj in zip(ps, adjusted, strict=True):
            assert raw <= adj <= 1.0
        # Adjusting keeps the order of the raw p-values.
        for i in range(len(ps)):
            for j in range(len(ps)):
                if ps[i] < ps[j]:
                    assert adjusted[i] <= adjusted[j]
        assert not any(math.isnan(a) for a in adjusted)
