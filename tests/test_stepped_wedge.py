"""Issue 18: stepped-wedge pilots: the stages are the periods, the schedule sets each cluster's arm."""

from __future__ import annotations

import pytest

from riskreg.stats.stepped import Cell, hussey_hughes_fit
from tests.pilot_fixtures import write

STEPPED = """
[pilot]
key = "ward-rollout"
title = "Co-designed discharge, ward by ward"
modes = ["design", "delivery"]
hypothesis = "Discharge planned with patients raises wellbeing."

[design]
arms = ["comparison", "pilot"]
unit = "cluster"
cluster = "ward"
layout = "stepped-wedge"
cluster_size = 4
icc = 0.05
schedule = { "Ward A" = "step-1", "Ward B" = "step-1", "Ward C" = "step-2", "Ward D" = "step-2", "Ward E" = "step-3", "Ward F" = "step-3" }

[[metrics]]
name = "wellbeing"
kind = "continuous"
role = "primary"
better = "higher"

[[metrics]]
name = "readmitted"
kind = "binary"
role = "safety"
better = "lower"

[[stages]]
name = "baseline"
planned_n = 24

[[stages]]
name = "step-1"
planned_n = 48

[[stages]]
name = "step-2"
planned_n = 72

[[stages]]
name = "step-3"
planned_n = 96
"""

WARDS = ("Ward A", "Ward B", "Ward C", "Ward D", "Ward E", "Ward F")
SWITCH = {"Ward A": 1, "Ward B": 1, "Ward C": 2, "Ward D": 2, "Ward E": 3, "Ward F": 3}
WARD_SHIFT = {"Ward A": -2.0, "Ward B": 1.5, "Ward C": 0.5, "Ward D": -1.0, "Ward E": 2.5, "Ward F": -0.5}
SPREAD = (-3.0, -1.0, 1.5, 2.5)


def period_rows(period: int) -> list[tuple[str, str, str, float, int]]:
    """Four new patients per ward in this period: (unit, arm, ward, wellbeing, readmitted)."""
    out = []
    for w, ward in enumerate(WARDS):
        treated = period >= SWITCH[ward]
        for i, spread in enumerate(SPREAD):
            value = 50 + WARD_SHIFT[ward] + 0.8 * period + (3.0 if treated else 0.0) + spread + 0.1 * w
            readmitted = int((i + w + period) % 4 == 0)
            out.append((f"p{period}-{w}-{i}", "pilot" if treated else "comparison", ward, value, readmitted))
    return out


def data_file(folder, period: int, table=None) -> str:
    lines = ["unit_id,arm,ward,wellbeing,readmitted"]
    for unit, arm, ward, value, readmitted in table if table is not None else period_rows(period):
        lines.append(f"{unit},{arm},{ward},{value},{readmitted}")
    return write(folder, f"period-{period}.csv", "\n".join(lines) + "\n")


def registered(rr, folder) -> None:
    result = rr("pilot", "register", write(folder, "ward-rollout.toml", STEPPED))
    assert result.exit_code == 0, result.output


STAGES = ("baseline", "step-1", "step-2", "step-3")


def imported(rr, folder, periods: int) -> None:
    """Import periods 0..periods-1, deciding proceed at each gate in between (as recommended)."""
    for period in range(periods):
        result = rr("pilot", "data", "P-1", data_file(folder, period), "--stage", STAGES[period])
        assert result.exit_code == 0, result.output
        if period < periods - 1:
            result = rr("pilot", "gate", "P-1", "--decision", "proceed", "--reason", "the period is complete")
            assert result.exit_code == 0, result.output


def cells(periods: int, index: int) -> list[Cell]:
    """The cluster-period cells of the metric in column ``index``, as the test computes them itself."""
    found = []
    for period in range(periods):
        for ward in WARDS:
            values = [float(row[index]) for row in period_rows(period) if row[2] == ward]
            mean = sum(values) / len(values)
            found.append(
                Cell(
                    ward,
                    period,
                    period >= SWITCH[ward],
                    len(values),
                    mean,
                    sum((v - mean) ** 2 for v in values),
                )
            )
    return found


def test_the_baseline_period_proceeds_without_pilot_data_or_an_override(rr, tmp_path):
    registered(rr, tmp_path)
    assert rr("pilot", "data", "P-1", data_file(tmp_path, 0), "--stage", "baseline").exit_code == 0
    found = rr.json("pilot", "analyse", "P-1")
    assert found["recommendation"] == "proceed", found["reasons"]
    assert found["units"] == {"comparison": 24, "pilot": 0}
    assert found["srm"]["p_value"] is None
    assert "not applicable" in found["srm"]["method"]


def test_the_primary_is_the_hussey_hughes_model_on_the_cluster_period_cells(rr, tmp_path):
    registered(rr, tmp_path)
    imported(rr, tmp_path, 3)
    found = rr.json("pilot", "analyse", "P-1")
    wellbeing = next(m for m in found["metrics"] if m["name"] == "wellbeing")
    # the same model fitted to cells the test builds from the rows it wrote (t on 6 − 2 df)
    reference = hussey_hughes_fit(cells(3, 3), level=0.95, df=4)
    assert wellbeing["estimate"] == pytest.approx(reference.estimate)
    assert wellbeing["se"] == pytest.approx(reference.se)
    assert wellbeing["p_value"] == pytest.approx(reference.p_value)
    assert wellbeing["nominal"]["ci"] == [pytest.approx(v) for v in reference.ci]
    assert wellbeing["df"] == 4
    assert "Hussey-Hughes linear mixed model (REML)" in wellbeing["method"]
    assert "stages are the periods" in wellbeing["method"]
    # the effect built into the data is 3 points, with a secular trend of 0.8 a period
    assert 1.5 < wellbeing["estimate"] < 4.5
    readmitted = next(m for m in found["metrics"] if m["name"] == "readmitted")
    binary = hussey_hughes_fit(cells(3, 4), level=0.95, df=4)
    assert readmitted["estimate"] == pytest.approx(binary.estimate)
    design = found["design"]
    assert design["layout"] == "stepped-wedge"
    assert design["schedule"]["Ward C"] == "step-2"
    assert design["metrics"]["wellbeing"]["clusters"] == 6
    assert design["metrics"]["wellbeing"]["periods"] == 3
    assert design["metrics"]["wellbeing"]["model"]["icc"] == pytest.approx(reference.icc)


