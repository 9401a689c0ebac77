"""Governed configuration (schema 0011): settings kept in the database, changed with a reason and audited.

The governed keys are ``organisation``, ``currency``, ``citizen_hour_value``,
``appetite_statement``, ``categories``, ``ratings.<band>``, ``appetite.<category>`` (and
``appetite.default``) and ``review_days.<rating>``. A register's configuration is the
defaults, then riskreg.toml (local keys, and any governed key still there), then the
database's governed values: a governed key set in the database wins over the same key in the
file, whose value is then ignored (``config show`` says so).
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from riskreg import audit
from riskreg.config import (
    GOVERNED_KEYS,
    GOVERNED_TABLES,
    RATINGS,
    Config,
    flatten_governed,
    merged_config,
    read_config_file,
)
from riskreg.errors import ConfigError, InvalidInput
from riskreg.models import Event, Setting
from riskreg.records import category_refusal as category_refusal  # defined apart for ORM-free risk add

SCOPE = "config"
ACTION = "config.set"
UNSET_ACTION = "config.unset"
_SCALARS = ("organisation", "currency", "citizen_hour_value", "appetite_statement", "categories")
_INTEGER_TABLES = {"ratings": 25, "appetite": 25, "review_days": 3660}


def stored(session: Session) -> dict[str, Any]:
    """Return the database's governed settings as {flat key: value}."""
    return {row.key: json.loads(row.value) for row in session.scalars(select(Setting).order_by(Setting.key))}


def _quoted(key: str) -> str:
    """A key as typed, for a message: quoted and escaped when it holds a line break or an invisible character."""
    return key if key.isprintable() else repr(key)


def normalise_key(key: str) -> str:
    """Return a governed key in its stored form, or raise InvalidInput with a did-you-mean."""
    text = key.strip()
    top, dot, leaf = text.partition(".")
    if not dot and top in _SCALARS:
        return top
    if dot and top in GOVERNED_TABLES and leaf.strip():
        leaf = leaf.strip().lower()
        if top in ("ratings", "review_days"):
            leaf = leaf.replace("_", " ")
            if leaf not in RATINGS:
                hint = difflib.get_close_matches(leaf, RATINGS, n=1)
                tail = (
                    f"; did you mean '{top}.{hint[0]}'?"
                    if hint
                    else f"; expected one of {', '.join(RATINGS)}"
                )
                raise InvalidInput(f"{_quoted(key)}: unknown key{tail}")
        return f"{top}.{leaf}"
    known = [
        *_SCALARS,
        *(f"{t}.{r}" for t in ("ratings", "review_days") for r in RATINGS),
        "appetite.default",
    ]
    hint = difflib.get_close_matches(text, known, n=1)
    tables = difflib.get_close_matches(top, GOVERNED_TABLES, n=1)
    if dot and leaf.strip() and tables and not hint:
        hint = [f"{tables[0]}.{leaf.strip().lower()}"]
    hint = hint or difflib.get_close_matches(top, GOVERNED_KEYS, n=1)
    if hint:
        tail = f"; did you mean '{hint[0]}'?"
    else:
        tail = "; governed keys: " + ", ".join(
            [*_SCALARS, "ratings.<band>", "appetite.<category>", "review_days.<rating>"]
        )
    local = (
        " (a local setting: it stays in riskreg.toml)"
        if top in ("check", "srm_threshold", "missing_values")
        else ""
    )
    raise InvalidInput(f"{_quoted(key)}: not a governed key{local}{tail if not local else ''}")


def parse_value(key: str, text: str) -> Any:
    """Turn the command line's VALUE into the setting's value (validated later, as riskreg.toml is)."""
    top = key.partition(".")[0]
    if top in _INTEGER_TABLES:
        try:
            return int(text.strip())
        except ValueError:
            return text
    if top == "citizen_hour_value":
        try:
            number = float(text.strip())
        except ValueError:
            return text
        return int(number) if number.is_integer() and "." not in text else number
    if top == "categories":
        return [part.strip().lower() for part in text.split(",") if part.strip()]
    return text


def _config_for(file_raw: dict[str, Any], governed: dict[str, Any]) -> Config:
    try:
        return merged_config(file_raw, governed, "config")
    except ConfigError as exc:
        raise InvalidInput(str(exc).removeprefix("config: ")) from None


def _require_reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise InvalidInput("reason: must not be empty (say why, for the audit trail)")
    return text


