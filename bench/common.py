"""Timing helpers shared by the benchmarks: whole-process wall time, interleaved, medians."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
RISKREG = (
    [str(VENV_BIN / "riskreg")] if (VENV_BIN / "riskreg").exists() else [sys.executable, "-m", "riskreg"]
)


@dataclass(frozen=True)
class Comparison:
    """Medians of a measured command and its baseline, timed side by side in one run."""

    name: str
    subject: str
    baseline: str
    subject_s: float
    baseline_s: float
    limit: float
    runs: int

    @property
    def ratio(self) -> float:
        return self.subject_s / self.baseline_s

    @property
    def ok(self) -> bool:
        return self.ratio <= self.limit

    def row(self) -> str:
        verdict = "ok" if self.ok else "OVER"
        return (
            f"| {self.name} | {self.subject} | {self.baseline} | {self.subject_s:.3f} | {self.baseline_s:.3f} "
            f"| {self.ratio:.2f} | ≤ {self.limit:g} | {verdict} |"
        )


def wall(command: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> float:
    """Run a command to completion and return its wall time in seconds; fail loudly if it fails."""
    start = time.perf_counter()
    result = subprocess.run(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd, check=False
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.decode()[-500:]}")
    return elapsed


def side_by_side(
    subject: Sequence[str], baseline: Sequence[str], runs: int = 7, env=None, cwd=None
) -> tuple[float, float]:
    """Alternate subject and baseline runs (after one warm-up each) and return both medians."""
    wall(subject, env, cwd)
    wall(baseline, env, cwd)
    subject_times, baseline_times = [], []
    for _ in range(runs):
        subject_times.append(wall(subject, env, cwd))
        baseline_times.append(wall(baseline, env, cwd))
    return statistics.median(subject_times), statistics.median(baseline_times)


def bench_env(**extra: str) -> dict[str, str]:
    """The environment for benchmarked processes: this one, minus riskreg settings, plus extras."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKREG_")}
    env.update(extra)
    return env
