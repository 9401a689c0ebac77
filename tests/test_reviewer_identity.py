"""Reviewer ≠ owner on normalised identities, over the whole review period (issue 15)."""

from __future__ import annotations

import datetime as dt

import pytest

from riskreg.reviews import identity_key
from tests.conftest import Riskreg
from tests.risk_fixtures import risk_add

OWNS = "Error: {who} owns R-1; a review must be recorded by someone other than the owner\n"
OWNED = (
    "Error: {who} owned R-1 {period}; a review must be recorded by someone who has not owned the "
    "risk in the period under review\n"
)


def _review(rr: Riskreg, who: str):  # type: ignore[no-untyped-def]
    return rr("review", "record", "R-1", "--outcome", "confirmed", "--note", "checked", actor=who)


def _written(rr: Riskreg) -> tuple[int, int]:
    """The number of events and of reviews of R-1: what a refused review must leave as it was."""
    return rr.json("audit", "verify")["events"], len(rr.json("risk", "show", "R-1")["reviews"])


def _refused(rr: Riskreg, who: str, message: str) -> None:
    before = _written(rr)
    result = _review(rr, who)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", message)
    assert _written(rr) == before


@pytest.mark.parametrize(
    ("name", "same"),
    [
        ("  ana   SMITH ", True),
        ("Ana Smi\u200bth", True),  # zero-width space
        ("\ufeffAna Smith\u2060", True),  # byte-order mark, word joiner
        ("ＡＮＡ ＳＭＩＴＨ", True),  # full-width letters (NFKC)
        ("Ana Smith\u00ad", True),  # soft hyphen
        ("ANA SMİTH", False),  # dotted capital I is another letter after casefolding
        ("Anna Smith", False),
        ("", False),
    ],
)
def test_identity_key_folds_what_a_reader_cannot_see(name, same):
    assert (identity_key(name) == identity_key("Ana Smith") and bool(identity_key(name))) is same


@pytest.mark.parametrize(
    "disguised",
    ["ana smith", "  Ana  Smith  ", "Ana Smi\u200bth", "\ufeffANA SMITH", "ＡＮＡ ＳＭＩＴＨ"],
)
def test_the_owner_is_refused_under_any_spelling_of_their_name(rr, disguised):
    rr(*risk_add("Volunteers miss signs", "--owner", "Ana Smith"))
    _refused(rr, disguised, OWNS.format(who=disguised))


def test_an_owner_who_handed_the_risk_over_cannot_review_it_until_the_next_period(rr):
    assert rr(*risk_add("Volunteers miss signs", "--owner", "Ana")).exit_code == 0
    rr("risk", "update", "R-1", "--owner", "Bob", "--reason", "handover", actor="ana")
    # Ana owned R-1 when it was added: handing it to Bob does not make her independent
    _refused(rr, "ana", OWNED.format(who="ana", period="since it was added"))
    _refused(rr, "Bob", OWNS.format(who="Bob"))
    assert _review(rr, "Carol").exit_code == 0
    # a new period began with Carol's review, during which only Bob owned it
    assert _review(rr, "Ana").exit_code == 0


def test_reassigning_for_a_review_and_back_is_refused(rr):
    assert rr(*risk_add("Volunteers miss signs", "--owner", "Bob")).exit_code == 0
    assert _review(rr, "Carol").exit_code == 0
    today = dt.datetime.now(dt.UTC).date().isoformat()
    rr("risk", "update", "R-1", "--owner", "Ana", "--reason", "cover", actor="ana")
    rr("risk", "update", "R-1", "--owner", "Bob", "--reason", "back", actor="ana")
    _refused(rr, "ANA", OWNED.format(who="ANA", period=f"since its last review on {today}"))
    # a period's first owner counts too: Bob owned R-1 at Carol's review and then handed it on
    rr("risk", "update", "R-1", "--owner", "Dee", "--reason", "handover", actor="bob")
    _refused(rr, "bob", OWNED.format(who="bob", period=f"since its last review on {today}"))
    assert _review(rr, "Carol").exit_code == 0


def test_a_risk_with_no_owner_can_be_reviewed_by_anyone_who_never_owned_it(rr):
    assert rr(*risk_add("Nobody's")).exit_code == 0
    assert _review(rr, "Carol").exit_code == 0
