"""Issue 18's planning: `plan size` for cluster designs, stepped wedges and a baseline covariate."""

from __future__ import annotations

import json
import math

import pytest
from scipy.stats import norm

from riskreg.cli import cli


def planned(runner, *args: str) -> dict:
    result = runner.invoke(cli, ["plan", "size", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_baseline_correlation_shrinks_the_variance_by_one_minus_rho_squared(runner):
    with_rho = planned(runner, "--kind", "continuous", "--mde", "4", "--sd", "12", "--rho", "0.6")
    # ANCOVA's residual sd is 12·√(1 − 0.36) = 9.6 (Borm, Fransen & Lemmens 2007): the same size
    # as planning with sd 9.6, and the unadjusted size is the plan with sd 12
    adjusted = planned(runner, "--kind", "continuous", "--mde", "4", "--sd", "9.6")
    plain = planned(runner, "--kind", "continuous", "--mde", "4", "--sd", "12")
    assert with_rho["n_fixed"] == adjusted["n_fixed"] == [92, 92]
    gain = with_rho["baseline_adjustment"]
    assert gain["variance_factor"] == pytest.approx(0.64)
    assert gain["n_without_baseline"] == plain["n_fixed"] == [143, 143]


def test_clusters_needed_carry_the_individual_size_times_the_design_effect(runner):
    found = planned(
        runner, "--kind", "continuous", "--mde", "4", "--sd", "12", "--icc", "0.05", "--cluster-size", "25"
    )
    clusters = found["clusters"]
    # DE = 1 + (25 − 1)·0.05 = 2.2; 143 units per arm × 2.2 / 25 = 12.58: 13 clusters of 25 per arm
    assert clusters["design_effect"] == pytest.approx(2.2)
    assert clusters["clusters_per_arm"] == [13, 13]
    assert clusters["units_per_arm"] == [325, 325]
    text = runner.invoke(
        cli,
        [
            "plan",
            "size",
            "--kind",
            "continuous",
            "--mde",
            "4",
            "--sd",
            "12",
            "--icc",
            "0.05",
            "--cluster-size",
            "25",
        ],
    ).output
    assert "  clusters needed: 13 comparison + 13 pilot (325 + 325 units)\n" in text


def test_unequal_cluster_sizes_raise_the_design_effect(runner):
    found = planned(
        runner,
        "--kind",
        "continuous",
        "--mde",
        "4",
        "--sd",
        "12",
        "--icc",
        "0.05",
        "--cluster-size",
        "25",
        "--size-cv",
        "0.5",
    )
    # Eldridge, Ashby & Kerry (2006): 1 + ((0.25 + 1)·25 − 1)·0.05 = 2.5125
    assert found["clusters"]["design_effect"] == pytest.approx(2.5125)
    assert found["clusters"]["clusters_per_arm"] == [15, 15]  # 143 × 2.5125 / 25 = 14.37


def test_clusters_given_are_powered_as_their_effective_sample(runner):
    found = planned(
        runner,
        "--kind",
        "continuous",
        "--mde",
        "6",
        "--sd",
        "12",
        "--icc",
        "0.05",
        "--cluster-size",
        "25",
        "--clusters",
        "7",
    )
    # 7 × 25 / 2.2 = 79.5: the clusters carry 79 units per arm's information
    assert found["clusters"]["effective_n_per_arm"] == 79
    same = planned(runner, "--kind", "continuous", "--mde", "6", "--sd", "12", "--n", "79")
    assert found["power_at_n"]["power"] == pytest.approx(same["power_at_n"]["power"])


def test_stepped_wedge_power_is_the_hussey_hughes_closed_form(runner):
    found = planned(
        runner,
        "--kind",
        "continuous",
        "--mde",
        "1",
        "--sd",
        "1",
        "--icc",
        "0",
        "--cluster-size",
        "1",
        "--layout",
        "stepped-wedge",
        "--steps",
        "2",
        "--clusters-per-step",
        "1",
    )["stepped_wedge"]
    # By hand from Hussey & Hughes (2007, eq. 8) with τ² = 0: Var = I·s²/(I·U − W); here I = 2
    # clusters, T = 3 periods, X = [[0,1,1],[0,0,1]], U = 3, W = 0² + 1² + 2² = 5, s² = 1: Var = 2
    assert found["se"] == pytest.approx(math.sqrt(2))
    z = norm.isf(0.025)
    assert found["power"] == pytest.approx(norm.sf(z - 1 / math.sqrt(2)) + norm.cdf(-z - 1 / math.sqrt(2)))
    assert (found["clusters"], found["periods"], found["units"]) == (2, 3, 6)


def test_a_binary_stepped_wedge_uses_the_baseline_proportions_sd(runner):
    found = planned(
        runner,
        "--kind",
        "binary",
        "--baseline",
        "0.3",
        "--mde",
        "0.1",
        "--icc",
        "0.02",
        "--cluster-size",
        "30",
        "--layout",
        "stepped-wedge",
        "--steps",
        "4",
        "--clusters-per-step",
        "2",
    )["stepped_wedge"]
    assert found["sd"] == pytest.approx(math.sqrt(0.3 * 0.7))
    assert 0 < found["power"] < 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--kind", "binary", "--baseline", "0.3", "--mde", "0.1", "--rho", "0.5"],
            "--rho applies to a continuous outcome (its correlation with the baseline)",
        ),
        (
            ["--kind", "continuous", "--sd", "3", "--mde", "1", "--rho", "1"],
            "--rho must be at least 0 and below 1, got 1",
        ),
        (
            ["--kind", "continuous", "--sd", "3", "--mde", "1", "--icc", "0.05"],
            "a cluster design needs both --icc and --cluster-size",
        ),
        (
            ["--kind", "continuous", "--sd", "3", "--mde", "1", "--icc", "1", "--cluster-size", "5"],
            "--icc must be at least 0 and below 1, got 1",
        ),
        (
            ["--kind", "continuous", "--sd", "3", "--mde", "1", "--steps", "3"],
            "--steps and --clusters-per-step describe a stepped wedge: add --layout stepped-wedge",
        ),
        (
            ["--kind", "continuous", "--sd", "3", "--mde", "1", "--clusters", "5"],
            "--clusters needs --icc and --cluster-size",
        ),
        (
            [
                "--kind",
                "count",
                "--baseline",
                "0.1",
                "--mde",
                "0.5",
                "--icc",
                "0.05",
                "--cluster-size",
                "5",
                "--layout",
                "stepped-wedge",
                "--steps",
                "2",
                "--clusters-per-step",
                "2",
            ],
            "--layout stepped-wedge plans continuous and binary outcomes (the Hussey-Hughes model)",
        ),
        (
            [
                "--kind",
                "continuous",
                "--sd",
                "3",
                "--mde",
                "1",
                "--icc",
                "0.05",
                "--cluster-size",
                "5",
                "--layout",
                "stepped-wedge",
                "--steps",
                "1",
                "--clusters-per-step",
                "4",
            ],
            "the schedule cannot separate the pilot effect from the periods",
        ),
        (
            [
                "--kind",
                "continuous",
                "--sd",
                "3",
                "--icc",
                "0.05",
                "--cluster-size",
                "5",
                "--layout",
                "stepped-wedge",
                "--steps",
                "2",
                "--clusters-per-step",
                "4",
            ],
            "--layout stepped-wedge gives the power for an effect: add --mde",
        ),
    ],
)
def test_design_options_that_do_not_fit_give_one_error_line(runner, args, message):
    result = runner.invoke(cli, ["plan", "size", *args])
    assert result.exit_code != 0
    assert result.output == f"Error: {message}\n"


