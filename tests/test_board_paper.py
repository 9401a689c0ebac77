"""The board report as a board paper (issue 17): cover, key messages, asks, assurance gaps, BAF, arms apart.

The "board is asked to" items are checked against scenarios built through the CLI on both
backends: a pilot at a gate, an override, an untreated risk above appetite, a stopped pilot
and a risk whose pilot evidence awaits a re-score.
"""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from click.testing import CliRunner

from riskreg.board_paper import (
    BOARD_RULES,
    AboveAppetite,
    ReportSettings,
    assurance_gaps,
    board_findings,
    key_messages,
    money_in,
    plan_asks,
    plan_gap,
    read_report_settings,
    report_settings,
    sparkline,
    with_options,
)
from riskreg.cli import cli
from riskreg.db import open_database
from riskreg.errors import ConfigError, InvalidInput
from riskreg.qa import Finding, run_checks
from riskreg.register import list_risks, next_review
from riskreg.report import board_context, render_report
from tests.risk_fixtures import risk_add
from tests.test_reports import load_examples, run

UTC = dt.UTC


def _board(url: str, **settings: str):  # type: ignore[no-untyped-def]
    """The board context as of today, its period starting yesterday (the examples are dated now)."""
    today = dt.datetime.now(UTC).date()
    database = open_database(url)
    try:
        with database.read() as session:
            return board_context(
                session,
                database.config,
                url,
                as_of=today,
                since=today - dt.timedelta(days=1),
                settings=ReportSettings(**settings),
            )
    finally:
        database.dispose()


