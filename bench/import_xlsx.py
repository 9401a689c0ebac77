"""Benchmark: `riskreg pilot data` on a 100k-row long-form .xlsx vs openpyxl's own read of the same sheet.

The baseline opens the workbook as riskreg does (read-only, cached values) and reads every
row's values; the subject also checks and writes them to a fresh SQLite register (copied
outside the timed region). Runs alternate after one warm-up each; medians of 3 and the
peak RSS (GNU time) are printed, with the ratio of the medians.

    .venv/bin/python bench/import_xlsx.py [ROWS]
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RISKREG, ROOT, bench_env

PROTOCOL = ROOT / "pilots" / "hospital-befriending.toml"
ROWS = 100_000
RUNS = 3
OPENPYXL_READ = (
    "import sys\n"
    "from openpyxl import load_workbook\n"
    "book = load_workbook(sys.argv[1], read_only=True, data_only=True)\n"
    "rows = sum(1 for _ in book.worksheets[0].iter_rows(values_only=True))\n"
    "book.close()\n"
)


def write_workbook(path: Path, rows: int) -> None:
    """A long-form outcome sheet: unit_id, arm, metric, value, exposure, site, typed cells."""
    from openpyxl import Workbook

    rng = random.Random(16)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Outcomes")
    sheet.append(["unit_id", "arm", "metric", "value", "exposure", "site"])
    for number in range(rows // 2):
        unit, arm = f"U{number:07d}", ("comparison", "pilot")[number % 2]
        site = ("riverside", "northgate", "valley", "harbour")[number % 4]
        sheet.append([unit, arm, "wellbeing", round(rng.gauss(45, 8), 1), None, site])
        sheet.append([unit, arm, "safeguarding_incidents", rng.randint(0, 3), rng.randint(4, 12), site])
    book.save(path)


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run a command under GNU time; return (seconds, peak RSS in MiB)."""
    start = time.perf_counter()
    result = subprocess.run(
        ["/usr/bin/time", "-v", *command], env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{result.stdout}\n{result.stderr}")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    return seconds, int(peak.group(1)) / 1024 if peak else float("nan")


def main(rows: int = ROWS) -> None:
    env = bench_env()
    with tempfile.TemporaryDirectory(prefix="riskreg-bench-xlsx-") as folder:
        work = Path(folder)
        data = work / "outcomes.xlsx"
        write_workbook(data, rows)
        template = work / "template.db"
        url = f"sqlite:///{template}"
        for args in (["init"], ["pilot", "register", str(PROTOCOL)]):
            subprocess.run([*RISKREG, "--db", url, *args], env=env, check=True, capture_output=True)
        subject, baseline = [], []
        for run in range(RUNS + 1):  # the first of each is a warm-up
            target = work / f"run{run}.db"
            shutil.copy(template, target)
            command = [*RISKREG, "--db", f"sqlite:///{target}", "pilot", "data", "P-1", str(data)]
            s = timed([*command, "--stage", "feasibility"], env)
            b = timed([sys.executable, "-c", OPENPYXL_READ, str(data)], env)
            target.unlink()
            if run:
                subject.append(s)
                baseline.append(b)
        size = data.stat().st_size / 1e6
    s_time = statistics.median(t for t, _ in subject)
    b_time = statistics.median(t for t, _ in baseline)
    print(f"{rows:,} long rows, {size:.1f} MB .xlsx; median of {RUNS}")
    print(f"  riskreg pilot data (SQLite): {s_time:6.2f} s  peak RSS {max(m for _, m in subject):6.1f} MiB")
    print(f"  openpyxl read-only read:     {b_time:6.2f} s  peak RSS {max(m for _, m in baseline):6.1f} MiB")
    print(f"  ratio riskreg / openpyxl: {s_time / b_time:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else ROWS)
