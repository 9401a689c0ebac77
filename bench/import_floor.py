"""Benchmark: where `pilot data`'s 1M-row import spends its time, part by part, and its floors.

Each part is timed side by side with the baseline of import_data (`sqlite3 .import` or
`psql \\copy` of the same file into a plain table), alternated in one run, medians:

    import       the whole `riskreg pilot data`, as import_data times it
    start-up     whole-process wall of a 4-row import (start-up, lookups, the import's
                 record, audit event and commit)
    check        reading and checking the file alone, as the forked checking process
                 does (no database, nothing written)
    convert and write
                 the importing process's own share beside its checker: reading,
                 converting and writing the file through the importer's writer, then
                 the commit (nothing checked)
    write        writing the rows, already converted, through the importer's writer,
                 then the commit
    write, no index
                 the same into an `observations` without its `import_id` index: the
                 index's cost is the difference
    store (PostgreSQL only)
                 `psql \\copy` of the rows already converted (codes for names, NULL for
                 missing) into a registered database's `observations`: riskreg's writer
                 left out too

The parts other than the whole import and start-up run in a process of their own
(``--part``), which reads the register's codes and, for the writes, converts the file
before its timer starts. A whole import runs "check" and "convert and write" side by side
in two processes (and, on PostgreSQL, a server process besides) on the machine's cores.

The floors are sums of these medians: start-up plus write (what the import would take if
reading, checking and converting cost nothing), and on PostgreSQL start-up plus store
(what the server takes to store the rows in their typed, indexed table, whatever riskreg
does). A floor above the bar shows that no reading or checking code, however fast, can
meet it.
"""

from __future__ import annotations

import csv
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Comparison, bench_env
from bench.import_data import (
    LARGE,
    PLAIN_TABLE,
    POSTGRES_RATIO_LIMIT,
    RATIO_LIMIT,
    Side,
    _admin,
    _fresh_copy,
    _import_command,
    _label,
    _pg_url,
    _register,
    _remove_db,
    measure,
    write_long_csv,
)

INDEX = "ix_observations_import_id"
CHUNK_ROWS = 1_400  # about the rows of one 64 KiB chunk the importer reads
MISSING = frozenset(("", "NA"))  # the missing markers the benchmark file uses


@dataclass(frozen=True)
class Part:
    """The median seconds of one part of the import, and of the baseline timed alternately with it."""

    name: str
    subject: str
    baseline: str
    subject_s: float
    baseline_s: float
    runs: int
    ok: bool = True  # a part has no bar of its own: it shows what the whole import's bar is up against

    def row(self) -> str:
        return (
            f"| {self.name} | {self.subject} | {self.baseline} | {self.subject_s:.3f} | {self.baseline_s:.3f} "
            f"| {self.subject_s / self.baseline_s:.2f} | | part |"
        )


# --- the timed parts, each in its own process ------------------------------------------------------


def _open(url: str) -> tuple[Any, dict[str, tuple[int, str]], tuple[str, ...], Any]:
    """Open the register; return it with P-1's metric codes, its arms and the intake an import would use."""
    from riskreg.db import open_database
    from riskreg.layout import intake_for
    from riskreg.pilots import get_pilot, metric_codes, protocol_of

    database = open_database(url)
    with database.read() as session:
        pilot = get_pilot(session, "P-1")
        protocol = protocol_of(pilot)
        codes = metric_codes(session, pilot)
    intake = intake_for(protocol, codes, None, False, database.config.missing_values)
    return database, codes, protocol.design.arms, intake


def _converted_rows(path: Path, url: str) -> Iterator[tuple[int, int, str, str, str, str]]:
    """Yield the file's rows as riskreg stores them: metric and arm codes, unit, value, exposure, site (texts)."""
    database, codes, arms, _intake = _open(url)
    database.dispose()
    code_of = {name: code for name, (code, _kind) in codes.items()}
    arm_of = {name: index for index, name in enumerate(arms)}
    with open(path, newline="", encoding="utf-8") as handle:
        rows = csv.reader(handle)
        next(rows)
        for unit, arm, metric, value, exposure, site in rows:
            yield code_of[metric], arm_of[arm], unit, value, exposure, site


