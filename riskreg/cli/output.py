"""One way to print results: JSON for machines, aligned text for people."""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

import click

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of text.")


def emit(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    """Print data as JSON or through its text formatter."""
    if as_json:
        # Indented for a person at a terminal; compact (and several times faster, since the
        # C encoder only runs without indent) when piped to a program.
        indent = 2 if sys.stdout.isatty() else None
        click.echo(json.dumps(data, ensure_ascii=False, indent=indent, default=str))
    else:
        click.echo(text(data))


def _width(text: str) -> int:
    # East Asian wide characters and emoji take two terminal cells
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _clip(text: str, limit: int) -> str:
    if _width(text) <= limit:
        return text
    out, used = "", 0
    for ch in text:
        w = _width(ch)
        if used + w > limit - 1:
            break
        out, used = out + ch, used + w
    return out + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], clip_last: int = 60) -> str:
    """Return rows as a plain aligned table; the last column is clipped to keep lines short."""
    cells = [[("" if v is None else str(v)).replace("\n", " ") for v in row] for row in rows]
    cells = [[*row[:-1], _clip(row[-1], clip_last)] if row else row for row in cells]
    widths = [max([_width(h)] + [_width(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = [_line(headers, widths), _line(["-" * w for w in widths], widths)]
    lines += [_line(row, widths) for row in cells]
    return "\n".join(lines)


def _line(values: Sequence[str], widths: Sequence[int]) -> str:
    padded = [v + " " * (w - _width(v)) for v, w in zip(values, widths, strict=True)]
    return "  ".join(padded).rstrip()


def fields(pairs: Sequence[tuple[str, Any]]) -> str:
    """Return label: value lines, labels aligned."""
    width = max(len(label) for label, _ in pairs)
    return "\n".join(f"{label + ':':<{width + 1}} {'' if value is None else value}" for label, value in pairs)


def counted(n: int, word: str, plural: str | None = None) -> str:
    """Return "1 warning", "2 warnings" (or the given plural)."""
    return f"{n} {word if n == 1 else plural or word + 's'}"
