"""Every value riskreg accepts on SQLite moves to PostgreSQL intact, its audit chain with it.

The values are the boundary ones: the longest actor, owner and category, text that
PostgreSQL and SQLite treat differently (bidi controls, emoji, combining marks, a
trailing space), the largest and the tiniest numbers an import accepts.
"""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from tests.conftest import Riskreg, _create_pg_database
from tests.pilot_fixtures import registered, write

LONGEST_ACTOR = "Å" * 199 + "z"  # 200 characters, two bytes each in UTF-8
OWNER = "\u202egnp.exe " + "o" * 190  # a bidi override kept as typed, 200 characters in all
TITLE = "Families 👨‍👩‍👧 say: « l’équipe » ne répond pas\u0301 — عربي " + "t" * 300
CATEGORY = "c" * 100
DATA = (
    "unit_id,arm,metric,value,exposure,site\n"
    f"{'u' * 200},comparison,wellbeing,1e15,,{'s' * 200}\n"
    "u2,pilot,wellbeing,1e-300,,north\n"
    "u3,comparison,incidents,999999999999999,1e-9,north\n"
    "u4,pilot,incidents,0,1000000000000000,south\n"
    "ü5 ✓,pilot,readmitted,yes,,south\n"
)
RESOURCES = (
    "stage,side,kind,hours,amount,note\n"
    f"feasibility,public,{'k' * 100},1e15,1e15,{'n' * 2000}\n"
    "feasibility,citizen,volunteer_time,0.001,,\u202eévaluation 🎉\n"
)


def populate(rr: Riskreg, tmp_path) -> None:
    added = rr.json(
        "risk", "add", TITLE, "--side", "citizen", "--mode", "delivery", "--likelihood", "5", "--impact", "5",
        "--owner", OWNER, "--category", CATEGORY, "--description", "d" * 10_000, actor=LONGEST_ACTOR,
    )  # fmt: skip
    assert added["id"] == "R-1"
    registered(rr, tmp_path)
    imported = rr("pilot", "data", "P-1", write(tmp_path, "d.csv", DATA), "--stage", "feasibility")
    assert imported.exit_code == 0, imported.output
    spent = rr("pilot", "resources", "P-1", write(tmp_path, "r.csv", RESOURCES), actor=LONGEST_ACTOR)
    assert spent.exit_code == 0, spent.output


def everything(rr: Riskreg) -> list:
    return [
        rr.json("risk", "show", "R-1"),
        rr.json("risk", "history", "R-1"),
        rr.json("pilot", "show", "P-1"),
        rr.json("pilot", "analyse", "P-1"),
        rr.json("config", "show"),
    ]


@pytest.mark.postgres
def test_boundary_values_round_trip_sqlite_to_postgresql_with_a_verified_chain(
    tmp_path, pg_admin_url, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    for name in ("RISKREG_DATABASE_URL", "RISKREG_ACTOR", "RISKREG_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    source = Riskreg(runner, f"sqlite:///{tmp_path / 'source.db'}")
    assert source("init").exit_code == 0
    populate(source, tmp_path)
    assert source.json("audit", "verify")["ok"] is True
    exported = tmp_path / "export.json"
    assert source("export", str(exported)).exit_code == 0

    postgres = Riskreg(runner, _create_pg_database(pg_admin_url, f"riskreg_bounds_{os.getpid()}"))
    assert postgres("init").exit_code == 0
    result = postgres("import", str(exported))
    assert result.exit_code == 0, result.output
    assert postgres.json("audit", "verify")["ok"] is True
    assert everything(postgres) == everything(source)
    shown = postgres.json("risk", "show", "R-1")
    assert (shown["title"], shown["owner"], shown["category"], shown["created_by"]) == (
        TITLE,
        OWNER,
        CATEGORY,
        LONGEST_ACTOR,
    )
    again = tmp_path / "again.json"
    assert postgres("export", str(again)).exit_code == 0
    assert json.loads(exported.read_text())["tables"] == json.loads(again.read_text())["tables"]