def _plain(markup: str) -> str:
    """The text a reader sees: tags dropped, entities read."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def _asks(context) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    out: dict[str, list[str]] = {}
    for ask in context.paper.asks:
        out.setdefault(ask.kind, []).append(_plain(ask.text))
    return out


# --- scenarios through the CLI, both backends --------------------------------------------------------


def test_the_board_is_asked_to_approve_a_gate_ratify_an_override_and_plan_a_risk(db_url, tmp_path):
    load_examples(db_url, tmp_path)
    asks = _asks(_board(db_url))
    # P-1 is at its last gate and the analysis says proceed: scale-up
    assert [a for a in asks["approve"] if a.startswith("Approve scale-up of P-1 (")]
    # P-2 went on ('continue') against a 'stop': the board ratifies it, knowing the analysis said stop
    (ratify,) = asks["ratify"]
    assert "'continue' decision on P-2 at the feasibility stage" in ratify
    assert "against the recommendation 'stop': Board: a month more of complaints." in ratify
    assert "The analysis said stop" in ratify
    # R-7 is above appetite (16 > 12) with no open action
    assert asks["plan"] == [
        "Require a plan for R-7 (Welfare calls missed because of assessor caseloads), "
        "scored 16 against an appetite of 12: no open action."
    ]


def test_a_risk_above_appetite_with_an_open_action_and_a_target_in_appetite_needs_no_plan(db_url, tmp_path):
    load_examples(db_url, tmp_path)
    run(
        db_url,
        "action",
        "add",
        "R-7",
        "Second assessor rota",
        "--owner",
        "Head of Adult Services",
        "--due",
        "2031-01-31",
    )
    context = _board(db_url)
    assert "plan" not in _asks(context)
    # the action shows in R-7's assurance entry with its owner and due date
    (r7,) = [b for b in context.paper.baf if b.top.risk.id == "R-7"]
    assert [(a.title, a.owner, a.due, a.days_overdue) for a in r7.actions] == [
        ("Second assessor rota", "Head of Adult Services", "2031-01-31", 0)
    ]


def test_a_stopped_pilot_says_why_and_its_risk_awaits_a_rescore(db_url, tmp_path):
    load_examples(db_url, tmp_path)
    run(
        db_url,
        *risk_add(
            "Repairs diagnosed wrongly by residents", "--treatment", "test", likelihood="3", impact="3"
        ),
    )
    run(db_url, "pilot", "link", "P-2", "R-16")
    run(db_url, "pilot", "gate", "P-2", "--decision", "stop", "--reason", "Retention too low")
    context = _board(db_url)
    asks = _asks(context)
    (stop,) = asks["note-stop"]
    assert stop.startswith(
        "Note that P-2 (Residents co-assessing housing repairs) was stopped at the feasibility stage"
    )
    assert "because progression criterion retention is red" in stop
    assert asks["rescore"] == [
        "Ask the owner of R-16 to re-score it on its pilot's evidence: "
        "P-2 is stopped but the risk has not been re-scored since."
    ]
    html = render_report("board", context)
    assert "<strong>Stopped because</strong> <bdi>progression criterion retention is red" in html
    assert "because <bdi>progression criterion retention is red" in html  # the ask isolates the reason
    assert "Pilot evidence awaits a re-score" in html  # in the assurance gaps box


def test_the_board_findings_are_the_qa_findings_of_the_board_rules(db_url, tmp_path):
    load_examples(db_url, tmp_path)
    run(
        db_url,
        "action",
        "add",
        "R-7",
        "Late rota",
        "--owner",
        "Head of Adult Services",
        "--due",
        "2020-01-31",
    )
    database = open_database(db_url)
    try:
        with database.read() as session:
            today = dt.date(2030, 1, 15)
            rows = list_risks(session, database.config)
            board = board_findings(session, database.config, today, rows)
            assert board == board_findings(session, database.config, today)  # the same without pre-filtering
            late = {r.id: (today - next_review(r, database.config)).days for r in rows if r.status == "open"}
            assert board == board_findings(session, database.config, today, rows, late)
            qa = [f for f in run_checks(session, database.config, today) if f.rule in BOARD_RULES]
    finally:
        database.dispose()
    key = lambda f: (f.rule, f.subject, f.message)  # noqa: E731
    assert sorted(board, key=key) == sorted(qa, key=key)
    assert {f.rule for f in board} >= {"gate-override", "action-overdue", "review-overdue"}


def test_an_overdue_action_is_marked_and_counted_as_an_assurance_gap(db_url, tmp_path):
    load_examples(db_url, tmp_path)
    run(
        db_url,
        "action",
        "add",
        "R-7",
        "Late rota",
        "--owner",
        "Head of Adult Services",
        "--due",
        "2020-01-31",
    )
    context = _board(db_url)
    (r7,) = [b for b in context.paper.baf if b.top.risk.id == "R-7"]
    assert r7.actions[0].days_overdue > 0
    assert [g.subjects for g in context.paper.gaps if g.rule == "action-overdue"] == ["A-1"]
    assert "overdue by" in render_report("board", context)


def test_the_resources_keep_the_pilot_and_comparison_arms_apart(db_url, tmp_path):
    load_examples(db_url, tmp_path)
    (p1,) = _board(db_url).paper.resources
    assert (p1.pilot_arm.arm, p1.comparison_arm.arm) == ("pilot", "comparison")
    # the comparison arm's welfare calls (GBP 20,979.00) are not added to the pilot arm's costs
    assert p1.comparison_arm.total == "GBP\u00a020,979.00"
    assert p1.pilot_arm.total == "GBP\u00a052,908.80" and p1.pilot_arm.citizen_share == "65.7%"


def test_the_cover_names_the_meeting_lead_purpose_and_marking_and_no_database(db_url, tmp_path):
    run(db_url, *risk_add("A risk", likelihood="2", impact="2"))
    out = tmp_path / "board.html"
    run(
        db_url,
        "report",
        "board",
        "-o",
        str(out),
        "--as-of",
        "2030-01-15",
        "--meeting",
        "Board meeting in public",
        "--meeting-date",
        "2030-01-22",
        "--lead",
        "Director of Adult Services",
        "--purpose",
        "assurance",
        "--marking",
        "OFFICIAL",
    )
    html = out.read_text(encoding="utf-8")
    assert "<dt>Meeting</dt><dd><bdi>Board meeting in public</bdi></dd>" in html
    assert "<dt>Date</dt><dd>2030-01-22</dd>" in html
    assert "<dt>Executive lead</dt><dd><bdi>Director of Adult Services</bdi></dd>" in html
    assert '<span class="purpose">Assurance</span>' in html
    assert '<p class="marking">OFFICIAL</p>' in html and '@top-right { content: "OFFICIAL";' in html
    assert '@top-left { content: "riskreg";' in html
    footer = html.split("<footer>", 1)[1]
    assert "database" not in footer and db_url not in html
    assert 'page " counter(page) " of " counter(pages)' in html


def test_without_options_the_cover_shows_the_as_of_date_and_no_marking(db_url, tmp_path):
    out = tmp_path / "board.html"
    run(db_url, "report", "board", "-o", str(out), "--as-of", "2030-01-15")
    html = out.read_text(encoding="utf-8")
    assert "<dt>Date</dt><dd>2030-01-15</dd>" in html and "Meeting</dt>" not in html
    assert "@top-right" not in html and 'class="marking"' not in html
    assert '<span class="purpose">Information</span>' in html  # nothing asked of the board


def test_a_bad_meeting_date_is_one_error_line_and_writes_nothing(db_url, tmp_path):
    out = tmp_path / "board.html"
    result = CliRunner().invoke(
        cli,
        ["--db", db_url, "report", "board", "-o", str(out), "--meeting-date", "22/01/2030"],
        env={"RISKREG_DATABASE_URL": None, "RISKREG_CONFIG": None},
    )
    assert result.exit_code != 0
    assert result.output == "Error: --meeting-date: expected a date as YYYY-MM-DD, got '22/01/2030'\n"
    assert not out.exists()


def test_user_text_on_the_cover_is_escaped(db_url, tmp_path):
    out = tmp_path / "board.html"
    run(db_url, "report", "board", "-o", str(out), "--meeting", "<script>x</script>", "--marking", '"};x{')
    html = out.read_text(encoding="utf-8")
    assert "<script>x" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert '@top-right { content: "\\22 \\7D \\3B x\\7B ";' in html


def test_user_text_in_an_ask_stays_inside_its_field(db_url, tmp_path):
    title = "\u202egnp.exe <b>x</b>"
    run(db_url, *risk_add(title, likelihood="5", impact="5"))
    (plan,) = [a for a in _board(db_url).paper.asks if a.kind == "plan"]
    assert str(plan.text).startswith(
        "Require a plan for R-1 (<bdi>\u202egnp.exe &lt;b&gt;x&lt;/b&gt;</bdi>), scored 25"
    )


def test_a_top_risk_shows_its_controls_gaps_and_score_history(db_url, tmp_path):
    run(db_url, *risk_add("Falls at home", likelihood="4", impact="4"))
    run(
        db_url,
        "control",
        "add",
        "R-1",
        "Home safety visit",
        "--status",
        "in-place",
        "--effectiveness",
        "ineffective",
        "--assurance",
        "Visit logs",
        "--line",
        "second",
    )
    run(
        db_url,
        "risk",
        "update",
        "R-1",
        "--gaps-in-assurance",
        "No audit of visit logs yet",
        "--reason",
        "Board review",
    )
    run(db_url, "risk", "rescore", "R-1", "--likelihood", "3", "--impact", "4", "--reason", "visits started")
    context = _board(db_url)
    (entry,) = context.paper.baf
    assert (entry.inherent, entry.current, entry.target) == ("16 (very high)", "12 (high)", "not set")
    assert [(c.ref, c.effectiveness, c.assurance, c.weak) for c in entry.controls] == [
        ("C-1", "ineffective", "second line: Visit logs", True)
    ]
    assert entry.gaps_in_assurance == "No audit of visit logs yet" and entry.gaps_in_control == ""
    assert [p.score for p in entry.spark.points][-2:] == ["16", "12"]
    page = render_report("board", context)
    assert f'<svg role="img" aria-label="{entry.spark.label}"' in page
    assert "<dt>Gaps in assurance</dt><dd><bdi>No audit of visit logs yet</bdi></dd>" in page
    assert "Gaps in control</dt>" not in page  # not in the register: left out, not shown empty
    assert '<span class="flag">ineffective</span>' in page


def test_the_appetite_in_force_says_when_the_register_last_changed_it(db_url, tmp_path):
    assert "not changed in the register" in _board(db_url).paper.appetite.changed
    run(db_url, "config", "set", "appetite.safeguarding", "6", "--reason", "Board decision, 3 Dec")
    appetite = _board(db_url).paper.appetite
    assert appetite.categories == (("safeguarding", 6),)
    today = dt.datetime.now(UTC).date().isoformat()
    assert (
        appetite.changed == f"last changed on {today} by alice (appetite.safeguarding): Board decision, 3 Dec"
    )


# --- pure pieces -------------------------------------------------------------------------------------


def above(target: int | None, actions: int, score: int = 16) -> AboveAppetite:
    return AboveAppetite("R-1", "Falls", score, 12, target, actions)


def test_a_plan_is_adequate_only_with_an_open_action_and_a_target_within_appetite():
    assert plan_gap(above(6, 1)) == ""
    assert plan_gap(above(6, 0)) == "no open action"
    assert plan_gap(above(None, 1)) == "no target score"
    assert plan_gap(above(15, 0)) == "no open action and its target 15 is itself above appetite"
    assert [a.subject for a in plan_asks([above(6, 1), above(15, 2)])] == ["R-1"]


def test_many_asks_of_one_kind_are_capped_with_the_rest_counted():
    risks = [AboveAppetite(f"R-{i}", "t", 16, 12, None, 0) for i in range(1, 13)]
    shown = plan_asks(risks)
    assert len(shown) == 11 and shown[9].subject == "R-10"
    assert (
        shown[10].text == "Do the same for 2 more risks above appetite without an adequate plan (R-11, R-12)."
    )
    assert len(plan_asks(risks[:10])) == 10
    many = plan_asks([AboveAppetite(f"R-{i}", "t", 16, 12, None, 0) for i in range(1, 21)])
    assert many[-1].text.endswith("(R-11, R-12, R-13, R-14, R-15, R-16, R-17, R-18, …).")


def finding(rule: str, subject: str, severity: str = "warning") -> Finding:
    return Finding(rule, severity, subject, "message", "advice")


def test_assurance_gaps_keep_the_rules_a_board_needs_and_name_their_subjects():
    findings = [finding("no-owner", "R-1")] + [finding("action-overdue", f"A-{i}") for i in range(1, 11)]
    findings.append(finding("gate-override", "P-2", "error"))
    gaps = assurance_gaps(findings)
    assert [g.rule for g in gaps] == ["gate-override", "action-overdue"]  # board order; no-owner left out
    assert gaps[0].severity == "error"
    assert gaps[1].count == 10 and gaps[1].subjects == "A-1, A-2, A-3, A-4, A-5, A-6, A-7, A-8 and 2 more"


def test_key_messages_are_three_to_five():
    three = key_messages(0, [], [], "2030-01-01", [], [], 0)
    assert len(three) == 3 and three[0] == "0 open risks; 0 above appetite."
    gaps = assurance_gaps([finding("action-overdue", "A-1")])
    four = key_messages(4, [above(None, 0)], [], "2030-01-01", [], gaps, 2)
    assert len(four) == 4
    assert four[0] == "4 open risks; 1 above appetite, 1 of them without an adequate plan."
    assert four[-1] == "2 gate decisions went against the analysis since 2030-01-01 and await ratification."


def test_the_sparkline_names_every_value_and_rises_with_the_score():
    at = [dt.datetime(2030, 1, d, tzinfo=UTC) for d in (2, 9)]
    spark = sparkline("R-1", [(at[0], 4), (at[1], 16)], 9, "2030-02-01", 12)
    assert (
        spark.label == "Score history of R-1: 4 on 2030-01-02, 16 on 2030-01-09, 9 on 2030-02-01; appetite 12"
    )
    ys = [p.y for p in spark.points]
    assert ys[1] < ys[2] < ys[0]  # higher scores are drawn higher (smaller y)
    assert spark.path.startswith("M4.0 ") and spark.path.count("L") == 2


def test_amounts_carry_the_configured_currency():
    assert money_in(1234.5, "£") == "£1,234.50"
    assert money_in(1234.5, "GBP") == "GBP\u00a01,234.50"


def test_the_report_table_of_riskreg_toml_is_validated(tmp_path):
    path = tmp_path / "riskreg.toml"
    path.write_text(
        '[report]\nmeeting = "Cabinet"\npurpose = "assurance"\nmarking = "OFFICIAL"\n', encoding="utf-8"
    )
    assert read_report_settings(path) == ReportSettings(
        meeting="Cabinet", purpose="assurance", marking="OFFICIAL"
    )
    assert read_report_settings(None) == ReportSettings()
    with pytest.raises(
        ConfigError,
        match=r"^x: report.purpose: expected one of decision, assurance, information, got 'vote'$",
    ):
        report_settings({"purpose": "vote"}, "x")
    with pytest.raises(
        ConfigError,
        match=r"^x: report.chair: unknown key; known keys: meeting, meeting_date, lead, purpose, marking$",
    ):
        report_settings({"chair": "A"}, "x")
    with pytest.raises(ConfigError, match=r"^x: report.lead: expected one line of text, got 3$"):
        report_settings({"lead": 3}, "x")


def test_options_override_the_file_settings():
    base = ReportSettings(meeting="Cabinet", lead="A")
    assert with_options(base, meeting="Board", lead=None) == ReportSettings(meeting="Board", lead="A")
    with pytest.raises(InvalidInput, match=r"^--purpose: expected one of"):
        with_options(base, purpose="vote")
