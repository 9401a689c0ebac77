"""A small protocol and helpers for pilot tests."""

from __future__ import annotations

from pathlib import Path

PROTOCOL = """
[pilot]
key = "befriending"
title = "Volunteer befriending"
modes = ["delivery"]
hypothesis = "No worse for wellbeing."

[design]
arms = ["comparison", "pilot"]

[[metrics]]
name = "wellbeing"
kind = "continuous"
role = "primary"
better = "higher"
test = "non-inferiority"
margin = 3.0

[[metrics]]
name = "readmitted"
kind = "binary"
role = "secondary"
better = "lower"

[[metrics]]
name = "incidents"
kind = "count"
role = "safety"
better = "lower"

[[stages]]
name = "feasibility"
planned_n = 4

[[stages]]
name = "extended"
planned_n = 8
"""

LONG = """unit_id,arm,metric,value,exposure,site
u1,comparison,wellbeing,40,,north
u1,comparison,readmitted,yes,,north
u1,comparison,incidents,0,8,north
u2,pilot,wellbeing,NA,,south
u2,pilot,readmitted,false,,south
u2,pilot,incidents,2,7.5,south
u3,pilot,wellbeing,44.5,,south
u3,pilot,readmitted,0,,south
u3,pilot,incidents,,,south
"""


def write(folder: Path, name: str, text: str, encoding: str = "utf-8") -> str:
    """Write a file and return its path as text."""
    path = folder / name
    path.write_bytes(text.encode(encoding))
    return str(path)


def registered(rr, folder: Path, text: str = PROTOCOL) -> str:
    """Register the protocol; return its file path."""
    path = write(folder, "befriending.toml", text)
    result = rr("pilot", "register", path)
    assert result.exit_code == 0, result.output
    return path
