"""Load and validate pilot protocol files (``pilots/*.toml``).

A protocol is parsed with :mod:`tomllib` and checked completely before anything is stored.
Every problem is collected and reported together, each as ``{file}: {key.path}: {message}``
(``metrics[1]`` is the second ``[[metrics]]`` table), so a user can fix a file in one pass.
Only the standard library is used here; whether linked risks exist is checked later by the
database layer.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import math
import os
import re
import tomllib
from dataclasses import dataclass
from typing import Any

from riskreg.errors import NotFound, ProtocolError
from riskreg.vocab import MODES

KINDS = ("continuous", "binary", "count")
ROLES = ("primary", "secondary", "safety", "baseline")  # baseline: a covariate, measured, never tested
TESTS = ("superiority", "non-inferiority", "equivalence")
BETTER = ("higher", "lower")
CRITERIA = {
    "recruited": "units per arm (smallest arm) with any observation",
    "retention": "share of units with the primary outcome recorded",
}
# Column names with a fixed meaning in outcome-data CSV files; a metric may not use them.
RESERVED_COLUMNS = ("unit_id", "arm", "metric", "value", "exposure", "site", "stage")
MAX_PLANNED_N = 1_000_000_000
STRATA_COLUMNS = ("site",)  # what [design] stratify may name: the outcome files' site column
UNITS = ("individual", "cluster")  # what [design] unit allocates to the arms
LAYOUTS = ("parallel", "stepped-wedge")
WEIGHTINGS = ("equal", "size", "minimum-variance")  # riskreg.stats.designs: cluster summaries' weights
CLUSTER_KEYS = ("cluster", "clusters_per_arm", "cluster_size", "icc", "weighting", "layout", "schedule")
MAX_CLUSTERS = 1000
# Size limits, so that one protocol cannot fill the register or the reports: a real protocol
# is a few kB with a handful of metrics and stages. Names (metrics, arms, slugs) go into
# 100-character columns on every backend; free text (title, hypothesis, service...) is
# generous prose.
MAX_PROTOCOL_BYTES = 1 << 20
MAX_METRICS = 100
MAX_STAGES = 20
MAX_NAME_CHARS = 100
MAX_TEXT_CHARS = 10_000

SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")
ARM_NAME = re.compile(r"[A-Za-z0-9_-]+")
IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
RISK_ID = re.compile(r"R-[1-9][0-9]*")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")

_KEYS = {
    "": ("pilot", "design", "metrics", "stages", "data"),
    "pilot": ("key", "title", "service", "modes", "owner", "hypothesis", "risks"),
    "design": ("arms", "allocation", "alpha", "power", "futility", "stratify", "unit", *CLUSTER_KEYS),
    "prior": ("mean", "sd"),
    "metric": (
        "name",
        "kind",
        "role",
        "better",
        "test",
        "margin",
        "sd",
        "baseline",
        "covariate",
        "prior",
        "description",
        "unit",
    ),
    "stage": ("name", "planned_n", "evidence_level", "criteria"),
    "criteria": tuple(CRITERIA),
    "data": ("columns", "arm_labels"),
}
# the columns of a long-form outcome file, which [data] columns may map (besides metric names)
DATA_COLUMNS = ("unit_id", "arm", "metric", "value", "exposure", "site")
DEFAULT_FUTILITY = 0.10  # conditional power below which the primary is futile
_SLUG_TEXT = "a slug (lower-case letters, digits and '-', starting with a letter or digit)"


@dataclass(frozen=True)
class Criterion:
    """A progression criterion: green at or above ``green``, red below ``red``, amber between."""

    name: str
    green: float
    red: float

    def status(self, value: float) -> str:
        """Return ``green``, ``amber`` or ``red`` for an observed value of this criterion."""
        if value >= self.green:
            return "green"
        return "red" if value < self.red else "amber"


@dataclass(frozen=True)
class Stage:
    """One step of a pilot; ``planned_n`` is cumulative units per arm up to this stage."""

    name: str
    planned_n: int
    evidence_level: int | None
    criteria: tuple[Criterion, ...]

    def criterion(self, name: str) -> Criterion | None:
        """Return the criterion called ``name``, or None if this stage does not set it."""
        return next((c for c in self.criteria if c.name == name), None)


@dataclass(frozen=True)
class Metric:
    """An outcome measured per unit; ``margin`` is a ratio (> 1) for count metrics."""

    name: str
    kind: str
    role: str
    better: str
    test: str
    margin: float | None
    sd: float | None
    baseline: float | None
    description: str | None
    unit: str | None
    covariate: str | None = None  # a baseline metric to adjust this continuous one for (ANCOVA)
    # the board probabilities' normal prior for the effect (mean, sd) on the analysis scale (log for
    # counts); None: the default (riskreg.analysis.default_prior)
    prior: tuple[float, float] | None = None


@dataclass(frozen=True)
class Design:
    """Arms (comparison first), allocation ratio, two-sided alpha, planned power and futility threshold.

    ``futility``: a stage whose conditional power for the primary's test, if the rest of the
    pilot went as planned, falls below this is futile (non-binding; DESIGN §5).
    """

    arms: tuple[str, str]
    allocation: tuple[float, float]
    alpha: float
    power: float
    futility: float = DEFAULT_FUTILITY
    stratify: str | None = None  # "site": results are also combined within site (riskreg.strata)
    unit: str = "individual"  # "cluster": whole clusters (teams, wards, practices) are allocated
    # cluster designs (riskreg.clustered): the file column naming each cluster, the planning
    # assumptions, and the weights of the cluster-level test
    cluster: str | None = None
    clusters_per_arm: int | None = None
    cluster_size: float | None = None
    icc: float | None = None
    weighting: str = "equal"
    layout: str = "parallel"  # "stepped-wedge": every cluster crosses to the pilot at its own stage
    schedule: tuple[tuple[str, str], ...] = ()  # stepped wedge: (cluster, the stage it switches at)

    @property
    def clustered(self) -> bool:
        """True if clusters, not individuals, are allocated to the arms."""
        return self.unit == "cluster"

    @property
    def stepped(self) -> bool:
        """True for a stepped-wedge layout (the stages are its periods)."""
        return self.layout == "stepped-wedge"

    def switch_stage(self, cluster: str) -> str | None:
        """Return the stage at which a stepped-wedge cluster switches to the pilot, None if unscheduled."""
        return dict(self.schedule).get(cluster)

    @property
    def comparison(self) -> str:
        """The comparison arm (usually the status quo)."""
        return self.arms[0]

    @property
    def pilot(self) -> str:
        """The pilot arm (the co-produced service)."""
        return self.arms[1]


@dataclass(frozen=True)
class DataSpec:
    """How a pilot's data files name things: ``columns`` riskreg name -> the file's header,
    ``arm_labels`` the file's arm label -> arm name (the optional ``[data]`` table)."""

    columns: dict[str, str] = dataclasses.field(default_factory=dict)
    arm_labels: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class Protocol:
    """A validated pilot protocol with its exact text and the SHA-256 of the file's bytes."""

    key: str
    title: str
    service: str | None
    modes: tuple[str, ...]
    owner: str | None
    hypothesis: str
    risks: tuple[str, ...]
    design: Design
    metrics: tuple[Metric, ...]
    stages: tuple[Stage, ...]
    text: str
    sha256: str
    data: DataSpec = dataclasses.field(default_factory=DataSpec)

    @property
    def primary(self) -> Metric:
        """The single primary metric."""
        return next(m for m in self.metrics if m.role == "primary")

    def metric(self, name: str) -> Metric:
        """Return the metric called ``name``; raise NotFound if the protocol has none."""
        for metric in self.metrics:
            if metric.name == name:
                return metric
        names = ", ".join(m.name for m in self.metrics)
        raise NotFound(f"pilot {self.key} has no metric '{name}' (metrics: {names})")

    def stage(self, name: str) -> Stage:
        """Return the stage called ``name``; raise NotFound if the protocol has none."""
        return self.stages[self.stage_index(name)]

    def stage_index(self, name: str) -> int:
        """Return the 0-based position of stage ``name``; raise NotFound if it does not exist."""
        for index, stage in enumerate(self.stages):
            if stage.name == name:
                return index
        names = ", ".join(s.name for s in self.stages)
        raise NotFound(f"pilot {self.key} has no stage '{name}' (stages: {names})")

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output: every field except the protocol text."""
        data = dataclasses.asdict(self)
        del data["text"]
        if not (self.data.columns or self.data.arm_labels):
            del data["data"]  # shown only when the protocol has a [data] table
        if self.design.stratify is None:
            del data["design"]["stratify"]  # shown only when the design is stratified
        if not self.design.clustered:  # shown only for cluster designs
            for key in ("unit", *CLUSTER_KEYS):
                del data["design"][key]
        elif self.design.stepped:
            data["design"]["schedule"] = dict(self.design.schedule)
        else:
            del data["design"]["schedule"]
        for metric in data["metrics"]:
            if metric["prior"] is None:
                del metric["prior"]
            else:
                metric["prior"] = dict(zip(("mean", "sd"), metric["prior"], strict=True))
        data["primary"] = self.primary.name
        return data


def load_protocol(path: str | os.PathLike[str]) -> Protocol:
    """Read and validate a protocol file; messages name the path as given."""
    source = os.fsdecode(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise ProtocolError([f"{source}: cannot read file: {exc.strerror or exc}"]) from None
    return parse_protocol(data, source)


def parse_protocol(data: bytes, source: str) -> Protocol:
    """Parse and validate protocol bytes; raise ProtocolError listing every problem.

    ``source`` names the file in messages. A leading UTF-8 byte-order mark is accepted;
    ``Protocol.text`` keeps it, so ``text.encode()`` gives back exactly ``data``.
    """
    if len(data) > MAX_PROTOCOL_BYTES:
        raise ProtocolError(
            [
                f"{source}: (file): {len(data):,} bytes; a protocol may be at most {MAX_PROTOCOL_BYTES:,} bytes (1 MiB)"
            ]
        )
    text = _decode(data, source)
    doc = _parse_toml(text, source)
    check = _Checker(source)
    protocol = _build(check, doc, text, hashlib.sha256(data).hexdigest())
    if check.problems or protocol is None:
        raise ProtocolError(check.problems)
    return protocol


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = data[exc.start]
        message = (
            f"not valid UTF-8: byte 0x{byte:02x} at line {line}, column {column}; save the file as UTF-8"
        )
        raise ProtocolError([f"{source}: (file): {message}"]) from None


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
    except ValueError:  # an integer literal beyond Python's digit limit
        message = "a number has too many digits"
    except RecursionError:
        message = "arrays or tables are nested too deeply"
    raise ProtocolError([f"{source}: (file): invalid TOML: {message}"])


def _build(check: _Checker, doc: dict[str, Any], text: str, sha256: str) -> Protocol | None:
    check.unknown(doc, "", "")
    pilot = _pilot(check, check.section(doc, "pilot"))
    design = _design(check, check.section(doc, "design"))
    metrics = _metrics(check, check.array(doc, "metrics"))
    stages = _stages(check, check.array(doc, "stages"))
    if design is not None and design.stepped and stages is not None:
        _check_schedule(check, design, stages)
    if design is not None and design.stepped and metrics is not None:
        for index, metric in enumerate(metrics):
            if metric.kind == "count":
                check.problem(
                    f"metrics[{index}].kind",
                    "a stepped-wedge pilot analyses continuous and binary metrics (the Hussey–Hughes model); "
                    "record a count as a rate per unit (continuous) instead",
                )
    data = _data(check, doc, design, metrics)
    if check.problems or None in (pilot, design, metrics, stages, data):
        return None
    return Protocol(
        **pilot, design=design, metrics=metrics, stages=stages, text=text, sha256=sha256, data=data
    )


def _data(
    check: _Checker, doc: dict[str, Any], design: Design | None, metrics: tuple[Metric, ...] | None
) -> DataSpec | None:
    """The optional [data] table: column names and arm labels of the pilot's data files.

    A cluster design's ``cluster`` column is the file's site column: ``[design] cluster =
    "team"`` reads like ``[data] columns.site = "team"``.
    """
    if "data" not in doc:
        return _with_cluster_column(check, DataSpec(), design)
    table = check.table(doc["data"], "data")
    if table is None:
        return None
    check.unknown(table, "data", "data")
    ok = True
    names = (*DATA_COLUMNS, *(m.name for m in metrics or ()))
    columns = _string_table(check, table, "columns", names, "a column name or a metric name")
    arms = design.arms if design is not None else None
    labels = _string_table(check, table, "arm_labels", None, "an arm label")
    if columns is None or labels is None:
        return None
    seen: dict[str, str] = {}
    for name, header in columns.items():
        key = header.strip().lower()
        if key in seen:
            check.problem(
                _join("data.columns", name), f"the column {header!r} is already data.columns.{seen[key]}"
            )
            ok = False
        seen[key] = name
    for label, arm in labels.items():
        if arms is not None and arm not in arms:
            check.problem(
                _join("data.arm_labels", label), f"expected an arm ({_one_of(arms)}), got {_show(arm)}"
            )
            ok = False
    if not ok:
        return None
    return _with_cluster_column(
        check, DataSpec(columns, {label.strip(): arm for label, arm in labels.items()}), design
    )


def _with_cluster_column(check: _Checker, spec: DataSpec, design: Design | None) -> DataSpec | None:
    if design is None or not design.clustered or design.cluster in (None, "site"):
        return spec
    named = spec.columns.get("site")
    if named is not None and named != design.cluster:
        check.problem(
            "data.columns.site",
            f"the cluster column is design.cluster ({design.cluster!r}); data.columns.site names {named!r}",
        )
        return None
    return DataSpec({**spec.columns, "site": design.cluster}, spec.arm_labels)


def _string_table(
    check: _Checker, table: dict[str, Any], key: str, known: tuple[str, ...] | None, what: str
) -> dict[str, str] | None:
    """An optional inline table of non-empty strings; its keys must be among ``known`` when given."""
    if key not in table:
        return {}
    path = f"data.{key}"
    value = check.table(table[key], path)
    if value is None:
        return None
    result: dict[str, str] = {}
    for name, item in value.items():
        if known is not None and name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "expected " + _one_of(known)
            check.problem(_join(path, name), f"unknown column {name!r} ({hint})")
        elif not name.strip():
            check.problem(_join(path, name), f"expected {what}, got an empty key")
        elif not isinstance(item, str) or not item.strip():
            check.problem(_join(path, name), f"expected a non-empty string, got {_show(item)}")
        else:
            result[name] = item
    return result if len(result) == len(value) else None


def _pilot(check: _Checker, table: dict[str, Any] | None) -> dict[str, Any] | None:
    if table is None:
        return None
    check.unknown(table, "pilot", "pilot")
    fields = {
        "key": check.string(table, "pilot", "key", required=True, pattern=SLUG, pattern_text=_SLUG_TEXT),
        "title": check.string(table, "pilot", "title", required=True),
        "service": check.string(table, "pilot", "service"),
        "modes": _modes(check, table),
        "owner": check.string(table, "pilot", "owner"),
        "hypothesis": check.string(table, "pilot", "hypothesis", required=True),
        "risks": _risks(check, table),
    }
    return fields


def _modes(check: _Checker, table: dict[str, Any]) -> tuple[str, ...]:
    items = check.list_of(table, "pilot", "modes", "modes")
    if items is None:
        return ()
    if not items:
        check.problem("pilot.modes", "expected at least one of " + _one_of(MODES))
    modes: list[str] = []
    for index, value in enumerate(items):
        path = f"pilot.modes[{index}]"
        if not isinstance(value, str) or value not in MODES:
            check.problem(path, f"expected {_one_of(MODES)}, got {_show(value)}")
        elif value in modes:
            check.problem(path, f"duplicate mode {value!r}")
        else:
            modes.append(value)
    return tuple(modes)


def _risks(check: _Checker, table: dict[str, Any]) -> tuple[str, ...]:
    items = check.list_of(table, "pilot", "risks", "risk ids")
    risks: list[str] = []
    for index, value in enumerate(items or []):
        path = f"pilot.risks[{index}]"
        if not isinstance(value, str) or not RISK_ID.fullmatch(value):
            check.problem(path, f"expected a risk id like 'R-3', got {_show(value)}")
        elif value in risks:
            check.problem(path, f"duplicate risk {value!r}")
        else:
            risks.append(value)
    return tuple(risks)


def _design(check: _Checker, table: dict[str, Any] | None) -> Design | None:
    if table is None:
        return None
    check.unknown(table, "design", "design")
    arms = _arms(check, table)
    allocation = _allocation(check, table)
    alpha = check.number(table, "design", "alpha", default=0.05, low=0.0, high=0.5)
    power = check.number(table, "design", "power", default=0.8, low=0.0, high=1.0)
    futility = check.number(table, "design", "futility", default=DEFAULT_FUTILITY, low=0.0, high=1.0)
    stratify = check.choice(table, "design", "stratify", STRATA_COLUMNS) if "stratify" in table else None
    if "stratify" in table and stratify is None:
        return None
    unit = check.choice(table, "design", "unit", UNITS, default="individual")
    clusters = _cluster_design(check, table, unit, stratify)
    if arms is None or allocation is None or alpha is None or power is None or futility is None:
        return None
    if unit is None or clusters is None:
        return None
    return Design(
        arms=arms,
        allocation=allocation,
        alpha=alpha,
        power=power,
        futility=futility,
        stratify=stratify,
        unit=unit,
        **clusters,
    )


def _cluster_design(
    check: _Checker, table: dict[str, Any], unit: str | None, stratify: str | None
) -> dict[str, Any] | None:
    """The keys of a cluster design ([design] unit = "cluster"); refused for individual designs."""
    if unit != "cluster":
        for key in CLUSTER_KEYS:
            if key in table and unit is not None:
                check.problem(f"design.{key}", 'only for cluster designs (unit = "cluster")')
        return {} if unit is None or not any(key in table for key in CLUSTER_KEYS) else None
    if stratify is not None:
        check.problem(
            "design.stratify", "a cluster design compares clusters, not units within sites: leave it out"
        )
    layout = check.choice(table, "design", "layout", LAYOUTS, default="parallel")
    found = {
        "cluster": check.string(table, "design", "cluster") or "site",
        "cluster_size": check.number(table, "design", "cluster_size", low=0.0, high=1e9),
        "icc": _icc(check, table),
        "weighting": check.choice(table, "design", "weighting", WEIGHTINGS, default="equal"),
        "layout": layout,
        "clusters_per_arm": None,
        "schedule": (),
    }
    for key in ("cluster_size", "icc"):
        if key not in table:
            check.problem(f"design.{key}", "missing required key (a cluster design's planning assumption)")
    if layout == "stepped-wedge":
        if "clusters_per_arm" in table:
            check.problem(
                "design.clusters_per_arm",
                "a stepped wedge's clusters are those of its schedule: leave it out",
            )
        found["schedule"] = _schedule(check, table)
    elif layout == "parallel":
        found["clusters_per_arm"] = check.integer(
            table, "design", "clusters_per_arm", 2, MAX_CLUSTERS, required=True
        )
        if "schedule" in table:
            check.problem("design.schedule", 'only for layout = "stepped-wedge"')
    too_small = found["cluster_size"] is not None and found["cluster_size"] < 1
    needed = [
        value for key, value in found.items() if not (key == "clusters_per_arm" and layout != "parallel")
    ]
    if None in needed or too_small:
        if too_small:
            check.problem(
                "design.cluster_size",
                f"expected at least 1 unit per cluster, got {_show(table['cluster_size'])}",
            )
        return None
    return found


def _icc(check: _Checker, table: dict[str, Any]) -> float | None:
    """The ICC assumed for planning: 0 up to (not including) 1."""
    if "icc" not in table:
        return None
    icc = check.finite(table["icc"], "design.icc")
    if icc is not None and not 0.0 <= icc < 1.0:
        check.problem(
            "design.icc", f"expected a number from 0 up to (not including) 1, got {_show(table['icc'])}"
        )
        return None
    return icc


def _schedule(check: _Checker, table: dict[str, Any]) -> tuple[tuple[str, str], ...] | None:
    """A stepped wedge's schedule: each cluster (as its file names it) → the stage it switches at."""
    if "schedule" not in table:
        check.problem(
            "design.schedule",
            'missing required key (layout = "stepped-wedge": each cluster\'s switching stage)',
        )
        return None
    value = check.table(table["schedule"], "design.schedule")
    if value is None:
        return None
    pairs: list[tuple[str, str]] = []
    for cluster, stage in value.items():
        path = _join("design.schedule", cluster)
        if not cluster.strip() or len(cluster) > 200:
            check.problem(path, "expected a cluster name of 1 to 200 characters")
        elif not isinstance(stage, str) or not stage.strip():
            check.problem(
                path, f"expected the name of the stage it switches to the pilot at, got {_show(stage)}"
            )
        else:
            pairs.append((cluster.strip(), stage))
    if len(value) > MAX_CLUSTERS:
        check.problem("design.schedule", f"{len(value):,} clusters; at most {MAX_CLUSTERS:,}")
    elif len(pairs) == len(value) and len(pairs) < 2:
        check.problem("design.schedule", "expected at least two clusters")
    return tuple(pairs) if len(pairs) == len(value) else None


