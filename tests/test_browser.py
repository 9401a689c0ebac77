"""The three reports in a real browser: no console error, injected titles stay text, screenshots kept.

Headless Chromium (Debian package `chromium`; `.ci/run` installs it) loads each report from
the example data with hostile risk titles added. Screenshots at desktop and phone widths are
written to build/screenshots/ as CI artifacts.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

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
        rr("risk", "import", "pilots/risks.csv")
        for title in PAYLOADS:
            rr(*risk_add(title, side="shared", likelihood="5", impact="5"))
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
