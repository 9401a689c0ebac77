"""What each report template receives: documented, frozen, already-formatted context objects.

Templates get these dataclasses and nothing else (STYLE point 7): every number is already
turned into text and every chart already laid out (coordinates rounded to 0.1 px), so a
template cannot query the database and two renders of the same data are byte-identical.
``riskreg.report`` builds the contexts from the database; the formatting, wording and chart
helpers here are pure functions of their arguments, with no database and no clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from riskreg.wording import DASH, level_text

if TYPE_CHECKING:  # pilot_paper builds on the helpers here; at run time the names are only annotations
    from riskreg.board_paper import BoardPaper
    from riskreg.pilot_paper import DecisionPanel, FunnelStep, StageEffect

MINUS = "\u2212"  # typographic minus: "−0.47", as a printed board pack shows it


# --- formatting -------------------------------------------------------------------------------


def num(value: float | int | None, sig: int = 3) -> str:
    """Return a number with ``sig`` significant figures in plain notation ("1.01", "−0.469", "2,310")."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}".replace("-", MINUS)
    if not math.isfinite(value):
        return "∞" if value > 0 else f"{MINUS}∞"
    magnitude = abs(value)
    if magnitude >= 10 ** (sig - 1):
        text = f"{value:,.0f}"
    elif magnitude == 0:
        text = "0"
    else:
        decimals = min(6, sig - 1 - math.floor(math.log10(magnitude)))
        text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")  # "3.00" → "3", "0.180" → "0.18"
    if text in ("-0", ""):
        text = "0"  # no "−0"
    return text.replace("-", MINUS)


def pct(value: float | None, digits: int = 1) -> str:
    """Return a share as a percentage ("19.5%")."""
    return DASH if value is None else f"{value * 100:.{digits}f}%".replace("-", MINUS)


def p_text(value: float | None) -> str:
    """Return a p-value as analysis text shows it ("0.1802", "<0.0001")."""
    if value is None:
        return DASH
    return "<0.0001" if value < 0.0001 else f"{value:.4f}"


def money(value: float | None) -> str:
    """Return an amount with two decimals and thousands separators ("20,979.00")."""
    return DASH if value is None else f"{value:,.2f}".replace("-", MINUS)


def hours(value: float | None) -> str:
    """Return hours without needless decimals ("2,796", "67.5")."""
    if value is None:
        return DASH
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def label(name: str) -> str:
    """Return a metric or field name for reading ("readmitted_30d" → "readmitted 30d")."""
    return name.replace("_", " ")


_CSS_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:()_-")


def css_string(text: str) -> Markup:
    """Return text as a double-quoted CSS string, every other character than a few plain ones escaped.

    The print style's page margins show the report's title, which may come from a user
    (a pilot's title); escaped, no quote, backslash or ``<`` of it reaches the style
    element, where HTML escaping would not apply. Each escape ends with the one space
    that CSS reads as its end (and drops), so a space after it in the text is kept.
    """
    escaped = "".join(c if c in _CSS_PLAIN else f"\\{ord(c):X} " for c in text)
    return Markup(f'"{escaped}"')


def bdi(text: object) -> Markup:
    """Return user text escaped inside ``<bdi>``: a bidi override in it (U+202E) stays in its field.

    A title, owner, reason or name printed inline among report text is isolated, so it
    cannot reverse the words after it ("by alice on 2026-05-12") or the next field.
    """
    return Markup("<bdi>{}</bdi>").format(text)


def rating_class(rating: str) -> str:
    """Return the CSS class of a rating ("very high" → "rating-very-high")."""
    return "rating-" + rating.replace(" ", "-")


# --- shared pieces ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """Header and footer facts every report shows (DESIGN §6 footer)."""

    kind: str  # board | pilot | qa
    title: str
    organisation: str  # config.organisation
    database: str  # the database URL with any password hidden (db.safe_url)
    version: str  # riskreg version
    generated: str  # "2026-11-29 (as of)" with --as-of, else "2026-11-29 14:03 UTC"
    as_of: str  # ISO date the report describes
    # the audit seal of the data shown (riskreg.audit.head(session).seal()): the head as the
    # report was rendered, so the same data give the same bytes; "" prints no seal line
    seal: str = ""
    marking: str = ""  # protective marking for the running header ("OFFICIAL"); "" prints none


@dataclass(frozen=True)
class Tick:
    """A labelled position on a chart axis (``at`` in SVG user units)."""

    at: float
    label: str


@dataclass(frozen=True)
class RiskLine:
    """One risk in a board list: identity, current score and review state."""

    id: str
    title: str
    side: str
    mode: str
    category: str
    owner: str  # "" when nobody owns it
    likelihood: int
    impact: int
    score: int
    rating: str
    rating_class: str
    appetite: int
    next_review: str  # ISO date
    days_overdue: int  # > 0 when the review is overdue on the as-of date
    escalated: bool


@dataclass(frozen=True)
class RiskList:
    """The first rows of a long list of risks, and how many there are in all."""

    rows: tuple[RiskLine, ...]
    total: int

    @property
    def more(self) -> int:
        """How many risks the list leaves out."""
        return self.total - len(self.rows)


@dataclass(frozen=True)
class DecisionLine:
    """A recorded gate decision."""

    pilot: str
    stage: str
    decision: str
    recommendation: str  # what the analysis recommended ("" if none was stored)
    override: bool
    actor: str
    at: str  # "2026-05-12 10:00 UTC"
    reason: str


@dataclass(frozen=True)
class AmendmentLine:
    """A registered protocol amendment (version 2 onwards)."""

    pilot: str
    number: int  # 1 = the first amendment
    sha256: str
    at: str
    actor: str
    reason: str
    stage: str  # the stage the pilot was at
    after_data: bool  # made after outcome data arrived (QA flags it)


# --- heat maps ----------------------------------------------------------------------------------

