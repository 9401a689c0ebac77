"""The risk register: adding, listing, re-scoring, closing and importing risks, and their controls."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from riskreg import audit
from riskreg.config import Config
from riskreg.context import Context as Context  # re-exported: defined apart for the ORM-free commands
from riskreg.errors import InvalidInput, NotFound, StaleVersion
from riskreg.listing import SORTS as SORTS  # re-exported, as are RiskFilter and normalise_rating
from riskreg.listing import RiskFilter as RiskFilter
from riskreg.listing import normalise_rating as normalise_rating
from riskreg.models import (
    ASSURANCE_LINES,
    CONTROL_EFFECTIVENESS,
    CONTROL_STATUSES,
    Control,
    Event,
    Risk,
)

# Defined apart from the ORM (riskreg.records, riskreg.riskcore) for `risk show` and `risk
# add`, and re-exported: the register's callers import them from here.
from riskreg.records import DEFAULT_CATEGORY as DEFAULT_CATEGORY
from riskreg.records import MAX_TITLE as MAX_TITLE
from riskreg.records import SNAPSHOT_FIELDS as SNAPSHOT_FIELDS
from riskreg.records import _check_target_pair, category_refusal, new_risk_fields, new_risk_row
from riskreg.records import _choice as _choice
from riskreg.records import _text as _text
from riskreg.records import control_snapshot as control_snapshot
from riskreg.records import control_to_dict as control_to_dict
from riskreg.records import iso_utc as iso_utc
from riskreg.records import parse_ref as parse_ref
from riskreg.records import risk_to_dict as risk_to_dict
from riskreg.records import snapshot as snapshot
from riskreg.records import validate_fields as validate_fields
from riskreg.riskcore import allocate_id as allocate_id
from riskreg.riskcore import category_allowed
from riskreg.riskcore import reserve_id as reserve_id

UPDATABLE_FIELDS = (
    "title",
    "description",
    "side",
    "mode",
    "category",
    "owner",
    "treatment",
    "inherent_likelihood",
    "inherent_impact",
    "target_likelihood",
    "target_impact",
    "review_days",
    "gaps_in_control",
    "gaps_in_assurance",
)
# fields that an empty value clears (the others keep their value when given none)
CLEARABLE_FIELDS = ("description", "owner", "gaps_in_control", "gaps_in_assurance")


# --- presentation --------------------------------------------------------------------------


def _ref(risk: Any) -> str:
    return f"R-{risk.id}"


def next_review(risk: Any, config: Config) -> dt.date:
    """Return when a risk is next due for review: last review plus the days its rating allows."""
    days = risk.review_days or config.review_days_for(config.rating(risk.likelihood * risk.impact))
    return risk.last_reviewed + dt.timedelta(days=days)


def is_above_appetite(risk: Any, config: Config) -> bool:
    """Tell whether an open risk's current score exceeds the appetite of its category."""
    return risk.status == "open" and risk.likelihood * risk.impact > config.appetite_for(risk.category)


# --- reading -------------------------------------------------------------------------------


def get_risk(session: Session, ref: str, with_controls: bool = False) -> Risk:
    """Return the risk named by ``R-<n>``, or raise NotFound."""
    number = parse_ref(ref, "R")
    options = [selectinload(Risk.controls)] if with_controls else []
    risk = session.get(Risk, number, options=options)
    if risk is None:
        raise NotFound(f"no risk R-{number}")
    return risk


def list_risks(
    session: Session, config: Config, where: RiskFilter | None = None, sort: str = "id"
) -> list[Any]:
    """Return the risks matching a filter as read-only rows, sorted by id, score (highest first) or next review.

    Rows (not ORM objects) keep a listing of thousands of risks fast; they have the same
    attribute names as ``Risk`` and work with ``risk_to_dict``.
    """
    where = where or RiskFilter()
    table = Risk.__table__
    query = select(table)
    for column, value in (
        (table.c.side, where.side),
        (table.c.mode, where.mode),
        (table.c.category, where.category and where.category.lower()),
        (table.c.status, where.status),
    ):
        if value is not None:
            query = query.where(column == value)
    risks = list(session.execute(query.order_by(table.c.id)))
    if where.rating is not None:
        rating = normalise_rating(where.rating)
        risks = [r for r in risks if config.rating(r.likelihood * r.impact) == rating]
    if where.above_appetite:
        risks = [r for r in risks if is_above_appetite(r, config)]
    return _sorted(risks, sort, config)


