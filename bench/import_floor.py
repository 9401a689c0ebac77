"""Benchmark: the floor under `pilot data`'s 1M-row import, against the same baselines as import_data.

The floor is what the import would take if reading, splitting, checking and converting
the file cost nothing:

    floor = whole-process wall of `riskreg pilot data` on a 4-row file
            (start-up, lookups, the import's record, audit event and commit)
          + wall of writing the 1M rows, already converted, through the importer's own
            writer (multi-row INSERTs on SQLite, COPY on PostgreSQL) and committing them

The second part runs in its own process (`--write`), which converts the file before its
timer starts. Floor parts and baseline are alternated in one run, as in import_data. A
floor above the limit shows that no reading or checking code, however fast, can meet it
with these writers.

On PostgreSQL a second floor leaves riskreg's writer out too: the 4-row import plus `psql
\\copy` of the file already converted (codes for names, NULL for missing) into a registered
database's `observations`, typed columns and BRIN index. Above the limit, it shows that the
bar is below what the server itself takes to store the rows, whatever riskreg did.
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

CHUNK_ROWS = 1_400  # about the rows of one 64 KiB chunk the importer reads
MISSING = frozenset(("", "NA"))  # the missing markers the benchmark file uses


# --- the write-only process ----------------------------------------------------------------------


def _chunks(path: Path, codes: dict[str, int], arms: dict[str, int], spelled: bool) -> list[list[list[Any]]]:
    """Read the benchmark file into the writer's columns, chunk by chunk: numbers as floats, or as COPY text."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[1:]

    def number(text: str) -> Any:
        if spelled:
            return "\\N" if text in MISSING else text
        return math.nan if text in MISSING else float(text)

    chunks = []
    for start in range(0, len(rows), CHUNK_ROWS):
        part = rows[start : start + CHUNK_ROWS]
        chunks.append(
            [
                [codes[row[2]] for row in part],
                [arms[row[1]] for row in part],
                [row[0] for row in part],
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
    from riskreg.pilots import get_pilot, metric_codes, protocol_of
    from riskreg.register import Context

    database = open_database(url)
    with database.read() as session:
        pilot = get_pilot(session, "P-1")
        codes = {name: code for name, (code, _kind) in metric_codes(session, pilot).items()}
        arms = {name: index for index, name in enumerate(protocol_of(pilot).design.arms)}
    postgres = url.startswith("postgresql")
    chunks = _chunks(path, codes, arms, spelled=postgres)
    ctx = Context(actor="bench", config=database.config)
    with database.write() as session:
        pilot = get_pilot(session, "P-1")
        record = ingest._new_import(session, ctx, pilot, 0, "outcomes", str(path))
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


# --- side by side ------------------------------------------------------------------------------


def _reported_seconds(command: list[str], env: dict[str, str]) -> float:
    """Run a `--write` process and return the seconds it reports."""
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr[-500:]}")
    return float(result.stdout.split()[-1])


def _floor_rows(
    name: str,
    texts: tuple[str, str],
    start_side: Side,
    write: tuple[Callable[[], float], Callable[[], None]],
    baseline: Side,
    runs: int,
    env: dict[str, str],
    limit: float = RATIO_LIMIT,
) -> Comparison:
    """Alternate start-up runs, write runs and baseline runs (after a warm-up each); the floor is the sum of medians."""
    timed_write, prepare_write = write
    writes: list[float] = []
    for keep in [False] + [True] * runs:
        start_side.prepare()
        start_s = measure(start_side.command, env)[0]
        prepare_write()
        write_s = timed_write()
        baseline.prepare()
        baseline_s = measure(baseline.command, env)[0]
        if keep:
            start_side.seconds.append(start_s)
            writes.append(write_s)
            baseline.seconds.append(baseline_s)
    floor = statistics.median(start_side.seconds) + statistics.median(writes)
    return Comparison(name, texts[0], texts[1], floor, statistics.median(baseline.seconds), limit, runs)


def _write_command(url: str, csv_path: Path) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--write", url, str(csv_path)]


def sqlite_floor(folder: Path, csv_path: Path, tiny: Path, runs: int) -> Comparison:
    env = bench_env()
    template, work, plain = folder / "template.db", folder / "work.db", folder / "plain.db"
    _remove_db(template)
    _register(f"sqlite:///{template}", env)
    url = f"sqlite:///{work}"
    start_side = Side(_import_command(url, tiny), _fresh_copy(template, work))
    baseline = Side(["sqlite3", str(plain), f".import --csv {csv_path} obs"], lambda: _remove_db(plain))
    texts = (
        f"floor: 4-row import + writing {_label(LARGE)} converted rows, SQLite",
        "sqlite3 .import --csv (new table)",
    )
    command = _write_command(url, csv_path)
    write = (lambda: _reported_seconds(command, env), _fresh_copy(template, work))
    return _floor_rows(
        f"import floor {_label(LARGE)} (SQLite)", texts, start_side, write, baseline, runs, env
    )


def postgres_floor(port: int, csv_path: Path, tiny: Path, runs: int) -> list[Comparison]:
    env = bench_env()
    _admin(port, "postgres", "DROP DATABASE IF EXISTS bench_template", "CREATE DATABASE bench_template")
    _register(_pg_url(port, "bench_template"), env)
    _admin(port, "postgres", "DROP DATABASE IF EXISTS bench_plain", "CREATE DATABASE bench_plain")
    clone = ("DROP DATABASE IF EXISTS bench_run", "CREATE DATABASE bench_run TEMPLATE bench_template")
    url = _pg_url(port, "bench_run")
    start_side = Side(_import_command(url, tiny), lambda: _admin(port, "postgres", *clone))
    copy = f"\\copy obs FROM '{csv_path}' WITH (FORMAT csv, HEADER true)"
    psql = ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "bench_plain"]
    baseline = Side(
        [*psql, "-v", "ON_ERROR_STOP=1", "-c", copy],
        lambda: _admin(port, "bench_plain", "DROP TABLE IF EXISTS obs", PLAIN_TABLE),
    )
    texts = (
        f"floor: 4-row import + COPY of {_label(LARGE)} rows as text, PostgreSQL",
        "psql \\copy (plain table)",
    )
    command = _write_command(url, csv_path)
    write = (lambda: _reported_seconds(command, env), lambda: _admin(port, "postgres", *clone))
    floor = _floor_rows(
        f"import floor {_label(LARGE)} (PostgreSQL)",
        texts,
        start_side,
        write,
        baseline,
        runs,
        env,
        POSTGRES_RATIO_LIMIT,
    )
    converted = _converted_csv(url, csv_path, csv_path.with_name("converted.csv"), clone, port)
    columns = "observations (import_id, metric, arm, unit_id, value, exposure, site)"
    store = [
        *psql[:-1],
        "bench_run",
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        f"\\copy {columns} FROM '{converted}' WITH (FORMAT csv)",
    ]
    storage = _floor_rows(
        f"import storage floor {_label(LARGE)} (PostgreSQL)",
        (
            f"floor: 4-row import + psql \\copy of {_label(LARGE)} converted rows into observations",
            "psql \\copy (plain table)",
        ),
        Side(start_side.command, start_side.prepare),
        (lambda: measure(store, env)[0], lambda: _admin(port, "postgres", *clone)),
        Side(baseline.command, baseline.prepare),
        runs,
        env,
        POSTGRES_RATIO_LIMIT,
    )
    return [floor, storage]


