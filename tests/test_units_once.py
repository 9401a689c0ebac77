"""A unit is counted once per metric: a later stage's rows for units that already have a value are
refused (or left out with --new-units-only), count groups keep Σ y²/t, migration 0008, and the QA
rule for data imported before the check."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from riskreg.counted import recount
from riskreg.db import SCHEMA_HEAD, open_database
from riskreg.models import observations
from riskreg.pilots import get_pilot
from riskreg.stats.summaries import ContinuousSummary
from riskreg.tally import GroupTally
from riskreg.units import double_counted
from tests.conftest import tamper
from tests.pilot_fixtures import LONG, PROTOCOL, registered, write

# LONG, the first stage: u1 (comparison) has every value; u2 (pilot) wellbeing NA; u3 (pilot) incidents NA
LATER = (
    "unit_id,arm,metric,value,exposure\n"
    "u4,comparison,wellbeing,41,\n"
    "u3,pilot,wellbeing,45,\n"  # u3 has wellbeing 44.5 from the first stage
    "u2,pilot,wellbeing,50,\n"  # u2's wellbeing was missing: it may come now
    "u3,pilot,incidents,NA,\n"  # u3's incidents was missing too: missing again would count it twice
    "u1,comparison,readmitted,NA,\n"  # u1 has readmitted: a missing value would count it again
)
ADVICE = "a unit is counted once per metric: leave the row out, or import with --new-units-only"
REASON = "the unit is already counted for the metric in an earlier stage"


def at_second_stage(rr, tmp_path, first: str = LONG) -> None:
    registered(rr, tmp_path)
    assert (
        rr("pilot", "data", "P-1", write(tmp_path, "first.csv", first), "--stage", "feasibility").exit_code
        == 0
    )
    gate = ("pilot", "gate", "P-1", "--decision", "proceed", "--reason", "x")
    # --override only where the analysis recommends something else
    assert rr(*gate).exit_code == 0 or rr(*gate, "--override").exit_code == 0


def second(rr, tmp_path, content: str, *extra: str, name: str = "second.csv"):
    return rr("pilot", "data", "P-1", write(tmp_path, name, content), "--stage", "extended", *extra)


def findings(rr) -> list[dict]:
    """The units-counted-twice findings of `riskreg check` (which exits 1 on an error finding)."""
    return [f for f in json.loads(rr("check", "--json").stdout) if f["rule"] == "units-counted-twice"]


def first_import_day(rr) -> str:
    return rr.json("pilot", "show", "P-1")["imports"][0]["at"][:10]


def state(rr) -> tuple:
    shown = rr.json("pilot", "show", "P-1")
    return shown["data"], len(shown["imports"]), rr.json("audit", "verify")["events"]


def rows(url: str, sql: str) -> list[tuple]:
    engine = create_engine(url)
    with engine.connect() as connection:
        found = [tuple(row) for row in connection.execute(text(sql))]
    engine.dispose()
    return found


# --- refused at import -------------------------------------------------------------------------


def test_rows_of_units_with_a_value_from_an_earlier_stage_are_refused_with_their_lines(rr, tmp_path):
    at_second_stage(rr, tmp_path)
    before = state(rr)
    result = second(rr, tmp_path, LATER)
    day = first_import_day(rr)
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {tmp_path / 'second.csv'}: 3 rows rejected, nothing was imported\n"
        f"  line 3: unit u3 already has a wellbeing value from stage 'feasibility' (first.csv, imported {day} by alice); {ADVICE}\n"
        f"  line 5: unit u3 already has an incidents row, its value missing, from stage 'feasibility' (first.csv, imported {day} by alice); {ADVICE}\n"
        f"  line 6: unit u1 already has a readmitted value from stage 'feasibility' (first.csv, imported {day} by alice); {ADVICE}\n",
    )
    assert state(rr) == before
    # a --dry-run is refused alike
    assert second(rr, tmp_path, LATER, "--dry-run").stderr == result.stderr


def test_one_repeat_is_one_line_and_a_unit_whose_value_was_missing_may_get_it(rr, tmp_path):
    at_second_stage(rr, tmp_path)
    result = second(
        rr, tmp_path, "unit_id,arm,metric,value,exposure\nu2,pilot,wellbeing,50,\nu1,pilot,incidents,3,2\n"
    )
    day = first_import_day(rr)
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {tmp_path / 'second.csv'}: line 3: unit u1 already has an incidents value from stage "
        f"'feasibility' (first.csv, imported {day} by alice); {ADVICE}; nothing was imported\n",
    )
    summary = rr.json(
        "pilot",
        "data",
        "P-1",
        write(tmp_path, "u2.csv", "unit_id,arm,wellbeing\nu2,pilot,50\n"),
        "--stage",
        "extended",
    )
    assert (summary["observations"], summary["left_out"]) == (1, {})


def test_a_unit_whose_missing_value_came_later_counts_as_present_and_not_missing_too(rr, tmp_path):
    """u2's wellbeing, missing at feasibility, arrives at the extended stage: present once, missing nowhere.

    Each import keeps its own counts; summed as they are, u2 was one unit with a value and one
    missing, in an arm of two units (pilot show, the analysis and the gate snapshot said so).
    """
    at_second_stage(rr, tmp_path)
    second(
        rr,
        tmp_path,
        "unit_id,arm,metric,value,exposure\nu2,pilot,wellbeing,50,\nu4,comparison,wellbeing,41,\n",
    )
    counts = rr.json("pilot", "show", "P-1")["data"]["wellbeing"]
    assert counts == {"comparison": {"n": 2, "missing": 0}, "pilot": {"n": 2, "missing": 0}}
    wellbeing = rr.json("pilot", "analyse", "P-1")["metrics"][0]
    assert wellbeing["name"] == "wellbeing"
    assert (wellbeing["n"], wellbeing["missing"]) == (
        {"comparison": 2, "pilot": 2},
        {"comparison": 0, "pilot": 0},
    )
    # the first stage alone still lacks u2's value
    first = rr.json("pilot", "analyse", "P-1", "--stage", "feasibility")["metrics"][0]
    assert (first["n"], first["missing"]) == ({"comparison": 1, "pilot": 1}, {"comparison": 0, "pilot": 1})
    # u3's incidents stay missing: no later import gave them
    incidents = next(m for m in rr.json("pilot", "analyse", "P-1")["metrics"] if m["name"] == "incidents")
    assert incidents["missing"] == {"comparison": 0, "pilot": 1}


def test_a_missing_value_appended_in_the_same_stage_counts_once(rr, tmp_path):
    registered(rr, tmp_path)
    assert rr("pilot", "data", "P-1", write(tmp_path, "a.csv", LONG), "--stage", "feasibility").exit_code == 0
    appended = write(tmp_path, "b.csv", "unit_id,arm,metric,value,exposure\nu2,pilot,wellbeing,47,\n")
    assert rr("pilot", "data", "P-1", appended, "--stage", "feasibility", "--append").exit_code == 0
    wellbeing = rr.json("pilot", "analyse", "P-1")["metrics"][0]
    assert (wellbeing["n"], wellbeing["missing"]) == (
        {"comparison": 1, "pilot": 2},
        {"comparison": 0, "pilot": 0},
    )
    assert rr.json("pilot", "show", "P-1")["data"]["wellbeing"]["pilot"] == {"n": 2, "missing": 0}


def test_the_counts_of_every_pilot_at_once_are_each_pilots_own(rr, db_url, tmp_path):
    """A board's pipeline reads all pilots' counts in two queries: the same as data_counts, pilot by pilot."""
    from pathlib import Path

    from riskreg.pilots import current_data_counts, data_counts, list_pilots

    at_second_stage(rr, tmp_path)  # P-1 at its second stage, with a missing value filled there
    second(rr, tmp_path, "unit_id,arm,metric,value,exposure\nu2,pilot,wellbeing,50,\n")
    root = Path(__file__).resolve().parent.parent
    assert rr("pilot", "register", str(root / "pilots" / "housing-repairs.toml")).exit_code == 0  # no data
    database = open_database(db_url)
    with database.read() as session:
        pilots = list_pilots(session)
        together = current_data_counts(session, pilots)
        alone = {pilot.id: data_counts(session, pilot, pilot.stage_index) for pilot in pilots}
    database.dispose()
    assert len(pilots) == 2
    assert together == alone
    assert together[pilots[0].id]["wellbeing"]["pilot"] == {"n": 2, "missing": 0}


def test_many_repeats_in_a_wide_file_first_20_shown_all_counted(rr, tmp_path):
    first = "unit_id,arm,wellbeing\n" + "".join(f"w{i},pilot,{40 + i}\n" for i in range(30))
    at_second_stage(rr, tmp_path, first)
    # w0..w24 again, beside a new metric for them (allowed) and 5 new units
    later = "unit_id,arm,readmitted,wellbeing\n" + "".join(f"w{i},pilot,0,{50 + i}\n" for i in range(25))
    later += "".join(f"n{i},comparison,1,45\n" for i in range(5))
    lines = second(rr, tmp_path, later).stderr.splitlines()
    day = first_import_day(rr)
    assert lines[0] == f"Error: {tmp_path / 'second.csv'}: 25 rows rejected, nothing was imported"
    assert lines[1] == (
        f"  line 2: unit w0 already has a wellbeing value from stage 'feasibility' (first.csv, imported {day} by alice); {ADVICE}"
    )
    assert [line.split(":")[0] for line in lines[1:21]] == [f"  line {n}" for n in range(2, 22)]
    assert lines[21:] == ["  ... and 5 more"]


# --- --new-units-only ------------------------------------------------------------------------------


def test_new_units_only_leaves_the_repeats_out_and_says_so(rr, db_url, tmp_path):
    at_second_stage(rr, tmp_path)
    events = rr.json("audit", "verify")["events"]
    summary = rr.json(
        "pilot",
        "data",
        "P-1",
        write(tmp_path, "second.csv", LATER),
        "--stage",
        "extended",
        "--new-units-only",
    )
    assert (summary["rows"], summary["observations"], summary["missing"]) == (5, 2, 0)
    assert summary["metrics"] == {
        "wellbeing": {"comparison": {"n": 1, "missing": 0}, "pilot": {"n": 1, "missing": 0}}
    }
    assert summary["left_out"] == {
        "wellbeing": {"observations": 1, "stages": ["feasibility"], "reason": REASON},
        "readmitted": {"observations": 1, "stages": ["feasibility"], "reason": REASON},
        "incidents": {"observations": 1, "stages": ["feasibility"], "reason": REASON},
    }
    assert rows(db_url, "SELECT unit_id, metric FROM observations WHERE import_id = 2 ORDER BY 1, 2") == [
        ("u2", 0),
        ("u4", 0),
    ]
    # the import's unit counts are dropped: the analysis counts them from what was kept
    assert rows(db_url, "SELECT * FROM import_units WHERE import_id = 2") == []
    assert rows(db_url, "SELECT units_checked FROM data_imports ORDER BY id") == [(True,), (True,)]
    verified = rr.json("audit", "verify")
    assert (verified["ok"], verified["events"], verified["state"]["mismatches"]) == (True, events + 1, [])
    (after,) = rows(db_url, "SELECT after FROM events WHERE action = 'pilot.data' ORDER BY seq DESC LIMIT 1")
    assert json.loads(after[0])["left_out"] == summary["left_out"]


def test_new_units_only_in_words(rr, tmp_path):
    at_second_stage(rr, tmp_path)
    result = second(rr, tmp_path, LATER + "u1,comparison,wellbeing,44,\n", "--new-units-only")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:4] == [
        "imported 2 observations from 6 rows (long form) into P-1 stage extended",
        "left out 2 wellbeing values of units already counted in stage 'feasibility' (--new-units-only)",
        "left out 1 readmitted value of a unit already counted in stage 'feasibility' (--new-units-only)",
        "left out 1 incidents value of a unit already counted in stage 'feasibility' (--new-units-only)",
    ]


def test_new_units_only_with_dry_run_and_replace(rr, db_url, tmp_path):
    at_second_stage(rr, tmp_path)
    assert second(rr, tmp_path, "unit_id,arm,wellbeing\nu9,pilot,47\n", name="new.csv").exit_code == 0
    before = state(rr)
    dry = rr.json(
        "pilot",
        "data",
        "P-1",
        write(tmp_path, "s.csv", LATER),
        "--stage",
        "extended",
        "--new-units-only",
        "--replace",
        "--dry-run",
    )
    assert (dry["dry_run"], dry["replaced"], dry["observations"]) == (True, 1, 2)
    assert state(rr) == before
    done = rr.json(
        "pilot",
        "data",
        "P-1",
        write(tmp_path, "s.csv", LATER),
        "--stage",
        "extended",
        "--new-units-only",
        "--replace",
    )
    assert {k: done[k] for k in ("replaced", "observations", "left_out")} == {
        k: dry[k] for k in ("replaced", "observations", "left_out")
    }
    assert (
        rows(db_url, "SELECT DISTINCT unit_id FROM observations WHERE import_id = 2") == []
    )  # u9 swapped out
    assert rr.json("audit", "verify")["ok"] is True


def test_a_file_of_nothing_but_repeats_is_refused_even_with_new_units_only(rr, tmp_path):
    at_second_stage(rr, tmp_path)
    before = state(rr)
    path = write(tmp_path, "again.csv", LONG)
    result = rr("pilot", "data", "P-1", path, "--stage", "extended", "--new-units-only")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {path}: every unit in the file is already counted for its metrics in an earlier stage; "
        "nothing was imported\n",
    )
    assert state(rr) == before


def test_what_new_units_only_keeps_equals_an_import_of_the_new_units_alone(rr, db_url, tmp_path):
    first = "unit_id,arm,metric,value,exposure\n" + "".join(
        f"a{i},{'pilot' if i % 2 else 'comparison'},{m},{v},{e}\n"
        for i in range(10)
        for m, v, e in (("wellbeing", 40 + i / 4, ""), ("incidents", i % 3, 1 + i))
    )
    at_second_stage(rr, tmp_path, first)
    units = [f"a{i}" for i in range(5, 10)] + [f"b{i}" for i in range(12)]
    lines = [
        f"{u},{'pilot' if n % 2 else 'comparison'},{m},{v},{e}\n"
        for n, u in enumerate(units)
        for m, v, e in (("wellbeing", "NA" if n == 7 else 1e9 + n / 7, ""), ("incidents", n % 4, 0.5 + n))
    ]
    header = "unit_id,arm,metric,value,exposure\n"
    assert second(rr, tmp_path, header + "".join(lines), "--new-units-only").exit_code == 0
    # the same new units alone, into a pilot of their own
    registered(rr, tmp_path, PROTOCOL.replace('"befriending"', '"other"'))
    alone = write(tmp_path, "alone.csv", header + "".join(line for line in lines if line.startswith("b")))
    assert rr("pilot", "data", "P-2", alone, "--stage", "feasibility").exit_code == 0

    columns = "metric, arm, n, missing, total, exposure, shift, sum_d, sum_d2, sum_y2_t"
    kept, direct = (
        rows(db_url, f"SELECT {columns} FROM import_counts WHERE import_id = {i} ORDER BY 1, 2")
        for i in (2, 3)
    )
    assert len(kept) == len(direct) == 4
    for ours, theirs in zip(kept, direct, strict=True):
        assert ours[:4] == theirs[:4]
        assert ours[4:6] == pytest.approx(theirs[4:6], rel=1e-15)
        if ours[0] == 0:  # wellbeing: shifted by another of the group's values, the same mean and variance
            summaries = [ContinuousSummary.from_shifted_sums(row[2], *row[6:9]) for row in (ours, theirs)]
            assert summaries[0].mean == pytest.approx(summaries[1].mean, rel=1e-15)
            assert summaries[0].m2 == pytest.approx(summaries[1].m2, rel=1e-9)
            assert ours[9] is None
        else:
            assert ours[6:9] == (None, None, None)
            assert ours[9] == pytest.approx(theirs[9], rel=1e-14)


values = st.lists(
    st.tuples(st.integers(0, 1), st.one_of(st.none(), st.integers(0, 50)), st.integers(1, 20)), max_size=30
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(continuous=values, counts=values, binary=values)
def test_counts_recomputed_in_the_database_equal_the_tallies_of_the_import(
    db_url, continuous, counts, binary
):
    """What --new-units-only writes for the metrics it trims, against what an import keeps."""
    database = open_database(db_url)
    kinds = {0: "continuous", 1: "count", 2: "binary"}
    expected = {}
    with database.write(dry_run=True) as session:
        written = []
        for code, groups in enumerate((continuous, counts, binary)):
            tallies = {arm: GroupTally(kinds[code] == "continuous", kinds[code] == "count") for arm in (0, 1)}
            for unit, (arm, value, exposure) in enumerate(groups):
                number = (
                    None
                    if value is None
                    else float(value % 2 if code == 2 else value / (3 if code == 0 else 1))
                )
                exposure_value = exposure / 4 if code == 1 else None
                tallies[arm].add(number, exposure_value)
                written.append(
                    {
                        "import_id": 99,
                        "metric": code,
                        "arm": arm,
                        "unit_id": f"u{unit}",
                        "value": number,
                        "exposure": exposure_value,
                    }
                )
            for arm, tally in tallies.items():
                columns = tally.columns()
                if columns["n"] + columns["missing"]:
                    expected[code, arm] = columns
        if written:
            session.execute(observations.insert(), written)
        got = {(code, arm): columns for code, arm, columns in recount(session, 99, kinds)}
    database.dispose()
    assert got.keys() == expected.keys()
    for key, columns in got.items():
        want = expected[key]
        assert {k: columns[k] for k in ("n", "missing")} == {k: want[k] for k in ("n", "missing")}
        for name in ("total", "exposure", "sum_y2_t"):
            assert columns[name] == (
                None if want[name] is None else pytest.approx(want[name], rel=1e-12, abs=1e-12)
            )
        if want["shift"] is None:
            assert (columns["shift"], columns["sum_d"], columns["sum_d2"]) == (None, None, None)
        else:
            ours = ContinuousSummary.from_shifted_sums(
                columns["n"], columns["shift"], columns["sum_d"], columns["sum_d2"]
            )
            theirs = ContinuousSummary.from_shifted_sums(
                want["n"], want["shift"], want["sum_d"], want["sum_d2"]
            )
            assert ours.mean == pytest.approx(theirs.mean, rel=1e-12, abs=1e-12)
            assert ours.m2 == pytest.approx(theirs.m2, rel=1e-9, abs=1e-9)


# --- Σ y²/t, migration 0008 and data imported before the check -----------------------------------


def test_count_groups_keep_the_sum_of_value_squared_over_exposure(rr, db_url, tmp_path):
    registered(rr, tmp_path)
    assert (
        rr("pilot", "data", "P-1", write(tmp_path, "first.csv", LONG), "--stage", "feasibility").exit_code
        == 0
    )
    # incidents: u1 0 events in 8 (comparison); u2 2 in 7.5, u3 missing (pilot); other kinds keep none
    assert rows(db_url, "SELECT metric, arm, sum_y2_t FROM import_counts ORDER BY 1, 2") == [
        (0, 0, None),
        (0, 1, None),
        (1, 0, None),
        (1, 1, None),
        (2, 0, 0.0),
        (2, 1, 4 / 7.5),
    ]


def legacy_double(db_url: str) -> None:
    """What an import before the check could hold: u3's wellbeing again in the second stage."""
    tamper(
        db_url, "INSERT INTO observations (import_id, metric, arm, unit_id, value) VALUES (2, 0, 1, 'u3', 46)"
    )
    tamper(db_url, "UPDATE data_imports SET units_checked = false WHERE id = 2")


