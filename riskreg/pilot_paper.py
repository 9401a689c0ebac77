"""The pilot report's bottom line (issue 17): the decision panel, the funnel and the stage-by-stage effect.

Everything here is a pure function of the stored analyses (``analyse(...).to_dict()`` of each
stage reached), the protocol's plain values and the recorded decisions, so the panel says
exactly what the tables further down say, in plain words, with no database and no clock.
Amounts are shown in the governed ``currency`` setting: a symbol ("£") goes before the
amount, a code ("GBP") before it with a space.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from riskreg.report_context import (
    DASH,
    MINUS,
    DecisionLine,
    label,
    level_text,
    margin_values,
    num,
    pct,
    result_sentence,
)

# --- formatting ---------------------------------------------------------------------------------


def currency_amount(value: float | None, currency: str, decimals: int = 2) -> str:
    """Return an amount in the configured currency ("£1,234.50", "GBP 1,234.50", "−£12.85")."""
    if value is None or not math.isfinite(value):
        return DASH
    amount = f"{abs(value):,.{decimals}f}"
    # a code reads as a word ("GBP 12.00"); a symbol is written against the number ("£12.00")
    prefix = f"{currency}\u00a0" if currency.isalpha() else currency
    return f"{MINUS if value < 0 else ''}{prefix}{amount}"


INTERVAL_95 = "95% interval"


def exact_level(level: float | None) -> str:
    """Return an interval's exact level for a footnote; one that rounds to 100% says "more than 99.999%"."""
    text = level_text(level)
    return "more than 99.999%" if text == "100%" and level is not None and level < 1 else text


def interval_label(level: float | None, final: bool) -> str:
    """Return a lay name for an interval at ``level``: "95% interval", or an adjusted interval's name.

    The primary's interval is at its look's boundary level (99.994% at an early look), which
    means nothing to a lay reader; the exact level goes in a footnote instead.
    """
    if level is None:
        return "interval"
    if abs(level - 0.95) < 0.0005:
        return INTERVAL_95
    return "interval adjusted for the earlier looks" if final else "adjusted interval for an early look"


def bar_words(z: float | None) -> str:
    """Say what a boundary |z| means ("at least 3.71 standard errors from the line it is tested against")."""
    if z is None or not math.isfinite(z):
        return "no bar is set for this look"
    usual = (
        "as a single, fixed-size study would"
        if abs(z - 1.96) < 0.005
        else "a fixed-size study would use 1.96"
    )
    return (
        f"the estimate had to lie at least {num(z)} standard errors from the line it is tested "
        f"against (|z| ≥ {num(z)}; {usual})"
    )


_LEVEL_CI = re.compile(r"(\d+(?:\.\d+)?)% CI")
_BOUNDARY = re.compile(r"boundary \|z\| ≥ (\d+(?:\.\d+)?)")


def plain_reason(reason: str) -> str:
    """Rewrite an analysis reason for lay readers: no "99.997% CI" and no "|z| ≥ 3.71"."""

    def interval(match: re.Match[str]) -> str:
        level = float(match.group(1)) / 100
        return INTERVAL_95 if abs(level - 0.95) < 0.0005 else "adjusted interval (see note 1)"

    text = _LEVEL_CI.sub(interval, reason)
    text = _BOUNDARY.sub(lambda m: f"the bar for this look: {num(float(m.group(1)))} standard errors", text)
    return re.sub(r"(?<=[\s(])-(?=\d)", MINUS, text)  # "-0.469" as the tables print it: "−0.469"


def exposure_unit(unit: str | None) -> str:
    """Return the unit of a count metric's exposure from its rate unit ("concerns per person-week" → "person-weeks")."""
    if unit and " per " in unit:
        per = unit.rsplit(" per ", 1)[1].strip()
        if per:
            return per if per.endswith("s") else per + "s"
    return "units of exposure"


