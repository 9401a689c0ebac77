"""Concurrent load: 16 processes for 30 seconds on SQLite and on PostgreSQL; operations per second and conflicts."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.loadtest import LoadResult, run


def _row(backend: str, result: LoadResult) -> str:
    verdict = "ok" if not result.problems else f"PROBLEMS: {result.problems[0]}"
    return (
        f"| load ({backend}) | {result.processes} processes, {result.seconds:.0f} s | {result.acknowledged} acknowledged, "
        f"{result.conflicts} refused | {result.operations_per_second:.0f} ops/s | conflict rate {result.conflict_rate:.1%} | {verdict} |"
    )


def main(seconds: float = 30.0) -> list[str]:
    from riskreg.db import init_register
    from tests.conftest import _create_pg_database
    from tests.pgserver import start_cluster

    rows = []
    with tempfile.TemporaryDirectory(prefix="riskreg-load-") as name:
        folder = Path(name)
        url = f"sqlite:///{folder / 'load.db'}"
        init_register(url)
        rows.append(_row("SQLite", run(url, 16, seconds, folder)))
        cluster = start_cluster()
        try:
            pg = _create_pg_database(cluster.admin_url, "load")
            init_register(pg)
            rows.append(_row("PostgreSQL", run(pg, 16, seconds, folder)))
        finally:
            cluster.stop()
    return rows


if __name__ == "__main__":
    print("| load | run | writes | throughput | conflicts | verdict |\n|---|---|---|---|---|---|")
    print("\n".join(main()))
