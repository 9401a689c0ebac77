"""``riskreg config``: the governed settings kept in the database (show, set, unset, history, import)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from riskreg.cli.output import emit, json_option, table


@click.group("config")
def config_group() -> None:
    """Show and change the register's governed settings (appetite, categories, bands, review days...).

    Governed settings live in the database: every change needs a reason and is an audit
    event (config.set). riskreg.toml keeps local settings (check severities, srm_threshold,
    missing_values); a governed key still in it applies until the database sets the same key.

    \b
    Example:
      riskreg config show
      riskreg config set appetite.safeguarding 8 --reason "Board, 3 Dec"
      riskreg config unset appetite.safeguarding --reason "Back to the default appetite"
      riskreg config history
    """


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "(any)"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "(none)"
    return str(value)


def _show_text(rows: list[dict[str, Any]]) -> str:
    lines = table(
        ["key", "value", "source"],
        [(r["key"], _shown(r["value"]), r["source"]) for r in rows],
        clip_last=40,
    )
    notes = [f"note: {r['note']}" for r in rows if r.get("note")]
    return "\n".join([lines, *notes])


def _after_shown(row: dict[str, Any]) -> str:
    # an unset key has no stored value after: show what applies instead
    if row["action"] == "config.unset":
        return f"(unset: {_shown(row['in_force'])})"
    return _shown(row["after"])


@config_group.command("show")
@json_option
@click.pass_obj
def config_show(app, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """List every setting in force and where it comes from (database, riskreg.toml or default).

    \b
    Example:
      riskreg config show --json
    """
    from riskreg import settings

    database = app.database()
    with database.read() as session:
        rows = settings.show(session, database.config, database.config_file)
    emit(rows, as_json, _show_text)


@config_group.command("set")
@click.argument("key")
@click.argument("value")
@click.option("--reason", required=True, help="Why, for the audit trail.")
@json_option
@click.pass_obj
def config_set(app, key: str, value: str, reason: str, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Set one governed key, validated as riskreg.toml is, and record it (config.set).

    Keys: organisation, currency, citizen_hour_value, appetite_statement, categories
    (comma-separated; empty allows any category), ratings.<band>, appetite.<category>
    (appetite.default), review_days.<rating>.

    \b
    Example:
      riskreg config set appetite.safeguarding 8 --reason "Board decision, 3 Dec"
      riskreg config set categories "safeguarding,finance,data" --reason "Agreed list"
    """
    from riskreg import settings

    ctx = app.context()
    database = app.database()
    with database.write() as session:
        result = settings.set_value(session, ctx, database.config_file, key, value, reason)
    emit(result, as_json, lambda r: f"set {r['key']} = {_shown(r['value'])} (version {r['version']})")


@config_group.command("unset")
@click.argument("key")
@click.option("--reason", required=True, help="Why, for the audit trail.")
@json_option
@click.pass_obj
def config_unset(app, key: str, reason: str, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Remove a governed key from the database, so riskreg.toml's value or the default applies again.

    Recorded as config.unset with the value before; refused for a key the database does
    not hold.

    \b
    Example:
      riskreg config unset appetite.safeguarding --reason "Board: use the default appetite"
    """
    from riskreg import settings

    ctx = app.context()
    database = app.database()
    with database.write() as session:
        result = settings.unset_value(session, ctx, database.config_file, key, reason)
    emit(
        result,
        as_json,
        lambda r: f"unset {r['key']} (was {_shown(r['before'])}); in force now: {_shown(r['in_force'])}",
    )


@config_group.command("history")
@json_option
@click.pass_obj
def config_history(app, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """List every change of a governed setting (set, unset, import), oldest first.

    \b
    Example:
      riskreg config history
    """
    from riskreg import settings

    with app.database().read() as session:
        rows = settings.history(session)
    emit(
        rows,
        as_json,
        lambda rs: table(
            ["at", "actor", "key", "before", "after", "reason"],
            [
                (
                    r["at"][:19],
                    r["actor"],
                    r["key"],
                    "" if r["before"] is None else _shown(r["before"]),
                    _after_shown(r),
                    r["reason"],
                )
                for r in rs
            ],
        ),
    )


@config_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--reason", required=True, help="Why, for the audit trail.")
@click.option("--replace", is_flag=True, help="Overwrite governed settings the database already holds.")
@json_option
@click.pass_obj
def config_import(app, file: Path, reason: str, replace: bool, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Move a riskreg.toml's governed keys into the database, once (one config.set event a key).

    Refused when the database already holds governed settings, unless --replace. The file
    is not changed: remove the governed keys from it afterwards (config show notes them).

    \b
    Example:
      riskreg config import riskreg.toml --reason "Settings now governed in the register"
    """
    from riskreg import settings

    ctx = app.context()
    with app.database().write() as session:
        rows = settings.import_file(session, ctx, file, reason, replace=replace)
    emit(rows, as_json, lambda rs: f"imported {len(rs)} governed setting(s) from {file}")


COMMANDS = (config_group,)
