"""Probabilities a board can read: how likely the pilot arm is better, and better than the margin.

With a flat prior, the posterior for the true effect on the analysis scale (the difference,
or the log rate ratio) is normal about the estimate with the estimate's standard error, so
P(effect better than a threshold) = Φ(±(estimate − threshold) / se). This is the
normal-approximation reading that experiment engines give as "chance to beat control"
(GrowthBook's frequentist-equivalent default; see also Spiegelhalter, Abrams & Myles,
Bayesian Approaches to Clinical Trials and Health-Care Evaluation, 2004, §3.6). It is read
at the data as they stand: it is not adjusted for the pilot's looks, and it is no verdict.
Pure: numbers in, frozen dataclasses out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.special import ndtr

from riskreg.stats import checks


@dataclass(frozen=True)
class Chance:
    """P(the pilot arm is better), and P(better than the margin line) where a margin applies."""

    better: float
    beyond_margin: float | None
    method: str = "normal approximation, flat prior"


def chance_of_benefit(
    estimate: float, se: float, higher_is_better: bool, ratio: bool = False, margin_line: float | None = None
) -> Chance:
    """Return how likely the true effect favours the pilot arm, and lies on the good side of ``margin_line``.

    ``estimate`` and ``margin_line`` are on the estimate's own scale (a rate ratio for
    ``ratio``); ``se`` on the analysis scale (the log rate ratio's for a ratio). A ratio is
    better above 1 when higher is better; a difference above 0.
    """
    estimate = checks.number("estimate", estimate)
    se = checks.positive("se", se)
    centre = math.log(checks.positive("estimate", estimate)) if ratio else estimate
    sign = 1.0 if higher_is_better else -1.0
    better = float(ndtr(sign * centre / se))
    beyond = None
    if margin_line is not None:
        line = (
            math.log(checks.positive("margin_line", margin_line))
            if ratio
            else checks.number("margin_line", margin_line)
        )
        beyond = float(ndtr(sign * (centre - line) / se))
    return Chance(better=better, beyond_margin=beyond)


__all__ = ["Chance", "chance_of_benefit"]
