"""Risk listings serialised by the database itself.

A listing of thousands of risks is dominated by building Python dicts and encoding them;
SQLite's ``json_object``/``json_group_array`` and PostgreSQL's ``json_build_object``/
``json_agg`` do the same in C. The documents equal ``register.risk_to_dict``'s (a test
compares the two on both backends), which stays the one definition for single risks.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Text, and_, case, cast, func, literal, null, select
from sqlalchemy.sql.elements import ColumnElement

from riskreg.config import RATINGS, Config
from riskreg.errors import InvalidInput
from riskreg.tables import risks

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import Session

    from riskreg.context import Context

SORTS = ("id", "score", "review")


@dataclass(frozen=True)
class RiskFilter:
    """Which risks a listing shows; None means no restriction."""

    side: str | None = None
    mode: str | None = None
    category: str | None = None
    status: str | None = None
    rating: str | None = None
    above_appetite: bool = False


def normalise_rating(text: str) -> str:
    """Return a rating name from user text (``very-high`` and ``very_high`` mean ``very high``)."""
    rating = text.strip().lower().replace("-", " ").replace("_", " ")
    if rating not in RATINGS:
        raise InvalidInput(f"rating: expected one of {', '.join(RATINGS)}, got {text!r}")
    return rating


_T = risks.c
_SCORE = _T.likelihood * _T.impact


class _Spelling:
    """How one backend spells JSON objects, booleans, timestamps and date arithmetic."""

    def __init__(self, dialect_name: str):
        self.postgres = dialect_name == "postgresql"

    def obj(self, *pairs: tuple[str, Any]) -> ColumnElement[Any]:
        args = [item for key, value in pairs for item in (literal(key), value)]
        return func.json_build_object(*args) if self.postgres else func.json_object(*args)

    def boolean(self, condition: ColumnElement[bool]) -> ColumnElement[Any]:
        # SQLite has no boolean type: json('true') embeds a real JSON true
        return condition if self.postgres else case((condition, func.json("true")), else_=func.json("false"))

    def timestamp(self, column: Any) -> ColumnElement[Any]:
        # stored as naive UTC; rendered as register.iso_utc renders it
        if self.postgres:
            return func.to_char(column, literal('YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
        return func.replace(column, " ", "T") + literal("Z")

    def day(self, column: Any) -> ColumnElement[Any]:
        return func.to_char(column, literal("YYYY-MM-DD")) if self.postgres else column

    def day_plus(self, column: Any, days: ColumnElement[Any]) -> ColumnElement[Any]:
        if self.postgres:
            return func.to_char(column + days, literal("YYYY-MM-DD"))
        return func.date(column, literal("+") + cast(days, Text) + literal(" days"))


def _by_rating(score: ColumnElement[Any], config: Config, values: dict[str, Any]) -> ColumnElement[Any]:
    lower = [(score <= config.bands[name], literal(values[name])) for name in RATINGS[:-1]]
    return case(*lower, else_=literal(values[RATINGS[-1]]))


def _rating(score: ColumnElement[Any], config: Config) -> ColumnElement[Any]:
    return _by_rating(score, config, {name: name for name in RATINGS})


def _appetite(config: Config) -> ColumnElement[Any]:
    named = [
        (_T.category == name, literal(value)) for name, value in config.appetite.items() if name != "default"
    ]
    default = literal(config.appetite["default"])
    return case(*named, else_=default) if named else default


def _next_review(s: _Spelling, config: Config) -> ColumnElement[Any]:
    days = func.coalesce(_T.review_days, _by_rating(_SCORE, config, config.review_days))
    return s.day_plus(_T.last_reviewed, days)


def _above_appetite(config: Config) -> ColumnElement[bool]:
    return and_(_T.status == "open", _appetite(config) < _SCORE)


def _tier(s: _Spelling, likelihood: Any, impact: Any, config: Config) -> ColumnElement[Any]:
    score = likelihood * impact
    document = s.obj(
        ("likelihood", likelihood), ("impact", impact), ("score", score), ("rating", _rating(score, config))
    )
    return case((and_(likelihood.is_not(None), impact.is_not(None)), document), else_=null())


def _document(s: _Spelling, config: Config) -> ColumnElement[Any]:
    return s.obj(
        ("id", literal("R-") + cast(_T.id, Text)),
        ("title", _T.title),
        ("description", _T.description),
        ("side", _T.side),
        ("mode", _T.mode),
        ("category", _T.category),
        ("owner", _T.owner),
        ("status", _T.status),
        ("treatment", _T.treatment),
        ("likelihood", _T.likelihood),
        ("impact", _T.impact),
        ("score", _SCORE),
        ("rating", _rating(_SCORE, config)),
        ("inherent", _tier(s, _T.inherent_likelihood, _T.inherent_impact, config)),
        ("target", _tier(s, _T.target_likelihood, _T.target_impact, config)),
        ("above_appetite", s.boolean(_above_appetite(config))),
        ("appetite", _appetite(config)),
        ("review_days", _T.review_days),
        ("last_reviewed", s.day(_T.last_reviewed)),
        # a closed risk is not reviewed again; sorting by review still uses the date
        ("next_review", case((_T.status == "closed", null()), else_=_next_review(s, config))),
        ("version", _T.version),
        ("created_at", s.timestamp(_T.created_at)),
        ("created_by", _T.created_by),
        ("updated_at", s.timestamp(_T.updated_at)),
        ("updated_by", _T.updated_by),
        ("closed_at", case((_T.closed_at.is_(None), null()), else_=s.timestamp(_T.closed_at))),
        ("gaps_in_control", _T.gaps_in_control),
        ("gaps_in_assurance", _T.gaps_in_assurance),
    )


def _conditions(where: RiskFilter, config: Config) -> list[ColumnElement[bool]]:
    conditions = [
        column == value
        for column, value in ((_T.side, where.side), (_T.mode, where.mode), (_T.status, where.status))
        if value is not None
    ]
    if where.category is not None:
        conditions.append(_T.category == where.category.lower())
    if where.rating is not None:
        conditions.append(_rating(_SCORE, config) == normalise_rating(where.rating))
    if where.above_appetite:
        conditions.append(_above_appetite(config))
    return conditions


def _order(sort: str, s: _Spelling, config: Config) -> list[Any]:
    if sort not in SORTS:
        raise InvalidInput(f"sort: expected one of {', '.join(SORTS)}, got {sort!r}")
    return {"score": [_SCORE.desc(), _T.id], "review": [_next_review(s, config), _T.id], "id": [_T.id]}[sort]


def _dialect_name(session: Session | Connection) -> str:
    bind = getattr(session, "dialect", None) or session.get_bind().dialect  # type: ignore[union-attr]
    return str(bind.name)


def list_risks_json(
    session: Session | Connection, config: Config, where: RiskFilter | None = None, sort: str = "id"
) -> str:
    """Return the JSON array of the risks matching a filter, in the order ``register.list_risks`` gives."""
    where = where or RiskFilter()
    s = _Spelling(_dialect_name(session))
    position = func.row_number().over(order_by=_order(sort, s, config)).label("position")
    rows = select(_document(s, config).label("doc"), position).where(*_conditions(where, config)).subquery()
    if s.postgres:
        query = select(func.coalesce(cast(_ordered_agg(rows), Text), literal("[]")))
    else:
        # json_group_array follows the order rows arrive in; the inner ORDER BY fixes it
        ordered = select(rows.c.doc).order_by(rows.c.position).subquery()
        query = select(func.json_group_array(func.json(ordered.c.doc)))
    return session.execute(query).scalar_one()


def due_risks(
    session: Session | Connection, config: Config, horizon: str
) -> list[tuple[dict[str, Any], str]]:
    """Return (document, next review day) of the open risks due by ``horizon`` (YYYY-MM-DD), most overdue first.

    The documents are ``risk_to_dict``'s, built and filtered by the database, so a register
    of thousands of risks is not loaded as objects to find the few that are due.
    """
    s = _Spelling(_dialect_name(session))
    when = _next_review(s, config)
    query = (
        select(_document(s, config), when)
        .where(*_conditions(RiskFilter(status="open"), config), when <= literal(horizon))
        .order_by(when, _T.id)
    )
    return [(doc if isinstance(doc, dict) else json.loads(doc), day) for doc, day in session.execute(query)]


def _ordered_agg(rows: Any) -> ColumnElement[Any]:
    from sqlalchemy.dialects.postgresql import aggregate_order_by

    return func.json_agg(aggregate_order_by(rows.c.doc, rows.c.position))


@dataclass(frozen=True)
class DueReview:
    """An open risk whose next review falls on or before a date."""

    risk: dict[str, Any]
    days_overdue: int

    def to_dict(self) -> dict[str, Any]:
        return {**self.risk, "days_overdue": self.days_overdue}


def due_reviews(session: Session | Connection, ctx: Context, within_days: int = 0) -> list[DueReview]:
    """Return open risks due for review within ``within_days`` of today, most overdue first.

    The database finds them and builds their documents (``due_risks``).
    """
    horizon = ctx.today + dt.timedelta(days=within_days)
    found = due_risks(session, ctx.config, horizon.isoformat())
    return [DueReview(doc, (ctx.today - dt.date.fromisoformat(day)).days) for doc, day in found]
