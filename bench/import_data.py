"""Benchmark: `riskreg pilot data` on a long CSV vs `sqlite3 .import` and `psql \\copy` of the same file.

Each timed run starts from a fresh database (a copied SQLite file or a PostgreSQL database
cloned from a registered template), prepared outside the timed region; subject and baseline
runs alternate after one warm-up each, and medians are reported. The subject's peak RSS is
read by GNU time around each timed run (see measure).
"""

from __future__ import annotations

import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RISKREG, ROOT, Comparison, bench_env

PROTOCOL = ROOT / "pilots" / "hospital-befriending.toml"
SMALL, LARGE = 100_000, 1_000_000
RATIO_LIMIT = 1.5  # against sqlite3 .import
POSTGRES_RATIO_LIMIT = 2.0  # against psql \copy (issue 19)
MEMORY_LIMIT_MIB = 150.0
HEADER = "unit_id,arm,metric,value,exposure,site\n"
ARMS = ("comparison", "pilot")
SITES = ("riverside", "northgate", "valley", "harbour")
PLAIN_TABLE = "CREATE TABLE obs (unit_id text, arm text, metric text, value text, exposure text, site text)"


# --- the data file ------------------------------------------------------------------------------


def _unit_lines(rng: random.Random, number: int) -> str:
    """Return the four long-form rows (one per metric) of one unit, a few values missing."""
    unit, arm, site = f"HB-{number:07d}", rng.choice(ARMS), rng.choice(SITES)
    wellbeing = "NA" if rng.random() < 0.04 else str(min(70, max(14, round(rng.gauss(44, 8)))))
    readmitted = "1" if rng.random() < 0.18 else "0"
    loneliness = "NA" if rng.random() < 0.08 else str(rng.randint(3, 9))
    incidents = "1" if rng.random() < 0.05 else "0"
    exposure = f"{rng.uniform(0.5, 8.0):.1f}"
    prefix = f"{unit},{arm},"
    return (
        f"{prefix}wellbeing,{wellbeing},,{site}\n"
        f"{prefix}readmitted_30d,{readmitted},,{site}\n"
        f"{prefix}loneliness,{loneliness},,{site}\n"
        f"{prefix}safeguarding_incidents,{incidents},{exposure},{site}\n"
    )


def write_long_csv(path: Path, rows: int, seed: int = 20240) -> Path:
    """Write a seeded long-form outcome CSV of `rows` rows (4 per unit) for hospital-befriending."""
    if rows % 4:
        raise ValueError("rows must be a multiple of 4 (one row per metric per unit)")
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(HEADER)
        chunk: list[str] = []
        for number in range(1, rows // 4 + 1):
            chunk.append(_unit_lines(rng, number))
            if len(chunk) >= 10_000:
                handle.write("".join(chunk))
                chunk = []
        handle.write("".join(chunk))
    return path


# --- timing with per-run preparation ---------------------------------------------------------------


@dataclass
class Side:
    """One side of a comparison: its command and what to do (untimed) before each run."""

    command: list[str]
    prepare: Callable[[], None]
    seconds: list[float] = field(default_factory=list)
    peak_kib: list[int] = field(default_factory=list)


GNU_TIME = Path("/usr/bin/time")


def measure(command: Sequence[str], env: dict[str, str]) -> tuple[float, int]:
    """Run a command to completion; return its wall seconds and peak RSS (KiB); fail loudly if it fails.

    The command is started by GNU time, whose %M is its peak RSS. os.wait4 on a child of
    this Python process would not do: Linux carries the high-water mark of the forked
    image (this process, tens of MiB) across exec, so every reading would be at least that.
    """
    if not GNU_TIME.exists():
        raise RuntimeError("the benchmarks need GNU time for peak memory: apt-get install time")
    with tempfile.TemporaryFile() as errors, tempfile.NamedTemporaryFile("r") as peak:
        start = time.perf_counter()
        result = subprocess.run(
            [str(GNU_TIME), "-o", peak.name, "-f", "%M", *command],
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env=env,
            check=False,
        )
        elapsed = time.perf_counter() - start
        if result.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"{' '.join(command)} failed: {errors.read().decode()[-500:]}")
        return elapsed, int(peak.read().split()[-1])


