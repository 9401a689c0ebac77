"""QA reviews of risks: what is due, and recording a review by someone other than the owner."""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from riskreg.errors import InvalidInput
from riskreg.listing import DueReview as DueReview  # re-exported: review due reads without the ORM
from riskreg.listing import due_reviews as due_reviews
from riskreg.models import REVIEW_OUTCOMES, Event, Review, Risk

# re-exported: risk show reads without the ORM
from riskreg.records import review_to_dict as review_to_dict
from riskreg.register import (
    Context,
    apply_change,
    get_risk,
)

# Characters that render as nothing: "ana\u200b" must not pass as someone other than "ana".
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")


def identity_key(name: str | None) -> str:
    """Return the form of a person's name used to compare identities ("" for no name).

    NFKC folds look-alike forms (full-width letters, ligatures), casefold folds case,
    invisible characters are dropped and runs of whitespace become one space.
    """
    text = unicodedata.normalize("NFKC", name or "")
    text = _INVISIBLE.sub("", text)
    text = unicodedata.normalize("NFKC", text.casefold())
    return " ".join(text.split())


def _same_person(a: str | None, b: str | None) -> bool:
    """Whether two names are the same person's once normalised (no name matches nobody)."""
    key = identity_key(a)
    return bool(key) and key == identity_key(b)


def _owners_in_review_period(session: Session, risk: Risk) -> tuple[list[str], dt.datetime | None]:
    """Return who owned the risk since its last review (or since it was added), and that review's time.

    The owner at the last review is the ``before`` owner of the first change after it; every
    later change's ``before`` and ``after`` owners follow, then the current owner. An owner who
    reassigned the risk, reviewed it and took it back is therefore still in the list.
    """
    events = session.execute(
        select(Event.seq, Event.action, Event.at, Event.before, Event.after)
        .where(Event.entity == "risk", Event.entity_id == risk.ref)
        .order_by(Event.seq)
    ).all()
    last_review = max((i for i, e in enumerate(events) if e.action == "risk.review"), default=None)
    period = events if last_review is None else events[last_review + 1 :]
    owners: list[str] = []
    for event in period:
        for side in (event.before, event.after):
            owner = (json.loads(side) or {}).get("owner") if side else None
            if owner and owner not in owners:
                owners.append(owner)
    if risk.owner and risk.owner not in owners:
        owners.append(risk.owner)
    return owners, None if last_review is None else events[last_review].at


def _require_independent_reviewer(session: Session, actor: str, risk: Risk) -> None:
    """Refuse a reviewer who owns the risk, or owned it at any time since its last review."""
    if _same_person(actor, risk.owner):
        raise InvalidInput(
            f"{actor} owns {risk.ref}; a review must be recorded by someone other than the owner"
        )
    owners, since = _owners_in_review_period(session, risk)
    if any(_same_person(actor, owner) for owner in owners):
        period = f"since its last review on {since:%Y-%m-%d}" if since else "since it was added"
        raise InvalidInput(
            f"{actor} owned {risk.ref} {period}; a review must be recorded by someone who has not "
            "owned the risk in the period under review"
        )


def record_review(
    session: Session, ctx: Context, ref: str, outcome: str, note: str | None
) -> tuple[Risk, Review]:
    """Record a review; the next review moves on from today; ``closed`` also closes the risk."""
    if outcome not in REVIEW_OUTCOMES:
        raise InvalidInput(f"outcome: expected one of {', '.join(REVIEW_OUTCOMES)}, got {outcome!r}")
    if not note or not note.strip():
        raise InvalidInput("note: a review needs --note (what was checked and found)")
    risk = get_risk(session, ref)
    if risk.status == "closed":
        raise InvalidInput(f"{risk.ref} is closed; closed risks are not reviewed")
    _require_independent_reviewer(session, ctx.actor, risk)
    if outcome == "rescored":
        _require_rescore_since_last_review(session, risk)
    review = Review(
        risk_id=risk.id, reviewer=ctx.actor, outcome=outcome, note=note.strip(), reviewed_at=ctx.now
    )
    session.add(review)
    session.flush()  # numbers the review, so its event can name it
    changes: dict[str, Any] = {"last_reviewed": ctx.today}
    if outcome == "closed":
        changes["status"] = "closed"
        risk.closed_at = ctx.now
    # the note is the event's reason; the id lets `audit verify` hold this row to this event
    extra = {"review": {"id": review.id, "outcome": outcome, "reviewer": ctx.actor}}
    apply_change(session, ctx, risk, changes, "risk.review", note.strip(), extra)
    return risk, review


def _require_rescore_since_last_review(session: Session, risk: Risk) -> None:
    """Refuse a ``rescored`` outcome unless the risk was re-scored since its last review (or since it was added).

    The outcome says the review changed the current score; with no re-score in between it
    would tell the board a score moved that did not, so it cannot be recorded.
    """
    latest = session.execute(
        select(Event.action, Event.at)
        .where(Event.entity_id == risk.ref, Event.action.in_(("risk.rescore", "risk.review")))
        .order_by(Event.seq.desc())
        .limit(1)
    ).first()
    if latest is not None and latest.action == "risk.rescore":
        return
    since = f"its last review on {latest.at:%Y-%m-%d}" if latest is not None else "it was added"
    raise InvalidInput(
        f"{risk.ref} has not been re-scored since {since}; re-score it first "
        f"(riskreg risk rescore {risk.ref} --likelihood L --impact I --reason ...) or record another outcome"
    )


def reviews_of(session: Session, risk_id: int) -> list[Review]:
    """Return a risk's reviews, oldest first."""
    return list(session.scalars(select(Review).where(Review.risk_id == risk_id).order_by(Review.id)))


def escalated_risks(session: Session) -> set[int]:
    """Return the ids of risks whose latest review escalated them."""
    latest: dict[int, str] = {}
    for risk_id, outcome in session.execute(select(Review.risk_id, Review.outcome).order_by(Review.id)):
        latest[risk_id] = outcome
    return {risk_id for risk_id, outcome in latest.items() if outcome == "escalated"}
