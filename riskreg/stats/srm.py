"""Sample ratio mismatch check: do the arm sizes match the planned allocation?

A mismatch usually means the assignment or the data extraction is broken, so the
comparisons should not be trusted until it is explained.

Two arms (every pilot) get an exact two-sided binomial test of the first arm's count
against its allocation share, with R's ``binom.test`` p-value: the probability of every
count no more likely than the one observed (relative tolerance 1 + 1e-7).  It is exact at
any size, so pilots of a few dozen units need no small-count caveat, and it runs in
constant memory: the other tail's edge is found by bisection on the binomial log
probability (Loader's saddle-point form, as R's ``dbinom``) and the two tails come from
``scipy.special.bdtr`` / ``bdtrc``, so counts up to 1e9 need no arrays.  More than two
arms keep Pearson's chi-squared goodness of fit.

The default threshold is 0.01.  ``srm_operating_characteristics`` gives the exact
numbers behind that choice: with 1:1 allocation the false-alarm rate per analysis is at
most 1 %, and a pilot with 300 units per arm that silently loses 20 % of one arm is
flagged about half the time, against about a fifth of the time at 0.001 (which sees
almost nothing below 100 per arm).  0.05 would detect more but raise a false alarm at up to one
analysis in twenty, and a staged pilot is analysed at every stage.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from scipy import special

from riskreg.stats import checks

__all__ = [
    "DEFAULT_THRESHOLD",
    "SampleRatioCheck",
    "SrmOperatingCharacteristics",
    "binomial_two_sided_p",
    "sample_ratio_check",
    "srm_operating_characteristics",
]

DEFAULT_THRESHOLD = 0.01

METHOD_BINOMIAL = "exact binomial test of the first arm's count against its allocation share (R binom.test)"
METHOD_CHI2 = "Pearson chi-squared goodness of fit (R chisq.test)"

# Below this expected count per arm the chi-squared approximation is unreliable (Cochran).
_MIN_EXPECTED = 5.0
# R binom.test: counts whose probability is within a factor 1 + 1e-7 of the observed one's are
# "no more likely" (guards against rounding making exactly tied counts unequal).
_LOG_RELATIVE_ERROR = math.log1p(1e-7)
_LN_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class SampleRatioCheck:
    """Result of a test of arm counts against the allocation (exact binomial for two arms).

    ``chi2`` is the Pearson statistic for more than two arms and None for the exact test.
    """

    counts: tuple[int, ...]
    expected: tuple[float, ...]
    chi2: float | None
    df: int
    p_value: float | None
    ok: bool
    threshold: float
    warnings: tuple[str, ...] = ()
    method: str = METHOD_BINOMIAL

    def to_dict(self) -> dict:
        """Return JSON-ready plain values (lists instead of tuples)."""
        result = asdict(self)
        for key in ("counts", "expected", "warnings"):
            result[key] = list(result[key])
        return result


@dataclass(frozen=True)
class SrmOperatingCharacteristics:
    """Exact error rates of the two-arm check at one pilot size and threshold (1:1 allocation).

    ``false_alarm`` is P(p < threshold) when both arms keep all ``n_per_arm`` units;
    ``detection`` is P(p < threshold) when one arm loses the fraction ``loss`` of its
    units, so the counts expected are n and (1 - loss) n.  ``flagged_below_*`` and
    ``flagged_above_*`` are the first arm's counts, out of ``total_*`` units, at and
    beyond which the check fires (None where no count is extreme enough).
    """

    n_per_arm: int
    threshold: float
    loss: float
    total_null: int
    total_loss: int
    flagged_below_null: int | None
    flagged_above_null: int | None
    false_alarm: float
    flagged_below_loss: int | None
    flagged_above_loss: int | None
    detection: float
    method: str = METHOD_BINOMIAL

    def to_dict(self) -> dict:
        """Return JSON-ready plain values."""
        return asdict(self)


# ---------------------------------------------------------------- binomial log probability


def _stirlerr(n: float) -> float:
    """Return log(n!) - log(sqrt(2 pi n) (n/e)^n), the error of Stirling's formula (R stirlerr)."""
    if n <= 15.0:
        # small n: the direct difference loses nothing, the terms are all below 40
        return float(special.gammaln(n + 1.0) - (n + 0.5) * math.log(n) + n - 0.5 * _LN_2PI)
    # Asymptotic series with R's cut-offs (Loader 2000, "Fast and accurate computation of
    # binomial probabilities"): accurate to double precision in each range.
    s0, s1, s2, s3, s4 = 1 / 12, 1 / 360, 1 / 1260, 1 / 1680, 1 / 1188
    nn = n * n
    if n > 500:
        return (s0 - s1 / nn) / n
    if n > 80:
        return (s0 - (s1 - s2 / nn) / nn) / n
    if n > 35:
        return (s0 - (s1 - (s2 - s3 / nn) / nn) / nn) / n
    return (s0 - (s1 - (s2 - (s3 - s4 / nn) / nn) / nn) / nn) / n


