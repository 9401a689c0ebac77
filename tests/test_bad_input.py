"""Mistakes a manager makes at the terminal: one Error line, the right exit status, nothing written."""

from __future__ import annotations

import pytest

ADD = [
    "risk",
    "add",
    "A risk",
    "--side",
    "citizen",
    "--mode",
    "delivery",
    "--likelihood",
    "3",
    "--impact",
    "3",
]


def event_count(rr) -> int:
    return rr.json("audit", "verify")["events"]


def replace(args: list[str], option: str, value: str) -> list[str]:
    out = list(args)
    out[out.index(option) + 1] = value
    return out


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        (
            "--side",
            "citzen",
            "Error: Invalid value for '--side': 'citzen' is not one of 'citizen', 'professional', 'shared'.",
        ),
        (
            "--mode",
            "delivering",
            "Error: Invalid value for '--mode': 'delivering' is not one of 'commissioning', 'design', 'delivery', 'assessment'.",
        ),
        ("--likelihood", "0", "Error: Invalid value for '--likelihood': 0 is not in the range 1<=x<=5."),
        ("--impact", "6", "Error: Invalid value for '--impact': 6 is not in the range 1<=x<=5."),
    ],
)
def test_usage_errors_exit_2_and_write_nothing(rr, option, value, message):
    result = rr(*replace(ADD, option, value))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == message
    assert event_count(rr) == 0


def test_unknown_treatment_is_a_usage_error(rr):
    result = rr(*ADD, "--treatment", "ignore")
    assert result.exit_code == 2
    assert "'ignore' is not one of 'treat', 'tolerate', 'transfer', 'terminate', 'test'" in result.stderr


def test_empty_title(rr):
    result = rr(*replace(ADD, "add", "add")[:2], "  ", *ADD[3:])
    assert (result.exit_code, result.stderr) == (1, "Error: title: must not be empty\n")
    assert event_count(rr) == 0


def test_target_needs_both_scores(rr):
    result = rr(*ADD, "--target-likelihood", "2")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: target: give both target likelihood and target impact, or neither\n",
    )
    assert event_count(rr) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["risk", "show", "R-99"], "Error: no risk R-99\n"),
        (["risk", "show", "risk-one"], "Error: not a risk id: 'risk-one' (expected R-<number>, e.g. R-1)\n"),
        (
            ["risk", "rescore", "R-99", "--likelihood", "1", "--impact", "1", "--reason", "x"],
            "Error: no risk R-99\n",
        ),
        (["risk", "close", "R-99", "--reason", "x"], "Error: no risk R-99\n"),
        (["control", "update", "C-7", "--status", "in-place"], "Error: no control C-7\n"),
        (
            ["control", "add", "R-1", "x", "--due", "31/01/2027"],
            "Error: due: expected a date as YYYY-MM-DD, got '31/01/2027'\n",
        ),
        (
            ["risk", "rescore", "R-1", "--likelihood", "1", "--impact", "1", "--reason", " "],
            "Error: reason: must not be empty (say why, for the audit trail)\n",
        ),
    ],
)
def test_library_errors_are_one_line_exit_1(rr, args, message):
    rr(*ADD)
    before = event_count(rr)
    result = rr(*args)
    assert (result.exit_code, result.stderr) == (1, message)
    assert event_count(rr) == before


def test_update_without_fields_is_a_usage_error(rr):
    rr(*ADD)
    result = rr("risk", "update", "R-1", "--reason", "x")
    assert result.exit_code == 2
    assert result.stderr.strip().endswith("Error: give at least one field to change, e.g. --owner")


def test_malformed_config_is_one_error_line(runner, tmp_path):
    from tests.conftest import Riskreg

    rr = Riskreg(runner, f"sqlite:///{tmp_path / 'r.db'}")
    rr("init")
    (tmp_path / "riskreg.toml").write_text("[ratings]\nlow = 'three'\n")
    result = rr("risk", "list")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {tmp_path / 'riskreg.toml'}: ratings.low: expected a whole number from 1 to 25, got 'three'\n",
    )


def test_config_syntax_error(runner, tmp_path):
    from tests.conftest import Riskreg

    rr = Riskreg(runner, f"sqlite:///{tmp_path / 'r.db'}")
    assert rr("init").exit_code == 0
    (tmp_path / "riskreg.toml").write_text("[appetite\n")
    result = rr("risk", "list")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: {tmp_path / 'riskreg.toml'}: Expected ']' at the end of a table declaration (at line 1, column 10)"
    )


def test_missing_database_folder(runner, tmp_path):
    from tests.conftest import Riskreg

    result = Riskreg(runner, f"sqlite:///{tmp_path / 'nope' / 'r.db'}")("init")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: cannot create database sqlite:///{tmp_path / 'nope' / 'r.db'}: folder {tmp_path / 'nope'} does not exist\n",
    )


def test_a_control_character_in_a_file_name_is_shown_escaped_on_one_line(runner, tmp_path):
    # found by the fuzz test: '\x1e' ends a line for str.splitlines, so the one-line error looked like two
    from riskreg.cli import cli

    assert runner.invoke(cli, ["--db", f"sqlite:///{tmp_path}/r.db", "init"]).exit_code == 0
    result = runner.invoke(cli, ["--db", f"sqlite:///{tmp_path}/r.db", "pilot", "register", "\x1e"])
    assert result.exit_code == 1
    assert result.stderr == "Error: \\x1e: cannot read file: No such file or directory\n"
