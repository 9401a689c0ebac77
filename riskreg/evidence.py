"""Re-scoring a risk on pilot evidence: the change is tied to the result that justified it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from riskreg.errors import InvalidInput
from riskreg.models import AuditHead, Evidence, PilotRisk, Risk
from riskreg.pilots import get_pilot, has_data

# re-exported: risk show reads without the ORM
from riskreg.records import evidence_to_dict as evidence_to_dict
from riskreg.register import Context, get_risk, rescore_risk


def rescore_on_evidence(
    session: Session,
    ctx: Context,
    ref: str,
    likelihood: int,
    impact: int,
    reason: str | None,
    pilot_ref: str,
    expect_version: int | None = None,
    metric: str | None = None,
) -> tuple[Risk, Evidence]:
    """Re-score a risk and store the pilot result (estimate, CI, n) it relied on.

    The result is the pilot's primary metric unless ``metric`` names another, such as the
    safety metric that tests a safeguarding risk.
    """
    from riskreg.analysis import analyse  # only re-scoring on evidence analyses (and loads scipy)

    risk = get_risk(session, ref)
    pilot = get_pilot(session, pilot_ref)
    linked = session.get(PilotRisk, (pilot.id, risk.id))
    if linked is None:
        raise InvalidInput(
            f"{pilot.ref} is not linked to {risk.ref}; link it first: riskreg pilot link {pilot.ref} {risk.ref}"
        )
    if not has_data(session, pilot):
        raise InvalidInput(f"{pilot.ref} has no outcome data yet; there is no evidence to re-score on")
    analysis = analyse(session, pilot, None, ctx.config).to_dict()
    primary = _chosen_metric(analysis["metrics"], pilot.ref, metric)
    arms = list(primary["n"])
    low, high = primary["ci"] if primary["ci"] else (None, None)
    summary = {
        "pilot": pilot.ref,
        "stage": analysis["stage"],
        "metric": primary["name"],
        "verdict": primary["verdict"],
        "recommendation": analysis["recommendation"],
        "estimate": primary["estimate"],
        "ci": [low, high],
        "n": primary["n"],
    }
    rescore_risk(session, ctx, ref, likelihood, impact, reason, expect_version, evidence=summary)
    row = Evidence(
        risk_id=risk.id,
        pilot_id=pilot.id,
        event_seq=session.get(AuditHead, 1).seq,  # the rescore event just written
        stage_index=analysis["stage_index"],
        metric=primary["name"],
        verdict=primary["verdict"],
        recommendation=analysis["recommendation"],
        estimate=primary["estimate"],
        ci_low=low,
        ci_high=high,
        n_comparison=primary["n"][arms[0]],
        n_pilot=primary["n"][arms[1]],
        at=ctx.now,
    )
    session.add(row)
    session.flush()
    return risk, row


def _chosen_metric(metrics: list[dict[str, Any]], pilot_ref: str, name: str | None) -> dict[str, Any]:
    """Return the analysed metric called ``name``, or the primary one when no name is given."""
    for result in metrics:
        if result["name"] == name or (name is None and result["role"] == "primary"):
            return result
    names = ", ".join(m["name"] for m in metrics)
    raise InvalidInput(f"{pilot_ref} has no metric '{name}' (metrics: {names})")


def evidence_for(session: Session, risk_id: int) -> list[Evidence]:
    """Return the evidence behind a risk's re-scores, oldest first."""
    return list(session.scalars(select(Evidence).where(Evidence.risk_id == risk_id).order_by(Evidence.id)))
