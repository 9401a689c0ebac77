"""The database-built listing equals the Python definition of a risk, for every filter and sort."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest

from riskreg.config import Config
from riskreg.db import open_database
from riskreg.listing import list_risks_json
from riskreg.models import MODES, SIDES
from riskreg.register import Context, RiskFilter, add_risk, close_risk, list_risks, risk_to_dict

CONFIG = Config(
    bands={"low": 2, "medium": 6, "high": 12, "very high": 25},
    appetite={"default": 9, "safeguarding": 4, "finance": 16},
    review_days={"very high": 14, "high": 60, "medium": 120, "low": 400},
)


@pytest.fixture
def varied(db_url):
    database = open_database(db_url)
    rng = random.Random(7)
    with database.write() as session:
        ctx = Context("tester", CONFIG, now=dt.datetime(2026, 3, 1, 9, 30, 0, tzinfo=dt.UTC))
        for i in range(40):
            target = rng.random() < 0.5
            add_risk(
                session,
                ctx,
                {
                    "title": f"Risk {i} “quoted” \\ {'🔥' if i % 7 == 0 else ''}",
                    "side": rng.choice(SIDES),
                    "mode": rng.choice(MODES),
                    "likelihood": rng.randint(1, 5),
                    "impact": rng.randint(1, 5),
                    "category": rng.choice(["safeguarding", "finance", "general"]),
                    "owner": rng.choice([None, "Ana"]),
                    "target_likelihood": rng.randint(1, 5) if target else None,
                    "target_impact": rng.randint(1, 5) if target else None,
                    "review_days": rng.choice([None, None, 7]),
                },
            )
        later = Context("closer", CONFIG, now=dt.datetime(2026, 3, 2, 10, 0, 0, 5, tzinfo=dt.UTC))
        for ref in ("R-3", "R-10"):
            close_risk(session, later, ref, "done")
    yield database
    database.dispose()


FILTERS = [
    RiskFilter(),
    RiskFilter(side="citizen"),
    RiskFilter(mode="design", status="open"),
    RiskFilter(category="Safeguarding"),
    RiskFilter(status="closed"),
    RiskFilter(rating="very-high"),
    RiskFilter(rating="low"),
    RiskFilter(above_appetite=True),
]


@pytest.mark.parametrize("sort", ["id", "score", "review"])
def test_sql_listing_equals_python_definition(varied, sort):
    with varied.read() as session:
        for where in FILTERS:
            expected = [risk_to_dict(r, CONFIG) for r in list_risks(session, CONFIG, where, sort)]
            assert json.loads(list_risks_json(session, CONFIG, where, sort)) == expected, where


def test_empty_listing_is_an_empty_array(db_url):
    database = open_database(db_url)
    with database.read() as session:
        assert json.loads(list_risks_json(session, CONFIG)) == []
    database.dispose()