def tree_peak_mib(side: Side, env: dict[str, str]) -> float:
    """Run one side once more (untimed) and return the peak of its processes' summed RSS, sampled every 10 ms.

    A large import forks a checking process, and GNU time's %M is the peak of the largest
    single process; the sum over the process tree counts the pages they share twice, so
    it is an upper bound on what the import holds.
    """
    side.prepare()
    process = subprocess.Popen(side.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    peak = 0
    while process.poll() is None:
        peak = max(peak, _tree_rss_kib(process.pid))
        time.sleep(0.01)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(side.command)} failed")
    return peak / 1024


def _tree_rss_kib(pid: int) -> int:
    """The summed VmRSS (KiB) of a process and all its descendants, read from /proc."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            tasks = list(Path(f"/proc/{current}/task").iterdir())
            pending += [int(child) for task in tasks for child in (task / "children").read_text().split()]
        except OSError:
            continue  # ended meanwhile
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        total += int(found.group(1)) if found else 0
    return total


def _run(side: Side, env: dict[str, str], keep: bool) -> None:
    """Prepare (untimed) and run one side once, recording the run if `keep`."""
    side.prepare()
    seconds, peak = measure(side.command, env)
    if keep:
        side.seconds.append(seconds)
        side.peak_kib.append(peak)


def alternate(subject: Side, baseline: Side, runs: int, env: dict[str, str]) -> None:
    """One warm-up each, then `runs` alternated subject/baseline runs, recorded on the sides."""
    _run(subject, env, keep=False)
    _run(baseline, env, keep=False)
    for _ in range(runs):
        _run(subject, env, keep=True)
        _run(baseline, env, keep=True)


def compare(
    name: str, subject: Side, baseline: Side, texts: tuple[str, str], runs: int, limit: float = RATIO_LIMIT
) -> Comparison:
    """Turn two recorded sides into a Comparison row of their medians."""
    return Comparison(
        name,
        texts[0],
        texts[1],
        statistics.median(subject.seconds),
        statistics.median(baseline.seconds),
        limit,
        runs,
    )


@dataclass(frozen=True)
class Memory:
    """Peak RSS of the subject at a small and a large file (the same row shape as Comparison)."""

    name: str
    small_mib: float
    large_mib: float
    limit_mib: float = MEMORY_LIMIT_MIB

    @property
    def ok(self) -> bool:
        return max(self.small_mib, self.large_mib) <= self.limit_mib

    def row(self) -> str:
        verdict = "ok" if self.ok else "OVER"
        return (
            f"| {self.name} | peak RSS, {LARGE:,} rows | peak RSS, {SMALL:,} rows "
            f"| {self.large_mib:.1f} MiB | {self.small_mib:.1f} MiB | {self.large_mib / self.small_mib:.2f} "
            f"| ≤ {self.limit_mib:g} MiB | {verdict} |"
        )


def _label(rows: int) -> str:
    return f"{rows // 1000}k" if rows < 1_000_000 else f"{rows // 1_000_000}M"


def _import_command(url: str, csv: Path) -> list[str]:
    return [*RISKREG, "--db", url, "pilot", "data", "P-1", str(csv), "--stage", "feasibility"]


def _register(url: str, env: dict[str, str]) -> None:
    """Create a register at `url` and register the example protocol in it (as P-1)."""
    measure([*RISKREG, "--db", url, "init"], env)
    measure([*RISKREG, "--db", url, "pilot", "register", str(PROTOCOL)], env)


# --- SQLite ------------------------------------------------------------------------------------


def _fresh_copy(template: Path, target: Path) -> Callable[[], None]:
    """Return a preparation that replaces `target` (and its WAL files) with a copy of `template`."""

    def prepare() -> None:
        _remove_db(target)
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{template}{suffix}")
            if source.exists():
                shutil.copyfile(source, f"{target}{suffix}")

    return prepare


def _remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def sqlite_case(folder: Path, csv: Path, rows: int, runs: int) -> tuple[Comparison, float, float]:
    """Time riskreg's import into a registered SQLite db vs `sqlite3 .import` into a new table.

    Also return the subject's peak RSS: of its largest process, and of its process tree.
    """
    env = bench_env()
    template, work, plain = folder / "template.db", folder / "work.db", folder / "plain.db"
    _remove_db(template)
    _register(f"sqlite:///{template}", env)
    subject = Side(_import_command(f"sqlite:///{work}", csv), _fresh_copy(template, work))
    baseline = Side(["sqlite3", str(plain), f".import --csv {csv} obs"], lambda: _remove_db(plain))
    alternate(subject, baseline, runs, env)
    texts = (f"pilot data, {_label(rows)} long rows, SQLite", "sqlite3 .import --csv (new table)")
    comparison = compare(f"import {_label(rows)} (SQLite)", subject, baseline, texts, runs)
    return comparison, max(subject.peak_kib) / 1024, tree_peak_mib(subject, env)


# --- PostgreSQL --------------------------------------------------------------------------------


def _admin(port: int, dbname: str, *statements: str) -> None:
    """Run statements in autocommit mode on one database of the cluster."""
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", port=port, user="postgres", dbname=dbname, autocommit=True
    ) as conn:
        for statement in statements:
            conn.execute(statement)


def _pg_url(port: int, dbname: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{dbname}"


def postgres_case(port: int, csv: Path, rows: int, runs: int) -> tuple[Comparison, float]:
    """Time riskreg's COPY import into a cloned registered db vs `psql \\copy` into a plain table."""
    env = bench_env()
    _admin(port, "postgres", "DROP DATABASE IF EXISTS bench_template", "CREATE DATABASE bench_template")
    _register(_pg_url(port, "bench_template"), env)
    _admin(port, "postgres", "DROP DATABASE IF EXISTS bench_plain", "CREATE DATABASE bench_plain")
    clone = ("DROP DATABASE IF EXISTS bench_run", "CREATE DATABASE bench_run TEMPLATE bench_template")
    subject = Side(_import_command(_pg_url(port, "bench_run"), csv), lambda: _admin(port, "postgres", *clone))
    copy = f"\\copy obs FROM '{csv}' WITH (FORMAT csv, HEADER true)"
    psql = ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "bench_plain"]
    baseline = Side(
        [*psql, "-v", "ON_ERROR_STOP=1", "-c", copy],
        lambda: _admin(port, "bench_plain", "DROP TABLE IF EXISTS obs", PLAIN_TABLE),
    )
    alternate(subject, baseline, runs, env)
    texts = (f"pilot data, {_label(rows)} long rows, PostgreSQL (COPY)", "psql \\copy (plain table)")
    return compare(
        f"import {_label(rows)} (PostgreSQL)", subject, baseline, texts, runs, POSTGRES_RATIO_LIMIT
    ), max(subject.peak_kib) / 1024


