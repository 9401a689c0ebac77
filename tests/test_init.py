"""No register by accident: `riskreg init` creates one; every other command refuses a missing one."""

from __future__ import annotations

import dataclasses
import json
import os
import re

import pytest
from sqlalchemy import create_engine, inspect, text

from riskreg.cli import cli
from riskreg.config import STARTER_CONFIG, Config, load_config
from riskreg.db import SCHEMA_HEAD, safe_url
from tests.conftest import Riskreg

NO_REGISTER = (
    "Error: no register at ./riskreg.db; run riskreg init here, or set RISKREG_DATABASE_URL / --db\n"
)
ADD = ["risk", "add", "A", "--side", "citizen", "--mode", "design", "--likelihood", "2", "--impact", "2"]
COMMANDS = [
    ["risk", "list"],
    ["risk", "show", "R-1"],
    ["check"],
    ["report", "board", "-o", "x.html"],
    ["pilot", "analyse", "P-1"],
    ["audit", "verify"],
    ["export", "out.json"],
    ["db", "upgrade"],
    ADD,
]


def files(folder) -> list[str]:
    return sorted(os.listdir(folder))


def no_register(url: str) -> str:
    """The refusal for a URL with no register behind it, on either backend."""
    if url.startswith("sqlite:///"):
        return f"Error: no register at {url.removeprefix('sqlite:///')}; run riskreg init here, or set RISKREG_DATABASE_URL / --db\n"
    return f"Error: no register in {safe_url(url)}; run riskreg init, or set RISKREG_DATABASE_URL / --db\n"


def where(url: str) -> str:
    return f"at {url.removeprefix('sqlite:///')}" if url.startswith("sqlite:///") else f"in {safe_url(url)}"


def tables(url: str) -> list[str]:
    engine = create_engine(url)
    names = sorted(inspect(engine).get_table_names())
    engine.dispose()
    return names


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_command_in_an_empty_folder_is_refused_and_creates_nothing(runner, tmp_path, args):
    result = runner.invoke(cli, args)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", NO_REGISTER)
    assert files(tmp_path) == []


def test_a_relative_path_is_shown_as_given_and_an_absolute_one_too(runner, tmp_path):
    (tmp_path / "sub").mkdir()
    relative = runner.invoke(cli, ["--db", "sqlite:///sub/r.db", "risk", "list"])
    assert (relative.exit_code, relative.stderr) == (
        1,
        "Error: no register at ./sub/r.db; run riskreg init here, or set RISKREG_DATABASE_URL / --db\n",
    )
    absolute = runner.invoke(
        cli, ["risk", "list"], env={"RISKREG_DATABASE_URL": f"sqlite:///{tmp_path}/a.db"}
    )
    assert (absolute.exit_code, absolute.stderr) == (1, no_register(f"sqlite:///{tmp_path}/a.db"))
    assert files(tmp_path) == ["sub"] and files(tmp_path / "sub") == []


def test_help_and_usage_errors_do_not_touch_the_database(runner, tmp_path):
    assert runner.invoke(cli, ["--help"]).exit_code == 0
    assert runner.invoke(cli, ["init", "--help"]).exit_code == 0
    assert runner.invoke(cli, ["risk", "list", "--bogus"]).exit_code == 2
    assert runner.invoke(cli, ["risk", "lst"]).exit_code == 2
    assert files(tmp_path) == []


def test_db_status_on_a_missing_file_says_so_and_creates_nothing(runner, tmp_path):
    result = runner.invoke(cli, ["db", "status", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "url": "sqlite:///riskreg.db",
        "backend": "sqlite",
        "register": False,
        "revision": None,
        "head": SCHEMA_HEAD,
        "up_to_date": False,
    }
    text_result = runner.invoke(cli, ["db", "status"])
    assert text_result.stdout.endswith(NO_REGISTER.removeprefix("Error: "))
    assert files(tmp_path) == []


def test_init_creates_the_register_and_a_starter_config(runner, tmp_path):
    result = runner.invoke(cli, ["init"])
    assert (result.exit_code, result.stdout) == (
        0,
        f"created a register at ./riskreg.db (schema {SCHEMA_HEAD})\n"
        "wrote a starter ./riskreg.toml (every setting commented out: the defaults apply)\n",
    )
    assert files(tmp_path) == ["riskreg.db", "riskreg.toml"]
    assert (tmp_path / "riskreg.toml").read_text(encoding="utf-8") == STARTER_CONFIG
    assert json.loads(runner.invoke(cli, ["risk", "list", "--json"]).stdout) == []
    assert runner.invoke(cli, ADD).exit_code == 0


def test_init_json(runner):
    result = runner.invoke(cli, ["init", "--json"])
    assert (result.exit_code, json.loads(result.stdout)) == (
        0,
        {
            "url": "sqlite:///riskreg.db",
            "backend": "sqlite",
            "schema": SCHEMA_HEAD,
            "config_written": True,
            "config": "./riskreg.toml",
        },
    )


def test_init_twice_is_refused_and_changes_nothing(runner, tmp_path):
    assert runner.invoke(cli, ["init"]).exit_code == 0
    assert runner.invoke(cli, ADD).exit_code == 0
    (tmp_path / "riskreg.toml").write_text('organisation = "Anytown"\n', encoding="utf-8")
    before = (tmp_path / "riskreg.db").read_bytes()
    result = runner.invoke(cli, ["init"])
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"Error: a register already exists at ./riskreg.db (schema {SCHEMA_HEAD}); nothing was changed\n",
    )
    assert (tmp_path / "riskreg.db").read_bytes() == before
    assert (tmp_path / "riskreg.toml").read_text(encoding="utf-8") == 'organisation = "Anytown"\n'
    assert [r["id"] for r in json.loads(runner.invoke(cli, ["risk", "list", "--json"]).stdout)] == ["R-1"]


