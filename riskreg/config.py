"""Configuration from an optional ``riskreg.toml``: rating bands, appetite, review days, valuations."""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from riskreg.errors import ConfigError

RATINGS = ("low", "medium", "high", "very high")
DEFAULT_BANDS = {"low": 3, "medium": 6, "high": 12, "very high": 25}
DEFAULT_REVIEW_DAYS = {"very high": 30, "high": 90, "medium": 180, "low": 365}
DEFAULT_APPETITE = 12
DEFAULT_CITIZEN_HOUR_VALUE = 12.21
DEFAULT_SRM_THRESHOLD = 0.01  # exact false-alarm rate under 1 % per analysis (README: sample ratio)
TOP_LEVEL_KEYS = (
    "organisation",
    "citizen_hour_value",
    "ratings",
    "appetite",
    "review_days",
    "check",
    "srm_threshold",
    "missing_values",
    "report",
)
# Governed settings (schema 0011): kept in the database's settings table, changed with
# `riskreg config set KEY VALUE --reason` and audited. riskreg.toml keeps the local keys; a
# governed key still in the file keeps working unless the database holds the same key, which wins.
GOVERNED_KEYS = (
    "organisation",
    "currency",
    "citizen_hour_value",
    "ratings",
    "appetite",
    "appetite_statement",
    "review_days",
    "categories",
)
GOVERNED_TABLES = ("ratings", "appetite", "review_days")
# governed keys that only the database holds (riskreg.toml refuses them, as before 0011)
DATABASE_ONLY_KEYS = ("currency", "appetite_statement", "categories")
DEFAULT_CURRENCY = "GBP"
# the words of a data file's cell that mean "missing" (compared case-insensitively)
DEFAULT_MISSING_VALUES = ("", "NA", "N/A", "#N/A", "-", ".")
CHECK_KEYS = ("overdue_error_days", "one_sided_ratio", "severity")
SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True, eq=False)
class Config:
    """Settings that shape scores, reviews and reports; every field has a documented default."""

    organisation: str = "riskreg"
    currency: str = DEFAULT_CURRENCY
    appetite_statement: str = ""
    # the governed list of risk categories; empty means any category is allowed
    categories: tuple[str, ...] = ()
    citizen_hour_value: float = DEFAULT_CITIZEN_HOUR_VALUE
    # upper score bound of each band, in RATINGS order
    bands: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_BANDS))
    appetite: dict[str, int] = field(default_factory=lambda: {"default": DEFAULT_APPETITE})
    review_days: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_REVIEW_DAYS))
    # riskreg check: overdue by more than this many days is an error, not a warning
    overdue_error_days: int = 90
    # a register is one-sided when one side has fewer than this share of the other's risks
    one_sided_ratio: float = 0.5
    severity: dict[str, str] = field(default_factory=dict)  # rule name -> error | warning | info
    # pilot analyses flag a sample-ratio mismatch when the exact test's p falls below this
    srm_threshold: float = DEFAULT_SRM_THRESHOLD
    # outcome data cells with these words (any case) are missing values
    missing_values: tuple[str, ...] = DEFAULT_MISSING_VALUES
    source: str | None = None

    def rating(self, score: int) -> str:
        """Return the band (low, medium, high, very high) that a score falls in."""
        return self._rating_by_score[score]

    @cached_property
    def _rating_by_score(self) -> tuple[str, ...]:
        # listings rate thousands of risks: look the 25 possible scores up instead of scanning bands
        return ("", *(next(n for n in RATINGS if s <= self.bands[n]) for s in range(1, 26)))

    def appetite_for(self, category: str) -> int:
        """Return the highest acceptable current score for a category."""
        return self.appetite.get(category, self.appetite["default"])

    def review_days_for(self, rating: str) -> int:
        """Return how many days may pass between reviews of a risk with this rating."""
        return self.review_days[rating]


def config_path(database_url: str) -> Path | None:
    """Return the configuration file: ``RISKREG_CONFIG``, else ``riskreg.toml`` beside the database."""
    explicit = os.environ.get("RISKREG_CONFIG")
    if explicit:
        return Path(explicit)
    folder = Path.cwd()
    if database_url.startswith("sqlite:///") and database_url not in ("sqlite:///", "sqlite:///:memory:"):
        folder = Path(database_url.removeprefix("sqlite:///").split("?")[0]).resolve().parent
    candidate = folder / "riskreg.toml"
    return candidate if candidate.exists() else None