HEAT_CELL = 64
HEAT_LEFT = 52
HEAT_TOP = 8
HEAT_IDS = 4  # a cell with at most this many risks names them; a fuller one shows its count
HEAT_LISTED = 12  # of a fuller cell, the IDs listed under the map (the rest are counted)
RATING_LETTERS = {"low": "L", "medium": "M", "high": "H", "very high": "VH"}


def rating_letter(rating: str) -> str:
    """Return the letter a heat-map cell prints for its band ("very high" → "VH")."""
    return RATING_LETTERS.get(rating, rating[:1].upper())


@dataclass(frozen=True)
class HeatCell:
    """One likelihood × impact cell: how many open risks sit there (current tier), and which."""

    likelihood: int
    impact: int
    count: int
    score: int
    rating: str
    rating_class: str
    x: int
    y: int
    letter: str = ""  # L, M, H or VH: the band without its colour
    ids: tuple[str, ...] = ()  # the risks in the cell, R-1 first (all of them)
    above: bool = False  # the score is above the default appetite

    @property
    def shown_ids(self) -> tuple[str, ...]:
        """The IDs printed inside the cell: all of them when they fit, else none (the count is shown)."""
        return self.ids if len(self.ids) <= HEAT_IDS else ()

    @property
    def listed(self) -> str:
        """The cell's IDs as one line of text, the first HEAT_LISTED and how many more."""
        text = ", ".join(self.ids[:HEAT_LISTED])
        more = len(self.ids) - HEAT_LISTED
        return f"{text} and {more:,} more" if more > 0 else text


@dataclass(frozen=True)
class HeatRow:
    """A row of the heat map's table equivalent: one impact level, counts by likelihood 1–5."""

    impact: int
    counts: tuple[int, ...]
    cells: tuple[HeatCell, ...] = ()  # likelihood 1–5


@dataclass(frozen=True)
class HeatBand:
    """A rating band in the heat-map legend: its colour class, letter and the scores it covers."""

    rating: str
    letter: str
    rating_class: str
    scores: str  # "1–4"


def heat_legend(rating_of: Any) -> tuple[HeatBand, ...]:
    """Return the legend of the heat maps' bands, low first, from ``rating_of(score)``."""
    spans: dict[str, list[int]] = {}
    for score in sorted({lk * im for lk in range(1, 6) for im in range(1, 6)}):
        spans.setdefault(rating_of(score), []).append(score)
    return tuple(
        HeatBand(
            rating,
            rating_letter(rating),
            rating_class(rating),
            f"{s[0]}" if s[0] == s[-1] else f"{s[0]}{DASH}{s[-1]}",
        )
        for rating, s in spans.items()
    )


@dataclass(frozen=True)
class HeatMap:
    """A 5 × 5 likelihood × impact grid of open risks' current scores for one side."""

    side: str  # citizen | professional | shared
    heading: str  # "Citizen side"
    total: int
    cells: tuple[HeatCell, ...]
    rows: tuple[HeatRow, ...]  # impact 5 first, as drawn
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    width: int
    height: int
    cell: int
    summary: str  # the text equivalent (also the figure caption)
    appetite_path: str = ""  # SVG path of the default appetite line ("" when no cell is above it)
    appetite: int | None = None  # the default appetite the line marks

    @property
    def crowded(self) -> tuple[HeatCell, ...]:
        """The cells too full to name their risks inside: their IDs are listed under the map."""
        return tuple(c for c in self.cells if c.ids and not c.shown_ids)


def _appetite_path(above: set[tuple[int, int]]) -> str:
    """Return the SVG path between the cells above appetite and the rest (the appetite line)."""
    segments = []
    for likelihood, impact in sorted(above):
        x = HEAT_LEFT + (likelihood - 1) * HEAT_CELL
        y = HEAT_TOP + (5 - impact) * HEAT_CELL
        if likelihood > 1 and (likelihood - 1, impact) not in above:
            segments.append(f"M{x},{y}v{HEAT_CELL}")
        if impact > 1 and (likelihood, impact - 1) not in above:
            segments.append(f"M{x},{y + HEAT_CELL}h{HEAT_CELL}")
    return "".join(segments)


def heat_map(
    side: str,
    heading: str,
    counts: Mapping[tuple[int, int], int],
    rating_of: Any,
    ids: Mapping[tuple[int, int], Sequence[str]] | None = None,
    appetite: int | None = None,
) -> HeatMap:
    """Lay out a heat map from {(likelihood, impact): count}; ``rating_of(score)`` names the band.

    ``ids`` gives the risks of each cell (in order); ``appetite`` the default appetite, whose
    line is drawn between the cells above it and the rest.
    """
    ids = ids or {}
    cells = []
    for impact in range(5, 0, -1):
        for likelihood in range(1, 6):
            score = likelihood * impact
            rating = rating_of(score)
            cells.append(
                HeatCell(
                    likelihood,
                    impact,
                    counts.get((likelihood, impact), 0),
                    score,
                    rating,
                    rating_class(rating),
                    HEAT_LEFT + (likelihood - 1) * HEAT_CELL,
                    HEAT_TOP + (5 - impact) * HEAT_CELL,
                    letter=rating_letter(rating),
                    ids=tuple(ids.get((likelihood, impact), ())),
                    above=appetite is not None and score > appetite,
                )
            )
    rows = tuple(
        HeatRow(
            impact,
            tuple(counts.get((lk, impact), 0) for lk in range(1, 6)),
            tuple(c for c in cells if c.impact == impact),
        )
        for impact in range(5, 0, -1)
    )
    total = sum(c.count for c in cells)
    x_ticks = tuple(Tick(HEAT_LEFT + (i - 0.5) * HEAT_CELL, str(i)) for i in range(1, 6))
    y_ticks = tuple(Tick(HEAT_TOP + (5 - i + 0.5) * HEAT_CELL, str(i)) for i in range(1, 6))
    by_rating: dict[str, int] = {}
    for c in cells:
        by_rating[c.rating] = by_rating.get(c.rating, 0) + c.count
    parts = [f"{n} {r}" for r, n in by_rating.items() if n]
    summary = f"{total} open risk{'s' if total != 1 else ''}"
    if parts:
        busiest = max(cells, key=lambda c: (c.count, c.score))
        summary += (
            f" ({', '.join(reversed(parts))}); the fullest cell is likelihood {busiest.likelihood} × "
            f"impact {busiest.impact} with {busiest.count}"
        )
    above = {(c.likelihood, c.impact) for c in cells if c.above}
    if appetite is not None and above:
        beyond = sum(c.count for c in cells if c.above)
        summary += f"; {beyond} above the default appetite of {appetite}"
    return HeatMap(
        side=side,
        heading=heading,
        total=total,
        cells=tuple(cells),
        rows=rows,
        x_ticks=x_ticks,
        y_ticks=y_ticks,
        width=HEAT_LEFT + 5 * HEAT_CELL + 8,
        height=HEAT_TOP + 5 * HEAT_CELL + 42,
        cell=HEAT_CELL,
        summary=summary + ".",
        appetite_path=_appetite_path(above),
        appetite=appetite,
    )