def _check_schedule(check: _Checker, design: Design, stages: tuple[Stage, ...]) -> None:
    """Each cluster switches at a stage after the first (a baseline period), and not all at the same one."""
    names = [stage.name for stage in stages]
    if len(stages) < 2:
        check.problem("stages", "a stepped wedge needs at least two stages: a baseline period and a switch")
        return
    if len({stage for _cluster, stage in design.schedule}) < 2:
        check.problem(
            "design.schedule",
            "every cluster switches at the same stage, which the period effects cannot be told apart from: "
            "a stepped wedge needs at least two switching stages",
        )
    for cluster, stage in design.schedule:
        path = _join("design.schedule", cluster)
        if stage not in names:
            check.problem(path, f"no stage {stage!r} (stages: {', '.join(names)})")
        elif stage == names[0]:
            check.problem(
                path,
                f"the first stage ({stage!r}) is the baseline period: every cluster starts in the comparison arm",
            )


def _arms(check: _Checker, table: dict[str, Any]) -> tuple[str, str] | None:
    items = check.list_of(table, "design", "arms", "two arm names", required=True)
    if items is None:
        return None
    if len(items) != 2:
        check.problem("design.arms", f"expected exactly two arms (comparison first), got {len(items)}")
        return None
    ok = True
    for index, value in enumerate(items):
        if not isinstance(value, str) or not ARM_NAME.fullmatch(value) or len(value) > MAX_NAME_CHARS:
            text = f"an arm name of letters, digits, '_' or '-' (at most {MAX_NAME_CHARS} characters)"
            check.problem(f"design.arms[{index}]", f"expected {text}, got {_show(value)}")
            ok = False
    if ok and items[0] == items[1]:
        check.problem("design.arms", f"the two arms must differ, got {items[0]!r} twice")
        return None
    return (items[0], items[1]) if ok else None


