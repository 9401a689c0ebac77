"""Benchmark: the commands a manager types, against minimal click + SQLAlchemy Core scripts doing the same work.

On a 5,000-risk SQLite register (built outside the timed region): `risk list --json`,
`risk show R-1`, `risk add`, `review due` and a 4-row outcome import, each alternated with
a script that imports click and SQLAlchemy Core, runs the same query (or insert) and prints
the rows as JSON. Both sides are whole processes. Also timed: `riskreg --help` and a usage
error (the issue's bar: under 0.15 s each), and `python -X importtime` of `risk list`, whose
ten largest imports (cumulative) `make bench` adds below its table.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RISKREG, Comparison, bench_env, wall
from bench.register_list import build_register

LIMIT = 1.5
HELP_LIMIT_S = 0.15

# One baseline script, told by its first argument what to do; the database path comes second.
BASELINE = r"""
import json
import sys

import click
from sqlalchemy import create_engine, text


@click.command()
@click.argument("what")
@click.argument("path")
@click.argument("extra", required=False)
def main(what, path, extra):
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        if what == "list":
            rows = connection.execute(text("SELECT * FROM risks ORDER BY id")).mappings().all()
        elif what == "show":
            rows = connection.execute(text("SELECT * FROM risks WHERE id = 1")).mappings().all()
            rows += connection.execute(
                text("SELECT * FROM events WHERE entity_id = 'R-1' ORDER BY seq")
            ).mappings().all()
        elif what == "due":
            rows = connection.execute(
                text(
                    "SELECT id, title, owner, last_reviewed FROM risks WHERE status != 'closed' "
                    "AND julianday('now') - julianday(last_reviewed) > coalesce(review_days, 90) "
                    "ORDER BY last_reviewed"
                )
            ).mappings().all()
        elif what == "add":
            connection.execute(
                text(
                    "INSERT INTO risks (title, side, mode, category, status, inherent_likelihood, "
                    "inherent_impact, likelihood, impact, last_reviewed, created_at, created_by, updated_at, "
                    "updated_by, version) VALUES ('Bench risk', 'citizen', 'delivery', 'finance', 'open', "
                    "3, 4, 3, 4, date('now'), datetime('now'), 'bench', datetime('now'), 'bench', 1)"
                )
            )
            rows = connection.execute(text("SELECT * FROM risks ORDER BY id DESC LIMIT 1")).mappings().all()
        else:  # import: read the CSV and insert its rows
            import csv

            with open(extra, newline="", encoding="utf-8") as handle:
                found = list(csv.DictReader(handle))
            connection.execute(
                text("INSERT INTO observations (import_id, metric, arm, unit_id, value) VALUES (1, 0, :arm, :unit, :value)"),
                [{"arm": int(r["arm"] == "pilot"), "unit": r["unit_id"], "value": float(r["value"])} for r in found],
            )
            rows = [{"rows": len(found)}]
    click.echo(json.dumps([dict(r) for r in rows], default=str))


main()
"""

PROTOCOL = """\
[pilot]
key = "bench-start"
title = "Start-up benchmark"
hypothesis = "Quick commands."

[design]
arms = ["comparison", "pilot"]

[[metrics]]
name = "score"
kind = "continuous"
role = "primary"
better = "higher"

