"""`riskreg report ... --pdf`: the same report printed to an A4 PDF by a local headless Chromium."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from riskreg.printpdf import NO_BROWSER
from tests.conftest import Riskreg
from tests.risk_fixtures import risk_add
from tests.test_browser import chromium

pytestmark = pytest.mark.slow
A4_POINTS = (595.0, 842.0)  # 210 × 297 mm at 72 points to the inch


@pytest.fixture
def browser() -> str:
    return chromium()  # skips locally, fails in CI, without one


@pytest.fixture
def register(rr: Riskreg) -> Riskreg:
    assert rr(*risk_add("Volunteers miss a safeguarding concern", likelihood="4", impact="4")).exit_code == 0
    return rr


def _pdf_text(path: Path) -> tuple[list[tuple[float, float]], str]:
    import pypdfium2

    document = pypdfium2.PdfDocument(path)
    sizes = [tuple(round(side) for side in page.get_size()) for page in document]
    text = " ".join(page.get_textpage().get_text_range() for page in document)
    document.close()
    return sizes, text


@pytest.mark.parametrize(
    ("kind", "args", "name", "title"),
    [
        ("board", ("board",), "board.pdf", "Board report"),
        ("qa", ("qa",), "qa.pdf", "Quality assurance report"),
    ],
)
def test_pdf_is_the_report_on_a4_pages_under_its_default_name(register, browser, kind, args, name, title):
    result = register("report", *args, "--pdf", "--as-of", "2026-11-29", "--json")
    assert result.exit_code == 0, result.output
    written = json.loads(result.stdout)
    assert (written["report"], written["path"]) == (kind, name)
    pdf = Path(name)
    assert pdf.read_bytes().startswith(b"%PDF") and written["bytes"] == pdf.stat().st_size
    sizes, text = _pdf_text(pdf)
    assert sizes and all(size == (round(A4_POINTS[0]), round(A4_POINTS[1])) for size in sizes)
    assert title in text
    if kind == "board":
        assert "Volunteers miss a safeguarding concern" in text
    assert not Path(name.replace(".pdf", ".html")).exists()  # the PDF instead of the HTML, not beside it


def test_pdf_goes_where_output_says(register, browser, tmp_path):
    target = tmp_path / "pack" / "board-december.pdf"
    result = register("report", "board", "--pdf", "-o", str(target))
    assert (result.exit_code, result.stdout) == (0, f"{target}\n")
    assert target.read_bytes().startswith(b"%PDF")


def _no_browser_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("RISKREG_CHROMIUM", raising=False)


def test_without_a_browser_one_error_line_says_how_to_get_one_and_nothing_is_written(
    register, monkeypatch, tmp_path
):
    earlier = Path("board.pdf")
    earlier.write_bytes(b"%PDF earlier pack")
    _no_browser_on_path(monkeypatch, tmp_path)
    result = register("report", "board", "--pdf")
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", f"Error: {NO_BROWSER}\n")
    assert earlier.read_bytes() == b"%PDF earlier pack"
    assert sorted(p.name for p in Path().iterdir() if p.name.startswith((".board", "board"))) == ["board.pdf"]


def test_a_named_browser_that_does_not_exist_is_refused(register, monkeypatch):
    monkeypatch.setenv("RISKREG_CHROMIUM", "/nowhere/chromium")
    result = register("report", "qa", "--pdf")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: RISKREG_CHROMIUM=/nowhere/chromium is not a program that can be run; {NO_BROWSER}\n",
    )
    assert not Path("qa.pdf").exists()


def test_a_browser_that_fails_gives_its_exit_status_and_writes_nothing(register, monkeypatch, tmp_path):
    broken = tmp_path / "broken-chromium"
    broken.write_text("#!/bin/sh\necho 'cannot open display' >&2\nexit 3\n", encoding="utf-8")
    broken.chmod(broken.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("RISKREG_CHROMIUM", str(broken))
    result = register("report", "board", "--pdf")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {broken} could not print the PDF (exit status 3)\n",
    )
    assert not Path("board.pdf").exists()
    assert not [p for p in Path().iterdir() if p.name.startswith(".board")]


def test_html_reports_are_unchanged_without_pdf(register):
    result = register("report", "board", "--as-of", "2026-11-29")
    assert (result.exit_code, result.stdout) == (0, "board.html\n")
    assert Path("board.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert os.path.exists("board.html") and not os.path.exists("board.pdf")
