"""Pilots through the CLI: register, amend, link, show, gate — on both backends."""

from __future__ import annotations

from tests.conftest import intact
from tests.pilot_fixtures import LONG, PROTOCOL, registered, write
from tests.risk_fixtures import risk_add

PILOT_KEYS = {"id", "key", "title", "stage", "status", "protocol_sha256", "risks"}


def test_register_freezes_text_and_hash(rr, tmp_path):
    import hashlib

    path = write(tmp_path, "p.toml", PROTOCOL)
    pilot = rr.json("pilot", "register", path)
    assert set(pilot) >= PILOT_KEYS
    assert (pilot["id"], pilot["key"], pilot["stage"], pilot["status"]) == (
        "P-1",
        "befriending",
        "feasibility",
        "active",
    )
    assert pilot["protocol_sha256"] == hashlib.sha256(PROTOCOL.encode()).hexdigest()


def test_invalid_protocol_names_file_and_key_path(rr, tmp_path):
    path = write(tmp_path, "p.toml", PROTOCOL.replace('kind = "binary"', 'kind = "binery"'))
    result = rr("pilot", "register", path)
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {path}: metrics[1].kind: expected continuous, binary or count, got 'binery'\n",
    )
    assert rr.json("pilot", "list") == []


def test_linked_risks_must_exist(rr, tmp_path):
    path = write(
        tmp_path,
        "p.toml",
        PROTOCOL.replace('hypothesis = "No worse for wellbeing."', 'hypothesis = "x"\nrisks = ["R-9"]'),
    )
    result = rr("pilot", "register", path)
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {path}: pilot.risks[0]: no risk R-9 in the register\n",
    )


def test_changed_protocol_needs_amend_and_reason(rr, tmp_path):
    path = registered(rr, tmp_path)
    changed = write(tmp_path, "befriending.toml", PROTOCOL.replace("planned_n = 8", "planned_n = 10"))
    result = rr("pilot", "register", changed)
    assert result.exit_code == 1
    assert "differs from the protocol registered as P-1; a registered protocol is frozen" in result.stderr
    assert (
        rr("pilot", "register", changed, "--amend").stderr
        == "Error: reason: an amendment needs --reason (say what changed and why)\n"
    )
    amended = rr.json("pilot", "register", path, "--amend", "--reason", "Bigger extended stage")
    assert (amended["amendment"], amended["amended_after_data"], amended["amendments"]) == (1, False, 1)


def test_amendment_after_data_is_marked(rr, tmp_path):
    registered(rr, tmp_path)
    rr("pilot", "data", "P-1", write(tmp_path, "d.csv", LONG), "--stage", "feasibility")
    write(tmp_path, "befriending.toml", PROTOCOL.replace("planned_n = 8", "planned_n = 10"))
    amended = rr.json(
        "pilot", "register", str(tmp_path / "befriending.toml"), "--amend", "--reason", "More units"
    )
    assert amended["amended_after_data"] is True
    shown = rr.json("pilot", "show", "P-1")
    assert [v["after_data"] for v in shown["protocol_versions"]] == [False, True]


def test_amendment_cannot_drop_a_metric_with_data(rr, tmp_path):
    registered(rr, tmp_path)
    rr("pilot", "data", "P-1", write(tmp_path, "d.csv", LONG), "--stage", "feasibility")
    without = PROTOCOL.replace(
        '[[metrics]]\nname = "readmitted"\nkind = "binary"\nrole = "secondary"\nbetter = "lower"\n', ""
    )
    path = write(tmp_path, "befriending.toml", without)
    result = rr("pilot", "register", path, "--amend", "--reason", "drop it")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: amendment of P-1: metric 'readmitted' has data and cannot be removed\n",
    )


def test_same_protocol_twice_is_refused(rr, tmp_path):
    path = registered(rr, tmp_path)
    result = rr("pilot", "register", path)
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {path}: already registered as P-1 with exactly this protocol; nothing to do\n",
    )


def test_link_risks_and_show(rr, tmp_path):
    rr(*risk_add("Volunteer burnout", mode="delivery", likelihood="3", impact="3"))
    registered(rr, tmp_path)
    assert rr.json("pilot", "link", "P-1", "R-1")["risks"] == ["R-1"]
    assert rr("pilot", "link", "P-1", "R-1").stderr == "Error: P-1: R-1 already linked; nothing to do\n"
    assert rr("pilot", "link", "P-1", "R-5").stderr == "Error: no risk R-5\n"
    assert rr.json("pilot", "show", "befriending")["risks"] == ["R-1"]


