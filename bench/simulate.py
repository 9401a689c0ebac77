"""The gate rule's operating characteristics (README table): `make simulate`.

Runs the simulated three-stage pilots of tests/pilot_simulation.py with many replicates:
false final proceed with no effect, power with the effect a fixed design of 150 per arm
detects 80 % of the time, and false harm from overdispersed safety counts. Prints a
Markdown table with Monte-Carlo standard errors.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.pilot_simulation import EFFECT_80, simulate


def main(replicates: int = 10_000) -> None:
    """Print the table of rates with their Monte-Carlo errors."""
    rows = [
        ("no effect: final proceed (bar ≤ 0.025)", simulate(0.0, replicates, seed=101), "final_proceed"),
        (
            "80 %-power effect, primary only: final proceed (fixed design 0.800)",
            simulate(EFFECT_80, replicates, seed=102, safety=False),
            "final_proceed",
        ),
        (
            "80 %-power effect, with a safety metric of no true difference: final proceed",
            simulate(EFFECT_80, replicates, seed=105),
            "final_proceed",
        ),
        (
            "no effect, with a safety metric: stopped on (false) safety harm at some look",
            simulate(0.0, replicates, seed=106),
            "harm_stop",
        ),
        (
            "no difference, NB(shape 0.5) safety counts: harm at one look (bar ≤ 0.025)",
            simulate(0.0, replicates, seed=103, incidents_shape=0.5),
            "first_look_harm",
        ),
        (
            "no difference, Poisson safety counts: harm at one look (bar ≤ 0.025)",
            simulate(0.0, replicates, seed=104),
            "first_look_harm",
        ),
    ]
    print(f"| scenario ({replicates:,} pilots each) | rate | Monte-Carlo SE |")
    print("|---|---|---|")
    for label, outcome, field in rows:
        rate = getattr(outcome, field)
        print(f"| {label} | {rate:.4f} | {outcome.mc_error(rate):.4f} |")


if __name__ == "__main__":
    started = time.perf_counter()
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
    print(f"\n({time.perf_counter() - started:.0f} s)")
