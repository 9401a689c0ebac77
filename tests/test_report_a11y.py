"""Reports a board can decide from (issue 17): heat maps that read without colour, focusable
scrolling regions, isolated user text, the QA assurance statement and plain pipeline sentences."""

from __future__ import annotations

import itertools
import re
from html.parser import HTMLParser

from sqlalchemy import create_engine, text

from riskreg.db import open_database
from riskreg.report import qa_context, render_report
from riskreg.report_context import heat_legend, heat_map
from tests import test_reports as base
from tests.risk_fixtures import risk_add
from tests.test_reports import AS_OF, contexts, run

# the example pilots and their reports, loaded once per backend as tests/test_reports.py does
examples_url = base.examples_url
reports = base.reports

RLO = "\u202e"


# --- heat maps ------------------------------------------------------------------------------------


def relative_luminance(colour: str) -> float:
    """WCAG 2 relative luminance of a #rrggbb colour."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_heat_map_colours_darken_strictly_from_low_to_very_high(reports):
    style = reports["board"].split("<style>", 1)[1].split("</style>", 1)[0]
    colours = {name: value for name, value in re.findall(r"--([a-z]+):\s*(#[0-9a-fA-F]{6})", style)}
    bands = [colours[name] for name in ("low", "medium", "high", "veryhigh")]
    luminance = [relative_luminance(c) for c in bands]
    assert all(a > b for a, b in itertools.pairwise(luminance)), dict(zip(bands, luminance, strict=True))
    # in greyscale, neighbouring bands still differ clearly (contrast ratio of at least 1.2)
    assert all((a + 0.05) / (b + 0.05) >= 1.2 for a, b in itertools.pairwise(luminance))
    # the cells that fill very high print their letters and IDs light on dark
    assert "svg text.ink-rating-very-high { fill: var(--on-veryhigh); }" in style


def test_heat_maps_have_a_legend_letters_ids_and_the_appetite_line(reports):
    html = reports["board"]
    legend = re.search(r'<ul class="heat-legend".*?</ul>', html, re.S).group(0)
    for letter, band in (("L", "low"), ("M", "medium"), ("H", "high"), ("VH", "very high")):
        assert f">{letter}</span> {band} (score " in legend
    assert "default appetite of 12" in legend
    for figure in re.findall(r'<figure class="chart heatmap".*?</figure>', html, re.S):
        assert len(re.findall(r'<text class="letter ink-rating-[a-z-]+"', figure)) == 25
        assert '<path class="appetite" d="M' in figure
    citizen = re.search(r'<figure class="chart heatmap" id="heat-citizen">.*?</figure>', html, re.S).group(0)
    assert re.search(
        r'<text class="ids ink-rating-high" x="212" y="161" text-anchor="middle">R-1</text>', citizen
    )


def test_a_crowded_heat_map_cell_shows_its_count_and_lists_its_ids_below():
    counts = {(3, 3): 6}
    ids = {(3, 3): [f"R-{i}" for i in range(1, 7)], (5, 5): ["R-9"]}
    rating = {**{s: "low" for s in range(1, 4)}, **{s: "medium" for s in range(4, 7)}}
    rating.update({s: "high" for s in range(7, 13)})
    rating.update({s: "very high" for s in range(13, 26)})
    hm = heat_map("citizen", "Citizen side", {**counts, (5, 5): 1}, rating.__getitem__, ids, appetite=12)
    crowded = hm.crowded
    assert [(c.likelihood, c.impact) for c in crowded] == [(3, 3)]
    assert crowded[0].shown_ids == () and crowded[0].listed == "R-1, R-2, R-3, R-4, R-5, R-6"
    assert next(c for c in hm.cells if c.score == 25).shown_ids == ("R-9",)
    # the line runs between 12 (not above) and 15 (above): e.g. left of likelihood 3 × impact 5
    assert "M180,8v64" in hm.appetite_path
    assert [(b.letter, b.scores) for b in heat_legend(rating.__getitem__)] == [
        ("L", "1–3"),
        ("M", "4–6"),
        ("H", "8–12"),
        ("VH", "15–25"),
    ]


# --- scrolling regions and wrapping ----------------------------------------------------------------


def test_every_scrolling_region_is_focusable_and_labelled(reports):
    for name, html in reports.items():
        regions = re.findall(r'<div class="h?scroll"[^>]*>', html)
        if name.startswith("pilot"):
            assert regions
        for region in regions:
            assert 'tabindex="0"' in region and 'role="region"' in region
            assert re.search(r'aria-label="[^"]+"', region)
    assert "th, td, caption, h1, h2, h3, h4, dd, li { overflow-wrap: anywhere; }" in reports["board"]


# --- hostile-looking text --------------------------------------------------------------------------


class _Where(HTMLParser):
    """Record the open elements around every piece of text, and the headings in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.texts: list[tuple[tuple[str, ...], str]] = []
        self.events: list[tuple[str, str]] = []  # ("bdi", text) and ("h3", text), in document order

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("br", "meta", "path", "rect", "line", "circle", "polyline"):
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.stack:
            while self.stack.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        self.texts.append((tuple(self.stack), data))
        if self.stack and self.stack[-1] in ("bdi", "h3"):
            self.events.append((self.stack[-1], data))


