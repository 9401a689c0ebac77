"""The three reports in a real browser: no console error, injected titles stay text, screenshots kept.

Headless Chromium (Debian package `chromium`; `.ci/run` installs it) loads each report from
the example data with hostile risk titles added. Screenshots at desktop and phone widths are
written to build/screenshots/ as CI artifacts.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI, Riskreg
from tests.risk_fixtures import risk_add

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "build" / "screenshots"
PAYLOADS = (
    "<script>document.title='pwned'</script>",
    "\"><img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">",
)
WIDTHS = {"desktop": "1280,2200", "phone": "390,2200"}
LONG_CATEGORY = "w" * 100

pytestmark = pytest.mark.slow


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if IN_CI:
            pytest.fail("chromium is not installed; .ci/run should have installed it", pytrace=False)
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def browse(binary: str, page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium on a local page with the network closed."""
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-extensions",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={profile}",
        *extra,
        page.as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from click.testing import CliRunner

    folder = tmp_path_factory.mktemp("reports")
    cwd = Path.cwd()
    os.chdir(ROOT)
    try:
        rr = Riskreg(CliRunner(), f"sqlite:///{folder / 'r.db'}")
        rr("init")
        rr("risk", "import", "pilots/risks.csv")
        for title in PAYLOADS:
            rr(*risk_add(title, side="shared", likelihood="5", impact="5"))
        # a 100-character category and an owner with a bidi override, above appetite on the board
        rr(
            *risk_add(
                "Long category",
                "--category",
                LONG_CATEGORY,
                "--owner",
                "\u202egnp.exe",
                likelihood="5",
                impact="4",
            )
        )
        rr("pilot", "register", "pilots/hospital-befriending.toml")
        rr("pilot", "link", "P-1", "R-1", "R-7", "R-16")
        rr(
            "pilot",
            "data",
            "P-1",
            "pilots/data/hospital-befriending-feasibility.csv",
            "--stage",
            "feasibility",
        )
        rr("pilot", "resources", "P-1", "pilots/data/hospital-befriending-resources.csv")
        paths = {}
        for kind, args in {"board": ["board"], "pilot": ["pilot", "P-1"], "qa": ["qa"]}.items():
            path = folder / f"{kind}.html"
            result = rr("report", *args, "-o", str(path), "--as-of", "2026-11-29")
            assert result.exit_code == 0, result.output
            paths[kind] = path
        return paths
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("kind", ["board", "pilot", "qa"])
def test_report_loads_without_console_errors_and_injected_titles_stay_text(reports, kind, tmp_path):
    binary = chromium()
    result = browse(binary, reports[kind], tmp_path / "profile", "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert "<main" in dom
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line]
    assert console == []
    assert "data-pwned" not in dom.split("<body", 1)[1].split(">", 1)[0]
    assert "<title>pwned</title>" not in dom
    assert not re.search(r"<img[^>]+src=\"x\"", dom)
    if kind == "board":
        assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom


