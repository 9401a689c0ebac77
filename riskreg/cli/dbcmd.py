"""``riskreg db ...`` and ``riskreg audit ...``: the schema and the audit chain."""

from __future__ import annotations

import click

from riskreg.cli.output import emit, fields, json_option


@click.group("db")
def db_group() -> None:
    """Inspect and upgrade a register's database schema (`riskreg init` creates a register).

    \b
    Example:
      riskreg db status
      riskreg db upgrade
      riskreg db roles
      riskreg db grant alice manager
    """


@db_group.command("status")
@json_option
@click.pass_obj
def db_status(app, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Show the database URL, backend, whether it holds a register, and its schema revision.

    A SQLite file that does not exist is reported as having no register (and not created).

    \b
    Example:
      riskreg --db postgresql+psycopg://localhost/risks db status
    """
    from riskreg.db import status_of

    emit(status_of(app.url), as_json, _status_text)


def _status_text(status: dict[str, object]) -> str:
    from riskreg.db import no_register_message

    text = fields([(k.replace("_", " "), v) for k, v in status.items()])
    if not status["register"]:
        text += f"\n{no_register_message(str(status['url']))}"
    return text


@db_group.command("upgrade")
@json_option
@click.pass_obj
def db_upgrade(app, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Upgrade a register's older schema to this riskreg's revision (back the database up first).

    A database with no register is refused: `riskreg init` creates one.

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
            f"schema upgraded from {r['from']} to {r['to']}"
            if r["changed"]
            else f"schema already at {r['to']}"
        ),
    )


@db_group.command("roles")
@json_option
@click.pass_obj
def db_roles(app, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Create riskreg's four PostgreSQL group roles and grant each its privileges (idempotent).

    \b
    riskreg_board     reads everything, changes nothing
    riskreg_manager   risks, controls, actions, pilots, their data and gates
    riskreg_reviewer  records reviews (moving a risk's review date on)
    riskreg_admin     all of the above, and grants roles (riskreg db grant)

    Nobody may UPDATE, DELETE or TRUNCATE the events table: a trigger refuses it even
    from the table's owner. Run as the register's owner (with CREATEROLE) or a superuser;
    run again after `riskreg db upgrade`. Refused on SQLite.

    \b
    Example:
      riskreg --db postgresql+psycopg://owner@dbhost/risks db roles
    """
    from riskreg.db import create_roles

    result = create_roles(app.database())
    emit(result, as_json, _roles_text)


def _roles_text(result: dict[str, object]) -> str:
    created = list(result["created"])  # type: ignore[call-overload]
    done = f"created {', '.join(created)}" if created else "roles already existed; privileges granted again"
    lines = [done]
    for role, grants in result["roles"].items():  # type: ignore[attr-defined]
        writes = [f"{t} ({p})" for t, p in grants.items() if p != "SELECT"]
        lines.append(f"{role}: reads every table; writes {', '.join(writes) if writes else 'nothing'}")
    return "\n".join(lines)


@db_group.command("grant")
@click.argument("user")
@click.argument("role", type=click.Choice(["board", "manager", "reviewer", "admin"]))
@json_option
@click.pass_obj
def db_grant(app, user: str, role: str, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Make a PostgreSQL login a member of a riskreg role (only a member of riskreg_admin may).

    The login must exist (CREATE ROLE alice LOGIN PASSWORD '...'). The grant is recorded
    in the audit trail (role.grant). Refused on SQLite.

    \b
    Example:
      riskreg db grant alice manager
      riskreg db grant bob board
    """
    from riskreg.db import grant_role

    result = grant_role(app.database(), user, role)
    emit(result, as_json, lambda r: f"granted {r['role']} to {r['user']}")


@click.group("audit")
def audit_group() -> None:
    """Check the tamper-evident audit trail, and seal its head for the minutes.

    \b
    Example:
      riskreg audit verify
      riskreg audit seal --note "Board, 12 May"
      riskreg audit verify --seal RR-412-3f9a1c0d7e22
    """


@audit_group.command("seal")
@click.option(
    "--full", is_flag=True, help="Print the whole 64-digit head hash instead of its first 12 digits."
)
@click.option(
    "--note", metavar="TEXT", help="Where the seal is written down (kept as the seal event's reason)."
)
@json_option
@click.pass_obj
def audit_seal(app, full: bool, note: str | None, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Print a short code for the chain's head, to write in board minutes outside the database.

    The code is RR-<events>-<first 12 hex digits of the newest event's hash>. Giving a
    seal is itself an event (audit.seal, with the code in its after values), so the code
    names the head just BEFORE that event: `RR-412-...` seals events 1 to 412, and the
    seal is event 413. `riskreg audit verify --seal CODE` later proves that the chain
    still holds those 412 events unchanged, even if someone rewrote them and recomputed
    every hash. Refused if the chain does not verify now.

    Why 12 digits (48 bits) suffice: to pass `verify --seal` after a rewrite, a forger
    must build a different history whose event 412 hashes to the same 48 bits, about
    2^48 (3 x 10^14) tries for a seal already in the minutes. That stops a rewrite by
    hand or by script, but not a well-equipped attacker with GPUs and days, nor an
    insider who prepares two histories with the same prefix before the seal (about 2^24
    tries). Use --full (256 bits) where that matters.

    \b
    Example:
      riskreg audit seal --note "Board minutes, 12 May"
      riskreg audit seal --full --json
    """
    from riskreg import audit
    from riskreg.register import iso_utc

    ctx = app.context()
    with app.database().write() as session:
        head, event = audit.seal(session, ctx, note)
    code = head.seal(full)
    data = {
        "seal": code,
        "events": head.events,
        "hash": head.hash,
        "event": event.seq,
        "actor": event.actor,
        "at": iso_utc(event.at),
    }
    emit(
        data,
        as_json,
        lambda d: (
            f"{d['seal']}\nseals events 1 to {d['events']} (the seal itself is event {d['event']}); "
            f"check it later with: riskreg audit verify --seal {d['seal']}"
        ),
    )


@audit_group.command("verify")
@click.option(
    "--seal",
    "seal_code",
    metavar="CODE",
    help="Also prove that the chain still holds the head this seal code names (from `audit seal`).",
)
@json_option
@click.pass_obj
def audit_verify(app, seal_code: str | None, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Check the hash chain of every event, and that the register holds what the events say.

    Exit 1 at the first broken link of the chain, or if a risk, control, pilot, protocol
    text, pilot-risk link, gate decision, review, piece of evidence or data file differs
    from what its events recorded (a field changed, a row no event created, a recorded
    row gone): the register was edited outside riskreg. Prints the head of the chain
    (event count, hash and seal code) so it can be written down elsewhere.

    With --seal CODE, also exit 1 unless event N of the code still exists, its hash
    starts with the code's digits and the chain verifies from event 1 through N: a
    history rewritten before the seal is found even when every hash was recomputed.

    \b
    Example:
      riskreg audit verify
      riskreg audit verify --seal RR-412-3f9a1c0d7e22
    """
    from riskreg import audit, trail

    wanted = audit.parse_seal(seal_code) if seal_code is not None else None
    with app.database().read() as session:
        chain = audit.verify(session)
        head = audit.head(session)
        sealed = audit.check_seal(session, wanted, chain) if wanted is not None else None
        state = trail.check_state(session)
    ok = chain.ok and state.ok and (sealed is None or sealed.ok)
    if as_json:
        document = {**chain.to_dict(), "ok": ok, "head": head.to_dict(), "state": state.to_dict()}
        if sealed is not None:
            document["seal"] = sealed.to_dict()
        emit(document, True, str)
    else:
        if chain.ok:
            click.echo(f"audit chain intact: {_count(chain.events, 'event')}")
            click.echo(f"head: {head.seal()} (event {head.events}, hash {head.hash})")
        if sealed is not None and sealed.ok:
            where = f" (sealed in event {sealed.sealed_in})" if sealed.sealed_in is not None else ""
            click.echo(f"seal {sealed.code} holds: events 1 to {sealed.events} are as sealed{where}")
        if state.ok:
            click.echo(
                f"register matches the trail: {_count(state.risks, 'risk')}, "
                f"{_count(state.controls, 'control')}, {_count(state.pilots, 'pilot')}, "
                f"{_count(state.data_files, 'data file')}"
            )
            click.echo(
                f"and so do {_count(state.protocols, 'protocol text')}, {_count(state.links, 'risk link')}, "
                f"{_count(state.decisions, 'gate decision')}, {_count(state.reviews, 'review')}, "
                f"{_count(state.evidence, 'evidence record')}"
            )
        for mismatch in state.mismatches:
            click.echo(mismatch.text())
    if sealed is not None and not sealed.ok:
        raise click.ClickException(f"seal {sealed.code} {sealed.problem}")
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
