"""riskreg.toml: rating bands, appetite per category, review days and their defaults."""

from __future__ import annotations

import datetime as dt

import pytest

from riskreg.config import Config, load_config
from riskreg.errors import ConfigError
from tests.conftest import Riskreg


def test_default_bands_follow_the_design():
    config = Config()
    assert [config.rating(s) for s in (1, 3, 4, 6, 8, 12, 15, 25)] == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
        "very high",
        "very high",
    ]


def test_configuration_beside_the_database_sets_bands_appetite_and_review_days(runner, tmp_path):
    (tmp_path / "riskreg.toml").write_text(
        'organisation = "Anytown Council"\n[ratings]\nlow = 4\n[appetite]\ndefault = 20\nsafeguarding = 6\n[review_days]\nmedium = 10\n'
    )
    rr = Riskreg(runner, f"sqlite:///{tmp_path / 'r.db'}")
    rr("init")
    safe = rr.json(
        "risk",
        "add",
        "A",
        "--side",
        "citizen",
        "--mode",
        "delivery",
        "--likelihood",
        "2",
        "--impact",
        "4",
        "--category",
        "safeguarding",
    )
    other = rr.json(
        "risk", "add", "B", "--side", "citizen", "--mode", "delivery", "--likelihood", "2", "--impact", "4"
    )
    low = rr.json(
        "risk", "add", "C", "--side", "citizen", "--mode", "delivery", "--likelihood", "2", "--impact", "2"
    )
    assert (safe["above_appetite"], other["above_appetite"]) == (True, False)
    assert (low["rating"], safe["rating"]) == ("low", "high")
    medium = rr.json(
        "risk", "add", "D", "--side", "citizen", "--mode", "delivery", "--likelihood", "5", "--impact", "1"
    )
    assert dt.date.fromisoformat(medium["next_review"]) - dt.date.fromisoformat(
        medium["last_reviewed"]
    ) == dt.timedelta(days=10)


def test_riskreg_config_variable_names_the_file(runner, tmp_path, monkeypatch):
    path = tmp_path / "elsewhere.toml"
    path.write_text("[appetite]\ndefault = 1\n")
    rr = Riskreg(runner, f"sqlite:///{tmp_path / 'r.db'}")
    rr("init")
    monkeypatch.setenv("RISKREG_CONFIG", str(path))
    assert (
        rr.json(
            "risk", "add", "A", "--side", "citizen", "--mode", "design", "--likelihood", "1", "--impact", "2"
        )["above_appetite"]
        is True
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "colour = 1\n",
            "colour: unknown key; known keys: organisation, citizen_hour_value, ratings, appetite, review_days, check, srm_threshold, missing_values, report",
        ),
        ("[ratings]\nhgh = 10\n", "ratings.hgh: unknown key; did you mean 'high'?"),
        (
            "[ratings]\nmedium = 2\n",
            "ratings: upper bounds must increase from low to very high and end at 25, got [3, 2, 12, 25]",
        ),
        ("[appetite]\nfinance = 0\n", "appetite.finance: expected a whole number from 1 to 25, got 0"),
        ("citizen_hour_value = -1\n", "citizen_hour_value: expected a number of at least 0, got -1"),
        ("[review_days]\nlow = true\n", "review_days.low: expected a whole number from 1 to 3660, got True"),
    ],
)
def test_invalid_configuration_names_the_key(tmp_path, text, message):
    path = tmp_path / "riskreg.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: {message}"
