"""Engine, sessions and schema management for SQLite (embedded) and PostgreSQL (server).

A register is created only by :func:`init_register` (``riskreg init``); :func:`open_database`
refuses a SQLite file that does not exist, without creating it, and a database with no schema.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import sys
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, event, inspect, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)

from riskreg.config import Config, config_path, load_config, write_starter_config
from riskreg.errors import (
    ConfigError,
    DatabaseUnavailable,
    InvalidInput,
    RiskregError,
    SchemaBehind,
    StaleVersion,
)
from riskreg.tables import audit_head

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

DEFAULT_URL = "sqlite:///riskreg.db"
# The newest migration; a test checks it against the Alembic scripts, so commands need not
# import Alembic just to check the schema.
SCHEMA_HEAD = "0012"
SQLITE_BUSY_TIMEOUT_S = float(os.environ.get("RISKREG_BUSY_TIMEOUT", "10"))
# Any constant: concurrent `riskreg init` runs on one PostgreSQL database take turns on it.
_INIT_LOCK_KEY = 0x7269736B


class NoRegister(DatabaseUnavailable):
    """There is no register at the database URL (no SQLite file, or no schema); ``riskreg init`` creates one."""


class RegisterExists(RiskregError):
    """``riskreg init`` found a register (or other tables) where it was to create one."""


class PermissionRefused(RiskregError):
    """PostgreSQL refused a statement: the login's riskreg roles do not allow it; nothing was written."""

    def __init__(self, login: str, roles: list[str], table: str | None, subject: str | None = None):
        self.login, self.roles, self.table = login, list(roles), table
        super().__init__(self.message(subject))

    def message(self, subject: str | None = None) -> str:
        """The one-line message; ``subject`` names what the command changes (e.g. "risks")."""
        if not self.roles:
            return (
                f"permission denied: your login ({self.login}) has no riskreg role; an admin can run "
                f"riskreg db grant {self.login} board|manager|reviewer|admin"
            )
        what = self.table if self.table and self.table not in BOOKKEEPING_TABLES else None
        what = what or subject or "the register"
        return (
            f"permission denied: your role ({', '.join(self.roles)}) cannot change {what}; nothing was saved"
        )


class IdentityRefused(RiskregError):
    """On PostgreSQL the actor is the login: naming someone else needs riskreg_admin."""


def resolve_url(url: str | None) -> str:
    """Return the database URL: the one given, else ``RISKREG_DATABASE_URL``, else ``riskreg.db`` here."""
    return url or os.environ.get("RISKREG_DATABASE_URL") or DEFAULT_URL


class ReadOnlyRegister(RiskregError):
    """A SQLite register that this login cannot write (read-only file, folder or mount): reads only."""


def read_only_reason(url: str) -> str | None:
    """Say why a SQLite register can only be read here, or None when it can be written (or is not a file).

    SQLite writes beside the file (the -wal and -shm files of WAL mode, a rollback journal),
    so a writable file in a folder that cannot be written is read-only too. ``os.access``
    answers for this login and sees a read-only mount (root included).
    """
    path = sqlite_file(url)
    if path is None or not os.path.exists(path):
        return None
    if _on_read_only_mount(path):
        return "it is on a read-only file system"
    if not os.access(path, os.W_OK):
        return "its file cannot be written"
    if not os.access(Path(path).resolve().parent, os.W_OK | os.X_OK):
        return "its folder cannot be written"
    return None


