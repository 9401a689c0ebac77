"""Tests for riskreg.protocol: loading and validating pilot protocol TOML files."""

import copy
import hashlib
import math
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskreg.errors import NotFound, ProtocolError
from riskreg.protocol import (
    _KEYS as protocol_keys,
)
from riskreg.protocol import (
    KINDS,
    MODES,
    RESERVED_COLUMNS,
    ROLES,
    TESTS,
    Criterion,
    load_protocol,
    parse_protocol,
)

PILOTS = Path(__file__).resolve().parent.parent / "pilots"
SRC = "pilots/x.toml"

MINIMAL: dict[str, Any] = {
    "pilot": {"key": "minimal", "title": "Minimal pilot", "hypothesis": "It works."},
    "design": {"arms": ["comparison", "pilot"]},
    "metrics": [{"name": "score", "kind": "continuous", "role": "primary", "better": "higher"}],
    "stages": [{"name": "only", "planned_n": 10}],
}

# Every key set, so that a mutation test can reach each of them.
FULL: dict[str, Any] = {
    "pilot": {
        "key": "full-pilot",
        "title": "Full pilot",
        "service": "Adult social care",
        "modes": ["design", "delivery"],
        "owner": "Head of Service",
        "hypothesis": "No worse, and cheaper.",
        "risks": ["R-1", "R-12"],
    },
    "design": {"arms": ["comparison", "pilot"], "allocation": [1, 2], "alpha": 0.05, "power": 0.9},
    "metrics": [
        {
            "name": "wellbeing",
            "kind": "continuous",
            "role": "primary",
            "better": "higher",
            "test": "non-inferiority",
            "margin": 3.0,
            "sd": 8.0,
            "baseline": 44.0,
            "description": "WEMWBS",
            "unit": "points",
        },
        {"name": "readmitted", "kind": "binary", "role": "secondary", "better": "lower", "baseline": 0.2},
        {
            "name": "incidents",
            "kind": "count",
            "role": "safety",
            "better": "lower",
            "test": "equivalence",
            "margin": 1.5,
            "baseline": 0.02,
        },
    ],
    "stages": [
        {
            "name": "feasibility",
            "planned_n": 60,
            "evidence_level": 2,
            "criteria": {"recruited": [60, 40], "retention": [0.8, 0.6]},
        },
        {"name": "extended", "planned_n": 200, "evidence_level": 3},
    ],
}


# --- a small TOML writer for test documents --------------------------------------------------


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_value(key)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + "".join(toml_char(c) for c in value) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_char(c: str) -> str:
    if c in '"\\':
        return "\\" + c
    return f"\\u{ord(c):04x}" if ord(c) < 32 or ord(c) == 127 else c


def dump(doc: dict[str, Any]) -> str:
    """Top-level scalars first, then [tables] and [[arrays of tables]]; nested tables inline."""
    lines = [f"{toml_key(k)} = {toml_value(v)}" for k, v in doc.items() if not is_section(v)]
    for key, value in doc.items():
        tables = [value] if isinstance(value, dict) else value if is_section(value) else []
        for table in tables:
            lines.append(f"[{toml_key(key)}]" if isinstance(value, dict) else f"[[{toml_key(key)}]]")
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def is_section(value: Any) -> bool:
    return isinstance(value, dict) or (
        isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)
    )


def edited(doc: dict[str, Any], path: tuple, value: Any = ...) -> dict[str, Any]:
    """A deep copy of ``doc`` with ``path`` set to ``value`` (deleted when value is omitted)."""
    doc = copy.deepcopy(doc)
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    if value is ...:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


def problems(doc: dict[str, Any] | str | bytes) -> list[str]:
    data = doc if isinstance(doc, bytes) else (doc if isinstance(doc, str) else dump(doc)).encode()
    with pytest.raises(ProtocolError) as info:
        parse_protocol(data, SRC)
    return info.value.problems


def key_path(path: tuple) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


# --- valid protocols ---------------------------------------------------------------------------


