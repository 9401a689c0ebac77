"""A risk's fields and documents, apart from the ORM.

Checking the fields a new or changed risk is given, the values a new risk is stored with,
and the JSON documents of risks, controls, reviews, evidence and actions, for ORM objects and
Core rows alike. ``riskreg.register``, ``reviews``, ``evidence`` and ``actions`` re-export
what they used to define; ``risk show`` and ``risk add`` (``riskreg.riskcore``) use them
without importing the ORM.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from riskreg.config import Config
from riskreg.errors import InvalidInput
from riskreg.tables import risks
from riskreg.vocab import MODES, SIDES, TREATMENTS

if TYPE_CHECKING:
    from riskreg.context import Context

DEFAULT_CATEGORY = "general"
MAX_TITLE = 500
# stored risk fields that a snapshot (event before/after) records
SNAPSHOT_FIELDS = (
    "title",
    "description",
    "side",
    "mode",
    "category",
    "owner",
    "status",
    "treatment",
    "inherent_likelihood",
    "inherent_impact",
    "likelihood",
    "impact",
    "target_likelihood",
    "target_impact",
    "review_days",
    "version",
    "gaps_in_control",
    "gaps_in_assurance",
)


# --- identifiers ---------------------------------------------------------------------------

_REF = re.compile(r"^\s*([A-Za-z])-?(\d{1,9})\s*$")


def parse_ref(text: str, prefix: str) -> int:
    """Return the number of an identifier such as ``R-3`` (``r-3`` and ``R3`` are accepted)."""
    match = _REF.match(text or "")
    if not match or match.group(1).upper() != prefix:
        raise InvalidInput(
            f"not a {_KIND[prefix]} id: {text!r} (expected {prefix}-<number>, e.g. {prefix}-1)"
        )
    return int(match.group(2))


_KIND = {"R": "risk", "C": "control", "P": "pilot", "A": "action"}


# --- validation ----------------------------------------------------------------------------


def _choice(name: str, value: Any, allowed: tuple[str, ...], optional: bool = False) -> str | None:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        if optional:
            return None
        raise InvalidInput(f"{name}: required, one of {', '.join(allowed)}")
    text = str(value).strip().lower()
    if text not in allowed:
        raise InvalidInput(f"{name}: expected one of {', '.join(allowed)}, got {value!r}")
    return text


def _score(name: str, value: Any, optional: bool = False) -> int | None:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        if optional:
            return None
        raise InvalidInput(f"{name}: required, a whole number from 1 to 5")
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        number = None
    if isinstance(value, bool) or number is None or not 1 <= number <= 5:
        raise InvalidInput(f"{name}: expected a whole number from 1 to 5, got {value!r}")
    return number


def _text(name: str, value: Any, optional: bool = True, limit: int = 10_000) -> str | None:
    if value is None or str(value).strip() == "":
        if optional:
            return None
        raise InvalidInput(f"{name}: must not be empty")
    text = str(value)
    if "\x00" in text:
        raise InvalidInput(f"{name}: contains a NUL character")
    if len(text) > limit:
        raise InvalidInput(f"{name}: longer than {limit} characters")
    return text.strip()


def _positive_days(value: Any) -> int | None:
    if value is None or str(value).strip() == "":
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        number = 0
    if number <= 0 or number > 3660:
        raise InvalidInput(f"review_days: expected a whole number of days from 1 to 3660, got {value!r}")
    return number


_VALIDATORS = {
    "title": lambda v: _text("title", v, optional=False, limit=MAX_TITLE),
    "description": lambda v: _text("description", v),
    "side": lambda v: _choice("side", v, SIDES),
    "mode": lambda v: _choice("mode", v, MODES),
    "category": lambda v: (_text("category", v, limit=100) or DEFAULT_CATEGORY).lower(),
    "owner": lambda v: _text("owner", v, limit=200),
    "treatment": lambda v: _choice("treatment", v, TREATMENTS, optional=True),
    "likelihood": lambda v: _score("likelihood", v),
    "impact": lambda v: _score("impact", v),
    "inherent_likelihood": lambda v: _score("inherent_likelihood", v),
    "inherent_impact": lambda v: _score("inherent_impact", v),
    "target_likelihood": lambda v: _score("target_likelihood", v, optional=True),
    "target_impact": lambda v: _score("target_impact", v, optional=True),
    "review_days": _positive_days,
    "gaps_in_control": lambda v: _text("gaps_in_control", v, limit=5000),
    "gaps_in_assurance": lambda v: _text("gaps_in_assurance", v, limit=5000),
}


def validate_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """Return the given risk fields checked and normalised; raise InvalidInput naming the first bad one."""
    return {name: _VALIDATORS[name](value) for name, value in values.items()}


def _check_target_pair(likelihood: int | None, impact: int | None) -> None:
    if (likelihood is None) != (impact is None):
        raise InvalidInput("target: give both target likelihood and target impact, or neither")


def new_risk_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """Return the checked fields of a new risk; inherent likelihood and impact default to the current ones."""
    given = {k: v for k, v in values.items() if v is not None}
    status = _choice("status", given.pop("status", None), ("open", "closed"), optional=True)
    given.setdefault("inherent_likelihood", given.get("likelihood"))
    given.setdefault("inherent_impact", given.get("impact"))
    for required in ("title", "side", "mode", "likelihood", "impact"):
        given.setdefault(required, None)
    given.setdefault("category", None)
    fields = validate_fields(given)
    _check_target_pair(fields.get("target_likelihood"), fields.get("target_impact"))
    if status:
        fields["status"] = status
    return fields


def category_refusal(name: str, categories: tuple[str, ...]) -> str:
    """The message for a category that is not on the register's list."""
    import difflib  # only a refusal needs it

    hint = difflib.get_close_matches(name, categories, n=1)
    mean = f"; did you mean '{hint[0]}'?" if hint else ""
    return (
        f"category '{name}' is not in the register's list ({', '.join(categories)}){mean} "
        "Add one with riskreg config set categories ... or --new-category"
    )


