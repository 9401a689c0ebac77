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
        "proceed",
    )
    assert set(analysis["srm"]) >= {"p_value", "ok"}
    for metric in analysis["metrics"]:
        assert set(metric) >= METRIC_KEYS
        assert set(metric["n"]) == {"comparison", "pilot"}
    assert [m["boundary"] is not None for m in analysis["metrics"]] == [True, False, False, False]


def test_a_decision_against_the_recommendation_needs_override(rr_here):
    befriending(rr_here)  # feasibility recommends proceed: planned n in, criteria green, no harm
    refused = rr_here("pilot", "gate", "P-1", "--decision", "continue", "--reason", "Board wants more")
    assert refused.exit_code == 1
    assert refused.stderr.startswith(
        "Error: P-1: the analysis recommends 'proceed' (the stage reached its planned n: 62 of 60 units"
    )
    assert rr_here.json("pilot", "show", "P-1")["decisions"] == []
    gate = rr_here.json(
        "pilot", "gate", "P-1", "--decision", "continue", "--reason", "Board wants more", "--override"
    )
    assert (gate["decision"], gate["recommendation"], gate["override"], gate["now_stage"]) == (
        "continue",
        "proceed",
        True,
        "feasibility",
    )
    assert gate["snapshot"]["analysis"]["recommendation"] == "proceed"
    history = rr_here.json("audit", "verify")
    assert history["ok"] is True


def test_override_is_refused_when_not_needed(rr_here):
    befriending(rr_here)
    result = rr_here("pilot", "gate", "P-1", "--decision", "proceed", "--reason", "x", "--override")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: --override is only for a decision against the recommendation; the analysis recommends 'proceed'\n",
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
    assert "recommendation: PROCEED" in out
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


# --- plan size: non-inferiority for every kind, group-sequential looks ------------------------