def _chunks(path: Path, url: str, spelled: bool) -> list[list[list[Any]]]:
    """Read the benchmark file into the writer's columns, chunk by chunk: numbers as floats, or as COPY text."""
    rows = list(_converted_rows(path, url))

    def number(text: str) -> Any:
        if spelled:
            return "\\N" if text in MISSING else text
        return math.nan if text in MISSING else float(text)

    chunks = []
    for start in range(0, len(rows), CHUNK_ROWS):
        part = rows[start : start + CHUNK_ROWS]
        chunks.append(
            [
                [row[0] for row in part],
                [row[1] for row in part],
                [row[2] for row in part],
                [number(row[3]) for row in part],
                [number(row[4]) for row in part],
                [row[5] for row in part],
            ]
        )
    return chunks


def write_only(url: str, path: Path) -> float:
    """Write the file's rows, converted beforehand, as one import of P-1; return the seconds from writer to commit."""
    from riskreg import ingest
    from riskreg.db import open_database
    from riskreg.pilots import get_pilot
    from riskreg.register import Context

    postgres = url.startswith("postgresql")
    chunks = _chunks(path, url, spelled=postgres)
    database = open_database(url)
    ctx = Context(actor="bench", config=database.config)
    with database.write() as session:
        record = ingest.new_import(session, ctx, get_pilot(session, "P-1"), 0, "outcomes", str(path))
        start = time.perf_counter()
        writer = ingest._writer(session, record.id)
        for columns in chunks:
            if postgres:
                writer.write_texts(*columns)
            else:
                writer.write_columns(columns)
        writer.finish()
        writer.close()
    elapsed = time.perf_counter() - start
    database.dispose()
    return elapsed


def check_only(url: str, path: Path) -> float:
    """Read and check the whole file as the checking process does, writing nothing; return its seconds."""
    from riskreg import ingest
    from riskreg.csvfile import RowErrors

    database, codes, arms, intake = _open(url)
    database.dispose()
    start = time.perf_counter()
    loader = ingest._Loader(codes, arms, RowErrors.for_file(str(path)), ingest._NoWriter(), True, intake)
    checked = loader.checked(ingest._load(loader, path, str(path)), path)
    elapsed = time.perf_counter() - start
    if checked.errors.total or checked.rows != LARGE:
        raise RuntimeError(f"the check found {checked.errors.total} problems in {checked.rows} rows")
    return elapsed


def convert_and_write(url: str, path: Path) -> float:
    """Read, convert and write the whole file as the importing process does beside its checker; return its seconds."""
    from riskreg import ingest
    from riskreg.csvfile import RowErrors
    from riskreg.pilots import get_pilot
    from riskreg.register import Context

    database, codes, arms, intake = _open(url)
    ctx = Context(actor="bench", config=database.config)
    with database.write() as session:
        record = ingest.new_import(session, ctx, get_pilot(session, "P-1"), 0, "outcomes", str(path))
        start = time.perf_counter()
        writer = ingest._writer(session, record.id)
        loader = ingest._Loader(codes, arms, RowErrors.for_file(str(path)), writer, False, intake)
        ingest._load(loader, path, str(path))
        loader.close()
    elapsed = time.perf_counter() - start  # the commit included, as in write_only
    database.dispose()
    return elapsed


PARTS: dict[str, Callable[[str, Path], float]] = {
    "check": check_only,
    "convert-write": convert_and_write,
    "write": write_only,
}


# --- side by side ------------------------------------------------------------------------------


def _reported_seconds(command: list[str], env: dict[str, str]) -> float:
    """Run a `--part` process and return the seconds it reports."""
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr[-500:]}")
    return float(result.stdout.split()[-1])