def _on_read_only_mount(path: str) -> bool:
    """Whether the file's file system is mounted read-only (where the platform can tell)."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):
        return False


def read_only_message(url: str, reason: str) -> str:
    """The one-line refusal of a change to a read-only register."""
    return (
        f"register {location(url)} is read-only ({reason}); nothing was saved. Reading commands "
        "work; a change needs write access to the file and its folder"
    )


def make_engine(url: str, read_only: bool = False) -> Engine:
    """Create an engine with riskreg's connection settings for the URL's backend.

    ``read_only`` (a SQLite file only) opens it with SQLite's ``mode=ro`` and changes nothing
    at connect: no WAL switch, no -wal or -shm file created where they cannot be.
    """
    try:
        if url.startswith("sqlite"):
            return _sqlite_engine(url, read_only)
        return create_engine(url, pool_pre_ping=False)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise DatabaseUnavailable(f"cannot use database URL {url!r}: {exc}") from None
    except ImportError as exc:
        raise DatabaseUnavailable(
            f"the driver for {url.split(':', 1)[0]} is not installed ({exc.name}); "
            "for PostgreSQL install riskreg[postgres]"
        ) from None


def _sqlite_engine(url: str, read_only: bool = False) -> Engine:
    path = sqlite_file(url) if read_only else None
    if path is not None:
        engine = create_engine(url, creator=_read_only_connector(path))
    else:
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not the driver, issue BEGIN, so writers can take the lock up front.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if path is None:  # switching to WAL writes the file: a read-only register stays as it is
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        # One helper thread for large sorts (an analysis's GROUP BY over its observations):
        # measured 0.67 → 0.50 s for 1M rows; two helpers were slower on two cores.
        cursor.execute("PRAGMA threads=1")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A writer takes SQLite's write lock at BEGIN: read-modify-write cannot interleave.
        writing = connection.get_execution_options().get("riskreg_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")

    return engine


def _read_only_connector(path: str):  # type: ignore[no-untyped-def]
    """Return a function opening the SQLite file read-only (``mode=ro``).

    A WAL-mode file whose -shm and -wal files are absent and cannot be created (a copy on a
    read-only mount or in a read-only folder) cannot be opened even with ``mode=ro``; it is
    then opened ``immutable``, which stops SQLite looking for files it cannot make. That is
    sound because no one had it open for writing (a writer would have left a -wal file, and
    ``mode=ro`` reads through one); a writer starting during a read is not seen by that read.
    """
    import sqlite3

    uri = Path(path).resolve().as_uri()

    def opened(query: str) -> sqlite3.Connection:
        return sqlite3.connect(
            f"{uri}?{query}", uri=True, timeout=SQLITE_BUSY_TIMEOUT_S, check_same_thread=False
        )

    def connect() -> sqlite3.Connection:
        connection = opened("mode=ro")
        try:
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return connection
        except sqlite3.OperationalError:  # "unable to open database file": no -shm can be made
            connection.close()
        return opened("mode=ro&immutable=1")

    return connect


@dataclass
class Database:
    """An opened riskreg database: its URL, engine and configuration."""

    url: str
    engine: Engine
    config: Config
    _identity: tuple[str, bool] | None = None
    # the riskreg.toml in use (None: none); governed keys in the database override its values
    config_file: Path | None = None
    # why a SQLite register can only be read here (None: it can be written)
    read_only: str | None = None

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def login(self) -> str:
        """Who is logged in: on PostgreSQL the database login (``session_user``), else the OS login."""
        return self._who()[0]

    def may_enter_for_others(self) -> bool:
        """Whether the login may record changes for another actor (PostgreSQL: riskreg_admin or a superuser)."""
        return self._who()[1]

    def _who(self) -> tuple[str, bool]:
        if self._identity is None:
            if self.backend != "postgresql":
                self._identity = (os_login(), True)
            else:
                with _translate_errors(self.url, self.engine), self.engine.connect() as connection:
                    row = connection.execute(text(_WHO_SQL)).one()
                self._identity = (str(row[0]), bool(row[1]) or bool(row[2]))
        return self._identity

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """Yield a connection for reading with SQLAlchemy Core (no ORM import); nothing is committed."""
        with _translate_errors(self.url, self.engine), self.engine.connect() as connection:
            yield connection

    @contextmanager
    def read(self) -> Iterator[Session]:
        """Yield a session for reading; nothing is committed."""
        from sqlalchemy.orm import Session

        with (
            _translate_errors(self.url, self.engine),
            Session(self.engine, expire_on_commit=False) as session,
        ):
            yield session

    @contextmanager
    def write(self, dry_run: bool = False) -> Iterator[Session]:
        """Yield a session whose work commits as one transaction, serialised with every other writer.

        With ``dry_run`` everything is checked and then rolled back. A read-only register
        is refused before anything is opened for writing.
        """
        from sqlalchemy.orm import Session

        self.require_writable()
        bind = self.engine.execution_options(riskreg_write=True)
        entered_by = self.login()
        with _translate_errors(self.url, self.engine), Session(bind, expire_on_commit=False) as session:
            session.info["entered_by"] = entered_by  # every event of this session records the login
            session.execute(_LOCK_WRITERS)
            try:
                yield session
                session.flush()
            except BaseException:
                session.rollback()
                raise
            if dry_run:
                session.rollback()
            else:
                session.commit()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """Yield a connection whose Core statements commit as one transaction, serialised as ``write``'s.

        ``write`` without the ORM (``risk add``): the same lock, and the events it appends
        (``riskreg.chain.append``) record the login, which the connection carries.
        """
        from riskreg.chain import ENTERED_BY

        self.require_writable()
        bind = self.engine.execution_options(riskreg_write=True, **{ENTERED_BY: self.login()})
        with _translate_errors(self.url, self.engine), bind.begin() as connection:
            connection.execute(_LOCK_WRITERS)
            yield connection

    def require_writable(self) -> None:
        """Refuse (ReadOnlyRegister) a change to a register opened read-only."""
        if self.read_only is not None:
            raise ReadOnlyRegister(read_only_message(self.url, self.read_only))

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


# PostgreSQL: one row lock orders all writers (SQLite's BEGIN IMMEDIATE already does).
_LOCK_WRITERS = select(audit_head.c.seq).where(audit_head.c.id == 1).with_for_update()

_WHO_SQL = """
SELECT session_user,
       (SELECT rolsuper FROM pg_roles WHERE rolname = session_user),
       EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'riskreg_admin' AND pg_has_role(session_user, oid, 'MEMBER'))
