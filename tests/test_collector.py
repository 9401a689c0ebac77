"""Start-up holds the cyclic garbage collector off until the command starts its work (riskreg.collector)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import gc
{before}
import riskreg.cli
print("before:", gc.isenabled())
try:
    riskreg.cli.main({args!r})
except SystemExit as exit:
    assert exit.code in (0, None), exit.code
print("after:", gc.isenabled(), gc.get_freeze_count() > 0)
"""


def _collector_states(args: list[str], before: str = "") -> list[str]:
    """Run one command in a fresh interpreter; return the collector's state before it and after it."""
    script = SCRIPT.format(before=before, args=args)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    before = next(line for line in lines if line.startswith("before:"))
    after = next(line for line in lines if line.startswith("after:"))
    return [*before.split()[1:], *after.split()[1:]]


def test_collection_resumes_once_the_register_is_open(tmp_path):
    db = ["--db", f"sqlite:///{tmp_path}/r.db"]
    assert _collector_states([*db, "init"]) == ["False", "True", "True"]
    assert _collector_states([*db, "risk", "list", "--json"]) == ["False", "True", "True"]


def test_collection_resumes_for_a_plan_which_opens_no_register():
    args = ["plan", "size", "--kind", "continuous", "--mde", "1", "--sd", "1", "--power", "0.9"]
    assert _collector_states(args) == ["False", "True", "True"]


def test_a_collector_stopped_by_the_caller_stays_stopped(tmp_path):
    db = ["--db", f"sqlite:///{tmp_path}/r.db"]
    _collector_states([*db, "init"])
    # a program that stopped collection itself before importing riskreg keeps it stopped
    assert _collector_states([*db, "risk", "list"], before="gc.disable()") == ["False", "False", "False"]