def _allocation(check: _Checker, table: dict[str, Any]) -> tuple[float, float] | None:
    if "allocation" not in table:
        return (1.0, 1.0)
    items = check.list_of(table, "design", "allocation", "two numbers (comparison, pilot)")
    if items is None:
        return None
    if len(items) != 2:
        check.problem("design.allocation", f"expected two numbers (comparison, pilot), got {len(items)}")
        return None
    values = [check.positive(value, f"design.allocation[{i}]") for i, value in enumerate(items)]
    return None if None in values else (values[0], values[1])


def _metrics(check: _Checker, items: list[Any] | None) -> tuple[Metric, ...] | None:
    if items is None:
        return None
    if len(items) > MAX_METRICS:
        check.problem("metrics", f"{len(items):,} metrics; a protocol may have at most {MAX_METRICS}")
        return None
    metrics = [_metric(check, raw, f"metrics[{i}]") for i, raw in enumerate(items)]
    _check_unique(check, _raw_values(items, "name", str), "metrics", "name", "metric name")
    roles = _raw_values(items, "role", str)
    primaries = [i for i, role in enumerate(roles) if role == "primary"]
    if not primaries and all(role in ROLES for role in roles):
        check.problem("metrics", "no metric has role 'primary'; exactly one is required")
    for index in primaries[1:]:
        message = f"a second primary metric (metrics[{primaries[0]}] is primary); exactly one is required"
        check.problem(f"metrics[{index}].role", message)
    _check_covariates(check, metrics)
    return None if None in metrics else tuple(m for m in metrics if m is not None)