# --- axes ------------------------------------------------------------------------------------


def _r(value: float) -> float:
    """Round a coordinate to 0.1 unit, so the SVG text never depends on float noise."""
    return round(value + 0.0, 1)


def _nice_step(span: float, target: int = 5) -> float:
    raw = span / target
    exponent = math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * 10**exponent
        if step >= raw:
            return step
    return 10 ** (exponent + 1)


def _step_decimals(step: float) -> int:
    text = f"{step:.10f}".rstrip("0")
    return len(text.split(".")[1]) if "." in text else 0


def linear_ticks(low: float, high: float, target: int = 5) -> list[tuple[float, str]]:
    """Return (value, label) ticks at round numbers between ``low`` and ``high``."""
    step = _nice_step(high - low, target)
    decimals = _step_decimals(step)
    first = math.ceil(low / step - 1e-9)
    ticks = []
    for i in range(first, first + 50):
        value = i * step
        if value > high + step * 1e-9:
            break
        text = f"{value:,.{decimals}f}"
        ticks.append((value, ("0" if text.strip("-0.,") == "" else text).replace("-", MINUS)))
    return ticks


def log_ticks(low: float, high: float) -> list[tuple[float, str]]:
    """Return (value, label) ticks for a log axis between ``low`` and ``high`` (both > 0).

    1-2-5 steps across a wide range (1-5 or powers of ten when that gives too many), round
    linear steps across a narrow one (0.9 to 1.1 has no 1-2-5 number but 1).
    """
    candidates = sorted({k * 10.0**e for e in range(-4, 5) for k in (1, 2, 5)})
    inside = [v for v in candidates if low <= v <= high]
    for keep in ("15", "1"):  # thin out: 1-5 steps, then powers of ten
        if len(inside) > 6:
            inside = [v for v in inside if f"{v:.0e}"[0] in keep]
    if len(inside) >= 3:
        return [(v, num(v, 2)) for v in inside]
    return [(v, text) for v, text in linear_ticks(low, high) if v > 0]


class _Axis:
    """Maps values onto [left, right]; a ratio axis is logarithmic."""

    def __init__(self, values: Iterable[float], left: float, right: float, log: bool, reverse: bool = False):
        self.left, self.right, self.log, self.reverse = left, right, log, reverse
        points = [self._t(v) for v in values if v is not None and math.isfinite(v) and (v > 0 or not log)]
        low, high = (min(points), max(points)) if points else (0.0, 1.0)
        if high - low < 1e-12:
            low, high = low - (0.5 if log else 1.0), high + (0.5 if log else 1.0)
        pad = (high - low) * 0.08
        self.low, self.high = low - pad, high + pad

    def _t(self, value: float) -> float:
        return math.log(value) if self.log else value

    def x(self, value: float | None) -> float | None:
        if value is None or (self.log and value <= 0):
            return None
        t = min(max((self._t(value) - self.low) / (self.high - self.low), 0.0), 1.0)
        return _r(self.left + (1.0 - t if self.reverse else t) * (self.right - self.left))

    def inside(self, value: float | None) -> bool:
        if value is None or (self.log and value <= 0) or not math.isfinite(value):
            return False
        return self.low <= self._t(value) <= self.high

    def ticks(self) -> tuple[Tick, ...]:
        if self.log:
            pairs = log_ticks(math.exp(self.low), math.exp(self.high))
        else:
            pairs = linear_ticks(self.low, self.high)
        return tuple(Tick(self.x(v) or 0.0, text) for v, text in pairs)


# --- forest plots ----------------------------------------------------------------------------

FOREST_WIDTH = 680
FOREST_LEFT = 230
FOREST_RIGHT = 660
FOREST_ROW = 96


@dataclass(frozen=True)
class ForestRow:
    """One result drawn on its own axis: estimate, CI, no-difference line and margin lines.

    Each row has its own axis because metrics differ in units and in scale (differences are
    linear, rate ratios logarithmic).
    """

    heading: str  # "P-1 wellbeing"
    detail: str  # "extended · non-inferiority, margin 3"
    scale: str  # "difference" | "ratio"
    scale_label: str  # "difference in means, pilot − comparison"
    axis_label: str  # short form under the axis: "difference in means"
    estimate_text: str
    ci_text: str  # "95% CI −0.469 to 2.49"
    margin_text: str  # "" when the test has no margin
    verdict: str
    y: int  # top of the row
    has_estimate: bool
    x_estimate: float | None
    x_low: float | None  # the interval's left end as drawn (its upper bound when lower is better)
    x_high: float | None  # its right end as drawn
    open_low: bool  # the CI runs past the axis (or is unbounded) on this side
    open_high: bool
    x_null: float
    margins: tuple[Tick, ...]
    ticks: tuple[Tick, ...]
    left_label: str  # which arm the left side favours
    right_label: str
    summary: str  # the text equivalent of this row


