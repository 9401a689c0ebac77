"""Issue 16: mapping instead of refusing, missing words and decimal commas, refusing what would be guessed."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskreg.ingest import NUMBER_SYNTAX, parse_number
from tests.pilot_fixtures import PROTOCOL, registered, write

DATA = """[data]
columns = { unit_id = "Client ID", arm = "Group" }
arm_labels = { "Usual care" = "comparison", "Good Neighbour" = "pilot" }
"""


def data(rr, tmp_path, text, *extra):
    return rr("pilot", "data", "P-1", write(tmp_path, "d.csv", text), "--stage", "feasibility", *extra)


def observations(rr) -> int:
    shown = rr.json("pilot", "show", "P-1")["data"]
    return sum(c["n"] + c["missing"] for arms in shown.values() for c in arms.values())


def refused(result, path, message: str) -> None:
    assert (result.exit_code, result.stderr) == (1, f"Error: {path}: {message}\n")


def test_mapping_from_the_protocol_and_ignored_columns_noticed_once(rr, tmp_path):
    registered(rr, tmp_path, PROTOCOL + DATA)
    text = "Client ID,Group,wellbeing,Date,Notes\nc1,Usual care,40,2024-01-01,x\nc2,Good Neighbour,42,2024-01-02,\n"
    result = data(rr, tmp_path, text)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("ignored column(s) 'Date', 'Notes'") == 1
    summary = rr.json(
        "pilot", "data", "P-1", write(tmp_path, "e.csv", text), "--stage", "feasibility", "--replace"
    )
    assert summary["ignored"] == ["Date", "Notes"]
    assert summary["metrics"]["wellbeing"] == {
        "comparison": {"n": 1, "missing": 0},
        "pilot": {"n": 1, "missing": 0},
    }


def test_strict_refuses_extra_columns_and_writes_nothing(rr, tmp_path):
    registered(rr, tmp_path)
    text = "unit_id,arm,wellbeing,Date,Notes\nc1,comparison,40,2024-01-01,x\n"
    path = tmp_path / "d.csv"
    result = data(rr, tmp_path, text, "--strict")
    refused(
        result,
        path,
        "unexpected column(s) 'Date', 'Notes' (--strict); map them with --map or leave out --strict",
    )
    assert observations(rr) == 0


def test_map_option_maps_columns_and_arm_labels(rr, tmp_path):
    registered(rr, tmp_path)
    text = "Client ID;Group;Score\nc1;Usual care;40\nc2;pilot;41\n"
    summary = rr.json(
        "pilot",
        "data",
        "P-1",
        write(tmp_path, "d.csv", text),
        "--stage",
        "feasibility",
        "--map",
        "Client ID=unit_id",
        "--map",
        "Group=arm",
        "--map",
        "Score=wellbeing",
        "--map",
        "Usual care=comparison",
    )
    assert summary["observations"] == 2 and summary["ignored"] == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("Client ID", "Error: Invalid value for '--map': expected 'FILE NAME=NAME', got 'Client ID'"),
        ("=arm", "Error: Invalid value for '--map': expected 'FILE NAME=NAME', got '=arm'"),
    ],
)
def test_bad_map_syntax_is_a_usage_error(rr, tmp_path, value, message):
    registered(rr, tmp_path)
    result = data(rr, tmp_path, "unit_id,arm,wellbeing\nc1,pilot,1\n", "--map", value)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == message


def test_map_to_an_unknown_name_names_the_flag(rr, tmp_path):
    registered(rr, tmp_path)
    result = data(rr, tmp_path, "unit_id,arm,wellbeing\nc1,pilot,1\n", "--map", "Group=arms")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: --map Group=arms: 'arms' is neither a column nor an arm (columns: unit_id, arm, metric, "
        "value, exposure, site, wellbeing, readmitted, incidents; arms: comparison, pilot)\n"
    )


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        (
            'columns = { unit = "Client ID" }',
            "data.columns.unit: unknown column 'unit' (did you mean 'unit_id'?)",
        ),
        ('columns = { arm = "" }', "data.columns.arm: expected a non-empty string, got ''"),
        (
            'arm_labels = { "Usual care" = "control" }',
            "data.arm_labels.\"Usual care\": expected an arm (comparison or pilot), got 'control'",
        ),
        ("colour = 1", "data.colour: unknown key 'colour' (did you mean 'columns'?)"),
    ],
)
def test_protocol_data_table_is_validated(rr, tmp_path, table, problem):
    path = write(tmp_path, "p.toml", PROTOCOL + "[data]\n" + table + "\n")
    result = rr("pilot", "register", path)
    assert (result.exit_code, result.stderr) == (1, f"Error: {path}: {problem}\n")


def test_unknown_arm_reported_once_per_line_and_lines_counted(rr, tmp_path):
    registered(rr, tmp_path)
    rows = "".join(f"c{i},Usual care,40,no,1,4\n" for i in range(83))
    result = data(rr, tmp_path, "unit_id,arm,wellbeing,readmitted,incidents,exposure\n" + rows)
    lines = result.stderr.splitlines()
    assert lines[0] == f"Error: {tmp_path / 'd.csv'}: 83 rows rejected, nothing was imported"
    assert lines[1] == (
        "  line 2: unknown arm 'Usual care' (arms: comparison, pilot); to read it as an arm, add arm_labels = "
        '{"Usual care" = "comparison"} (or "pilot") to the protocol\'s [data], or use --map "Usual care=comparison"'
    )
    assert lines[-1] == "  ... and 63 more"
    assert observations(rr) == 0


def test_did_you_mean_is_case_insensitive(rr, tmp_path):
    text = PROTOCOL.replace('arms = ["comparison", "pilot"]', 'arms = ["usual_care", "pilot"]')
    registered(rr, tmp_path, text)
    result = data(rr, tmp_path, "unit_id,arm,wellbeing\nc1,Usual care,40\n")
    refused(
        result,
        tmp_path / "d.csv",
        "line 2: unknown arm 'Usual care' (arms: usual_care, pilot); did you mean 'usual_care'?; nothing was imported",
    )


def test_decimal_commas_in_a_semicolon_file(rr, tmp_path):
    registered(rr, tmp_path)
    summary = rr.json(
        "pilot",
        "data",
        "P-1",
        write(tmp_path, "d.csv", "unit_id;arm;wellbeing\nc1;pilot;22,5\nc2;comparison;21\n"),
        "--stage",
        "feasibility",
    )
    assert summary["observations"] == 2
    assert rr.json("pilot", "analyse", "P-1")  # the values are numbers


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'unit_id,arm,wellbeing\nc1,pilot,"22,5"\n',
            "line 2: wellbeing: value has a decimal comma in a comma-separated file, which is ambiguous "
            "(use a decimal point, or save the file with semicolons), got '22,5'",
        ),
        (
            "unit_id;arm;wellbeing\nc1;pilot;1.234,5\n",
            "line 2: wellbeing: value has a thousands separator or two decimal marks, which are never guessed "
            "(write the number without thousands separators), got '1.234,5'",
        ),
        ("unit_id,arm,wellbeing\nc1,pilot,1_000\n", "line 2: wellbeing: value must be a number, got '1_000'"),
        ("unit_id,arm,wellbeing\nc1,pilot,١٢\n", "line 2: wellbeing: value must be a number, got '١٢'"),
        ("unit_id,arm,wellbeing\nc1,pilot,𝟓\n", "line 2: wellbeing: value must be a number, got '𝟓'"),
        ("unit_id,arm,wellbeing\nc1,pilot,５\n", "line 2: wellbeing: value must be a number, got '５'"),
        (
            "unit_id,arm,wellbeing\nc1,pilot,5e-400\n",
            "line 2: wellbeing: value is out of range (so small in size that it reads as 0), got '5e-400'",
        ),
        (
            "unit_id,arm,wellbeing\nc1,pilot,1e999\n",
            "line 2: wellbeing: value is out of range (larger than 1e15 in size), got '1e999'",
        ),
        ("unit_id,arm,metric,value\nc1,pilot,wellbeing\n", "line 2: 3 cells where the header has 4"),
        ("unit_id,arm,wellbeing\nc1,pilot,4,5\n", "line 2: 4 cells where the header has 3"),
    ],
)
def test_refused_not_guessed(rr, tmp_path, text, message):
    registered(rr, tmp_path)
    refused(data(rr, tmp_path, text), tmp_path / "d.csv", f"{message}; nothing was imported")
    assert observations(rr) == 0


def test_trailing_empty_cells_and_columns_are_ignored_silently(rr, tmp_path):
    registered(rr, tmp_path)
    summary = rr.json(
        "pilot",
        "data",
        "P-1",
        write(tmp_path, "d.csv", "unit_id;arm;wellbeing;;\nc1;pilot;4;;\nc2;comparison;5;;;\n"),
        "--stage",
        "feasibility",
    )
    assert (summary["observations"], summary["ignored"]) == (2, [])


def test_missing_words_come_from_the_configuration(rr, tmp_path, monkeypatch):
    registered(rr, tmp_path)
    text = "unit_id,arm,wellbeing\nc1,pilot,-\nc2,pilot,#N/A\nc3,pilot,.\nc4,comparison,n/a\n"
    summary = rr.json("pilot", "data", "P-1", write(tmp_path, "d.csv", text), "--stage", "feasibility")
    assert summary["missing"] == 4
    (tmp_path / "settings.toml").write_text('missing_values = ["", "unknown"]\n')
    monkeypatch.setenv("RISKREG_CONFIG", str(tmp_path / "settings.toml"))
    result = rr(
        "pilot",
        "data",
        "P-1",
        write(tmp_path, "e.csv", "unit_id,arm,readmitted\nc1,pilot,UNKNOWN\nc2,pilot,NA\n"),
        "--stage",
        "feasibility",
    )
    refused(
        result,
        tmp_path / "e.csv",
        "line 3: readmitted: binary value must be 0/1, true/false or yes/no, got 'NA'; nothing was imported",
    )


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            "feasibility,public,staff_time,1e308,,,",
            "line 2: hours is out of range (larger than 1e15 in size), got '1e308'",
        ),
        (
            "feasibility,public,staff_time,1,1e16,,",
            "line 2: amount is out of range (larger than 1e15 in size), got '1e16'",
        ),
        ("feasibility,public,staff\x00time,1,,,", "line 2: kind contains a NUL character"),
        ("feasibility,public,staff_time,1,,,a\x00b", "line 2: note contains a NUL character"),
        ("feasibility,public," + "k" * 101 + ",1,,,", "line 2: kind is longer than 100 characters (101)"),
        (
            "feasibility,public,staff_time,1,,," + "n" * 2001,
            "line 2: note is longer than 2000 characters (2001)",
        ),
    ],
)
def test_resources_refuse_what_a_backend_would_not_store(rr, tmp_path, row, message):
    registered(rr, tmp_path)
    path = write(tmp_path, "r.csv", "stage,side,kind,hours,amount,arm,note\n" + row + "\n")
    result = rr("pilot", "resources", "P-1", path)
    refused(result, path, f"{message}; nothing was imported")


NUMBER = re.compile(NUMBER_SYNTAX)


@settings(max_examples=600, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789+-.eE_ ,x١𝟓５i nfa"), max_size=12))
def test_the_number_parser_accepts_exactly_the_documented_syntax(text):
    text = text.strip()
    try:
        value: float | None = parse_number(text)
    except ValueError:
        value = None
    if NUMBER.fullmatch(text) is None:
        assert value is None
        return
    exact = float(text)
    mantissa = text.lower().partition("e")[0]
    in_range = math.isfinite(exact) and (exact != 0 or not mantissa.strip("+-0."))
    assert (value is not None) == in_range
    if value is not None:
        assert value == exact
