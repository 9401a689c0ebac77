"""HTML reports (DESIGN §6): contexts, templates, safety, self-containment, determinism, the CLI.

The example pilots are loaded once per backend (reports only read), so the many checks on
them stay fast; tests that change data get a fresh database of their own.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
from dataclasses import fields, is_dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from riskreg import report_context as rc
from riskreg.cli import cli
from riskreg.db import open_database
from riskreg.register import Context, add_risk, rescore_risk
from riskreg.report import board_context, days_rated, pilot_context, qa_context, render_report, score_at
from tests.conftest import _create_pg_database
from tests.pilot_fixtures import PROTOCOL, write
from tests.risk_fixtures import risk_add

REPO = Path(__file__).resolve().parent.parent
PILOTS = REPO / "pilots"
AS_OF = "2030-01-15"
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
UTC = dt.UTC


def run(url: str, *args: str, actor: str = "alice"):  # type: ignore[no-untyped-def]
    """Run riskreg on ``url`` with no riskreg settings from the environment."""
    env = {"RISKREG_DATABASE_URL": None, "RISKREG_ACTOR": None, "RISKREG_CONFIG": None}
    result = CliRunner().invoke(cli, ["--db", url, "--actor", actor, *args], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def load_examples(url: str, folder: Path) -> None:
    """The demo's story, shortened: both pilots with data, gates, an override, an amendment, evidence."""
    data = PILOTS / "data"
    amended = folder / "housing-repairs.toml"
    amended.write_text((PILOTS / "housing-repairs.toml").read_text(encoding="utf-8") + "\n# amended\n")
    steps = [
        ("risk", "import", PILOTS / "risks.csv"),
        ("pilot", "register", PILOTS / "hospital-befriending.toml"),
        ("pilot", "register", PILOTS / "housing-repairs.toml"),
        ("pilot", "link", "P-1", "R-1", "R-2", "R-7"),
        ("pilot", "data", "P-1", data / "hospital-befriending-feasibility.csv", "--stage", "feasibility"),
        ("pilot", "resources", "P-1", data / "hospital-befriending-resources.csv"),
        ("pilot", "gate", "P-1", "--decision", "proceed", "--reason", "Board: criteria green"),
        ("pilot", "data", "P-1", data / "hospital-befriending-extended.csv", "--stage", "extended"),
        ("pilot", "data", "P-2", data / "housing-repairs-feasibility.csv", "--stage", "feasibility"),
        ("pilot", "register", amended, "--amend", "--reason", "Clarified the follow-up check"),
        (
            "pilot",
            "gate",
            "P-2",
            "--decision",
            "continue",
            "--override",
            "--reason",
            "Board: a month more of complaints",
        ),
        (
            "risk",
            "rescore",
            "R-2",
            "--likelihood",
            "2",
            "--impact",
            "5",
            "--evidence",
            "P-1",
            "--reason",
            "pilot",
        ),
    ]
    for step in steps:
        run(url, *map(str, step))
    run(url, "review", "record", "R-7", "--outcome", "escalated", "--note", "Rising", actor="QA reviewer")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def examples_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database with the example pilots loaded, shared (read-only) by the tests of one backend."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("examples") / "riskreg.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        admin = request.getfixturevalue("pg_admin_url")
        url = _create_pg_database(
            admin, f"riskreg_reports_{os.getpid()}", request.getfixturevalue("pg_template")
        )
    load_examples(url, tmp_path_factory.mktemp("protocols"))
    return url


