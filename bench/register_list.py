"""Benchmark: `riskreg risk list --json` on a 5,000-risk SQLite register vs importing click + SQLAlchemy ORM."""

from __future__ import annotations

import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RISKREG, Comparison, bench_env, side_by_side

RISKS = 5000


def build_register(path: Path, count: int = RISKS) -> str:
    """Create a SQLite register of `count` risks (through the library, with their events)."""
    from riskreg.db import init_register, open_database
    from riskreg.models import MODES, SIDES
    from riskreg.register import Context, add_risk

    url = f"sqlite:///{path}"
    init_register(url)
    database = open_database(url)
    rng = random.Random(5000)
    with database.write() as session:
        ctx = Context("bench", database.config)
        for i in range(count):
            add_risk(
                session,
                ctx,
                {
                    "title": f"Risk {i}: volunteers and professionals disagree about hand-offs",
                    "side": rng.choice(SIDES),
                    "mode": rng.choice(MODES),
                    "likelihood": rng.randint(1, 5),
                    "impact": rng.randint(1, 5),
                    "category": rng.choice(["safeguarding", "finance", "service quality", "reputation"]),
                    "owner": "Service manager",
                },
            )
    database.dispose()
    return url


def run(runs: int = 7) -> Comparison:
    with tempfile.TemporaryDirectory() as folder:
        url = build_register(Path(folder) / "bench.db")
        subject = [*RISKREG, "--db", url, "risk", "list", "--json"]
        baseline = [sys.executable, "-c", "import click, sqlalchemy.orm"]
        s, b = side_by_side(subject, baseline, runs, env=bench_env())
    return Comparison(
        "register latency",
        f"risk list --json, {RISKS} risks",
        "python -c 'import click, sqlalchemy.orm'",
        s,
        b,
        1.5,
        runs,
    )


if __name__ == "__main__":
    print(run().row())