@dataclass
class _Timed:
    """One timed part: its untimed preparation, how to time it once, and the runs kept."""

    name: str
    text: str
    prepare: Callable[[], None]
    time_once: Callable[[], float]
    seconds: list[float] = field(default_factory=list)


def _alternate(parts: list[_Timed], baseline: Side, runs: int, env: dict[str, str]) -> None:
    """After a warm-up round, run every part and the baseline in turn `runs` times; record each."""
    for keep in [False] + [True] * runs:
        for part in parts:
            part.prepare()
            seconds = part.time_once()
            if keep:
                part.seconds.append(seconds)
        baseline.prepare()
        seconds = measure(baseline.command, env)[0]
        if keep:
            baseline.seconds.append(seconds)


def _parts(
    backend: str,
    url: str,
    files: tuple[Path, Path],
    fresh: Callable[[], None],
    drop_index: Callable[[], None],
    env: dict[str, str],
) -> list[_Timed]:
    """The whole import and its parts on one backend, each from a fresh register."""
    csv_path, tiny = files

    def own_process(part: str) -> Callable[[], float]:
        command = [sys.executable, str(Path(__file__).resolve()), "--part", part, url, str(csv_path)]
        return lambda: _reported_seconds(command, env)

    def whole(command: list[str]) -> Callable[[], float]:
        return lambda: measure(command, env)[0]

    def without_index() -> None:
        fresh()
        drop_index()

    rows = _label(LARGE)
    return [
        _Timed(f"{backend} import", f"pilot data, {rows} rows", fresh, whole(_import_command(url, csv_path))),
        _Timed(f"{backend} start-up", "pilot data, 4 rows", fresh, whole(_import_command(url, tiny))),
        _Timed(f"{backend} check", f"reading and checking {rows} rows", fresh, own_process("check")),
        _Timed(
            f"{backend} convert and write",
            f"reading, converting and writing {rows} rows",
            fresh,
            own_process("convert-write"),
        ),
        _Timed(f"{backend} write", f"writing {rows} converted rows", fresh, own_process("write")),
        _Timed(
            f"{backend} write, no index", f"the same without {INDEX}", without_index, own_process("write")
        ),
    ]


def _rows(
    backend: str, parts: list[_Timed], baseline: Side, text: str, runs: int, limit: float
) -> list[Part | Comparison]:
    """Each part's row, then the floor: start-up plus write (and on PostgreSQL start-up plus store)."""
    base = statistics.median(baseline.seconds)
    medians = {p.name.removeprefix(f"{backend} "): statistics.median(p.seconds) for p in parts}
    rows: list[Part | Comparison] = [
        Part(p.name, p.text, text, medians[p.name.removeprefix(f"{backend} ")], base, runs) for p in parts
    ]
    rows.append(
        Comparison(
            f"import floor {_label(LARGE)} ({backend})",
            "floor: start-up + write",
            text,
            medians["start-up"] + medians["write"],
            base,
            limit,
            runs,
        )
    )
    if "store" in medians:
        rows.append(
            Comparison(
                f"import storage floor {_label(LARGE)} ({backend})",
                "floor: start-up + store",
                text,
                medians["start-up"] + medians["store"],
                base,
                limit,
                runs,
            )
        )
    return rows


def sqlite_parts(folder: Path, files: tuple[Path, Path], runs: int) -> list[Part | Comparison]:
    import sqlite3

    env = bench_env()
    template, work, plain = folder / "template.db", folder / "work.db", folder / "plain.db"
    _remove_db(template)
    _register(f"sqlite:///{template}", env)

    def drop_index() -> None:
        connection = sqlite3.connect(work)
        with connection:
            connection.execute(f"DROP INDEX {INDEX}")
        connection.close()

    parts = _parts("SQLite", f"sqlite:///{work}", files, _fresh_copy(template, work), drop_index, env)
    baseline = Side(["sqlite3", str(plain), f".import --csv {files[0]} obs"], lambda: _remove_db(plain))
    _alternate(parts, baseline, runs, env)
    return _rows("SQLite", parts, baseline, "sqlite3 .import --csv (new table)", runs, RATIO_LIMIT)