"""


def os_login() -> str:
    """The operating-system login of this process ("unknown" where there is none)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@contextmanager
def _translate_errors(url: str, engine: Engine | None = None) -> Iterator[None]:
    try:
        yield
    except RiskregError:
        raise
    except ProgrammingError as exc:
        if engine is not None and _sqlstate(exc) == "42501":
            raise _permission_refused(engine, exc) from None
        raise
    except OperationalError as exc:
        raise DatabaseUnavailable(_operational_message(url, exc)) from None
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise DatabaseUnavailable(f"lost the connection to {safe_url(url)}; nothing was saved") from None
        detail = str(exc.orig).strip() if exc.orig else ""
        if detail in _NOT_A_REGISTER:  # SQLite: --db names a file that is not a database, or a damaged one
            raise DatabaseUnavailable(f"cannot use database {safe_url(url)}: {detail}") from None
        raise
    except SQLAlchemyError as exc:
        if not _stale(exc):
            raise
        raise StaleVersion(
            "another user changed the same record at the same moment; nothing was saved, try again"
        ) from None


def _stale(exc: SQLAlchemyError) -> bool:
    """Whether the ORM found a versioned row changed under it (StaleDataError).

    Only the ORM raises that, so a process that has not imported the ORM has none to look
    for, and the check imports nothing.
    """
    orm_exc = sys.modules.get("sqlalchemy.orm.exc")
    return orm_exc is not None and isinstance(exc, orm_exc.StaleDataError)


_NOT_A_REGISTER = ("file is not a database", "database disk image is malformed")


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


def _permission_refused(engine: Engine, exc: DBAPIError) -> PermissionRefused:
    """Name the login, its riskreg roles and the table PostgreSQL refused (read on a fresh connection)."""
    detail = str(exc.orig).strip().splitlines()[0] if exc.orig else ""
    match = re.search(r"permission denied for (?:table|relation|sequence) (\S+)", detail)
    table = match.group(1) if match else None
    names = ", ".join(f"'{name}'" for name in ROLE_NAMES.values())
    try:
        with engine.connect() as connection:
            login = str(connection.execute(text("SELECT session_user")).scalar())
            roles = list(
                connection.execute(
                    text(
                        f"SELECT rolname FROM pg_roles WHERE rolname IN ({names}) "
                        "AND pg_has_role(session_user, oid, 'MEMBER') ORDER BY rolname"
                    )
                ).scalars()
            )
    except DBAPIError:
        login, roles = "?", []
    return PermissionRefused(login, roles, table)


