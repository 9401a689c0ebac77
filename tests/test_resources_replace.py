"""`pilot resources --replace EARLIER`: a resources file that was wrong is corrected, audited."""

from __future__ import annotations

from tests.conftest import tamper
from tests.pilot_fixtures import registered, write

WRONG = "stage,side,kind,hours,amount\nfeasibility,public,staff_time,10,3000\nfeasibility,citizen,volunteer_time,20,\n"
RIGHT = "stage,side,kind,hours,amount\nfeasibility,public,staff_time,10,300\nfeasibility,citizen,volunteer_time,20,\n"


def held(rr) -> tuple:
    return rr.json("pilot", "show", "P-1")["imports"], rr.json("audit", "verify")["events"]


def wrong_then_right(rr, tmp_path) -> dict:
    registered(rr, tmp_path)
    assert rr("pilot", "resources", "P-1", write(tmp_path, "costs.csv", WRONG)).exit_code == 0
    right = write(tmp_path, "costs-corrected.csv", RIGHT)
    return rr.json("pilot", "resources", "P-1", right, "--replace", "costs.csv")


def test_a_replaced_file_s_lines_give_way_to_the_new_ones_and_verify_holds(rr, tmp_path):
    summary = wrong_then_right(rr, tmp_path)
    assert (summary["rows"], summary["replaced"], summary["replaced_rows"]) == (
        2,
        "costs.csv",
        2,
    )
    assert summary["totals"]["total"]["public"]["cash"] == 300.0  # not 3300
    assert rr.json("audit", "verify")["ok"] is True
    shown = rr("pilot", "resources", "P-1", write(tmp_path, "more.csv", RIGHT.replace("300", "50")))
    assert shown.exit_code == 0


def test_the_replaced_file_cannot_be_edited_back_unnoticed(rr, db_url, tmp_path):
    wrong_then_right(rr, tmp_path)
    tamper(db_url, "UPDATE data_imports SET replaced = 0 WHERE kind = 'resources' AND id = 2")
    result = rr("audit", "verify")
    assert result.exit_code == 1
    assert "replaced lines 0 in the register, but 2 in event" in result.stdout


def test_replacing_a_file_the_pilot_does_not_hold_is_refused_naming_its_files(rr, tmp_path):
    registered(rr, tmp_path)
    assert rr("pilot", "resources", "P-1", write(tmp_path, "costs.csv", WRONG)).exit_code == 0
    before = held(rr)
    right = write(tmp_path, "costs-corrected.csv", RIGHT)
    result = rr("pilot", "resources", "P-1", right, "--replace", "budget.csv")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: P-1 has no resources file 'budget.csv' to replace; nothing was imported (its files: "
        "costs.csv (import 1))\n",
    )
    assert held(rr) == before


def test_a_replaced_file_cannot_be_replaced_again(rr, tmp_path):
    wrong_then_right(rr, tmp_path)
    before = held(rr)
    third = write(tmp_path, "third.csv", RIGHT.replace("300", "310"))
    result = rr("pilot", "resources", "P-1", third, "--replace", "costs.csv")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: P-1 has no resources file 'costs.csv' to replace")
    assert held(rr) == before
    # the correction itself can be replaced, by its import number
    assert rr.json("pilot", "resources", "P-1", third, "--replace", "2")["replaced_rows"] == 2
    assert rr.json("audit", "verify")["ok"] is True


def test_after_a_replacement_the_replaced_content_may_come_back(rr, tmp_path):
    """A file whose lines a --replace removed is no longer held: its content is not refused as a repeat."""
    wrong_then_right(rr, tmp_path)
    again = write(tmp_path, "costs-again.csv", WRONG)
    back = rr.json("pilot", "resources", "P-1", again, "--replace", "costs-corrected.csv")
    assert back["totals"]["total"]["public"]["cash"] == 3000.0
    assert rr.json("audit", "verify")["ok"] is True
    # while held, the same content is still refused
    refused = rr("pilot", "resources", "P-1", write(tmp_path, "costs-third.csv", WRONG))
    assert refused.exit_code == 1 and "already has these resources" in refused.stderr


def test_a_resources_file_without_hours_and_amount_is_refused_naming_them(rr, tmp_path):
    registered(rr, tmp_path)
    before = held(rr)
    result = rr(
        "pilot", "resources", "P-1", write(tmp_path, "costs.csv", "stage,side,kind\nfeasibility,public,x\n")
    )
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {tmp_path / 'costs.csv'}: line 1: missing columns hours, amount\n",
    )
    assert held(rr) == before


def test_a_resources_map_to_an_unknown_name_names_the_flag(rr, tmp_path):
    registered(rr, tmp_path)
    before = held(rr)
    result = rr("pilot", "resources", "P-1", write(tmp_path, "costs.csv", RIGHT), "--map", "Cost=price")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: --map Cost=price: 'price' is neither a column nor an arm (columns: stage, side, kind, "
        "hours, amount, arm, note; arms: comparison, pilot)\n",
    )
    assert held(rr) == before
