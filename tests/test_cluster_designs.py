"""Issue 18: cluster-randomised pilots are analysed at the cluster level, and the gate reads that analysis."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from tests.pilot_fixtures import write

CLUSTERED = """
[pilot]
key = "co-delivery"
title = "Co-delivered support, by team"
modes = ["delivery"]
hypothesis = "Teams that co-deliver with residents raise wellbeing."

[design]
arms = ["comparison", "pilot"]
unit = "cluster"
cluster = "team"
clusters_per_arm = 6
cluster_size = 5
icc = 0.05

[[metrics]]
name = "wellbeing"
kind = "continuous"
role = "primary"
better = "higher"

[[metrics]]
name = "readmitted"
kind = "binary"
role = "secondary"
better = "lower"

[[metrics]]
name = "incidents"
kind = "count"
role = "safety"
better = "lower"

[[stages]]
name = "feasibility"
planned_n = 30

[[stages]]
name = "main"
planned_n = 60
"""

# six teams per arm, five residents each; each team's wellbeing shifted by its own effect
TEAM_SHIFT = {
    "t1": -3,
    "t2": 1,
    "t3": 4,
    "t4": -1,
    "t5": 0,
    "t6": 2,
    "t7": 5,
    "t8": 1,
    "t9": 6,
    "t10": 2,
    "t11": 3,
    "t12": 7,
}
SPREAD = (-2, -1, 0, 1, 2)


def team_arm(team: str) -> str:
    return "comparison" if int(team[1:]) <= 6 else "pilot"


def rows(
    teams: dict[str, int] = TEAM_SHIFT, prefix: str = "u"
) -> list[tuple[str, str, str, float, int, int]]:
    out = []
    for team, shift in teams.items():
        for i, spread in enumerate(SPREAD):
            unit = f"{prefix}{team}-{i}"
            number = int(team[1:])
            incidents = 0 if team == "t4" else (i + number) % 3 + (number > 9)  # team t4 has none
            out.append((unit, team_arm(team), team, 50 + shift + spread, (i + number) % 3 == 0, incidents))
    return out


def data_file(folder, name: str = "teams.csv", table=None) -> str:
    lines = ["unit_id,arm,team,wellbeing,readmitted,incidents,exposure"]
    for unit, arm, team, wellbeing, readmitted, incidents in table if table is not None else rows():
        lines.append(f"{unit},{arm},{team},{wellbeing},{int(readmitted)},{incidents},10")
    return write(folder, name, "\n".join(lines) + "\n")


def registered(rr, folder, text: str = CLUSTERED) -> None:
    result = rr("pilot", "register", write(folder, "co-delivery.toml", text))
    assert result.exit_code == 0, result.output


def stored(rr) -> int:
    """Observations the pilot holds, by `pilot show`."""
    data = rr.json("pilot", "show", "P-1")["data"]
    return sum(arm["n"] + arm["missing"] for metric in data.values() for arm in metric.values())


def cluster_means(metric_index: int, table=None) -> tuple[list[float], list[float]]:
    by_team: dict[str, list[float]] = {}
    for row in table if table is not None else rows():
        by_team.setdefault(row[2], []).append(float(row[metric_index]))
    pilot = [sum(v) / len(v) for team, v in by_team.items() if team_arm(team) == "pilot"]
    comparison = [sum(v) / len(v) for team, v in by_team.items() if team_arm(team) == "comparison"]
    return pilot, comparison


def test_the_primary_is_the_t_test_on_cluster_means_and_the_design_is_reported(rr, tmp_path):
    registered(rr, tmp_path)
    assert rr("pilot", "data", "P-1", data_file(tmp_path), "--stage", "feasibility").exit_code == 0
    found = rr.json("pilot", "analyse", "P-1")
    wellbeing = next(m for m in found["metrics"] if m["name"] == "wellbeing")
    pilot, comparison = cluster_means(3)
    # scipy's pooled two-sample t test on the 6 + 6 team means: the equal-weight cluster-level test
    reference = stats.ttest_ind(pilot, comparison)
    assert wellbeing["estimate"] == pytest.approx(sum(pilot) / 6 - sum(comparison) / 6)
    assert wellbeing["p_value"] == pytest.approx(reference.pvalue)
    assert wellbeing["statistic"] == pytest.approx(reference.statistic)
    assert wellbeing["df"] == 10
    low, high = reference.confidence_interval(0.95)
    assert wellbeing["nominal"]["ci"] == [pytest.approx(low), pytest.approx(high)]
    assert "cluster-level t test on cluster means, equal weights, 10 df" in wellbeing["method"]
    assert wellbeing["power"] is None  # unit-level power would ignore the clustering
    design = found["design"]
    assert design["clusters"] == {"comparison": 6, "pilot": 6}
    assert design["cluster_column"] == "team"
    assert design["planned"] == {"clusters_per_arm": 6, "cluster_size": 5, "icc": 0.05}
    clustering = design["metrics"]["wellbeing"]
    # one-way ANOVA within arms, equal sizes m = 5: ICC = (MSB − MSW) / (MSB + (m − 1)·MSW)
    within = 12 * sum(s * s for s in SPREAD) / (60 - 12)
    between = (
        5
        * (
            sum((x - sum(pilot) / 6) ** 2 for x in pilot)
            + sum((x - sum(comparison) / 6) ** 2 for x in comparison)
        )
        / (12 - 2)
    )
    icc = (between - within) / (between + 4 * within)
    assert clustering["icc"] == pytest.approx(icc)
    assert clustering["design_effect"] == pytest.approx(1 + 4 * icc)
    assert clustering["effective_n"] == pytest.approx(60 / (1 + 4 * icc))
    assert found["srm"]["clusters"] == {"comparison": 6, "pilot": 6}


def test_binary_and_count_metrics_compare_cluster_proportions_and_log_rates(rr, tmp_path):
    registered(rr, tmp_path)
    assert rr("pilot", "data", "P-1", data_file(tmp_path), "--stage", "feasibility").exit_code == 0
    found = {m["name"]: m for m in rr.json("pilot", "analyse", "P-1")["metrics"]}
    pilot, comparison = cluster_means(4)
    assert found["readmitted"]["estimate"] == pytest.approx(sum(pilot) / 6 - sum(comparison) / 6)
    assert found["readmitted"]["p_value"] == pytest.approx(stats.ttest_ind(pilot, comparison).pvalue)
    events_p, events_c = cluster_means(5)  # mean events per resident; exposure 10 each
    # some teams have no incidents: 0.5 is added to every team's events before the logarithms
    logs_p = [math.log((e * 5 + 0.5) / 50) for e in events_p]
    logs_c = [math.log((e * 5 + 0.5) / 50) for e in events_c]
    assert found["incidents"]["estimate"] == pytest.approx(math.exp(sum(logs_p) / 6 - sum(logs_c) / 6))
    assert found["incidents"]["p_value"] == pytest.approx(stats.ttest_ind(logs_p, logs_c).pvalue)
    assert "0.5 added to each cluster's events" in found["incidents"]["method"]


def test_few_clusters_give_no_estimate_and_the_gate_waits(rr, tmp_path):
    registered(rr, tmp_path)
    two = {"t1": 0, "t2": 1, "t7": 3}  # one pilot team: no cluster-level variance in that arm
    assert (
        rr("pilot", "data", "P-1", data_file(tmp_path, table=rows(two)), "--stage", "feasibility").exit_code
        == 0
    )
    found = rr.json("pilot", "analyse", "P-1")
    wellbeing = next(m for m in found["metrics"] if m["name"] == "wellbeing")
    assert wellbeing["estimate"] is None
    assert "too-few-clusters" in wellbeing["warnings"]
    assert found["recommendation"] == "continue"


def test_a_file_without_the_cluster_column_is_refused_and_nothing_is_written(rr, tmp_path):
    registered(rr, tmp_path)
    path = write(tmp_path, "no-team.csv", "unit_id,arm,wellbeing\nu1,pilot,50\nu2,comparison,48\n")
    result = rr("pilot", "data", "P-1", path, "--stage", "feasibility")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {path}: line 1: no 'team' column: the design allocates clusters "
        '([design] unit = "cluster"), so each row must name its cluster; nothing was imported\n'
    )
    assert stored(rr) == 0


def test_a_cluster_in_both_arms_is_refused_with_its_lines(rr, tmp_path):
    registered(rr, tmp_path)
    table = rows()
    table[7] = (
        table[7][0],
        "pilot",
        *table[7][2:],
    )  # line 9: a resident of comparison team t2 in the pilot arm
    path = data_file(tmp_path, table=table)
    result = rr("pilot", "data", "P-1", path, "--stage", "feasibility")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {path}: line 9: cluster 't2' is in the pilot arm here but in the comparison arm on line 7: "
        "clusters are allocated whole, to one arm; nothing was imported\n"
    )
    assert stored(rr) == 0


def test_a_cluster_may_not_change_arm_between_stages(rr, tmp_path):
    registered(rr, tmp_path)
    assert rr("pilot", "data", "P-1", data_file(tmp_path), "--stage", "feasibility").exit_code == 0
    assert rr("pilot", "gate", "P-1", "--decision", "proceed", "--reason", "board").exit_code == 0
    moved = [
        (f"new-{u}", "pilot" if team == "t3" else arm, team, w, r, i) for u, arm, team, w, r, i in rows()
    ]
    path = data_file(tmp_path, "main.csv", moved)
    result = rr("pilot", "data", "P-1", path, "--stage", "main")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {path}: 5 rows rejected, nothing was imported")
    for line in range(12, 17):
        assert (
            f"line {line}: cluster 't3' is in the pilot arm here but in the comparison arm in earlier data of "
            "this pilot: clusters are allocated whole, to one arm\n"
        ) in result.output
    assert stored(rr) == 180  # the first stage's 60 residents × 3 metrics, no more


def test_rows_without_a_cluster_are_refused(rr, tmp_path):
    registered(rr, tmp_path)
    path = write(tmp_path, "blank.csv", "unit_id,arm,team,wellbeing\nu1,pilot,t7,50\nu2,comparison,,48\n")
    result = rr("pilot", "data", "P-1", path, "--stage", "feasibility")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {path}: line 3: no cluster: the 'team' column is empty (each row must name its cluster); "
        "nothing was imported\n"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("clusters_per_arm = 6\n", "design.clusters_per_arm: missing required key"),
        ("icc = 0.05", "design.icc: expected a number from 0 up to (not including) 1, got 1.5"),
        ('unit = "cluster"', "design.unit: expected individual or cluster, got 'clusters'"),
        ("cluster_size = 5", "design.cluster_size: expected at least 1 unit per cluster, got 0.5"),
    ],
)
def test_cluster_design_keys_are_validated(rr, tmp_path, change, message):
    replacement = {
        "clusters_per_arm = 6\n": "",
        "icc = 0.05": "icc = 1.5",
        'unit = "cluster"': 'unit = "clusters"',
        "cluster_size = 5": "cluster_size = 0.5",
    }[change]
    path = write(tmp_path, "bad.toml", CLUSTERED.replace(change, replacement))
    result = rr("pilot", "register", path)
    assert result.exit_code == 1
    assert f"{path}: {message}" in result.output


def test_cluster_keys_need_a_cluster_design(rr, tmp_path):
    text = CLUSTERED.replace('unit = "cluster"\n', "")
    path = write(tmp_path, "bad.toml", text)
    result = rr("pilot", "register", path)
    assert result.exit_code == 1
    assert result.output == (
        f'Error: {path}: design.cluster: only for cluster designs (unit = "cluster") (and 3 more problems)\n'
    )


def test_the_terminal_and_the_pilot_report_show_the_design(rr, tmp_path):
    registered(rr, tmp_path)
    assert rr("pilot", "data", "P-1", data_file(tmp_path), "--stage", "feasibility").exit_code == 0
    text = rr("pilot", "analyse", "P-1").output
    assert "sample ratio (clusters): comparison 6, pilot 6; exact binomial p = 1.0000; ok" in text
    assert "cluster-randomised by team: 6 comparison, 6 pilot clusters; equal weights" in text
    assert "planned: ICC 0.05, 5 units per cluster, 6 clusters per arm" in text
    assert "  wellbeing: a" in text and "chance the pilot is better (prior N(0, " in text
    assert rr("report", "pilot", "P-1", "-o", "p.html").exit_code == 0
    html = (tmp_path / "p.html").read_text(encoding="utf-8")
    assert "<h4>Design: clusters at feasibility</h4>" in html
    assert "Clusters (team) were allocated whole: 6 comparison and 6 pilot clusters." in html
    assert "6 comparison, 6 pilot clusters against allocation 1:1" in html


def test_a_covariate_in_a_cluster_design_is_adjusted_by_the_two_stage_method(rr, tmp_path):
    """The gate reads the cluster-level adjusted result; numpy and scipy on the rows give the same."""
    import numpy as np

    text = (
        CLUSTERED.replace(
            'better = "higher"\n', 'better = "higher"\ncovariate = "wellbeing_at_referral"\n', 1
        )
        + '\n[[metrics]]\nname = "wellbeing_at_referral"\nkind = "continuous"\nrole = "baseline"\nbetter = "higher"\n'
    )
    registered(rr, tmp_path, text)
    table = rows()
    baseline = {
        unit: 40 + (i * 7) % 11 + 0.5 * TEAM_SHIFT[team] for i, (unit, _a, team, *_r) in enumerate(table)
    }
    baseline[table[3][0]] = None  # one resident without a baseline
    lines = ["unit_id,arm,team,wellbeing,wellbeing_at_referral,readmitted,incidents,exposure"]
    for unit, arm, team, wellbeing, readmitted, incidents in table:
        x = "NA" if baseline[unit] is None else baseline[unit]
        lines.append(f"{unit},{arm},{team},{wellbeing},{x},{int(readmitted)},{incidents},10")
    assert (
        rr(
            "pilot",
            "data",
            "P-1",
            write(tmp_path, "b.csv", "\n".join(lines) + "\n"),
            "--stage",
            "feasibility",
        ).exit_code
        == 0
    )
    found = rr.json("pilot", "analyse", "P-1")
    observed = [x for x in baseline.values() if x is not None]
    fill = sum(observed) / len(observed)
    design = np.array(
        [[1.0, fill if baseline[u] is None else baseline[u], float(baseline[u] is None)] for u, *_ in table]
    )
    outcome = np.array([float(row[3]) for row in table])
    beta, *_ = np.linalg.lstsq(design, outcome, rcond=None)
    residual = outcome - design @ beta
    by_team: dict[str, list[float]] = {}
    for r, row in zip(residual, table, strict=True):
        by_team.setdefault(row[2], []).append(float(r))
    pilot = [np.mean(v) for team, v in by_team.items() if team_arm(team) == "pilot"]
    comparison = [np.mean(v) for team, v in by_team.items() if team_arm(team) == "comparison"]
    reference = stats.ttest_ind(pilot, comparison)
    wellbeing = next(m for m in found["metrics"] if m["name"] == "wellbeing")
    assert wellbeing["estimate"] == pytest.approx(np.mean(pilot) - np.mean(comparison))
    assert wellbeing["p_value"] == pytest.approx(reference.pvalue)
    adjusted = found["adjusted"]["wellbeing"]
    assert adjusted["missing_baseline"] == {"comparison": 1, "pilot": 0}
    assert adjusted["units"] == {"comparison": 30, "pilot": 30}
    assert adjusted["unadjusted_estimate"] == pytest.approx(
        sum(cluster_means(3)[0]) / 6 - sum(cluster_means(3)[1]) / 6
    )
    assert "two-stage cluster-level adjustment" in wellbeing["method"]


def test_a_replace_may_move_a_cluster_the_replaced_file_had_in_the_wrong_arm(rr, tmp_path):
    registered(rr, tmp_path)
    wrong = [(u, "pilot" if team == "t3" else arm, team, w, r, i) for u, arm, team, w, r, i in rows()]
    assert (
        rr(
            "pilot", "data", "P-1", data_file(tmp_path, "wrong.csv", wrong), "--stage", "feasibility"
        ).exit_code
        == 0
    )
    result = rr("pilot", "data", "P-1", data_file(tmp_path), "--stage", "feasibility", "--replace")
    assert result.exit_code == 0, result.output
    assert rr.json("pilot", "analyse", "P-1")["design"]["clusters"] == {"comparison": 6, "pilot": 6}


def test_rows_without_a_cluster_from_before_the_design_are_no_cluster(rr, tmp_path):
    """Data stored without a cluster (say, imported under an earlier riskreg) count as units, never as a cluster."""
    from tests.conftest import tamper

    registered(rr, tmp_path)
    assert rr("pilot", "data", "P-1", data_file(tmp_path), "--stage", "feasibility").exit_code == 0
    tamper(rr.url, "UPDATE observations SET site = NULL WHERE site = 't1'")
    design = rr.json("pilot", "analyse", "P-1")["design"]
    assert design["clusters"] == {"comparison": 5, "pilot": 6}
    assert design["metrics"]["wellbeing"]["unassigned_units"] == 5


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'unit = "cluster"\ncluster = "team"\nclusters_per_arm = 6\ncluster_size = 5\nicc = 0.05\n',
            "",
            "design.unit cannot change once data have arrived ('cluster' → 'individual')",
        ),
        (
            'cluster = "team"',
            'cluster = "ward"',
            "design.cluster cannot change once data have arrived ('team' → 'ward')",
        ),
    ],
)
def test_the_allocation_cannot_change_once_data_have_arrived(rr, tmp_path, old, new, message):
    registered(rr, tmp_path)
    assert rr("pilot", "data", "P-1", data_file(tmp_path), "--stage", "feasibility").exit_code == 0
    amended = write(tmp_path, "amended.toml", CLUSTERED.replace(old, new))
    result = rr("pilot", "register", amended, "--amend", "--reason", "change of plan")
    assert result.exit_code == 1
    assert result.output == f"Error: amendment of P-1: {message}\n"