def _write(
    session: Session, actor: str, now: dt.datetime, key: str, value: Any, reason: str
) -> dict[str, Any]:
    row = session.get(Setting, key)
    before = None if row is None else {"key": key, "value": json.loads(row.value), "version": row.version}
    encoded = json.dumps(value, ensure_ascii=False)
    if row is None:
        row = Setting(key=key, value=encoded, version=1, updated_at=now, updated_by=actor)
        session.add(row)
    else:
        row.value, row.version, row.updated_at, row.updated_by = encoded, row.version + 1, now, actor
    session.flush()
    after = {"key": key, "value": value, "version": row.version}
    _record(session, actor, now, ACTION, before, after, reason)
    return after


def _record(
    session: Session,
    actor: str,
    now: Any,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    reason: str | None,
) -> None:
    """Record a change of the governed settings as an audit event (config.set or config.unset)."""
    audit.record(
        session,
        actor=actor,
        action=action,
        entity="config",
        entity_id=SCOPE,
        scope=SCOPE,
        before=before,
        after=after,
        reason=reason,
        at=now,
    )


def set_value(
    session: Session, ctx: Any, config_file: Path | None, key: str, value: Any, reason: str | None
) -> dict[str, Any]:
    """Set one governed key (validated as riskreg.toml is) and record ``config.set``, in the caller's transaction."""
    key = normalise_key(key)
    reason = _require_reason(reason)
    if isinstance(value, str):
        value = parse_value(key, value)
    governed = stored(session)
    if governed.get(key) == value:
        raise InvalidInput(f"{key}: already {json.dumps(value, ensure_ascii=False)}; nothing to change")
    governed[key] = value
    _config_for(read_config_file(config_file), governed)
    return _write(session, ctx.actor, ctx.now, key, value, reason)


def unset_value(
    session: Session, ctx: Any, config_file: Path | None, key: str, reason: str | None
) -> dict[str, Any]:
    """Remove one governed key from the database, so riskreg.toml's value or the default applies again.

    Records ``config.unset`` with the value before; refused for a key the database does not
    hold, and when what would then apply is invalid with the other settings (bands out of order).
    """
    key = normalise_key(key)
    reason = _require_reason(reason)
    governed = stored(session)
    if key not in governed:
        raise InvalidInput(
            f"{key}: not set in the database (its value comes from riskreg.toml or the default); "
            "nothing to unset"
        )
    del governed[key]
    config = _config_for(read_config_file(config_file), governed)
    row = session.get(Setting, key)
    assert row is not None, "stored() read this row in this transaction"
    before = {"key": key, "value": json.loads(row.value), "version": row.version}
    session.delete(row)
    session.flush()
    in_force = in_force_value(config, key)
    after = {"key": key, "value": None, "in_force": in_force}
    _record(session, ctx.actor, ctx.now, UNSET_ACTION, before, after, reason)
    return {"key": key, "before": before["value"], "in_force": in_force}


def in_force_value(config: Config, key: str) -> Any:
    """Return the value a configuration gives a governed key (``appetite.x`` falls back to the default)."""
    top, _dot, leaf = key.partition(".")
    if top == "ratings":
        return config.bands[leaf]
    if top == "review_days":
        return config.review_days[leaf]
    if top == "appetite":
        return config.appetite_for(leaf)
    value = getattr(config, top)
    return list(value) if isinstance(value, tuple) else value


def overridden_file_values(session: Session, config_file: Path | None) -> dict[str, tuple[Any, Any]]:
    """Return {key: (riskreg.toml's value, the database's)} for governed keys the file sets differently.

    The database's value is in force; the file's is ignored, which a reader of the file
    would not guess.
    """
    if config_file is None:
        return {}
    governed = stored(session)
    in_file = {_stored_form(k): v for k, v in flatten_governed(read_config_file(config_file)).items()}
    return {
        key: (value, governed[key])
        for key, value in sorted(in_file.items())
        if key in governed and governed[key] != value
    }


def _stored_form(key: str) -> str:
    """A file's key as the database stores it (``review_days.very_high`` -> ``review_days.very high``)."""
    try:
        return normalise_key(key)
    except InvalidInput:
        return key


def overridden_note(config_file: Path | None, overridden: Mapping[str, tuple[Any, Any]]) -> str:
    """The plain sentence saying which riskreg.toml values the database overrides ("" for none)."""
    if not overridden:
        return ""
    pairs = ", ".join(
        f"{key} = {json.dumps(mine, ensure_ascii=False)} (in force: {json.dumps(theirs, ensure_ascii=False)})"
        for key, (mine, theirs) in overridden.items()
    )
    return (
        f"{config_file} sets {pairs}; the database's governed settings override these and the "
        "file's values are ignored. Remove them from the file (riskreg config show)"
    )


def add_category(session: Session, ctx: Any, name: str, reason: str) -> dict[str, Any]:
    """Add one category to the governed list (``risk add --new-category``), with its event."""
    current = list(stored(session).get("categories", []))
    return _write(session, ctx.actor, ctx.now, "categories", [*current, name], reason)


