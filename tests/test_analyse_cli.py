"""`pilot analyse`, gates against the recommendation, and `plan size`, through the CLI."""

from __future__ import annotations

import pytest

from tests.pilot_fixtures import LONG, registered, write

PILOTS = "pilots"


def befriending(rr) -> None:
    rr("pilot", "register", f"{PILOTS}/hospital-befriending.toml")
    rr(
        "pilot",
        "data",
        "P-1",
        f"{PILOTS}/data/hospital-befriending-feasibility.csv",
        "--stage",
        "feasibility",
    )


@pytest.fixture
def rr_here(rr, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    return rr


ANALYSIS_KEYS = {"pilot", "stage", "recommendation", "reasons", "srm", "metrics", "costs"}
METRIC_KEYS = {
    "name",
    "kind",
    "role",
    "test",
    "better",
    "method",
    "n",
    "summary",
    "estimate",
    "ci",
    "p_value",
    "p_adjusted",
    "boundary",
    "verdict",
}


def test_analyse_json_has_the_design_shape(rr_here):
    befriending(rr_here)
    analysis = rr_here.json("pilot", "analyse", "P-1")
    assert set(analysis) >= ANALYSIS_KEYS
    assert (analysis["pilot"], analysis["stage"], analysis["recommendation"]) == (
        "P-1",
        "feasibility",
        "continue",
    )
    assert set(analysis["srm"]) >= {"p_value", "ok"}
    for metric in analysis["metrics"]:
        assert set(metric) >= METRIC_KEYS
        assert set(metric["n"]) == {"comparison", "pilot"}
    assert [m["boundary"] is not None for m in analysis["metrics"]] == [True, False, False, False]


def test_proceed_against_the_recommendation_needs_override(rr_here):
    befriending(rr_here)
    refused = rr_here("pilot", "gate", "P-1", "--decision", "proceed", "--reason", "Board says go")
    assert refused.exit_code == 1
    assert refused.stderr.startswith(
        "Error: P-1: the analysis recommends 'continue' (the primary wellbeing did not meet non-inferiority"
    )
    assert rr_here.json("pilot", "show", "P-1")["stage"] == "feasibility"
    gate = rr_here.json(
        "pilot",
        "gate",
        "P-1",
        "--decision",
        "proceed",
        "--reason",
        "Feasibility criteria green",
        "--override",
    )
    assert (gate["decision"], gate["recommendation"], gate["override"], gate["now_stage"]) == (
        "proceed",
        "continue",
        True,
        "extended",
    )
    assert gate["snapshot"]["analysis"]["recommendation"] == "continue"
    history = rr_here.json("audit", "verify")
    assert history["ok"] is True


def test_override_is_refused_when_not_needed(rr_here):
    befriending(rr_here)
    result = rr_here("pilot", "gate", "P-1", "--decision", "continue", "--reason", "x", "--override")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: --override is only for proceeding against the recommendation; the analysis recommends 'continue'\n",
    )


def test_continue_and_stop_need_no_override(rr, tmp_path):
    registered(rr, tmp_path)
    rr("pilot", "data", "P-1", write(tmp_path, "d.csv", LONG), "--stage", "feasibility")
    assert (
        rr.json("pilot", "gate", "P-1", "--decision", "continue", "--reason", "More data")["recommendation"]
        == "continue"
    )


def test_analyse_text_and_unknown_stage(rr_here):
    befriending(rr_here)
    out = rr_here("pilot", "analyse", "P-1").stdout
    assert "recommendation: CONTINUE" in out
    assert rr_here("pilot", "analyse", "P-1", "--stage", "scale").stderr.startswith(
        "Error: pilot hospital-befriending has no stage 'scale'"
    )


def test_plan_size_matches_power_t_test(runner):
    from riskreg.cli import cli

    # R: power.t.test(delta = 1, sd = 1, power = 0.9)  -> n = 22.02110 per group
    result = runner.invoke(
        cli, ["plan", "size", "--kind", "continuous", "--mde", "1", "--sd", "1", "--power", "0.9", "--json"]
    )
    import json

    size = json.loads(result.stdout)["size"]
    assert size["n_per_arm"][0] == pytest.approx(22.02110, abs=1e-4)
    assert size["n_required"] == [23, 23]