# The starter riskreg.toml that `riskreg init` writes beside a new SQLite register. Every
# setting is commented out at its default, so the file changes nothing until one is uncommented.
STARTER_CONFIG = f"""\
# riskreg settings for the register in this folder (see the README, Configuration).
# Everything is commented out, so the defaults apply: remove the # in front of a setting
# (and of its [table] line) to change it. Numbers shown are the defaults; the organisation,
# the safeguarding appetite and the no-owner severity are examples. Unknown keys are refused.
# Governed settings (organisation, citizen_hour_value, appetite, ratings, review_days) are
# better set in the register itself: riskreg config set KEY VALUE --reason TEXT (the
# database's value wins over this file's; see riskreg config show).

# The name shown in reports.
# organisation = "Anytown Council"

# The value of an unpaid citizen hour, for pilot costs.
# citizen_hour_value = {DEFAULT_CITIZEN_HOUR_VALUE}

# Pilot analyses flag a sample-ratio mismatch when the exact test's p is below this.
# srm_threshold = {DEFAULT_SRM_THRESHOLD}

# The highest acceptable current score (1-25): default, and per category.
# [appetite]
# default = {DEFAULT_APPETITE}
# safeguarding = 6

# The board report's cover (each has a `riskreg report board` option of the same name).
# [report]
# meeting = "Board meeting in public"
# meeting_date = "2027-01-20"
# lead = "Director of Adult Services"
# purpose = "decision"        # decision, assurance or information
# marking = "OFFICIAL"        # protective marking at the top of every printed page

# The upper score of each rating band; they must increase and end at 25.
# [ratings]
# low = {DEFAULT_BANDS["low"]}
# medium = {DEFAULT_BANDS["medium"]}
# high = {DEFAULT_BANDS["high"]}
# "very high" = {DEFAULT_BANDS["very high"]}

# Days between reviews, by current rating.
# [review_days]
# "very high" = {DEFAULT_REVIEW_DAYS["very high"]}
# high = {DEFAULT_REVIEW_DAYS["high"]}
# medium = {DEFAULT_REVIEW_DAYS["medium"]}
# low = {DEFAULT_REVIEW_DAYS["low"]}

# riskreg check: a review overdue by more than overdue_error_days is an error (else a
# warning); a side with fewer than one_sided_ratio of the other side's risks is thin.
# [check]
# overdue_error_days = {Config.overdue_error_days}
# one_sided_ratio = {Config.one_sided_ratio}

# Any QA rule's severity: error, warning or info.
# [check.severity]
# no-owner = "error"
"""


def write_starter_config(path: Path) -> bool:
    """Write the commented starter configuration at ``path`` unless a file is there; return whether it did."""
    try:
        with path.open("x", encoding="utf-8") as out:
            out.write(STARTER_CONFIG)
    except FileExistsError:
        return False
    return True


def load_config(path: Path | None) -> Config:
    """Read and validate a configuration file; ``None`` gives the defaults."""
    if path is None:
        return Config()
    return _build(read_config_file(path), str(path))


def nest(governed: dict[str, Any]) -> dict[str, Any]:
    """Turn flat governed keys (``appetite.safeguarding``) into the file's nested shape."""
    raw: dict[str, Any] = {}
    for key, value in governed.items():
        top, _, leaf = key.partition(".")
        if leaf:
            raw.setdefault(top, {})[leaf] = value
        else:
            raw[top] = value
    return raw


def flatten_governed(raw: dict[str, Any]) -> dict[str, Any]:
    """Return the governed keys of a file's settings as flat keys (``ratings.low``)."""
    flat: dict[str, Any] = {}
    for top in GOVERNED_KEYS:
        if top not in raw:
            continue
        if top in GOVERNED_TABLES and isinstance(raw[top], dict):
            for leaf, value in raw[top].items():
                flat[f"{top}.{leaf}"] = value
        else:
            flat[top] = raw[top]
    return flat


def merged_config(file_raw: dict[str, Any], governed: dict[str, Any], source: str) -> Config:
    """Defaults <- the file's keys <- the database's governed keys (flat), validated as one file is."""
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in file_raw.items()}
    for top, value in nest(governed).items():
        if isinstance(value, dict) and isinstance(raw.get(top), dict):
            raw[top].update(value)
        else:
            raw[top] = value
    return _build(raw, source, (*TOP_LEVEL_KEYS, *DATABASE_ONLY_KEYS))


def read_config_file(path: Path | None) -> dict[str, Any]:
    """Return a configuration file's settings as parsed TOML (empty for ``None``); unreadable is a ConfigError."""
    if path is None:
        return {}
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return raw


def _build(raw: dict[str, Any], source: str, known: tuple[str, ...] = TOP_LEVEL_KEYS) -> Config:
    _reject_unknown(raw, known, source, "")
    bands = _score_table(raw, "ratings", RATINGS, DEFAULT_BANDS, source, upper=25)
    _check_bands_increase(bands, source)
    review_days = _score_table(raw, "review_days", RATINGS, DEFAULT_REVIEW_DAYS, source, upper=3660)
    appetite = {"default": DEFAULT_APPETITE}
    appetite.update(_int_table(raw.get("appetite", {}), "appetite", source, upper=25))
    check = _check_table(raw.get("check", {}), source)
    # [report] (meeting, lead, purpose, marking) is read and checked key by key where the board
    # report is built (riskreg.board_paper.read_report_settings); here only its shape.
    if not isinstance(raw.get("report", {}), dict):
        raise ConfigError(f"{source}: report: expected a table [report]")
    return Config(
        **check,
        organisation=_string(raw, "organisation", "riskreg", source),
        currency=_string(raw, "currency", DEFAULT_CURRENCY, source),
        appetite_statement=_statement(raw, source),
        categories=_categories(raw, source),
        citizen_hour_value=_money(raw, "citizen_hour_value", source),
        bands=bands,
        appetite=appetite,
        review_days=review_days,
        srm_threshold=_srm_threshold(raw, source),
        missing_values=_missing_values(raw, source),
        source=source,
    )


