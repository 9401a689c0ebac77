"""Sufficient statistics for one arm of a pilot: continuous, binary and count outcomes.

Each summary is a frozen dataclass holding only what the comparison methods need, so the
analysis code can build it from raw values, from SQL aggregates, or by merging partial
summaries (e.g. one per site) without keeping the raw data.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from riskreg.stats import checks

__all__ = ["BinarySummary", "ContinuousSummary", "CountSummary"]


def _finite(name: str, value: object) -> float:
    """Return ``value`` as a finite float, or raise ValueError naming ``name``."""
    try:
        as_float = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(as_float):
        raise ValueError(f"{name} must be finite, got {as_float}")
    return as_float


@dataclass(frozen=True)
class ContinuousSummary:
    """Count, mean and sum of squared deviations (``m2``) of a continuous outcome in one arm.

    An empty arm is ``n=0, mean=0.0, m2=0.0``, which is also the identity for :meth:`combine`.
    """

    n: int
    mean: float
    m2: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", checks.integer("n", self.n))
        object.__setattr__(self, "mean", _finite("mean", self.mean))
        object.__setattr__(self, "m2", _finite("m2", self.m2))
        if self.m2 < 0:
            raise ValueError(f"m2 (sum of squared deviations) must be >= 0, got {self.m2}")
        if self.n == 0 and (self.mean != 0.0 or self.m2 != 0.0):
            raise ValueError("an empty summary (n=0) must have mean=0 and m2=0")
        if self.n == 1 and self.m2 != 0.0:
            raise ValueError("a summary of one value must have m2=0")

    @classmethod
    def empty(cls) -> ContinuousSummary:
        """Return the summary of no values."""
        return cls(0, 0.0, 0.0)

    @classmethod
    def from_values(cls, values: Iterable[float]) -> ContinuousSummary:
        """Summarise raw values with Welford's one-pass update (stable for large offsets)."""
        n, mean_d, m2 = 0, 0.0, 0.0
        shift: float | None = None
        for i, raw in enumerate(values):
            x = _finite(f"values[{i}]", raw)
            if shift is None:
                # Run Welford on d = x - first value: near the data, x - shift is exact
                # (Sterbenz), and a running mean of small d does not carry the rounding
                # error of a running mean near 1e9, which costs ~5 digits of the variance.
                shift = x
            d = x - shift
            n += 1
            delta = d - mean_d
            mean_d += delta / n
            m2 += delta * (d - mean_d)  # uses the updated mean (Welford 1962)
        if shift is None:
            return cls.empty()
        return cls(n, shift + mean_d, m2)

    @classmethod
    def from_shifted_sums(cls, n: int, shift: float, sum_d: float, sum_d2: float) -> ContinuousSummary:
        """Summarise from the sums of ``d = x - shift`` and ``d**2`` (e.g. SQL aggregates).

        Choosing ``shift`` close to a typical value (the group's first value or a rough
        average) keeps ``d`` small, so ``sum_d2 - sum_d**2 / n`` does not lose the variance
        to cancellation the way raw ``sum(x**2)`` would.
        """
        n = checks.integer("n", n)
        shift = _finite("shift", shift)
        sum_d = _finite("sum_d", sum_d)
        sum_d2 = _finite("sum_d2", sum_d2)
        if sum_d2 < 0:
            raise ValueError(f"sum_d2 must be >= 0, got {sum_d2}")
        if n == 0:
            if sum_d != 0.0 or sum_d2 != 0.0:
                raise ValueError("n=0 but the sums are not zero")
            return cls.empty()
        mean_d = sum_d / n
        # Rounding can leave a tiny negative remainder when all values are equal.
        m2 = max(sum_d2 - sum_d * mean_d, 0.0)
        return cls(n, shift + mean_d, 0.0 if n == 1 else m2)

    def combine(self, other: ContinuousSummary) -> ContinuousSummary:
        """Merge two summaries of disjoint sets of values (Chan, Golub & LeVeque parallel formula)."""
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.n / n)
        m2 = self.m2 + other.m2 + delta * delta * (self.n * other.n / n)
        return ContinuousSummary(n, mean, m2)

    @property
    def variance(self) -> float | None:
        """Sample variance (n - 1 denominator), or None with fewer than two values."""
        return self.m2 / (self.n - 1) if self.n >= 2 else None

    @property
    def sd(self) -> float | None:
        """Sample standard deviation, or None with fewer than two values."""
        variance = self.variance
        return math.sqrt(variance) if variance is not None else None

    def to_dict(self) -> dict:
        """Return JSON-ready plain values, including the derived variance and sd."""
        return {"n": self.n, "mean": self.mean, "m2": self.m2, "variance": self.variance, "sd": self.sd}


