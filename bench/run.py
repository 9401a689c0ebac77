"""Run every benchmark and print one table of ratios against side-by-side baselines (also build/bench.md)."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import analyse, board_report, cluster_analysis, import_data, import_floor, register_list, startup
from bench.common import ROOT

HEADER = (
    "| benchmark | measured | baseline | measured s (median) | baseline s (median) | ratio | limit | verdict |\n"
    "|---|---|---|---|---|---|---|---|"
)


def main() -> int:
    started, imports = startup.run(runs=5)
    results = [
        register_list.run(runs=9),
        *started,
        *import_data.run(runs=5),
        *import_floor.run(runs=5),
        *analyse.run(runs=5),
        *cluster_analysis.run(runs=5),
        *board_report.run(runs=5),
    ]
    lines = [
        f"# riskreg benchmarks\n\nmachine: {platform.machine()}, Python {platform.python_version()}; "
        "whole-process wall times, subject and baseline alternated in one run.\n",
        HEADER,
        *[r.row() for r in results],
        "",
        imports,
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    out = ROOT / "build" / "bench.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