def test_an_arm_that_contradicts_the_schedule_is_refused_with_its_lines(rr, tmp_path):
    registered(rr, tmp_path)
    imported(rr, tmp_path, 1)
    assert rr("pilot", "gate", "P-1", "--decision", "proceed", "--reason", "done").exit_code == 0
    table = period_rows(1)
    table[9] = (table[9][0], "pilot", *table[9][2:])  # line 11: Ward C switches only at step-2
    path = data_file(tmp_path, 1, table)
    result = rr("pilot", "data", "P-1", path, "--stage", "step-1")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {path}: line 11: cluster 'Ward C' is in the pilot arm at stage 'step-1', but the schedule "
        "switches it to the pilot at stage 'step-2', so it belongs in the comparison arm; nothing was imported\n"
    )


def test_a_cluster_outside_the_schedule_is_refused(rr, tmp_path):
    registered(rr, tmp_path)
    path = write(
        tmp_path, "odd.csv", "unit_id,arm,ward,wellbeing\nu1,comparison,Ward A,50\nu2,comparison,Ward Z,48\n"
    )
    result = rr("pilot", "data", "P-1", path, "--stage", "baseline")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {path}: line 3: cluster 'Ward Z' is not in the stepped-wedge schedule "
        "(Ward A, Ward B, Ward C, Ward D, Ward E, Ward F); nothing was imported\n"
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            '"Ward C" = "step-2", "Ward D" = "step-2", "Ward E" = "step-3", "Ward F" = "step-3"',
            '"Ward C" = "step-1", "Ward D" = "step-1", "Ward E" = "step-1", "Ward F" = "step-1"',
            "design.schedule: every cluster switches at the same stage, which the period effects cannot be told "
            "apart from: a stepped wedge needs at least two switching stages",
        ),
        (
            '"Ward A" = "step-1"',
            '"Ward A" = "step-9"',
            "design.schedule.\"Ward A\": no stage 'step-9' (stages: baseline, step-1, step-2, step-3)",
        ),
        (
            '"Ward A" = "step-1"',
            '"Ward A" = "baseline"',
            "design.schedule.\"Ward A\": the first stage ('baseline') is the baseline period: every cluster starts in the comparison arm",
        ),
        (
            'layout = "stepped-wedge"',
            'layout = "stepped"',
            "design.layout: expected parallel or stepped-wedge, got 'stepped'",
        ),
        (
            'kind = "binary"',
            'kind = "count"',
            "metrics[1].kind: a stepped-wedge pilot analyses continuous and binary metrics",
        ),
    ],
)
def test_stepped_wedge_keys_are_validated(rr, tmp_path, old, new, message):
    path = write(tmp_path, "bad.toml", STEPPED.replace(old, new))
    result = rr("pilot", "register", path)
    assert result.exit_code == 1
    assert f"{path}: {message}" in result.output


def test_the_pilot_report_shows_the_schedule(rr, tmp_path):
    registered(rr, tmp_path)
    imported(rr, tmp_path, 2)
    assert rr("report", "pilot", "P-1", "-o", "p.html").exit_code == 0
    html = (tmp_path / "p.html").read_text(encoding="utf-8")
    assert "A stepped wedge by ward" in html
    assert "Schedule: Ward A, Ward B at step-1; Ward C, Ward D at step-2; Ward E, Ward F at step-3." in html
    assert "not applicable: a stepped wedge" in rr("pilot", "analyse", "P-1").output


def test_a_reached_switch_cannot_move_but_a_later_cluster_may_join(rr, tmp_path):
    registered(rr, tmp_path)
    imported(rr, tmp_path, 2)  # at step-1
    moved = write(tmp_path, "moved.toml", STEPPED.replace('"Ward A" = "step-1"', '"Ward A" = "step-2"'))
    result = rr("pilot", "register", moved, "--amend", "--reason", "Ward A was late")
    assert result.exit_code == 1
    assert result.output == (
        "Error: amendment of P-1: the schedule of cluster 'Ward A' cannot change: its switching stage is reached "
        "(step-1 → step-2)\n"
    )
    joined = write(
        tmp_path,
        "joined.toml",
        STEPPED.replace('"Ward F" = "step-3"', '"Ward F" = "step-3", "Ward G" = "step-3"'),
    )
    result = rr("pilot", "register", joined, "--amend", "--reason", "a seventh ward joins")
    assert result.exit_code == 0, result.output


def test_the_terminal_names_the_wedge_and_pilot_show_gives_the_schedule(rr, tmp_path):
    registered(rr, tmp_path)
    imported(rr, tmp_path, 2)
    text = rr("pilot", "analyse", "P-1").output
    assert "stepped wedge by ward: 6 clusters, the stages are the periods (Hussey-Hughes model" in text
    design = rr.json("pilot", "show", "P-1")["protocol"]["design"]
    assert (design["unit"], design["layout"], design["cluster"]) == ("cluster", "stepped-wedge", "ward")
    assert design["schedule"]["Ward E"] == "step-3"
