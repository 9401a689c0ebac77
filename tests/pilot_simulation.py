"""Simulated staged pilots run through riskreg's own decision path (``analysis.judge_look``).

Each replicate is a three-stage pilot (50, 100 and 150 units per arm, cumulative) with a
continuous primary (superiority, higher is better) and, optionally, a count safety metric. It moves
only as the tool recommends: ``proceed`` (or ``adapt``) opens the next stage, ``stop``
ends it, and the pilot succeeds when the last stage's recommendation is ``proceed``. Each
gate decision is a look, as in the register. Per-arm sufficient statistics are built from
simulated unit values, exactly what the imports keep, so everything from the comparison
to the recommendation is the code users get; only the database round trip is left out.

Used by tests/test_simulation.py (few replicates, seconds) and bench/simulate.py (the
README's table).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from riskreg.analysis import judge_look
from riskreg.config import Config
from riskreg.looks import Look
from riskreg.protocol import parse_protocol
from riskreg.stats.summaries import ContinuousSummary, CountSummary

PROTOCOL = b"""
[pilot]
key = "simulated"
title = "Simulated three-stage pilot"
modes = ["delivery"]
hypothesis = "The pilot arm raises the outcome."

[design]
arms = ["comparison", "pilot"]
alpha = 0.05
power = 0.8

[[metrics]]
name = "outcome"
kind = "continuous"
role = "primary"
better = "higher"
test = "superiority"

[[stages]]
name = "first"
planned_n = 50
[[stages]]
name = "second"
planned_n = 100
[[stages]]
name = "third"
planned_n = 150
"""

SAFETY = b"""
[[metrics]]
name = "incidents"
kind = "count"
role = "safety"
better = "lower"
"""

FINAL_N = 150
Z_975, Z_80 = 1.959963984540054, 0.8416212335729143
# the standardised effect a fixed design of 150 per arm detects with 80 % power at two-sided 0.05
EFFECT_80 = (Z_975 + Z_80) * math.sqrt(2.0 / FINAL_N)


@dataclass(frozen=True)
class Outcome:
    """How the replicates ended: final proceeds, stops on safety harm, and harm shown at the first look."""

    replicates: int
    final_proceed: float
    harm_stop: float
    first_look_harm: float  # one analysis: comparable with the nominal one-sided 2.5 %

    def mc_error(self, rate: float) -> float:
        """Return the Monte-Carlo standard error of a rate estimated from these replicates."""
        return math.sqrt(max(rate * (1.0 - rate), 1e-12) / self.replicates)


def simulate(
    effect: float, replicates: int, seed: int, incidents_shape: float | None = None, safety: bool = True
) -> Outcome:
    """Run ``replicates`` pilots with this true standardised effect; return how they ended.

    ``safety``: the protocol has a count safety metric with no true difference, judged
    unadjusted at every look (so its false harms stop some pilots); ``incidents_shape``:
    its counts are negative binomial with this shape (mean 2 a unit), or Poisson when None.
    """
    text = PROTOCOL.replace(b"[[stages]]", SAFETY + b"\n[[stages]]", 1) if safety else PROTOCOL
    protocol = parse_protocol(text, "simulated.toml")
    rng = np.random.default_rng(seed)
    config = Config()
    proceeds = harms = first_harms = 0
    for _ in range(replicates):
        ending, harm, first_harm = _one_pilot(protocol, rng, effect, incidents_shape, config)
        proceeds += ending
        harms += harm
        first_harms += first_harm
    return Outcome(replicates, proceeds / replicates, harms / replicates, first_harms / replicates)


def _one_pilot(protocol, rng, effect: float, shape: float | None, config: Config) -> tuple[bool, bool, bool]:  # type: ignore[no-untyped-def]
    arms = protocol.design.arms
    outcome = [rng.normal(0.0, 1.0, FINAL_N), rng.normal(effect, 1.0, FINAL_N)]
    incidents = [_counts(rng, shape) for _arm in arms]
    previous: tuple[Look, ...] = ()
    first_harm = False
    for k, stage in enumerate(protocol.stages):
        n = stage.planned_n
        summaries = {"outcome": tuple(ContinuousSummary.from_values(values[:n]) for values in outcome)}
        if len(protocol.metrics) > 1:
            summaries["incidents"] = tuple(_count_summary(counts[:n]) for counts in incidents)
        missing = {name: dict.fromkeys(arms, 0) for name in summaries}
        units = dict.fromkeys(arms, n)
        look = judge_look(protocol, k, summaries, missing, units, units, previous, config, with_power=False)
        decision = look.rule.recommendation
        harm = any(r.role == "safety" and r.verdict in ("harm", "inferior") for r in look.results)
        first_harm = first_harm or (k == 0 and harm)
        if decision == "stop":
            return False, harm, first_harm
        if decision == "continue":
            raise AssertionError(
                f"an ordinary pilot at its planned n was told to continue: {look.rule.reasons}"
            )
        current = look.looks.current
        previous = (*previous, Look(k, current.effective_n, current.fraction, current.final, decision))
    return True, False, first_harm


def _counts(rng: np.random.Generator, shape: float | None) -> np.ndarray:
    mean = 2.0
    if shape is None:
        return rng.poisson(mean, FINAL_N)
    return rng.negative_binomial(shape, shape / (shape + mean), FINAL_N)


def _count_summary(counts: np.ndarray) -> CountSummary:
    # one week of exposure a unit: Σy²/t is Σy²
    events = int(counts.sum())
    return CountSummary(len(counts), events, float(len(counts)), sum_y2_over_t=float((counts * counts).sum()))