def _operational_message(url: str, exc: OperationalError) -> str:
    detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    if "locked" in detail:
        return (
            f"database {safe_url(url)} is locked by another writer beyond the "
            f"{SQLITE_BUSY_TIMEOUT_S:g} s timeout; nothing was saved, try again"
        )
    return f"cannot use database {safe_url(url)}: {detail}"


def safe_url(url: str) -> str:
    """Return the URL with any password hidden, for messages and report footers."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def open_database(url: str | None = None, *, check_schema: bool = True) -> Database:
    """Open an existing register and read its configuration.

    A SQLite file that does not exist is refused before anything touches it (no file, no
    -wal/-shm), and so, with ``check_schema``, is a database with no schema or an older one.
    """
    url = resolve_url(url)
    _require_sqlite_file(url)
    path = config_path(url)
    config = load_config(path)
    read_only = read_only_reason(url)
    engine = make_engine(url, read_only=read_only is not None)
    database = Database(url, engine, config, config_file=path, read_only=read_only)
    if check_schema:
        try:
            with _translate_errors(url, engine):
                ensure_schema(database)
                database.config = governed_config(database)
        except BaseException:
            engine.dispose()
            raise
    return database


def governed_config(database: Database) -> Config:
    """The configuration in force: defaults <- riskreg.toml <- the database's governed settings."""
    from riskreg.config import merged_config, read_config_file

    with database.engine.connect() as connection:
        rows = connection.execute(text("SELECT key, value FROM settings")).all()
    if not rows:
        return database.config
    governed = {str(key): json.loads(value) for key, value in rows}
    source = str(database.config_file) if database.config_file else "settings"
    return merged_config(read_config_file(database.config_file), governed, source)