[[stages]]
name = "main"
planned_n = 100
"""

ROWS = "unit_id,arm,metric,value\nu1,comparison,score,40\nu2,pilot,score,42\nu3,comparison,score,41\nu4,pilot,score,45\n"


def _median_pair(subject: list[str], baseline: list[str], runs: int, env: dict[str, str], fresh=None):  # type: ignore[no-untyped-def]
    """Alternate the two commands (after a warm-up each), preparing before each run; return both medians."""
    times: tuple[list[float], list[float]] = ([], [])
    for index in range(runs + 1):
        for side, command in enumerate((subject, baseline)):
            if fresh is not None:
                fresh()
            seconds = wall(command, env)
            if index:
                times[side].append(seconds)
    return statistics.median(times[0]), statistics.median(times[1])


def run(runs: int = 5) -> tuple[list[Comparison], str]:
    """Return one row per command, the --help and usage-error rows, and the largest imports of `risk list` (markdown)."""
    env = bench_env(RISKREG_ACTOR="bench")
    rows: list[Comparison] = []
    with tempfile.TemporaryDirectory(prefix="riskreg-startup-") as name:
        folder = Path(name)
        master = folder / "master.db"
        build_register(master)
        database = folder / "bench.db"
        shutil.copy(master, database)
        url = f"sqlite:///{database}"
        script = folder / "baseline.py"
        script.write_text(BASELINE, encoding="utf-8")
        (folder / "p.toml").write_text(PROTOCOL, encoding="utf-8")
        (folder / "rows.csv").write_text(ROWS, encoding="utf-8")
        subprocess.run(
            [*RISKREG, "--db", url, "pilot", "register", str(folder / "p.toml")],
            env=env,
            check=True,
            capture_output=True,
        )
        shutil.copy(database, master)  # the register with its pilot: each import starts from it

        def restore() -> None:
            shutil.copy(master, database)

        python = [sys.executable, str(script)]
        cases = [
            ("risk list --json", ["risk", "list", "--json"], ["list", str(database)], None),
            ("risk show R-1", ["risk", "show", "R-1"], ["show", str(database)], None),
            ("review due", ["review", "due"], ["due", str(database)], None),
            (
                "risk add",
                [
                    "risk",
                    "add",
                    "Bench risk",
                    "--side",
                    "citizen",
                    "--mode",
                    "delivery",
                    "--likelihood",
                    "3",
                    "--impact",
                    "4",
                    "--category",
                    "finance",
                ],
                ["add", str(database)],
                restore,
            ),
            (
                "pilot data (4 rows)",
                ["pilot", "data", "P-1", str(folder / "rows.csv"), "--stage", "main"],
                ["import", str(database), str(folder / "rows.csv")],
                restore,
            ),
        ]
        for label, args, base, fresh in cases:
            s, b = _median_pair([*RISKREG, "--db", url, *args], [*python, *base], runs, env, fresh)
            rows.append(
                Comparison(
                    f"start-up: {label}",
                    f"riskreg {label}",
                    "click + SQLAlchemy Core script",
                    s,
                    b,
                    LIMIT,
                    runs,
                )
            )
        for label, args in (("--help", ["--help"]), ("usage error", ["risk", "lst"])):
            seconds = _alone([*RISKREG, *args], runs, env)
            rows.append(
                Comparison(
                    f"start-up: {label}",
                    f"riskreg {' '.join(args)}",
                    "0.15 s",
                    seconds,
                    HELP_LIMIT_S,
                    1.0,
                    runs,
                )
            )
        imports = importtime_top(url, env)
    return rows, imports


def _alone(command: list[str], runs: int, env: dict[str, str]) -> float:
    """Median wall time of a command that may exit 2 (a usage error)."""
    import time

    times = []
    for _ in range(runs + 1):
        start = time.perf_counter()
        subprocess.run(command, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def importtime_top(url: str, env: dict[str, str], count: int = 10) -> str:
    """Return the `count` largest imports (cumulative) of `riskreg risk list --json`, as a markdown table."""
    found = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "riskreg", "--db", url, "risk", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    rows = []
    for line in found.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if match:
            rows.append((int(match.group(2)), match.group(4)))
    largest: dict[str, int] = {}
    for (
        us,
        name,
    ) in rows:  # a module may be listed twice: the import of it that began its package's, and its own
        largest[name] = max(us, largest.get(name, 0))
    top = sorted(((us, name) for name, us in largest.items()), reverse=True)[:count]
    return (
        f"`python -X importtime`, the {count} largest imports of `risk list --json`, cumulative:\n\n"
        "| module | ms |\n|---|---|\n" + "\n".join(f"| {name} | {us / 1000:.1f} |" for us, name in top)
    )


if __name__ == "__main__":
    results, imports = run()
    for result in results:
        print(result.row())
    print(f"\n{imports}")
