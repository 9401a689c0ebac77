"""The pilot report's bottom line first (issue 17): decision panel, plain labels, units, funnel, phone.

The panel is built from stored analyses, so most checks run on plain dicts shaped like
``analyse(...).to_dict()``; the report-level checks use the example pilots (both backends) and
a copy of the befriending pilot with long arm names; the layout checks run in headless Chromium.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from riskreg import pilot_paper as pp
from riskreg.report import environment
from riskreg.report_context import DecisionLine, bar_chart
from tests import test_reports as base
from tests.test_reports import AS_OF, PILOTS, run

examples_url = base.examples_url
reports = base.reports

RLO = "\u202e"


def metric(**overrides):  # type: ignore[no-untyped-def]
    """A primary result as the analysis stores it (the befriending pilot's wellbeing at its first look)."""
    m = {
        "name": "wellbeing",
        "kind": "continuous",
        "role": "primary",
        "test": "non-inferiority",
        "better": "higher",
        "margin": 3.0,
        "n": {"comparison": 58, "pilot": 57},
        "estimate": 0.838,
        "ci": [-4.92, 6.60],
        "ci_level": 0.99994,
        "boundary": 4.02,
        "verdict": "inconclusive",
        "nominal": {"ci": [-1.89, 3.57], "ci_level": 0.95},
    }
    m.update(overrides)
    return m


def analysis(**overrides):  # type: ignore[no-untyped-def]
    """A stage's analysis as stored: the primary above, a count safety metric, criteria, costs."""
    a = {
        "stage": "feasibility",
        "stage_index": 0,
        "arms": ["comparison", "pilot"],
        "primary": "wellbeing",
        "alpha": 0.05,
        "recommendation": "proceed",
        "reasons": [
            "wellbeing is inconclusive (difference in means 0.838, 99.994% CI -4.92 to 6.6, boundary |z| ≥ 4.02)"
        ],
        "units": {"comparison": 62, "pilot": 62},
        "boundaries": {"final": False},
        "criteria": [
            {"name": "recruited", "value": 62, "green": 60.0, "red": 40.0, "status": "green"},
            {"name": "retention", "value": 0.5347, "green": 0.8, "red": 0.6, "status": "red"},
        ],
        "metrics": [
            metric(),
            {
                "name": "safeguarding_incidents",
                "kind": "count",
                "role": "safety",
                "test": "superiority",
                "better": "lower",
                "margin": None,
                "n": {"comparison": 222, "pilot": 222},
                "detail": {
                    "comparison": {"n": 222, "events": 34, "exposure": 1686.8},
                    "pilot": {"n": 222, "events": 31, "exposure": 1709.8},
                },
                "estimate": 0.8995,
                "ci": [0.5346, 1.5082],
                "ci_level": 0.95,
                "verdict": "inconclusive",
            },
        ],
        "costs": {
            "comparison": {"per_unit": 94.5, "per_unit_public": 94.5},
            "pilot": {"per_unit": 238.33, "per_unit_public": 81.65},
            "incremental": {"per_unit_with_citizen": 143.83, "per_unit_public_only": -12.85, "effect": 0.838},
        },
    }
    a.update(overrides)
    return a


UNITS = {"wellbeing": "WEMWBS points", "safeguarding_incidents": "concerns per person-week"}


# --- words and numbers -------------------------------------------------------------------------------


def test_amounts_carry_the_configured_currency():
    assert pp.currency_amount(1234.5, "£") == "£1,234.50"
    assert pp.currency_amount(-12.85, "£") == "−£12.85"
    assert pp.currency_amount(94.5, "GBP") == "GBP\u00a094.50"
    assert pp.currency_amount(None, "£") == "–"


def test_an_adjusted_interval_gets_a_plain_name_and_its_level_a_footnote():
    assert pp.interval_label(0.95, False) == "95% interval"
    assert pp.interval_label(0.950022, True) == "95% interval"
    assert pp.interval_label(0.99997, False) == "adjusted interval for an early look"
    assert pp.interval_label(0.9901, True) == "interval adjusted for the earlier looks"
    panel = pp.decision_panel([analysis()], (), UNITS, [60, 200], "£")
    assert "adjusted interval for an early look (see note 1) −4.92 to 6.6" in panel.primary_sentence
    assert "99.994% CI" not in panel.primary_sentence and "|z|" not in panel.primary_sentence
    (note,) = panel.footnotes
    assert note.number == 1 and "The exact level of the primary's interval is 99.994%." in note.text
    assert "at least 4.02 standard errors from the line it is tested against (|z| ≥ 4.02" in note.text
    assert pp.exact_level(0.9999999999999988) == "more than 99.999%"


def test_analysis_reasons_lose_their_jargon():
    (reason,) = pp.decision_panel([analysis()], (), UNITS, [60, 200], "£").reasons
    assert reason == (
        "wellbeing is inconclusive (difference in means 0.838, adjusted interval (see note 1) −4.92 to 6.6, "
        "the bar for this look: 4.02 standard errors)"
    )
    assert pp.plain_reason("a (95.002% CI -0.469 to 2.49)") == "a (95% interval −0.469 to 2.49)"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, "The interval reaches −4.92 WEMWBS points, beyond the margin of −3 WEMWBS points"),
        (
            {"ci": [-0.47, 2.49], "verdict": "non-inferior"},
            "Even the least favourable end of the interval, −0.47 WEMWBS points, is on the safe side of the margin of −3 WEMWBS points",
        ),
        (
            {"ci": [-5.5, -3.2], "verdict": "inferior"},
            "The whole interval lies beyond the margin of −3 WEMWBS points",
        ),
        (
            {"test": "superiority", "ci": [0.2, 1.1], "verdict": "superior"},
            "The whole interval is on the better side of 0 (no difference)",
        ),
        ({"test": "superiority", "verdict": "inconclusive"}, "The interval includes 0 (no difference)"),
        (
            {"test": "equivalence", "ci": [-1.0, 2.0], "verdict": "equivalent"},
            "The whole interval lies within −3 WEMWBS points to 3 WEMWBS points",
        ),
        (
            {
                "kind": "binary",
                "test": "superiority",
                "better": "lower",
                "ci": [0.02, 0.11],
                "verdict": "harm",
            },
            "The whole interval is on the worse side of 0 (no difference)",
        ),
    ],
)
def test_the_primary_is_read_against_its_margin(overrides, expected):
    assert pp.meaning(metric(**overrides), "WEMWBS points").startswith(expected)