def test_migration_0008_from_0007_with_data(rr, db_url, tmp_path):
    from tests.test_schema import _migrate

    at_second_stage(rr, tmp_path)
    assert (
        second(
            rr,
            tmp_path,
            "unit_id,arm,metric,value,exposure\nu4,comparison,incidents,3,2.5\nu4,comparison,wellbeing,41,\n",
        ).exit_code
        == 0
    )
    kept = rows(db_url, "SELECT import_id, metric, arm, sum_y2_t FROM import_counts ORDER BY 1, 2, 3")
    shown = rr.json("pilot", "show", "P-1")

    _migrate(db_url, "0007", down=True)
    tamper(
        db_url, "INSERT INTO observations (import_id, metric, arm, unit_id, value) VALUES (2, 0, 1, 'u3', 46)"
    )
    assert rr.json("db", "upgrade") == {"from": "0007", "to": SCHEMA_HEAD, "changed": True}
    migrated = rows(db_url, "SELECT import_id, metric, arm, sum_y2_t FROM import_counts ORDER BY 1, 2, 3")
    assert [row[:3] for row in migrated] == [row[:3] for row in kept]
    for before, after in zip(kept, migrated, strict=True):
        assert after[3] == (None if before[3] is None else pytest.approx(before[3], rel=1e-15))
    assert [row[3] for row in migrated if row[1] == 2] == [0.0, pytest.approx(4 / 7.5), 3.6]
    assert rows(db_url, "SELECT units_checked FROM data_imports ORDER BY id") == [(False,), (False,)]
    assert rr.json("pilot", "show", "P-1") == shown
    # the legacy repeat is simulated by inserting a row by SQL, which no import counted: verify names it
    verified = rr("audit", "verify", "--json")
    assert [m["problem"] for m in json.loads(verified.stdout)["state"]["mismatches"]] == [
        "outcomes file 'second.csv': wellbeing in arm pilot: 1 observation row is stored that the import never counted"
    ]
    assert [(f["severity"], f["subject"]) for f in findings(rr)] == [("error", "P-1")]