def _bd0(x: float, mean: float) -> float:
    """Return x log(x/mean) + mean - x without cancellation when x is near mean (R bd0)."""
    if abs(x - mean) < 0.1 * (x + mean):
        # series in v = (x - mean) / (x + mean): every term is positive, so no cancellation
        v = (x - mean) / (x + mean)
        s = (x - mean) * v
        term = 2.0 * x * v
        v2 = v * v
        for j in range(1, 1000):
            term *= v2
            s_next = s + term / (2 * j + 1)
            if s_next == s:
                return s_next
            s = s_next
        return s
    return x * math.log(x / mean) + mean - x


def _log_pmf(k: int, n: int, p: float) -> float:
    """Return log P(X = k) for X ~ Binomial(n, p), 0 < p < 1, accurate for n up to 1e9 and beyond.

    Loader's saddle-point form (R dbinom_raw): the log factorials of n are never formed,
    so the relative accuracy stays near machine precision where lgamma differences would
    lose about log10(n) digits, and R's 1e-7 tie tolerance stays meaningful.
    """
    if k == 0:
        return n * math.log1p(-p)
    if k == n:
        return n * math.log(p)
    q = 1.0 - p
    lc = _stirlerr(n) - _stirlerr(k) - _stirlerr(n - k) - _bd0(k, n * p) - _bd0(n - k, n * q)
    lf = _LN_2PI + math.log(k) + math.log1p(-k / n)
    return lc - 0.5 * lf


def _other_tail_edge(x: int, n: int, p: float) -> int:
    """Return the count nearest the mean, on the far side from x, no more likely than x.

    The binomial probability is unimodal: it never falls from 0 up to floor(np) and never
    rises from ceil(np) to n, so the counts on the far side no more likely than x form one
    tail and bisection finds its edge.  Returns n + 1 (x below the mean) or -1 (above)
    when no count on the far side qualifies.
    """
    level = _log_pmf(x, n, p) + _LOG_RELATIVE_ERROR
    mean = n * p
    if x < mean:
        low, high = math.ceil(mean), n + 1  # find the first i in [low, n] at or below level
        while low < high:
            mid = (low + high) // 2
            if _log_pmf(mid, n, p) <= level:
                high = mid
            else:
                low = mid + 1
        return low
    low, high = -1, math.floor(mean)  # find the last i in [0, high] at or below level
    while low < high:
        mid = (low + high + 1) // 2
        if _log_pmf(mid, n, p) <= level:
            low = mid
        else:
            high = mid - 1
    return low


def _lower_tail(k: int, n: int, p: float) -> float:
    """Return P(X <= k) (0 for k < 0)."""
    return 0.0 if k < 0 else float(special.bdtr(k, n, p))


def _upper_tail(k: int, n: int, p: float) -> float:
    """Return P(X >= k) (0 for k > n)."""
    if k > n:
        return 0.0
    return 1.0 if k <= 0 else float(special.bdtrc(k - 1, n, p))


def binomial_two_sided_p(x: int, n: int, p: float) -> float:
    """Return the two-sided exact binomial p-value of x successes in n trials, as R binom.test.

    The sum of the probabilities of every count no more likely than x (relative tolerance
    1 + 1e-7), in constant memory and O(log n) probability evaluations.
    """
    x, n = checks.integer("x", x), checks.integer("n", n)
    p = checks.open_unit("p", p)
    if x > n:
        raise ValueError(f"x must be at most n = {n}, got {x}")
    if n == 0:
        return 1.0
    mean = n * p
    if x == mean:
        return 1.0
    edge = _other_tail_edge(x, n, p)
    if x < mean:
        value = _lower_tail(x, n, p) + _upper_tail(edge, n, p)
    else:
        value = _lower_tail(edge, n, p) + _upper_tail(x, n, p)
    return min(1.0, value)


# ---------------------------------------------------------------- the check


def _counts(counts: Sequence[int]) -> tuple[int, ...]:
    """Return the counts as non-negative ints, or raise ValueError."""
    return tuple(checks.integer(f"counts[{i}]", value) for i, value in enumerate(counts))


def _shares(allocation: Sequence[float], k: int) -> tuple[float, ...]:
    """Return the allocation rescaled to sum to 1 (so 1:1 or 2:1 ratios are accepted)."""
    weights = [float(w) for w in allocation]
    if len(weights) != k:
        raise ValueError(f"allocation has {len(weights)} entries but there are {k} arms")
    if not all(math.isfinite(w) and w > 0 for w in weights):
        raise ValueError(f"allocation weights must be finite and > 0, got {weights}")
    total = sum(weights)
    return tuple(w / total for w in weights)