def import_file(
    session: Session, ctx: Any, path: Path, reason: str | None, replace: bool = False
) -> list[dict[str, Any]]:
    """Move a riskreg.toml's governed keys into the database: one ``config.set`` event a key.

    Refused when the database already holds governed settings, unless ``replace``.
    """
    reason = _require_reason(reason)
    raw = read_config_file(path)
    flat = {normalise_key(k): v for k, v in flatten_governed(raw).items()}
    if not flat:
        raise InvalidInput(f"{path}: no governed settings to import (only local ones); nothing was written")
    governed = stored(session)
    if governed and not replace:
        raise InvalidInput(
            f"the database already holds governed settings ({', '.join(sorted(governed))}); "
            "nothing was written (use --replace to overwrite them with the file's)"
        )
    try:
        merged_config(raw, {**governed, **flat}, str(path))
    except ConfigError as exc:
        raise InvalidInput(str(exc)) from None
    return [
        _write(session, ctx.actor, ctx.now, key, value, reason)
        for key, value in flat.items()
        if governed.get(key) != value
    ]


def show(session: Session, config: Config, config_file: Path | None) -> list[dict[str, Any]]:
    """Every setting in force: its value and where it comes from (database, riskreg.toml or default)."""
    governed = {row.key: row for row in session.scalars(select(Setting))}
    file_raw = read_config_file(config_file)
    in_file = {_stored_form(k): v for k, v in flatten_governed(file_raw).items()}
    file_name = str(config_file) if config_file else "riskreg.toml"
    values: dict[str, Any] = {
        "organisation": config.organisation,
        "currency": config.currency,
        "citizen_hour_value": config.citizen_hour_value,
        "appetite_statement": config.appetite_statement,
        "categories": list(config.categories),
        **{f"ratings.{r}": config.bands[r] for r in RATINGS},
        **{f"appetite.{c}": v for c, v in sorted(config.appetite.items())},
        **{f"review_days.{r}": config.review_days[r] for r in RATINGS},
    }
    rows = []
    for key, value in values.items():
        row = governed.get(key)
        entry: dict[str, Any] = {"key": key, "value": value, "governed": True}
        if row is not None:
            entry.update(source="database", version=row.version, updated_by=row.updated_by)
            entry["updated_at"] = row.updated_at.isoformat()
            if key in in_file and in_file[key] != json.loads(row.value):
                entry["ignored_file_value"] = in_file[key]
                entry["note"] = (
                    f"{file_name} sets {key} = {json.dumps(in_file[key], ensure_ascii=False)}, which is "
                    f"ignored: the database's {json.dumps(json.loads(row.value), ensure_ascii=False)} "
                    "is in force; remove the key from the file"
                )
            elif key in in_file:
                entry["note"] = f"{file_name} also sets {key} to the same value; remove it from the file"
        elif key in in_file:
            entry["source"] = file_name
            entry["note"] = f"governed: move it into the database with riskreg config import {file_name}"
        else:
            entry["source"] = "default"
        rows.append(entry)
    check = file_raw.get("check", {}) if isinstance(file_raw.get("check"), dict) else {}
    local = {
        "srm_threshold": (config.srm_threshold, "srm_threshold" in file_raw),
        "missing_values": (list(config.missing_values), "missing_values" in file_raw),
        "check.overdue_error_days": (config.overdue_error_days, "overdue_error_days" in check),
        "check.one_sided_ratio": (config.one_sided_ratio, "one_sided_ratio" in check),
        "check.severity": (dict(config.severity), "severity" in check),
    }
    for key, (value, from_file) in local.items():
        rows.append(
            {"key": key, "value": value, "governed": False, "source": file_name if from_file else "default"}
        )
    return rows


def history(session: Session) -> list[dict[str, Any]]:
    """The ``config.set`` and ``config.unset`` events, oldest first (an unset's ``after`` is None)."""
    events = session.scalars(select(Event).where(Event.scope == SCOPE).order_by(Event.seq))
    out = []
    for event in events:
        before = json.loads(event.before) if event.before else None
        after = json.loads(event.after) if event.after else {}
        out.append(
            {
                "seq": event.seq,
                "at": event.at.isoformat(),
                "actor": event.actor,
                "action": event.action,
                "key": after.get("key"),
                "before": None if before is None else before.get("value"),
                "after": after.get("value"),
                **({"in_force": after.get("in_force")} if event.action == UNSET_ACTION else {}),
                "reason": event.reason,
            }
        )
    return out


def governed_of(values: Mapping[str, Any]) -> dict[str, Any]:
    """Only the governed keys of a flat mapping (for callers merging settings)."""
    return {k: v for k, v in values.items() if k.partition(".")[0] in GOVERNED_KEYS}
