"""How a confidence level reads, for the terminal, the analyses and the reports alike.

Apart from ``riskreg.report_context`` (which re-exports it) because analysing commands
need only this: that module's two dozen report dataclasses take about 25 ms to build.
"""

DASH = "\u2013"


def level_text(level: float | None) -> str:
    """Return a confidence level as a percentage with the digits that matter ("95%", "99.991%")."""
    if level is None:
        return DASH
    return f"{level * 100:.3f}".rstrip("0").rstrip(".") + "%"
