"""The arguments of `risk add`, with its required options filled in, for tests that need risks."""

from __future__ import annotations


def risk_add(
    title: str,
    *extra: str,
    side: str = "citizen",
    mode: str = "design",
    likelihood: str = "1",
    impact: str = "1",
) -> tuple[str, ...]:
    """Return `risk add TITLE --side --mode --likelihood --impact [EXTRA...]` as arguments."""
    return (
        "risk",
        "add",
        title,
        "--side",
        side,
        "--mode",
        mode,
        "--likelihood",
        likelihood,
        "--impact",
        impact,
        *extra,
    )