def new_risk_row(fields: Mapping[str, Any], ctx: Context, number: int) -> dict[str, Any]:
    """Return the stored values of a new risk numbered ``number`` (all but its version, which starts at 1)."""
    row = {
        "id": number,
        "status": "open",
        **fields,
        "last_reviewed": ctx.today,
        "created_at": ctx.now,
        "created_by": ctx.actor,
        "updated_at": ctx.now,
        "updated_by": ctx.actor,
    }
    row["closed_at"] = ctx.now if row["status"] == "closed" else None
    return row


# --- documents -----------------------------------------------------------------------------


def _tier(likelihood: int | None, impact: int | None, config: Config) -> dict[str, Any] | None:
    if likelihood is None or impact is None:
        return None
    score = likelihood * impact
    return {"likelihood": likelihood, "impact": impact, "score": score, "rating": config.rating(score)}


def _fields(risk: Any) -> dict[str, Any]:
    # A Row's _asdict() is one C call; dict lookups then cost a fraction of attribute access,
    # which matters when a listing serialises thousands of risks.
    if hasattr(risk, "_asdict"):
        return risk._asdict()
    if isinstance(risk, Mapping):  # the values of a risk written with Core (riskreg.riskcore)
        return dict(risk)
    return {column: getattr(risk, column) for column in _RISK_COLUMNS}


_RISK_COLUMNS = tuple(risks.columns.keys())


def risk_to_dict(risk: Any, config: Config, with_controls: bool = False) -> dict[str, Any]:
    """Return a risk (ORM object or row) as the JSON object DESIGN §3 defines (stable snake_case keys)."""
    f = _fields(risk)
    score = f["likelihood"] * f["impact"]
    rating = config.rating(score)
    days = f["review_days"] or config.review_days_for(rating)
    appetite = config.appetite_for(f["category"])
    data: dict[str, Any] = {
        "id": f"R-{f['id']}",
        "title": f["title"],
        "description": f["description"],
        "side": f["side"],
        "mode": f["mode"],
        "category": f["category"],
        "owner": f["owner"],
        "status": f["status"],
        "treatment": f["treatment"],
        "likelihood": f["likelihood"],
        "impact": f["impact"],
        "score": score,
        "rating": rating,
        "inherent": _tier(f["inherent_likelihood"], f["inherent_impact"], config),
        "target": _tier(f["target_likelihood"], f["target_impact"], config),
        "above_appetite": f["status"] == "open" and score > appetite,
        "appetite": appetite,
        "review_days": f["review_days"],
        "last_reviewed": f["last_reviewed"].isoformat(),
        # a closed risk is not reviewed again (`review due` and QA skip it)
        "next_review": (
            None if f["status"] == "closed" else (f["last_reviewed"] + dt.timedelta(days=days)).isoformat()
        ),
        "version": f["version"],
        "created_at": iso_utc(f["created_at"]),
        "created_by": f["created_by"],
        "updated_at": iso_utc(f["updated_at"]),
        "updated_by": f["updated_by"],
        "closed_at": iso_utc(f["closed_at"]),
        "gaps_in_control": f["gaps_in_control"],
        "gaps_in_assurance": f["gaps_in_assurance"],
    }
    if with_controls:
        data["controls"] = [control_to_dict(c) for c in risk.controls]
    return data


