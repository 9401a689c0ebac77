"""riskreg.analysis on real databases (SQLite and PostgreSQL): statistics, boundaries, recommendations."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest
from scipy import stats

from riskreg.analysis import analyse, analyse_pilot
from riskreg.cli.analysis_text import analysis_text
from riskreg.errors import InvalidInput, NotFound
from riskreg.pilots import get_pilot
from riskreg.stats.sequential import lan_demets_boundaries, observed_boundaries
from riskreg.stats.verdicts import holm
from tests.analysis_fixtures import (
    EXAMPLES,
    analysed,
    arm_rows,
    load,
    metric,
    protocol_text,
    register,
    session_for,
    stage,
)

PRIMARY_NI = metric("wellbeing", "continuous", "primary", test="non-inferiority", margin=3.0)
SAFETY = metric("incidents", "count", "safety", better="lower")


def exact(seed: int, n: int, mean: float, sd: float) -> list[float]:
    """Return n values with exactly this sample mean and standard deviation."""
    x = np.random.default_rng(seed).normal(size=n)
    return list((x - x.mean()) / x.std(ddof=1) * sd + mean)


def no_nan(analysis) -> dict:
    data = analysis.to_dict()
    json.dumps(data, allow_nan=False)
    return data


# --- sufficient statistics and the statistics on top of them -----------------------------------


def test_variance_near_1e9_matches_numpy(rr, tmp_path):
    # Values ~1e9 with spread 0.01: a naive sum of squares in SQL would lose every digit.
    register(rr, tmp_path, protocol_text([metric("level", "continuous", "primary")], [stage("only", 100)]))
    rng = np.random.default_rng(11)
    comparison = 1e9 + rng.normal(0.0, 0.01, 150)
    pilot = 1e9 + 0.005 + rng.normal(0.0, 0.01, 150)
    load(
        rr, tmp_path, arm_rows("level", "comparison", comparison) + arm_rows("level", "pilot", pilot), "only"
    )
    result = analysed(rr.url).metric("level")
    for arm, values in (("comparison", comparison), ("pilot", pilot)):
        assert result.n[arm] == 150
        assert result.detail[arm]["variance"] == pytest.approx(np.var(values, ddof=1), rel=1e-6)
        assert result.summary[arm] == pytest.approx(np.mean(values), abs=1e-6)
    assert result.estimate == pytest.approx(np.mean(pilot) - np.mean(comparison), abs=1e-6)


def test_continuous_matches_scipy_welch(rr, tmp_path):
    # Reference: scipy.stats.ttest_ind(pilot, comparison, equal_var=False) (Welch's t test).
    metrics = [PRIMARY_NI, metric("loneliness", "continuous", "secondary", better="lower")]
    register(rr, tmp_path, protocol_text(metrics, [stage("only", 30)]))
    rng = np.random.default_rng(5)
    data = {
        ("wellbeing", "comparison"): rng.normal(44.0, 8.0, 34),
        ("wellbeing", "pilot"): rng.normal(46.0, 6.0, 41),
        ("loneliness", "comparison"): rng.normal(6.0, 1.8, 37),
        ("loneliness", "pilot"): rng.normal(5.3, 1.2, 29),
    }
    rows = [row for (name, arm), values in data.items() for row in arm_rows(name, arm, values)]
    load(rr, tmp_path, rows, "only")
    analysis = analysed(rr.url)
    for name in ("wellbeing", "loneliness"):
        result = analysis.metric(name)
        pilot, comparison = data[(name, "pilot")], data[(name, "comparison")]
        reference = stats.ttest_ind(pilot, comparison, equal_var=False)
        assert result.estimate == pytest.approx(np.mean(pilot) - np.mean(comparison), rel=1e-9)
        assert result.p_value == pytest.approx(reference.pvalue, rel=1e-7)
        assert result.statistic == pytest.approx(reference.statistic, rel=1e-9)
        assert result.df == pytest.approx(reference.df, rel=1e-9)
        low, high = reference.confidence_interval(0.95)
        # The secondary's CI is at 95 %; the primary's is at the one-look boundary
        # |z| = 1.95996 (t = 1), i.e. 95 % up to rounding of the spending function.
        tolerance = 1e-9 if name == "loneliness" else 1e-6
        assert result.ci == pytest.approx((low, high), rel=tolerance)
    assert analysis.metric("wellbeing").boundary == pytest.approx(stats.norm.isf(0.025), rel=1e-6)
    assert analysis.metric("loneliness").p_adjusted == analysis.metric("loneliness").p_value  # one secondary


def test_holm_on_secondaries_safety_and_primary_unadjusted(rr, tmp_path):
    metrics = [
        metric("wellbeing", "continuous", "primary"),
        metric("mood", "continuous", "secondary"),
        metric("readmitted", "binary", "secondary", better="lower"),
        metric("visits", "count", "secondary"),
        metric("unmeasured", "continuous", "secondary"),
        metric("falls", "count", "safety", better="lower"),
    ]
    register(rr, tmp_path, protocol_text(metrics, [stage("only", 50)]))
    rng = np.random.default_rng(2)
    rows = []
    for arm, shift in (("comparison", 0.0), ("pilot", 1.0)):
        rows += arm_rows("wellbeing", arm, rng.normal(40 + shift, 5, 60))
        rows += arm_rows("mood", arm, rng.normal(10 + 0.6 * shift, 2, 60))
        rows += arm_rows("readmitted", arm, rng.binomial(1, 0.3 - 0.12 * shift, 60))
        rows += arm_rows("visits", arm, rng.poisson(2 + shift, 60), exposure=4.0)
        rows += arm_rows("falls", arm, rng.poisson(0.5, 60), exposure=4.0)
    load(rr, tmp_path, rows, "only")
    analysis = analysed(rr.url)
    names = ("mood", "readmitted", "visits")
    p = [analysis.metric(n).p_value for n in names]
    assert all(v is not None for v in p)
    adjusted = [analysis.metric(n).p_adjusted for n in names]
    assert adjusted == pytest.approx(holm(p), rel=1e-12)
    # Holm by hand (R p.adjust "holm"): k-th smallest times (m - k + 1), running maximum, capped at 1.
    order = np.argsort(p)
    by_hand = np.empty(3)
    by_hand[order] = np.minimum(1, np.maximum.accumulate([(3 - i) * p[j] for i, j in enumerate(order)]))
    assert adjusted == pytest.approx(list(by_hand), rel=1e-12)
    assert analysis.metric("unmeasured").p_value is None
    assert analysis.metric("unmeasured").p_adjusted is None  # excluded from the Holm family
    for name in ("wellbeing", "falls"):
        assert analysis.metric(name).p_adjusted == analysis.metric(name).p_value
    assert [analysis.metric(n).boundary is None for n in (*names, "falls")] == [True] * 4
    assert "Holm" in analysis.metric("mood").method and "unadjusted" in analysis.metric("falls").method
    # the SQL sums are the data's sums
    visits = analysis.metric("visits").detail
    expected = sum(int(r[3]) for r in rows if r[2] == "visits" and r[1] == "pilot")
    assert (visits["pilot"]["events"], visits["pilot"]["exposure"]) == (expected, pytest.approx(240.0))
    readmitted = analysis.metric("readmitted").detail["comparison"]
    assert readmitted["events"] == sum(
        int(r[3]) for r in rows if r[2] == "readmitted" and r[1] == "comparison"
    )


def test_equivalence_uses_tost_interval(rr, tmp_path):
    metrics = [
        metric("cost", "continuous", "primary", better="lower", test="equivalence", margin=1.0),
        metric("score", "continuous", "secondary", test="equivalence", margin=0.5),
    ]
    register(rr, tmp_path, protocol_text(metrics, [stage("only", 100)]))
    rows = arm_rows("cost", "comparison", exact(1, 100, 20, 2)) + arm_rows(
        "cost", "pilot", exact(2, 100, 20, 2)
    )
    rows += arm_rows("score", "comparison", exact(3, 100, 5, 2)) + arm_rows(
        "score", "pilot", exact(4, 100, 5, 2)
    )
    load(rr, tmp_path, rows, "only")
    analysis = analysed(rr.url)
    primary, secondary = analysis.metric("cost"), analysis.metric("score")
    assert primary.verdict == "equivalent" and analysis.primary_meets_boundary
    assert analysis.recommendation == "proceed"
    # secondary: TOST on the 90 % CI (1 - 2α), which lies within ±0.5 though the 95 % CI does not
    comparison, pilot = exact(3, 100, 5, 2), exact(4, 100, 5, 2)
    low, high = stats.ttest_ind(pilot, comparison, equal_var=False).confidence_interval(0.90)
    assert secondary.equivalence_ci == pytest.approx((low, high), rel=1e-9)
    assert secondary.verdict == "equivalent" and high < 0.5 < secondary.ci[1]
    assert "TOST on the 90% CI" in secondary.method


# --- staged looks and recommendations ------------------------------------------------------------


def test_boundaries_follow_planned_n_and_data_are_cumulative(rr, tmp_path):
    register(rr, tmp_path, protocol_text([PRIMARY_NI, SAFETY], [stage("first", 30), stage("second", 100)]))
    first = arm_rows("wellbeing", "comparison", exact(1, 30, 50, 4)) + arm_rows(
        "wellbeing", "pilot", exact(2, 30, 51, 4)
    )
    load(rr, tmp_path, first, "first")
    early = analysed(rr.url)
    expected = lan_demets_boundaries([0.3]).z[0]
    assert early.information_fraction == pytest.approx(0.3)
    assert early.metric("wellbeing").boundary == expected
    assert early.metric("incidents").boundary is None
    assert early.metric("wellbeing").ci_level == pytest.approx(1 - 2 * stats.norm.sf(expected))
    assert "O'Brien–Fleming-type boundary |z| = 3.93" in early.metric("wellbeing").method

    assert rr("pilot", "gate", "P-1", "--decision", "proceed", "--reason", "x", "--override").exit_code == 0
    second = arm_rows("wellbeing", "comparison", exact(3, 70, 50, 4), prefix="b") + arm_rows(
        "wellbeing", "pilot", exact(4, 70, 51, 4), prefix="b"
    )
    load(rr, tmp_path, second, "second")
    final = analysed(rr.url)
    both = lan_demets_boundaries([0.3, 1.0])
    assert final.information_fraction == 1.0
    assert final.metric("wellbeing").boundary == pytest.approx(both.z[1], rel=1e-12)
    assert final.boundaries["z"] == pytest.approx(list(both.z), rel=1e-12)
    assert final.metric("wellbeing").n == {"comparison": 100, "pilot": 100}
    # stage 1 alone still sees only its own (cumulative to it) data
    assert analysed(rr.url, stage_index=0).to_dict() == early.to_dict()
    with pytest.raises(InvalidInput):
        analysed(rr.url, stage_index=2)


def test_proceed_at_the_early_look_without_efficacy_then_proceed_at_the_final_look(rr, tmp_path):
    criteria = {"recruited": (20, 10), "retention": (0.8, 0.6)}
    stages = [stage("first", 20, **criteria), stage("final", 80, recruited=(80, 60), retention=(0.8, 0.6))]
    register(rr, tmp_path, protocol_text([PRIMARY_NI, SAFETY], stages))
    rows = arm_rows("wellbeing", "comparison", exact(1, 20, 50, 3)) + arm_rows(
        "wellbeing", "pilot", exact(2, 20, 50, 3)
    )
    rows += arm_rows("incidents", "comparison", [0, 1] * 10, exposure=2.0)
    rows += arm_rows("incidents", "pilot", [1, 0] * 10, exposure=2.0)
    load(rr, tmp_path, rows, "first")
    early = analysed(rr.url)
    primary = early.metric("wellbeing")
    assert primary.nominal["verdict"] == "non-inferior"  # would pass at a fixed 95 %...
    assert primary.verdict == "inconclusive"  # ...but not at the first-look boundary
    assert early.recommendation == "proceed"  # efficacy is for the final look: never required early
    assert [c.status for c in early.criteria] == ["green", "green"]
    assert early.reasons[:3] == (
        "the stage reached its planned n: 20 of 20 units in the smaller arm",
        "every progression criterion is green",
        "no safety metric shows harm",
    )

    assert rr("pilot", "gate", "P-1", "--decision", "proceed", "--reason", "x").exit_code == 0
    more = arm_rows("wellbeing", "comparison", exact(3, 60, 50, 3), prefix="x") + arm_rows(
        "wellbeing", "pilot", exact(4, 60, 50, 3), prefix="x"
    )
    more += arm_rows("incidents", "comparison", [0, 1] * 30, prefix="x", exposure=2.0)
    more += arm_rows("incidents", "pilot", [1, 0] * 30, prefix="x", exposure=2.0)
    load(rr, tmp_path, more, "final")
    final = analysed(rr.url)
    assert final.metric("wellbeing").verdict == "non-inferior"
    assert final.recommendation == "proceed"
    assert final.primary_meets_boundary
    assert final.boundaries["final"] is True
    assert final.reasons[0].startswith(
        "the primary met its test at the final look: wellbeing is non-inferior (difference in means"
    )
    assert final.reasons[0].endswith(f"boundary |z| ≥ {final.metric('wellbeing').boundary:.3g})")
    assert final.reasons[1:] == ("no safety metric shows harm",)


def test_safety_harm_stops(rr, tmp_path):
    register(rr, tmp_path, protocol_text([PRIMARY_NI, SAFETY], [stage("only", 40)]))
    rows = arm_rows("wellbeing", "comparison", exact(1, 40, 50, 2)) + arm_rows(
        "wellbeing", "pilot", exact(2, 40, 50, 2)
    )
    rows += arm_rows("incidents", "comparison", [1] + [0] * 39, exposure=1.0)
    rows += arm_rows("incidents", "pilot", [1] * 15 + [0] * 25, exposure=1.0)
    load(rr, tmp_path, rows, "only")
    analysis = analysed(rr.url)
    assert analysis.metric("incidents").verdict == "harm"
    assert analysis.metric("wellbeing").verdict == "non-inferior"  # the primary alone would proceed
    assert analysis.recommendation == "stop"
    assert analysis.reasons == ("safety: incidents shows harm (rate ratio 15, 95% CI 2.31 to 631)",)


def test_harm_with_no_comparison_events_is_not_hidden(rr, tmp_path):
    # No comparison events: the rate ratio and its upper bound are infinite, the lower bound is not.
    register(rr, tmp_path, protocol_text([PRIMARY_NI, SAFETY], [stage("only", 30)]))
    rows = arm_rows("incidents", "comparison", [0] * 30, exposure=1.0)
    rows += arm_rows("incidents", "pilot", [1] * 12 + [0] * 18, exposure=1.0)
    load(rr, tmp_path, rows, "only")
    analysis = analysed(rr.url)
    incidents = analysis.metric("incidents")
    assert incidents.estimate is None and incidents.ci[1] is None and incidents.ci[0] > 1
    assert incidents.verdict == "harm"
    assert analysis.recommendation == "stop"
    assert analysis.reasons[0].startswith("safety: incidents shows harm (rate ratio n/a, 95% CI ")
    assert analysis.reasons[0].endswith(" to infinity)")
    no_nan(analysis)


def test_red_criterion_stops(rr, tmp_path):
    register(rr, tmp_path, protocol_text([PRIMARY_NI], [stage("only", 10, retention=(0.8, 0.6))]))
    values = exact(1, 20, 50, 2)
    rows = arm_rows("wellbeing", "comparison", values[:10] + [None] * 10)
    rows += arm_rows("wellbeing", "pilot", values[10:] + [None] * 10)
    load(rr, tmp_path, rows, "only")
    analysis = analysed(rr.url)
    assert analysis.metric("wellbeing").missing == {"comparison": 10, "pilot": 10}
    assert analysis.criteria[0].value == 0.5
    assert analysis.recommendation == "stop"
    assert analysis.reasons == ("progression criterion retention is red: 0.5, below 0.6",)


def test_degenerate_data_continue_without_crashing(rr, tmp_path):
    register(
        rr,
        tmp_path,
        protocol_text([PRIMARY_NI, SAFETY], [stage("only", 10, recruited=(10, 5), retention=(0.8, 0.6))]),
    )
    empty = analysed(rr.url)
    data = no_nan(empty)
    assert data["recommendation"] == "continue"
    assert data["reasons"] == [
        "no outcome data yet",
        "the stage's planned n is not in yet: 0 of 10 units in the smaller arm",
    ]
    assert [c["status"] for c in data["criteria"]] == ["no-data", "no-data"]
    assert data["metrics"][0]["ci"] == [None, None] and data["metrics"][0]["verdict"] == "inconclusive"
    assert data["srm"]["p_value"] is None and data["srm"]["ok"] is True

    # one arm only
    load(rr, tmp_path, arm_rows("wellbeing", "comparison", [5.0] * 12), "only", name="a")
    one_arm = no_nan(analysed(rr.url))
    assert one_arm["recommendation"] == "continue"
    assert one_arm["reasons"] == ["the stage's planned n is not in yet: 0 of 10 units in the smaller arm"]
    assert [c["status"] for c in one_arm["criteria"]] == ["no-data", "no-data"]  # not red

    # zero variance in both arms
    rows = arm_rows("wellbeing", "comparison", [5.0] * 12) + arm_rows("wellbeing", "pilot", [5.0] * 12)
    load(rr, tmp_path, rows, "only", "--replace", name="b")
    flat = analysed(rr.url)
    no_nan(flat)
    primary = flat.metric("wellbeing")
    assert primary.estimate == 0.0 and "zero-variance" in primary.warnings
    assert primary.verdict == "inconclusive"
    # the only stage at its planned n is the final look: not shown, never continue
    assert flat.recommendation == "stop"
    assert flat.reasons[0].startswith(
        "not shown: the primary wellbeing did not meet its non-inferiority test"
    )


def test_sample_ratio_mismatch_flagged(rr, tmp_path):
    register(rr, tmp_path, protocol_text([metric("done", "binary", "primary")], [stage("only", 100)]))
    rows = arm_rows("done", "comparison", [1, 0, 1] * 100) + arm_rows("done", "pilot", [1, 0, 0, 1] * 25)
    load(rr, tmp_path, rows, "only")
    analysis = analysed(rr.url)
    assert analysis.units == {"comparison": 300, "pilot": 100}
    assert analysis.srm["ok"] is False and analysis.srm["p_value"] < 1e-3
    assert analysis.srm["p_value"] == pytest.approx(stats.chisquare([300, 100]).pvalue)
    assert analysis.warnings[0].startswith("sample ratio mismatch: 300 comparison vs 100 pilot units")


def test_memory_does_not_grow_with_observations(rr, tmp_path):
    # analyse never fetches raw values: its peak Python memory is the same for 200 and 20,000 rows.
    text = protocol_text([metric("score", "continuous", "primary")], [stage("only", 10)])
    register(rr, tmp_path, text)
    register(rr, tmp_path, text.replace("test-pilot", "big-pilot"))
    rng = np.random.default_rng(3)
    for ref, n in (("P-1", 100), ("P-2", 10_000)):
        rows = arm_rows("score", "comparison", rng.normal(0, 1, n)) + arm_rows(
            "score", "pilot", rng.normal(0, 1, n)
        )
        load(rr, tmp_path, rows, "only", ref=ref, name=ref)
    peaks = {}
    with session_for(rr.url) as (session, config):
        for ref in ("P-1", "P-2", "P-1", "P-2"):  # the first round warms caches up
            pilot = get_pilot(session, ref)
            tracemalloc.start()
            analyse(session, pilot, None, config)
            peaks[ref] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    assert peaks["P-2"] < peaks["P-1"] + 100_000  # 20,000 floats as Python objects would be ~0.5 MB+


# --- the example pilots --------------------------------------------------------------------------


def test_hospital_befriending_proceed_then_proceed(rr, tmp_path):
    data = EXAMPLES / "data"
    assert rr("pilot", "register", str(EXAMPLES / "hospital-befriending.toml")).exit_code == 0
    for args in (
        ("data", "P-1", str(data / "hospital-befriending-feasibility.csv"), "--stage", "feasibility"),
        ("resources", "P-1", str(data / "hospital-befriending-resources.csv")),
    ):
        result = rr("pilot", *args)
        assert result.exit_code == 0, result.output
    feasibility = analysed(rr.url)
    assert feasibility.stage == "feasibility"
    assert feasibility.recommendation == "proceed"
    # the look is at the observed information: 58 and 57 units with wellbeing, of 200 planned
    assert feasibility.information_fraction == pytest.approx(2 * 58 * 57 / 115 / 200)
    assert feasibility.metric("wellbeing").boundary == observed_boundaries([2 * 58 * 57 / 115 / 200]).z[0]
    assert feasibility.metric("wellbeing").verdict == "inconclusive"
    assert feasibility.reasons[0] == "the stage reached its planned n: 62 of 60 units in the smaller arm"
    assert {c.name: c.status for c in feasibility.criteria} == {"recruited": "green", "retention": "green"}
    costs = feasibility.to_dict()["costs"]
    assert costs["comparison"]["public"] == 5859.0 and costs["comparison"]["citizen"] == 0.0
    assert costs["pilot"]["public"] == pytest.approx(5043.84 + 1250 + 607.60)
    assert costs["pilot"]["citizen"] == pytest.approx((620 + 216) * 12.21 + 179.80, abs=0.01)
    assert costs["pilot"]["per_unit"] == pytest.approx(costs["pilot"]["total"] / 62, abs=0.01)
    assert costs["unallocated"]["public"] == 945.0 and costs["unallocated"]["per_unit"] is None
    incremental = costs["incremental"]
    assert incremental["per_unit_with_citizen"] == pytest.approx(
        costs["pilot"]["per_unit"] - costs["comparison"]["per_unit"], abs=0.01
    )
    assert incremental["per_unit_of_effect_public_only"] == pytest.approx(
        incremental["per_unit_public_only"] / feasibility.metric("wellbeing").estimate, abs=0.02
    )

    result = rr("pilot", "gate", "P-1", "--decision", "proceed", "--reason", "x")
    assert result.exit_code == 0, result.output
    result = rr(
        "pilot", "data", "P-1", str(data / "hospital-befriending-extended.csv"), "--stage", "extended"
    )
    assert result.exit_code == 0, result.output
    extended = analysed(rr.url)
    assert extended.stage == "extended"
    assert extended.metric("wellbeing").verdict == "non-inferior"
    assert extended.metric("safeguarding_incidents").verdict == "inconclusive"
    assert extended.recommendation == "proceed"
    assert extended.reasons[0].startswith(
        "the primary met its test at the final look: wellbeing is non-inferior"
    )
    assert extended.to_dict()["costs"]["comparison"]["public"] == 5859.0 + 15120.0  # cumulative


def test_housing_repairs_stop_and_reproducible(rr, tmp_path):
    data = EXAMPLES / "data"
    assert rr("pilot", "register", str(EXAMPLES / "housing-repairs.toml")).exit_code == 0
    for name in ("housing-repairs-feasibility.csv", "housing-repairs-feasibility-complaints.csv"):
        result = rr("pilot", "data", "P-1", str(data / name), "--stage", "feasibility")
        assert result.exit_code == 0, result.output
    assert rr("pilot", "resources", "P-1", str(data / "housing-repairs-resources.csv")).exit_code == 0
    analysis = analysed(rr.url)
    assert analysis.recommendation == "stop"
    assert analysis.reasons[0] == "safety: complaints shows harm (rate ratio 6.45, 95% CI 1.41 to 59.9)"
    assert analysis.reasons[1] == "progression criterion retention is red: 0.535, below 0.6"
    assert {c.name: c.status for c in analysis.criteria} == {"recruited": "amber", "retention": "red"}
    assert analysis.units == {"comparison": 80, "pilot": 64} and analysis.srm["ok"] is True

    first = no_nan(analysis)
    assert analysed(rr.url).to_dict() == first  # same data, same output
    with session_for(rr.url) as (session, config):
        assert analyse_pilot(session, "housing-repairs", "feasibility", config).to_dict() == first
        with pytest.raises(NotFound, match="no stage 'pilot'"):
            analyse_pilot(session, "P-1", "pilot", config)
    assert set(first) >= {"pilot", "stage", "recommendation", "reasons", "srm", "metrics", "costs"}
    for m in first["metrics"]:
        assert set(m) >= {
            "name", "kind", "role", "test", "better", "method", "n", "summary", "estimate",
            "ci", "p_value", "p_adjusted", "boundary", "verdict",
        }  # fmt: skip
    assert set(first["costs"]["pilot"]) >= {"public", "citizen", "total", "per_unit"}
    text = analysis_text(first)
    assert "recommendation: STOP" in text and "complaints" in text and "retention" in text


def test_units_are_counted_once_whichever_way_they_are_counted(rr, tmp_path):
    """Units with a primary outcome come from the import counts while one import holds the
    primary metric, and from distinct unit ids once a unit may appear in two imports."""
    from tests.pilot_fixtures import LONG, registered, write

    registered(rr, tmp_path)
    rr("pilot", "data", "P-1", write(tmp_path, "first.csv", LONG), "--stage", "feasibility")
    first = rr.json("pilot", "analyse", "P-1")
    # LONG: u1 comparison; u2 pilot with wellbeing NA; u3 pilot
    assert (first["units"], first["primary_units"]) == (
        {"comparison": 1, "pilot": 2},
        {"comparison": 1, "pilot": 1},
    )
    assert rr("pilot", "gate", "P-1", "--decision", "proceed", "--reason", "x", "--override").exit_code == 0
    # u3's incidents were missing at feasibility: a later value is its first
    later = "unit_id,arm,metric,value,exposure\nu3,pilot,incidents,1,7\nu4,comparison,wellbeing,41,\n"
    assert (
        rr("pilot", "data", "P-1", write(tmp_path, "later.csv", later), "--stage", "extended").exit_code == 0
    )
    both = rr.json("pilot", "analyse", "P-1")
    # u3 has data in both stages: one unit, not two
    assert (both["units"], both["primary_units"]) == (
        {"comparison": 2, "pilot": 2},
        {"comparison": 2, "pilot": 1},
    )
