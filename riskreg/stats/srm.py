"""Sample ratio mismatch check: do the arm sizes match the planned allocation?

A mismatch usually means the assignment or the data extraction is broken, so the
comparisons should not be trusted until it is explained.  The default threshold is strict
(0.001) because the check runs on every analysis and false alarms are costly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from scipy import special

from riskreg.stats import checks

__all__ = ["SampleRatioCheck", "sample_ratio_check"]

# Below this expected count per arm the chi-squared approximation is unreliable (Cochran).
_MIN_EXPECTED = 5.0


@dataclass(frozen=True)
class SampleRatioCheck:
    """Result of a chi-squared goodness-of-fit test of arm counts against the allocation."""

    counts: tuple[int, ...]
    expected: tuple[float, ...]
    chi2: float | None
    df: int
    p_value: float | None
    ok: bool
    threshold: float
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """Return JSON-ready plain values (lists instead of tuples)."""
        result = asdict(self)
        for key in ("counts", "expected", "warnings"):
            result[key] = list(result[key])
        return result


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


def sample_ratio_check(
    counts: Sequence[int], allocation: Sequence[float], threshold: float = 0.001
) -> SampleRatioCheck:
    """Test arm counts against the planned allocation; ``ok`` is False when p < threshold."""
    observed = _counts(counts)
    if len(observed) < 2:
        raise ValueError("a sample ratio check needs at least two arms")
    shares = _shares(allocation, len(observed))
    threshold = float(threshold)
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be between 0 and 1 (exclusive), got {threshold}")
    total = sum(observed)
    df = len(observed) - 1
    expected = tuple(total * s for s in shares)
    if total == 0:
        return SampleRatioCheck(observed, expected, None, df, None, True, threshold, ("no-units",))
    # Pearson's goodness of fit (scipy.stats.chisquare), from scipy.special to keep scipy.stats unloaded
    statistic = sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
    p_value = float(special.chdtrc(df, statistic))
    warnings = ("small-expected-counts",) if min(expected) < _MIN_EXPECTED else ()
    return SampleRatioCheck(
        observed, expected, float(statistic), df, p_value, p_value >= threshold, threshold, warnings
    )