@pytest.mark.parametrize("kind", ["board", "pilot", "qa"])
@pytest.mark.parametrize("width", list(WIDTHS))
def test_screenshots_at_desktop_and_phone_widths(reports, kind, width, tmp_path):
    binary = chromium()
    SHOTS.mkdir(parents=True, exist_ok=True)
    target = SHOTS / f"{kind}-{width}.png"
    target.unlink(missing_ok=True)
    result = browse(
        binary,
        reports[kind],
        tmp_path / "profile",
        f"--screenshot={target}",
        f"--window-size={WIDTHS[width]}",
        "--hide-scrollbars",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert target.stat().st_size > 10_000  # a rendered page, not a blank image


# --- printing ------------------------------------------------------------------------------------

BREAK_AFTER_AVOID = re.compile(r"<(h[234]|caption|thead)\b[^>]*>(.*?)</\1>", re.DOTALL)
SECTION = re.compile(r'(<section class="report-section"[^>]*>)(.*?)(</section>)', re.DOTALL)
OFFSETS_MM = range(0, 270, 15)  # where a section's content starts on its first page, down an A4 page


def _plain(markup: str) -> str:
    """The text of some HTML, whitespace collapsed, as a PDF's extracted text spells it."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", markup))
    return " ".join(text.replace("\ufb01", "fi").replace("\ufb02", "fl").split())


def _shifted(markup: str) -> str:
    """The report with every section repeated, its content pushed down its first page by each of OFFSETS_MM.

    Where a page breaks depends on the data above it; printing every section from many
    starting heights tries the print style against breaks at every kind of element.
    """
    head, body = markup.split("<body", 1)
    copies = "".join(
        f'{opening}<div style="height: {mm}mm"></div>{inner}{closing}'
        for opening, inner, closing in SECTION.findall(body)
        for mm in OFFSETS_MM
    )
    return f"{head}<body><main>{copies}</main></body></html>"


FOOTER_PT = 40  # the page-margin boxes print below this height (18 mm bottom margin = 51 pt)


@dataclass
class PrintedPage:
    body: str  # the text above the bottom margin
    footer: str  # the text of the bottom margin boxes


def _printed_pages(binary: str, page: Path, tmp_path: Path) -> list[PrintedPage]:
    """Print a page to PDF in Chromium (A4, as the print style asks); return each page's body and footer text."""
    import pypdfium2

    pdf = tmp_path / "printed.pdf"
    result = browse(binary, page, tmp_path / "profile", f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    assert result.returncode == 0, result.stderr[-2000:]
    document = pypdfium2.PdfDocument(pdf)
    try:
        return [_body_and_footer(printed) for printed in document]
    finally:
        document.close()


def _body_and_footer(printed: Any) -> PrintedPage:
    """Split a PDF page's text at the bottom margin: the page's content above, the margin boxes below."""
    width, height = printed.get_size()
    text = printed.get_textpage()
    body = text.get_text_bounded(0, FOOTER_PT, width, height)  # points above the foot of the page
    footer = text.get_text_bounded(0, 0, width, FOOTER_PT)
    # escaped, so that a title spelling a tag stays text for _plain
    return PrintedPage(_plain(html.escape(body)), _plain(html.escape(footer)))


@pytest.mark.parametrize("kind", ["board", "pilot", "qa"])
def test_printed_pages_never_end_with_a_heading_caption_or_table_header(reports, kind, tmp_path):
    """A board member's printout keeps each heading, caption and table header with what follows it."""
    binary = chromium()
    markup = reports[kind].read_text(encoding="utf-8")
    leaders = {_plain(found.group(2)) for found in BREAK_AFTER_AVOID.finditer(markup.split("<body", 1)[1])}
    shifted = tmp_path / f"{kind}-shifted.html"
    shifted.write_text(_shifted(markup), encoding="utf-8")
    pages = _printed_pages(binary, shifted, tmp_path)
    assert len(pages) > 2 * len(OFFSETS_MM)  # every section printed from every offset
    stranded = sorted(
        {leader for page in pages[:-1] for leader in leaders - {""} if page.body.endswith(leader)}
    )
    assert stranded == []


@pytest.mark.parametrize("kind", ["board", "pilot", "qa"])
def test_every_printed_page_names_its_report_and_its_place_in_it(reports, kind, tmp_path):
    binary = chromium()
    title = re.search(r"<h1>(.*?)</h1>", reports[kind].read_text(encoding="utf-8")).group(1)
    pages = _printed_pages(binary, reports[kind], tmp_path)
    assert len(pages) > 1
    for number, page in enumerate(pages, start=1):
        assert f"page {number} of {len(pages)}" in page.footer
        assert _plain(f"{title} — riskreg, as of 2026-11-29") in page.footer


def test_a_100_character_category_wraps_in_the_printed_above_appetite_table(reports, tmp_path):
    """The board's above-appetite table keeps a long category on the page: it wraps instead of clipping."""
    import pypdfium2

    binary = chromium()
    pdf = tmp_path / "board.pdf"
    result = browse(
        binary, reports["board"], tmp_path / "profile", f"--print-to-pdf={pdf}", "--no-pdf-header-footer"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    pieces: list[tuple[float, float, str]] = []
    document = pypdfium2.PdfDocument(pdf)
    for page in document:
        width = page.get_size()[0]
        pieces = _runs_of_w(page.get_textpage())
        assert all(0 <= x < width for x, _y, _t in pieces)
        longest = max((len(t) for _x, _y, t in pieces), default=0)
        if pieces:
            break
    document.close()
    assert pieces, "the long category was not printed"
    assert longest < len(LONG_CATEGORY)  # broken over lines, not one run past the edge
    assert len({round(y) for _x, y, _t in pieces}) >= 2


def _runs_of_w(text: Any) -> list[tuple[float, float, str]]:
    """(left, bottom, text) of each run of four or more w's printed on one line of a PDF page.

    Chromium places each glyph of the category apart, so a run is rebuilt from the characters
    that touch on one baseline.
    """
    rows: dict[int, list[tuple[float, float, str]]] = {}
    for i in range(text.count_rects()):
        left, bottom, right, top = text.get_rect(i)
        glyphs = text.get_text_bounded(left, bottom, right, top).strip()
        if glyphs and set(glyphs) == {"w"}:
            rows.setdefault(round(bottom), []).append((left, right, glyphs))
    runs: list[tuple[float, float, str]] = []
    for bottom, row in rows.items():
        merged: list[list[Any]] = []
        for left, right, glyphs in sorted(row):
            if merged and left - merged[-1][1] < 2:  # touching: the same word
                merged[-1][1:] = [right, merged[-1][2] + glyphs]
            else:
                merged.append([left, right, glyphs])
        runs.extend((left, bottom, glyphs) for left, _right, glyphs in merged if len(glyphs) >= 4)
    return runs
