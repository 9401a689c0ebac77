"""How a data file's columns map to riskreg's (DESIGN §4): the intake, the layout and a row's cells.

An outcome file comes in long form (``unit_id,arm,metric,value[,exposure][,site]``) or wide
form (one column per metric); its columns may be renamed and its arm labels mapped, by the
protocol's ``[data]`` table or an import's ``--map``, and its missing values spelled as
``riskreg.toml`` says (``Intake``). ``layout_of`` finds where each of riskreg's columns is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from riskreg.config import DEFAULT_MISSING_VALUES
from riskreg.csvfile import Columns, CsvRows, refuse_missing_columns, resolve_columns
from riskreg.errors import InvalidInput
from riskreg.protocol import Protocol

MISSING = frozenset(word.lower() for word in DEFAULT_MISSING_VALUES)  # unless riskreg.toml says otherwise
LONG_COLUMNS = ("unit_id", "arm", "metric", "value", "exposure", "site")


@dataclass
class Layout:
    """How a file's columns map to observations: long (one per row) or wide (one per metric column)."""

    form: str
    unit: int
    arm: int
    metric: int = -1
    value: int = -1
    exposure: int = -1
    site: int = -1
    wide_metrics: tuple[tuple[int, str], ...] = ()
    columns: Columns | None = None  # the header's width and the columns ignored

    @property
    def width(self) -> int:
        return self.columns.width if self.columns is not None else -1

    @property
    def ignored(self) -> tuple[str, ...]:
        return self.columns.ignored if self.columns is not None else ()


@dataclass(frozen=True)
class Intake:
    """How to read one data file: renamed columns, arm labels, strictness and the missing words.

    ``columns`` maps a file's column (trimmed, lower-cased) to riskreg's name for it,
    ``arm_labels`` a file's arm label (trimmed) to an arm; ``missing`` holds lower-cased words.
    """

    columns: dict[str, str] = field(default_factory=dict)
    arm_labels: dict[str, str] = field(default_factory=dict)
    strict: bool = False
    missing: frozenset[str] = MISSING


def intake_for(
    protocol: Protocol,
    metric_names: Iterable[str],
    mapping: dict[str, str] | None = None,
    strict: bool = False,
    missing_values: Iterable[str] = DEFAULT_MISSING_VALUES,
) -> Intake:
    """Combine the protocol's [data] table with one import's ``mapping`` (file name -> riskreg name or arm).

    A mapping to an arm is an arm label; any other must name a column or a metric. A
    mapping replaces the protocol's for the same riskreg name and for the same file column.
    """
    names = (*LONG_COLUMNS, *metric_names)
    columns = {header.strip().lower(): name for name, header in protocol.data.columns.items()}
    labels = dict(protocol.data.arm_labels)
    for given, target in (mapping or {}).items():
        key = given.strip().lower()
        if target in names:
            columns = {k: v for k, v in columns.items() if v != target and k != key}
            columns[key] = target
        elif target in protocol.design.arms:
            labels[given.strip()] = target
        else:
            raise unknown_map_target(given, target, names, protocol.design.arms)
    return Intake(columns, labels, strict, frozenset(word.lower() for word in missing_values))


def unknown_map_target(given: str, target: str, columns: Iterable[str], arms: Iterable[str]) -> InvalidInput:
    """The error for ``--map GIVEN=TARGET`` whose target is neither one of the columns nor an arm."""
    return InvalidInput(
        f"--map {given}={target}: {target!r} is neither a column nor an arm "
        f"(columns: {', '.join(columns)}; arms: {', '.join(arms)})"
    )


def layout_of(
    header: list[str],
    source: str,
    metric_names: list[str],
    intake: Intake | None = None,
    names: list[str] | None = None,
) -> Layout:
    """Find the columns: long form if ``metric`` or ``value`` is among them, else wide form.

    Columns that are neither riskreg's nor mapped to one are ignored (``Layout.ignored``),
    or refused with ``intake.strict``.
    """
    intake = intake or Intake()
    mapped = {intake.columns.get(name, name) for name in header}
    long = "metric" in mapped or "value" in mapped
    wanted = LONG_COLUMNS if long else ("unit_id", "arm", "exposure", "site", *metric_names)
    parsed = CsvRows(source, header, iter(()), names=names)
    columns = resolve_columns(parsed, wanted, intake.columns, intake.strict)
    position = columns.position
    required = ("unit_id", "arm", "metric", "value") if long else ("unit_id", "arm")
    refuse_missing_columns(source, required, position)
    if long:
        return Layout(
            "long",
            position["unit_id"],
            position["arm"],
            position["metric"],
            position["value"],
            position.get("exposure", -1),
            position.get("site", -1),
            columns=columns,
        )
    wide = tuple(sorted((i, name) for name, i in position.items() if name in metric_names))
    if not wide:
        raise InvalidInput(
            f"{source}: line 1: no metric columns (expected some of: {', '.join(metric_names)}), or long form: unit_id,arm,metric,value"
        )
    return Layout(
        "wide",
        position["unit_id"],
        position["arm"],
        exposure=position.get("exposure", -1),
        site=position.get("site", -1),
        wide_metrics=wide,
        columns=columns,
    )


def trimmed_cell(values: list[str], index: int) -> str:
    """Return a row's cell at ``index``, trimmed; empty for a column the file lacks (index -1) or a short row."""
    return values[index].strip() if 0 <= index < len(values) else ""