def sqlite_file(url: str) -> str | None:
    """Return the file a SQLite URL names, as written; None for in-memory and other backends."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite":
        return None
    name = parsed.database or ""
    if name in ("", ":memory:") or parsed.query.get("uri") == "true":
        return None
    return name


def _shown(path: str) -> str:
    # a path relative to the current folder says so: ./riskreg.db, not riskreg.db
    if os.path.isabs(path) or path.startswith(("./", "../")):
        return path
    return f"./{path}"


def location(url: str) -> str:
    """Where a register is, for messages: "at ./riskreg.db" or "in postgresql+psycopg://host/db"."""
    path = sqlite_file(url)
    return f"at {_shown(path)}" if path is not None else f"in {safe_url(url)}"


def no_register_message(url: str) -> str:
    """The advice for a database URL with no register behind it."""
    here = " here" if sqlite_file(url) is not None else ""
    return f"no register {location(url)}; run riskreg init{here}, or set RISKREG_DATABASE_URL / --db"


def _require_sqlite_file(url: str) -> None:
    path = sqlite_file(url)
    if path is not None and not os.path.exists(path):
        raise NoRegister(no_register_message(url))


def _check_sqlite_folder(url: str) -> None:
    path = sqlite_file(url)
    if path is not None:
        folder = Path(path).parent
        if not folder.is_dir():
            raise DatabaseUnavailable(f"cannot create database {url}: folder {folder} does not exist")


def init_register(url: str | None = None) -> dict[str, object]:
    """Create a register at the newest schema: a new SQLite file, or an existing empty database.

    Refuses a database that already holds a register (or any other table), changing nothing.
    On SQLite, writes a commented starter ``riskreg.toml`` beside the file unless there is one
    already (or ``RISKREG_CONFIG`` names another). Returns what ``riskreg init --json`` prints.
    """
    url = resolve_url(url)
    path = sqlite_file(url)
    if path is not None and not os.path.exists(path):
        _check_sqlite_folder(url)
    # an unreadable riskreg.toml is reported before anything is created
    load_config(config_path(url))
    engine = make_engine(url)
    try:
        # SQLite: BEGIN IMMEDIATE, so two inits at once take turns and the second is refused
        with _translate_errors(url), engine.execution_options(riskreg_write=True).begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _INIT_LOCK_KEY})
            _refuse_existing(url, connection)
            _migrate(connection)
        backend = engine.dialect.name
    finally:
        engine.dispose()
    config, written = _starter_config(url, path)
    return {
        "url": safe_url(url),
        "backend": backend,
        "schema": SCHEMA_HEAD,
        "config_written": written,
        "config": config,
    }


def _refuse_existing(url: str, connection: Connection) -> None:
    revision = current_revision(connection)
    if revision is not None:
        raise RegisterExists(
            f"a register already exists {location(url)} (schema {revision}); nothing was changed"
        )
    tables = sorted(inspect(connection).get_table_names())
    if tables:
        named = ", ".join(tables[:3]) + (f" and {len(tables) - 3} more" if len(tables) > 3 else "")
        raise RegisterExists(
            f"found tables that are not a register's {location(url)} ({named}); nothing was changed"
        )


def _starter_config(url: str, path: str | None) -> tuple[str | None, bool]:
    """Write the starter riskreg.toml beside a new SQLite register; return (the file in use, written)."""
    explicit = os.environ.get("RISKREG_CONFIG")
    if explicit:
        return explicit, False
    if path is None:
        return ("./riskreg.toml" if config_path(url) else None), False
    beside = Path(path).parent / "riskreg.toml"
    try:
        written = write_starter_config(beside)
    except OSError as exc:
        raise ConfigError(
            f"created the register {location(url)}, but cannot write {beside}: {exc.strerror}"
        ) from None
    return _shown(str(beside)), written


def current_revision(connection: Connection) -> str | None:
    """Return the schema revision stored in the database, or None for an empty one."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _stored_revision(engine: Engine) -> str | None:
    """Return the schema revision, reading the version table directly (the common, fast case)."""
    with engine.connect() as connection:
        try:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except (OperationalError, DBAPIError):
            connection.rollback()
        return current_revision(connection)


def ensure_schema(database: Database) -> None:
    """Refuse a database with no register (``riskreg init`` advice) or with an older schema."""
    revision = _stored_revision(database.engine)
    if revision == SCHEMA_HEAD:
        return
    if revision is None:
        raise NoRegister(no_register_message(database.url))
    raise SchemaBehind(
        f"database schema is at revision {revision}, this riskreg needs {SCHEMA_HEAD}; "
        "run `riskreg db upgrade` (back the database up first)"
    )


def upgrade(database: Database) -> tuple[str | None, str]:
    """Upgrade a register's schema to the newest revision; return (before, after).

    A database with no schema is refused: ``riskreg init`` creates registers.
    """
    database.require_writable()
    with _translate_errors(database.url), database.engine.begin() as connection:
        before = current_revision(connection)
        if before is None:
            raise NoRegister(no_register_message(database.url))
        _migrate(connection)
    return before, SCHEMA_HEAD


def _migrate(connection: Connection) -> None:
    """Run the migrations up to the newest on the connection (from empty, or an older revision)."""
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    _seed_audit_head(connection)


def _seed_audit_head(connection: Connection) -> None:
    exists = connection.execute(text("SELECT 1 FROM audit_head WHERE id = 1")).first()
    if not exists:
        connection.execute(text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :h)"), {"h": "0" * 64})


def alembic_config():  # type: ignore[no-untyped-def]
    """Return an Alembic configuration pointing at the migrations shipped in the package."""
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", "riskreg:migrations")
    return config