def postgres_parts(port: int, files: tuple[Path, Path], runs: int) -> list[Part | Comparison]:
    env = bench_env()
    _admin(port, "postgres", "DROP DATABASE IF EXISTS bench_template", "CREATE DATABASE bench_template")
    _register(_pg_url(port, "bench_template"), env)
    _admin(port, "postgres", "DROP DATABASE IF EXISTS bench_plain", "CREATE DATABASE bench_plain")
    clone = ("DROP DATABASE IF EXISTS bench_run", "CREATE DATABASE bench_run TEMPLATE bench_template")
    url = _pg_url(port, "bench_run")

    def fresh() -> None:
        _admin(port, "postgres", *clone)

    parts = _parts(
        "PostgreSQL", url, files, fresh, lambda: _admin(port, "bench_run", f"DROP INDEX {INDEX}"), env
    )
    psql = ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-v", "ON_ERROR_STOP=1"]
    converted = _converted_csv(url, files[0], fresh)
    columns = "observations (import_id, metric, arm, unit_id, value, exposure, site)"
    store = [*psql, "-d", "bench_run", "-c", f"\\copy {columns} FROM '{converted}' WITH (FORMAT csv)"]
    parts.append(
        _Timed(
            "PostgreSQL store",
            f"psql \\copy of {_label(LARGE)} converted rows into observations",
            fresh,
            lambda: measure(store, env)[0],
        )
    )
    copy = f"\\copy obs FROM '{files[0]}' WITH (FORMAT csv, HEADER true)"
    baseline = Side(
        [*psql, "-d", "bench_plain", "-c", copy],
        lambda: _admin(port, "bench_plain", "DROP TABLE IF EXISTS obs", PLAIN_TABLE),
    )
    _alternate(parts, baseline, runs, env)
    return _rows("PostgreSQL", parts, baseline, "psql \\copy (plain table)", runs, POSTGRES_RATIO_LIMIT)


def _converted_csv(url: str, source: Path, fresh: Callable[[], None]) -> Path:
    """Write the file as riskreg stores it (import 1, metric and arm codes, empty for missing): psql's input."""
    fresh()
    target = source.with_name("converted.csv")
    with open(target, "w", encoding="utf-8") as out:
        for code, arm, unit, value, exposure, site in _converted_rows(source, url):
            value = "" if value in MISSING else value
            out.write(f"1,{code},{arm},{unit},{value},{exposure},{site}\n")
    return target


def _postgres_parts(files: tuple[Path, Path], runs: int) -> Iterator[Part | Comparison]:
    from tests.pgserver import start_cluster

    try:
        cluster = start_cluster()
    except RuntimeError as exc:
        print(f"skipping PostgreSQL import parts: {exc}", file=sys.stderr)
        return
    try:
        yield from postgres_parts(cluster.port, files, runs)
    finally:
        cluster.stop()


def run(runs: int = 5) -> list[Part | Comparison]:
    """Generate the 1M-row file (the one import_data times) and a 4-row one; return each part's row and the floors."""
    with tempfile.TemporaryDirectory(prefix="riskreg-floor-") as name:
        folder = Path(name)
        files = (
            write_long_csv(folder / "outcomes-1M.csv", LARGE),
            write_long_csv(folder / "outcomes-4.csv", 4),
        )
        return [*sqlite_parts(folder, files, runs), *_postgres_parts(files, runs)]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--part"]:
        print(f"{PARTS[sys.argv[2]](sys.argv[3], Path(sys.argv[4])):.6f}")
    else:
        for result in run(runs=int(sys.argv[1]) if sys.argv[1:] else 5):
            print(result.row())
