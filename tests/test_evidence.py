"""Re-scoring a risk on a pilot's evidence: which result is stored, and refusals."""

from __future__ import annotations

from tests.pilot_fixtures import LONG, registered, write
from tests.test_qa import add

RESCORE = ("risk", "rescore", "R-1", "--likelihood", "1", "--impact", "3", "--reason", "pilot result")


def _linked_with_data(rr, tmp_path) -> None:
    add(rr, "Volunteers miss safeguarding signs")
    registered(rr, tmp_path)
    rr("pilot", "link", "P-1", "R-1")
    assert rr("pilot", "data", "P-1", write(tmp_path, "d.csv", LONG), "--stage", "feasibility").exit_code == 0


def test_evidence_is_the_primary_metric_unless_another_is_named(rr, tmp_path):
    _linked_with_data(rr, tmp_path)
    assert rr.json(*RESCORE, "--evidence", "P-1")["evidence"]["metric"] == "wellbeing"
    stored = rr.json(*RESCORE, "--evidence", "P-1", "--metric", "incidents")["evidence"]
    assert (stored["metric"], stored["n"]) == ("incidents", {"comparison": 1, "pilot": 1})
    assert [e["metric"] for e in rr.json("risk", "show", "R-1")["evidence"]] == ["wellbeing", "incidents"]


def test_an_unknown_metric_is_refused_and_nothing_changes(rr, tmp_path):
    _linked_with_data(rr, tmp_path)
    before = rr.json("risk", "show", "R-1")
    result = rr(*RESCORE, "--evidence", "P-1", "--metric", "welbeing")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: P-1 has no metric 'welbeing' (metrics: wellbeing, readmitted, incidents)\n",
    )
    assert rr.json("risk", "show", "R-1") == before


def test_metric_without_evidence_is_a_usage_error(rr, tmp_path):
    _linked_with_data(rr, tmp_path)
    before = rr.json("risk", "show", "R-1")
    result = rr(*RESCORE, "--metric", "incidents")
    assert result.exit_code == 2
    assert "--metric names a metric of the --evidence pilot; give --evidence P-N too" in result.stderr
    assert rr.json("risk", "show", "R-1") == before
