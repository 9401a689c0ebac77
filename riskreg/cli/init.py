"""``riskreg init``: the only way a new register is created."""

from __future__ import annotations

import click

from riskreg.cli.output import emit, json_option


@click.command("init")
@json_option
@click.pass_obj
def init_command(app, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Create a new, empty register at the newest schema.

    On SQLite (the default, riskreg.db in the current folder) this creates the file and,
    unless there is one already, a starter riskreg.toml beside it with every setting
    commented out. On PostgreSQL the database must exist and be empty. A database that
    already holds a register is refused, and nothing is changed. Every other command
    refuses a register that does not exist, rather than creating one.

    \b
    Example:
      riskreg init
      riskreg --db postgresql+psycopg://localhost/risks init
    """
    from riskreg import collector
    from riskreg.db import init_register

    collector.resume()  # creating the register is the command's work (riskreg.collector)
    emit(init_register(app.url), as_json, _text)


def _text(result: dict[str, object]) -> str:
    from riskreg.db import location

    lines = [f"created a register {location(str(result['url']))} (schema {result['schema']})"]
    if result["config_written"]:
        lines.append(f"wrote a starter {result['config']} (every setting commented out: the defaults apply)")
    elif result["config"]:
        lines.append(f"configuration: {result['config']} (kept as it is)")
    else:
        lines.append("configuration: the defaults (no riskreg.toml in the current folder)")
    return "\n".join(lines)


COMMANDS = (init_command,)
