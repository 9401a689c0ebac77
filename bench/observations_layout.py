"""Floor: inserting 1M converted observations into three SQLite layouts of the observations table.

The importer writes 400-row INSERT statements, values bound column by column (riskreg.ingest's
``_InsertWriter``). This times that same statement form, in-process and alternated, into:

- today's table: rowid, and the ``ix_observations_import_id`` index that finds an import's rows;
- a table keyed by import ranges: ``id INTEGER PRIMARY KEY`` = import id × 2³² + row, with a
  CHECK that keeps each row in its import's range (issue 19's proposal), and without the CHECK;
- a table with neither, whose import's rows only a full scan finds (a floor, not a design).

Each run inserts into a fresh table and commits; the figure is insert + commit, median of 5.
Run: ``python bench/observations_layout.py``.
"""

from __future__ import annotations

import math
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

ROWS, BATCH, IMPORT_ID = 1_000_000, 400, 7
COLUMNS = "metric INTEGER NOT NULL, arm INTEGER NOT NULL, unit_id VARCHAR(200) NOT NULL, value FLOAT, exposure FLOAT, site VARCHAR(200)"
LAYOUTS = {
    "import_id index (today)": (
        f"CREATE TABLE observations (import_id INTEGER NOT NULL, {COLUMNS});"
        "CREATE INDEX ix_observations_import_id ON observations (import_id);",
        False,
    ),
    "key = import id x 2^32 + row, with CHECK": (
        f"CREATE TABLE observations (id INTEGER PRIMARY KEY CHECK (id >> 32 = import_id), "
        f"import_id INTEGER NOT NULL, {COLUMNS});",
        True,
    ),
    "key = import id x 2^32 + row": (
        f"CREATE TABLE observations (id INTEGER PRIMARY KEY, import_id INTEGER NOT NULL, {COLUMNS});",
        True,
    ),
    "neither (full scans only)": (
        f"CREATE TABLE observations (import_id INTEGER NOT NULL, {COLUMNS});",
        False,
    ),
}


def columns(rows: int) -> list[list[object]]:
    """Converted long-form columns as the importer binds them: codes, arm, unit, value (NaN missing), exposure, site."""
    rng = random.Random(1)
    return [
        [i % 4 for i in range(rows)],
        [(i // 4) % 2 for i in range(rows)],
        [f"HB-{i // 4:07d}" for i in range(rows)],
        [float(rng.randint(14, 70)) if rng.random() > 0.05 else math.nan for _ in range(rows)],
        [rng.uniform(0.5, 8.0) if i % 4 == 3 else math.nan for i in range(rows)],
        [("riverside", "northgate", "valley", "harbour")[i % 4] for i in range(rows)],
    ]


def statement(keyed: bool) -> str:
    """The importer's 400-row INSERT, with the key computed from one bound start value when ``keyed``."""
    first = 2 if keyed else 1
    rows = (
        (f"(?1+{r}," if keyed else "(")
        + f"{IMPORT_ID},"
        + ",".join(f"?{c * BATCH + r + first}" for c in range(5))
        + f",NULLIF(?{5 * BATCH + r + first},''))"
        for r in range(BATCH)
    )
    key = "id, " if keyed else ""
    return f"INSERT INTO observations ({key}import_id, metric, arm, unit_id, value, exposure, site) VALUES {','.join(rows)}"


def insert_once(path: Path, ddl: str, keyed: bool, data: list[list[object]]) -> float:
    """Create the table afresh and time inserting every row and committing."""
    path.unlink(missing_ok=True)
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.executescript(ddl)
    cursor, sql = connection.cursor(), statement(keyed)
    start = time.perf_counter()
    connection.execute("BEGIN")
    for first in range(0, len(data[0]), BATCH):
        parameters: list[object] = [(IMPORT_ID << 32) + first] if keyed else []
        for column in data:
            parameters += column[first : first + BATCH]
        cursor.execute(sql, parameters)
    connection.execute("COMMIT")
    elapsed = time.perf_counter() - start
    connection.close()
    return elapsed


def main(runs: int = 5) -> None:
    data = columns(ROWS)
    times: dict[str, list[float]] = {name: [] for name in LAYOUTS}
    with tempfile.TemporaryDirectory(prefix="riskreg-layout-") as folder:
        path = Path(folder) / "layout.db"
        for _ in range(runs):  # alternated: each layout once per round
            for name, (ddl, keyed) in LAYOUTS.items():
                times[name].append(insert_once(path, ddl, keyed, data))
    print(f"sqlite {sqlite3.sqlite_version}, {ROWS:,} rows, {BATCH}-row statements, median of {runs}")
    print("| layout | insert + commit, s |\n|---|---|")
    for name, measured in times.items():
        print(f"| {name} | {statistics.median(measured):.3f} |")


if __name__ == "__main__":
    main()
