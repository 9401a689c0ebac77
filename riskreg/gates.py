"""Gate decisions informed by the stage's analysis: any decision against the recommendation needs an override."""

from __future__ import annotations

from sqlalchemy.orm import Session

from riskreg.analysis import analyse
from riskreg.errors import InvalidInput
from riskreg.pilots import GateResult, gate_pilot, record_gate
from riskreg.register import Context


def decide(
    session: Session, ctx: Context, ref: str, decision: str, reason: str | None, override: bool = False
) -> GateResult:
    """Analyse the pilot's current stage, check the decision against the recommendation, and record it."""
    pilot = gate_pilot(session, ref, decision, reason)  # before analysing: bad input needs no analysis
    analysis = analyse(session, pilot, None, ctx.config).to_dict()
    recommended = analysis["recommendation"]
    against = decision != recommended
    if against and not override:
        why = "; ".join(analysis["reasons"])
        raise InvalidInput(
            f"{pilot.ref}: the analysis recommends '{recommended}' ({why}); "
            f"to record '{decision}' anyway add --override (it will be flagged in QA and board reports)"
        )
    if override and not against:
        raise InvalidInput(
            f"--override is only for a decision against the recommendation; the analysis recommends '{recommended}'"
        )
    return record_gate(
        session,
        ctx,
        pilot,
        decision,
        reason or "",
        analysis=analysis,
        recommendation=recommended,
        override=override,
    )