def schema_status(database: Database) -> dict[str, object]:
    """Describe the database: URL, backend, whether it holds a register, its revision and whether it is current."""
    with _translate_errors(database.url), database.engine.connect() as connection:
        revision = current_revision(connection)
    return {
        "url": safe_url(database.url),
        "backend": database.engine.dialect.name,
        "register": revision is not None,
        "revision": revision,
        "head": SCHEMA_HEAD,
        "up_to_date": revision == SCHEMA_HEAD,
    }


def status_of(url: str | None = None) -> dict[str, object]:
    """Describe the database at the URL, as :func:`schema_status`; a missing SQLite file is not created."""
    url = resolve_url(url)
    path = sqlite_file(url)
    if path is not None and not os.path.exists(path):
        return {
            "url": safe_url(url),
            "backend": "sqlite",
            "register": False,
            "revision": None,
            "head": SCHEMA_HEAD,
            "up_to_date": False,
        }
    database = open_database(url, check_schema=False)
    try:
        return schema_status(database)
    finally:
        database.dispose()


# --- identity -------------------------------------------------------------------------------------


ACTOR_LIMIT = 200  # the events' and rows' actor columns: one limit on every backend


def checked_actor(name: str) -> str:
    """Return an actor's name if every backend can store it as it is; else refuse it in one line.

    SQLite would keep a longer name or a NUL that PostgreSQL refuses, and the actor is hashed
    into the audit chain, so such a register could never move to PostgreSQL.
    """
    if len(name) > ACTOR_LIMIT:
        raise InvalidInput(
            f"the actor name is {len(name):,} characters long; at most {ACTOR_LIMIT} "
            "(from --actor, RISKREG_ACTOR or the login)"
        )
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise InvalidInput("the actor name contains a control character (a NUL, tab or line break, say)")
    return name


def resolve_actor(database: Database, given: str | None, from_env: str | None) -> str:
    """Return the actor of a change: on PostgreSQL the login, else ``--actor``/RISKREG_ACTOR/the OS login.

    On PostgreSQL an ``--actor`` other than the login is accepted only from a login that may
    enter for others (a member of riskreg_admin, or a superuser); the event then records the
    actor named and, in ``entered_by``, the login. A RISKREG_ACTOR other than the login is
    refused for everyone: entering for someone else takes an explicit ``--actor``.
    """
    if database.backend != "postgresql":
        return checked_actor(given or from_env or os_login())
    for named in (given, from_env):
        if named is not None:
            checked_actor(named)
    login = database.login()
    if given is None:
        if from_env and from_env != login:
            raise IdentityRefused(
                f"you are connected as {login}; RISKREG_ACTOR={from_env} is refused (on PostgreSQL the "
                "actor is your login; unset RISKREG_ACTOR, or, as a member of riskreg_admin, enter "
                "for someone else with --actor)"
            )
        return login
    if given == login or database.may_enter_for_others():
        return given
    raise IdentityRefused(
        f"you are connected as {login}; --actor {given} is refused (on PostgreSQL the actor is your "
        "login; a login granted riskreg_admin may enter changes for others with --actor)"
    )


# --- roles (PostgreSQL) ---------------------------------------------------------------------------

# riskreg db grant USER <short name>: the PostgreSQL group role it grants
ROLE_NAMES = {
    "board": "riskreg_board",
    "manager": "riskreg_manager",
    "reviewer": "riskreg_reviewer",
    "admin": "riskreg_admin",
}
# written by every change (the event and the chain's head) or by every new id (counters)
BOOKKEEPING_TABLES = ("events", "audit_head", "counters")
# what risk, control, action and pilot commands (data, resources, gates, links) write
MANAGER_TABLES = (
    "risks",
    "controls",
    "actions",
    "pilots",
    "protocol_versions",
    "pilot_metrics",
    "pilot_risks",
    "data_imports",
    "import_counts",
    "import_units",
    "observations",
    "resources",
    "decisions",
    "evidence",
)
# `review record` adds a review and moves the risk's review date on (closing it for "closed")
REVIEWER_RISK_COLUMNS = ("last_reviewed", "status", "closed_at", "updated_at", "updated_by", "version")