def test_binary_and_count_metrics_show_numerators_and_denominators():
    assert (
        pp.arm_count("binary", {"n": 220, "events": 30, "proportion": 30 / 220}, None) == "30 of 220 (13.6%)"
    )
    count = pp.arm_count("count", {"n": 222, "events": 31, "exposure": 1709.8}, "concerns per person-week")
    assert count == "31 events in 1,709.8 person-weeks (222 followed)"
    assert pp.arm_count("count", {"n": 0, "events": 0, "exposure": 0.0}, None) == "no data yet"
    panel = pp.decision_panel([analysis()], (), UNITS, [60, 200], "£")
    (safety,) = panel.safety
    assert [a.text for a in safety.arms] == [
        "34 events in 1,686.8 person-weeks (222 followed)",
        "31 events in 1,709.8 person-weeks (222 followed)",
    ]
    assert (
        "0.899 times the comparison rate" in safety.sentence
        and "95% interval 0.535 to 1.51" in safety.sentence
    )
    assert not safety.harm


def test_a_proportion_difference_is_in_percentage_points_throughout():
    m = metric(
        name="readmitted",
        kind="binary",
        test="superiority",
        better="lower",
        margin=None,
        n={"comparison": 221, "pilot": 220},
        summary={"comparison": 0.1946, "pilot": 0.1364},
        estimate=-0.0582,
        ci=[-0.128, 0.0114],
        ci_level=0.95,
        verdict="inconclusive",
    )
    panel = pp.decision_panel([analysis(metrics=[m], primary="readmitted")], (), {}, [60, 200], "£")
    assert "5.82 percentage points lower" in panel.primary_sentence
    assert "95% interval −12.8 to 1.14 percentage points" in panel.primary_sentence
    assert pp.plain_ci(m, True) == "95% interval: −12.8 to 1.14 percentage points"


def test_a_cheaper_and_better_pilot_is_dominant_not_a_negative_cost():
    assert pp.per_effect_text(-12.85, 1.01, "continuous", "higher", "£") == "Dominant (cheaper and better)"
    assert pp.per_effect_text(30.0, -1.0, "continuous", "higher", "£") == "Dominated (dearer and worse)"
    assert pp.per_effect_text(143.83, 1.01, "continuous", "higher", "£", "WEMWBS points") == (
        "£142.41 per unit of effect (WEMWBS points) gained"
    )
    # a proportion difference: per percentage point, not per 100 of them
    assert pp.per_effect_text(20.0, -0.05, "binary", "lower", "£") == "£4.00 per percentage point gained"
    assert (
        pp.per_effect_text(-20.0, 0.05, "binary", "lower", "£")
        == "Cheaper but worse: saves £4.00 per percentage point lost"
    )