def test_plan_size_mde_at_n_follows_the_direction_and_the_margin(runner):
    import json

    from riskreg.cli import cli
    from riskreg.stats.power import mde_binary, mde_continuous

    def plan(*args: str) -> dict:  # type: ignore[type-arg]
        result = runner.invoke(cli, ["plan", "size", *args, "--n", "300", "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["mde_at_n"]

    # a reduction asked for: the smallest detectable reduction, not the increase
    down = plan("--kind", "binary", "--baseline", "0.18", "--mde", "-0.06")
    assert down["effect"] == pytest.approx(-mde_binary(300, 300, 0.82).effect, abs=1e-12)
    assert down["assumptions"]["direction"] == "decrease"
    # with a margin the MDE is that of the non-inferiority test the size and power use
    margin = plan("--kind", "continuous", "--sd", "10", "--mde", "0", "--margin", "3")
    assert margin["effect"] == pytest.approx(mde_continuous(300, 300, 10.0).effect - 3.0, abs=1e-12)
    assert margin["assumptions"]["test"] == "non-inferiority"


def test_plan_size_needs_an_effect_or_n(runner):
    from riskreg.cli import cli

    result = runner.invoke(cli, ["plan", "size", "--kind", "binary", "--baseline", "0.2"])
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: give --mde (the effect to detect) for a sample size, or --n for power and MDE\n",
    )
    result = runner.invoke(cli, ["plan", "size", "--kind", "continuous", "--mde", "2"])
    assert result.stderr == "Error: continuous: --sd (the outcome's standard deviation) is required\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--kind", "continuous", "--mde", "0", "--sd", "1"],
            "--mde must be non-zero to size a two-sided test",
        ),
        (["--kind", "count", "--baseline", "0.2", "--mde", "-1"], "--mde must be greater than 0, got -1.0"),
        (
            ["--kind", "binary", "--baseline", "1.5", "--n", "10"],
            "--baseline must be strictly between 0 and 1, got 1.5",
        ),
        (["--kind", "continuous", "--sd", "-1", "--n", "20"], "--sd must be greater than 0, got -1.0"),
    ],
)
def test_plan_size_errors_name_the_options_typed(runner, args, message):
    from riskreg.cli import cli

    result = runner.invoke(cli, ["plan", "size", *args])
    assert (result.exit_code, result.stderr) == (1, f"Error: {message}\n")


def test_a_stage_not_yet_started_cannot_be_analysed(rr, tmp_path):
    from tests.pilot_fixtures import LONG, registered, write

    registered(rr, tmp_path)
    rr("pilot", "data", "P-1", write(tmp_path, "d.csv", LONG), "--stage", "feasibility")
    result = rr("pilot", "analyse", "P-1", "--stage", "extended")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: stage 'extended' of P-1 has not started: the pilot is at 'feasibility' "
        "(a gate 'proceed' opens the next stage)\n",
    )


def test_a_gate_checks_its_own_input_before_analysing(rr, tmp_path, monkeypatch):
    import riskreg.gates
    from tests.pilot_fixtures import LONG, registered, write

    registered(rr, tmp_path)
    rr("pilot", "data", "P-1", write(tmp_path, "d.csv", LONG), "--stage", "feasibility")

    def not_needed(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("analysed before the gate's input was checked")

    monkeypatch.setattr(riskreg.gates, "analyse", not_needed)
    blank = rr("pilot", "gate", "P-1", "--decision", "continue", "--reason", " ")
    assert (blank.exit_code, blank.stderr) == (
        1,
        "Error: reason: a gate decision needs --reason (what the board or team weighed)\n",
    )
    adapt = rr("pilot", "gate", "P-1", "--decision", "adapt", "--reason", "change the script")
    assert adapt.exit_code == 1 and "'adapt' needs an amendment first" in adapt.stderr
