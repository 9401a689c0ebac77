"""``risk show`` and ``risk add`` in SQLAlchemy Core: one risk read or written without the ORM.

Importing the ORM and mapping ``riskreg.models`` takes about 0.1 s, a quarter of these
commands' start-up. Here they run on a plain connection (``Database.connect`` to read,
``Database.begin`` to write) with the tables of ``riskreg.tables``, and print what the ORM
functions of ``riskreg.register`` would: the documents come from ``riskreg.records`` and
the event from ``riskreg.chain``, which both paths share. Identifier counters and the
category check are here too, and ``riskreg.register`` uses them on its sessions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, insert, select, update

from riskreg import chain
from riskreg.errors import InvalidInput, NotFound
from riskreg.records import (
    action_to_dict,
    category_refusal,
    control_to_dict,
    evidence_to_dict,
    new_risk_fields,
    new_risk_row,
    parse_ref,
    review_to_dict,
    risk_to_dict,
    snapshot,
)
from riskreg.tables import actions, controls, counters, evidence, reviews, risks, settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import Session

    from riskreg.config import Config
    from riskreg.context import Context


# --- identifiers ---------------------------------------------------------------------------


def _counter(executor: Session | Connection, series: str) -> int | None:
    """Return the next number of a series, locking its row (None: the series has no row yet)."""
    query = select(counters.c.value).where(counters.c.name == series).with_for_update()
    return executor.execute(query).scalar()


def _set_counter(executor: Session | Connection, series: str, known: bool, value: int) -> None:
    """Store the next number of a series: update its row, or insert the first one."""
    if known:
        executor.execute(update(counters).where(counters.c.name == series).values(value=value))
    else:
        executor.execute(insert(counters).values(name=series, value=value))


def allocate_id(executor: Session | Connection, series: str, at_least: int = 1) -> int:
    """Take the next number of an identifier series; numbers are never handed out twice."""
    current = _counter(executor, series)
    number = max(1 if current is None else current, at_least)
    _set_counter(executor, series, current is not None, number + 1)
    return number


def reserve_id(executor: Session | Connection, series: str, number: int) -> None:
    """Record that an explicitly given number is used, so later allocations skip past it."""
    current = _counter(executor, series)
    if current is None or current <= number:
        _set_counter(executor, series, current is not None, number + 1)


# --- categories ----------------------------------------------------------------------------


def category_allowed(executor: Session | Connection, config: Config, category: str) -> bool:
    """Whether a category may be used: the register has no list, or it is on it.

    The list is the configuration's, or the one stored in ``settings`` now (a category added
    earlier in this transaction: an import's second row of a new category).
    """
    listed = config.categories
    if not listed or category in listed:
        return True
    query = select(settings.c.value).where(settings.c.key == "categories")
    stored = executor.execute(query).scalar()
    return stored is not None and category in json.loads(stored)


# --- reading -------------------------------------------------------------------------------


def _of_risk(connection: Connection, table: Table, risk_id: int) -> list[Any]:
    """Return the rows of a table that belong to one risk, oldest first."""
    return list(connection.execute(select(table).where(table.c.risk_id == risk_id).order_by(table.c.id)))


def show_risk(connection: Connection, ctx: Context, ref: str) -> dict[str, Any]:
    """Return what ``risk show`` prints: the risk with its controls, reviews, evidence and actions."""
    number = parse_ref(ref, "R")
    risk = connection.execute(select(risks).where(risks.c.id == number)).first()
    if risk is None:
        raise NotFound(f"no risk R-{number}")
    data = risk_to_dict(risk, ctx.config)
    data["controls"] = [control_to_dict(c) for c in _of_risk(connection, controls, number)]
    data["reviews"] = [review_to_dict(r) for r in _of_risk(connection, reviews, number)]
    data["evidence"] = [evidence_to_dict(e) for e in _of_risk(connection, evidence, number)]
    data["actions"] = [action_to_dict(a, ctx.today) for a in _of_risk(connection, actions, number)]
    return data


# --- writing -------------------------------------------------------------------------------


def add_risk(connection: Connection, ctx: Context, values: Mapping[str, Any]) -> dict[str, Any]:
    """Register a new risk as ``register.add_risk`` does, and return its stored values.

    The category must be on the register's list when it has one (adding it to the list,
    ``--new-category``, is a governed setting's change: ``register.add_risk`` does that).
    The ``risk.add`` event is ``chain.following``'s, as the ORM path writes it.
    """
    fields = new_risk_fields(values)
    if not category_allowed(connection, ctx.config, fields["category"]):
        raise InvalidInput(category_refusal(fields["category"], ctx.config.categories))
    number = allocate_id(connection, "R")
    row = {**dict.fromkeys(risks.columns.keys()), **new_risk_row(fields, ctx, number), "version": 1}
    connection.execute(insert(risks).values(row))
    chain.append(connection, **chain.change(ctx, "risk.add", f"R-{number}", None, snapshot(row)))
    return row
