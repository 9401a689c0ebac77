"""``riskreg plan ...``: how many units a stage needs."""

from __future__ import annotations

import click

from riskreg.cli.output import emit, json_option


@click.group("plan")
def plan_group() -> None:
    """Plan sample sizes, power and minimum detectable effects.

    \b
    Example:
      riskreg plan size --kind continuous --mde 3 --sd 8
    """


@plan_group.command("size")
@click.option(
    "--kind",
    required=True,
    type=click.Choice(("continuous", "binary", "count"), case_sensitive=False),
    help="The outcome's kind: a measurement, a yes/no, or events over exposure.",
)
@click.option(
    "--mde", type=float, help="Effect to detect: difference (continuous, binary) or rate ratio (count)."
)
@click.option("--sd", type=float, help="Standard deviation of a continuous outcome.")
@click.option(
    "--baseline",
    type=float,
    help="Comparison arm's proportion (binary) or rate per unit of exposure (count).",
)
@click.option(
    "--exposure",
    type=float,
    default=1.0,
    show_default=True,
    help="Exposure per unit (count), e.g. person-weeks.",
)
@click.option(
    "--alpha",
    type=click.FloatRange(0, 0.5, min_open=True),
    default=0.05,
    show_default=True,
    help="Two-sided significance level.",
)
@click.option(
    "--power",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.8,
    show_default=True,
    help="Chance of detecting the effect if it is there.",
)
@click.option(
    "--ratio",
    type=click.FloatRange(0, min_open=True),
    default=1.0,
    show_default=True,
    help="Pilot units per comparison unit.",
)
@click.option(
    "--test",
    type=click.Choice(("superiority", "non-inferiority")),
    help="The test the size is for [default: non-inferiority with --margin, else superiority].",
)
@click.option(
    "--margin",
    type=click.FloatRange(0),
    default=0.0,
    help="Non-inferiority margin: the loss tolerated, in the outcome's units (continuous), as a "
    "difference in proportions (binary), or as a rate ratio above 1 (count).",
)
@click.option(
    "--better",
    type=click.Choice(("higher", "lower")),
    default="higher",
    show_default=True,
    help="Which direction of the outcome is a gain (non-inferiority).",
)
@click.option(
    "--looks",
    type=click.IntRange(1, 20),
    help="Equally spaced analyses, the last at the full size (group-sequential) [default: 1].",
)
@click.option(
    "--fractions",
    callback=lambda _ctx, _param, value: _fractions(value),
    help="Information fractions of the analyses, comma-separated, ending at 1 (e.g. 0.3,1).",
)
@click.option(
    "--n",
    type=click.IntRange(2),
    help="Units per arm already planned: report power and minimum detectable effect.",
)
@click.option(
    "--rho",
    type=float,
    help="Correlation of a continuous outcome with its baseline measure: the variance shrinks by 1 - rho^2.",
)
@click.option(
    "--icc",
    type=float,
    help="Cluster designs (continuous and binary outcomes): the intra-cluster correlation assumed (0 to below 1).",
)
@click.option(
    "--cluster-size",
    type=float,
    help="Cluster designs: mean units per cluster, at least 1 (per cluster and period, a whole number, for a "
    "stepped wedge).",
)
@click.option(
    "--size-cv",
    type=float,
    default=0.0,
    help="Cluster designs: coefficient of variation of the cluster sizes [default: 0, equal sizes].",
)
@click.option(
    "--clusters",
    type=click.IntRange(2),
    help="Clusters per arm already planned (the pilot arm has --ratio times as many): report their power "
    "and minimum detectable effect.",
)
@click.option(
    "--layout",
    type=click.Choice(["parallel", "stepped-wedge"], case_sensitive=False),
    default="parallel",
    show_default=True,
    help="How clusters receive the pilot: half at once, or in steps (stepped wedge).",
)
@click.option(
    "--steps",
    type=int,
    help="Stepped wedge: the number of switching steps, 2 to 20 (periods = steps + 1, the first a baseline).",
)
@click.option(
    "--clusters-per-step", type=int, help="Stepped wedge: clusters switching at each step (1 to 1000)."
)
@json_option
def plan_size(as_json: bool, **options) -> None:  # type: ignore[no-untyped-def]
    """Compute units per arm for an effect, or the power and MDE of a given size.

    With --looks or --fractions the size is inflated for the Lan-DeMets O'Brien-Fleming
    boundaries that `pilot analyse` tests a staged pilot against.  Non-inferiority
    (--margin) without --mde assumes no true difference.

    With --icc and --cluster-size (continuous and binary outcomes) the size is also given in
    clusters: the design effect 1 + ((CV^2 + 1)m - 1)ICC, and the clusters per arm the t test
    on the cluster summaries needs on its k1 + k0 - 2 degrees of freedom (about one more per
    arm than ceil(n DE / m) when clusters are few); --clusters gives the power and MDE of
    clusters already planned.  --layout stepped-wedge gives the Hussey-Hughes power of --steps
    steps of --clusters-per-step clusters after a baseline period, and the clusters per step
    the target --power needs.  --rho (continuous) gives the gain of adjusting for a baseline
    measure: the variance times 1 - rho^2.

    \b
    Example:
      riskreg plan size --kind continuous --mde 1 --sd 1 --power 0.9
      riskreg plan size --kind binary --baseline 0.18 --mde -0.06
      riskreg plan size --kind continuous --sd 8 --n 60
      riskreg plan size --kind continuous --sd 8 --margin 3 --fractions 0.3,1
      riskreg plan size --kind binary --baseline 0.72 --margin 0.1 --looks 2
      riskreg plan size --kind count --baseline 0.02 --exposure 8 --margin 1.5 --better lower
      riskreg plan size --kind continuous --mde 4 --sd 12 --rho 0.6
      riskreg plan size --kind continuous --mde 4 --sd 12 --icc 0.05 --cluster-size 25
      riskreg plan size --kind continuous --sd 12 --icc 0.05 --cluster-size 25 --clusters 7 --mde 6
      riskreg plan size --kind binary --baseline 0.3 --mde 0.15 --icc 0.02 --cluster-size 30 --size-cv 0.4
      riskreg plan size --kind continuous --mde 3 --sd 10 --layout stepped-wedge --steps 4 \\
        --clusters-per-step 3 --cluster-size 20 --icc 0.05
    """
    from riskreg import collector
    from riskreg.planning import PlanRequest, plan, plan_text

    collector.resume()  # the plan's computation is the command's work (riskreg.collector)
    options["layout"] = options["layout"].lower()
    request = PlanRequest(kind=options.pop("kind").lower(), **options)
    emit(plan(request), as_json, plan_text)


def _fractions(value: str | None) -> tuple[float, ...] | None:
    """Return the comma-separated information fractions as numbers (checked by the planner)."""
    if value is None:
        return None
    try:
        return tuple(float(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected numbers separated by commas, like 0.3,1; got {value!r}") from None


COMMANDS = (plan_group,)
