"""``riskreg db ...`` and ``riskreg audit ...``: the schema and the audit chain."""

from __future__ import annotations

import click

from riskreg.cli.output import emit, fields, json_option


@click.group("db")
def db_group() -> None:
    """Create, inspect and upgrade the database schema.

    \b
    Example:
      riskreg db status
      riskreg db upgrade
    """


@db_group.command("status")
@json_option
@click.pass_obj
def db_status(app, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Show the database URL, backend and schema revision.

    \b
    Example:
      riskreg --db postgresql+psycopg://localhost/risks db status
    """
    from riskreg.db import schema_status

    status = schema_status(app.database(check_schema=False))
    emit(status, as_json, lambda s: fields([(k.replace("_", " "), v) for k, v in s.items()]))


@db_group.command("upgrade")
@json_option
@click.pass_obj
def db_upgrade(app, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Create the schema, or upgrade an older one to this riskreg's revision.

    \b
    Example:
      riskreg db upgrade
    """
    from riskreg.db import upgrade

    before, after = upgrade(app.database(check_schema=False))
    result = {"from": before, "to": after, "changed": before != after}
    emit(
        result,
        as_json,
        lambda r: (
            f"schema upgraded from {r['from'] or 'empty'} to {r['to']}"
            if r["changed"]
            else f"schema already at {r['to']}"
        ),
    )


@click.group("audit")
def audit_group() -> None:
    """Check the tamper-evident audit trail.

    \b
    Example:
      riskreg audit verify
    """


@audit_group.command("verify")
@json_option
@click.pass_obj
def audit_verify(app, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Check the hash chain of every event, and that the register holds what the events say.

    Exit 1 at the first broken link of the chain, or if a risk, control, pilot or data file
    differs from the last state its events recorded (a field changed, a row no event
    created, a recorded row gone): the register was edited outside riskreg.

    \b
    Example:
      riskreg audit verify
    """
    from riskreg import audit, trail

    with app.database().read() as session:
        chain = audit.verify(session)
        state = trail.check_state(session)
    if as_json:
        emit({**chain.to_dict(), "ok": chain.ok and state.ok, "state": state.to_dict()}, True, str)
    else:
        if chain.ok:
            click.echo(f"audit chain intact: {_count(chain.events, 'event')}")
        if state.ok:
            click.echo(
                f"register matches the trail: {_count(state.risks, 'risk')}, "
                f"{_count(state.controls, 'control')}, {_count(state.pilots, 'pilot')}, "
                f"{_count(state.data_files, 'data file')}"
            )
        for mismatch in state.mismatches:
            click.echo(mismatch.text())
    if not chain.ok:
        raise click.ClickException(f"audit chain broken at event {chain.broken_at}: {chain.problem}")
    if not state.ok:
        differences = _count(len(state.mismatches), "difference")
        raise click.ClickException(
            f"the register was edited outside riskreg: {differences} from the audit trail"
        )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


COMMANDS = (db_group, audit_group)