def test_minimal_protocol_gets_defaults():
    protocol = parse_protocol(dump(MINIMAL).encode(), SRC)
    assert (protocol.key, protocol.modes, protocol.risks, protocol.service) == ("minimal", (), (), None)
    assert protocol.design.allocation == (1.0, 1.0)
    assert (protocol.design.alpha, protocol.design.power) == (0.05, 0.8)
    assert protocol.primary.test == "superiority"
    assert protocol.stages[0].criteria == ()


def test_text_and_hash_are_of_the_exact_bytes():
    data = ("\ufeff" + dump(MINIMAL)).encode()
    protocol = parse_protocol(data, SRC)
    assert protocol.text.encode() == data
    assert protocol.sha256 == hashlib.sha256(data).hexdigest()


def test_full_protocol_lookups():
    protocol = parse_protocol(dump(FULL).encode(), SRC)
    assert protocol.primary.name == "wellbeing"
    assert protocol.metric("incidents").margin == 1.5
    assert protocol.stage_index("extended") == 1
    assert protocol.stage("feasibility").criterion("retention") == Criterion("retention", 0.8, 0.6)
    assert protocol.design.comparison == "comparison" and protocol.design.pilot == "pilot"
    assert protocol.to_dict()["primary"] == "wellbeing" and "text" not in protocol.to_dict()


def test_unknown_stage_and_metric_are_not_found():
    protocol = parse_protocol(dump(FULL).encode(), SRC)
    with pytest.raises(
        NotFound, match=r"^pilot full-pilot has no stage 'scale' \(stages: feasibility, extended\)$"
    ):
        protocol.stage("scale")
    with pytest.raises(NotFound, match="has no metric 'cost'"):
        protocol.metric("cost")


@pytest.mark.parametrize(("value", "status"), [(60, "green"), (59.9, "amber"), (40, "amber"), (39, "red")])
def test_criterion_status(value, status):
    assert Criterion("recruited", 60, 40).status(value) == status


@pytest.mark.parametrize("name", ["hospital-befriending", "housing-repairs"])
def test_example_protocols_load(name):
    protocol = load_protocol(PILOTS / f"{name}.toml")
    assert protocol.key == name
    assert len(protocol.stages) == 2 and protocol.design.arms == ("comparison", "pilot")


# --- one test per kind of error, with the exact message ---------------------------------------

M0, M1, M2, S0, S1 = ("metrics", 0), ("metrics", 1), ("metrics", 2), ("stages", 0), ("stages", 1)