@pytest.fixture(scope="module")
def reports(examples_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The four reports over the examples, written by the CLI with --as-of."""
    folder = tmp_path_factory.mktemp("reports")
    out = {}
    for name, args in {
        "board": ("board",),
        "pilot-1": ("pilot", "P-1"),
        "pilot-2": ("pilot", "housing-repairs"),
        "qa": ("qa", "--since", "2000-01-01"),
    }.items():
        path = folder / f"{name}.html"
        run(examples_url, "report", *args, "-o", str(path), "--as-of", AS_OF)
        out[name] = path.read_text(encoding="utf-8")
    return out


def contexts(url: str, pilot: str | None = "P-1") -> dict[str, object]:
    """Build the reports' contexts through the library, as of AS_OF."""
    database = open_database(url)
    try:
        with database.read() as session:
            config = database.config
            built = {
                "board": board_context(session, config, url, as_of=AS_OF),
                "qa": qa_context(session, config, url, as_of=AS_OF),
            }
            if pilot:
                built["pilot"] = pilot_context(session, config, url, pilot, as_of=AS_OF)
            return built
    finally:
        database.dispose()


def assert_documented(value: object) -> None:
    """Every context class is a frozen dataclass with a docstring, all the way down."""
    if is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        assert cls.__doc__ and cls.__dataclass_params__.frozen, cls.__name__  # type: ignore[attr-defined]
        for f in fields(value):
            assert_documented(getattr(value, f.name))
    elif isinstance(value, tuple):
        for item in value:
            assert_documented(item)


# --- each template from its documented context -----------------------------------------------


def test_every_template_renders_from_its_context_with_the_example_pilots(examples_url):
    built = contexts(examples_url)
    for name, context in built.items():
        assert_documented(context)
        html = render_report(name, context)
        assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert [p.recommendation for p in built["board"].pipeline] == ["proceed", "stop"]  # type: ignore[attr-defined]
    assert [a.stage for a in built["pilot"].analyses] == ["feasibility", "extended"]  # type: ignore[attr-defined]


def test_every_template_renders_from_its_context_on_an_empty_database(db_url, tmp_path):
    empty = contexts(db_url, pilot=None)
    assert "No open risks." in render_report("board", empty["board"])
    assert "No findings: every rule passed." in render_report("qa", empty["qa"])
    run(db_url, "pilot", "register", write(tmp_path, "p.toml", PROTOCOL))
    pilot = contexts(db_url)["pilot"]
    assert "No gate decision recorded yet." in render_report("pilot", pilot)
    assert "No data file imported yet." in render_report("pilot", pilot)
    assert pilot.forest is None and pilot.costs is None  # type: ignore[attr-defined]
    assert "No estimate for wellbeing yet" in pilot.analyses[0].results[0].sentence  # type: ignore[attr-defined]


def test_render_report_refuses_a_context_of_another_report(db_url):
    with pytest.raises(TypeError, match="BoardContext"):
        render_report("board", contexts(db_url, pilot=None)["qa"])


# --- the reports' contents ----------------------------------------------------------------------


def test_board_report_shows_counts_heat_maps_pipeline_and_callouts(reports):
    html = reports["board"]
    assert html.count('class="chart heatmap"') == 3
    assert "Citizen side:</strong>" in html and "Professional side:</strong>" in html
    assert "against the recommendation 'stop'" in html  # the override is called out
    assert "Escalated by reviewers" in html and "R-7" in html
    assert re.search(r"<strong>P-2</strong> amendment 1 at <bdi>feasibility</bdi>.*after data arrived", html)
    assert "generated 2030-01-15 (as of)" in html


def test_pilot_report_explains_each_result_in_plain_words(reports):
    html = reports["pilot-1"]
    assert re.search(
        r"The pilot arm&#39;s wellbeing was 1\.01 WEMWBS points higher \(95% interval −0\.469", html
    )
    # an early look's interval is named in lay words, its exact level in note 1
    assert "(adjusted interval for an early look [note 1] −4.92 to 6.6)" in html
    assert "non-inferiority with margin 3 WEMWBS points was shown" in html
    assert "times the comparison rate" in html  # the count metric in ratio words
    assert "15 (very high) → 10 (high)" in html  # R-2 re-scored on the pilot's evidence
    assert "Clarified the follow-up check" in reports["pilot-2"]
    # where the numbers came from: each file, its stage, rows and missing values, who and when
    files = html[html.index('id="data-files-h"') :]
    assert re.search(
        r'<th scope="row">hospital-befriending-feasibility\.csv</th><td>outcomes</td><td>feasibility</td>'
        r'<td class="num">496</td><td class="num">24</td><td class="num">0</td><td>alice</td>',
        files,
    )
    assert "hospital-befriending-resources.csv</th><td>resources</td>" in files
    assert "hospital-befriending-extended.csv</th><td>outcomes</td><td>extended</td>" in files


def test_qa_report_lists_findings_by_severity_and_the_audit_trail(reports):
    html = reports["qa"]
    assert "gate-override" in html and "Error" in html  # going on against a stop
    assert "risk.rescore" in html and "Board: criteria green" in html


# --- self-contained, accessible, deterministic ------------------------------------------------

EXTERNAL = [
    re.compile(r"""\bsrc\s*=\s*["']?\s*(https?:)?//""", re.I),
    re.compile(r"""<link\b[^>]*\bhref\s*=\s*["']?\s*(https?:)?//""", re.I),
    re.compile(r"@import", re.I),
    re.compile(r"url\(", re.I),
    re.compile(r"<script", re.I),
    re.compile(r"<iframe|<object|<embed", re.I),
    re.compile(r"\bon[a-z]+\s*=", re.I),
]


@pytest.mark.parametrize("name", ["board", "pilot-1", "pilot-2", "qa"])
def test_reports_are_self_contained_and_need_no_javascript(reports, name):
    html = reports[name]
    for pattern in EXTERNAL:
        assert not pattern.search(html), pattern.pattern
    assert '<html lang="en-GB">' in html and "<title>" in html and "@media print" in html
    assert "<th>" not in html  # every header cell says what it heads (scope)
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))  # aria-labelledby and the contents links need unique ids