def plan_json(runner, *args: str) -> dict:  # type: ignore[type-arg]
    import json

    from riskreg.cli import cli

    result = runner.invoke(cli, ["plan", "size", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_plan_size_looks_inflate_the_fixed_size(runner):
    import math

    from riskreg.stats.power import inflation_factor

    plan = plan_json(
        runner, "--kind", "continuous", "--mde", "1", "--sd", "1", "--power", "0.9", "--looks", "3"
    )
    # the fixed design keeps its keys: R power.t.test(delta = 1, sd = 1, power = 0.9) -> n = 22.02110
    assert plan["size"]["n_per_arm"][0] == pytest.approx(22.02110, abs=1e-4)
    assert plan["size"]["n_required"] == plan["n_fixed"] == [23, 23]
    factor = inflation_factor([1 / 3, 2 / 3, 1.0], 0.05, 0.9)
    assert plan["inflation_factor"] == pytest.approx(factor, rel=1e-12) and 1.0 < factor < 1.02
    assert plan["n"] == [math.ceil(plan["size"]["n_per_arm"][0] * factor)] * 2
    # gsDesign::gsDesign(k = 3, test.type = 2, sfu = sfLDOF)$upper$bound -> 3.7103 2.5114 1.9930
    assert plan["looks"]["z"] == pytest.approx([3.7103, 2.5114, 1.9930], abs=1e-4)
    assert plan["looks"]["count"] == 3 and plan["test"] == "superiority"
    same = plan_json(
        runner,
        "--kind",
        "continuous",
        "--mde",
        "1",
        "--sd",
        "1",
        "--power",
        "0.9",
        "--fractions",
        "0.333333333333,0.666666666667,1",
    )
    assert same["n"] == plan["n"]


def test_plan_size_one_look_is_the_fixed_design(runner):
    plan = plan_json(
        runner, "--kind", "binary", "--baseline", "0.5", "--mde", "0.25", "--power", "0.9", "--n", "50"
    )
    # R: power.prop.test(p1 = .50, p2 = .75, power = .90)  -> n = 76.7 (?power.prop.test)
    assert plan["n"] == plan["n_fixed"] == [77, 77] and plan["inflation_factor"] == 1.0
    # R: power.prop.test(n = 50, p1 = .50, p2 = .75)  -> power = 0.7401659 (one look: the same)
    assert plan["power_at_n"]["power"] == pytest.approx(0.7401659, abs=1e-7)
    assert plan["power_at_n_sequential"] == plan["power_at_n"]["power"]


def test_plan_size_binary_non_inferiority_matches_chow_shao_wang(runner):
    # Chow, Shao & Wang 2008, 2nd ed., §4.2 (p. 90): 0.65 (reference) vs 0.85 (test), margin 0.10,
    # one-sided alpha 0.05 (two-sided 0.10 here), power 80 % -> 25 per group
    plan = plan_json(
        runner, "--kind", "binary", "--baseline", "0.65", "--mde", "0.2", "--margin", "0.1", "--alpha", "0.1"
    )
    assert plan["test"] == "non-inferiority" and plan["n_fixed"] == [25, 25]
    assert plan["size"]["assumptions"]["better"] == "higher"


def test_plan_size_non_inferiority_without_mde_assumes_no_difference(runner):
    from riskreg.stats.power import size_continuous, size_count

    plan = plan_json(
        runner, "--kind", "continuous", "--sd", "8", "--margin", "3", "--fractions", "0.3,1", "--n", "200"
    )
    assert plan["size"]["n_per_arm"][0] == pytest.approx(
        size_continuous(0.0, 8.0, margin=3.0).n_per_arm[0], rel=1e-12
    )
    assert plan["size"]["effect"] == 0.0 and plan["power_at_n_sequential"] > 0.95
    count = plan_json(
        runner, "--kind", "count", "--baseline", "0.02", "--exposure", "8", "--test", "non-inferiority",
        "--margin", "1.5", "--better", "lower", "--n", "300",
    )  # fmt: skip
    expected = size_count(0.02, 1.0, 8.0, margin=1.5, better="lower")
    assert count["size"]["n_per_arm"][0] == pytest.approx(expected.n_per_arm[0], rel=1e-12)
    assert count["size"]["effect"] == 1.0 and count["mde_at_n"]["assumptions"]["better"] == "lower"


def test_plan_size_non_inferiority_text(runner):
    from riskreg.cli import cli

    args = [
        "plan",
        "size",
        "--kind",
        "binary",
        "--baseline",
        "0.72",
        "--margin",
        "0.1",
        "--looks",
        "2",
        "--n",
        "300",
    ]
    out = runner.invoke(cli, args).stdout
    assert "to show non-inferiority (margin 0.1, higher is better) with power 80%" in out
    assert "one-sided alpha 0.025 (two-sided 0.05)" in out
    assert "with 2 looks at information 0.5, 1: 318 comparison + 318 pilot (inflation factor 1.0037)" in out
    assert "true difference at which non-inferiority is shown with 300 units per arm" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "binary", "--baseline", "0.7", "--test", "non-inferiority"], "non-inferiority: --margin is required"),
        (["--kind", "continuous", "--sd", "1", "--mde", "1", "--test", "superiority", "--margin", "1"],
         "--margin applies only to --test non-inferiority"),
        (["--kind", "count", "--baseline", "0.1", "--margin", "0.5"], "--margin must be 0 (two-sided test) or a rate ratio greater than 1"),
        (["--kind", "continuous", "--sd", "1", "--mde", "1", "--looks", "2", "--fractions", "0.2,0.5,1"],
         "--looks 2 does not match the 3 --fractions 0.2,0.5,1"),
        (["--kind", "continuous", "--sd", "1", "--mde", "1", "--fractions", "0.5,0.9"],
         "--fractions must increase from above 0 to exactly 1, got 0.5,0.9"),
        (["--kind", "binary", "--baseline", "0.3", "--mde", "-0.15", "--margin", "0.1"],
         "the difference p_pilot - p_comparison, signed as a gain, plus the margin must be positive"),
    ],
)  # fmt: skip
def test_plan_size_non_inferiority_and_looks_errors(runner, args, message):
    from riskreg.cli import cli

    result = runner.invoke(cli, ["plan", "size", *args])
    assert result.exit_code == 1 and result.stderr.startswith(f"Error: {message}"), result.output
    assert len(result.stderr.splitlines()) == 1


# --- a protocol's planned power (for `pilot register`) ------------------------------------------


def _protocol(metrics: list, stages: list, **design):  # type: ignore[no-untyped-def,type-arg]
    from riskreg.protocol import parse_protocol
    from tests.analysis_fixtures import protocol_text

    return parse_protocol(protocol_text(metrics, stages, **design).encode(), "test.toml")