def all_risks(session: Session) -> list[Risk]:
    """Return every risk with its controls loaded, by id (for full exports)."""
    return list(session.scalars(select(Risk).options(selectinload(Risk.controls)).order_by(Risk.id)))


def _sorted(risks: list[Any], sort: str, config: Config) -> list[Any]:
    if sort == "score":
        return sorted(risks, key=lambda r: (-r.likelihood * r.impact, r.id))
    if sort == "review":
        return sorted(risks, key=lambda r: (next_review(r, config), r.id))
    if sort == "id":
        return risks
    raise InvalidInput(f"sort: expected one of {', '.join(SORTS)}, got {sort!r}")


def risk_history(session: Session, ref: str) -> list[Event]:
    """Return every event about a risk and its controls, oldest first."""
    risk = get_risk(session, ref)
    return audit.history(session, risk.ref)


# --- writing -------------------------------------------------------------------------------


def add_risk(
    session: Session,
    ctx: Context,
    values: Mapping[str, Any],
    number: int | None = None,
    new_category: bool = False,
) -> Risk:
    """Register a new risk; its inherent and current tiers start at the given likelihood and impact.

    Once the register has a category list (``config set categories``), the category must be
    on it; ``new_category`` adds it to the list instead (a ``config.set`` event).
    """
    fields = new_risk_fields(values)
    _check_category(session, ctx, fields["category"], new_category)
    if number is None:
        number = allocate_id(session, "R")
    else:
        reserve_id(session, "R", number)
    risk = Risk(**new_risk_row(fields, ctx, number))
    session.add(risk)
    session.flush()
    audit.log(session, ctx, "risk.add", risk.ref, None, snapshot(risk))
    return risk


def _check_category(session: Session, ctx: Context, category: str, new_category: bool = False) -> None:
    """Refuse a category not on the register's governed list (an empty list allows any)."""
    if category_allowed(session, ctx.config, category):
        return
    if not new_category:
        raise InvalidInput(category_refusal(category, ctx.config.categories))
    from riskreg import settings

    settings.add_category(session, ctx, category, f"new category '{category}' (risk add --new-category)")


def _check_version(risk: Risk, expect_version: int | None) -> None:
    if expect_version is not None and risk.version != expect_version:
        raise StaleVersion(
            f"{risk.ref} was changed by {risk.updated_by} at {risk.updated_at:%Y-%m-%d %H:%M:%S} UTC "
            f"(now version {risk.version}, you expected {expect_version}); nothing was saved: "
            f"run `riskreg risk show {risk.ref}` and try again"
        )


def _require_reason(reason: str | None) -> str:
    text = _text("reason", reason, optional=True, limit=5000)
    if not text:
        raise InvalidInput("reason: must not be empty (say why, for the audit trail)")
    return text


def apply_change(
    session: Session,
    ctx: Context,
    risk: Risk,
    changes: dict[str, Any],
    action: str,
    reason: str,
    extra: dict[str, Any] | None = None,
) -> Risk:
    """Change stored fields of a risk and log the change (before, after, reason) in the same transaction."""
    before = snapshot(risk)
    for name, value in changes.items():
        setattr(risk, name, value)
    risk.updated_at, risk.updated_by = ctx.now, ctx.actor
    session.flush()  # bumps the version (and fails if another writer got there first)
    audit.log(session, ctx, action, risk.ref, before, {**snapshot(risk), **(extra or {})}, reason)
    return risk