@dataclass(frozen=True)
class ForestPlot:
    """Stacked forest rows; the template draws them and a table of the same numbers."""

    rows: tuple[ForestRow, ...]
    width: int
    height: int
    plot_left: int
    plot_right: int
    caption: str


def margin_values(kind: str, test: str, better: str, margin: float | None) -> list[float]:
    """Return where a test's margin lines go on the estimate's own scale."""
    if margin is None or test == "superiority":
        return []
    if kind == "count":
        worse = margin if better == "lower" else 1.0 / margin
        return [1.0 / margin, margin] if test == "equivalence" else [worse]
    worse = -margin if better == "higher" else margin
    return [-margin, margin] if test == "equivalence" else [worse]


def margin_text(kind: str, test: str, margin: float | None, unit: str | None = None) -> str:
    """Return the margin as words ("margin 3 WEMWBS points", "margin ratio 1.25")."""
    if margin is None or test == "superiority":
        return ""
    if kind == "count":
        return f"margin ratio {num(margin)}"
    if kind == "binary":
        return f"margin {num(margin * 100)} percentage points"
    return f"margin {num(margin)}" + (f" {unit}" if unit else "")


def _bounds(result: Mapping[str, Any]) -> tuple[float | None, float | None]:
    low, high, *_ = [*(result.get("ci") or ()), None, None]
    return low, high


def ci_text(result: Mapping[str, Any]) -> str:
    """Return "95% CI low to high" for a metric result (an unbounded ratio says so)."""
    low, high = _bounds(result)
    if low is None and high is None:
        return "CI not available"
    scale = 100.0 if result["kind"] == "binary" else 1.0
    upper = "unbounded" if high is None else num(high * scale)
    tail = " points" if result["kind"] == "binary" else ""
    level = result.get("ci_level")
    prefix = "CI" if level is None else f"{level_text(level)} CI"
    return f"{prefix} {num(None if low is None else low * scale)} to {upper}{tail}"


def estimate_text(result: Mapping[str, Any]) -> str:
    """Return the estimate with its scale ("+1.01", "RR 0.899", "−5.8 points")."""
    estimate = result.get("estimate")
    if estimate is None:
        return "no estimate"
    if result["kind"] == "count":
        return f"RR {num(estimate)}"
    if result["kind"] == "binary":
        return f"{'+' if estimate > 0 else ''}{num(estimate * 100)} points"
    return f"{'+' if estimate > 0 else ''}{num(estimate)}"


SCALE_LABELS = {
    "continuous": "difference in means, pilot − comparison",
    "binary": "difference in proportions (percentage points), pilot − comparison",
    "count": "rate ratio, pilot / comparison (log scale)",
}
AXIS_LABELS = {
    "continuous": "difference in means",
    "binary": "difference, percentage points",
    "count": "rate ratio (log scale)",
}


def forest_plot(
    entries: Sequence[tuple[str, str, Mapping[str, Any], str | None]], caption: str
) -> ForestPlot:
    """Lay out forest rows from (heading, detail, metric result dict, unit) entries."""
    rows = [_forest_row(i, *entry) for i, entry in enumerate(entries)]
    return ForestPlot(
        rows=tuple(rows),
        width=FOREST_WIDTH,
        height=max(len(rows), 1) * FOREST_ROW + 8,
        plot_left=FOREST_LEFT,
        plot_right=FOREST_RIGHT,
        caption=caption,
    )


def _forest_row(index: int, heading: str, detail: str, m: Mapping[str, Any], unit: str | None) -> ForestRow:
    kind, ratio = m["kind"], m["kind"] == "count"
    scale = 100.0 if kind == "binary" else 1.0
    null = 1.0 if ratio else 0.0
    low, high = _bounds(m)
    estimate = m.get("estimate")
    margins = margin_values(kind, m["test"], m["better"], m.get("margin"))

    def scaled(v: float | None) -> float | None:
        return None if v is None else v * scale

    values = [null, *(scaled(v) for v in (low, high, estimate)), *(v * scale for v in margins)]
    # One orientation for every row: the pilot arm's better side is always on the right, so a
    # metric where lower is better runs its axis from high (left) to low (right).
    reverse = m["better"] != "higher"
    axis = _Axis([v for v in values if v is not None], FOREST_LEFT, FOREST_RIGHT, ratio, reverse)
    unbounded_high = ratio and low is not None and high is None
    x_low = axis.x(scaled(low)) if low is not None and (not ratio or low > 0) else None
    x_high = None if high is None else axis.x(scaled(high))
    open_low = low is not None and not axis.inside(scaled(low))
    open_high = unbounded_high or (high is not None and not axis.inside(scaled(high)))
    if reverse:  # the drawing's left end is the interval's upper bound
        x_low, x_high, open_low, open_high = x_high, x_low, open_high, open_low
    estimate_words = estimate_text(m)
    interval = ci_text(m)
    mtext = margin_text(kind, m["test"], m.get("margin"), unit)
    summary = (
        f"{heading}: {estimate_words} ({interval}){'; ' + mtext if mtext else ''}; verdict {m['verdict']}."
    )
    return ForestRow(
        heading=heading,
        detail=detail,
        scale="ratio" if ratio else "difference",
        scale_label=SCALE_LABELS[kind],
        axis_label=AXIS_LABELS[kind],
        estimate_text=estimate_words,
        ci_text=interval,
        margin_text=mtext,
        verdict=m["verdict"],
        y=index * FOREST_ROW + 4,
        has_estimate=estimate is not None,
        x_estimate=axis.x(scaled(estimate)),
        x_low=x_low,
        x_high=x_high,
        open_low=open_low,
        open_high=open_high,
        x_null=axis.x(null) or FOREST_LEFT,
        margins=tuple(Tick(axis.x(v * scale) or 0.0, f"margin {num(v * scale)}") for v in margins),
        ticks=axis.ticks(),
        left_label="comparison better",
        right_label="pilot better",
        summary=summary,
    )


