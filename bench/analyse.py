"""Benchmark: `riskreg pilot analyse --json` vs numpy + `scipy.stats.ttest_ind` on the same SQLite values.

Outside the timed region, a SQLite database is built for 100k and for 1M continuous
observations (half per arm): a minimal protocol (one continuous primary metric) is
registered and a seeded long CSV is imported with `riskreg pilot data`.  At 1M, the subject
and a baseline script (sqlite3 → numpy arrays → Welch's t-test) are alternated after one
warm-up each and medians are reported.  The subject's peak RSS is read by GNU time (see
import_data.measure) at both sizes: it should stay flat, as analyse reads sufficient
statistics that each import kept (import_counts) rather than the raw values.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RISKREG, Comparison, bench_env
from bench.import_data import LARGE, SMALL, Memory, Side, alternate, measure

RATIO_LIMIT = 1.0
MEMORY_LIMIT_MIB = 150.0
GROWTH_LIMIT = 1.10  # "flat": peak RSS at 1M within 10% of that at 100k
STAGE = "main"
METRIC = "score"

PROTOCOL = f"""\
[pilot]
key = "bench-analyse"
title = "Analysis benchmark"
hypothesis = "The pilot arm scores higher than the comparison arm."

[design]
arms = ["comparison", "pilot"]
allocation = [1, 1]
alpha = 0.05
power = 0.8

[[metrics]]
name = "{METRIC}"
kind = "continuous"
role = "primary"
better = "higher"
test = "superiority"

[[stages]]
name = "{STAGE}"
planned_n = 500000
"""

# The baseline: the same values from the same database into numpy, then Welch's t-test.
BASELINE = """\
import sqlite3
import sys

import numpy as np
import scipy.stats

connection = sqlite3.connect(sys.argv[1])
arms = []
for arm in (0, 1):
    cursor = connection.execute("SELECT value FROM observations WHERE arm = ? AND value IS NOT NULL", (arm,))
    arms.append(np.fromiter((row[0] for row in cursor), float))
connection.close()
result = scipy.stats.ttest_ind(arms[1], arms[0], equal_var=False)  # pilot − comparison
print(result.statistic, result.pvalue, result.df)
"""


# --- the data ----------------------------------------------------------------------------------


def _label(rows: int) -> str:
    return f"{rows // 1000}k" if rows < 1_000_000 else f"{rows // 1_000_000}M"


def write_csv(path: Path, rows: int, seed: int = 20241) -> Path:
    """Write a seeded long CSV of `rows` observations of `score` ~ normal(50, 10), half per arm."""
    if rows % 2:
        raise ValueError("rows must be even (half per arm)")
    values = np.random.default_rng(seed).normal(50.0, 10.0, rows)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("unit_id,arm,metric,value\n")
        for start in range(0, rows, 50_000):
            handle.write(
                "".join(
                    f"U-{i:07d},{'pilot' if i % 2 else 'comparison'},{METRIC},{values[i]:.4f}\n"
                    for i in range(start, min(start + 50_000, rows))
                )
            )
    return path


def build_database(folder: Path, rows: int, env: dict[str, str]) -> Path:
    """Register the protocol in a new SQLite database and import `rows` observations into it."""
    protocol = folder / "protocol.toml"
    protocol.write_text(PROTOCOL, encoding="utf-8")
    database = folder / f"analyse-{_label(rows)}.db"
    csv = write_csv(folder / f"scores-{_label(rows)}.csv", rows)
    url = f"sqlite:///{database}"
    measure([*RISKREG, "--db", url, "init"], env)
    measure([*RISKREG, "--db", url, "pilot", "register", str(protocol)], env)
    measure([*RISKREG, "--db", url, "pilot", "data", "P-1", str(csv), "--stage", STAGE], env)
    csv.unlink()
    return database


def _analyse_command(database: Path) -> list[str]:
    return [*RISKREG, "--db", f"sqlite:///{database}", "pilot", "analyse", "P-1", "--json"]


def check_agreement(database: Path, rows: int, script: Path, env: dict[str, str]) -> None:
    """Fail loudly unless riskreg's Welch t and df match scipy's on the same data (untimed)."""
    ours = json.loads(
        subprocess.run(_analyse_command(database), capture_output=True, env=env, check=True).stdout
    )
    theirs = subprocess.run(
        [sys.executable, str(script), str(database)], capture_output=True, text=True, env=env, check=True
    ).stdout
    metric = ours["metrics"][0]
    statistic, _p_value, df = (float(x) for x in theirs.split())
    n = sum(metric["n"].values())
    if n != rows or not all(
        math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
        for a, b in ((metric["statistic"], statistic), (metric["df"], df))
    ):
        raise RuntimeError(
            f"riskreg and scipy disagree on {rows:,} observations: n {n}, t {metric['statistic']!r} vs "
            f"{statistic!r}, df {metric['df']!r} vs {df!r}"
        )


# --- the rows ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlatMemory(Memory):
    """Peak RSS at 100k and 1M observations: under a ceiling and flat (growth under GROWTH_LIMIT)."""

    growth_limit: float = GROWTH_LIMIT

    @property
    def growth(self) -> float:
        return self.large_mib / self.small_mib

    @property
    def ok(self) -> bool:
        return super().ok and self.growth <= self.growth_limit

    def row(self) -> str:
        shape = "flat" if self.growth <= self.growth_limit else "grows"
        verdict = f"{'ok' if self.ok else 'OVER'} ({shape})"
        return (
            f"| {self.name} | peak RSS, {LARGE:,} observations | peak RSS, {SMALL:,} observations "
            f"| {self.large_mib:.1f} MiB | {self.small_mib:.1f} MiB | {self.growth:.2f} "
            f"| ≤ {self.limit_mib:g} MiB and ≤ {self.growth_limit:g}× | {verdict} |"
        )


def _no_preparation() -> None:
    """analyse only reads the database, so runs need no fresh copy."""


def run(runs: int = 5) -> list[Comparison | Memory]:
    """Build 100k and 1M databases; return the 1M timing row and the memory row."""
    env = bench_env()
    with tempfile.TemporaryDirectory(prefix="riskreg-analyse-") as name:
        folder = Path(name)
        script = folder / "baseline.py"
        script.write_text(BASELINE, encoding="utf-8")
        peaks: dict[int, float] = {}
        large: tuple[Side, Side] | None = None
        for rows in (SMALL, LARGE):
            database = build_database(folder, rows, env)
            check_agreement(database, rows, script, env)
            subject = Side(_analyse_command(database), _no_preparation)
            baseline = Side([sys.executable, str(script), str(database)], _no_preparation)
            alternate(subject, baseline, runs, env)
            peaks[rows] = max(subject.peak_kib) / 1024
            if rows == LARGE:
                large = (subject, baseline)
        assert large is not None
    subject, baseline = large
    # the 100k run feeds the memory row only: at that size process start-up dominates the time
    timing = Comparison(
        f"analyse {_label(LARGE)} (SQLite)",
        f"pilot analyse --json, {LARGE:,} continuous observations",
        "sqlite3 → numpy → scipy ttest_ind(equal_var=False)",
        statistics.median(subject.seconds),
        statistics.median(baseline.seconds),
        RATIO_LIMIT,
        runs,
    )
    memory = FlatMemory("analyse memory (SQLite)", peaks[SMALL], peaks[LARGE], MEMORY_LIMIT_MIB)
    return [timing, memory]


if __name__ == "__main__":
    for result in run():
        print(result.row())
