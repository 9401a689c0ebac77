"""Benchmark: `riskreg report board` on 10,000 risks and 100 pilots vs `riskreg risk list --json` on the same database."""

from __future__ import annotations

import random
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RISKREG, Comparison, bench_env, side_by_side
from bench.register_list import build_register

RISKS, PILOTS = 10_000, 100
PROTOCOL = """
[pilot]
key = "pilot-{i}"
title = "Example pilot {i}"
modes = ["delivery"]
hypothesis = "No worse than the professional service."

[design]
arms = ["comparison", "pilot"]

[[metrics]]
name = "wellbeing"
kind = "continuous"
role = "primary"
better = "higher"
test = "non-inferiority"
margin = 3.0

[[metrics]]
name = "incidents"
kind = "count"
role = "safety"
better = "lower"

[[stages]]
name = "feasibility"
planned_n = 20

[[stages]]
name = "extended"
planned_n = 60
"""


def _data(rng: random.Random, units: int) -> str:
    rows = ["unit_id,arm,metric,value,exposure"]
    for u in range(units):
        arm = ("comparison", "pilot")[u % 2]
        rows.append(f"u{u},{arm},wellbeing,{rng.gauss(45, 8):.1f},")
        rows.append(f"u{u},{arm},incidents,{rng.randint(0, 2)},{rng.uniform(4, 8):.1f}")
    return "\n".join(rows) + "\n"


def build(folder: Path) -> str:
    """A register of RISKS risks and PILOTS pilots with data; half have had a gate decision."""
    from riskreg.db import open_database
    from riskreg.gates import decide
    from riskreg.ingest import import_outcomes
    from riskreg.pilots import link_risks, register_pilot
    from riskreg.register import Context

    url = build_register(folder / "board.db", RISKS)
    database = open_database(url)
    rng = random.Random(100)
    with database.write() as session:
        ctx = Context("bench", database.config)
        for i in range(1, PILOTS + 1):
            protocol = folder / f"pilot-{i}.toml"
            protocol.write_text(PROTOCOL.format(i=i))
            data = folder / f"pilot-{i}.csv"
            data.write_text(_data(rng, 40))
            register_pilot(session, ctx, protocol)
            link_risks(session, ctx, f"P-{i}", [f"R-{i}", f"R-{i + PILOTS}"])
            import_outcomes(session, ctx, f"P-{i}", data, "feasibility")
            if i % 2:
                decide(session, ctx, f"P-{i}", "continue", "more data", override=True)
    database.dispose()
    return url


@dataclass(frozen=True)
class FileSize:
    """The board report's size against its limit."""

    name: str
    bytes: int
    limit: int = 2_000_000

    @property
    def ok(self) -> bool:
        return self.bytes < self.limit

    def row(self) -> str:
        verdict = "ok" if self.ok else "OVER"
        return f"| {self.name} | board report, {RISKS} risks, {PILOTS} pilots | - | {self.bytes / 1e6:.2f} MB | - | - | < 2 MB | {verdict} |"


def run(runs: int = 5) -> list[Comparison | FileSize]:
    with tempfile.TemporaryDirectory(prefix="riskreg-board-") as name:
        folder = Path(name)
        url = build(folder)
        out = folder / "board.html"
        subject = [*RISKREG, "--db", url, "report", "board", "-o", str(out), "--as-of", "2026-11-29"]
        baseline = [*RISKREG, "--db", url, "risk", "list", "--json"]
        s, b = side_by_side(subject, baseline, runs, env=bench_env())
        size = out.stat().st_size
    return [
        Comparison(
            "board report",
            f"report board, {RISKS} risks, {PILOTS} pilots",
            "risk list --json, same database",
            s,
            b,
            3.0,
            runs,
        ),
        FileSize("board report size", size),
    ]


if __name__ == "__main__":
    for result in run():
        print(result.row())