# --- sequential boundary chart -------------------------------------------------------------------


@dataclass(frozen=True)
class BoundaryPoint:
    """A point of the boundary chart: planned critical |z| or the observed |z| at a look."""

    x: float
    y: float
    stage: str
    fraction: str
    value: str


@dataclass(frozen=True)
class LookLine:
    """A row of the boundary chart's table: one planned look."""

    look: int
    stage: str
    fraction: str
    boundary: str
    alpha_spent: str
    observed: str  # observed z of the primary's test (``observed_z``), "" if not available
    crossed: str  # "yes" | "no" | ""


@dataclass(frozen=True)
class BoundaryChart:
    """Planned O'Brien–Fleming-type boundaries by information fraction, with the observed z."""

    width: int
    height: int
    left: int
    top: int
    right: int
    bottom: int
    planned: tuple[BoundaryPoint, ...]
    planned_path: str  # SVG polyline points
    observed: tuple[BoundaryPoint, ...]
    reference_y: float | None  # the fixed-sample 1.96 line, when on the chart
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    looks: tuple[LookLine, ...]
    summary: str


def boundary_chart(
    stages: Sequence[str],
    fractions: Sequence[float],
    z: Sequence[float],
    alpha_spent: Sequence[float],
    observed: Mapping[int, float | None],
    primary: str,
) -> BoundaryChart:
    """Lay out the boundary chart; ``observed`` maps a look index to the primary's z (``observed_z``) or None."""
    width, height, left, top, right, bottom = 560, 280, 56, 16, 470, 236
    seen = [v for v in observed.values() if v is not None and math.isfinite(v)]
    top_value = max([*z, *seen, 2.0]) * 1.1
    step = _nice_step(top_value, 5)
    y_max = math.ceil(top_value / step) * step

    def px(fraction: float) -> float:
        return _r(left + fraction * (right - left))

    def py(value: float) -> float:
        return _r(bottom - min(max(value, 0.0), y_max) / y_max * (bottom - top))

    planned = tuple(
        BoundaryPoint(px(f), py(b), s, num(f), num(b, 4))
        for s, f, b in zip(stages, fractions, z, strict=True)
    )
    marks = tuple(
        BoundaryPoint(px(fractions[k]), py(v), stages[k], num(fractions[k]), num(v, 3))
        for k, v in sorted(observed.items())
        if v is not None and math.isfinite(v) and k < len(fractions)
    )
    looks = []
    for k, (s, f, b, a) in enumerate(zip(stages, fractions, z, alpha_spent, strict=True)):
        value = observed.get(k)
        shown = value is not None and math.isfinite(value)
        looks.append(
            LookLine(
                look=k + 1,
                stage=s,
                fraction=num(f),
                boundary=num(b, 4),
                alpha_spent=num(a, 3),
                observed=num(value, 3) if shown else "",
                crossed=("yes" if value >= b else "no") if shown else "",  # type: ignore[operator]
            )
        )
    parts = [
        f"look {line.look} ({line.stage}, t = {line.fraction}): boundary |z| {line.boundary}"
        for line in looks
    ]
    observed_parts = [
        f"{line.stage}: observed z {line.observed} ({'crossed' if line.crossed == 'yes' else 'not crossed'})"
        for line in looks
        if line.observed
    ]
    summary = f"Planned boundaries for {label(primary)}: " + "; ".join(parts) + "."
    if observed_parts:
        summary += " Observed: " + "; ".join(observed_parts) + "."
    else:
        summary += " No observed z yet."
    y_ticks = tuple(Tick(py(v), text) for v, text in linear_ticks(0.0, y_max, 5))
    x_ticks = tuple(
        Tick(px(v), text)
        for v, text in ((0.0, "0"), (0.25, "0.25"), (0.5, "0.5"), (0.75, "0.75"), (1.0, "1"))
    )
    return BoundaryChart(
        width=width,
        height=height,
        left=left,
        top=top,
        right=right,
        bottom=bottom,
        planned=planned,
        planned_path=" ".join(f"{p.x},{p.y}" for p in planned),
        observed=marks,
        reference_y=py(1.96) if y_max > 1.96 else None,
        x_ticks=x_ticks,
        y_ticks=y_ticks,
        looks=tuple(looks),
        summary=summary,
    )


def observed_z(result: Mapping[str, Any]) -> float | None:
    """Return the primary's observed z for its pre-registered test, or None where there is none.

    Superiority: |estimate| / se (|log rate ratio| / se for counts). Non-inferiority: how far the
    estimate lies from the margin on the better side, over se, so the point reaches the boundary
    when non-inferiority is shown at that look (negative when the estimate is beyond the margin).
    Equivalence (two one-sided tests) has no single z: None, and the chart omits the point.
    """
    estimate, se, margin = result.get("estimate"), result.get("se"), result.get("margin")
    if estimate is None or not se:
        return None
    if result["kind"] == "count":
        if estimate <= 0:
            return None
        value, margin = math.log(estimate), None if margin is None else math.log(margin)
    else:
        value = estimate
    if result.get("test") == "superiority":
        return abs(value) / se
    if result.get("test") == "non-inferiority" and margin is not None:
        benefit = value if result.get("better") == "higher" else -value
        return (benefit + margin) / se
    return None


# --- bar charts ---------------------------------------------------------------------------------

BAR_WIDTH = 680
BAR_LEFT = 190
BAR_RIGHT = 600
BAR_HEIGHT = 14
SERIES_CLASSES = ("bar-public", "bar-citizen-cash", "bar-citizen-time")


@dataclass(frozen=True)
class Bar:
    """One horizontal bar of a series within a group."""

    series: str
    css: str
    x: float
    y: float
    width: float
    height: int
    value_text: str
    text_x: float