def _open_risk(session: Session, ref: str, expect_version: int | None) -> Risk:
    risk = get_risk(session, ref)
    _check_version(risk, expect_version)
    if risk.status == "closed":
        raise InvalidInput(f"{risk.ref} is closed; closed risks cannot be changed")
    return risk


def update_risk(
    session: Session,
    ctx: Context,
    ref: str,
    values: Mapping[str, Any],
    reason: str | None,
    expect_version: int | None = None,
) -> Risk:
    """Change descriptive fields of a risk (not its current score: that is ``rescore``)."""
    reason = _require_reason(reason)
    unknown = sorted(set(values) - set(UPDATABLE_FIELDS))
    if unknown:
        raise InvalidInput(f"cannot update {', '.join(unknown)} (use rescore for likelihood and impact)")
    risk = _open_risk(session, ref, expect_version)
    changes = {k: v for k, v in validate_fields(values).items() if v is not None or k in CLEARABLE_FIELDS}
    changes = {k: v for k, v in changes.items() if getattr(risk, k) != v}
    if not changes:
        raise InvalidInput(f"{risk.ref}: nothing to change (the values given are the current ones)")
    if "category" in changes:
        _check_category(session, ctx, changes["category"])
    _check_target_pair(
        changes.get("target_likelihood", risk.target_likelihood),
        changes.get("target_impact", risk.target_impact),
    )
    return apply_change(session, ctx, risk, changes, "risk.update", reason)


def rescore_risk(
    session: Session,
    ctx: Context,
    ref: str,
    likelihood: int,
    impact: int,
    reason: str | None,
    expect_version: int | None = None,
    evidence: dict[str, Any] | None = None,
) -> Risk:
    """Set a risk's current likelihood and impact, with the reason (and any pilot evidence) recorded."""
    reason = _require_reason(reason)
    scores = validate_fields({"likelihood": likelihood, "impact": impact})
    risk = _open_risk(session, ref, expect_version)
    extra = {"evidence": evidence} if evidence is not None else None
    return apply_change(session, ctx, risk, scores, "risk.rescore", reason, extra)


def close_risk(
    session: Session, ctx: Context, ref: str, reason: str | None, expect_version: int | None = None
) -> Risk:
    """Close a risk; it stays in the register and its history."""
    reason = _require_reason(reason)
    risk = _open_risk(session, ref, expect_version)
    risk.closed_at = ctx.now
    return apply_change(session, ctx, risk, {"status": "closed"}, "risk.close", reason)


# --- controls ------------------------------------------------------------------------------


def parse_date(name: str, text: str | dt.date | None) -> dt.date | None:
    """Return a date from ISO text (YYYY-MM-DD); raise InvalidInput naming the option otherwise."""
    if text is None or isinstance(text, dt.date):
        return text
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{name}: expected a date as YYYY-MM-DD, got {text!r}") from None


def get_control(session: Session, ref: str) -> Control:
    """Return the control named by ``C-<n>``, or raise NotFound."""
    number = parse_ref(ref, "C")
    control = session.get(Control, number)
    if control is None:
        raise NotFound(f"no control C-{number}")
    return control


def normalise_effectiveness(value: Any) -> str:
    """Return a control effectiveness from user text (``partially-effective`` means ``partially effective``)."""
    text = " ".join(str(value or "").strip().lower().replace("-", " ").replace("_", " ").split())
    if text not in CONTROL_EFFECTIVENESS:
        raise InvalidInput(
            f"effectiveness: expected one of {', '.join(CONTROL_EFFECTIVENESS)}, got {value!r}"
        )
    return text


def _check_assurance(assurance: str | None, line: str | None) -> None:
    # a line of assurance says who gives the assurance: without its source it says nothing
    if line is not None and assurance is None:
        raise InvalidInput("line: an assurance line needs its source; give --assurance TEXT too")


