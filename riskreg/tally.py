"""What an outcome import keeps of its observations as they stream by: counts and sufficient statistics.

Each (metric, arm) group of an import gets a ``GroupTally``: present and missing counts,
the sum of the present values (events, for binary and count metrics), the exposure beside
them, for count metrics the sum of value²/exposure (for a quasi-Poisson dispersion), and
for continuous metrics the sums of d = value − shift and d², shifted by the
group's first present value so that the variance never comes from a raw sum of squares.
Values wait in a short list and are folded into exact partial sums (``math.fsum``) a
batch at a time, so memory stays flat and the same file always gives the same numbers.
"""

from __future__ import annotations

import math
import operator
from collections import deque
from dataclasses import dataclass, field
from itertools import compress, repeat
from typing import Any

FOLD_VALUES = 1 << 12  # values held before they are folded into partial sums (a few per chunk)
NAN = math.nan


@dataclass
class GroupTally:
    """Counts and sufficient statistics of one metric in one arm of an import (a missing value is NaN)."""

    continuous: bool
    count: bool
    present: int = 0
    missing: int = 0
    shift: float | None = None
    values: list[float] = field(default_factory=list, repr=False)
    exposures: list[float | None] = field(default_factory=list, repr=False)
    _totals: list[float] = field(default_factory=list, repr=False)
    _spans: list[float] = field(default_factory=list, repr=False)
    _y2t: list[float] = field(default_factory=list, repr=False)
    _d: list[float] = field(default_factory=list, repr=False)
    _d2: list[float] = field(default_factory=list, repr=False)

    def add(self, value: float | None, exposure: float | None) -> None:
        """Take one observation (``None`` for a missing value)."""
        self.values.append(NAN if value is None else value)
        if self.count:
            self.exposures.append(exposure)
        if len(self.values) >= FOLD_VALUES:
            self.fold()

    def fold(self) -> None:
        """Fold the waiting values into the counts and partial sums."""
        values, self.values = self.values, []
        exposures, self.exposures = self.exposures, []
        total = math.fsum(values)
        if total == total:  # no NaN, the missing value (not equal to itself): every value counts
            present = values
        else:
            is_present = list(map(operator.eq, values, values))
            present = list(compress(values, is_present))
            exposures = list(compress(exposures, is_present))
            total = math.fsum(present)
        self.present += len(present)
        self.missing += len(values) - len(present)
        if not present:
            return
        self._totals.append(total)
        if self.count:
            # every present count has its exposure (the import checks that)
            self._spans.append(math.fsum(exposures))
            self._y2t.append(_sum(map(operator.truediv, map(operator.mul, present, present), exposures)))
        if self.continuous:
            if self.shift is None:
                self.shift = present[0]
            d = list(map(operator.sub, present, repeat(self.shift)))
            self._d.append(math.fsum(d))
            self._d2.append(math.fsum(map(operator.mul, d, d)))

    def columns(self) -> dict[str, Any]:
        """Return the group's import_counts columns (after folding what still waits)."""
        self.fold()
        continuous = self.shift is not None
        return {
            "n": self.present,
            "missing": self.missing,
            "total": math.fsum(self._totals),
            "exposure": math.fsum(self._spans),
            "shift": self.shift,
            "sum_d": math.fsum(self._d) if continuous else None,
            "sum_d2": math.fsum(self._d2) if continuous else None,
            "sum_y2_t": _sum(self._y2t) if self.count else None,
        }


def _sum(values: Any) -> float:
    """``math.fsum``, but infinite rather than an error when the exact sum is beyond a double.

    Counts and exposures are at most 1e15, yet value²/exposure has no bound when the
    exposure is tiny; the analysis says so rather than the import failing here.
    """
    try:
        return math.fsum(values)
    except OverflowError:
        return math.inf


def tally_chunk(
    tallies: dict[int, GroupTally], groups: list[int], values: list[float], exposures: list[Any]
) -> None:
    """Hand a chunk's observations to their groups' tallies, keyed by ``groups`` (one int per observation)."""
    distinct = set(groups)
    if len(distinct) == 1:
        tally = tallies[groups[0]]
        tally.values += values
        if tally.count:
            tally.exposures += exposures
    else:
        # one C-level pass: each value goes to its group's list.append
        appends = {group: tallies[group].values.append for group in distinct}
        deque(map(operator.call, map(appends.__getitem__, groups), values), maxlen=0)
        counted = {group: tallies[group].exposures.append for group in distinct if tallies[group].count}
        if counted:
            skip = [].append  # exposures of other kinds are not kept
            pick = {group: counted.get(group, skip) for group in distinct}
            deque(map(operator.call, map(pick.__getitem__, groups), exposures), maxlen=0)
    for group in distinct:
        if len(tallies[group].values) >= FOLD_VALUES:
            tallies[group].fold()
