"""Benchmark: a cluster-randomised pilot's analysis against csv + numpy + scipy `ttest_ind` on the same file.

Outside the timed region, SQLite databases are built for 100k and 1M observations: 200
clusters (100 per arm), a continuous primary with a baseline covariate, half the
observations each (a wide CSV of unit_id, arm, site, score, score_at_referral, imported
with `riskreg pilot data`). At 1M the subject (`pilot analyse --json`: the two-stage
cluster-level adjustment, ICC and design effect) and the baseline script (the csv module
reads the same file, numpy arrays, Welch's t test) are alternated after one warm-up each.

Also timed, once, for the floor: the pairing query alone in the sqlite3 shell (each unit's
outcome and baseline grouped from their rows, then summed by cluster, arm and missing
baseline). The issue's bar is 1.0×; the closing note reads the floor against it.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.analyse import FlatMemory
from bench.common import RISKREG, Comparison, bench_env
from bench.import_data import LARGE, SMALL, Side, alternate, measure

RATIO_LIMIT = 1.0
MEMORY_LIMIT_MIB = 150.0
CLUSTERS = 200

PROTOCOL = """\
[pilot]
key = "bench-clusters"
title = "Cluster analysis benchmark"
hypothesis = "The pilot arm scores higher."

[design]
arms = ["comparison", "pilot"]
unit = "cluster"
clusters_per_arm = 100
cluster_size = 2500
icc = 0.05

[[metrics]]
name = "score"
kind = "continuous"
role = "primary"
better = "higher"
covariate = "score_at_referral"

[[metrics]]
name = "score_at_referral"
kind = "continuous"
role = "baseline"
better = "higher"

[[stages]]
name = "main"
planned_n = 250000
"""

BASELINE = """\
import csv
import sys

import numpy as np
import scipy.stats

with open(sys.argv[1], newline="", encoding="utf-8") as handle:
    rows = csv.reader(handle)
    next(rows)
    arms = ([], [])
    for row in rows:
        arms[row[1] == "pilot"].append(float(row[3]))
result = scipy.stats.ttest_ind(np.array(arms[1]), np.array(arms[0]), equal_var=False)
print(result.statistic, result.pvalue)
"""

PAIRING = """\
SELECT site, arm, gap, count(*), sum(y), sum(x), sum(y * y), sum(x * x), sum(x * y) FROM (
  SELECT arm, max(CASE WHEN metric = 0 THEN coalesce(site, '') END) AS site,
         max(CASE WHEN metric = 0 THEN value END) AS y, max(CASE WHEN metric = 1 THEN value END) AS x,
         max(CASE WHEN metric = 1 THEN value END) IS NULL AS gap
  FROM observations WHERE import_id IN (1) AND metric IN (0, 1) GROUP BY unit_id, arm)
WHERE y IS NOT NULL GROUP BY site, arm, gap;
"""


def write_csv(path: Path, observations: int, seed: int = 20242) -> Path:
    """Write a seeded wide CSV: observations/2 units in 200 clusters, an outcome and its baseline each."""
    units = observations // 2
    rng = np.random.default_rng(seed)
    site = rng.integers(0, CLUSTERS, units)
    baseline = rng.normal(50.0, 10.0, units)
    outcome = 20 + 0.6 * baseline + rng.normal(0, 2.0, CLUSTERS)[site] + rng.normal(0, 8.0, units)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("unit_id,arm,site,score,score_at_referral\n")
        for start in range(0, units, 50_000):
            handle.write(
                "".join(
                    f"U-{i:07d},{'pilot' if site[i] % 2 else 'comparison'},site-{site[i]:03d},"
                    f"{outcome[i]:.3f},{baseline[i]:.3f}\n"
                    for i in range(start, min(start + 50_000, units))
                )
            )
    return path


def build(folder: Path, observations: int, env: dict[str, str]) -> tuple[Path, Path]:
    """Register the protocol in a new SQLite database and import the file; return (database, file)."""
    protocol = folder / "protocol.toml"
    protocol.write_text(PROTOCOL, encoding="utf-8")
    database = folder / f"clusters-{observations}.db"
    data = write_csv(folder / f"clusters-{observations}.csv", observations)
    url = f"sqlite:///{database}"
    measure([*RISKREG, "--db", url, "init"], env)
    measure([*RISKREG, "--db", url, "pilot", "register", str(protocol)], env)
    measure([*RISKREG, "--db", url, "pilot", "data", "P-1", str(data), "--stage", "main"], env)
    return database, data


def _nothing() -> None:
    """analyse only reads: runs need no preparation."""


def run(runs: int = 5) -> list[Comparison | FlatMemory]:
    """Return the 1M timing row, the pairing query's floor and the memory row."""
    env = bench_env()
    with tempfile.TemporaryDirectory(prefix="riskreg-clusters-") as name:
        folder = Path(name)
        script = folder / "baseline.py"
        script.write_text(BASELINE, encoding="utf-8")
        peaks: dict[int, float] = {}
        for observations in (SMALL, LARGE):
            database, data = build(folder, observations, env)
            command = [*RISKREG, "--db", f"sqlite:///{database}", "pilot", "analyse", "P-1", "--json"]
            subject = Side(command, _nothing)
            baseline = Side([sys.executable, str(script), str(data)], _nothing)
            alternate(subject, baseline, runs if observations == LARGE else 1, env)
            peaks[observations] = max(subject.peak_kib) / 1024
        floor = _pairing_seconds(database, runs)
    rows: list[Comparison | FlatMemory] = [
        Comparison(
            "cluster analysis 1M (SQLite)",
            f"pilot analyse --json, {LARGE:,} observations in {CLUSTERS} clusters with a baseline",
            "csv → numpy → scipy ttest_ind on the same file",
            statistics.median(subject.seconds),
            statistics.median(baseline.seconds),
            RATIO_LIMIT,
            runs,
        ),
        Comparison(
            "cluster analysis floor (SQLite)",
            "the pairing query alone, in the sqlite3 shell",
            "csv → numpy → scipy ttest_ind on the same file",
            floor,
            statistics.median(baseline.seconds),
            RATIO_LIMIT,
            runs,
        ),
        FlatMemory("cluster analysis memory (SQLite)", peaks[SMALL], peaks[LARGE], MEMORY_LIMIT_MIB),
    ]
    return rows


def _pairing_seconds(database: Path, runs: int) -> float:
    """Median wall time of the pairing query in the sqlite3 shell (0 if there is no shell)."""
    shell = shutil.which("sqlite3")
    if shell is None:
        return 0.0
    times = []
    for _ in range(runs):
        seconds, _peak = measure([shell, str(database), PAIRING], bench_env())
        times.append(seconds)
    return statistics.median(times)


if __name__ == "__main__":
    for result in run():
        print(result.row())
