"""The looks at a pilot's primary metric: each gate decision is one (DESIGN §5).

A look's information fraction is the primary information observed at it over the
information the last stage plans: the effective number of units per arm with the primary
outcome, 2·n₁·n₂ / (n₁ + n₂) (the harmonic mean, which is n when the arms are equal and
the information of a two-arm comparison otherwise), over the last stage's planned n.
Boundaries are recomputed from the looks actually taken, by the spending function at
their observed fractions, every time: so an amendment that adds a stage (a larger final
n) recomputes every earlier look's fraction too. The look being analysed now is the next
one; an analysis after a ``continue`` at the same stage is a new look. The final look is
the analysis at the last stage once that stage has its planned n: it spends all the α
that is left, whatever its fraction, and no look after it has any α.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from riskreg.models import Decision, Pilot
from riskreg.pilots import decisions
from riskreg.protocol import Protocol
from riskreg.register import iso_utc
from riskreg.stats.sequential import Z_CAP, Boundaries, observed_boundaries

__all__ = ["Look", "LookPlan", "effective_n", "look_plan", "plan_looks", "previous_looks"]

# A look whose fraction does not exceed the one before it added no information: it is
# placed just after it, so it spends (next to) nothing and its boundary is the cap.
_NO_NEW_INFORMATION = 1e-9


@dataclass(frozen=True)
class Look:
    """One look at the primary: an earlier gate decision, or the analysis being made now."""

    stage_index: int
    effective_n: float
    fraction: float
    final: bool
    decision: str | None = None  # None for the look being analysed now
    at: str | None = None

    def to_dict(self, protocol: Protocol) -> dict[str, Any]:
        """Return JSON-ready plain values, naming the stage."""
        return {
            "stage": protocol.stages[self.stage_index].name,
            "effective_n": self.effective_n,
            "fraction": self.fraction,
            "final": self.final,
            "decision": self.decision,
            "at": self.at,
        }


@dataclass(frozen=True)
class LookPlan:
    """The looks so far and the critical values they give the look being analysed now."""

    previous: tuple[Look, ...]
    current: Look
    boundaries: Boundaries | None  # None when the final look has already been taken
    boundary: float
    final_boundary: float | None  # the last look's critical value if the rest goes as planned
    exhausted: bool  # a final look was taken before this one: no α is left
    warnings: tuple[str, ...] = ()

    @property
    def number(self) -> int:
        """The 1-based number of the look being analysed now."""
        return len(self.previous) + 1


def effective_n(primary_units: dict[str, int]) -> float:
    """Return the effective units per arm with the primary outcome: the harmonic mean of two arms."""
    a, b = primary_units.values()
    return 2.0 * a * b / (a + b) if a > 0 and b > 0 else 0.0


def is_final(protocol: Protocol, stage_index: int, units: dict[str, int]) -> bool:
    """True if a look at this stage with these units is the final one: the last stage at its planned n."""
    last = len(protocol.stages) - 1
    return stage_index == last and min(units.values()) >= protocol.stages[last].planned_n


def plan_looks(
    session: Session,
    pilot: Pilot,
    protocol: Protocol,
    stage_index: int,
    units: dict[str, int],
    primary_units: dict[str, int],
) -> LookPlan:
    """Return the looks taken before the analysis of ``stage_index`` and the boundaries they give it."""
    previous = previous_looks(session, pilot, protocol, stage_index)
    return look_plan(protocol, stage_index, previous, units, primary_units)


def look_plan(
    protocol: Protocol,
    stage_index: int,
    previous: tuple[Look, ...],
    units: dict[str, int],
    primary_units: dict[str, int],
) -> LookPlan:
    """Return the boundaries that the looks taken before give the look at ``stage_index`` with these units."""
    final_n = protocol.stages[-1].planned_n
    n_now = effective_n(primary_units)
    current = Look(stage_index, n_now, n_now / final_n, is_final(protocol, stage_index, units))
    if any(look.final for look in previous):
        return LookPlan(
            previous, current, None, Z_CAP, None, True, ("the final look was taken already: no α is left",)
        )
    warnings: tuple[str, ...] = ()
    fractions = [look.fraction for look in previous]
    t = current.fraction
    if fractions and t <= fractions[-1]:
        warnings = ("no primary information was added since the last look, so this look spends no α",)
        t = fractions[-1] + _NO_NEW_INFORMATION
    elif t <= 0.0:
        t = _NO_NEW_INFORMATION  # no primary data yet: the comparison is undefined anyway
    boundaries = observed_boundaries([*fractions, t], protocol.design.alpha, final=current.final)
    final_boundary = None
    if not current.final:
        planned_end = observed_boundaries(
            [*fractions, t, max(1.0, t * 1.01)], protocol.design.alpha, final=True
        )
        final_boundary = planned_end.z[-1]
    return LookPlan(previous, current, boundaries, boundaries.z[-1], final_boundary, False, warnings)


def previous_looks(session: Session, pilot: Pilot, protocol: Protocol, stage_index: int) -> tuple[Look, ...]:
    """Return the gate decisions before this look as looks, their fractions strictly increasing.

    The decisions that count are those of earlier stages and the ``continue`` decisions of
    this one (an analysis of a stage already decided reproduces the look that decided it).
    A decision without an analysis, or one that added no primary information since the
    look before it, spent no α and is left out.
    """
    final_n = protocol.stages[-1].planned_n
    looks: list[Look] = []
    for decision in decisions(session, pilot):
        if not _before(decision, stage_index):
            continue
        analysis = json.loads(decision.snapshot).get("analysis") or {}
        n = _decided_effective_n(analysis)
        if n is None or n <= 0.0:
            continue
        fraction = n / final_n
        if looks and fraction <= looks[-1].fraction:
            continue
        units = analysis.get("units") or {}
        final = (
            decision.stage_index < len(protocol.stages)
            and bool(units)
            and is_final(protocol, decision.stage_index, {arm: int(v) for arm, v in units.items()})
        )
        looks.append(Look(decision.stage_index, n, fraction, final, decision.decision, iso_utc(decision.at)))
    return tuple(looks)


def _before(decision: Decision, stage_index: int) -> bool:
    return decision.stage_index < stage_index or (
        decision.stage_index == stage_index and decision.decision == "continue"
    )


def _decided_effective_n(analysis: dict[str, Any]) -> float | None:
    """Return the effective primary n an earlier decision's analysis rested on (also for older analyses)."""
    information = analysis.get("information") or {}
    if isinstance(information.get("effective_n"), (int, float)):
        return float(information["effective_n"])
    primary_units = analysis.get("primary_units")
    if isinstance(primary_units, dict) and len(primary_units) == 2:
        return effective_n({arm: int(v) for arm, v in primary_units.items()})
    return None