def _srm_threshold(raw: dict[str, Any], source: str) -> float:
    value = raw.get("srm_threshold", DEFAULT_SRM_THRESHOLD)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 0.5:
        raise ConfigError(f"{source}: srm_threshold: expected a number above 0 and below 0.5, got {value!r}")
    return float(value)


def _missing_values(raw: dict[str, Any], source: str) -> tuple[str, ...]:
    value = raw.get("missing_values", DEFAULT_MISSING_VALUES)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{source}: missing_values: expected a list of strings, got {value!r}")
    for word in value:
        if word != word.strip() or "\x00" in word:
            raise ConfigError(
                f"{source}: missing_values: {word!r}: cells are compared trimmed; remove the spaces"
            )
        if word.lower() in ("0", "1", "true", "false", "yes", "no") or any(c.isdigit() for c in word):
            raise ConfigError(
                f"{source}: missing_values: {word!r} could be a value; choose a word without digits"
            )
    return tuple(dict.fromkeys(value))


def _check_table(table: Any, source: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: check: expected a table like [check]")
    _reject_unknown(table, CHECK_KEYS, source, "check.")
    values: dict[str, Any] = {}
    if "overdue_error_days" in table:
        values["overdue_error_days"] = _int_table(
            {"overdue_error_days": table["overdue_error_days"]}, "check", source, upper=3660
        )["overdue_error_days"]
    if "one_sided_ratio" in table:
        ratio = table["one_sided_ratio"]
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio <= 1:
            raise ConfigError(
                f"{source}: check.one_sided_ratio: expected a number above 0 and at most 1, got {ratio!r}"
            )
        values["one_sided_ratio"] = float(ratio)
    severity = table.get("severity", {})
    if not isinstance(severity, dict):
        raise ConfigError(f"{source}: check.severity: expected a table like [check.severity]")
    for rule, level in severity.items():
        if level not in SEVERITIES:
            raise ConfigError(
                f"{source}: check.severity.{rule}: expected one of {', '.join(SEVERITIES)}, got {level!r}"
            )
    values["severity"] = dict(severity)
    return values


def _reject_unknown(table: dict[str, Any], known: tuple[str, ...], source: str, prefix: str) -> None:
    for key in table:
        if key not in known:
            hint = difflib.get_close_matches(key, known, n=1)
            tail = f"; did you mean '{hint[0]}'?" if hint else f"; known keys: {', '.join(known)}"
            raise ConfigError(f"{source}: {prefix}{key}: unknown key{tail}")


def _score_table(
    raw: dict[str, Any], name: str, keys: tuple[str, ...], default: dict[str, int], source: str, upper: int
) -> dict[str, int]:
    table = raw.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: {name}: expected a table like [{name}]")
    _reject_unknown(table, keys, source, f"{name}.")
    merged = dict(default)
    merged.update(_int_table(table, name, source, upper))
    return merged


def _int_table(table: Any, name: str, source: str, upper: int) -> dict[str, int]:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: {name}: expected a table like [{name}]")
    values = {}
    for key, value in table.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
            raise ConfigError(
                f"{source}: {name}.{key}: expected a whole number from 1 to {upper}, got {value!r}"
            )
        values[key] = value
    return values


def _check_bands_increase(bands: dict[str, int], source: str) -> None:
    bounds = [bands[name] for name in RATINGS]
    if bounds != sorted(set(bounds)) or bounds[-1] != 25:
        raise ConfigError(
            f"{source}: ratings: upper bounds must increase from low to very high and end at 25, got {bounds}"
        )


def _string(raw: dict[str, Any], key: str, default: str, source: str) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{source}: {key}: expected a non-empty string, got {value!r}")
    return value


def _money(raw: dict[str, Any], key: str, source: str) -> float:
    value = raw.get(key, DEFAULT_CITIZEN_HOUR_VALUE)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{source}: {key}: expected a number of at least 0, got {value!r}")
    return float(value)


def _statement(raw: dict[str, Any], source: str) -> str:
    value = raw.get("appetite_statement", "")
    if not isinstance(value, str) or len(value) > 10_000:
        raise ConfigError(
            f"{source}: appetite_statement: expected text (at most 10000 characters), got {value!r}"
        )
    return value.strip()


def _categories(raw: dict[str, Any], source: str) -> tuple[str, ...]:
    value = raw.get("categories", [])
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{source}: categories: expected a list of category names, got {value!r}")
    names = [v.strip().lower() for v in value]
    for name in names:
        if not name or len(name) > 100:
            raise ConfigError(f"{source}: categories: {name!r}: expected a name of 1 to 100 characters")
    return tuple(dict.fromkeys(names))