def test_cost_per_effect_is_caveated_while_the_effect_is_inconclusive():
    panel = pp.decision_panel([analysis()], (), UNITS, [60, 200], "£")
    assert [(c.arm, c.with_citizen, c.public_only) for c in panel.costs] == [
        ("comparison", "£94.50", "£94.50"),
        ("pilot", "£238.33", "£81.65"),
    ]
    assert panel.incremental == (
        "The pilot arm costs £143.83 more per participant counting citizen inputs, "
        "£12.85 less counting public money only."
    )
    assert "Public money only: Dominant (cheaper and better)." in panel.per_effect
    assert panel.per_effect_caveat.startswith(
        "Read with care: the interval of the wellbeing effect includes no difference"
    )
    shown = analysis(metrics=[metric(ci=[0.2, 1.5], verdict="superior"), *analysis()["metrics"][1:]])
    assert pp.decision_panel([shown], (), UNITS, [60, 200], "£").per_effect_caveat == ""


def test_recruitment_and_retention_read_as_red_amber_green_with_their_rules():
    rag = pp.decision_panel([analysis()], (), UNITS, [60, 200], "£").rag
    assert [(r.name, r.status, r.value, r.rule) for r in rag] == [
        (
            "Recruitment",
            "green",
            "62 per arm (smallest arm) of 60 planned",
            "green at 60 or more, red below 40",
        ),
        (
            "Retention",
            "red",
            "53% of units with the primary outcome recorded",
            "green at 80% or more, red below 60%",
        ),
    ]


def test_the_panel_shows_the_decision_at_the_stage_and_any_override():
    decided = DecisionLine(
        "P-2", "feasibility", "continue", "stop", True, "alice", "2026-12-05 00:11 UTC", "More data"
    )
    earlier = DecisionLine(
        "P-2", "scoping", "proceed", "proceed", False, "bob", "2026-11-01 09:00 UTC", "Fine"
    )
    panel = pp.decision_panel([analysis()], (earlier, decided), UNITS, [60, 200], "£")
    assert panel.decision == "continue" and panel.decided == decided
    assert pp.decision_panel([analysis()], (earlier,), UNITS, [60, 200], "£").decided is None


def test_the_funnel_and_the_effect_run_across_the_stages_cumulatively():
    later = analysis(
        stage="extended",
        stage_index=1,
        units={"comparison": 222, "pilot": 222},
        boundaries={"final": True},
        metrics=[
            metric(
                n={"comparison": 211, "pilot": 210},
                estimate=1.01,
                ci=[-0.469, 2.49],
                ci_level=0.950022,
                verdict="non-inferior",
                nominal={"ci": [-0.469, 2.49], "ci_level": 0.95},
            )
        ],
    )
    steps = pp.funnel([analysis(), later], [60, 200])
    assert [
        (s.stage, s.arm, s.planned, s.recruited, s.recruited_share, s.retained, s.retained_share)
        for s in steps
    ] == [
        ("feasibility", "comparison", "60", "62", "103%", "58", "94%"),
        ("feasibility", "pilot", "60", "62", "103%", "57", "92%"),
        ("extended", "comparison", "200", "222", "111%", "211", "95%"),
        ("extended", "pilot", "200", "222", "111%", "210", "95%"),
    ]
    assert steps[0].recruited_width == 100.0 and steps[0].retained_width == 96.7
    first, second = pp.stage_effects([analysis(), later], UNITS)
    assert (first.estimate, first.interval, first.nominal) == (
        "+0.838 WEMWBS points",
        "adjusted interval for an early look: −4.92 to 6.6 WEMWBS points",
        "95% interval: −1.89 to 3.57 WEMWBS points",
    )
    assert (second.interval, second.nominal) == ("95% interval: −0.469 to 2.49 WEMWBS points", "")


# --- the report --------------------------------------------------------------------------------------


def _section(html: str, name: str) -> str:
    start = html.index(f'id="{name}"')
    return html[start : html.index("</section>", start)]


def test_the_pilot_report_opens_with_the_bottom_line_and_ends_with_the_protocol(reports):
    html = reports["pilot-1"]
    order = [
        html.index(f'<section class="report-section" id="{s}"') for s in ("bottom-line", "progress", "stages")
    ]
    assert order == sorted(order) and order[0] < html.index('id="protocol"')
    assert html.index('id="protocol"') > html.index('id="decisions"')
    assert html.index("protocol SHA-256") > html.index('id="decisions"')
    panel = _section(html, "bottom-line")
    assert "Recommendation: " in panel and "rec-proceed" in panel
    assert (
        "The pilot arm&#39;s wellbeing was 1.01 WEMWBS points higher (95% interval −0.469 to 2.49)" in panel
    )
    assert "Against the margin:</strong> Even the least favourable end of the interval" in panel
    assert "34 events in 1,686.8 person-weeks (222 followed)" in panel
    assert 'class="rag status-green"' in panel and "Retention" in panel
    assert "GBP\u00a0238.33" in panel and "Dominant (cheaper and better)" in panel
    # the first stage's primary interval in plain words, the exact level in the note
    assert "99.99" not in _section(html, "progress") and "adjusted interval for an early look" in html
    assert re.search(r'<li id="note-1">The exact level of the primary&#39;s interval is 95.002%', html)


