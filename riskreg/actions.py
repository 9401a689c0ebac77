"""Actions (``A-<n>``): the steps planned to treat a risk, with an owner, a due date and a status.

An action is versioned like a risk and every change is an audit event in the risk's
history. Marking an action done needs no reason; cancelling, reopening or re-planning it
(title, owner, due date) does, since that changes what a board was told would happen.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from riskreg import audit
from riskreg.errors import InvalidInput, NotFound, StaleVersion
from riskreg.models import ACTION_STATUSES, Action

# re-exported: risk show reads without the ORM
from riskreg.records import action_to_dict as action_to_dict
from riskreg.records import is_overdue as is_overdue
from riskreg.register import (
    Context,
    _choice,
    _text,
    allocate_id,
    get_risk,
    parse_date,
    parse_ref,
)

UPDATABLE = ("title", "owner", "due", "status")
# what may still happen to the actions of a closed risk: closing them out
CLOSING_STATUSES = ("done", "cancelled")

_CHECKS: dict[str, Any] = {
    "title": lambda v: _text("title", v, optional=False, limit=500),
    "owner": lambda v: _text("owner", v, optional=False, limit=200),
    "due": lambda v: _due(v),
    "status": lambda v: _choice("status", v, ACTION_STATUSES),
}


def _due(value: Any) -> dt.date:
    if value is None or str(value).strip() == "":
        raise InvalidInput("due: required, a date as YYYY-MM-DD")
    return parse_date("due", value)  # type: ignore[return-value]


def action_snapshot(action: Action) -> dict[str, Any]:
    """Return the stored fields of an action, as kept in events."""
    return {
        "risk": f"R-{action.risk_id}",
        "title": action.title,
        "owner": action.owner,
        "due": action.due.isoformat(),
        "status": action.status,
        "version": action.version,
    }


def get_action(session: Session, ref: str) -> Action:
    """Return the action named by ``A-<n>``, or raise NotFound."""
    number = parse_ref(ref, "A")
    action = session.get(Action, number)
    if action is None:
        raise NotFound(f"no action A-{number}")
    return action


def list_actions(
    session: Session,
    today: dt.date,
    overdue: bool = False,
    risk_ref: str | None = None,
    status: str | None = None,
) -> list[Action]:
    """Return actions, soonest due first: all, one risk's, of one status, or only the overdue ones."""
    query = select(Action).order_by(Action.due, Action.id)
    if risk_ref is not None:
        query = query.where(Action.risk_id == get_risk(session, risk_ref).id)
    if status is not None:
        query = query.where(Action.status == _choice("status", status, ACTION_STATUSES))
    if overdue:
        query = query.where(Action.status == "open", Action.due < today)
    return list(session.scalars(query))


def actions_of(session: Session, risk_id: int) -> list[Action]:
    """Return a risk's actions, oldest first."""
    return list(session.scalars(select(Action).where(Action.risk_id == risk_id).order_by(Action.id)))


def _log(
    session: Session,
    ctx: Context,
    action: Action,
    verb: str,
    before: dict[str, Any] | None,
    reason: str | None,
) -> None:
    # audit.log names only risks, controls and pilots; an action's events go in its risk's history
    audit.record(
        session,
        actor=ctx.actor,
        action=verb,
        entity="action",
        entity_id=action.ref,
        scope=f"R-{action.risk_id}",
        before=before,
        after=action_snapshot(action),
        reason=reason,
        at=ctx.now,
    )


def add_action(
    session: Session, ctx: Context, risk_ref: str, title: str, owner: str, due: str | dt.date
) -> Action:
    """Plan an action on an open risk: what, who and by when."""
    fields = {
        name: _CHECKS[name](value) for name, value in (("title", title), ("owner", owner), ("due", due))
    }
    risk = get_risk(session, risk_ref)
    if risk.status == "closed":
        raise InvalidInput(f"{risk.ref} is closed; actions cannot be added to a closed risk")
    action = Action(
        id=allocate_id(session, "A"),
        risk_id=risk.id,
        status="open",
        created_at=ctx.now,
        created_by=ctx.actor,
        updated_at=ctx.now,
        updated_by=ctx.actor,
        **fields,
    )
    session.add(action)
    session.flush()
    _log(session, ctx, action, "action.add", None, None)
    return action


def _check_version(action: Action, expect_version: int | None) -> None:
    if expect_version is not None and action.version != expect_version:
        raise StaleVersion(
            f"{action.ref} was changed by {action.updated_by} at {action.updated_at:%Y-%m-%d %H:%M:%S} UTC "
            f"(now version {action.version}, you expected {expect_version}); nothing was saved: "
            f"run `riskreg action show {action.ref}` and try again"
        )


def update_action(
    session: Session,
    ctx: Context,
    ref: str,
    values: Mapping[str, Any],
    reason: str | None = None,
    expect_version: int | None = None,
) -> Action:
    """Change an action's status, due date, owner or title; anything but marking it done needs a reason."""
    unknown = sorted(set(values) - set(UPDATABLE))
    if unknown:
        raise InvalidInput(f"cannot update {', '.join(unknown)} of an action")
    checked = {name: _CHECKS[name](value) for name, value in values.items() if value is not None}
    text = _text("reason", reason, limit=5000)
    action = get_action(session, ref)
    _check_version(action, expect_version)
    changes = {name: value for name, value in checked.items() if getattr(action, name) != value}
    if not changes:
        raise InvalidInput(f"{action.ref}: nothing to change (the values given are the current ones)")
    if changes != {"status": "done"} and not text:
        raise InvalidInput(
            "reason: required to cancel, reopen or re-plan an action (say why, for the audit trail); "
            "marking it done needs none"
        )
    risk = get_risk(session, f"R-{action.risk_id}")
    if risk.status == "closed" and (set(changes) != {"status"} or changes["status"] not in CLOSING_STATUSES):
        raise InvalidInput(f"{risk.ref} is closed; its actions can only be marked done or cancelled")
    before = action_snapshot(action)
    for name, value in changes.items():
        setattr(action, name, value)
    action.updated_at, action.updated_by = ctx.now, ctx.actor
    session.flush()  # bumps the version (and fails if another writer got there first)
    _log(session, ctx, action, "action.update", before, text)
    return action
