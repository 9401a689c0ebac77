"""``riskreg export`` and ``riskreg import``: the whole database as one JSON file."""

from __future__ import annotations

import click

from riskreg.cli.output import emit, json_option, table


@click.command("export")
@click.argument("path", metavar="FILE")
@json_option
@click.pass_obj
def export_command(app, path: str, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Export the whole database (risks, pilots, data, decisions, audit trail) to a JSON file.

    FILE is written whole or not at all (an earlier file of that name is kept until the
    new one is complete). --json prints what was written as JSON, like every command.

    \b
    Example:
      riskreg export backup.json
      riskreg --db postgresql+psycopg://host/risks import backup.json
    """
    from riskreg.backup import export_all
    from riskreg.outfile import replaced_whole

    with app.database().read() as session, replaced_whole(path) as out:
        counts = export_all(session, out)
    emit(
        _summary(path, counts),
        as_json,
        lambda s: f"exported {s['rows']} rows from {len(s['tables'])} tables to {path}",
    )


@click.command("import")
@click.argument("path", metavar="FILE")
@json_option
@click.pass_obj
def import_command(app, path: str, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Load a file written by `riskreg export` into an empty database (for example to move from SQLite to PostgreSQL).

    \b
    Example:
      riskreg --db postgresql+psycopg://host/risks import backup.json
    """
    from riskreg.backup import import_all

    with app.database().write() as session:
        counts = import_all(session, path)
    emit(
        _summary(path, counts),
        as_json,
        lambda s: (
            f"imported {s['rows']} rows into {len(s['tables'])} tables\n"
            + table(("TABLE", "ROWS"), sorted(s["tables"].items()))
        ),
    )


def _summary(path: str, counts: dict[str, int]) -> dict[str, object]:
    """The file, the rows in all, and the rows of each table."""
    return {"file": path, "rows": sum(counts.values()), "tables": counts}


COMMANDS = (export_command, import_command)