def test_the_overridden_stop_shows_in_the_panel(reports):
    panel = _section(reports["pilot-2"], "bottom-line")
    assert "rec-stop" in panel and "rec-continue" in panel and '<span class="flag">override</span>' in panel
    assert "overriding the recommendation to stop" in panel
    assert "no data yet" in panel  # the complaints safety metric before any data
    assert 'class="rag status-red"' in panel


def test_every_table_in_the_pilot_report_sits_in_a_focusable_labelled_region(reports):
    for name in ("pilot-1", "pilot-2"):
        html = reports[name]
        body = html.split("<main>", 1)[1]
        tables = re.findall(r"<table\b", body)
        regions = re.findall(
            r'<div class="(?:h?scroll)" tabindex="0" role="region" aria-label="[^"]+">\s*<table\b', body
        )
        assert len(regions) == len(tables), (len(regions), len(tables))
        assert tables
    assert 'id="costs-chart"' in reports["pilot-1"]  # the costs chart's table is counted among them


def test_a_bidi_override_in_a_chart_label_stays_inside_it():
    chart = bar_chart([(f"{RLO}gnp.exe", (1.0, 2.0, 3.0))], ("a", "b", "c"), "caption")
    template = environment().from_string(
        '{% from "_partials/charts.html.j2" import bars %}{% call bars(c, "x") %}<table></table>{% endcall %}'
    )
    svg = template.render(c=chart)
    assert f'<tspan class="iso" unicode-bidi="isolate">{RLO}gnp.exe</tspan></text>' in svg


def test_the_governed_currency_reaches_the_panel_and_the_costs(tmp_path, db_url):
    run(db_url, "config", "set", "currency", "£", "--reason", "Board papers in pounds")
    run(db_url, "pilot", "register", str(PILOTS / "hospital-befriending.toml"))
    run(
        db_url,
        "pilot",
        "data",
        "P-1",
        str(PILOTS / "data" / "hospital-befriending-feasibility.csv"),
        "--stage",
        "feasibility",
    )
    run(db_url, "pilot", "resources", "P-1", str(PILOTS / "data" / "hospital-befriending-resources.csv"))
    out = tmp_path / "p.html"
    run(db_url, "report", "pilot", "P-1", "-o", str(out), "--as-of", AS_OF)
    html = out.read_text(encoding="utf-8")
    panel = _section(html, "bottom-line")
    assert "Cost per participant (£)" in panel and "£94.50 with citizen inputs valued" in panel
    costs = _section(html, "costs")
    assert re.search(r'<td class="num">£[\d,]+\.\d\d</td>', costs)
    # a negative cost per unit of effect is named, never printed as a negative amount
    per_effect = costs.split("per unit of primary effect</dt><dd>", 1)[1].split("</dd>", 1)[0]
    assert "−£" not in per_effect and "GBP" not in html.split("<main>", 1)[1]


# --- long arm names, in a real browser ---------------------------------------------------------------

LONG_ARMS = {"comparison": "usual_care", "pilot": "good_neighbour_scheme"}
WIDTHS = (1280, 390)
# Run in a copy of the report without its CSP (the report itself runs no script): every element
# in <main> must end inside the page or inside a scrolling region; no cell may clip its content;
# every scrolling region must be focusable and labelled; chart text must draw at 11 px or more.
MEASURE = """<script>
const page = document.documentElement.clientWidth, out = {width: page, outside: [], clipped: [], regions: [], small: []};
const scroller = el => { for (let e = el.parentElement; e; e = e.parentElement) {
  const s = getComputedStyle(e); if (s.overflowX === 'auto' || s.overflowX === 'scroll') return e; } return null; };
const name = el => el.tagName + ' ' + (el.textContent || '').trim().slice(0, 60);
for (const el of document.querySelectorAll('main *')) {
  const box = el.getBoundingClientRect();
  if (!box.width || !box.height) continue;
  const region = scroller(el);
  if (!region && box.right > page + 0.5) out.outside.push(name(el));
  if ((el.tagName === 'TD' || el.tagName === 'TH') && el.scrollWidth > el.clientWidth + 1) out.clipped.push(name(el));
  if (region && region.scrollWidth > region.clientWidth) out.regions.push([region.tabIndex, region.getAttribute('role'), region.getAttribute('aria-label')]);
}
for (const svg of document.querySelectorAll('main svg')) {
  const box = svg.getBoundingClientRect();
  if (!box.width) continue;
  const scale = box.width / svg.viewBox.baseVal.width;
  for (const t of svg.querySelectorAll('text')) {
    const px = parseFloat(getComputedStyle(t).fontSize) * scale;
    if (px < 11 - 0.01) out.small.push([t.textContent.trim().slice(0, 40), Math.round(px * 10) / 10]);
  }
}
window.parent.document.body.setAttribute('data-measured', JSON.stringify(out));
</script>"""