def test_protocol_power_of_the_example_pilots():
    from riskreg.planning import power_warning, protocol_power
    from riskreg.protocol import load_protocol
    from riskreg.stats.power import power_continuous, sequential_power
    from tests.analysis_fixtures import EXAMPLES

    befriending = load_protocol(EXAMPLES / "hospital-befriending.toml")
    result = protocol_power(befriending)
    assert result is not None and result["metric"] == "wellbeing" and result["n_per_arm"] == [200, 200]
    assert result["fractions"] == [0.3, 1.0] and result["target"] == 0.8
    # non-inferiority with margin 3, sd 8 and no true difference: a one-sided t-test at 0.025 of an
    # effect of 3, i.e. R power.t.test(n = 200, delta = 3, sd = 8, sig.level = 0.025, alternative = "one.sided")
    fixed = power_continuous(200, 200, 0.0, 8.0, 0.05, margin=3.0).power
    assert result["power_fixed"] == pytest.approx(fixed, abs=1e-12) and fixed == pytest.approx(
        0.9625, abs=1e-4
    )
    assert result["power"] == pytest.approx(sequential_power([0.3, 1.0], 0.05, fixed), abs=1e-12)
    # plan size --kind continuous --sd 8 --margin 3 --fractions 0.3,1 -> 113 per arm
    assert result["n_suggested"] == [113, 113]
    assert power_warning(befriending) is None  # 96 % >= 80 %
    # housing repairs: a superiority primary with no assumed effect -> nothing to compute
    housing = load_protocol(EXAMPLES / "housing-repairs.toml")
    assert protocol_power(housing) is None and power_warning(housing) is None


def test_power_warning_for_an_underpowered_continuous_protocol():
    from riskreg.planning import power_warning, protocol_power
    from tests.analysis_fixtures import metric, stage

    wellbeing = metric("wellbeing", "continuous", "primary", test="non-inferiority", margin=3.0, sd=8.0)
    protocol = _protocol([wellbeing], [stage("feasibility", 20), stage("extended", 60)])
    result = protocol_power(protocol)
    # 60 per arm: one-sided 0.025 t-test of 3/8 sd, about 53 %, a shade less with the interim look
    assert (
        result["power_fixed"] == pytest.approx(0.5308, abs=1e-4) and result["power"] < result["power_fixed"]
    )
    assert power_warning(protocol) == (
        "the planned final n of 60 per arm gives 53% power with 2 looks (below the stated 80%) to show "
        "non-inferiority of wellbeing with margin 3 and sd 8; plan size suggests 113 per arm"
    )


def test_power_warning_for_binary_and_count_protocols():
    from riskreg.planning import power_warning, protocol_power
    from riskreg.stats.power import power_binary, size_binary
    from tests.analysis_fixtures import metric, stage

    done = metric(
        "done", "binary", "primary", better="higher", test="non-inferiority", margin=0.1, baseline=0.72
    )
    protocol = _protocol([done], [stage("only", 100)])
    result = protocol_power(protocol)
    assert result["fractions"] == [1.0] and result["power"] == result["power_fixed"]
    assert result["power"] == pytest.approx(power_binary(100, 100, 0.72, 0.72, margin=0.1).power, abs=1e-12)
    assert result["n_suggested"] == list(size_binary(0.72, 0.72, margin=0.1).n_required) == [317, 317]
    # Phi(0.1 / sqrt(2 * 0.72 * 0.28 / 100) - 1.96) = Phi(1.575 - 1.96) = 0.35
    assert power_warning(protocol).startswith("the planned final n of 100 per arm gives 35% power (below")
    assert power_warning(protocol).endswith(
        "with margin 0.1 and baseline 0.72; plan size suggests 317 per arm"
    )

    # unequal allocation: planned_n is the smaller arm; the pilot arm has twice as many
    lopsided = _protocol([done], [stage("only", 400)], allocation=(1, 2))
    result = protocol_power(lopsided)
    assert result["n_per_arm"] == [400, 800] and result["power"] >= 0.8 and power_warning(lopsided) is None

    incidents = metric(
        "incidents", "count", "primary", better="lower", test="non-inferiority", margin=1.5, baseline=0.02
    )
    counted = _protocol([incidents], [stage("a", 100), stage("b", 300)])
    assert protocol_power(counted) is None  # a rate per unit of exposure, but how much exposure per unit?
    with_exposure = protocol_power(counted, exposure_per_unit=8.0)
    assert with_exposure["assumptions"]["rate_ratio"] == 1.0 and with_exposure["power"] < 0.8
    assert "rate-ratio margin 1.5, baseline rate 0.02 and exposure 8 per unit" in power_warning(counted, 8.0)


def test_protocol_power_needs_the_protocols_assumptions():
    from riskreg.planning import protocol_power
    from tests.analysis_fixtures import metric, stage

    superiority = metric("score", "continuous", "primary", sd=2.0)
    no_sd = metric("score", "continuous", "primary", test="non-inferiority", margin=1.0)
    equivalence = metric("score", "continuous", "primary", test="equivalence", margin=1.0, sd=2.0)
    for primary in (superiority, no_sd, equivalence):
        assert protocol_power(_protocol([primary], [stage("only", 50)])) is None