def role_matrix(tables: list[str]) -> dict[str, dict[str, list[str]]]:
    """Return {role: {table: privileges}} for the register's tables: what `riskreg db roles` grants.

    Every role reads every table. Nobody may UPDATE, DELETE or TRUNCATE events.
    """
    every = sorted(tables)
    writing = {"events": ["INSERT"], "audit_head": ["UPDATE"]}  # the event and the chain's head
    board = {t: ["SELECT"] for t in every}
    manager = {t: ["SELECT"] for t in every}
    manager.update({t: ["SELECT", *p] for t, p in writing.items()})
    manager["counters"] = ["SELECT", "INSERT", "UPDATE"]
    manager.update({t: ["SELECT", "INSERT", "UPDATE", "DELETE"] for t in MANAGER_TABLES if t in every})
    reviewer = {t: ["SELECT"] for t in every}
    reviewer.update({t: ["SELECT", *p] for t, p in writing.items()})
    reviewer["reviews"] = ["SELECT", "INSERT"]
    reviewer["risks"] = ["SELECT", f"UPDATE ({', '.join(REVIEWER_RISK_COLUMNS)})"]
    admin = {t: ["SELECT", "INSERT", "UPDATE", "DELETE"] for t in every if t != "alembic_version"}
    admin["events"] = ["SELECT", "INSERT"]
    admin["alembic_version"] = ["SELECT"]
    return {
        "riskreg_board": board,
        "riskreg_manager": manager,
        "riskreg_reviewer": reviewer,
        "riskreg_admin": admin,
    }


def _require_postgresql(database: Database, command: str) -> None:
    if database.backend != "postgresql":
        raise InvalidInput(
            f"riskreg db {command} is for PostgreSQL; a SQLite register has no database roles "
            "(its file's permissions decide who may change it)"
        )


# Roles are the server's, shared by every database on it: two `db roles` at once (two
# registers set up together) both find a role missing, and the later CREATE ROLE or GRANT
# fails on the catalog row the earlier one wrote. The run is idempotent, so it runs again.
ROLE_ATTEMPTS = 5
_LOST_A_RACE = {
    "23505",  # unique_violation: the other run created the role, or its membership, first
    "42710",  # duplicate_object: the same, once the other run has committed
    "40P01",  # deadlock_detected: both updated the same catalog rows in another order
}


def create_roles(database: Database) -> dict[str, object]:
    """Create the four riskreg group roles (NOLOGIN) if missing and grant each its privileges.

    Idempotent: privileges are revoked and granted again, so running it after `db upgrade`
    covers new tables. Run it as the register's owner (with CREATEROLE) or a superuser. A run
    that loses a race with another (on this register or another on the same server) for the
    server's roles runs again, up to ROLE_ATTEMPTS times.
    """
    _require_postgresql(database, "roles")
    with _translate_errors(database.url):
        for _ in range(ROLE_ATTEMPTS - 1):
            try:
                with database.engine.begin() as connection:
                    return _create_and_grant_roles(connection)
            except DBAPIError as exc:
                if not _lost_a_race(exc):
                    raise
        with database.engine.begin() as connection:
            return _create_and_grant_roles(connection)


def _lost_a_race(exc: DBAPIError) -> bool:
    """Whether a statement failed because another session changed the same server-wide catalog rows."""
    detail = str(exc.orig) if exc.orig else ""
    return _sqlstate(exc) in _LOST_A_RACE or "tuple concurrently updated" in detail


