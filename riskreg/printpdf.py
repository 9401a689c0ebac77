"""Printing a rendered report to an A4 PDF through a local headless Chromium or Chrome.

Board packs circulate as PDFs. The report's own print stylesheet (``@page`` A4, running
header, "page N of M" footer) does the layout, so the PDF is what a browser would print;
riskreg only drives the browser, with the network closed and a throwaway profile.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from riskreg.errors import InvalidInput

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
BROWSER_VARIABLE = "RISKREG_CHROMIUM"
PRINT_TIMEOUT_SECONDS = 120
NO_BROWSER = (
    "no Chromium or Chrome found to print the PDF; install one (Debian: apt install chromium) "
    f"or set {BROWSER_VARIABLE} to its path"
)
# Headless, sandbox-free (it runs as the user, on a local file), and with every background
# connection off: the report is self-contained and the browser must not reach the network.
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-quic",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--no-pdf-header-footer",
)


def find_browser() -> str:
    """Return the path of the Chromium or Chrome to print with; InvalidInput when there is none.

    ``RISKREG_CHROMIUM`` names one explicitly (and must exist); otherwise the usual names
    are looked up on PATH.
    """
    named = os.environ.get(BROWSER_VARIABLE)
    if named:
        found = shutil.which(named)
        if found is None:
            raise InvalidInput(f"{BROWSER_VARIABLE}={named} is not a program that can be run; {NO_BROWSER}")
        return found
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise InvalidInput(NO_BROWSER)


def html_to_pdf(html: str, browser: str | None = None, timeout: float = PRINT_TIMEOUT_SECONDS) -> bytes:
    """Return an A4 PDF of a self-contained HTML report, printed by headless Chromium."""
    program = browser or find_browser()
    with tempfile.TemporaryDirectory(prefix="riskreg-pdf-") as folder:
        page = Path(folder) / "report.html"
        page.write_text(html, encoding="utf-8")
        pdf = Path(folder) / "report.pdf"
        command = [program, *_FLAGS, f"--user-data-dir={Path(folder) / 'profile'}", f"--print-to-pdf={pdf}"]
        try:
            done = subprocess.run(
                [*command, page.as_uri()], capture_output=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise InvalidInput(f"{program} did not finish printing the PDF within {timeout:g} s") from None
        except OSError as exc:
            raise InvalidInput(f"cannot run {program} to print the PDF: {exc.strerror or exc}") from None
        printed = pdf.read_bytes() if pdf.exists() else b""
        if done.returncode != 0 or not printed.startswith(b"%PDF"):
            raise InvalidInput(f"{program} could not print the PDF (exit status {done.returncode})")
        return printed


__all__ = ["BROWSER_NAMES", "BROWSER_VARIABLE", "NO_BROWSER", "find_browser", "html_to_pdf"]
