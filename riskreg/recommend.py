"""The gate recommendation: can the service be delivered and measured, and does it work (DESIGN §5).

Pilot-trial practice (the CONSORT extension for pilot and feasibility trials, progression
criteria) keeps the two questions apart, and so does this rule:

* any stage: ``stop`` if a safety metric or the primary shows harm (or the primary is
  inferior), a progression criterion is red, or the primary is futile;
* an interim stage: ``continue`` while its planned n is not in; then ``adapt`` if a
  criterion is amber (proceed once the protocol is amended to address it), else
  ``proceed``. The primary crossing its efficacy boundary early is reported as early
  evidence of effect, never required;
* the last stage: ``continue`` while its planned n is not in; at the final look
  ``proceed`` only if the primary meets its test at the final boundary with no harm shown,
  else ``stop`` (not shown). Never ``continue`` after the final look.

Harm, futility and a red criterion stop a pilot at any look, except that recruitment is
judged only once the stage has its planned n (before that it is still under way); an
amber criterion is judged at the stage's planned n (before it, it is shown as provisional).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from riskreg.wording import level_text

__all__ = ["Recommendation", "recommend", "test_words"]

HARM_VERDICTS = ("harm", "inferior")
WANTED = {
    "superiority": ("superior",),
    "non-inferiority": ("non-inferior", "superior"),
    "equivalence": ("equivalent",),
}
ESTIMATE_NAMES = {
    "continuous": "difference in means",
    "binary": "difference in proportions",
    "count": "rate ratio",
}


@dataclass(frozen=True)
class Recommendation:
    """What the rule recommends, the reasons that decided it, and the facts it rested on."""

    recommendation: str
    reasons: tuple[str, ...]
    primary_meets: bool
    early_evidence: bool
    notes: tuple[str, ...] = ()


def test_words(result: Any) -> str:
    """Return what the primary's test would show, in words: 'non-inferiority of wellbeing'."""
    what = {"superiority": "superiority", "non-inferiority": "non-inferiority", "equivalence": "equivalence"}
    return f"{what[result.test]} of {result.name}"


def recommend(
    *,
    last_stage: bool,
    exhausted: bool,
    planned_n: int,
    results: list[Any],
    criteria: list[Any],
    units: dict[str, int],
    futility: dict[str, Any] | None,
    idle_arms: frozenset[str] = frozenset(),
) -> Recommendation:
    """Return the gate recommendation for one look (see the module docstring for the rule).

    ``idle_arms`` have no data at this look by design (a stepped wedge's pilot arm before
    its first switch): their missing safety data hold nothing back.
    """
    primary = next(r for r in results if r.role == "primary")
    meets = primary.verdict in WANTED[primary.test]
    recruited = min(units.values())
    stage_in = recruited >= planned_n
    # recruitment is judged once the stage's planned n is in; the other criteria as soon as they have data
    judged = criteria if stage_in else [c for c in criteria if c.name != "recruited"]
    stop = _stop_reasons(primary, results, judged, futility)
    if stop:
        return Recommendation("stop", tuple(stop), meets, False)
    if exhausted:
        reason = (
            "the final look was taken already, so no α is left to test the primary again: "
            "collecting more needs an amendment that adds a stage"
        )
        return Recommendation("stop", (reason,), meets, False)
    if not stage_in:
        return _collecting(primary, criteria, units, recruited, planned_n, meets, last_stage)
    if last_stage:
        return _final(primary, results, criteria, meets)
    return _interim(primary, results, criteria, recruited, planned_n, meets, futility, idle_arms)


def _stop_reasons(
    primary: Any, results: list[Any], criteria: list[Any], futility: dict[str, Any] | None
) -> list[str]:
    """Return the reasons that stop a pilot at any look: harm, an inferior primary, a red criterion, futility."""
    reasons = [
        f"safety: {r.name} shows harm ({effect_text(r)})"
        for r in results
        if r.role == "safety" and r.verdict in HARM_VERDICTS
    ]
    if primary.verdict in HARM_VERDICTS:
        what = "shows harm" if primary.verdict == "harm" else "is inferior (worse than the margin)"
        reasons.append(f"the primary {primary.name} {what} ({effect_text(primary)})")
    for c in criteria:
        if c.status == "red":
            reasons.append(
                f"progression criterion {c.name} is red: {criterion_value(c)}, below {criterion_number(c, c.red)}"
            )
    if futility is not None and futility.get("futile"):
        reasons.append(futility["text"])
    return reasons


def _collecting(
    primary: Any,
    criteria: list[Any],
    units: dict[str, int],
    recruited: int,
    planned_n: int,
    meets: bool,
    last_stage: bool,
) -> Recommendation:
    """Return ``continue`` while the stage's planned n is not in, with what is still missing."""
    reasons = []
    if sum(units.values()) == 0:
        reasons.append("no outcome data yet")
    reasons.append(
        f"the stage's planned n is not in yet: {recruited} of {planned_n} units in the smaller arm"
    )
    for arm, n in primary.n.items():
        if n == 0 and units[arm] > 0:
            reasons.append(f"{primary.name}: no outcomes yet in the {arm} arm")
    notes = [
        f"provisional: progression criterion {c.name} stands at {criterion_value(c)} ({c.status})"
        for c in criteria
        if c.status in ("amber", "red")
    ]
    early = meets and not last_stage
    if meets:
        notes.append(f"early evidence of effect: {_met_text(primary)}")
    return Recommendation("continue", tuple(reasons), meets, early, tuple(notes))