def _create_and_grant_roles(connection: Connection) -> dict[str, object]:
    """Create the missing riskreg roles and grant each its privileges, in the caller's transaction."""
    created = []
    quote = connection.dialect.identifier_preparer.quote
    schema = quote(str(connection.execute(text("SELECT current_schema()")).scalar()))
    tables = sorted(inspect(connection).get_table_names())
    matrix = role_matrix(tables)
    try:
        for role in matrix:
            exists = connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
            if exists.first() is None:
                connection.execute(text(f"CREATE ROLE {role} NOLOGIN"))
                created.append(role)
        roles = ", ".join(matrix)
        connection.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {roles}"))
        for role, grants in matrix.items():
            for table, privileges in grants.items():
                connection.execute(text(f"GRANT {', '.join(privileges)} ON {quote(table)} TO {role}"))
        writers = "riskreg_manager, riskreg_reviewer, riskreg_admin"
        connection.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {writers}"))
        connection.execute(text(f"REVOKE UPDATE, DELETE, TRUNCATE ON events FROM PUBLIC, {roles}"))
        connection.execute(
            text("GRANT riskreg_board, riskreg_manager, riskreg_reviewer TO riskreg_admin WITH ADMIN OPTION")
        )
    except ProgrammingError as exc:
        if _sqlstate(exc) != "42501":
            raise
        raise InvalidInput(
            "permission denied: riskreg db roles must be run by the register's owner with "
            "CREATEROLE, or by a superuser; nothing was changed"
        ) from None
    return {
        "created": created,
        "roles": {role: {t: ", ".join(p) for t, p in grants.items()} for role, grants in matrix.items()},
    }


def grant_role(database: Database, user: str, role: str) -> dict[str, object]:
    """Make a login a member of a riskreg role, and record the grant as an event (``role.grant``).

    Only a member of riskreg_admin (or a superuser) may; an admin is granted WITH ADMIN OPTION,
    so that admins can grant admin in turn.
    """
    from riskreg import audit

    _require_postgresql(database, "grant")
    if role not in ROLE_NAMES:
        raise InvalidInput(f"role: expected one of {', '.join(ROLE_NAMES)}, got {role!r}")
    group = ROLE_NAMES[role]
    login = database.login()
    with database.write() as session:
        quote = session.get_bind().dialect.identifier_preparer.quote
        known = session.execute(
            text("SELECT rolname FROM pg_roles WHERE rolname IN (:u, :g)"), {"u": user, "g": group}
        ).scalars()
        known = set(known)
        if group not in known:
            raise InvalidInput(f"there is no role {group}; run riskreg db roles first")
        if user not in known:
            raise InvalidInput(
                f"there is no login {user!r} on this server; create it first "
                f"(CREATE ROLE {quote(user)} LOGIN PASSWORD '...')"
            )
        option = " WITH ADMIN OPTION" if role == "admin" else ""
        try:
            with session.begin_nested():
                session.execute(text(f"GRANT {group} TO {quote(user)}{option}"))
        except ProgrammingError as exc:
            if _sqlstate(exc) != "42501":
                raise
            raise InvalidInput(
                f"permission denied: only a member of riskreg_admin may grant riskreg roles "
                f"(you are connected as {login}); nothing was changed"
            ) from None
        audit.record(
            session,
            actor=login,
            action="role.grant",
            entity="role",
            entity_id=role,
            scope="roles",
            before=None,
            after={"user": user, "role": group, "admin_option": bool(option)},
        )
    return {"user": user, "role": group, "granted_by": login}


# --- the maintenance switch -----------------------------------------------------------------------

EVENTS_TRIGGERS_SQLITE = ("events_no_update", "events_no_delete")


@contextmanager
def events_maintenance(connection: Connection) -> Iterator[None]:
    """Let the enclosing transaction UPDATE or DELETE events (documented repairs only).

    PostgreSQL: ``SET LOCAL riskreg.maintenance = 'on'`` (it ends with the transaction).
    SQLite: the append-only triggers are dropped and created again afterwards, in the same
    transaction. Any edit still breaks ``riskreg audit verify``: this switch only lets it happen.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SET LOCAL riskreg.maintenance = 'on'"))
        yield
        connection.execute(text("SET LOCAL riskreg.maintenance = 'off'"))
        return
    names = ", ".join(f"'{name}'" for name in EVENTS_TRIGGERS_SQLITE)
    triggers = list(
        connection.execute(
            text(f"SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name IN ({names})")
        )
    )
    for name, _sql in triggers:
        connection.execute(text(f"DROP TRIGGER {name}"))
    yield
    for _name, sql in triggers:
        connection.execute(text(sql))