@dataclass(frozen=True)
class BarGroup:
    """The bars of one group (a pilot, or an arm) with its label."""

    label: str
    label_y: float
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class Legend:
    """A legend entry: swatch position and series name."""

    name: str
    css: str
    x: float


@dataclass(frozen=True)
class BarChart:
    """Grouped horizontal bars on one money axis."""

    width: int
    height: int
    left: int
    right: int
    top: int
    axis_y: float
    groups: tuple[BarGroup, ...]
    legend: tuple[Legend, ...]
    ticks: tuple[Tick, ...]
    caption: str


def bar_chart(groups: Sequence[tuple[str, Sequence[float]]], series: Sequence[str], caption: str) -> BarChart:
    """Lay out grouped bars from (group label, values per series); all values share one axis from 0."""
    top = 30
    biggest = max([v for _, values in groups for v in values] + [0.0])
    high = biggest * 1.05 if biggest > 0 else 1.0
    scale = (BAR_RIGHT - BAR_LEFT) / high
    laid: list[BarGroup] = []
    y = float(top)
    for name, values in groups:
        bars = []
        for i, (series_name, value) in enumerate(zip(series, values, strict=True)):
            bar_y = y + i * (BAR_HEIGHT + 2)
            width = _r(max(value, 0.0) * scale)
            bars.append(
                Bar(
                    series_name,
                    SERIES_CLASSES[i % len(SERIES_CLASSES)],
                    BAR_LEFT,
                    _r(bar_y),
                    width,
                    BAR_HEIGHT,
                    money(value),
                    _r(BAR_LEFT + width + 4),
                )
            )
        block = len(series) * (BAR_HEIGHT + 2)
        laid.append(BarGroup(name, _r(y + block / 2 + 4), tuple(bars)))
        y += block + 14
    ticks = tuple(Tick(_r(BAR_LEFT + v * scale), text) for v, text in linear_ticks(0.0, high, 4))
    legend = tuple(
        Legend(name, SERIES_CLASSES[i % len(SERIES_CLASSES)], BAR_LEFT + i * 150)
        for i, name in enumerate(series)
    )
    return BarChart(
        width=BAR_WIDTH,
        height=int(y) + 24,
        left=BAR_LEFT,
        right=BAR_RIGHT,
        top=top,
        axis_y=_r(y),
        groups=tuple(laid),
        legend=legend,
        ticks=ticks,
        caption=caption,
    )


# --- plain-language results ----------------------------------------------------------------------


def result_sentence(m: Mapping[str, Any], unit: str | None = None) -> str:
    """Say what a metric result means in one sentence, with the right direction and scale words.

    e.g. "The pilot arm's wellbeing was 1.01 WEMWBS points higher (95% CI −0.469 to 2.49);
    non-inferiority with margin 3 WEMWBS points was shown."
    """
    name = label(m["name"])
    estimate = m.get("estimate")
    if estimate is None:
        empty = [arm for arm, n in (m.get("n") or {}).items() if not n]
        if empty:
            return f"No estimate for {name} yet: no data in the {' and '.join(empty)} arm{'s' if len(empty) > 1 else ''}."
        return f"No estimate for {name}: the data do not support one (for example, no events in the comparison arm)."
    interval = ci_text(m)
    if m["kind"] == "continuous":
        units = f" {unit}" if unit else ""
        if estimate == 0:
            effect = f"The pilot arm's {name} was the same as the comparison arm's"
        else:
            effect = f"The pilot arm's {name} was {num(abs(estimate))}{units} {'higher' if estimate > 0 else 'lower'}"
    elif m["kind"] == "binary":
        summary = m.get("summary") or {}
        shares = [summary.get(arm) for arm in (m.get("n") or {})]
        if len(shares) == 2 and None not in shares:
            interval = f"{pct(shares[1])} against {pct(shares[0])}; {interval}"
        if estimate == 0:
            effect = f"The share with {name} was the same in both arms"
        else:
            effect = (
                f"The share with {name} was {num(abs(estimate) * 100)} percentage points "
                f"{'higher' if estimate > 0 else 'lower'} in the pilot arm"
            )
    else:
        change = ""
        if estimate != 1:
            change = f", {num(abs(estimate - 1) * 100)}% {'higher' if estimate > 1 else 'lower'}"
        effect = f"The pilot arm's rate of {name} was {num(estimate)} times the comparison rate{change}"
    return f"{effect} ({interval}); {verdict_clause(m, unit)}."


def verdict_clause(m: Mapping[str, Any], unit: str | None = None) -> str:
    """Say what the verdict means for the metric's pre-registered test."""
    verdict, test = m["verdict"], m["test"]
    margin = margin_text(m["kind"], test, m.get("margin"), unit)
    worse = "the whole interval lies on the worse side"
    if test == "non-inferiority":
        return {
            "non-inferior": f"non-inferiority with {margin} was shown",
            "superior": f"non-inferiority with {margin} was shown, and the pilot arm was better",
            "inferior": f"the pilot arm was worse by more than the {margin} (inferior)",
            "harm": f"the pilot arm was worse ({worse}) and non-inferiority with {margin} was not shown",
        }.get(verdict, f"non-inferiority with {margin} was not shown (inconclusive)")
    if test == "equivalence":
        within = margin.replace("margin ", "±", 1)
        return {
            "equivalent": f"equivalence within {within} was shown",
            "inferior": f"the pilot arm was worse by more than the {margin}: not equivalent",
            "superior": f"the pilot arm was better by more than the {margin}: not equivalent",
            "harm": f"the pilot arm was worse ({worse}); equivalence was not shown",
        }.get(verdict, f"equivalence within {within} was not shown (inconclusive)")
    return {
        "superior": "the pilot arm was better (superiority shown)",
        "harm": f"the pilot arm was worse ({worse}: harm)",
        "inferior": f"the pilot arm was worse ({worse})",
    }.get(verdict, "no difference was shown either way (inconclusive)")