def test_the_starter_config_loads_as_the_defaults_and_uncommented_too(runner, tmp_path):
    assert runner.invoke(cli, ["init"]).exit_code == 0
    starter = load_config(tmp_path / "riskreg.toml")
    defaults = dataclasses.asdict(Config())
    assert {**dataclasses.asdict(starter), "source": None} == defaults
    # every line uncommented: the numbers shown are the defaults; three values are examples
    setting = re.compile(r'# (\[[a-z_.]+\]|"?[a-z_ -]+"? = .+)$')
    settings = "\n".join(line[2:] for line in STARTER_CONFIG.splitlines() if setting.match(line))
    assert len(settings.splitlines()) == 27  # 21 keys and 6 table lines
    (tmp_path / "uncommented.toml").write_text(settings, encoding="utf-8")
    uncommented = dataclasses.asdict(load_config(tmp_path / "uncommented.toml"))
    examples = {
        "organisation": "Anytown Council",
        "appetite": {"default": 12, "safeguarding": 6},
        "severity": {"no-owner": "error"},
    }
    assert {**uncommented, "source": None} == {**defaults, **examples}
    # the [report] examples are valid report settings too
    from riskreg.board_paper import read_report_settings

    report = read_report_settings(tmp_path / "uncommented.toml")
    assert (report.purpose, report.marking, report.meeting_date) == ("decision", "OFFICIAL", "2027-01-20")


def test_init_keeps_an_existing_config(runner, tmp_path):
    (tmp_path / "riskreg.toml").write_text("[appetite]\ndefault = 9\n", encoding="utf-8")
    result = runner.invoke(cli, ["init"])
    assert (result.exit_code, result.stdout) == (
        0,
        f"created a register at ./riskreg.db (schema {SCHEMA_HEAD})\n"
        "configuration: ./riskreg.toml (kept as it is)\n",
    )
    assert (tmp_path / "riskreg.toml").read_text(encoding="utf-8") == "[appetite]\ndefault = 9\n"


def test_init_writes_no_starter_when_riskreg_config_names_one(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("RISKREG_CONFIG", str(tmp_path / "elsewhere.toml"))
    (tmp_path / "elsewhere.toml").write_text("", encoding="utf-8")
    result = json.loads(runner.invoke(cli, ["init", "--json"]).stdout)
    assert (result["config_written"], result["config"]) == (False, str(tmp_path / "elsewhere.toml"))
    assert files(tmp_path) == ["elsewhere.toml", "riskreg.db"]


def test_init_with_a_broken_config_creates_nothing(runner, tmp_path):
    (tmp_path / "riskreg.toml").write_text("[appetite\n", encoding="utf-8")
    result = runner.invoke(cli, ["init"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {tmp_path / 'riskreg.toml'}: Expected ']'")
    assert files(tmp_path) == ["riskreg.toml"]


def test_a_database_with_no_register_is_refused_with_the_init_advice(runner, empty_db_url):
    rr = Riskreg(runner, empty_db_url)
    for args in (["risk", "list"], ["db", "upgrade"], ["audit", "verify"], ADD):
        result = rr(*args)
        assert (result.exit_code, result.stderr) == (1, no_register(empty_db_url))
    status = rr.json("db", "status")
    assert (status["register"], status["revision"], status["up_to_date"]) == (False, None, False)
    if empty_db_url.startswith("sqlite"):
        assert not os.path.exists(empty_db_url.removeprefix("sqlite:///"))
    else:
        assert tables(empty_db_url) == []


def test_init_on_each_backend_then_a_second_init_is_refused(runner, empty_db_url, backend):
    rr = Riskreg(runner, empty_db_url)
    created = rr.json("init")
    sqlite = backend == "sqlite"
    assert created == {
        "url": safe_url(empty_db_url),
        "backend": backend,
        "schema": SCHEMA_HEAD,
        "config_written": sqlite,
        "config": empty_db_url.removeprefix("sqlite:///").replace("new.db", "riskreg.toml")
        if sqlite
        else None,
    }
    assert rr.json("db", "status")["up_to_date"] is True
    assert rr.json("risk", "list") == []
    again = rr("init")
    assert (again.exit_code, again.stderr) == (
        1,
        f"Error: a register already exists {where(empty_db_url)} (schema {SCHEMA_HEAD}); nothing was changed\n",
    )


def test_init_refuses_a_database_holding_other_tables(runner, empty_db_url):
    engine = create_engine(empty_db_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE payroll (id INTEGER)"))
    engine.dispose()
    result = Riskreg(runner, empty_db_url)("init")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: found tables that are not a register's {where(empty_db_url)} (payroll); nothing was changed\n",
    )
    assert tables(empty_db_url) == ["payroll"]