@dataclass(frozen=True)
class BinarySummary:
    """Number of units and number of units with the event (yes/no outcome) in one arm."""

    n: int
    events: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", checks.integer("n", self.n))
        object.__setattr__(self, "events", checks.integer("events", self.events))
        if self.events > self.n:
            raise ValueError(f"events ({self.events}) cannot exceed n ({self.n})")

    @property
    def proportion(self) -> float | None:
        """Share of units with the event, or None for an empty arm."""
        return self.events / self.n if self.n > 0 else None

    def to_dict(self) -> dict:
        """Return JSON-ready plain values, including the proportion."""
        return {"n": self.n, "events": self.events, "proportion": self.proportion}


@dataclass(frozen=True)
class CountSummary:
    """Number of units, total event count and total exposure (e.g. person-days) in one arm.

    Exposure must be > 0, except for an empty arm, which is ``n=0, events=0, exposure=0``.
    ``sum_y2_over_t`` is Σ y²/t over the arm's units (y a unit's events, t its exposure): with
    the totals it gives the Pearson dispersion of the counts, so overdispersion can be allowed
    for.  None when it is unknown (e.g. data summarised before it was kept).
    """

    n: int
    events: int
    exposure: float
    sum_y2_over_t: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", checks.integer("n", self.n))
        object.__setattr__(self, "events", checks.integer("events", self.events))
        object.__setattr__(self, "exposure", _finite("exposure", self.exposure))
        if self.n == 0:
            if self.events != 0 or self.exposure != 0.0:
                raise ValueError("an empty arm (n=0) must have events=0 and exposure=0")
        elif self.exposure <= 0:
            raise ValueError(f"exposure must be > 0, got {self.exposure}")
        if self.sum_y2_over_t is not None:
            self._check_sum_y2_over_t()

    def _check_sum_y2_over_t(self) -> None:
        """Validate Σ y²/t: finite, >= 0, 0 without events, and at least events² / exposure."""
        value = checks.number("sum_y2_over_t", self.sum_y2_over_t)  # finite; no bools or strings
        object.__setattr__(self, "sum_y2_over_t", value)
        if value < 0:
            raise ValueError(f"sum_y2_over_t must be >= 0, got {value}")
        if self.events == 0:
            if value != 0.0:
                # Every unit has y = 0 (also when n = 0), so every term is 0.
                raise ValueError(f"sum_y2_over_t must be 0 when there are no events, got {value}")
            return
        # Cauchy–Schwarz: Σ y²/t >= (Σ y)² / Σ t, with equality when all units share one rate.
        # A smaller value cannot come from any per-unit data (e.g. Σ y/t passed by mistake);
        # the relative slack allows for rounding in summed aggregates.
        floor = self.events * (self.events / self.exposure)
        if value < floor * (1.0 - 1e-9):
            raise ValueError(
                f"sum_y2_over_t ({value}) cannot be below events**2 / exposure ({floor}): "
                "it must be the sum over units of events**2 / exposure"
            )

    @property
    def rate(self) -> float | None:
        """Events per unit of exposure, or None for an empty arm."""
        return self.events / self.exposure if self.n > 0 else None

    def to_dict(self) -> dict:
        """Return JSON-ready plain values, including the rate."""
        return {
            "n": self.n,
            "events": self.events,
            "exposure": self.exposure,
            "rate": self.rate,
            "sum_y2_over_t": self.sum_y2_over_t,
        }