def _converted_csv(url: str, source: Path, target: Path, clone: tuple[str, ...], port: int) -> Path:
    """Write the file as riskreg stores it (import 1, metric and arm codes, empty for missing): psql's input."""
    from riskreg.db import open_database
    from riskreg.pilots import get_pilot, metric_codes, protocol_of

    _admin(port, "postgres", *clone)
    database = open_database(url)
    with database.read() as session:
        pilot = get_pilot(session, "P-1")
        codes = {name: code for name, (code, _kind) in metric_codes(session, pilot).items()}
        arms = {name: index for index, name in enumerate(protocol_of(pilot).design.arms)}
    database.dispose()
    with open(source, newline="", encoding="utf-8") as given, open(target, "w", encoding="utf-8") as out:
        rows = csv.reader(given)
        next(rows)
        for unit, arm, metric, value, exposure, site in rows:
            value = "" if value in MISSING else value
            out.write(f"1,{codes[metric]},{arms[arm]},{unit},{value},{exposure},{site}\n")
    return target


def _postgres_floor(csv_path: Path, tiny: Path, runs: int) -> Iterator[Comparison]:
    from tests.pgserver import start_cluster

    try:
        cluster = start_cluster()
    except RuntimeError as exc:
        print(f"skipping PostgreSQL import floor: {exc}", file=sys.stderr)
        return
    try:
        yield from postgres_floor(cluster.port, csv_path, tiny, runs)
    finally:
        cluster.stop()


def run(runs: int = 5) -> list[Comparison]:
    """Generate the 1M-row file (the one import_data times) and a 4-row one; return the floor rows."""
    with tempfile.TemporaryDirectory(prefix="riskreg-floor-") as name:
        folder = Path(name)
        csv_path = write_long_csv(folder / "outcomes-1M.csv", LARGE)
        tiny = write_long_csv(folder / "outcomes-4.csv", 4)
        return [sqlite_floor(folder, csv_path, tiny, runs), *_postgres_floor(csv_path, tiny, runs)]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write"]:
        print(f"{write_only(sys.argv[2], Path(sys.argv[3])):.6f}")
    else:
        for result in run():
            print(result.row())
