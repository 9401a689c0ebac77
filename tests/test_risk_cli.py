"""The risk register through the CLI, on both backends."""

from __future__ import annotations

import json

import pytest

from tests.conftest import intact
from tests.risk_fixtures import risk_add

RISK_KEYS = {
    "id", "title", "side", "mode", "category", "owner", "status", "treatment", "likelihood", "impact",
    "score", "rating", "inherent", "target", "above_appetite", "next_review", "version",
}  # fmt: skip


def add(
    rr, title="Volunteers miss safeguarding signs", *extra: str, side="citizen", likelihood="3", impact="4"
):
    return rr.json(*risk_add(title, *extra, side=side, mode="delivery", likelihood=likelihood, impact=impact))


def test_add_prints_the_new_risk_with_design_keys(rr):
    risk = add(
        rr,
        "Caseloads delay welfare calls",
        "--category",
        "Safeguarding",
        "--target-likelihood",
        "2",
        "--target-impact",
        "2",
    )
    assert set(risk) >= RISK_KEYS
    assert (risk["id"], risk["score"], risk["rating"], risk["category"]) == (
        "R-1",
        12,
        "high",
        "safeguarding",
    )
    assert risk["inherent"] == {"likelihood": 3, "impact": 4, "score": 12, "rating": "high"}
    assert risk["target"] == {"likelihood": 2, "impact": 2, "score": 4, "rating": "medium"}
    assert risk["version"] == 1


def test_identifiers_increase_and_survive_closing(rr):
    assert [add(rr, f"risk {i}")["id"] for i in range(3)] == ["R-1", "R-2", "R-3"]
    rr("risk", "close", "R-3", "--reason", "gone")
    assert add(rr, "next")["id"] == "R-4"


def test_rescore_changes_current_tier_only_and_bumps_version(rr):
    add(rr)
    risk = rr.json(
        "risk", "rescore", "R-1", "--likelihood", "2", "--impact", "4", "--reason", "Peer checks in place"
    )
    assert (risk["likelihood"], risk["impact"], risk["score"], risk["version"]) == (2, 4, 8, 2)
    assert risk["inherent"]["score"] == 12


def test_list_filters_and_sorts(rr):
    add(rr, "a", side="citizen", likelihood="1", impact="2")
    add(rr, "b", side="professional", likelihood="5", impact="5")
    add(rr, "c", side="shared", likelihood="3", impact="3")
    assert [r["id"] for r in rr.json("risk", "list", "--sort", "score")] == ["R-2", "R-3", "R-1"]
    assert [r["id"] for r in rr.json("risk", "list", "--side", "professional")] == ["R-2"]
    assert [r["id"] for r in rr.json("risk", "list", "--rating", "very-high")] == ["R-2"]
    assert [r["id"] for r in rr.json("risk", "list", "--above-appetite")] == ["R-2"]
    assert [r["id"] for r in rr.json("risk", "list", "--sort", "review")] == ["R-2", "R-3", "R-1"]


def test_list_by_status(rr):
    add(rr, "a")
    add(rr, "b")
    rr("risk", "close", "R-1", "--reason", "mitigated for good")
    assert [r["id"] for r in rr.json("risk", "list", "--status", "open")] == ["R-2"]
    assert [r["id"] for r in rr.json("risk", "list", "--status", "closed")] == ["R-1"]


def test_next_review_follows_rating_review_days(rr):
    risk = add(rr, likelihood="5", impact="5")
    created = risk["last_reviewed"]
    import datetime as dt

    assert dt.date.fromisoformat(risk["next_review"]) - dt.date.fromisoformat(created) == dt.timedelta(
        days=30
    )
    risk = add(rr, "own interval", "--review-days", "7", likelihood="1", impact="1")
    assert dt.date.fromisoformat(risk["next_review"]) - dt.date.fromisoformat(created) == dt.timedelta(days=7)