CASES = {
    "missing required key": (
        edited(MINIMAL, ("pilot", "title")),
        "pilots/x.toml: pilot.title: missing required key",
    ),
    "missing table": (edited(MINIMAL, ("design",)), "pilots/x.toml: design: missing required table [design]"),
    "missing array of tables": (
        edited(MINIMAL, ("stages",)),
        "pilots/x.toml: stages: missing required [[stages]] tables",
    ),
    "empty array of tables": (
        edited(MINIMAL, ("metrics",), []),
        "pilots/x.toml: metrics: expected at least one [[metrics]] table",
    ),
    "table instead of array": (
        edited(MINIMAL, ("metrics",), {"name": "x"}),
        "pilots/x.toml: metrics: expected an array of [[metrics]] tables, got a table",
    ),
    "array item not a table": (
        edited(MINIMAL, ("stages",), [1]),
        "pilots/x.toml: stages[0]: expected a table, got 1",
    ),
    "section not a table": (
        edited(MINIMAL, ("pilot",), "p"),
        "pilots/x.toml: pilot: expected a table, got 'p'",
    ),
    "unknown key, close match": (
        edited(MINIMAL, (*S0, "planed_n"), 20),
        "pilots/x.toml: stages[0].planed_n: unknown key 'planed_n' (did you mean 'planned_n'?)",
    ),
    "unknown key, no close match": (
        edited(MINIMAL, ("design", "blinding"), True),
        "pilots/x.toml: design.blinding: unknown key 'blinding' (known keys: arms, allocation, alpha, power, futility, stratify, unit, cluster, clusters_per_arm, cluster_size, icc, weighting, layout, schedule)",
    ),
    "unknown top-level key": (
        edited(MINIMAL, ("pilots",), {"key": "x"}),
        "pilots/x.toml: pilots: unknown key 'pilots' (did you mean 'pilot'?)",
    ),
    "unknown key needing quotes": (
        edited(MINIMAL, ("pilot", "a b"), 1),
        "pilots/x.toml: pilot.\"a b\": unknown key 'a b' (known keys: key, title, service, modes, owner, "
        "hypothesis, risks)",
    ),
    "wrong type, string": (
        edited(MINIMAL, ("pilot", "title"), 3),
        "pilots/x.toml: pilot.title: expected a string, got 3",
    ),
    "empty string": (
        edited(MINIMAL, ("pilot", "hypothesis"), "  "),
        "pilots/x.toml: pilot.hypothesis: expected a non-empty string",
    ),
    "bool is not a number": (
        edited(MINIMAL, ("design", "alpha"), True),
        "pilots/x.toml: design.alpha: expected a number, got true",
    ),
    "not finite": (
        edited(MINIMAL, ("design", "power"), math.nan),
        "pilots/x.toml: design.power: expected a finite number, got nan",
    ),
    "float is not an integer": (
        edited(MINIMAL, (*S0, "planned_n"), 10.0),
        "pilots/x.toml: stages[0].planned_n: expected an integer, got 10.0",
    ),
    "allowed values": (
        edited(MINIMAL, (*M0, "kind"), "contineous"),
        "pilots/x.toml: metrics[0].kind: expected continuous, binary or count, got 'contineous'",
    ),
    "test value": (
        edited(MINIMAL, (*M0, "test"), "noninferiority"),
        "pilots/x.toml: metrics[0].test: expected superiority, non-inferiority or equivalence, got 'noninferiority'",
    ),
    "pilot key slug": (
        edited(MINIMAL, ("pilot", "key"), "Hospital_Befriending"),
        "pilots/x.toml: pilot.key: expected a slug (lower-case letters, digits and '-', starting with a letter "
        "or digit), got 'Hospital_Befriending'",
    ),
    "modes not a list": (
        edited(MINIMAL, ("pilot", "modes"), "design"),
        "pilots/x.toml: pilot.modes: expected an array of modes, got 'design'",
    ),
    "modes empty": (
        edited(MINIMAL, ("pilot", "modes"), []),
        "pilots/x.toml: pilot.modes: expected at least one of commissioning, design, delivery or assessment",
    ),
    "mode not a co": (
        edited(MINIMAL, ("pilot", "modes"), ["co-design"]),
        "pilots/x.toml: pilot.modes[0]: expected commissioning, design, delivery or assessment, got 'co-design'",
    ),
    "duplicate mode": (
        edited(MINIMAL, ("pilot", "modes"), ["design", "design"]),
        "pilots/x.toml: pilot.modes[1]: duplicate mode 'design'",
    ),
    "risk id": (
        edited(MINIMAL, ("pilot", "risks"), ["R3"]),
        "pilots/x.toml: pilot.risks[0]: expected a risk id like 'R-3', got 'R3'",
    ),
    "duplicate risk": (
        edited(MINIMAL, ("pilot", "risks"), ["R-3", "R-3"]),
        "pilots/x.toml: pilot.risks[1]: duplicate risk 'R-3'",
    ),
    "three arms": (
        edited(MINIMAL, ("design", "arms"), ["a", "b", "c"]),
        "pilots/x.toml: design.arms: expected exactly two arms (comparison first), got 3",
    ),
    "same arm twice": (
        edited(MINIMAL, ("design", "arms"), ["pilot", "pilot"]),
        "pilots/x.toml: design.arms: the two arms must differ, got 'pilot' twice",
    ),
    "arm name": (
        edited(MINIMAL, ("design", "arms"), ["comparison", "pilot arm"]),
        "pilots/x.toml: design.arms[1]: expected an arm name of letters, digits, '_' or '-' (at most 100 characters), got 'pilot arm'",
    ),
    "allocation length": (
        edited(MINIMAL, ("design", "allocation"), [1]),
        "pilots/x.toml: design.allocation: expected two numbers (comparison, pilot), got 1",
    ),
    "allocation not positive": (
        edited(MINIMAL, ("design", "allocation"), [1, 0]),
        "pilots/x.toml: design.allocation[1]: expected a number greater than 0, got 0",
    ),
    "alpha range": (
        edited(MINIMAL, ("design", "alpha"), 0.5),
        "pilots/x.toml: design.alpha: expected a number greater than 0 and less than 0.5, got 0.5",
    ),
    "power range": (
        edited(MINIMAL, ("design", "power"), 80),
        "pilots/x.toml: design.power: expected a number greater than 0 and less than 1, got 80",
    ),
    "metric name identifier": (
        edited(MINIMAL, (*M0, "name"), "Wellbeing score"),
        "pilots/x.toml: metrics[0].name: expected a lower-case identifier (letters, digits and '_', not "
        "starting with a digit), got 'Wellbeing score'",
    ),
    "metric name reserved": (
        edited(MINIMAL, (*M0, "name"), "value"),
        "pilots/x.toml: metrics[0].name: 'value' is reserved for a data file column (unit_id, arm, metric, "
        "value, exposure, site, stage)",
    ),
    "duplicate metric name": (
        edited(FULL, (*M2, "name"), "wellbeing"),
        "pilots/x.toml: metrics[2].name: duplicate metric name 'wellbeing' (also metrics[0])",
    ),
    "no primary metric": (
        edited(MINIMAL, (*M0, "role"), "secondary"),
        "pilots/x.toml: metrics: no metric has role 'primary'; exactly one is required",
    ),
    "two primary metrics": (
        edited(FULL, (*M1, "role"), "primary"),
        "pilots/x.toml: metrics[1].role: a second primary metric (metrics[0] is primary); exactly one is required",
    ),
    "margin missing": (
        edited(FULL, (*M0, "margin")),
        "pilots/x.toml: metrics[0].margin: missing required key for a non-inferiority test",
    ),
    "margin with superiority": (
        edited(FULL, (*M1, "margin"), 0.05),
        "pilots/x.toml: metrics[1].margin: a margin is used only by non-inferiority and equivalence tests; remove it",
    ),
    "margin not positive": (
        edited(FULL, (*M0, "margin"), -3),
        "pilots/x.toml: metrics[0].margin: expected a number greater than 0, got -3",
    ),
    "count margin is a ratio": (
        edited(FULL, (*M2, "margin"), 0.8),
        "pilots/x.toml: metrics[2].margin: expected a rate ratio greater than 1 for a count metric, got 0.8",
    ),
    "binary margin is a difference in proportions": (
        edited(edited(FULL, (*M1, "test"), "equivalence"), (*M1, "margin"), 5),
        "pilots/x.toml: metrics[1].margin: expected a difference in proportions greater than 0 and less than 1 "
        "for a binary metric, got 5",
    ),
    "sd only for continuous": (
        edited(FULL, (*M1, "sd"), 0.4),
        "pilots/x.toml: metrics[1].sd: applies only to continuous metrics, not binary",
    ),
    "sd positive": (
        edited(FULL, (*M0, "sd"), 0),
        "pilots/x.toml: metrics[0].sd: expected a number greater than 0, got 0",
    ),
    "binary baseline": (
        edited(FULL, (*M1, "baseline"), 18),
        "pilots/x.toml: metrics[1].baseline: expected a proportion greater than 0 and less than 1 for a binary "
        "metric, got 18",
    ),
    "count baseline": (
        edited(FULL, (*M2, "baseline"), 0),
        "pilots/x.toml: metrics[2].baseline: expected a rate greater than 0 for a count metric, got 0",
    ),
    "stage name slug": (
        edited(MINIMAL, (*S0, "name"), "Stage 1"),
        "pilots/x.toml: stages[0].name: expected a slug (lower-case letters, digits and '-', starting with a "
        "letter or digit), got 'Stage 1'",
    ),
    "duplicate stage name": (
        edited(FULL, (*S1, "name"), "feasibility"),
        "pilots/x.toml: stages[1].name: duplicate stage name 'feasibility' (also stages[0])",
    ),
    "planned_n positive": (
        edited(MINIMAL, (*S0, "planned_n"), 0),
        "pilots/x.toml: stages[0].planned_n: expected an integer from 1 to 1000000000, got 0",
    ),
    "planned_n increasing": (
        edited(FULL, (*S1, "planned_n"), 60),
        "pilots/x.toml: stages[1].planned_n: expected more than stages[0].planned_n (60), got 60; planned_n is "
        "cumulative units per arm",
    ),
    "evidence level": (
        edited(FULL, (*S1, "evidence_level"), 6),
        "pilots/x.toml: stages[1].evidence_level: expected an integer from 1 to 5, got 6",
    ),
    "criteria not a table": (
        edited(FULL, (*S0, "criteria"), [60, 40]),
        "pilots/x.toml: stages[0].criteria: expected a table, got an array",
    ),
    "unknown criterion": (
        edited(FULL, (*S0, "criteria", "recruitment"), [1, 0]),
        "pilots/x.toml: stages[0].criteria.recruitment: unknown key 'recruitment' (did you mean 'recruited'?)",
    ),
    "criterion shape": (
        edited(FULL, (*S0, "criteria", "recruited"), 60),
        "pilots/x.toml: stages[0].criteria.recruited: expected [green, red] (two numbers), got 60",
    ),
    "criterion number": (
        edited(FULL, (*S0, "criteria", "recruited"), [60, "40"]),
        "pilots/x.toml: stages[0].criteria.recruited[1]: expected a number, got '40'",
    ),
    "criterion green below red": (
        edited(FULL, (*S0, "criteria", "retention"), [0.6, 0.8]),
        "pilots/x.toml: stages[0].criteria.retention: green threshold 0.6 is below red threshold 0.8; expected "
        "[green, red] with green >= red",
    ),
    "retention is a share": (
        edited(FULL, (*S0, "criteria", "retention"), [80, 0.6]),
        "pilots/x.toml: stages[0].criteria.retention[0]: expected a share from 0 to 1, got 80",
    ),
    "recruited not negative": (
        edited(FULL, (*S0, "criteria", "recruited"), [60, -1]),
        "pilots/x.toml: stages[0].criteria.recruited[1]: expected a number >= 0, got -1",
    ),
}


