"""Outcome and resource data: both CSV forms, every kind of bad row, atomicity and replacement."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from riskreg.ingest import parse_value
from tests.pilot_fixtures import LONG, registered, write

WIDE = (
    "\ufeffunit_id;arm;wellbeing;readmitted;incidents;exposure\nw1;comparison;41;no;1;4\nw2;pilot;;TRUE;0;5\n"
)


def imported(rr, tmp_path, text, *extra, stage="feasibility"):
    return rr("pilot", "data", "P-1", write(tmp_path, "data.csv", text), "--stage", stage, *extra)


def observation_count(rr) -> int:
    data = rr.json("pilot", "show", "P-1")["data"]
    return sum(c["n"] + c["missing"] for arms in data.values() for c in arms.values())


def test_long_form_with_missing_values_counted(rr, tmp_path):
    registered(rr, tmp_path)
    summary = rr.json("pilot", "data", "P-1", write(tmp_path, "d.csv", LONG), "--stage", "feasibility")
    assert (summary["form"], summary["rows"], summary["observations"], summary["missing"]) == (
        "long",
        9,
        9,
        2,
    )
    assert summary["metrics"]["wellbeing"] == {
        "comparison": {"n": 1, "missing": 0},
        "pilot": {"n": 1, "missing": 1},
    }
    assert summary["metrics"]["incidents"] == {
        "comparison": {"n": 1, "missing": 0},
        "pilot": {"n": 1, "missing": 1},
    }


def test_wide_form_semicolons_bom_and_exposure_column(rr, tmp_path):
    registered(rr, tmp_path)
    summary = rr.json("pilot", "data", "P-1", write(tmp_path, "w.csv", WIDE), "--stage", "feasibility")
    assert (summary["form"], summary["observations"], summary["missing"]) == ("wide", 6, 1)
    assert summary["metrics"]["readmitted"] == {
        "comparison": {"n": 1, "missing": 0},
        "pilot": {"n": 1, "missing": 0},
    }


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (
            "u9,control,wellbeing,40,,",
            "unknown arm 'control' (arms: comparison, pilot); to read it as an arm, add arm_labels = "
            '{"control" = "comparison"} (or "pilot") to the protocol\'s [data], or use --map "control=comparison"',
        ),
        (
            "u9,pilot,wellbeeing,40,,",
            "unknown metric 'wellbeeing' (metrics: wellbeing, readmitted, incidents); did you mean 'wellbeing'?",
        ),
        ("u9,pilot,wellbeing,forty,,", "wellbeing: value must be a number, got 'forty'"),
        ("u9,pilot,readmitted,2,,", "readmitted: binary value must be 0/1, true/false or yes/no, got '2'"),
        (
            "u9,pilot,incidents,-1,3,",
            "incidents: count must be a whole number of events, 0 or more, got '-1'",
        ),
        (
            "u9,pilot,incidents,1.5,3,",
            "incidents: count must be a whole number of events, 0 or more, got '1.5'",
        ),
        ("u9,pilot,incidents,1,0,", "incidents: exposure must be greater than 0, got '0'"),
        (
            "u9,pilot,incidents,1,,",
            "incidents: count metrics need an exposure (e.g. person-weeks) greater than 0",
        ),
        ("u9,pilot,wellbeing,40,3,", "wellbeing: exposure is only for count metrics"),
        ("u9,pilot,wellbeing,inf,,", "wellbeing: value must be a number, got 'inf'"),
        (",pilot,wellbeing,40,,", "unit_id is empty"),
        (
            "u1,comparison,wellbeing,41,,",
            "duplicate: the same unit and metric as line 2 (use one row per unit and metric)",
        ),
    ],
)
def test_a_bad_row_rejects_the_file_with_line_and_reason(rr, tmp_path, row, reason):
    registered(rr, tmp_path)
    result = imported(rr, tmp_path, LONG + row + "\n")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {tmp_path / 'data.csv'}: line 11: {reason}; nothing was imported\n",
    )
    assert observation_count(rr) == 0
    assert rr.json("audit", "verify")["events"] == 1


def test_many_bad_rows_first_20_shown_and_total_counted(rr, tmp_path):
    registered(rr, tmp_path)
    rows = "".join(f"x{i},pilot,wellbeing,bad,,\n" for i in range(30))
    lines = imported(rr, tmp_path, LONG + rows).stderr.splitlines()
    assert lines[0] == f"Error: {tmp_path / 'data.csv'}: 30 rows rejected, nothing was imported"
    assert lines[1] == "  line 11: wellbeing: value must be a number, got 'bad'"
    assert lines[-1] == "  ... and 10 more"
    assert len(lines) == 22


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty (expected a header line)"),
        ("unit_id,arm,metric,value\n", "no data rows (only a header)"),
        ("unit,arm,metric,value\nu1,pilot,wellbeing,3\n", "line 1: missing column unit_id"),
        (  # an unknown column is ignored: here it leaves no metric
            "unit_id,arm,colour\nu1,pilot,red\n",
            "line 1: no metric columns (expected some of: wellbeing, readmitted, incidents), or long form: unit_id,arm,metric,value",
        ),
    ],
)
def test_bad_files(rr, tmp_path, content, message):
    registered(rr, tmp_path)
    result = imported(rr, tmp_path, content)
    assert (result.exit_code, result.stderr) == (1, f"Error: {tmp_path / 'data.csv'}: {message}\n")


def test_wrong_encoding_is_refused(rr, tmp_path):
    registered(rr, tmp_path)
    result = rr(
        "pilot",
        "data",
        "P-1",
        write(tmp_path, "l.csv", LONG.replace("north", "nørth"), encoding="latin-1"),
        "--stage",
        "feasibility",
    )
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"Error: {tmp_path / 'l.csv'}: not UTF-8 text (byte 0xf8 cannot be decoded); save the file as 'CSV UTF-8' and try again\n"
    )
    assert observation_count(rr) == 0


def test_dry_run_writes_nothing(rr, tmp_path):
    registered(rr, tmp_path)
    assert (
        rr.json(
            "pilot", "data", "P-1", write(tmp_path, "d.csv", LONG), "--stage", "feasibility", "--dry-run"
        )["dry_run"]
        is True
    )
    assert observation_count(rr) == 0
    assert rr.json("audit", "verify")["events"] == 1


def test_second_import_of_the_same_metrics_needs_replace(rr, tmp_path):
    registered(rr, tmp_path)
    imported(rr, tmp_path, LONG)
    again = imported(rr, tmp_path, LONG)
    assert (
        again.stderr
        == "Error: stage 'feasibility' of P-1 already has data for wellbeing, readmitted, incidents; nothing was imported "
        "(use --append to add new units to them, or --replace to swap them)\n"
    )
    smaller = "unit_id,arm,metric,value\nu1,comparison,wellbeing,39\n"
    summary = rr.json(
        "pilot", "data", "P-1", write(tmp_path, "s.csv", smaller), "--stage", "feasibility", "--replace"
    )
    assert summary["replaced"] == 3
    assert observation_count(rr) == 7  # readmitted and incidents untouched, wellbeing swapped


def test_other_metrics_for_the_same_stage_can_follow(rr, tmp_path):
    registered(rr, tmp_path)
    imported(rr, tmp_path, "unit_id,arm,metric,value\nu1,pilot,wellbeing,40\n")
    second = rr.json(
        "pilot",
        "data",
        "P-1",
        write(tmp_path, "c.csv", "unit_id,arm,metric,value,exposure\nu1,pilot,incidents,1,2\n"),
        "--stage",
        "feasibility",
    )
    assert second["observations"] == 1


def test_data_only_for_the_open_stage(rr, tmp_path):
    registered(rr, tmp_path)
    ahead = imported(rr, tmp_path, LONG, stage="extended")
    assert (
        ahead.stderr
        == "Error: stage 'extended' of P-1 is not open yet: the pilot is at 'feasibility' (a gate 'proceed' opens the next stage)\n"
    )
    assert (
        imported(rr, tmp_path, LONG, stage="pilot").stderr
        == "Error: P-1 has no stage 'pilot' (stages: feasibility, extended)\n"
    )
    rr("pilot", "gate", "P-1", "--decision", "proceed", "--reason", "go", "--override")
    behind = imported(rr, tmp_path, LONG, stage="feasibility")
    assert (
        behind.stderr
        == "Error: stage 'feasibility' of P-1 is closed: its gate was passed; the pilot is at 'extended'\n"
    )


RESOURCES = "stage,side,kind,hours,amount,arm,note\nfeasibility,public,staff_time,10,300,comparison,calls\nfeasibility,citizen,volunteer_time,20,,pilot,befriending\nextended,citizen,expenses,,45.5,pilot,bus fares\n"


def test_resources_value_citizen_hours_apart_from_cash(rr, tmp_path):
    registered(rr, tmp_path)
    result = rr.json("pilot", "resources", "P-1", write(tmp_path, "r.csv", RESOURCES))
    totals = result["totals"]
    assert totals["total"] == {
        "public": {"hours": 10.0, "cash": 300.0, "valued": 0.0},
        "citizen": {"hours": 20.0, "cash": 45.5, "valued": 244.2},
    }
    assert totals["by_arm"]["pilot"]["citizen"]["valued"] == 244.2  # 20 h x 12.21 (DESIGN default)
    assert set(totals["by_stage"]) == {"feasibility", "extended"}


def test_the_same_resources_file_twice_is_refused_and_its_costs_are_not_doubled(rr, tmp_path):
    import re

    registered(rr, tmp_path)
    first = write(tmp_path, "r.csv", RESOURCES)
    assert rr("pilot", "resources", "P-1", first).exit_code == 0
    events = rr.json("audit", "verify")["events"]
    again = write(tmp_path, "r-copy.csv", RESOURCES)  # another name, the same bytes
    # the same rows saved by a spreadsheet on Windows: a BOM and CRLF line ends
    windows = write(tmp_path, "r-windows.csv", "\ufeff" + RESOURCES.replace("\n", "\r\n"))
    for path in (first, again, windows):
        result = rr("pilot", "resources", "P-1", path)
        assert result.exit_code == 1
        assert re.fullmatch(
            rf"Error: {re.escape(path)}: P-1 already has these resources: the same file was imported on "
            r"\d{4}-\d\d-\d\d \d\d:\d\d UTC by alice \(r\.csv\); nothing was imported \(a second import "
            r"would count its costs twice; for new costs that repeat, tell them apart in a note column\)\n",
            result.stderr,
        ), result.stderr
    assert rr.json("audit", "verify")["events"] == events  # nothing was written
    costs = rr.json("pilot", "analyse", "P-1")["costs"]
    assert costs["overall"]["public"] == 300.0  # once, not twice
    # the same rows told apart by their note are new costs
    repeat = write(tmp_path, "r-march.csv", RESOURCES.replace(",calls\n", ",calls in March\n"))
    assert rr("pilot", "resources", "P-1", repeat).exit_code == 0
    assert rr.json("pilot", "analyse", "P-1")["costs"]["overall"]["public"] == 600.0


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("feasibility,volunteer,time,1,,,", "side must be public or citizen, got 'volunteer'"),
        ("scale,public,time,1,,,", "unknown stage 'scale' (stages: feasibility, extended)"),
        ("feasibility,public,time,,,,", "give hours, amount or both"),
        ("feasibility,public,time,-2,,,", "hours must be 0 or more, got '-2'"),
        (
            "feasibility,public,time,2,,control,",
            "unknown arm 'control' (arms: comparison, pilot; leave empty for the whole pilot)",
        ),
    ],
)
def test_bad_resource_rows(rr, tmp_path, row, reason):
    registered(rr, tmp_path)
    path = write(tmp_path, "r.csv", RESOURCES + row + "\n")
    result = rr("pilot", "resources", "P-1", path)
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {path}: line 5: {reason}; nothing was imported\n",
    )


@given(st.text(max_size=12))
def test_parse_value_accepts_only_what_it_documents(text):
    for kind in ("continuous", "binary", "count"):
        try:
            value = parse_value(kind, text)
        except ValueError as exc:
            assert str(exc)
            continue
        if kind == "binary":
            assert value in (0.0, 1.0)
        elif kind == "count":
            assert value >= 0
            assert value == int(value)


def test_rejected_rows_are_listed_in_line_order_repeats_included(rr, tmp_path):
    registered(rr, tmp_path)
    text = "unit_id,arm,metric,value\nu1,pilot,wellbeing,40\nu1,pilot,wellbeing,41\nu2,pilot,wellbeing,many\n"
    path = write(tmp_path, "order.csv", text)
    result = rr("pilot", "data", "P-1", path, "--stage", "feasibility")
    assert result.stderr.splitlines()[1:] == [
        "  line 3: duplicate: the same unit and metric as line 2 (use one row per unit and metric)",
        "  line 4: wellbeing: value must be a number, got 'many'",
    ]
