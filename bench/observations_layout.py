"""Floor: inserting 1M converted observations into four SQLite layouts of the observations table.

The rows go through the importer's own writer (``riskreg.ingest._InsertWriter``: 400-row
INSERTs, values bound column by column), in chunks of the size the importer reads, into:

- today's table: rowid, and the ``ix_observations_import_id`` index that finds an import's rows;
- a table keyed by import ranges: ``id INTEGER PRIMARY KEY`` = import id × 2³² + row, with a
  CHECK that keeps each row in its import's range (issue 19's proposal), and without the CHECK;
  the writer then also binds each statement's first key (``_KeyedWriter``);
- a table with neither, whose import's rows only a full scan finds (a floor, not a design).

Each run inserts into a fresh table and commits; the figure is insert + commit, median of 5,
the layouts alternated. Run: ``python bench/observations_layout.py``.
"""

from __future__ import annotations

import math
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.import_floor import CHUNK_ROWS
from riskreg.db import make_engine
from riskreg.ingest import COLUMNS, _InsertWriter

ROWS, IMPORT_ID = 1_000_000, 7
DATA = "metric INTEGER NOT NULL, arm INTEGER NOT NULL, unit_id VARCHAR(200) NOT NULL, value FLOAT, exposure FLOAT, site VARCHAR(200)"
KEYED = "id INTEGER PRIMARY KEY, import_id INTEGER NOT NULL"
LAYOUTS: dict[str, tuple[list[str], bool]] = {
    "import_id index (today)": (
        [
            f"CREATE TABLE observations (import_id INTEGER NOT NULL, {DATA})",
            "CREATE INDEX ix_observations_import_id ON observations (import_id)",
        ],
        False,
    ),
    "key = import id x 2^32 + row, with CHECK": (
        [f"CREATE TABLE observations ({KEYED}, {DATA}, CHECK (id >> 32 = import_id))"],
        True,
    ),
    "key = import id x 2^32 + row": ([f"CREATE TABLE observations ({KEYED}, {DATA})"], True),
    "neither (full scans only)": ([f"CREATE TABLE observations (import_id INTEGER NOT NULL, {DATA})"], False),
}


class _KeyedWriter(_InsertWriter):
    """The importer's writer, binding each statement's first key too: its rows take the keys that follow."""

    def __init__(self, connection: Any, import_id: int):
        super().__init__(connection, import_id)
        self.written = 0

    def _insert_columns(self, columns: list[list[Any]], start: int, end: int) -> None:
        parameters: list[Any] = [(self.import_id << 32) + self.written]
        self.written += end - start
        for column in columns:
            parameters += column[start:end]
        self.cursor.execute(self._column_statement(end - start), parameters)

    def _column_statement(self, rows: int) -> str:
        key = -rows
        if key not in self.statements:  # the importer's statement, every parameter one place later
            numbered = (
                f"(?1+{r},{self.import_id},"
                + ",".join(f"?{c * rows + r + 2}" for c in range(len(COLUMNS) - 1))
                + f",NULLIF(?{(len(COLUMNS) - 1) * rows + r + 2},''))"
                for r in range(rows)
            )
            self.statements[key] = (
                f"INSERT INTO observations (id, import_id, {', '.join(COLUMNS)}) VALUES {','.join(numbered)}"
            )
        return self.statements[key]


def chunks(rows: int) -> list[list[list[Any]]]:
    """Converted long-form columns, chunk by chunk: codes, arm, unit, value (NaN missing), exposure, site."""
    rng = random.Random(1)
    columns = [
        [i % 4 for i in range(rows)],
        [(i // 4) % 2 for i in range(rows)],
        [f"HB-{i // 4:07d}" for i in range(rows)],
        [float(rng.randint(14, 70)) if rng.random() > 0.05 else math.nan for _ in range(rows)],
        [rng.uniform(0.5, 8.0) if i % 4 == 3 else math.nan for i in range(rows)],
        [("riverside", "northgate", "valley", "harbour")[i % 4] for i in range(rows)],
    ]
    return [[column[s : s + CHUNK_ROWS] for column in columns] for s in range(0, rows, CHUNK_ROWS)]


def insert_once(path: Path, ddl: list[str], keyed: bool, data: list[list[list[Any]]]) -> float:
    """Create the table afresh and time writing every chunk and committing."""
    path.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{path}")  # riskreg's connection settings (WAL and the rest)
    with engine.begin() as connection:
        for statement in ddl:
            connection.execute(text(statement))
    with engine.connect() as connection:
        start = time.perf_counter()
        with connection.begin():
            writer = (_KeyedWriter if keyed else _InsertWriter)(connection, IMPORT_ID)
            for columns in data:
                writer.write_columns(columns)
            writer.finish()
            writer.close()
        elapsed = time.perf_counter() - start
    engine.dispose()
    return elapsed


def main(runs: int = 5) -> None:
    import sqlite3

    data = chunks(ROWS)
    times: dict[str, list[float]] = {name: [] for name in LAYOUTS}
    with tempfile.TemporaryDirectory(prefix="riskreg-layout-") as folder:
        path = Path(folder) / "layout.db"
        for _ in range(runs):  # alternated: each layout once per round
            for name, (ddl, keyed) in LAYOUTS.items():
                times[name].append(insert_once(path, ddl, keyed, data))
    print(f"sqlite {sqlite3.sqlite_version}, {ROWS:,} rows through riskreg's writer, median of {runs}")
    print("| layout | insert + commit, s |\n|---|---|")
    for name, measured in times.items():
        print(f"| {name} | {statistics.median(measured):.3f} |")


if __name__ == "__main__":
    main()