def _final(primary: Any, results: list[Any], criteria: list[Any], meets: bool) -> Recommendation:
    """Return the final look's ``proceed`` (the primary met its test, no harm) or ``stop`` (not shown)."""
    gaps = _safety_gaps(results)
    if meets and not gaps:
        reasons = [f"the primary met its test at the final look: {_met_text(primary)}", _no_harm(results)]
        reasons += [
            f"note: progression criterion {c.name} is amber ({criterion_value(c)}): address it when scaling up"
            for c in criteria
            if c.status == "amber"
        ]
        return Recommendation("proceed", tuple(reasons), meets, False)
    if meets:
        return Recommendation("stop", tuple(f"not shown: {gap}" for gap in gaps), meets, False)
    reason = (
        f"not shown: the primary {primary.name} did not meet its {primary.test} test at the final look "
        f"({primary.verdict}; {effect_text(primary)}); collecting more needs an amendment that adds a stage"
    )
    return Recommendation("stop", (reason,), meets, False)


def _interim(
    primary: Any,
    results: list[Any],
    criteria: list[Any],
    recruited: int,
    planned_n: int,
    meets: bool,
    futility: dict[str, Any] | None,
    idle_arms: frozenset[str] = frozenset(),
) -> Recommendation:
    """Return an interim stage's ``adapt`` (a criterion is amber), ``continue`` (data missing) or ``proceed``."""
    missing = [
        f"progression criterion {c.name} cannot be judged yet" for c in criteria if c.status == "no-data"
    ]
    missing += _safety_gaps(results, idle_arms)
    if missing:
        return Recommendation("continue", tuple(missing), meets, meets)
    amber = [c for c in criteria if c.status == "amber"]
    if amber:
        reasons = [
            f"progression criterion {c.name} is amber: {criterion_value(c)} (green at {criterion_number(c, c.green)} "
            f"or more, red below {criterion_number(c, c.red)}); amend the protocol to address it, then proceed"
            for c in amber
        ]
        return Recommendation("adapt", tuple(reasons), meets, meets)
    reasons = [f"the stage reached its planned n: {recruited} of {planned_n} units in the smaller arm"]
    if criteria:
        reasons.append("every progression criterion is green")
    else:
        reasons.append("no progression criteria are set for this stage")
    reasons.append(_no_harm(results))
    if futility is not None and futility.get("text"):
        reasons.append(f"not futile: {futility['text']}")
    notes = []
    if meets:
        notes.append(
            f"early evidence of effect: {_met_text(primary)}; the board may use it to scale up early"
        )
    return Recommendation("proceed", tuple(reasons), meets, meets, tuple(notes))


def _safety_gaps(results: list[Any], idle_arms: frozenset[str] = frozenset()) -> list[str]:
    """Return safety metrics with no data in an arm: no data is not evidence of no harm."""
    return [
        f"safety: {r.name} has no data yet in the {arm} arm, so harm cannot be ruled out"
        for r in results
        if r.role == "safety"
        for arm, n in r.n.items()
        if n == 0 and arm not in idle_arms
    ]


def _no_harm(results: list[Any]) -> str:
    if any(r.role == "safety" for r in results):
        return "no safety metric shows harm"
    return "the primary shows no harm (no safety metrics are set)"


def _met_text(primary: Any) -> str:
    boundary = "" if primary.boundary is None else f", boundary |z| ≥ {primary.boundary:.3g}"
    return f"{primary.name} is {primary.verdict} ({effect_text(primary)}{boundary})"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def effect_text(result: Any) -> str:
    """Return a metric's estimate and CI in words: 'difference in means 1.2, 95% CI -0.3 to 2.7'."""
    low, high = result.ci
    if low is None:
        ci = "CI not available"
    else:
        upper = "infinity" if high is None and result.kind == "count" else _fmt(high)
        ci = f"{level_text(result.ci_level)} CI {_fmt(low)} to {upper}"
    return f"{ESTIMATE_NAMES[result.kind]} {_fmt(result.estimate)}, {ci}"


def criterion_number(c: Any, value: float, digits: int = 3) -> str:
    """Return a criterion's threshold or value as printed: shares to 3 digits, counts whole."""
    return f"{value:.{digits}g}" if c.name == "retention" else f"{value:g}"


def criterion_value(c: Any) -> str:
    """Return the observed value, with more digits if rounding would make it equal a threshold."""
    if c.value is None:
        return "n/a"
    text = criterion_number(c, float(c.value))
    if text in (criterion_number(c, c.green), criterion_number(c, c.red)) and c.value not in (c.green, c.red):
        text = criterion_number(c, float(c.value), 6)
    return text