@pytest.mark.parametrize(("doc", "message"), list(CASES.values()), ids=list(CASES))
def test_error_message(doc, message):
    assert problems(doc) == [message]


def test_invalid_utf8():
    data = b'[pilot]\ntitle = "caf\xe9"\n'
    assert problems(data) == [
        "pilots/x.toml: (file): not valid UTF-8: byte 0xe9 at line 2, column 13; save the file as UTF-8"
    ]


def test_toml_syntax_error():
    assert problems('[pilot]\nkey = "x"\ntitle "y"\n') == [
        "pilots/x.toml: (file): invalid TOML: Expected '=' after a key in a key/value pair (at line 3, column 7)"
    ]


def test_integer_too_long_for_python():
    assert problems("x = " + "9" * 5000) == [
        "pilots/x.toml: (file): invalid TOML: a number has too many digits"
    ]


def test_nesting_too_deep():
    assert problems("x = " + "[" * 5000 + "]" * 5000) == [
        "pilots/x.toml: (file): invalid TOML: arrays or tables are nested too deeply"
    ]


def test_empty_file_lists_every_missing_section():
    assert problems("") == [
        "pilots/x.toml: pilot: missing required table [pilot]",
        "pilots/x.toml: design: missing required table [design]",
        "pilots/x.toml: metrics: missing required [[metrics]] tables",
        "pilots/x.toml: stages: missing required [[stages]] tables",
    ]