def _long_arm_copy(folder: Path) -> tuple[Path, Path, Path]:
    """The befriending protocol and data with the arms renamed usual_care and good_neighbour_scheme."""
    protocol = (PILOTS / "hospital-befriending.toml").read_text(encoding="utf-8")
    protocol = protocol.replace(
        'arms = ["comparison", "pilot"]', 'arms = ["usual_care", "good_neighbour_scheme"]'
    )
    paths = []
    for name, text in (("hospital-befriending.toml", protocol),):
        (folder / name).write_text(text, encoding="utf-8")
        paths.append(folder / name)
    for name in ("hospital-befriending-feasibility.csv", "hospital-befriending-resources.csv"):
        with (PILOTS / "data" / name).open(encoding="utf-8", newline="") as source:
            rows = list(csv.DictReader(source))
        with (folder / name).open("w", encoding="utf-8", newline="") as target:
            writer = csv.DictWriter(target, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows({**row, "arm": LONG_ARMS.get(row["arm"], row["arm"])} for row in rows)
        paths.append(folder / name)
    return paths[0], paths[1], paths[2]


@pytest.fixture(scope="module")
def long_arm_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("long-arms")
    url = f"sqlite:///{folder / 'r.db'}"
    run(url, "init")
    protocol, outcomes, resources = _long_arm_copy(folder)
    run(url, "pilot", "register", str(protocol))
    run(url, "pilot", "data", "P-1", str(outcomes), "--stage", "feasibility")
    run(url, "pilot", "resources", "P-1", str(resources))
    out = folder / "pilot.html"
    run(url, "report", "pilot", "P-1", "-o", str(out), "--as-of", AS_OF)
    return out


def _measure(report: Path, width: int, tmp_path: Path) -> dict:  # type: ignore[type-arg]
    from tests.test_browser import browse, chromium

    binary = chromium()
    html = report.read_text(encoding="utf-8")
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html)
    measured = html.replace("</body>", MEASURE + "</body>")
    # headless Chromium will not open a window narrower than 500 px, so the report is laid out
    # in a frame of the phone's width (a srcdoc frame shares the page's origin for the result)
    page = tmp_path / f"measure-{width}.html"
    page.write_text(
        f'<!DOCTYPE html><html><body style="margin:0"><iframe width="{width}" height="2000" '
        f'style="border:0" srcdoc="{html_escape(measured)}"></iframe></body></html>',
        encoding="utf-8",
    )
    result = browse(binary, page, tmp_path / f"profile-{width}", "--dump-dom", "--window-size=1400,2000")
    assert result.returncode == 0, result.stderr[-2000:]
    found = re.search(r"data-measured=\"([^\"]*)\"", result.stdout)
    assert found, result.stdout[-2000:]
    return json.loads(html_unescape(found.group(1)))


def html_unescape(text: str) -> str:
    """Return text with HTML character references resolved."""
    import html

    return html.unescape(text)


def html_escape(text: str) -> str:
    """Return text escaped for a double-quoted attribute."""
    import html

    return html.escape(text, quote=True)


@pytest.mark.slow
@pytest.mark.parametrize("width", WIDTHS)
def test_long_arm_names_neither_clip_nor_leave_the_page(long_arm_report, width, tmp_path):
    html = long_arm_report.read_text(encoding="utf-8")
    assert "good_neighbour_scheme" in _section(html, "bottom-line")
    measured = _measure(long_arm_report, width, tmp_path)
    assert width - 20 <= measured["width"] <= width  # the frame's width, less any scrollbar
    assert measured["outside"] == []
    assert measured["clipped"] == []
    for tabindex, role, name in measured["regions"]:
        assert (tabindex, role) == (0, "region") and name, (tabindex, role, name)
    assert measured["small"] == []
