"""Compiled report templates are cached in the user's cache folder, and only ever as a speed-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from riskreg import __version__, report
from tests.conftest import Riskreg


@pytest.fixture
def fresh_environment(monkeypatch: pytest.MonkeyPatch):
    report.environment.cache_clear()
    yield
    report.environment.cache_clear()


def _board(rr: Riskreg, name: str) -> bytes:
    result = rr("report", "board", "-o", name, "--as-of", "2026-11-29")
    assert result.exit_code == 0, result.output
    return Path(name).read_bytes()


def test_the_cache_fills_once_and_gives_the_same_report(rr, monkeypatch, tmp_path, fresh_environment):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / "riskreg" / f"templates-{__version__}"
    first = _board(rr, "first.html")
    cached = sorted(folder.iterdir())
    assert cached and all(p.name.endswith(".cache") for p in cached)
    report.environment.cache_clear()
    assert _board(rr, "second.html") == first
    assert sorted(folder.iterdir()) == cached  # read, not written again


def test_an_unusable_cache_folder_is_skipped(rr, monkeypatch, tmp_path, fresh_environment):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would go", encoding="utf-8")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    plain = _board(rr, "plain.html")
    report.environment.cache_clear()
    monkeypatch.setenv("RISKREG_TEMPLATE_CACHE", "off")
    assert _board(rr, "off.html") == plain


def test_a_damaged_cache_file_is_recompiled(rr, monkeypatch, tmp_path, fresh_environment):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    good = _board(rr, "good.html")
    for cached in (tmp_path / "cache" / "riskreg" / f"templates-{__version__}").iterdir():
        cached.write_bytes(b"\x00garbage")
    report.environment.cache_clear()
    assert _board(rr, "again.html") == good
