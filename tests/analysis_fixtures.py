"""Protocols and outcome files built in code for the analysis tests."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from riskreg.analysis import Analysis, analyse
from riskreg.db import open_database
from riskreg.pilots import get_pilot

EXAMPLES = Path(__file__).resolve().parents[1] / "pilots"

# (unit_id, arm, metric, value or None for missing, exposure or None)
Row = tuple[str, str, str, float | None, float | None]


def metric(name: str, kind: str, role: str, better: str = "higher", **extra: Any) -> dict[str, Any]:
    """Return a metric table for ``protocol_text``."""
    return {"name": name, "kind": kind, "role": role, "better": better, **extra}


def stage(name: str, planned_n: int, **criteria: tuple[float, float]) -> dict[str, Any]:
    """Return a stage table for ``protocol_text``; criteria as name=(green, red)."""
    return {"name": name, "planned_n": planned_n, "criteria": criteria}


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def protocol_text(
    metrics: list[dict[str, Any]],
    stages: list[dict[str, Any]],
    *,
    key: str = "test-pilot",
    alpha: float = 0.05,
    allocation: tuple[float, float] = (1, 1),
) -> str:
    """Return a protocol TOML with the given metrics and stages."""
    lines = [
        "[pilot]",
        f'key = "{key}"',
        'title = "Analysis test pilot"',
        'modes = ["delivery"]',
        'hypothesis = "The pilot is no worse."',
        "",
        "[design]",
        'arms = ["comparison", "pilot"]',
        f"allocation = {_toml(list(allocation))}",
        f"alpha = {alpha!r}",
    ]
    for m in metrics:
        lines += ["", "[[metrics]]"] + [f"{k} = {_toml(v)}" for k, v in m.items()]
    for s in stages:
        lines += ["", "[[stages]]", f'name = "{s["name"]}"', f"planned_n = {s['planned_n']}"]
        if s["criteria"]:
            lines.append("[stages.criteria]")
            lines += [f"{k} = {_toml(list(v))}" for k, v in s["criteria"].items()]
    return "\n".join(lines) + "\n"


def csv_text(rows: Iterable[Row]) -> str:
    """Return a long-form outcome CSV; floats are written with repr, so they read back exactly."""
    out = ["unit_id,arm,metric,value,exposure"]
    for unit, arm, name, value, exposure in rows:
        text = "NA" if value is None else repr(float(value))
        out.append(f"{unit},{arm},{name},{text},{'' if exposure is None else repr(float(exposure))}")
    return "\n".join(out) + "\n"


def arm_rows(
    name: str, arm: str, values: Iterable[float | None], prefix: str = "", exposure: float | None = None
) -> list[Row]:
    """Return one row per value for units ``{prefix}{arm[0]}{i}``."""
    return [(f"{prefix}{arm[0]}{i}", arm, name, v, exposure) for i, v in enumerate(values)]


def register(rr, folder: Path, text: str) -> None:
    """Register a protocol text as P-1."""
    path = folder / "protocol.toml"
    path.write_text(text, encoding="utf-8")
    result = rr("pilot", "register", str(path))
    assert result.exit_code == 0, result.output


def load(
    rr, folder: Path, rows: Iterable[Row], stage_name: str, *extra: str, ref: str = "P-1", name: str = "d"
) -> None:
    """Import outcome rows into a stage through the CLI (``extra``: e.g. ``--replace``)."""
    path = folder / f"{name}-{stage_name}.csv"
    path.write_text(csv_text(rows), encoding="utf-8")
    result = rr("pilot", "data", ref, str(path), "--stage", stage_name, *extra)
    assert result.exit_code == 0, result.output


@contextmanager
def session_for(url: str) -> Iterator[Any]:
    """Yield (session, config) on the database."""
    database = open_database(url)
    try:
        with database.read() as session:
            yield session, database.config
    finally:
        database.dispose()


def analysed(url: str, ref: str = "P-1", stage_index: int | None = None) -> Analysis:
    """Return the analysis of a pilot."""
    with session_for(url) as (session, config):
        return analyse(session, get_pilot(session, ref), stage_index, config)