# --- board ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SideCounts:
    """Open risks of one side by rating (in RATINGS order)."""

    side: str
    counts: tuple[int, ...]
    total: int


@dataclass(frozen=True)
class Headline:
    """The board's headline counts."""

    open_risks: int
    closed_risks: int
    ratings: tuple[str, ...]  # low … very high
    by_side: tuple[SideCounts, ...]  # citizen, professional, shared
    rating_totals: tuple[int, ...]
    above_appetite: int
    overdue: int
    escalated: int
    pilots: int
    pilots_by_status: tuple[tuple[str, int], ...]  # (status, count) for active, stopped, completed


@dataclass(frozen=True)
class TopRisk:
    """A risk among the highest current scores, with its direction of travel and time at high."""

    risk: RiskLine
    score_then: int | None  # the current score at --since (None: not yet registered)
    direction: str  # up | down | same | new
    direction_text: str  # "up from 8: worse", "down from 12: better", "no change", "new"
    target: str  # "6 (medium)" or "not set"
    target_gap: str  # "9 above target", "on target", ""
    days_high: int  # days the current tier was rated high or very high, to the as-of date


@dataclass(frozen=True)
class PilotLine:
    """A pilot in the board's pipeline."""

    id: str
    key: str
    title: str
    status: str
    stage: str
    stage_position: str  # "2 of 3"
    recommendation: str  # proceed | continue | stop | "" (none available)
    source: str  # where the recommendation comes from (stored with a decision, or analysed now)
    reasons: tuple[str, ...]
    primary: str  # one-line primary result, "" if none
    progress: str  # "57 of 60 per arm"
    decision_due: str  # "" when no decision is due
    last_decision: str  # "proceed (override) by Board chair, 2026-05-12", "" if none
    overrides: int
    amendments: int
    late_amendments: int  # amendments made after data arrived
    decision: DecisionLine | None = None  # the latest gate decision, for the plain sentence


@dataclass(frozen=True)
class BoardContext:
    """Context of ``board.html.j2``: what a board needs on one page set, never every row.

    Lists are capped (``RiskList.more`` says how many are left out) so that a register of
    10,000 risks still gives a small file.
    """

    page: Page
    paper: BoardPaper  # cover, key messages, asks, assurance gaps, BAF entries, appetite, arm resources
    since: str  # ISO date the direction of travel is measured from
    headline: Headline
    heatmaps: tuple[HeatMap, ...]  # citizen, professional (side by side), then shared
    heat_legend: tuple[HeatBand, ...]  # the rating bands, low first
    top_risks: tuple[TopRisk, ...]
    escalated: RiskList
    above_appetite: RiskList
    overdue: RiskList
    pipeline: tuple[PilotLine, ...]
    analysis_note: str  # how the pipeline's recommendations were obtained
    overrides: tuple[DecisionLine, ...]
    amendments: tuple[AmendmentLine, ...]
    forest: ForestPlot
    hour_value: str  # citizen hour value used for unpaid citizen time


# --- pilot ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricDefinition:
    """A metric as the protocol defines it."""

    name: str
    description: str
    unit: str
    kind: str
    role: str
    better: str
    test: str
    margin: str


@dataclass(frozen=True)
class StageDefinition:
    """A stage as the protocol defines it, and whether the pilot has reached it."""

    name: str
    planned_n: int
    evidence_level: str
    criteria: str  # "recruited green ≥ 60, red < 40; …"
    reached: bool
    current: bool


@dataclass(frozen=True)
class PilotSummary:
    """The protocol summary at the top of a pilot report."""

    id: str
    key: str
    title: str
    status: str
    stage: str
    service: str
    modes: str
    owner: str
    hypothesis: str
    sha256: str
    arms: tuple[str, str]  # comparison, pilot
    allocation: str  # "1:1"
    alpha: str
    power: str
    linked_risks: str


@dataclass(frozen=True)
class ArmValue:
    """A per-arm number in a results table."""

    arm: str
    text: str


@dataclass(frozen=True)
class ResultLine:
    """One metric's result at one stage, formatted, with its plain-language sentence."""

    name: str
    role: str
    kind: str
    test: str
    n: tuple[ArmValue, ...]  # units with a value, per arm
    missing: tuple[ArmValue, ...]  # "+11 missing", or "" when none is missing
    summary: tuple[ArmValue, ...]  # mean, proportion or rate per arm
    estimate: str
    ci: str
    p_value: str
    p_adjusted: str
    boundary: str
    verdict: str
    method: str
    sentence: str
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class CriterionLine:
    """A progression criterion's value and status at a stage."""

    name: str
    description: str
    value: str
    green: str
    red: str
    status: str


@dataclass(frozen=True)
class StageAnalysis:
    """The analysis at one stage reached, on cumulative data (``analyse(session, pilot, k)``)."""

    stage: str
    index: int
    stages_included: str
    note: str  # says so when no data arrived at this stage yet ("" otherwise)
    recommendation: str
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]
    units: tuple[ArmValue, ...]
    information_fraction: str
    boundary: str  # the primary's critical |z| at this look
    srm: str  # "222 comparison, 222 pilot; χ² p = 1.0000: ok"
    srm_ok: bool
    criteria: tuple[CriterionLine, ...]
    results: tuple[ResultLine, ...]
    notes: tuple[str, ...] = ()  # early evidence of effect, provisional criteria
    futility: str = ""  # "the chance of showing ..., if the rest of the pilot went as planned, is 97 %"
    stagewise: str = ""  # the primary's median-unbiased estimate after an early crossing
    by_site: tuple[SiteLine, ...] = ()  # [design] stratify = "site": each metric within site
    adjusted: tuple[str, ...] = ()  # metrics with a covariate: the baseline-adjusted result in words
    design: tuple[str, ...] = ()  # a cluster design's layout, clusters, ICC and design effect in words