def test_a_cluster_protocols_planned_power_counts_the_design_effect():
    from riskreg.planning import protocol_power
    from riskreg.protocol import parse_protocol
    from tests.test_cluster_designs import CLUSTERED

    text = CLUSTERED.replace(
        'better = "higher"\n', 'better = "higher"\ntest = "non-inferiority"\nmargin = 3.0\nsd = 8.0\n', 1
    )
    clustered = protocol_power(parse_protocol(text.encode(), "c.toml"))
    # DE = 1 + (5 − 1)·0.05 = 1.2: 60 residents per arm carry the information of 50
    individual = text.replace(
        'unit = "cluster"\ncluster = "team"\nclusters_per_arm = 6\ncluster_size = 5\nicc = 0.05\n', ""
    )
    individual = individual.replace("planned_n = 30", "planned_n = 25").replace(
        "planned_n = 60", "planned_n = 50"
    )
    reference = protocol_power(parse_protocol(individual.encode(), "i.toml"))
    assert clustered is not None and reference is not None
    assert clustered["n_per_arm"] == [60, 60]
    assert clustered["assumptions"]["design_effect"] == pytest.approx(1.2)
    assert clustered["power"] == pytest.approx(reference["power"])
    # the suggestion is the individual one (before rounding up) times 1.2
    for ours, theirs in zip(clustered["n_suggested"], reference["n_suggested"], strict=True):
        assert (theirs - 1) * 1.2 < ours <= math.ceil(theirs * 1.2)