@pytest.mark.parametrize("name", ["board", "pilot-1", "pilot-2", "qa"])
def test_every_chart_has_a_text_or_table_equivalent(reports, name):
    figures = re.findall(r"<figure\b.*?</figure>", reports[name], re.S)
    assert reports[name].count("<svg") == sum(f.count("<svg") for f in figures)  # no chart outside a figure
    for figure in figures:
        assert "<figcaption" in figure and "<table" in figure


def test_reports_with_the_same_as_of_are_byte_identical(examples_url, reports, tmp_path):
    for args, name in (
        (("board",), "board"),
        (("pilot", "P-1"), "pilot-1"),
        (("qa", "--since", "2000-01-01"), "qa"),
    ):
        run(examples_url, "report", *args, "-o", str(tmp_path / "again.html"), "--as-of", AS_OF)
        assert (tmp_path / "again.html").read_text(encoding="utf-8") == reports[name]


# --- safety -------------------------------------------------------------------------------------


def test_user_text_is_escaped_everywhere(db_url, tmp_path):
    for title in (SCRIPT, IMG):
        run(db_url, *risk_add(title, likelihood="5", impact="5"))
    run(
        db_url,
        "pilot",
        "register",
        write(tmp_path, "p.toml", PROTOCOL.replace("Volunteer befriending", SCRIPT)),
    )
    run(db_url, "pilot", "link", "P-1", "R-1", "R-2")
    for args in (("board",), ("pilot", "P-1"), ("qa", "--since", "2000-01-01")):
        path = tmp_path / f"{args[0]}.html"
        run(db_url, "report", *args, "-o", str(path), "--as-of", AS_OF)
        html = path.read_text(encoding="utf-8")
        assert "<script" not in html and "<img" not in html, args
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, args
        assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html, args


def toml_basic_string(text: str) -> str:
    """The inside of a TOML basic string ("...") that reads as text."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


CSS_ESCAPE = re.compile(r"\\([0-9A-Fa-f]{1,6}) ?")


def css_text(inside: str) -> str:
    """What a CSS parser reads from a string's inside: each escape, with the one space that ends it, is its character."""
    return CSS_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), inside)


@given(st.text())
def test_css_string_reads_back_as_the_text_and_cannot_leave_its_string_or_style(text):
    quoted = str(rc.css_string(text))
    assert quoted[0] == quoted[-1] == '"'
    inside = quoted[1:-1]
    assert css_text(inside) == text
    assert not set(inside) & set("\"<>&'\n\r\f;{}")
    assert "\\" not in CSS_ESCAPE.sub("", inside)  # every backslash starts an escape


def test_a_pilot_title_reaches_the_print_footer_escaped(db_url, tmp_path):
    hostile = 'Tea "& chat"</style><script>alert(1)</script> \\ ; }'
    run(
        db_url,
        "pilot",
        "register",
        write(tmp_path, "p.toml", PROTOCOL.replace("Volunteer befriending", toml_basic_string(hostile))),
    )
    path = tmp_path / "pilot.html"
    run(db_url, "report", "pilot", "P-1", "-o", str(path), "--as-of", AS_OF)
    style = path.read_text(encoding="utf-8").split("<style>", 1)[1].split("</style>", 1)[0]
    footer = re.search(r"@bottom-left \{ content: (\"[^\"]*\");", style).group(1)
    assert css_text(footer[1:-1]).startswith("Pilot report P-1: " + hostile)


# --- direction of travel and time at high -----------------------------------------------------