def test_all_problems_are_collected_in_file_order():
    doc = edited(edited(FULL, ("pilot", "key"), "X"), (*M0, "kind"), "contineous")
    doc = edited(edited(doc, (*S1, "planed_n"), 200), (*S1, "planned_n"))
    found = problems(doc)
    assert [p.split(": ")[1] for p in found] == [
        "pilot.key",
        "metrics[0].kind",
        "stages[1].planed_n",
        "stages[1].planned_n",
    ]


def test_error_summary_counts_the_other_problems():
    with pytest.raises(
        ProtocolError,
        match=r"^pilots/x.toml: pilot: missing required table \[pilot\] \(and 3 more problems\)$",
    ):
        parse_protocol(b"", SRC)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(ProtocolError) as info:
        load_protocol(path)
    assert info.value.problems == [f"{path}: cannot read file: No such file or directory"]


def test_load_names_the_path_as_given(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text(dump(edited(MINIMAL, ("pilot", "title"))))
    with pytest.raises(ProtocolError) as info:
        load_protocol(str(path))
    assert info.value.problems == [f"{path}: pilot.title: missing required key"]


# --- properties -----------------------------------------------------------------------------


def parses_or_protocol_error(data: bytes) -> None:
    try:
        parse_protocol(data, SRC)
    except ProtocolError as exc:
        assert exc.problems and all(p.startswith(f"{SRC}: ") for p in exc.problems)


@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_protocol_error(data):
    parses_or_protocol_error(data)


TOMLISH = st.text(alphabet=st.sampled_from(list("[]{}=,.\"'\n #-_01.5e+aknstrueflpmd\\\t")), max_size=200)


@given(TOMLISH)
def test_tomlish_text_raises_only_protocol_error(text):
    parses_or_protocol_error(text.encode())


# every key the protocol knows, at any level: a generated key that is one of them is not a typo
KNOWN_KEYS = sorted({key for keys in protocol_keys.values() for key in keys})
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
SCALARS = st.one_of(
    TEXT,
    st.integers(),
    st.floats(),
    st.booleans(),
    st.sampled_from([*KINDS, *ROLES, *TESTS, *MODES, "higher", "lower", "R-1", "pilot", "comparison"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KNOWN_KEYS) | TEXT, inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KNOWN_KEYS) | TEXT, VALUES, max_size=5))
