"""16 processes add, re-score and review risks at once; nothing acknowledged is lost, nothing is half-done."""

from __future__ import annotations

import os

import pytest

from tests.loadtest import run

pytestmark = pytest.mark.slow
SECONDS = float(os.environ.get("RISKREG_LOAD_SECONDS", "4"))


def test_concurrent_load_keeps_every_acknowledged_write(db_url, tmp_path):
    result = run(db_url, processes=16, seconds=SECONDS, folder=tmp_path)
    assert result.problems == ()
    assert result.acknowledged > 16
    assert result.conflicts > 0  # re-scores on a version another process just changed are refused