def _postgres_rows(files: dict[int, Path], runs: int) -> list[Comparison | Memory]:
    """Run the PostgreSQL cases on a throwaway cluster; no rows if no cluster can start here."""
    from tests.pgserver import start_cluster

    try:
        cluster = start_cluster()
    except RuntimeError as exc:
        print(f"skipping PostgreSQL import benchmark: {exc}", file=sys.stderr)
        return []
    try:
        results = {rows: postgres_case(cluster.port, csv, rows, runs) for rows, csv in files.items()}
    finally:
        cluster.stop()
    memory = Memory("import memory (PostgreSQL)", results[SMALL][1], results[LARGE][1])
    return [results[LARGE][0], memory]


# --- the benchmark -------------------------------------------------------------------------------


def run(runs: int = 5) -> list[Comparison | Memory]:
    """Generate 100k- and 1M-row files and return the SQLite and PostgreSQL rows."""
    with tempfile.TemporaryDirectory(prefix="riskreg-import-") as name:
        folder = Path(name)
        files = {
            rows: write_long_csv(folder / f"outcomes-{_label(rows)}.csv", rows) for rows in (SMALL, LARGE)
        }
        sqlite = {rows: sqlite_case(folder, csv, rows, runs) for rows, csv in files.items()}
        # the 100k run feeds the memory row only: at that size process start-up dominates the time
        results: list[Comparison | Memory] = [sqlite[LARGE][0]]
        results.append(Memory("import memory (SQLite)", sqlite[SMALL][1], sqlite[LARGE][1]))
        results.append(
            Memory("import memory, importer + checker summed (SQLite)", sqlite[SMALL][2], sqlite[LARGE][2])
        )
        results += _postgres_rows(files, runs)
    return results


if __name__ == "__main__":
    for result in run():
        print(result.row())