def at(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(tzinfo=UTC)


def test_board_shows_a_risk_rescored_up_after_since_as_worse(db_url, tmp_path):
    database = open_database(db_url)
    with database.write() as session:
        values = {"title": "Rising", "side": "professional", "mode": "delivery", "likelihood": 2, "impact": 2}
        add_risk(session, Context("alice", database.config, at("2030-01-02")), values)
    with database.write() as session:
        rescore_risk(session, Context("alice", database.config, at("2030-03-01")), "R-1", 4, 4, "worse")
    with database.read() as session:
        top = board_context(
            session, database.config, db_url, as_of="2030-04-01", since="2030-02-01"
        ).top_risks[0]
    database.dispose()
    assert (top.direction, top.score_then, top.direction_text) == ("up", 4, "up from 4: worse")
    assert top.days_high == 32  # 1 March to the end of 1 April at 16 (very high)
    run(
        db_url,
        "report",
        "board",
        "-o",
        str(tmp_path / "b.html"),
        "--as-of",
        "2030-04-01",
        "--since",
        "2030-02-01",
    )
    assert 'class="dir-up">▲ up from 4: worse' in (tmp_path / "b.html").read_text(encoding="utf-8")


def test_score_history_helpers():
    from riskreg.config import Config

    timeline = [(at("2030-01-01"), 4), (at("2030-01-11"), 12), (at("2030-01-21"), None)]
    assert [score_at(timeline, at(d)) for d in ("2029-12-31", "2030-01-05", "2030-01-15", "2030-02-01")] == [
        None,
        4,
        12,
        None,
    ]
    assert days_rated(timeline, at("2030-03-01"), Config(), ("high", "very high")) == 10  # closed after


def test_board_lists_are_capped_with_the_total_given(db_url, tmp_path):
    database = open_database(db_url)
    with database.write() as session:
        ctx = Context("alice", database.config, at("2029-01-01"))
        for i in range(40):
            add_risk(
                session,
                ctx,
                {"title": f"R {i}", "side": "shared", "mode": "design", "likelihood": 5, "impact": 5},
            )
    with database.read() as session:
        board = board_context(session, database.config, db_url, as_of=AS_OF)
    database.dispose()
    assert (len(board.above_appetite.rows), board.above_appetite.total, board.above_appetite.more) == (
        25,
        40,
        15,
    )
    assert (len(board.top_risks), board.headline.overdue, board.heatmaps[2].total) == (10, 40, 40)
    assert "(the first 25 of 40)" in render_report("board", board)


# --- wording and formatting ---------------------------------------------------------------------


def metric(**overrides):  # type: ignore[no-untyped-def]
    base = {
        "name": "wellbeing",
        "kind": "continuous",
        "role": "primary",
        "test": "non-inferiority",
        "better": "higher",
        "margin": 3.0,
        "n": {"comparison": 50, "pilot": 50},
        "summary": {"comparison": 44.0, "pilot": 45.2},
        "estimate": 1.2,
        "ci": [-0.8, 3.2],
        "ci_level": 0.95,
        "verdict": "non-inferior",
    }
    return {**base, **overrides}


def test_result_sentences_use_the_right_direction_and_scale_words():
    assert rc.result_sentence(metric(), "points") == (
        "The pilot arm's wellbeing was 1.2 points higher (95% CI −0.8 to 3.2); "
        "non-inferiority with margin 3 points was shown."
    )
    binary = metric(
        name="readmitted",
        kind="binary",
        test="superiority",
        margin=None,
        better="lower",
        estimate=-0.058,
        ci=[-0.1275, 0.0115],
        summary={"comparison": 0.195, "pilot": 0.137},
        verdict="inconclusive",
    )
    assert rc.result_sentence(binary) == (
        "The share with readmitted was 5.8 percentage points lower in the pilot arm "
        "(13.7% against 19.5%; 95% CI −12.8 to 1.15 points); no difference was shown either way (inconclusive)."
    )
    count = metric(
        kind="count", test="superiority", margin=None, better="lower", estimate=6.45, ci=[1.41, None]
    )
    count["verdict"] = "harm"
    assert rc.result_sentence(count) == (
        "The pilot arm's rate of wellbeing was 6.45 times the comparison rate, 545% higher "
        "(95% CI 1.41 to unbounded); the pilot arm was worse (the whole interval lies on the worse side: harm)."
    )
    assert rc.result_sentence(metric(estimate=None, n={"comparison": 0, "pilot": 3})) == (
        "No estimate for wellbeing yet: no data in the comparison arm."
    )


def test_numbers_are_formatted_for_reading():
    assert [rc.num(v) for v in (1.0100654, -0.4693, 3.0, 20979.0, 0.0, -0.0001, None)] == [
        "1.01",
        "−0.469",
        "3",
        "20,979",
        "0",
        "−0.0001",
        "–",
    ]
    assert (rc.pct(0.1946), rc.p_text(0.00001), rc.money(1234.5), rc.level_text(0.950030255)) == (
        "19.5%",
        "<0.0001",
        "1,234.50",
        "95.003%",
    )


def test_observed_z_is_the_statistic_of_the_pre_registered_test():
    assert rc.observed_z(metric(se=0.5)) == pytest.approx((1.2 + 3.0) / 0.5)  # distance from the margin
    assert rc.observed_z(metric(test="superiority", estimate=-1.0, se=0.5)) == pytest.approx(2.0)
    assert rc.observed_z(metric(test="equivalence", se=0.5)) is None


# --- the command line -------------------------------------------------------------------------


def test_report_writes_the_default_file_and_prints_its_path(rr):
    result = rr("report", "qa", "--as-of", AS_OF)
    assert result.stdout == "qa.html\n"
    assert Path("qa.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_the_qa_report_verifies_the_chain_and_the_trail_once(rr, monkeypatch):
    """Its findings and its assurance section read one verification (seconds on a large register)."""
    from riskreg import audit, trail

    calls = {"verify": 0, "check_state": 0}

    def counted(name, real):
        def call(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)

        return call

    assert rr(*risk_add("A")).exit_code == 0
    monkeypatch.setattr(audit, "verify", counted("verify", audit.verify))
    monkeypatch.setattr(trail, "check_state", counted("check_state", trail.check_state))
    rr("report", "qa", "--as-of", AS_OF)
    assert calls == {"verify": 1, "check_state": 1}
    assert "audit chain verified: 1 event intact" in Path("qa.html").read_text(encoding="utf-8")


def test_report_json_names_the_report_path_and_size(rr, tmp_path):
    target = tmp_path / "out" / "board.html"
    data = rr.json("report", "board", "-o", str(target))
    assert data == {"report": "board", "path": str(target), "bytes": target.stat().st_size}


def test_report_pilot_default_file_uses_the_pilot_id(rr, tmp_path):
    rr("pilot", "register", write(tmp_path, "p.toml", PROTOCOL))
    assert json.loads(rr("report", "pilot", "befriending", "--json").stdout)["path"] == "pilot-P-1.html"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("pilot", "P-9"), "Error: no pilot P-9\n"),
        (
            ("board", "--as-of", "30/11/2026"),
            "Error: --as-of: expected a date as YYYY-MM-DD, got '30/11/2026'\n",
        ),
        (
            ("qa", "--as-of", "2030-01-01", "--since", "2030-02-01"),
            "Error: --since: 2030-02-01 is after the report date 2030-01-01\n",
        ),
    ],
)
def test_report_mistakes_give_one_error_line(rr, args, message):
    result = rr("report", *args)
    assert (result.exit_code, result.stderr, result.stdout) == (1, message, "")


@pytest.mark.parametrize(
    "overrides",
    [
        {},  # higher is better: a positive difference favours the pilot
        {"better": "lower", "estimate": -1.2, "ci": [-3.2, 0.8], "margin": 3.0},  # lower is better
        {
            "kind": "count",
            "better": "lower",
            "test": "superiority",
            "margin": None,
            "estimate": 0.5,
            "ci": [0.3, 0.9],
        },
        {
            "kind": "count",
            "better": "higher",
            "test": "superiority",
            "margin": None,
            "estimate": 2.0,
            "ci": [1.1, 3.5],
        },
    ],
)
def test_every_forest_row_puts_the_pilot_arm_s_better_side_on_the_right(overrides):
    """A board reads every row the same way: 'pilot better' on the right, whichever way a metric improves."""
    row = rc.forest_plot([("P-1 metric", "final", metric(**overrides), None)], "caption").rows[0]
    assert (row.left_label, row.right_label) == ("comparison better", "pilot better")
    assert row.x_estimate > row.x_null  # each of these estimates favours the pilot
    assert row.x_low < row.x_estimate < row.x_high  # the interval drawn left to right around it
