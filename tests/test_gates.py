"""The gate rule (DESIGN §5) through the CLI, on SQLite and PostgreSQL: recommendations, looks and overrides."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.analysis_fixtures import arm_rows, load, metric, protocol_text, register, stage

NI = metric("wellbeing", "continuous", "primary", test="non-inferiority", margin=3.0)
SUPERIORITY = metric("wellbeing", "continuous", "primary", test="superiority")


def exact(seed: int, n: int, mean: float, sd: float = 8.0) -> list[float]:
    """Return n values with exactly this sample mean and standard deviation."""
    x = np.random.default_rng(seed).normal(size=n)
    return list((x - x.mean()) / x.std(ddof=1) * sd + mean)


def rows(n: int, comparison_mean: float, pilot_mean: float, prefix: str = "", missing: int = 0):  # type: ignore[no-untyped-def]
    """Return wellbeing rows for n units per arm; the last ``missing`` pilot units have no outcome."""
    pilot = exact(2, n, pilot_mean) if n > 1 else [pilot_mean]
    pilot = [*pilot[: n - missing], *([None] * missing)]
    comparison = exact(1, n, comparison_mean)
    return arm_rows("wellbeing", "comparison", comparison, prefix) + arm_rows(
        "wellbeing", "pilot", pilot, prefix
    )


def analysis(rr) -> dict:  # type: ignore[no-untyped-def]
    result = rr("pilot", "analyse", "P-1", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def gate(rr, decision: str, *extra: str):  # type: ignore[no-untyped-def]
    return rr("pilot", "gate", "P-1", "--decision", decision, "--reason", "board", *extra)


def two_stages(rr, tmp_path, primary=NI, **criteria) -> None:  # type: ignore[no-untyped-def]
    register(rr, tmp_path, protocol_text([primary], [stage("first", 30, **criteria), stage("second", 60)]))


def test_an_ordinary_interim_stage_proceeds_without_an_efficacy_crossing(rr, tmp_path):
    two_stages(rr, tmp_path, retention=(0.8, 0.6))
    load(rr, tmp_path, rows(30, 50.0, 50.0), "first")
    a = analysis(rr)
    assert a["recommendation"] == "proceed"
    assert a["metrics"][0]["verdict"] == "inconclusive"  # not shown yet at the strict first boundary
    assert a["reasons"][0] == "the stage reached its planned n: 30 of 30 units in the smaller arm"
    assert a["futility"]["futile"] is False
    assert "if the rest of the pilot went as planned, is" in a["reasons"][-1]
    assert gate(rr, "proceed").exit_code == 0  # no --override needed


def test_continue_while_the_planned_n_is_not_in(rr, tmp_path):
    two_stages(rr, tmp_path)
    load(rr, tmp_path, rows(20, 50.0, 50.0), "first")
    a = analysis(rr)
    assert a["recommendation"] == "continue"
    assert a["reasons"] == ["the stage's planned n is not in yet: 20 of 30 units in the smaller arm"]


def test_an_amber_criterion_recommends_adapt_which_needs_an_amendment_and_opens_the_next_stage(rr, tmp_path):
    two_stages(rr, tmp_path, retention=(0.95, 0.6))
    load(rr, tmp_path, rows(30, 50.0, 50.0, missing=4), "first")  # retention 56/60 = 0.933: amber
    a = analysis(rr)
    assert a["recommendation"] == "adapt"
    assert a["reasons"][0].startswith(
        "progression criterion retention is amber: 0.933 (green at 0.95 or more"
    )
    refused = gate(rr, "adapt")
    assert refused.exit_code == 1
    assert "'adapt' needs an amendment first" in refused.output
    amended = protocol_text([NI], [stage("first", 30, retention=(0.95, 0.6)), stage("second", 70)])
    (tmp_path / "protocol.toml").write_text(amended, encoding="utf-8")
    assert (
        rr(
            "pilot", "register", str(tmp_path / "protocol.toml"), "--amend", "--reason", "retention plan"
        ).exit_code
        == 0
    )
    result = gate(rr, "adapt", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["now_stage"] == "second"


def test_a_futile_primary_stops_and_going_on_needs_an_override_that_check_calls_an_error(rr, tmp_path):
    two_stages(rr, tmp_path, primary=SUPERIORITY)
    load(rr, tmp_path, rows(30, 50.0, 45.0), "first")  # the pilot arm is 5 points worse
    a = analysis(rr)
    assert a["recommendation"] == "stop"
    assert a["futility"]["futile"] is True
    assert a["reasons"] == [a["futility"]["text"]]
    assert a["reasons"][0].startswith(
        "the chance of showing superiority of wellbeing, if the rest of the pilot went"
    )
    refused = gate(rr, "continue")
    assert refused.exit_code == 1
    assert refused.output.startswith("Error: P-1: the analysis recommends 'stop' (the chance of showing")
    assert "to record 'continue' anyway add --override" in refused.output
    assert json.loads(rr("pilot", "show", "P-1", "--json").output)["decisions"] == []  # nothing written
    assert gate(rr, "continue", "--override").exit_code == 0
    check = rr("check", "--json")
    assert check.exit_code == 1
    (finding,) = [f for f in json.loads(check.output) if f["rule"] == "gate-override"]
    assert finding["severity"] == "error"
    assert finding["message"].startswith("'continue' at first by ")


def test_an_override_of_a_decision_that_matches_the_recommendation_is_refused(rr, tmp_path):
    two_stages(rr, tmp_path)
    load(rr, tmp_path, rows(30, 50.0, 50.0), "first")
    result = gate(rr, "proceed", "--override")
    assert result.exit_code == 1
    assert result.output == (
        "Error: --override is only for a decision against the recommendation; the analysis recommends 'proceed'\n"
    )


def test_the_final_look_stops_when_not_shown_and_never_continues(rr, tmp_path):
    two_stages(rr, tmp_path, primary=SUPERIORITY)
    load(rr, tmp_path, rows(30, 50.0, 50.5), "first")
    assert analysis(rr)["recommendation"] == "proceed"
    assert gate(rr, "proceed").exit_code == 0
    load(rr, tmp_path, rows(30, 50.0, 50.5, prefix="s"), "second")
    a = analysis(rr)
    assert a["boundaries"]["final"] is True
    assert a["recommendation"] == "stop"
    assert a["reasons"][0].startswith(
        "not shown: the primary wellbeing did not meet its superiority test at the final look"
    )
    assert gate(rr, "continue").exit_code == 1


def test_the_final_look_spends_the_alpha_left_when_it_overruns_and_a_continue_is_a_new_look(rr, tmp_path):
    two_stages(rr, tmp_path)
    load(rr, tmp_path, rows(30, 50.0, 50.0), "first")
    assert gate(rr, "proceed").exit_code == 0
    load(rr, tmp_path, rows(40, 50.0, 50.0, prefix="s"), "second")  # 70 per arm against 60 planned
    final = analysis(rr)["boundaries"]
    assert final["look"] == 2 and final["final"] is True
    assert [round(f, 6) for f in final["fractions"]] == [0.5, round(70 / 60, 6)]
    # the two looks spend exactly α between them (sfLDOF spent 0.00305 at t = 0.5: gsDesign)
    assert final["alpha_spent"][-1] == pytest.approx(0.05, abs=1e-9)
    assert final["alpha_spent"][0] == pytest.approx(0.0030506, abs=1e-6)


def test_an_analysis_after_a_continue_is_the_next_look(rr, tmp_path):
    two_stages(rr, tmp_path)
    load(rr, tmp_path, rows(20, 50.0, 50.0), "first")
    first = analysis(rr)["boundaries"]
    assert first["look"] == 1
    assert gate(rr, "continue").exit_code == 0
    load(rr, tmp_path, rows(30, 50.0, 50.0), "first", "--replace")  # the stage's cumulative file
    second = analysis(rr)["boundaries"]
    assert second["look"] == 2
    assert [look["decision"] for look in second["looks"]] == ["continue", None]
    assert second["z"][0] == first["boundary"]  # the earlier look keeps its boundary
    assert second["boundary"] < first["boundary"]


def test_an_early_crossing_is_early_evidence_with_a_median_unbiased_estimate(rr, tmp_path):
    two_stages(rr, tmp_path, primary=SUPERIORITY)
    load(rr, tmp_path, rows(30, 50.0, 60.0), "first")  # z ≈ 4.8, beyond the first boundary
    a = analysis(rr)
    assert a["recommendation"] == "proceed"
    assert a["notes"][0].startswith("early evidence of effect: wellbeing is superior")
    stagewise = a["metrics"][0]["stagewise"]
    assert stagewise["naive"]["estimate"] == a["metrics"][0]["estimate"]
    # a stop at the first look: the stage-wise ordering changes nothing (Jennison & Turnbull 2000, §8.4)
    assert stagewise["median_unbiased"] == pytest.approx(a["metrics"][0]["estimate"], rel=1e-6)


def test_register_warns_when_the_planned_final_n_gives_less_than_the_stated_power(rr, tmp_path):
    underpowered = metric("wellbeing", "continuous", "primary", test="non-inferiority", margin=3.0, sd=8.0)
    path = tmp_path / "protocol.toml"
    path.write_text(
        protocol_text([underpowered], [stage("first", 30), stage("second", 60)]), encoding="utf-8"
    )
    result = rr("pilot", "register", str(path), "--json")
    assert result.exit_code == 0, result.output
    (warning,) = json.loads(result.output)["warnings"]
    # 60 per arm, margin 3, sd 8, two looks: about 53 % power (R: power.t.test(60, 3, 8, 0.025, type="two.sample",
    # alternative="one.sided") gives 0.537 for the fixed design)
    assert warning.startswith("the planned final n of 60 per arm gives 5")
    assert "(below the stated 80%)" in warning


def test_a_past_gate_decision_keeps_the_analysis_it_rested_on(rr, tmp_path):
    two_stages(rr, tmp_path)
    load(rr, tmp_path, rows(30, 50.0, 50.0), "first")
    decided = rr.json("pilot", "gate", "P-1", "--decision", "proceed", "--reason", "board")
    load(rr, tmp_path, rows(30, 50.0, 52.0, prefix="s"), "second")
    assert analysis(rr)["stage"] == "second"  # later analyses change nothing stored
    (kept,) = rr.json("pilot", "show", "P-1")["decisions"]
    assert json.dumps(kept["snapshot"], sort_keys=True) == json.dumps(decided["snapshot"], sort_keys=True)
    assert kept["snapshot"]["analysis"]["recommendation"] == "proceed"


def test_counts_near_the_import_limit_analyse_in_constant_memory(rr, tmp_path):
    # 9e14 events a unit: an exact test that builds an array per event would need petabytes
    safety = metric("incidents", "count", "safety", better="lower")
    register(rr, tmp_path, protocol_text([NI, safety], [stage("only", 10)]))
    data = rows(10, 50.0, 50.0)
    data += arm_rows("incidents", "comparison", [9e14] * 10, exposure=1.0)
    data += arm_rows("incidents", "pilot", [8.9e14] * 10, exposure=1.0)
    load(rr, tmp_path, data, "only")
    incidents = analysis(rr)["metrics"][1]
    assert incidents["estimate"] == pytest.approx(8.9 / 9.0)
    assert incidents["verdict"] == "superior"  # 1 % fewer of 9e15 events is no chance
    assert rr("report", "pilot", "P-1", "-o", str(tmp_path / "p.html")).exit_code == 0