@dataclass(frozen=True)
class SiteLine:
    """One metric's site-stratified result: the combined estimate, heterogeneity and each site's own."""

    metric: str
    estimate: str
    interval: str
    heterogeneity: str
    sites: tuple[tuple[str, str, str, str], ...]  # (site, comparison, pilot, the site's own estimate)
    method: str


@dataclass(frozen=True)
class PowerLine:
    """Achieved power: minimum detectable effect at the current n (analysis ``power`` extras)."""

    metric: str
    mde: str
    scale: str
    assumption: str  # "sd 8 (protocol)", "baseline 0.18 (protocol baseline)"
    power_target: str
    non_inferiority_power: str  # power to show non-inferiority if the arms are equal, or ""


@dataclass(frozen=True)
class CostLine:
    """Costs of one arm (or the unallocated or overall inputs) to the analysed stage."""

    name: str
    public: str
    citizen: str
    citizen_time_valued: str
    total: str
    units: str
    per_unit: str  # with citizen inputs
    per_unit_public: str  # public inputs only


@dataclass(frozen=True)
class CostSummary:
    """Costs with and without citizen inputs, as the analysis of the latest stage reports them."""

    stage: str
    hour_value: str
    lines: tuple[CostLine, ...]
    incremental_with_citizen: str
    incremental_public_only: str
    per_effect_with_citizen: str
    per_effect_public_only: str
    effect_basis: str
    chart: BarChart


@dataclass(frozen=True)
class EvidenceLine:
    """A re-score of a linked risk that rested on this pilot's result."""

    at: str
    stage: str
    metric: str
    verdict: str
    estimate: str
    ci: str
    score_before: str  # "15 (very high)"
    score_after: str


@dataclass(frozen=True)
class LinkedRisk:
    """A risk the pilot tests, its tiers now, and the evidence re-scores it received."""

    id: str
    title: str
    side: str
    status: str
    inherent: str  # "3×5 = 15 (very high)"
    current: str
    target: str
    current_rating_class: str
    evidence: tuple[EvidenceLine, ...]


@dataclass(frozen=True)
class DataFileLine:
    """A data file the pilot took: where its numbers came from."""

    kind: str  # "outcomes" or "resources"
    stage: str
    file: str
    rows: int  # observations, or cost lines for resources
    missing: int
    replaced: int  # earlier observations the file's --replace removed
    actor: str
    at: str  # "2026-05-12 10:00 UTC"


@dataclass(frozen=True)
class PilotContext:
    """Context of ``pilot.html.j2``: one pilot from protocol to gate decisions."""

    page: Page
    pilot: PilotSummary
    metrics: tuple[MetricDefinition, ...]
    stages: tuple[StageDefinition, ...]
    amendments: tuple[AmendmentLine, ...]
    analyses: tuple[StageAnalysis, ...]  # one per stage reached, first stage first
    latest_stage: str  # the stage the forest plot, power and costs describe ("" if none)
    forest: ForestPlot | None
    boundary: BoundaryChart
    power: tuple[PowerLine, ...]
    costs: CostSummary | None
    risks: tuple[LinkedRisk, ...]
    decisions: tuple[DecisionLine, ...]
    data_files: tuple[DataFileLine, ...]  # oldest first
    # the bottom line first (riskreg.pilot_paper): the decision panel, the funnel, the effect by stage
    panel: DecisionPanel | None = None
    funnel: tuple[FunnelStep, ...] = ()
    stage_effects: tuple[StageEffect, ...] = ()


# --- qa ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FindingLine:
    """A QA finding (``riskreg.qa.Finding``), with its subject named as the register has it."""

    rule: str
    subject: str
    message: str
    advice: str
    title: str = ""  # the subject's title (a risk's or pilot's), "" if the register has none
    owner: str = ""  # a risk's owner, "" for other subjects or nobody


@dataclass(frozen=True)
class Assurance:
    """What ``riskreg audit verify`` would say as the report was built: the chain and the register state."""

    chain_ok: bool
    events: int
    chain: str  # "audit chain verified: 27 events intact" or where it broke
    state_ok: bool
    state: str  # "the register matches the trail: 15 risks, …" or how many differences
    mismatches: tuple[str, ...]  # "R-3: likelihood is 4 in the register but 3 in the trail"

    @property
    def ok(self) -> bool:
        """Whether both checks passed."""
        return self.chain_ok and self.state_ok


@dataclass(frozen=True)
class FindingGroup:
    """The findings of one severity."""

    severity: str  # error | warning | info
    findings: tuple[FindingLine, ...]


@dataclass(frozen=True)
class RuleLine:
    """A QA rule that was run, with its default severity and what it looks for."""

    name: str
    severity: str
    description: str


@dataclass(frozen=True)
class Change:
    """One changed field of an audit event."""

    field: str
    before: str
    after: str


@dataclass(frozen=True)
class EventLine:
    """One audit event in the period, or a run of alike events (a bulk import) shown as one line."""

    seq: str  # "12", or "12–10,011" for a run
    at: str
    actor: str
    action: str
    entity: str  # "R-3", or "R-1 … R-10000" for a run
    reason: str
    created: str  # for a run of alike events: what the run was ("" otherwise)
    changes: tuple[Change, ...]  # for an event that changes something: field, old → new
    run: int  # how many events the line stands for (1 unless a run)
    recorded: tuple[Change, ...] = ()  # for an event that creates something: field and value
    more: int = 0  # changed or recorded fields left out of the line


@dataclass(frozen=True)
class QaContext:
    """Context of ``qa.html.j2``: findings by severity and the audit trail of the period."""

    page: Page
    since: str
    until: str
    assurance: Assurance
    counts: tuple[tuple[str, int], ...]  # (severity, count), errors first
    groups: tuple[FindingGroup, ...]  # only severities with findings
    rules: tuple[RuleLine, ...]
    events: tuple[EventLine, ...]
    event_count: int  # events in the period (runs count every event)