def test_update_changes_fields_and_records_reason(rr):
    add(rr)
    risk = rr.json(
        "risk",
        "update",
        "R-1",
        "--owner",
        "Head of Adult Services",
        "--treatment",
        "test",
        "--reason",
        "New owner",
    )
    assert (risk["owner"], risk["treatment"], risk["version"]) == ("Head of Adult Services", "test", 2)
    history = rr.json("risk", "history", "R-1")
    assert [e["action"] for e in history] == ["risk.add", "risk.update"]
    assert history[1]["reason"] == "New owner"
    assert history[1]["changes"] == {"owner": [None, "Head of Adult Services"], "treatment": [None, "test"]}


def test_closed_risk_cannot_be_rescored(rr):
    add(rr)
    rr("risk", "close", "R-1", "--reason", "done")
    result = rr("risk", "rescore", "R-1", "--likelihood", "1", "--impact", "1", "--reason", "x")
    assert (result.exit_code, result.stderr) == (1, "Error: R-1 is closed; closed risks cannot be changed\n")


def test_stale_expect_version_names_who_changed_it(rr):
    add(rr)
    rr("risk", "rescore", "R-1", "--likelihood", "2", "--impact", "2", "--reason", "x", actor="bob")
    result = rr(
        "risk",
        "rescore",
        "R-1",
        "--likelihood",
        "4",
        "--impact",
        "4",
        "--reason",
        "y",
        "--expect-version",
        "1",
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: R-1 was changed by bob at ")
    assert "(now version 2, you expected 1); nothing was saved" in result.stderr
    assert rr.json("risk", "show", "R-1")["score"] == 4


def test_controls_are_added_updated_and_shown(rr):
    add(rr)
    control = rr.json("control", "add", "R-1", "Peer check of visit logs", "--citizen", "--due", "2027-01-31")
    assert (control["id"], control["risk"], control["status"], control["citizen"], control["due"]) == (
        "C-1",
        "R-1",
        "planned",
        True,
        "2027-01-31",
    )
    rr("control", "update", "C-1", "--status", "in-place", "--reason", "Training delivered")
    shown = rr.json("risk", "show", "R-1")
    assert [(c["id"], c["status"]) for c in shown["controls"]] == [("C-1", "in-place")]
    assert [e["action"] for e in rr.json("risk", "history", "R-1")] == [
        "risk.add",
        "control.add",
        "control.update",
    ]


@pytest.mark.parametrize(
    "title",
    [
        "Gwirfoddolwyr heb hyfforddiant diogelu — ŵ ŷ",
        "مخاطر التطوع",
        "Burnout 🔥 of \"peer\" 'mentors'",
        "<script>alert(1)</script>",
    ],
)
def test_unicode_and_quotes_round_trip(rr, title):
    add(rr, title)
    assert rr.json("risk", "show", "R-1")["title"] == title
    assert title in rr("risk", "list").stdout


def test_text_output_is_readable(rr):
    add(rr)
    out = rr("risk", "show", "R-1").stdout
    assert "current:     3×4 = 12 (high)" in out
    assert "R-1" in rr("risk", "list").stdout


def test_audit_verify_passes_on_untouched_chain(rr):
    add(rr)
    rr("risk", "rescore", "R-1", "--likelihood", "1", "--impact", "1", "--reason", "x")
    result = rr("audit", "verify")
    head = rr.json("audit", "verify")["head"]
    assert (result.exit_code, result.stdout) == (
        0,
        "audit chain intact: 2 events\n"
        f"head: {head['seal']} (event 2, hash {head['hash']})\n"
        "register matches the trail: 1 risk, 0 controls, 0 pilots, 0 data files\n"
        "and so do 0 protocol texts, 0 risk links, 0 gate decisions, 0 reviews, 0 evidence records\n",
    )
    assert rr.json("audit", "verify") == intact(2, risks=1)


def test_json_is_one_document(rr):
    add(rr)
    result = rr("risk", "list", "--json")
    assert isinstance(json.loads(result.stdout), list)