def _check_covariates(check: _Checker, metrics: list[Metric | None]) -> None:
    """Each covariate names a continuous baseline metric, and adjusts a continuous outcome."""
    by_name = {m.name: m for m in metrics if m is not None}
    for index, metric in enumerate(metrics):
        if metric is None:
            continue
        if metric.role == "baseline" and metric.kind != "continuous":
            check.problem(f"metrics[{index}].kind", "a baseline metric must be continuous (a covariate)")
        if metric.covariate is None:
            continue
        path = f"metrics[{index}].covariate"
        named = by_name.get(metric.covariate)
        if metric.kind != "continuous" or metric.role == "baseline":
            check.problem(path, "only a continuous outcome (not a baseline) is adjusted for a covariate")
        elif named is None or named.role != "baseline":
            check.problem(
                path, f"expected the name of a metric with role 'baseline', got {metric.covariate!r}"
            )


def _raw_values(items: list[Any], key: str, kind: type) -> list[Any]:
    """``item[key]`` for each table in ``items`` when it has the right type, else None.

    Cross-checks (unique names, one primary, increasing planned_n) use these raw values so
    that an unrelated problem in a table does not hide a second one.
    """
    values = [item.get(key) if isinstance(item, dict) else None for item in items]
    return [v if isinstance(v, kind) and not isinstance(v, bool) else None for v in values]