def test_a_bidi_override_in_an_owner_stays_inside_its_field(db_url):
    owner = f"{RLO}gnp.exe"
    run(db_url, *risk_add("Reversed owner", "--owner", owner, likelihood="5", impact="5"))
    board = render_report("board", contexts(db_url, pilot=None)["board"])
    body = board.split("<body", 1)[1]
    assert f"<bdi>{owner}</bdi>" in body
    where = _Where()
    where.feed(body)
    for stack, data in where.texts:
        if RLO in data:
            assert stack[-1] == "bdi" and data == owner, (stack, data)
    # the override ends with its field: the heading that follows reads as written
    after = where.events[where.events.index(("bdi", owner)) :]
    heading = next(data for kind, data in after if kind == "h3")
    assert heading == "Risks above appetite"


# --- QA report --------------------------------------------------------------------------------------


def test_qa_report_opens_with_the_audit_assurance(reports):
    html = reports["qa"]
    main = html.split("<main>", 1)[1]
    assert main.index('id="assurance-h"') < main.index('id="findings-h"')
    assert "audit chain verified: 28 events intact." in main  # 27 changes and the risk file's import event
    assert re.search(r"the register matches the trail: 15 risks, 0 controls, 2 pilots, 4 data files", main)


def test_qa_assurance_says_when_the_register_was_edited_outside_riskreg(db_url):
    run(db_url, *risk_add("Quiet", likelihood="2", impact="2"))
    if db_url.startswith("sqlite"):
        engine = create_engine(db_url)
        with engine.begin() as connection:
            connection.execute(text("UPDATE risks SET likelihood = 5 WHERE id = 1"))
        engine.dispose()
    else:
        return  # the PostgreSQL roles forbid the edit; the chain check is the same code
    database = open_database(db_url)
    try:
        with database.read() as session:
            context = qa_context(session, database.config, db_url, as_of=AS_OF)
    finally:
        database.dispose()
    assert context.assurance.chain_ok and not context.assurance.state_ok
    assert (
        context.assurance.state
        == "the register was edited outside riskreg: 1 difference from the audit trail"
    )
    assert context.assurance.mismatches and context.assurance.mismatches[0].startswith("R-1: ")
    assert "✗ differs:" in render_report("qa", context)


def test_qa_findings_name_their_subject_and_the_trail_shows_readable_changes(reports):
    html = reports["qa"]
    assert re.search(
        r'<th scope="row">review-overdue</th><td>R-1<br><span class="note"><bdi>[^<]+</bdi></span>'
        r'<br><span class="note">owner <bdi>[^<]+</bdi></span></td>',
        html,
    )
    assert (
        '<td>P-2<br><span class="note"><bdi>Residents co-assessing housing repairs</bdi></span></td>' in html
    )
    trail = html[html.index('id="audit-h"') :]
    assert "&#34;" not in trail and "{" not in trail  # no raw JSON
    assert "<code>review.outcome</code>: <bdi>–</bdi> → <bdi>escalated</bdi>" in trail
    assert "<code>evidence.estimate</code>: <bdi>–</bdi> → <bdi>1.01007</bdi>" in trail
    assert "<code>risks</code>: <bdi>R-1, R-2, R-7</bdi>" in trail


# --- board pipeline ----------------------------------------------------------------------------------


def test_board_pipeline_says_recommendation_and_decision_in_words_and_shapes(reports):
    html = reports["board"]
    assert '<span class="rec rec-stop"><span aria-hidden="true">■</span> stop</span>' in html
    assert '<span class="rec rec-proceed"><span aria-hidden="true">▲</span> proceed</span>' in html
    assert re.search(
        r"The analysis recommends 'stop'\. Last decision: 'continue' at <bdi>feasibility</bdi> by "
        r"<bdi>alice</bdi> on \d{4}-\d\d-\d\d, <strong>overriding</strong> the recommendation 'stop'\.",
        html,
    )
    assert re.search(
        r"The analysis recommends 'proceed'\. Last decision: 'proceed' at <bdi>feasibility</bdi> by "
        r"<bdi>alice</bdi> on \d{4}-\d\d-\d\d, as recommended\.",
        html,
    )