def test_gates_move_through_stages_and_record_counts(rr, tmp_path):
    registered(rr, tmp_path)
    rr("pilot", "data", "P-1", write(tmp_path, "d.csv", LONG), "--stage", "feasibility")
    gate = rr.json(
        "pilot", "gate", "P-1", "--decision", "continue", "--reason", "More units first", actor="board-chair"
    )
    assert (gate["decision"], gate["stage"], gate["now_stage"], gate["actor"]) == (
        "continue",
        "feasibility",
        "feasibility",
        "board-chair",
    )
    assert gate["snapshot"]["counts"]["wellbeing"] == {
        "comparison": {"n": 1, "missing": 0},
        "pilot": {"n": 1, "missing": 1},
    }
    assert (
        rr.json("pilot", "gate", "P-1", "--decision", "proceed", "--reason", "Go", "--override")["now_stage"]
        == "extended"
    )
    assert (
        rr.json("pilot", "gate", "P-1", "--decision", "proceed", "--reason", "Done", "--override")["status"]
        == "completed"
    )
    result = rr("pilot", "gate", "P-1", "--decision", "continue", "--reason", "again")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: P-1 is completed; no more gate decisions can be recorded\n",
    )
    history = rr.json("pilot", "show", "P-1")["decisions"]
    assert [(d["stage"], d["decision"]) for d in history] == [
        ("feasibility", "continue"),
        ("feasibility", "proceed"),
        ("extended", "proceed"),
    ]


def test_stop_ends_the_pilot_and_refuses_data(rr, tmp_path):
    registered(rr, tmp_path)
    # no data yet (the analysis says continue): stopping anyway is an override
    assert rr("pilot", "gate", "P-1", "--decision", "stop", "--reason", "Safeguarding concern").exit_code == 1
    rr("pilot", "gate", "P-1", "--decision", "stop", "--reason", "Safeguarding concern", "--override")
    result = rr("pilot", "data", "P-1", write(tmp_path, "d.csv", LONG), "--stage", "feasibility")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: P-1 was stopped at a gate; it accepts no more data\n",
    )


def test_adapt_requires_an_amendment(rr, tmp_path):
    path = registered(rr, tmp_path)
    result = rr("pilot", "gate", "P-1", "--decision", "adapt", "--reason", "Change the design")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: P-1: 'adapt' needs an amendment first")
    write(tmp_path, "befriending.toml", PROTOCOL.replace("planned_n = 8", "planned_n = 12"))
    rr("pilot", "register", path, "--amend", "--reason", "Longer extended stage")
    # no data yet, so the analysis says continue: adapting now is against it
    adapted = rr.json("pilot", "gate", "P-1", "--decision", "adapt", "--reason", "Adapted", "--override")
    assert (adapted["status"], adapted["now_stage"]) == ("active", "extended")  # adapt opens the next stage


def test_every_pilot_change_is_in_the_audit_chain(rr, tmp_path):
    registered(rr, tmp_path)
    rr("pilot", "data", "P-1", write(tmp_path, "d.csv", LONG), "--stage", "feasibility")
    rr("pilot", "gate", "P-1", "--decision", "proceed", "--reason", "ok", "--override")
    assert rr.json("audit", "verify") == intact(3, pilots=1, data_files=1, decisions=1)


def test_unknown_pilot(rr):
    assert rr("pilot", "show", "P-4").stderr == "Error: no pilot P-4\n"
    assert rr("pilot", "show", "nope").stderr == "Error: no pilot with key 'nope'\n"


def test_a_key_that_reads_like_a_pilot_number_still_finds_its_pilot(rr, tmp_path):
    from tests.pilot_fixtures import PROTOCOL

    registered(rr, tmp_path, PROTOCOL.replace('key = "befriending"', 'key = "p-2024"'))
    assert rr.json("pilot", "show", "p-2024")["id"] == "P-1"
    assert rr.json("pilot", "show", "P-1")["key"] == "p-2024"
    result = rr("pilot", "show", "p-7")
    assert (result.exit_code, result.stderr) == (1, "Error: no pilot P-7\n")


def test_show_lists_every_data_file_with_who_brought_it(rr, tmp_path):
    """A reviewer sees where the counts came from: each file, its stage, rows, replacements and actor."""
    registered(rr, tmp_path)
    rr("pilot", "data", "P-1", write(tmp_path, "long.csv", LONG), "--stage", "feasibility", actor="ana")
    smaller = write(tmp_path, "again.csv", "unit_id,arm,metric,value\nu1,comparison,wellbeing,39\n")
    rr("pilot", "data", "P-1", smaller, "--stage", "feasibility", "--replace", actor="ben")
    costs = "stage,side,kind,hours,amount\nfeasibility,citizen,volunteer_time,20,\n"
    rr("pilot", "resources", "P-1", write(tmp_path, "costs.csv", costs), actor="ana")
    shown = rr.json("pilot", "show", "P-1")["imports"]
    assert [
        (i["kind"], i["stage"], i["file"], i["rows"], i["missing"], i["replaced"], i["actor"]) for i in shown
    ] == [
        ("outcomes", "feasibility", "long.csv", 9, 2, 0, "ana"),
        ("outcomes", "feasibility", "again.csv", 1, 0, 3, "ben"),
        ("resources", "feasibility", "costs.csv", 1, 0, 0, "ana"),
    ]
    assert [i["sha256"] is None for i in shown] == [True, True, False]  # kept for resources only
    text = rr("pilot", "show", "P-1").stdout
    files = text[text.index("data files:") :].splitlines()
    assert files[1].split() == ["AT", "BY", "KIND", "STAGE", "ROWS", "MISSING", "REPLACED", "FILE"]
    assert files[4].split()[1:] == ["ben", "outcomes", "feasibility", "1", "0", "3", "again.csv"]