def _metric(check: _Checker, raw: Any, path: str) -> Metric | None:
    table = check.table(raw, path)
    if table is None:
        return None
    check.unknown(table, "metric", path)
    name = _metric_name(check, table, path)
    kind = check.choice(table, path, "kind", KINDS, required=True)
    role = check.choice(table, path, "role", ROLES, required=True)
    better = check.choice(table, path, "better", BETTER, required=True)
    test = check.choice(table, path, "test", TESTS, default="superiority")
    margin = _margin(check, table, path, kind, test)
    sd = _sd(check, table, path, kind)
    baseline = _baseline(check, table, path, kind)
    description = check.string(table, path, "description")
    unit = check.string(table, path, "unit")
    covariate = check.string(table, path, "covariate", pattern=IDENTIFIER, pattern_text="a metric name")
    prior = _prior(check, table, path, kind)
    fields = (name, kind, role, better, test)
    if None in fields or any(k in table and v is None for k, v in (("margin", margin), ("sd", sd))):
        return None
    if "baseline" in table and baseline is None:
        return None
    if ("covariate" in table and covariate is None) or ("prior" in table and prior is None):
        return None
    return Metric(name, kind, role, better, test, margin, sd, baseline, description, unit, covariate, prior)


def _prior(check: _Checker, table: dict[str, Any], path: str, kind: str | None) -> tuple[float, float] | None:
    """A metric's prior = { mean, sd } for the board probabilities; a count's mean is a rate ratio, its sd on the log scale."""
    if "prior" not in table:
        return None
    where = f"{path}.prior"
    value = check.table(table["prior"], where)
    if value is None:
        return None
    check.unknown(value, "prior", where)
    if "sd" not in value:
        check.problem(f"{where}.sd", "missing required key")
        return None
    sd = check.positive(value["sd"], f"{where}.sd")
    if kind == "count":
        mean = check.positive(value.get("mean", 1.0), f"{where}.mean")  # a rate ratio
        mean = None if mean is None else math.log(mean)
    else:
        mean = check.finite(value.get("mean", 0.0), f"{where}.mean")
    return None if sd is None or mean is None else (mean, sd)


