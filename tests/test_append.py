"""`pilot data --append`: a later extract adds new units to a stage's data, never a unit twice."""

from __future__ import annotations

from tests.pilot_fixtures import registered, write

HEADER = "unit_id,arm,metric,value,exposure,site\n"
NOVEMBER = HEADER + "u1,comparison,wellbeing,40,,north\nu2,pilot,wellbeing,45,,south\n"
DECEMBER = HEADER + "u3,comparison,wellbeing,42,,north\nu4,pilot,wellbeing,47.5,,south\n"


def stage_data(rr) -> dict:
    return rr.json("pilot", "show", "P-1")["data"]


def held(rr) -> tuple:
    shown = rr.json("pilot", "show", "P-1")
    return shown["data"], len(shown["imports"]), rr.json("audit", "verify")["events"]


def november(rr, tmp_path) -> None:
    registered(rr, tmp_path)
    imported = rr("pilot", "data", "P-1", write(tmp_path, "nov.csv", NOVEMBER), "--stage", "feasibility")
    assert imported.exit_code == 0, imported.output


def test_an_appended_extract_adds_its_units_and_the_analysis_counts_them_all(rr, tmp_path):
    november(rr, tmp_path)
    dec = write(tmp_path, "dec.csv", DECEMBER)
    summary = rr.json("pilot", "data", "P-1", dec, "--stage", "feasibility", "--append")
    assert (summary["observations"], summary["replaced"]) == (2, 0)
    assert rr.json("audit", "verify")["ok"] is True
    analysis = rr.json("pilot", "analyse", "P-1")
    wellbeing = next(m for m in analysis["metrics"] if m["name"] == "wellbeing")
    assert wellbeing["n"] == {"comparison": 2, "pilot": 2}
    assert wellbeing["summary"]["pilot"] == 46.25  # (45 + 47.5) / 2: both extracts


def test_without_append_a_second_file_for_the_same_metric_is_refused_with_advice(rr, tmp_path):
    november(rr, tmp_path)
    before = held(rr)
    result = rr("pilot", "data", "P-1", write(tmp_path, "dec.csv", DECEMBER), "--stage", "feasibility")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: stage 'feasibility' of P-1 already has data for wellbeing; nothing was imported "
        "(use --append to add new units to them, or --replace to swap them)\n",
    )
    assert held(rr) == before


def test_a_unit_the_stage_already_holds_is_refused_with_its_line(rr, tmp_path):
    november(rr, tmp_path)
    day = rr.json("pilot", "show", "P-1")["imports"][0]["at"][:10]
    before = held(rr)
    again = write(tmp_path, "dec.csv", DECEMBER + "u2,pilot,wellbeing,44,,south\n")
    result = rr("pilot", "data", "P-1", again, "--stage", "feasibility", "--append")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {again}: line 4: unit u2 already has a wellbeing value from stage 'feasibility' (nov.csv, "
        f"imported {day} by alice); a unit is counted once per metric: leave the row out, or import with "
        "--new-units-only; nothing was imported\n",
    )
    assert held(rr) == before
    # --new-units-only leaves the repeat out instead
    kept = rr.json("pilot", "data", "P-1", again, "--stage", "feasibility", "--append", "--new-units-only")
    assert kept["observations"] == 2
    assert rr.json("audit", "verify")["ok"] is True


def test_append_and_replace_together_is_refused(rr, tmp_path):
    november(rr, tmp_path)
    before = held(rr)
    dec = write(tmp_path, "dec.csv", DECEMBER)
    result = rr("pilot", "data", "P-1", dec, "--stage", "feasibility", "--append", "--replace")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: --append adds to the stage's data and --replace swaps it: choose one\n",
    )
    assert held(rr) == before


def test_a_first_file_may_be_appended_and_a_dry_run_writes_nothing(rr, tmp_path):
    registered(rr, tmp_path)
    nov = write(tmp_path, "nov.csv", NOVEMBER)
    dry = rr.json("pilot", "data", "P-1", nov, "--stage", "feasibility", "--append", "--dry-run")
    assert dry["dry_run"] is True and rr.json("pilot", "show", "P-1")["imports"] == []
    assert rr.json("pilot", "data", "P-1", nov, "--stage", "feasibility", "--append")["observations"] == 2
