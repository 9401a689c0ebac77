"""axe-core on every report in headless Chromium, at desktop and phone widths.

axe-core (npm, pinned in package.json; `.ci/run` installs it with `npm ci`) is injected into
a test copy of each report, whose Content-Security-Policy is relaxed for that one inline
script; the shipped reports stay script-free. Any serious or critical violation fails.

Headless Chromium will not make a window narrower than 500 px, so the phone check lays the
report out in a 390-px-wide iframe: the report's media queries then see a 390-px viewport.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.test_browser import browse, chromium, reports  # noqa: F401 (reports is a fixture)

ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")
RESULT = re.compile(r'<pre id="axe-result">(.*?)</pre>', re.DOTALL)

pytestmark = pytest.mark.slow

# Runs axe on the page it is in, keeps the serious and critical violations, and hands them to
# whoever shows the result: the page itself, or the phone frame's parent (by postMessage,
# since file: pages are separate origins).
RUNNER = """
axe.run(document, {resultTypes: ["violations"]}).then(function (results) {
  var found = results.violations.filter(function (v) { return BLOCKING_IMPACTS.indexOf(v.impact) >= 0; })
    .map(function (v) {
      return {id: v.id, impact: v.impact, help: v.help,
              nodes: v.nodes.slice(0, 5).map(function (n) { return n.target.join(" "); })};
    });
  var text = JSON.stringify(found);
  if (window.parent !== window) { window.parent.postMessage(text, "*"); return; }
  var out = document.createElement("pre"); out.id = "axe-result"; out.textContent = text;
  document.body.appendChild(out);
}, function (error) {
  var text = JSON.stringify([{id: "axe-error", impact: "critical", help: String(error), nodes: []}]);
  if (window.parent !== window) { window.parent.postMessage(text, "*"); return; }
  var out = document.createElement("pre"); out.id = "axe-result"; out.textContent = text;
  document.body.appendChild(out);
});
""".replace("BLOCKING_IMPACTS", json.dumps(list(BLOCKING)))

PHONE_FRAME = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>phone frame</title></head>
<body style="margin:0">
<iframe title="report at phone width" src="%(src)s" style="width:390px;height:2400px;border:0"></iframe>
<script>
window.addEventListener("message", function (event) {
  var out = document.createElement("pre"); out.id = "axe-result"; out.textContent = event.data;
  document.body.appendChild(out);
});
</script>
</body></html>
"""


def axe_source() -> str:
    if not AXE.exists():
        if IN_CI:
            pytest.fail("axe-core is not installed; .ci/run should run npm ci", pytrace=False)
        pytest.skip("axe-core is not installed (npm ci)")
    return AXE.read_text(encoding="utf-8")


def instrumented(report: Path, folder: Path) -> Path:
    """Write a copy of a report that runs axe-core once loaded (its CSP relaxed for scripts)."""
    markup = report.read_text(encoding="utf-8")
    relaxed, count = re.subn(
        r'(<meta http-equiv="Content-Security-Policy" content=")[^"]*(">)',
        r"\1default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'unsafe-inline'\2",
        markup,
    )
    assert count == 1  # the shipped report carries exactly one policy
    scripts = f"<script>{axe_source()}</script>\n<script>{RUNNER}</script>\n</body>"
    copy = folder / f"axe-{report.name}"
    copy.write_text(relaxed.replace("</body>", scripts, 1), encoding="utf-8")
    return copy


def violations(page: Path, profile: Path, *extra: str) -> list[dict[str, object]]:
    """Load a page in headless Chromium and return the violations axe reported in it."""
    result = browse(chromium(), page, profile, "--dump-dom", "--virtual-time-budget=60000", *extra)
    assert result.returncode == 0, result.stderr[-2000:]
    found = RESULT.search(result.stdout)
    assert found, "axe-core did not report (did the page load?)"
    import html

    return json.loads(html.unescape(found.group(1)))


@pytest.mark.parametrize("kind", ["board", "pilot", "qa"])
def test_no_serious_or_critical_violation_at_desktop_width(reports, kind, tmp_path):  # noqa: F811
    page = instrumented(reports[kind], tmp_path)
    assert violations(page, tmp_path / "profile", "--window-size=1280,2200") == []


@pytest.mark.parametrize("kind", ["board", "pilot", "qa"])
def test_no_serious_or_critical_violation_at_phone_width(reports, kind, tmp_path):  # noqa: F811
    page = instrumented(reports[kind], tmp_path)
    frame = tmp_path / f"phone-{kind}.html"
    frame.write_text(PHONE_FRAME % {"src": page.name}, encoding="utf-8")
    assert (
        violations(frame, tmp_path / "profile", "--window-size=1280,2200", "--allow-file-access-from-files")
        == []
    )


def test_the_check_finds_a_planted_violation(reports, tmp_path):  # noqa: F811
    """The harness can fail: an image without a text alternative is a critical violation."""
    planted = tmp_path / "planted.html"
    planted.write_text(
        reports["qa"].read_text(encoding="utf-8").replace("</main>", '<img src="data:,">\n</main>', 1),
        encoding="utf-8",
    )
    found = violations(instrumented(planted, tmp_path), tmp_path / "profile")
    assert [v["id"] for v in found] == ["image-alt"]