def test_random_documents_raise_only_protocol_error(doc):
    parses_or_protocol_error(dump(doc).encode())


@given(st.sampled_from(list(FULL)), VALUES)
def test_random_section_in_a_valid_protocol_raises_only_protocol_error(section, value):
    parses_or_protocol_error(dump(edited(FULL, (section,), value)).encode())


NOT_STRING = st.one_of(st.integers(), st.floats(), st.booleans(), st.lists(st.integers(), max_size=2))
NOT_NUMBER = st.one_of(
    TEXT, st.booleans(), st.lists(st.integers(), max_size=2), st.just(math.inf), st.just(math.nan)
)


def strings_except(*allowed: str):
    return st.one_of(NOT_STRING, TEXT.filter(lambda s: s not in allowed))


def numbers_outside(ok):
    return st.one_of(NOT_NUMBER, st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not ok(x)))


SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]*")
IDENT_RE = re.compile(r"[a-z_][a-z0-9_]*")
INVALID: dict[tuple, st.SearchStrategy] = {
    ("pilot", "key"): st.one_of(NOT_STRING, TEXT.filter(lambda s: not SLUG_RE.fullmatch(s))),
    ("pilot", "title"): st.one_of(NOT_STRING, st.sampled_from(["", " \t"])),
    ("pilot", "service"): NOT_STRING,
    ("pilot", "owner"): NOT_STRING,
    ("pilot", "hypothesis"): NOT_STRING,
    ("pilot", "modes"): st.one_of(
        TEXT, st.just([]), st.lists(strings_except(*MODES), min_size=1, max_size=3)
    ),
    ("pilot", "risks"): st.one_of(
        TEXT,
        st.lists(
            NOT_STRING | TEXT.filter(lambda s: not re.fullmatch(r"R-[1-9][0-9]*", s)), min_size=1, max_size=2
        ),
    ),
    ("design", "arms"): st.one_of(
        TEXT, st.lists(TEXT, max_size=1), st.lists(NOT_STRING, min_size=2, max_size=2)
    ),
    ("design", "allocation"): st.one_of(
        TEXT, st.lists(numbers_outside(lambda x: x > 0), min_size=2, max_size=2)
    ),
    ("design", "alpha"): numbers_outside(lambda x: 0 < x < 0.5),
    ("design", "power"): numbers_outside(lambda x: 0 < x < 1),
    (*M0, "name"): st.one_of(
        NOT_STRING, TEXT.filter(lambda s: not IDENT_RE.fullmatch(s)), st.sampled_from(RESERVED_COLUMNS)
    ),
    (*M0, "kind"): strings_except(*KINDS),
    (*M0, "role"): strings_except(*ROLES),
    (*M0, "better"): strings_except("higher", "lower"),
    (*M0, "test"): strings_except(*TESTS),
    (*M0, "margin"): numbers_outside(lambda x: x > 0),
    (*M0, "sd"): numbers_outside(lambda x: x > 0),
    (*M0, "baseline"): NOT_NUMBER,
    (*M0, "description"): NOT_STRING,
    (*M0, "unit"): NOT_STRING,
    (*M1, "baseline"): numbers_outside(lambda x: 0 < x < 1),
    (*M1, "sd"): st.floats(min_value=0.1, max_value=10),
    (*M1, "margin"): st.floats(min_value=0.01, max_value=0.5),
    (*M1, "role"): st.just("primary"),
    (*M2, "margin"): numbers_outside(lambda x: x > 1),
    (*M2, "baseline"): numbers_outside(lambda x: x > 0),
    (*S0, "name"): st.one_of(NOT_STRING, TEXT.filter(lambda s: not SLUG_RE.fullmatch(s))),
    (*S0, "planned_n"): st.one_of(NOT_NUMBER, st.integers(max_value=0), st.floats()),
    (*S1, "planned_n"): st.integers(min_value=1, max_value=60),
    (*S1, "name"): st.just("feasibility"),
    (*S0, "evidence_level"): st.one_of(NOT_NUMBER, st.integers().filter(lambda n: not 1 <= n <= 5)),
    (*S0, "criteria"): st.one_of(TEXT, st.lists(st.integers(), max_size=2)),
    (*S0, "criteria", "recruited"): st.one_of(
        TEXT,
        st.booleans(),
        st.lists(st.integers(), max_size=1),
        st.lists(numbers_outside(lambda x: x >= 0), min_size=2, max_size=2),
    ),
    (*S0, "criteria", "retention"): st.lists(numbers_outside(lambda x: 0 <= x <= 1), min_size=2, max_size=2),
}
REQUIRED = [
    ("pilot", "key"),
    ("pilot", "title"),
    ("pilot", "hypothesis"),
    ("design", "arms"),
    (*M0, "name"),
    (*M0, "kind"),
    (*M0, "role"),
    (*M0, "better"),
    (*M0, "margin"),
    (*S0, "name"),
    (*S0, "planned_n"),
]