def _metric_name(check: _Checker, table: dict[str, Any], path: str) -> str | None:
    text = "a lower-case identifier (letters, digits and '_', not starting with a digit)"
    name = check.string(table, path, "name", required=True, pattern=IDENTIFIER, pattern_text=text)
    if name in RESERVED_COLUMNS:
        columns = ", ".join(RESERVED_COLUMNS)
        check.problem(f"{path}.name", f"{name!r} is reserved for a data file column ({columns})")
        return None
    return name


def _margin(
    check: _Checker, table: dict[str, Any], path: str, kind: str | None, test: str | None
) -> float | None:
    here = f"{path}.margin"
    if "margin" not in table:
        if test in ("non-inferiority", "equivalence"):
            check.problem(here, f"missing required key for a {test} test")
        return None
    margin = check.number(table, path, "margin")
    if margin is None:
        return None
    if test == "superiority":
        check.problem(here, "a margin is used only by non-inferiority and equivalence tests; remove it")
        return None
    if kind == "count" and not margin > 1:
        check.problem(
            here, f"expected a rate ratio greater than 1 for a count metric, got {_show(table['margin'])}"
        )
    elif kind == "binary" and not 0 < margin < 1:
        message = "expected a difference in proportions greater than 0 and less than 1"
        check.problem(here, f"{message} for a binary metric, got {_show(table['margin'])}")
    elif not margin > 0:
        check.problem(here, f"expected a number greater than 0, got {_show(table['margin'])}")
    else:
        return margin
    return None