def arm_count(kind: str, detail: Mapping[str, Any] | None, unit: str | None) -> str:
    """Return one arm's numerator and denominator ("30 of 220 (13.6%)", "31 events in 1,709.8 person-weeks")."""
    if not detail:
        return DASH
    if not detail.get("n"):
        return "no data yet"
    if kind == "binary":
        n = detail["n"]
        return f"{detail.get('events', 0):,} of {n:,} ({pct(detail.get('proportion'))})"
    if kind == "count":
        events, exposure = detail.get("events", 0), detail.get("exposure") or 0.0
        followed = f"{exposure:,.1f}".removesuffix(".0")  # "1,709.8", "1,700"
        text = f"{events:,} event{'' if events == 1 else 's'} in {followed} {exposure_unit(unit)}"
        return text + f" ({detail['n']:,} followed)"
    sd = detail.get("sd")
    return (
        f"mean {num(detail.get('mean'))}"
        + (f" (sd {num(sd)})" if sd is not None else "")
        + f", n = {detail['n']:,}"
    )


# --- the decision panel -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ArmFigure:
    """A per-arm figure of the panel: the arm and its numbers in words."""

    arm: str
    text: str


@dataclass(frozen=True)
class Footnote:
    """A numbered note under the panel (the exact interval level, the bar for the look)."""

    number: int
    text: str


@dataclass(frozen=True)
class SafetyLine:
    """A safety metric at the latest look: events and exposure per arm, and what they mean."""

    name: str
    sentence: str
    verdict: str
    harm: bool
    arms: tuple[ArmFigure, ...]


@dataclass(frozen=True)
class RagLine:
    """Recruitment or retention against its progression criterion, red/amber/green in words."""

    name: str  # "Recruitment" | "Retention"
    status: str  # green | amber | red
    value: str
    rule: str  # "green at 200 or more, red below 150"


@dataclass(frozen=True)
class CostFigure:
    """Cost per participant of one arm, with and without citizen inputs."""

    arm: str
    with_citizen: str
    public_only: str


@dataclass(frozen=True)
class DecisionPanel:
    """The bottom line at the head of a pilot report, from the latest analysis and the gate decisions."""

    stage: str
    recommendation: str
    reasons: tuple[str, ...]
    decision: str  # "" when the board has not decided at this stage yet
    decided: DecisionLine | None  # the latest decision at this stage: who, when, why
    primary: str  # the primary metric's name for reading
    primary_sentence: str
    primary_meaning: str  # what the interval means against the margin
    primary_n: str  # "n = 211 comparison, 210 pilot (units with the primary outcome); …"
    primary_chance: str  # "The chance that the pilot arm is better: 73 %; ...", or ""
    safety: tuple[SafetyLine, ...]
    rag: tuple[RagLine, ...]
    costs: tuple[CostFigure, ...]
    incremental: str  # extra cost per participant of the pilot arm, both ways
    per_effect: str  # cost per unit of primary effect, "Dominant (cheaper and better)", or ""
    per_effect_caveat: str  # "" unless the effect is inconclusive
    currency: str
    footnotes: tuple[Footnote, ...]


