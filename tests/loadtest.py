"""A bounded concurrent-load run: many processes adding, re-scoring and reviewing risks at once.

Used by tests/test_load.py (a few seconds) and bench/load.py (16 processes, 30 s). Each worker records what the database
acknowledged and what it refused; `verify` then checks that every acknowledged write is
there, every refusal was a version conflict, version numbers have no gaps and the audit
chain holds. Loopback or local files only; bounded in time.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from riskreg import audit
from riskreg.db import open_database
from riskreg.errors import StaleVersion
from riskreg.models import Event, Risk
from riskreg.register import Context, add_risk, get_risk, rescore_risk
from riskreg.reviews import record_review


@dataclass(frozen=True)
class LoadResult:
    """What a load run did and whether the database stayed right."""

    processes: int
    seconds: float
    acknowledged: int
    conflicts: int
    problems: tuple[str, ...]

    @property
    def operations_per_second(self) -> float:
        return (self.acknowledged + self.conflicts) / self.seconds

    @property
    def conflict_rate(self) -> float:
        total = self.acknowledged + self.conflicts
        return self.conflicts / total if total else 0.0


def _worker(url: str, worker: int, seconds: float, log: str, seed: int) -> None:
    rng = random.Random(seed)
    database = open_database(url)
    deadline = time.monotonic() + seconds
    with open(log, "w", encoding="utf-8") as out:
        while time.monotonic() < deadline:
            out.write(json.dumps(_one(database, worker, rng)) + "\n")
    database.dispose()


def _one(database: Any, worker: int, rng: random.Random) -> dict[str, Any]:
    actor = f"worker-{worker}"
    ctx = Context(actor, database.config)
    choice = rng.random()
    with database.read() as session:
        known = session.scalars(select(Risk.id)).all()
    if choice < 0.2 or not known:
        with database.write() as session:
            risk = add_risk(
                session,
                ctx,
                {
                    "title": f"load {worker}",
                    "side": rng.choice(["citizen", "professional"]),
                    "mode": "delivery",
                    "likelihood": 3,
                    "impact": 3,
                    "owner": "owner",
                },
            )
            return {"op": "add", "risk": risk.id, "version": risk.version}
    # re-scores and reviews crowd onto the five oldest risks, so writers really collide
    ref = f"R-{rng.choice(sorted(known)[:5])}"
    with database.read() as session:
        seen = get_risk(session, ref).version
    try:
        with database.write() as session:
            if choice < 0.8:
                risk = rescore_risk(
                    session, ctx, ref, rng.randint(1, 5), rng.randint(1, 5), "load", expect_version=seen
                )
                return {"op": "rescore", "risk": risk.id, "version": risk.version}
            risk, _ = record_review(session, ctx, ref, "confirmed", "load")
            return {"op": "review", "risk": risk.id, "version": risk.version}
    except StaleVersion as exc:
        return {"op": "conflict", "risk": int(ref[2:]), "message": str(exc)}


def run(url: str, processes: int = 16, seconds: float = 30.0, folder: Path | None = None) -> LoadResult:
    """Run the load on a database (already created) and verify it afterwards."""
    folder = folder or Path(".")
    logs = [str(folder / f"load-{i}.jsonl") for i in range(processes)]
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_worker, args=(url, i, seconds, logs[i], 1000 + i)) for i in range(processes)
    ]
    start = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join(seconds + 120)
    elapsed = time.monotonic() - start
    entries = [json.loads(line) for log in logs for line in Path(log).read_text().splitlines()]
    problems = verify(url, entries) + [
        f"worker {i} exited {w.exitcode}" for i, w in enumerate(workers) if w.exitcode != 0
    ]
    acknowledged = sum(1 for e in entries if e["op"] != "conflict")
    return LoadResult(processes, elapsed, acknowledged, len(entries) - acknowledged, tuple(problems))


def verify(url: str, entries: list[dict[str, Any]]) -> list[str]:
    """Check acknowledged writes, refusals, gap-free versions and the audit chain."""
    problems: list[str] = []
    database = open_database(url)
    with database.read() as session:
        versions: dict[str, list[int]] = {}
        for event in session.scalars(select(Event).where(Event.entity == "risk").order_by(Event.seq)):
            versions.setdefault(event.entity_id, []).append(json.loads(event.after)["version"])
        for entry in entries:
            ref = f"R-{entry['risk']}"
            if entry["op"] == "conflict":
                if " was changed by " not in entry["message"]:
                    problems.append(f"{ref}: refused without the conflict message: {entry['message']}")
            elif entry["version"] not in versions.get(ref, []):
                problems.append(f"{ref}: acknowledged version {entry['version']} is not in the audit trail")
        for ref, seen in versions.items():
            if seen != list(range(1, len(seen) + 1)):
                problems.append(f"{ref}: versions {seen[:10]}... are not gap-free")
            risk = session.get(Risk, int(ref[2:]))
            if risk is None or risk.version != seen[-1]:
                problems.append(f"{ref}: stored version differs from its last event")
        check = audit.verify(session)
        if not check.ok:
            problems.append(f"audit chain broken at event {check.broken_at}: {check.problem}")
    database.dispose()
    return problems