@given(
    st.sampled_from(sorted(INVALID, key=str)).flatmap(lambda path: st.tuples(st.just(path), INVALID[path]))
)
def test_an_invalid_value_is_reported_at_its_key_path(case):
    path, value = case
    found = problems(edited(FULL, path, value))
    assert any(p.startswith(f"{SRC}: {key_path(path)}") for p in found), found


@pytest.mark.parametrize("path", REQUIRED, ids=key_path)
def test_a_missing_required_key_is_reported_at_its_key_path(path):
    found = problems(edited(FULL, path))
    assert any(p.startswith(f"{SRC}: {key_path(path)}: missing required key") for p in found), found


@given(st.sampled_from(["pilot", "design", ("metrics", 1), ("stages", 0), ("stages", 0, "criteria")]), TEXT)
def test_an_unknown_key_is_reported_at_its_key_path(where, key):
    path = (where, key) if isinstance(where, str) else (*where, key)
    parent = FULL
    for part in path[:-1]:
        parent = parent[part]
    if key in parent or key in KNOWN_KEYS:  # a known key is not a typo
        return
    found = problems(edited(FULL, path, 1))
    assert any(
        p.startswith(f"{SRC}: {key_path(path[:-1])}.") and f": unknown key {key!r} (" in p for p in found
    )