def primary_of(analysis: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Return the primary metric's result of an analysis, or None."""
    return next((m for m in analysis["metrics"] if m["role"] == "primary"), None)


def _ends(ci: Sequence[float | None] | None) -> tuple[float | None, float | None]:
    """Return an interval's (low, high); None for an end that is missing."""
    low, high, *_ = [*(ci or ()), None, None]
    return low, high


def _scale(kind: str) -> float:
    return 100.0 if kind == "binary" else 1.0


def _shown(value: float | None, kind: str, unit: str | None) -> str:
    if value is None:
        return "unbounded"
    tail = " percentage points" if kind == "binary" else (f" {unit}" if unit and kind == "continuous" else "")
    return f"{num(value * _scale(kind))}{tail}"


def meaning(m: Mapping[str, Any], unit: str | None = None) -> str:
    """Say what a result's interval means against its no-difference line and pre-registered margin."""
    if m.get("estimate") is None:
        return "There is no estimate yet, so nothing can be said against the margin."
    kind, test, better, verdict = m["kind"], m["test"], m["better"], m["verdict"]
    low, high = _ends(m.get("ci"))
    worst = low if better == "higher" else high
    null = "1 (no difference)" if kind == "count" else "0 (no difference)"
    lines = margin_values(kind, test, better, m.get("margin"))
    if test == "non-inferiority" and lines:
        margin = _shown(lines[0], kind, unit)
        if verdict in ("non-inferior", "superior"):
            text = (
                f"Even the least favourable end of the interval, {_shown(worst, kind, unit)}, is on the safe side "
                f"of the margin of {margin}: the pilot arm is not worse by more than the protocol allows."
            )
            return text + (" It was better, too." if verdict == "superior" else "")
        if verdict == "inferior":
            return f"The whole interval lies beyond the margin of {margin}: the pilot arm is worse by more than the protocol allows."
        return (
            f"The interval reaches {_shown(worst, kind, unit)}, beyond the margin of {margin}: the data cannot yet rule "
            "out that the pilot arm is worse by more than the protocol allows."
        )
    if test == "equivalence" and lines:
        span = f"{_shown(min(lines), kind, unit)} to {_shown(max(lines), kind, unit)}"
        if verdict == "equivalent":
            return f"The whole interval lies within {span}: the arms are equivalent for practical purposes."
        return f"The interval goes outside {span}: equivalence is not shown."
    if verdict == "superior":
        return f"The whole interval is on the better side of {null}: the pilot arm was better."
    if verdict in ("harm", "inferior"):
        return f"The whole interval is on the worse side of {null}: the pilot arm was worse."
    return f"The interval includes {null}: neither arm has been shown to be better."


def plain_sentence(m: Mapping[str, Any], unit: str | None, words: str) -> str:
    """Return ``result_sentence`` with its "99.994% CI" replaced by lay words for the interval."""
    sentence = result_sentence(m, unit)
    level = m.get("ci_level")
    if level is not None:
        sentence = sentence.replace(f"{level_text(level)} CI", words)
    if m["kind"] == "binary":  # one unit for proportion differences: percentage points
        sentence = sentence.replace(" points);", " percentage points);")
    return sentence


def inconclusive(m: Mapping[str, Any]) -> bool:
    """Return whether a result's interval includes no difference (or there is no interval)."""
    low, high = _ends(m.get("ci"))
    null = 1.0 if m["kind"] == "count" else 0.0
    return low is None or high is None or low <= null <= high


def per_effect_text(
    cost: float | None, effect: float | None, kind: str, better: str, currency: str, unit: str | None = None
) -> str:
    """Return the incremental cost per unit of primary effect, or "Dominant (cheaper and better)" and its kin.

    A negative ratio is either "cheaper and better" or "dearer and worse"; neither is a price,
    so it is named instead of printed as a negative cost.
    """
    if cost is None or effect is None or effect == 0:
        return ""
    improves = effect > 0 if better == "higher" else effect < 0
    if cost <= 0 and improves:
        return "Dominant (cheaper and better)"
    if cost >= 0 and not improves:
        return "Dominated (dearer and worse)"
    if cost < 0:
        saved = currency_amount(-cost / abs(effect * _scale(kind)), currency)
        return f"Cheaper but worse: saves {saved} per {_effect_unit(kind, unit)} lost"
    return f"{currency_amount(cost / abs(effect * _scale(kind)), currency)} per {_effect_unit(kind, unit)} gained"


def _effect_unit(kind: str, unit: str | None) -> str:
    if kind == "binary":
        return "percentage point"
    if kind == "count":
        return "unit of rate difference" + (f" ({unit})" if unit else "")
    return "unit of effect" + (f" ({unit})" if unit else "")


def _percent(p: float) -> str:
    """A probability as a whole percentage, never rounded to a certainty it is not ("more than 99 %")."""
    if p > 0.99:
        return "more than 99 %"
    if p < 0.01:
        return "less than 1 %"
    return f"{p * 100:.0f} %"


def chance_text(metric: Mapping[str, Any]) -> str:
    """Say how likely the pilot arm is better, clears the margin and is worse beyond it, or "" without a reading."""
    found = metric.get("chance")
    if not found:
        return ""
    text = f"The chance that the pilot arm is better: {_percent(found['better'])}"
    if found.get("beyond_margin") is not None:
        text += f"; that it is no worse than the margin allows: {_percent(found['beyond_margin'])}"
    if found.get("harm") is not None:
        text += f"; that it is worse by more than the margin: {_percent(found['harm'])}"
    prior = found.get("prior")
    basis = "a flat prior" if prior is None else "a weakly informative prior centred on no difference"
    if found.get("prior_source") == "protocol":
        basis = "the protocol's prior"
    return (
        text + f". A plain reading of the data so far ({basis}, normal approximation): it is not "
        "adjusted for the pilot's looks and is no verdict; the gate rests on the pre-registered test."
    )


def decision_panel(
    analyses: Sequence[Mapping[str, Any]],
    decisions: Sequence[DecisionLine],
    units: Mapping[str, str | None],
    planned_n: Sequence[int],
    currency: str,
) -> DecisionPanel:
    """Build the panel from every stage's analysis (the latest last) and the recorded gate decisions."""
    latest = analyses[-1]
    arms = latest["arms"]
    primary = primary_of(latest)
    final = bool((latest.get("boundaries") or {}).get("final"))
    notes: list[Footnote] = []
    sentence = meaning_text = n_text = chance = ""
    name = label(latest.get("primary") or "")
    if primary is not None:
        unit = units.get(primary["name"])
        words = interval_label(primary.get("ci_level"), final)
        if words != INTERVAL_95:
            words += " (see note 1)"
        notes.append(Footnote(1, _level_note(primary, latest, final)))
        sentence = plain_sentence(primary, unit, words)
        meaning_text = meaning(primary, unit)
        n_text = _n_text(primary, latest, arms)
        chance = chance_text(primary)
    decided = [d for d in decisions if d.stage == latest["stage"]]
    return DecisionPanel(
        stage=latest["stage"],
        recommendation=latest["recommendation"],
        reasons=tuple(plain_reason(r) for r in latest["reasons"]),
        decision=decided[-1].decision if decided else "",
        decided=decided[-1] if decided else None,
        primary=name,
        primary_sentence=sentence,
        primary_meaning=meaning_text,
        primary_n=n_text,
        primary_chance=chance,
        safety=tuple(
            _safety_line(m, arms, units.get(m["name"])) for m in latest["metrics"] if m["role"] == "safety"
        ),
        rag=tuple(_rag(c, planned_n[latest["stage_index"]]) for c in latest["criteria"]),
        costs=_cost_figures(latest, currency),
        incremental=_incremental(latest, currency),
        per_effect=_per_effect(latest, primary, currency, units),
        per_effect_caveat=_caveat(latest, primary),
        currency=currency,
        footnotes=tuple(notes),
    )


def _level_note(primary: Mapping[str, Any], latest: Mapping[str, Any], final: bool) -> str:
    level = exact_level(primary.get("ci_level"))
    alpha = num(latest.get("alpha"))
    look = "this early look" if not final else "the final look, after the earlier ones"
    return (
        f"The exact level of the primary's interval is {level}. The pilot is analysed at more than one "
        f"look; to keep the overall chance of a false finding at {alpha} (two-sided), each look must meet "
        f"its own bar. At {look}, {bar_words(primary.get('boundary'))}. Other metrics use ordinary 95% intervals."
    )


def _n_text(primary: Mapping[str, Any], latest: Mapping[str, Any], arms: Sequence[str]) -> str:
    with_outcome = ", ".join(f"{(primary.get('n') or {}).get(a, 0):,} {a}" for a in arms)
    recruited = ", ".join(f"{latest['units'].get(a, 0):,} {a}" for a in arms)
    return (
        f"n = units with the primary outcome recorded: {with_outcome}. "
        f"Recruited (units with any observation): {recruited}."
    )


def _safety_line(m: Mapping[str, Any], arms: Sequence[str], unit: str | None) -> SafetyLine:
    detail = m.get("detail") or {}
    return SafetyLine(
        name=label(m["name"]),
        sentence=plain_sentence(m, unit, interval_label(m.get("ci_level"), True)),
        verdict=m["verdict"],
        harm=m["verdict"] in ("harm", "inferior"),
        arms=tuple(ArmFigure(arm, arm_count(m["kind"], detail.get(arm), unit)) for arm in arms),
    )


def _rag(c: Mapping[str, Any], planned: int) -> RagLine:
    retention = c["name"] == "retention"

    def shown(v: float | None) -> str:
        if v is None:
            return DASH
        return pct(v, 0) if retention else num(v)

    if retention:
        value = f"{shown(c['value'])} of units with the primary outcome recorded"
    else:
        value = f"{shown(c['value'])} per arm (smallest arm) of {planned:,} planned"
    return RagLine(
        name="Retention" if retention else ("Recruitment" if c["name"] == "recruited" else label(c["name"])),
        status=c["status"],
        value=value,
        rule=f"green at {shown(c['green'])} or more, red below {shown(c['red'])}",
    )


def _cost_figures(latest: Mapping[str, Any], currency: str) -> tuple[CostFigure, ...]:
    costs = latest.get("costs") or {}
    return tuple(
        CostFigure(
            arm,
            currency_amount(costs[arm].get("per_unit"), currency),
            currency_amount(costs[arm].get("per_unit_public"), currency),
        )
        for arm in latest["arms"]
        if isinstance(costs.get(arm), dict)
    )


def _incremental(latest: Mapping[str, Any], currency: str) -> str:
    inc = (latest.get("costs") or {}).get("incremental") or {}
    if not inc:
        return ""
    pilot = latest["arms"][1]

    def side(value: float | None) -> str:
        if value is None:
            return DASH
        word = "more" if value >= 0 else "less"
        return f"{currency_amount(abs(value), currency)} {word}"

    return (
        f"The {pilot} arm costs {side(inc.get('per_unit_with_citizen'))} per participant counting citizen "
        f"inputs, {side(inc.get('per_unit_public_only'))} counting public money only."
    )


def _per_effect(
    latest: Mapping[str, Any],
    primary: Mapping[str, Any] | None,
    currency: str,
    units: Mapping[str, str | None],
) -> str:
    inc = (latest.get("costs") or {}).get("incremental") or {}
    if not inc or primary is None:
        return ""
    effect, kind, better = inc.get("effect"), primary["kind"], primary["better"]
    unit = units.get(primary["name"])
    with_citizen = per_effect_text(inc.get("per_unit_with_citizen"), effect, kind, better, currency, unit)
    public = per_effect_text(inc.get("per_unit_public_only"), effect, kind, better, currency, unit)
    if not with_citizen and not public:
        return ""
    return f"With citizen inputs: {with_citizen or DASH}. Public money only: {public or DASH}."


def _caveat(latest: Mapping[str, Any], primary: Mapping[str, Any] | None) -> str:
    inc = (latest.get("costs") or {}).get("incremental") or {}
    if not inc or primary is None or primary.get("estimate") is None or not inconclusive(primary):
        return ""
    return (
        f"Read with care: the interval of the {label(primary['name'])} effect includes no difference, "
        "so the effect may be zero and a cost per unit of effect may mean little."
    )


# --- recruitment and retention funnel ------------------------------------------------------------------


@dataclass(frozen=True)
class FunnelStep:
    """One arm at one stage: planned, recruited and retained (cumulative), with shares."""

    stage: str
    arm: str
    planned: str
    recruited: str
    recruited_share: str  # of planned
    retained: str
    retained_share: str  # of recruited
    recruited_width: float  # bar widths in % of the planned n (capped at 100), for the CSS bars
    retained_width: float


def funnel(analyses: Sequence[Mapping[str, Any]], planned_n: Sequence[int]) -> tuple[FunnelStep, ...]:
    """Return recruitment and retention per arm and stage (cumulative), from each stage's analysis."""
    steps = []
    for a in analyses:
        planned = planned_n[a["stage_index"]]
        primary = primary_of(a)
        for arm in a["arms"]:
            recruited = a["units"].get(arm, 0)
            retained = (primary.get("n") or {}).get(arm, 0) if primary else 0
            steps.append(
                FunnelStep(
                    stage=a["stage"],
                    arm=arm,
                    planned=f"{planned:,}",
                    recruited=f"{recruited:,}",
                    recruited_share=pct(recruited / planned, 0) if planned else DASH,
                    retained=f"{retained:,}",
                    retained_share=pct(retained / recruited, 0) if recruited else DASH,
                    recruited_width=round(min(recruited / planned, 1.0) * 100, 1) if planned else 0.0,
                    retained_width=round(min(retained / planned, 1.0) * 100, 1) if planned else 0.0,
                )
            )
    return tuple(steps)


# --- the primary's effect across stages ------------------------------------------------------------------


@dataclass(frozen=True)
class StageEffect:
    """The primary's estimate and intervals at one stage, on the data to that stage (cumulative)."""

    stage: str
    n: str  # "58 comparison, 57 pilot"
    estimate: str
    interval: str  # at the look's adjusted level, in lay words
    nominal: str  # the ordinary 95% interval, for comparison ("" when the same)
    verdict: str
    recommendation: str


def stage_effects(
    analyses: Sequence[Mapping[str, Any]], units: Mapping[str, str | None]
) -> tuple[StageEffect, ...]:
    """Return the primary's effect and interval at every stage reached, cumulative data."""
    lines = []
    for a in analyses:
        m = primary_of(a)
        if m is None:
            continue
        kind, unit = m["kind"], units.get(m["name"])
        final = bool((a.get("boundaries") or {}).get("final"))
        words = interval_label(m.get("ci_level"), final)
        lines.append(
            StageEffect(
                stage=a["stage"],
                n=", ".join(f"{(m.get('n') or {}).get(arm, 0):,} {arm}" for arm in a["arms"]),
                estimate=_estimate(m, unit),
                interval=f"{words}: {_range(m.get('ci'), kind, unit)}",
                nominal=_nominal(m, kind, unit),
                verdict=m["verdict"],
                recommendation=a["recommendation"],
            )
        )
    return tuple(lines)


def _nominal(m: Mapping[str, Any], kind: str, unit: str | None) -> str:
    """Return the ordinary 95% interval of an adjusted result, or "" when there is none or it is the same."""
    ci = (m.get("nominal") or {}).get("ci")
    if not ci or _range(ci, kind, unit) == _range(m.get("ci"), kind, unit):
        return ""
    return f"{INTERVAL_95}: {_range(ci, kind, unit)}"


def _estimate(m: Mapping[str, Any], unit: str | None) -> str:
    estimate = m.get("estimate")
    if estimate is None:
        return "no estimate"
    if m["kind"] == "count":
        return f"rate ratio {num(estimate)}"
    sign = "+" if estimate > 0 else ""
    return sign + _shown(estimate, m["kind"], unit)


def _range(ci: Sequence[float | None] | None, kind: str, unit: str | None) -> str:
    low, high = _ends(ci)
    if low is None and high is None:
        return "not available"
    return f"{num(None if low is None else low * _scale(kind))} to {_shown(high, kind, unit)}"


def _noted_label(m: Mapping[str, Any], final: bool) -> str:
    """Return the interval's lay name, pointing an adjusted one to the footnote with its exact level."""
    words = interval_label(m.get("ci_level"), final)
    return words if words in (INTERVAL_95, "interval") else f"{words} (see note 1)"


def plain_ci(m: Mapping[str, Any], final: bool, unit: str | None = None) -> str:
    """Return a results table's interval in lay words ("95% interval: −12.8 to 1.14 percentage points")."""
    return f"{_noted_label(m, final)}: {_range(m.get('ci'), m['kind'], unit)}"


def metric_sentence(m: Mapping[str, Any], final: bool, unit: str | None = None) -> str:
    """Return a metric's result in one plain sentence, its interval named in lay words."""
    words = interval_label(m.get("ci_level"), final)
    if words not in (INTERVAL_95, "interval"):
        words += " [note 1]"  # brackets: the sentence already holds the interval in parentheses
    return plain_sentence(m, unit, words)