def _check_threshold(threshold: object) -> float:
    """Return the threshold, or raise ValueError unless it is strictly between 0 and 1."""
    value = checks.number("threshold", threshold)
    if not 0.0 < value < 1.0:
        raise ValueError(f"threshold must be between 0 and 1 (exclusive), got {value}")
    return value


def sample_ratio_check(
    counts: Sequence[int], allocation: Sequence[float], threshold: float = DEFAULT_THRESHOLD
) -> SampleRatioCheck:
    """Test arm counts against the planned allocation; ``ok`` is False when p < threshold.

    Two arms: exact binomial test; more arms: Pearson's chi-squared.
    """
    observed = _counts(counts)
    if len(observed) < 2:
        raise ValueError("a sample ratio check needs at least two arms")
    shares = _shares(allocation, len(observed))
    threshold = _check_threshold(threshold)
    total = sum(observed)
    df = len(observed) - 1
    expected = tuple(total * s for s in shares)
    method = METHOD_BINOMIAL if len(observed) == 2 else METHOD_CHI2
    if total == 0:
        return SampleRatioCheck(observed, expected, None, df, None, True, threshold, ("no-units",), method)
    if len(observed) == 2:
        p_value = binomial_two_sided_p(observed[0], total, shares[0])
        return SampleRatioCheck(
            observed, expected, None, df, p_value, p_value >= threshold, threshold, (), method
        )
    # Pearson's goodness of fit (scipy.stats.chisquare), from scipy.special to keep scipy.stats unloaded
    statistic = sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
    p_value = float(special.chdtrc(df, statistic))
    warnings = ("small-expected-counts",) if min(expected) < _MIN_EXPECTED else ()
    return SampleRatioCheck(
        observed, expected, float(statistic), df, p_value, p_value >= threshold, threshold, warnings, method
    )


# ---------------------------------------------------------------- operating characteristics


def _flagged_counts(n: int, share: float, threshold: float) -> tuple[int | None, int | None]:
    """Return (largest low count, smallest high count) of the first arm with p < threshold.

    The p-value only grows with the observed count's probability, which is unimodal, so the
    counts that are flagged form two tails and bisection on each side of the mean finds them.
    """
    mean = n * share

    def flagged(x: int) -> bool:
        return binomial_two_sided_p(x, n, share) < threshold

    low, high = -1, min(math.floor(mean), n)  # last flagged count in [0, floor(mean)]
    while low < high:
        mid = (low + high + 1) // 2
        if flagged(mid):
            low = mid
        else:
            high = mid - 1
    below = None if low < 0 else low
    low, high = max(math.ceil(mean), 0), n + 1  # first flagged count in [ceil(mean), n]
    while low < high:
        mid = (low + high) // 2
        if flagged(mid):
            high = mid
        else:
            low = mid + 1
    above = None if low > n else low
    return below, above


def _tails(below: int | None, above: int | None, n: int, share: float) -> float:
    """Return P(first arm's count <= below or >= above) for Binomial(n, share)."""
    low = 0.0 if below is None else _lower_tail(below, n, share)
    high = 0.0 if above is None else _upper_tail(above, n, share)
    return low + high


def srm_operating_characteristics(
    n_per_arm: int, threshold: float = DEFAULT_THRESHOLD, loss: float = 0.2
) -> SrmOperatingCharacteristics:
    """Return the exact false-alarm and detection rates of the two-arm check with 1:1 allocation.

    Under the allocation the first arm's count is Binomial(2n, 1/2).  When the second arm
    loses the fraction ``loss`` of its units the total is round((2 - loss) n) and the first
    arm's count is Binomial(total, 1 / (2 - loss)).  Each rate is the binomial probability of
    the counts whose exact p-value is below ``threshold``, so the rates are those of
    ``sample_ratio_check`` itself, not of a normal approximation.
    """
    n = checks.whole("n_per_arm", n_per_arm, 1)
    threshold = _check_threshold(threshold)
    loss = checks.open_unit("loss", loss)
    total_null = 2 * n
    below_null, above_null = _flagged_counts(total_null, 0.5, threshold)
    total_loss = round((2.0 - loss) * n)
    share_loss = 1.0 / (2.0 - loss)
    below_loss, above_loss = _flagged_counts(total_loss, 0.5, threshold)
    return SrmOperatingCharacteristics(
        n_per_arm=n,
        threshold=threshold,
        loss=loss,
        total_null=total_null,
        total_loss=total_loss,
        flagged_below_null=below_null,
        flagged_above_null=above_null,
        false_alarm=_tails(below_null, above_null, total_null, 0.5),
        flagged_below_loss=below_loss,
        flagged_above_loss=above_loss,
        detection=_tails(below_loss, above_loss, total_loss, share_loss),
    )
