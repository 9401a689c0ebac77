"""The riskreg command line: parse, call one library function, print. The only user of click."""

from __future__ import annotations

import errno
import getpass
import os
import sys
from dataclasses import dataclass, field

from riskreg import collector

collector.pause()  # until the command starts its work (riskreg.collector says why)

import click  # noqa: E402

from riskreg import __version__  # noqa: E402
from riskreg.errors import RiskregError  # noqa: E402
from riskreg.lazy import defer_rarely_used  # noqa: E402

defer_rarely_used()  # before anything imports SQLAlchemy (riskreg.lazy says why)


class RiskregGroup(click.Group):
    """A command group that turns library errors into one ``Error:`` line and exit status 1."""

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except RiskregError as exc:
            message = getattr(exc, "message", None)
            if callable(message):  # a refused permission: say what the command changes
                raise click.ClickException(message(_SUBJECTS.get(ctx.invoked_subcommand or ""))) from None
            raise click.ClickException(_printable(str(exc))) from None
        except ValueError as exc:
            # os.stat/open refuse a path with a NUL byte before riskreg sees it (click.Path too)
            if "null byte" not in str(exc):
                raise
            raise click.UsageError("an argument contains a NUL character") from None
        except KeyboardInterrupt:
            raise click.ClickException("interrupted; the current change was not saved") from None
        except Exception as exc:
            if not _disk_full(exc):
                raise
            raise click.ClickException(DISK_FULL) from None


DISK_FULL = "the disk is full: nothing was saved (free some space, then run the command again)"
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _disk_full(exc: BaseException) -> bool:
    """Whether an error, or one it wraps, says the disk (or the database server's disk) is full.

    SQLite says "database or disk is full", PostgreSQL SQLSTATE 53100 (disk_full), the
    operating system ENOSPC or EDQUOT; SQLAlchemy wraps the first two in ``orig``.
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in _NO_SPACE:
            return True
        if "database or disk is full" in str(error) or getattr(error, "sqlstate", None) == "53100":
            return True
        pending += [getattr(error, "orig", None), error.__cause__, error.__context__]
    return False


# Control characters other than the newlines that separate a message's own lines (a file name
# such as '\x1e' typed by mistake) are shown escaped: some of them end a line for a terminal or
# for str.splitlines, which would make one error look like two.
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F, 0x85)} | {
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def _printable(message: str) -> str:
    """Return an error message with stray control characters escaped, its own line breaks kept."""
    return message.translate(_CONTROLS)


# what each command group changes, for "your role (riskreg_board) cannot change risks"
_SUBJECTS = {
    "risk": "risks",
    "control": "controls",
    "action": "actions",
    "pilot": "pilots",
    "review": "reviews",
    "audit": "the audit trail",
    "db": "roles",
    "import": "the register",
    "config": "the register's settings",
}


@dataclass
class App:
    """What every command needs: where the database is and who is acting; opened on first use."""

    url: str | None
    actor_name: str | None
    _database: object | None = field(default=None, repr=False)

    def database(self, check_schema: bool = True):  # type: ignore[no-untyped-def]
        """Open the register once; a missing one is refused, never created (that is `riskreg init`)."""
        from riskreg.db import open_database

        if self._database is None:
            self._database = open_database(self.url, check_schema=check_schema)
            collector.resume()  # start-up is over: what it made lives as long as the process
        return self._database

    def close(self) -> None:
        """Close the database's connections (the command has finished)."""
        if self._database is not None:
            self._database.dispose()  # type: ignore[attr-defined]
            self._database = None

    @property
    def actor(self) -> str:
        """The actor as named (--actor, RISKREG_ACTOR, the OS user), before the database checks it."""
        return self.actor_name or os.environ.get("RISKREG_ACTOR") or _os_user()

    def context(self):  # type: ignore[no-untyped-def]
        """Return the register context (actor, configuration, now) for a change.

        On PostgreSQL the actor is the database login; --actor naming someone else is
        refused unless the login is a member of riskreg_admin (riskreg.db.resolve_actor).
        Every event also records the login that wrote it (``entered_by``).
        """
        from riskreg.context import Context
        from riskreg.db import resolve_actor

        database = self.database()
        actor = resolve_actor(database, self.actor_name, os.environ.get("RISKREG_ACTOR") or None)
        return Context(actor=actor, config=database.config)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@click.group(cls=RiskregGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "db_url",
    metavar="URL",
    help="Database URL (default: $RISKREG_DATABASE_URL, else sqlite:///riskreg.db here).",
)
@click.option(
    "--actor",
    metavar="NAME",
    help=(
        "Who is acting, for the audit trail (default: $RISKREG_ACTOR, else your user name). "
        "On PostgreSQL the actor is your database login; only a member of riskreg_admin may "
        "name someone else (the event records both)."
    ),
)
@click.version_option(__version__, prog_name="riskreg")
@click.pass_context
def cli(ctx: click.Context, db_url: str | None, actor: str | None) -> None:
    """Record co-production risks on both sides, run staged pilots and report on them.

    \b
    Example:
      riskreg init
      riskreg risk add "Volunteers miss safeguarding signs" --side citizen \\
          --mode delivery --likelihood 3 --impact 4 --category safeguarding
      riskreg risk list --sort score
    """
    if actor is not None and not actor.strip():
        raise click.BadParameter("must not be empty", param_hint="--actor")
    ctx.obj = App(db_url, actor)
    ctx.call_on_close(ctx.obj.close)


