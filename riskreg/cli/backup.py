"""``riskreg export`` and ``riskreg import``: the whole database as one JSON file."""

from __future__ import annotations

import click

from riskreg.cli.output import emit, table


@click.command("export")
@click.option("--json", "path", required=True, metavar="FILE", help="Write everything to this JSON file.")
@click.pass_obj
def export_command(app, path: str) -> None:  # type: ignore[no-untyped-def]
    """Export the whole database (risks, pilots, data, decisions, audit trail) as JSON.

    \b
    Example:
      riskreg export --json backup.json
      riskreg --db postgresql+psycopg://host/risks import --json backup.json
    """
    from riskreg.backup import export_all
    from riskreg.outfile import replaced_whole

    with app.database().read() as session, replaced_whole(path) as out:
        counts = export_all(session, out)
    click.echo(f"exported {sum(counts.values())} rows from {len(counts)} tables to {path}")


@click.command("import")
@click.option(
    "--json", "path", required=True, metavar="FILE", help="A file written by `riskreg export --json`."
)
@click.pass_obj
def import_command(app, path: str) -> None:  # type: ignore[no-untyped-def]
    """Load a JSON export into an empty database (for example to move from SQLite to PostgreSQL).

    \b
    Example:
      riskreg --db postgresql+psycopg://host/risks import --json backup.json
    """
    from riskreg.backup import import_all

    with app.database().write() as session:
        counts = import_all(session, path)
    emit(
        counts,
        False,
        lambda c: (
            f"imported {sum(c.values())} rows into {len(c)} tables\n"
            + table(("TABLE", "ROWS"), sorted(c.items()))
        ),
    )


COMMANDS = (export_command, import_command)