def test_qa_finds_units_counted_twice_by_data_imported_before_the_check(rr, db_url, tmp_path):
    at_second_stage(rr, tmp_path)
    assert second(rr, tmp_path, "unit_id,arm,metric,value\nu4,comparison,wellbeing,41\n").exit_code == 0
    assert findings(rr) == []
    legacy_double(db_url)
    result = rr("check", "--json")
    assert result.exit_code == 1  # an error finding
    found = [f for f in json.loads(result.stdout) if f["rule"] == "units-counted-twice"]
    assert found == [
        {
            "rule": "units-counted-twice",
            "severity": "error",
            "subject": "P-1",
            "message": "1 unit has a value for wellbeing in more than one stage "
            "(feasibility: first.csv; extended: second.csv); a unit is counted once per metric",
            "advice": "import the stage's file again without them: "
            "riskreg pilot data P-1 second.csv --stage extended --replace --new-units-only",
        }
    ]
    database = open_database(db_url)
    with database.read() as session:
        pilot = get_pilot(session, "P-1")
        assert double_counted(session, pilot) == {"wellbeing": 1}
        assert double_counted(session, pilot, [1]) == {}  # the first stage alone
    database.dispose()
    # the advice, followed
    assert (
        rr(
            "pilot", "data", "P-1", "second.csv", "--stage", "extended", "--replace", "--new-units-only"
        ).exit_code
        == 0
    )
    assert findings(rr) == []


def test_no_search_without_imports_made_before_the_check(rr, db_url, tmp_path):
    """Checked imports cannot hold a unit twice: double_counted does not read their observations."""
    at_second_stage(rr, tmp_path)
    assert second(rr, tmp_path, "unit_id,arm,metric,value\nu4,comparison,wellbeing,41\n").exit_code == 0
    tamper(
        db_url, "INSERT INTO observations (import_id, metric, arm, unit_id, value) VALUES (2, 0, 1, 'u3', 46)"
    )
    database = open_database(db_url)
    with database.read() as session:
        assert double_counted(session, get_pilot(session, "P-1")) == {}
    database.dispose()