def main(argv: list[str] | None = None) -> None:
    """Run the command line; end, as click does, by raising SystemExit (tests and library callers)."""
    cli.main(args=argv, prog_name="riskreg")


def run() -> None:
    """Run the command line and end the process at once (the ``riskreg`` console script, ``python -m riskreg``).

    By the time ``main`` ends, the command has closed the register (``App.close``) and the
    files it wrote (``riskreg.outfile``). What is left is the interpreter's teardown, which
    frees one by one every object that start-up made and the command used: about 6 ms of
    ``risk show``, 20 ms of ``pilot analyse``, 40 ms of ``report board`` and 0.1 s of a
    1M-row import (measured, medians of 7). ``os._exit`` skips it, once the output is out,
    unless a profiler, tracer or coverage tool watches the process: they report at the usual
    exit. An error riskreg did not expect is not caught here: it ends the usual way,
    traceback and all.
    """
    try:
        main()
    except SystemExit as exit:
        status = _exit_status(exit.code)
    else:
        status = 0
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()  # what any handler still holds
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            pass  # a reader that has gone (a pipe into head) or a closed stream: nothing more to say
        except OSError:
            # output that could not be written (a full disk): 120, as the interpreter would end
            # a command that had succeeded; a failed command keeps its own status
            status = status or 120
    if _watched():
        sys.exit(status)  # a profiler, tracer or coverage tool reports at the usual exit
    os._exit(status)


def _watched() -> bool:
    """True if a profiler, a tracer or a coverage tool watches this process (``python -m cProfile -m riskreg``)."""
    if sys.getprofile() is not None or sys.gettrace() is not None:
        return True
    monitoring = getattr(sys, "monitoring", None)  # Python 3.12 and later: coverage.py may watch this way
    return monitoring is not None and any(monitoring.get_tool(tool) is not None for tool in range(6))


def _exit_status(code: object) -> int:
    """The process's exit status for ``SystemExit(code)``, as the interpreter would make it."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _register_commands() -> None:
    from riskreg.cli import actions, backup, configcmd, dbcmd, init, pilots, plan, qa, reports, risks

    for module in (init, dbcmd, configcmd, risks, actions, pilots, plan, qa, reports, backup):
        for command in module.COMMANDS:
            cli.add_command(command)


_register_commands()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