def _sd(check: _Checker, table: dict[str, Any], path: str, kind: str | None) -> float | None:
    sd = check.positive(table["sd"], f"{path}.sd") if "sd" in table else None
    if sd is not None and kind not in (None, "continuous"):
        check.problem(f"{path}.sd", f"applies only to continuous metrics, not {kind}")
        return None
    return sd


def _baseline(check: _Checker, table: dict[str, Any], path: str, kind: str | None) -> float | None:
    baseline = check.number(table, path, "baseline")
    if baseline is None:
        return None
    here = f"{path}.baseline"
    if kind == "binary" and not 0 < baseline < 1:
        message = "expected a proportion greater than 0 and less than 1"
        check.problem(here, f"{message} for a binary metric, got {_show(table['baseline'])}")
    elif kind == "count" and not baseline > 0:
        check.problem(
            here, f"expected a rate greater than 0 for a count metric, got {_show(table['baseline'])}"
        )
    else:
        return baseline
    return None


def _stages(check: _Checker, items: list[Any] | None) -> tuple[Stage, ...] | None:
    if items is None:
        return None
    if len(items) > MAX_STAGES:
        check.problem("stages", f"{len(items):,} stages; a protocol may have at most {MAX_STAGES}")
        return None
    stages = [_stage(check, raw, f"stages[{i}]") for i, raw in enumerate(items)]
    _check_unique(check, _raw_values(items, "name", str), "stages", "name", "stage name")
    planned = _raw_values(items, "planned_n", int)
    valid = [(i, n) for i, n in enumerate(planned) if n is not None and 1 <= n <= MAX_PLANNED_N]
    for (before, low), (index, n) in itertools.pairwise(valid):
        if n <= low:
            message = (
                f"expected more than stages[{before}].planned_n ({low}), got {n};"
                " planned_n is cumulative units per arm"
            )
            check.problem(f"stages[{index}].planned_n", message)
    return None if None in stages else tuple(s for s in stages if s is not None)


def _stage(check: _Checker, raw: Any, path: str) -> Stage | None:
    table = check.table(raw, path)
    if table is None:
        return None
    check.unknown(table, "stage", path)
    name = check.string(table, path, "name", required=True, pattern=SLUG, pattern_text=_SLUG_TEXT)
    planned_n = check.integer(table, path, "planned_n", 1, MAX_PLANNED_N, required=True)
    evidence_level = check.integer(table, path, "evidence_level", 1, 5)
    criteria = _criteria(check, table, path)
    if name is None or planned_n is None or criteria is None:
        return None
    if "evidence_level" in table and evidence_level is None:
        return None
    return Stage(name=name, planned_n=planned_n, evidence_level=evidence_level, criteria=criteria)


def _criteria(check: _Checker, stage: dict[str, Any], path: str) -> tuple[Criterion, ...] | None:
    if "criteria" not in stage:
        return ()
    here = f"{path}.criteria"
    table = check.table(stage["criteria"], here)
    if table is None:
        return None
    check.unknown(table, "criteria", here)
    found = [_criterion(check, name, table[name], f"{here}.{name}") for name in CRITERIA if name in table]
    return None if None in found else tuple(c for c in found if c is not None)


def _criterion(check: _Checker, name: str, value: Any, path: str) -> Criterion | None:
    if not isinstance(value, list) or len(value) != 2:
        check.problem(path, f"expected [green, red] (two numbers), got {_show(value)}")
        return None
    green, red = (check.finite(item, f"{path}[{i}]") for i, item in enumerate(value))
    if green is None or red is None:
        return None
    low, high, what = (
        (0.0, 1.0, "a share from 0 to 1") if name == "retention" else (0.0, math.inf, "a number >= 0")
    )
    bad = [i for i, v in enumerate((green, red)) if not low <= v <= high]
    for i in bad:
        check.problem(f"{path}[{i}]", f"expected {what}, got {_show(value[i])}")
    if bad:
        return None
    if green < red:
        message = f"green threshold {_show(value[0])} is below red threshold {_show(value[1])}"
        check.problem(path, f"{message}; expected [green, red] with green >= red")
        return None
    return Criterion(name=name, green=green, red=red)


def _check_unique(check: _Checker, names: list[str | None], array: str, key: str, what: str) -> None:
    first: dict[str, int] = {}
    for index, name in enumerate(names):
        if name is None:
            continue
        if name in first:
            check.problem(
                f"{array}[{index}].{key}", f"duplicate {what} {name!r} (also {array}[{first[name]}])"
            )
        else:
            first[name] = index