def control_to_dict(control: Any) -> dict[str, Any]:
    """Return a control (ORM object or row) as a JSON-ready dict."""
    return {
        "id": f"C-{control.id}",
        "risk": f"R-{control.risk_id}",
        "description": control.description,
        "owner": control.owner,
        "status": control.status,
        "due": control.due.isoformat() if control.due else None,
        "citizen": control.citizen,
        "effectiveness": control.effectiveness,
        "assurance": control.assurance,
        "assurance_line": control.assurance_line,
        "version": control.version,
        "updated_at": iso_utc(control.updated_at),
        "updated_by": control.updated_by,
    }


# a control's document carries these besides what its events record
_NOT_IN_SNAPSHOT = frozenset(("id", "updated_at", "updated_by"))


def control_snapshot(control: Any) -> dict[str, Any]:
    """Return the stored fields of a control, as kept in events: its document without id and last change."""
    return {key: value for key, value in control_to_dict(control).items() if key not in _NOT_IN_SNAPSHOT}


def iso_utc(value: dt.datetime | None) -> str | None:
    """Return a UTC time as ISO 8601 text with a Z, or None."""
    # always with microseconds, so every path (and the SQL listing) renders a time one way
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value else None


def snapshot(risk: Any) -> dict[str, Any]:
    """Return the stored fields of a risk (ORM object, or mapping of its columns), as kept in events."""
    if isinstance(risk, Mapping):
        return {name: risk[name] for name in SNAPSHOT_FIELDS}
    return {name: getattr(risk, name) for name in SNAPSHOT_FIELDS}


def review_to_dict(review: Any) -> dict[str, Any]:
    """Return a review (ORM object or row) as a JSON-ready dict."""
    return {
        "risk": f"R-{review.risk_id}",
        "reviewer": review.reviewer,
        "outcome": review.outcome,
        "note": review.note,
        "reviewed_at": iso_utc(review.reviewed_at),
    }


def evidence_to_dict(row: Any) -> dict[str, Any]:
    """Return stored evidence (ORM object or row) as a JSON-ready dict."""
    return {
        "pilot": f"P-{row.pilot_id}",
        "stage_index": row.stage_index,
        "metric": row.metric,
        "verdict": row.verdict,
        "recommendation": row.recommendation,
        "estimate": row.estimate,
        "ci": [row.ci_low, row.ci_high],
        "n": {"comparison": row.n_comparison, "pilot": row.n_pilot},
        "event": row.event_seq,
        "at": iso_utc(row.at),
    }


def is_overdue(action: Any, today: dt.date) -> bool:
    """Tell whether an action is still open after its due date."""
    return action.status == "open" and action.due < today


def action_to_dict(action: Any, today: dt.date) -> dict[str, Any]:
    """Return an action (ORM object or row) as a JSON-ready dict; ``overdue`` is as of ``today``."""
    return {
        "id": f"A-{action.id}",
        "risk": f"R-{action.risk_id}",
        "title": action.title,
        "owner": action.owner,
        "due": action.due.isoformat(),
        "status": action.status,
        "overdue": is_overdue(action, today),
        "days_overdue": (today - action.due).days if is_overdue(action, today) else 0,
        "version": action.version,
        "created_at": iso_utc(action.created_at),
        "created_by": action.created_by,
        "updated_at": iso_utc(action.updated_at),
        "updated_by": action.updated_by,
    }
