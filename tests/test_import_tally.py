"""What an import keeps of its observations: the sufficient statistics and unit counts analyses read.

An analysis reads ``import_counts`` (per import, metric and arm) and ``import_units`` (per
import and arm) instead of the observations; these tests hold the kept numbers to the
values they summarise, and the analysis to the same result whichever way it counts.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from riskreg.ingest import UnitRuns
from riskreg.stats.summaries import ContinuousSummary
from riskreg.tally import GroupTally, tally_chunk
from tests.pilot_fixtures import LONG, registered, write

# --- the tallies ------------------------------------------------------------------------------

values = st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6)), max_size=60)


@settings(max_examples=200, deadline=None)
@given(values, st.sampled_from([0.0, 1e9, -3e7]), st.integers(1, 8))
def test_a_tally_summarises_its_values_as_welford_does(raw, offset, fold):
    from unittest import mock

    import riskreg.tally

    tally = GroupTally(continuous=True, count=False)
    with mock.patch.object(riskreg.tally, "FOLD_VALUES", fold):  # fold often: the parts must add up
        for value in raw:
            tally.add(None if value is None else value + offset, None)
        columns = tally.columns()
    present = [v + offset for v in raw if v is not None]
    assert (columns["n"], columns["missing"]) == (len(present), len(raw) - len(present))
    if not present:
        assert (columns["shift"], columns["sum_d"], columns["total"]) == (None, None, 0.0)
        return
    expected = ContinuousSummary.from_values(present)
    kept = ContinuousSummary.from_shifted_sums(
        columns["n"], columns["shift"], columns["sum_d"], columns["sum_d2"]
    )
    assert kept.mean == pytest.approx(expected.mean, rel=1e-12, abs=1e-9)
    assert kept.m2 == pytest.approx(expected.m2, rel=1e-9, abs=1e-6)
    assert columns["total"] == pytest.approx(math.fsum(present), rel=1e-14, abs=1e-9)


def test_a_tally_keeps_the_variance_of_values_near_1e9_with_a_spread_of_001():
    rng = np.random.default_rng(7)
    raw = 1e9 + rng.uniform(0.0, 0.01, 50_000)
    tally = GroupTally(continuous=True, count=False)
    for value in raw.tolist():
        tally.add(value, None)
    columns = tally.columns()
    kept = ContinuousSummary.from_shifted_sums(
        columns["n"], columns["shift"], columns["sum_d"], columns["sum_d2"]
    )
    assert kept.variance == pytest.approx(np.var(raw, ddof=1), rel=1e-6)


rows = st.lists(
    st.tuples(st.integers(0, 5), st.one_of(st.none(), st.integers(0, 9)), st.sampled_from([None, 0.5, 2.0])),
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(rows, st.integers(1, 20))
def test_a_chunk_handed_over_at_once_tallies_as_its_values_one_by_one(observations, chunk):
    """Six groups: 0-1 continuous, 2-3 binary, 4-5 count (with exposure)."""

    def tallies() -> dict[int, GroupTally]:
        return {g: GroupTally(continuous=g < 2, count=g >= 4) for g in range(6)}

    # as an import checks them: only counts have an exposure, and a present count has one
    observations = [(g, v, None if g < 4 else (e if v is None else e or 1.0)) for g, v, e in observations]
    one_by_one, chunked = tallies(), tallies()
    for group, value, exposure in observations:
        one_by_one[group].add(None if value is None else float(value), exposure)
    for start in range(0, len(observations), chunk):
        part = observations[start : start + chunk]
        groups = [g for g, _v, _e in part]
        floats = [math.nan if v is None else float(v) for _g, v, _e in part]
        tally_chunk(chunked, groups, floats, [e for _g, _v, e in part])
    for group in range(6):
        assert chunked[group].columns() == one_by_one[group].columns()
    for group in (4, 5):
        present = [(v, e) for g, v, e in observations if g == group and v is not None]
        assert one_by_one[group].columns()["exposure"] == math.fsum(e for _v, e in present)
        # Σ y²/t, for a quasi-Poisson dispersion: each fold's exact sum, added exactly
        y2_t = math.fsum(v * v / e for v, e in present)
        assert one_by_one[group].columns()["sum_y2_t"] == pytest.approx(y2_t, rel=1e-15, abs=0)
    assert [one_by_one[group].columns()["sum_y2_t"] for group in range(4)] == [None] * 4


units_rows = st.lists(st.tuples(st.sampled_from(["u1", "u2", "u3", "u4"]), st.integers(0, 1)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(units_rows, st.integers(1, 9), st.booleans())
def test_unit_runs_count_distinct_units_per_arm_exactly_or_not_at_all(unit_arms, chunk, sort):
    if sort:
        unit_arms = sorted(unit_arms)  # each unit's rows together: the count is always given
    runs = UnitRuns(2)
    for start in range(0, len(unit_arms), chunk):
        part = unit_arms[start : start + chunk]
        if start % 2:
            for unit, arm in part:
                runs.add(unit, arm)
        else:
            runs.add_column([u for u, _a in part], [a for _u, a in part])
    counted = runs.distinct()
    exact = [len({u for u, a in unit_arms if a == arm}) for arm in (0, 1)]
    assert counted == exact or (counted is None and not sort)
    runs.keys.close()


# --- through the command line ------------------------------------------------------------------


def _by_metric(long_text: str) -> str:
    """The same long file with its rows ordered by metric: units come back after other units."""
    header, *lines = long_text.strip().split("\n")
    return "\n".join([header, *sorted(lines, key=lambda line: line.split(",")[2])]) + "\n"


def _kept(db_url: str) -> tuple[list[tuple], list[tuple]]:
    engine = create_engine(db_url)
    with engine.connect() as connection:
        counts = connection.execute(
            text(
                "SELECT import_id, metric, arm, n, missing, total, exposure, shift, sum_d, sum_d2 "
                "FROM import_counts ORDER BY import_id, metric, arm"
            )
        ).all()
        units = connection.execute(text("SELECT import_id, arm, units FROM import_units ORDER BY 1, 2")).all()
    engine.dispose()
    return [tuple(row) for row in counts], [tuple(row) for row in units]


def _sql(db_url: str, statement: str, **values: object) -> None:
    engine = create_engine(db_url)
    with engine.begin() as connection:
        connection.execute(text(statement), values)
    engine.dispose()


def test_an_import_keeps_its_units_when_each_units_rows_come_together(rr, db_url, tmp_path):
    registered(rr, tmp_path)
    assert (
        rr("pilot", "data", "P-1", write(tmp_path, "long.csv", LONG), "--stage", "feasibility").exit_code == 0
    )
    counts, units = _kept(db_url)
    assert units == [(1, 0, 1), (1, 1, 2)]  # u1 in the comparison arm, u2 and u3 in the pilot arm
    wellbeing = [row for row in counts if row[1] == 0]
    # u1: 40 (comparison); u2: NA, u3: 44.5 (pilot); each group shifted by its first value
    assert wellbeing == [
        (1, 0, 0, 1, 0, 40.0, 0.0, 40.0, 0.0, 0.0),
        (1, 0, 1, 1, 1, 44.5, 0.0, 44.5, 0.0, 0.0),
    ]
    incidents = [row[:7] for row in counts if row[1] == 2]
    assert incidents == [(1, 2, 0, 1, 0, 0.0, 8.0), (1, 2, 1, 1, 1, 2.0, 7.5)]


def test_a_file_ordered_by_metric_gives_the_same_analysis_its_units_counted_from_observations(
    rr, db_url, tmp_path
):
    from tests.pilot_fixtures import PROTOCOL

    registered(rr, tmp_path)
    registered(rr, tmp_path, PROTOCOL.replace('key = "befriending"', 'key = "befriending-2"'))
    assert (
        rr("pilot", "data", "P-1", write(tmp_path, "long.csv", LONG), "--stage", "feasibility").exit_code == 0
    )
    path = write(tmp_path, "by-metric.csv", _by_metric(LONG))
    assert rr("pilot", "data", "P-2", path, "--stage", "feasibility").exit_code == 0
    # u1 comes back after u2 and u3 in the second file: no exact count while streaming
    assert _kept(db_url)[1] == [(1, 0, 1), (1, 1, 2)]
    by_unit, by_metric = rr.json("pilot", "analyse", "P-1"), rr.json("pilot", "analyse", "P-2")
    for key in ("recommendation", "reasons", "srm", "metrics", "criteria"):
        assert by_metric[key] == by_unit[key], key


def test_the_analysis_of_one_import_rests_on_what_it_kept(rr, db_url, tmp_path):
    """With the observations gone, an analysis of one import still gives the same answer: it never read them."""
    registered(rr, tmp_path)
    assert (
        rr("pilot", "data", "P-1", write(tmp_path, "long.csv", LONG), "--stage", "feasibility").exit_code == 0
    )
    analysis = rr.json("pilot", "analyse", "P-1")
    _sql(db_url, "DELETE FROM observations")
    assert rr.json("pilot", "analyse", "P-1") == analysis


def test_a_replace_that_trims_an_import_has_the_units_counted_from_the_observations(rr, db_url, tmp_path):
    registered(rr, tmp_path)
    assert (
        rr("pilot", "data", "P-1", write(tmp_path, "long.csv", LONG), "--stage", "feasibility").exit_code == 0
    )
    swap = "unit_id,arm,metric,value\nu4,comparison,wellbeing,41\nu5,comparison,wellbeing,39\nu3,pilot,wellbeing,45\n"
    path = write(tmp_path, "swap.csv", swap)
    assert rr("pilot", "data", "P-1", path, "--stage", "feasibility", "--replace").exit_code == 0
    assert _kept(db_url)[1] == [(2, 0, 2), (2, 1, 1)]  # the trimmed first import's count is gone
    analysis = rr.json("pilot", "analyse", "P-1")
    # comparison: u1 (readmitted, incidents) and u4, u5 (wellbeing); pilot: u2, u3
    assert analysis["srm"]["units"] == {"comparison": 3, "pilot": 2}
    wellbeing = analysis["metrics"][0]
    assert (wellbeing["n"], wellbeing["summary"]) == (
        {"comparison": 2, "pilot": 1},
        {"comparison": 40.0, "pilot": 45.0},
    )


def test_migration_0006_keeps_the_statistics_of_observations_imported_before_it(rr, db_url, tmp_path):
    from tests.test_schema import _migrate

    registered(rr, tmp_path)
    rng = random.Random(3)
    lines = []
    for i in range(40):
        arm = "pilot" if i % 2 else "comparison"
        lines += [
            f"u{i},{arm},wellbeing,{1e9 + rng.uniform(0, 0.01)!r},\n",
            f"u{i},{arm},incidents,{i % 3},{1 + i % 4}\n",
        ]
    path = write(tmp_path, "long.csv", "unit_id,arm,metric,value,exposure\n" + "".join(lines))
    assert rr("pilot", "data", "P-1", path, "--stage", "feasibility").exit_code == 0
    counts, units = _kept(db_url)
    analysis = rr.json("pilot", "analyse", "P-1")

    _migrate(db_url, "0005", down=True)
    assert rr.json("db", "upgrade")["changed"] is True
    migrated_counts, migrated_units = _kept(db_url)
    assert migrated_units == units
    for kept, migrated in zip(counts, migrated_counts, strict=True):
        assert kept[:5] == migrated[:5]
        assert migrated[5:7] == pytest.approx(kept[5:7], rel=1e-12)
        if kept[8] is not None:
            summaries = [ContinuousSummary.from_shifted_sums(row[3], *row[7:10]) for row in (kept, migrated)]
            assert summaries[1].mean == pytest.approx(summaries[0].mean, rel=1e-15)
            assert summaries[1].m2 == pytest.approx(summaries[0].m2, rel=1e-6)
    again = rr.json("pilot", "analyse", "P-1")
    assert again["srm"] == analysis["srm"]
    assert [m["n"] for m in again["metrics"]] == [m["n"] for m in analysis["metrics"]]
    for metric, before in zip(again["metrics"], analysis["metrics"], strict=True):
        for key in ("estimate", "p_value"):
            assert metric[key] == (
                None if before[key] is None else pytest.approx(before[key], rel=1e-6, abs=1e-12)
            )


def test_values_and_exposures_beyond_1e15_are_refused_with_their_lines(rr, db_url, tmp_path):
    """Such values are no real measure, and their squares would overflow the sums an import keeps."""
    registered(rr, tmp_path)
    text = (
        "unit_id,arm,metric,value,exposure\n"
        "u1,pilot,wellbeing,1e15,\n"  # the largest accepted
        "u2,pilot,wellbeing,-1.5e308,\n"
        "u3,pilot,incidents,1,2e15\n"
    )
    path = write(tmp_path, "huge.csv", text)
    result = rr("pilot", "data", "P-1", path, "--stage", "feasibility")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {path}: 2 rows rejected, nothing was imported\n"
        "  line 3: wellbeing: value is out of range (larger than 1e15 in size), got '-1.5e308'\n"
        "  line 4: incidents: exposure is out of range (larger than 1e15), got '2e15'\n",
    )
    assert _kept(db_url) == ([], [])


def test_an_analysis_of_earlier_data_too_large_to_summarise_is_a_one_line_error(rr, db_url, tmp_path):
    registered(rr, tmp_path)
    assert (
        rr("pilot", "data", "P-1", write(tmp_path, "long.csv", LONG), "--stage", "feasibility").exit_code == 0
    )
    # as data imported before the range check could hold: a sum of squares that overflowed
    _sql(db_url, "UPDATE import_counts SET sum_d2 = :inf WHERE metric = 0", inf=math.inf)
    result = rr("pilot", "analyse", "P-1")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: the data of befriending hold wellbeing values too large to summarise (beyond 1e15 in size); "
        "replace them with pilot data --replace\n",
    )