class _Checker:
    """Collects problems; each helper returns a valid value, the default, or None if invalid."""

    def __init__(self, source: str):
        self.source = source
        self.problems: list[str] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{self.source}: {path}: {message}")

    def unknown(self, table: dict[str, Any], kind: str, path: str) -> None:
        known = _KEYS[kind]
        for key in table:
            if key in known:
                continue
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "known keys: " + ", ".join(known)
            self.problem(_join(path, key), f"unknown key {key!r} ({hint})")

    def section(self, doc: dict[str, Any], key: str) -> dict[str, Any] | None:
        if key not in doc:
            self.problem(key, f"missing required table [{key}]")
            return None
        return self.table(doc[key], key)

    def array(self, doc: dict[str, Any], key: str) -> list[Any] | None:
        if key not in doc:
            self.problem(key, f"missing required [[{key}]] tables")
            return None
        value = doc[key]
        if not isinstance(value, list):
            self.problem(key, f"expected an array of [[{key}]] tables, got {_show(value)}")
            return None
        if not value:
            self.problem(key, f"expected at least one [[{key}]] table")
            return None
        return value

    def table(self, value: Any, path: str) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.problem(path, f"expected a table, got {_show(value)}")
            return None
        return value

    def missing(self, table: dict[str, Any], path: str, key: str, required: bool) -> bool:
        """True if ``key`` is absent (reported when required)."""
        if key in table:
            return False
        if required:
            self.problem(_join(path, key), "missing required key")
        return True

    def string(
        self,
        table: dict[str, Any],
        path: str,
        key: str,
        *,
        required: bool = False,
        pattern: re.Pattern[str] | None = None,
        pattern_text: str = "",
    ) -> str | None:
        if self.missing(table, path, key, required):
            return None
        value = table[key]
        limit = MAX_TEXT_CHARS if pattern is None else MAX_NAME_CHARS
        if not isinstance(value, str):
            self.problem(_join(path, key), f"expected a string, got {_show(value)}")
        elif len(value) > limit:
            self.problem(_join(path, key), f"{len(value):,} characters; at most {limit:,}")
        elif pattern is not None and not pattern.fullmatch(value):
            self.problem(_join(path, key), f"expected {pattern_text}, got {_show(value)}")
        elif not value.strip():
            self.problem(_join(path, key), "expected a non-empty string")
        else:
            return value
        return None

    def choice(
        self,
        table: dict[str, Any],
        path: str,
        key: str,
        allowed: tuple[str, ...],
        *,
        required: bool = False,
        default: str | None = None,
    ) -> str | None:
        if self.missing(table, path, key, required):
            return default
        value = table[key]
        if isinstance(value, str) and value in allowed:
            return value
        self.problem(_join(path, key), f"expected {_one_of(allowed)}, got {_show(value)}")
        return None

    def list_of(
        self, table: dict[str, Any], path: str, key: str, what: str, *, required: bool = False
    ) -> list[Any] | None:
        if self.missing(table, path, key, required):
            return None
        value = table[key]
        if not isinstance(value, list):
            self.problem(_join(path, key), f"expected an array of {what}, got {_show(value)}")
            return None
        return value

    def finite(self, value: Any, path: str) -> float | None:
        """A finite number as float; bool is not a number, and nan/inf are refused."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(path, f"expected a number, got {_show(value)}")
            return None
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            self.problem(path, f"expected a finite number, got {_show(value)}")
            return None
        return number

    def positive(self, value: Any, path: str) -> float | None:
        number = self.finite(value, path)
        if number is not None and not number > 0:
            self.problem(path, f"expected a number greater than 0, got {_show(value)}")
            return None
        return number

    def number(
        self,
        table: dict[str, Any],
        path: str,
        key: str,
        *,
        default: float | None = None,
        low: float | None = None,
        high: float | None = None,
    ) -> float | None:
        """An optional number, strictly between ``low`` and ``high`` when they are given."""
        if self.missing(table, path, key, False):
            return default
        number = self.finite(table[key], _join(path, key))
        if number is None or low is None or high is None or low < number < high:
            return number
        message = f"expected a number greater than {low:g} and less than {high:g}"
        self.problem(_join(path, key), f"{message}, got {_show(table[key])}")
        return None

    def integer(
        self, table: dict[str, Any], path: str, key: str, low: int, high: int, *, required: bool = False
    ) -> int | None:
        if self.missing(table, path, key, required):
            return None
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(_join(path, key), f"expected an integer, got {_show(value)}")
        elif not low <= value <= high:
            self.problem(_join(path, key), f"expected an integer from {low} to {high}, got {_show(value)}")
        else:
            return value
        return None


def _join(path: str, key: str) -> str:
    part = key if _BARE_KEY.fullmatch(key) else _quote(key)
    return f"{path}.{part}" if path else part


def _quote(key: str) -> str:
    escaped = "".join(
        "\\" + ch if ch in '"\\' else f"\\u{ord(ch):04x}" if ord(ch) < 32 or ord(ch) == 127 else ch
        for ch in key
    )
    return f'"{escaped}"'


def _one_of(values: tuple[str, ...]) -> str:
    if len(values) == 1:
        return values[0]
    return ", ".join(values[:-1]) + " or " + values[-1]


def _show(value: Any) -> str:
    """Render a TOML value for a message: strings quoted, booleans as in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return repr(value) if value.bit_length() <= 64 else "a very large integer"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= 60 else text[:56] + "...'"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a date/time ({value.isoformat()})"