_CONTROL_CHECKS: dict[str, Any] = {
    "status": lambda v: _choice("status", v, CONTROL_STATUSES),
    "owner": lambda v: _text("owner", v, limit=200),
    "due": lambda v: parse_date("due", v),
    "description": lambda v: _text("description", v, optional=False),
    "citizen": bool,
    "effectiveness": normalise_effectiveness,
    "assurance": lambda v: _text("assurance", v, limit=5000),
    "assurance_line": lambda v: _choice("line", v, ASSURANCE_LINES, optional=True),
}


def add_control(
    session: Session,
    ctx: Context,
    risk_ref: str,
    description: str,
    owner: str | None = None,
    status: str = "planned",
    due: str | dt.date | None = None,
    citizen: bool = False,
    effectiveness: str = "not assessed",
    assurance: str | None = None,
    assurance_line: str | None = None,
) -> Control:
    """Add a control (a measure in place or planned) to an open risk, with how well it works and who assures it."""
    text = _text("description", description, optional=False)
    given = {
        "owner": owner,
        "status": status,
        "due": due,
        "effectiveness": effectiveness,
        "assurance": assurance,
        "assurance_line": assurance_line,
    }
    fields = {name: _CONTROL_CHECKS[name](value) for name, value in given.items()}
    _check_assurance(fields["assurance"], fields["assurance_line"])
    risk = _open_risk(session, risk_ref, None)
    control = Control(
        id=allocate_id(session, "C"),
        risk_id=risk.id,
        description=text,
        citizen=bool(citizen),
        created_at=ctx.now,
        created_by=ctx.actor,
        updated_at=ctx.now,
        updated_by=ctx.actor,
        **fields,
    )
    session.add(control)
    session.flush()
    _record_control(session, ctx, control, "control.add", None, None)
    return control


def update_control(
    session: Session,
    ctx: Context,
    ref: str,
    values: Mapping[str, Any],
    reason: str | None = None,
) -> Control:
    """Change a control's status, owner, due date, description, effectiveness or assurance.

    An empty ``assurance`` or ``assurance_line`` clears it.
    """
    control = get_control(session, ref)
    unknown = sorted(set(values) - set(_CONTROL_CHECKS))
    if unknown:
        raise InvalidInput(f"cannot update {', '.join(unknown)} of a control")
    changes = {k: _CONTROL_CHECKS[k](v) for k, v in values.items() if v is not None}
    changes = {k: v for k, v in changes.items() if getattr(control, k) != v}
    if not changes:
        raise InvalidInput(f"{control.ref}: nothing to change (the values given are the current ones)")
    _check_assurance(
        changes.get("assurance", control.assurance), changes.get("assurance_line", control.assurance_line)
    )
    reason = _text("reason", reason)
    before = control_snapshot(control)
    for name, value in changes.items():
        setattr(control, name, value)
    control.updated_at, control.updated_by = ctx.now, ctx.actor
    session.flush()
    _record_control(session, ctx, control, "control.update", before, reason)
    return control


def _record_control(
    session: Session, ctx: Context, control: Control, action: str, before: dict | None, reason: str | None
) -> None:
    audit.log(
        session,
        ctx,
        action,
        control.ref,
        before,
        control_snapshot(control),
        reason,
        scope=f"R-{control.risk_id}",
    )


def event_to_dict(event: Event) -> dict[str, Any]:
    """Return an audit event as a JSON-ready dict (before/after decoded)."""
    return {
        "seq": event.seq,
        "at": iso_utc(event.at),
        "actor": event.actor,
        "entered_by": event.entered_by,
        "action": event.action,
        "entity": event.entity,
        "entity_id": event.entity_id,
        "reason": event.reason,
        "before": json.loads(event.before) if event.before else None,
        "after": json.loads(event.after) if event.after else None,
        "hash": event.hash,
    }


def changed_fields(event: Event) -> dict[str, tuple[Any, Any]]:
    """Return {field: (before, after)} for the fields an event changed."""
    d = event_to_dict(event)
    before, after = d["before"] or {}, d["after"] or {}
    keys: Iterable[str] = sorted(set(before) | set(after))
    return {
        k: (before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k) and k != "version"
    }
