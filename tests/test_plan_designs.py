"""Issue 18's planning: `plan size` for cluster designs, stepped wedges and a baseline covariate."""

from __future__ import annotations

import json
import math

import pytest
from scipy.stats import norm

from riskreg.cli import cli
from riskreg.stats.power import power_continuous


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


def test_clusters_needed_are_for_the_t_test_on_cluster_means(runner):
    args = ["--kind", "continuous", "--mde", "4", "--sd", "12", "--icc", "0.05", "--cluster-size", "25"]
    found = planned(runner, *args)
    clusters = found["clusters"]
    # DE = 1 + (25 − 1)·0.05 = 2.2 (Eldridge, Ashby & Kerry 2006); the design-effect rule gives
    # 143 units per arm × 2.2 / 25 = 12.58: 13 clusters; Hayes & Bennett (1999)/Hayes & Moulton
    # (2017, §7.3) add one for the t test: 1 + 7.849·2·144·2.2/(25·16) = 13.43, so 14 clusters of 25
    assert found["n_fixed"] == [143, 143]
    assert clusters["design_effect"] == pytest.approx(2.2)
    assert clusters["clusters_by_design_effect"] == [13, 13]
    assert clusters["clusters_per_arm"] == [14, 14]
    assert clusters["units_per_arm"] == [350, 350]
    assert clusters["df"] == 26
    text = runner.invoke(cli, ["plan", "size", *args]).output
    assert (
        "  clusters needed: 14 comparison + 14 pilot (350 + 350 units), for the t test on the cluster "
        "summaries on 26 df (⌈n·DE/m⌉ gives 13 + 13)\n"
    ) in text
    assert "k₁ + k₀ − 2 df" in text


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
    # the design-effect rule: ⌈143 × 2.5125 / 25⌉ = ⌈14.37⌉ = 15; with Hayes & Bennett's extra cluster
    # for the t test, 1 + 7.849·2·144·2.5125/(25·16) = 15.20, so 16
    assert found["clusters"]["clusters_by_design_effect"] == [15, 15]
    assert found["clusters"]["clusters_per_arm"] == [16, 16]


def test_clusters_given_are_powered_for_the_t_test_on_their_means(runner):
    args = ["--kind", "continuous", "--sd", "12", "--icc", "0.05", "--cluster-size", "25", "--clusters", "7"]
    found = planned(runner, *args, "--mde", "6")
    given = found["clusters"]["given"]
    # 7 × 25 / 2.2 = 79.5 units per arm's information, but the t test on 7 + 7 cluster means has 12 df:
    # R's power.t.test(n = 7, delta = 6, sd = √(144·2.2/25)) — the cluster means' own two-sample t test
    assert given["effective_n_per_arm"] == pytest.approx([175 / 2.2, 175 / 2.2])
    assert given["df"] == 12
    assert given["power"] == pytest.approx(power_continuous(7, 7, 6, math.sqrt(144 * 2.2 / 25)).power)
    # the same units randomised one by one (n = 79.5, 157 df) would overstate it
    one_by_one = planned(runner, "--kind", "continuous", "--mde", "6", "--sd", "12", "--n", "79")
    assert given["power"] < one_by_one["power_at_n"]["power"]
    assert "power_at_n" not in found
    # the MDE gives back the target power
    mde = planned(runner, *args)["clusters"]["given"]["mde"]
    assert power_continuous(7, 7, mde, math.sqrt(144 * 2.2 / 25)).power == pytest.approx(0.8)
    text = runner.invoke(cli, ["plan", "size", *args, "--mde", "6"]).output
    assert "  power with 7 + 7 clusters: 82.5%\n" in text
    assert "the t test on their summaries has 12 df" in text


def test_binary_clusters_follow_hayes_and_bennett(runner):
    found = planned(
        runner,
        "--kind",
        "binary",
        "--baseline",
        "0.3",
        "--mde",
        "0.15",
        "--icc",
        "0.02",
        "--cluster-size",
        "30",
    )["clusters"]
    # Hayes & Bennett (1999), proportions, with DE = 1 + 29·0.02 = 1.58 for the between-cluster
    # variation: 1 + 7.849·(0.3·0.7 + 0.45·0.55)·1.58/(30·0.15²) = 9.41, so 10 clusters per arm
    assert found["design_effect"] == pytest.approx(1.58)
    assert found["clusters_per_arm"] == [10, 10]


def test_a_pilot_arm_with_more_clusters_follows_the_ratio(runner):
    found = planned(
        runner,
        *("--kind", "continuous", "--mde", "4", "--sd", "12", "--icc", "0.05", "--cluster-size", "25"),
        *("--ratio", "2"),
    )["clusters"]
    k_c, k_p = found["clusters_per_arm"]
    assert k_p >= 2 * k_c - 1 and k_c < 14


def test_looks_inflate_the_clusters(runner):
    args = ["--kind", "continuous", "--mde", "4", "--sd", "12", "--icc", "0.05", "--cluster-size", "25"]
    single = planned(runner, *args)["clusters"]
    staged = planned(runner, *args, "--looks", "3")
    # the clusters for one look, times the Lan-DeMets O'Brien-Fleming inflation factor, rounded up
    factor = staged["inflation_factor"]
    assert staged["clusters"]["clusters_per_arm"][0] == math.ceil(single["clusters_exact"] * factor - 1e-9)


def test_a_baseline_and_clusters_together_shrink_the_sd_first(runner):
    found = planned(
        runner,
        *("--kind", "continuous", "--mde", "4", "--sd", "12", "--rho", "0.6"),
        *("--icc", "0.05", "--cluster-size", "25"),
    )
    same = planned(
        runner, "--kind", "continuous", "--mde", "4", "--sd", "9.6", "--icc", "0.05", "--cluster-size", "25"
    )
    assert found["clusters"]["clusters_per_arm"] == same["clusters"]["clusters_per_arm"]
    assert found["baseline_adjustment"]["variance_factor"] == pytest.approx(0.64)
    assert found["request"]["sd"] == 12  # the request as given


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
            "--steps must be at least 2: with one step every cluster switches at once, and the pilot "
            "effect cannot be told from the period's",
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


def test_clusters_alone_give_their_minimum_detectable_effect(runner):
    args = ["plan", "size", "--kind", "continuous", "--sd", "12", "--icc", "0.05", "--cluster-size", "25"]
    result = runner.invoke(cli, [*args, "--clusters", "7"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        "clusters: design effect 2.200 (ICC 0.05, 25 units per cluster, size CV 0)\n"
    )
    assert "  minimum detectable effect with 7 + 7 clusters (power 80%): 5.809\n" in result.output


def test_stepped_wedge_variance_with_a_cluster_effect_by_hand(runner):
    found = planned(
        runner,
        *("--kind", "continuous", "--mde", "1", "--sd", "1", "--icc", "0.5", "--cluster-size", "1"),
        *("--layout", "stepped-wedge", "--steps", "2", "--clusters-per-step", "1"),
    )["stepped_wedge"]
    # Hussey & Hughes (2007, eq. 8): Var = I·s²(s² + Tτ²)/((IU − W)s² + (U² + ITU − TW − IV)τ²) with
    # X = [[0,1,1],[0,0,1]]: I = 2, T = 3, U = 3, W = 0² + 1² + 2² = 5, V = 2² + 1² = 5; ICC 0.5 and sd 1
    # give τ² = 0.5 and s² = σ²/m = 0.5: Var = 2·0.5·(0.5 + 1.5)/((6 − 5)·0.5 + (9 + 18 − 15 − 10)·0.5) = 4/3
    assert found["se"] == pytest.approx(math.sqrt(4 / 3))


@pytest.mark.parametrize(
    ("steps", "per_step", "m", "icc"), [(4, 3, 20, 0.05), (5, 2, 10, 0.1), (3, 1, 30, 0.01)]
)
def test_stepped_wedge_matches_woertmans_design_effect(runner, steps, per_step, m, icc):
    found = planned(
        runner,
        *("--kind", "continuous", "--mde", "1", "--sd", "1", "--icc", str(icc), "--cluster-size", str(m)),
        *("--layout", "stepped-wedge", "--steps", str(steps), "--clusters-per-step", str(per_step)),
    )["stepped_wedge"]
    # Woertman et al. (2013, J Clin Epidemiol 66:752–758), derived from Hussey & Hughes for k steps,
    # b = 1 baseline and t = 1 measurement per step, n units per cluster per measurement:
    #   DE_sw = (1 + ρ(ktn + bn − 1)) / (1 + ρ(½ktn + bn − 1)) · 3(1 − ρ) / (2t(k − 1/k)),
    # and the clusters needed are DE_sw·N/n with N the individually randomised total (Var = 4σ²/N),
    # so the I clusters of the schedule give Var(θ̂) = 4σ²·DE_sw/(I·n)
    k, b, t, n, rho = steps, 1, 1, m, icc
    de_sw = (1 + rho * (k * t * n + b * n - 1)) / (1 + rho * (0.5 * k * t * n + b * n - 1))
    de_sw *= 3 * (1 - rho) / (2 * t * (k - 1 / k))
    assert found["se"] ** 2 == pytest.approx(4 * de_sw / (steps * per_step * m), rel=1e-9)


def test_stepped_wedge_gives_the_clusters_per_step_the_target_needs(runner):
    args = ["--kind", "continuous", "--mde", "3", "--sd", "10", "--icc", "0.05", "--cluster-size", "20"]
    args += ["--layout", "stepped-wedge", "--steps", "4"]
    needed = planned(runner, *args, "--clusters-per-step", "1", "--power", "0.9")["stepped_wedge"]
    per_step = needed["clusters_per_step_needed"]
    enough = planned(runner, *args, "--clusters-per-step", str(per_step))["stepped_wedge"]["power"]
    short = planned(runner, *args, "--clusters-per-step", str(per_step - 1))["stepped_wedge"]["power"]
    assert short < 0.9 <= enough
    text = runner.invoke(cli, ["plan", "size", *args, "--clusters-per-step", "3"]).output
    assert text.splitlines()[:2] == [
        "stepped wedge: 12 clusters over 5 periods (4 steps of 3), 20 units per cluster per period (1,200 units)",
        "power to detect an effect of 3: 86.7% (SE 0.9767; ICC 0.05, sd 10)",
    ]
    assert "clusters per step for power 80% with 4 steps: 3 (12 clusters)" in text


COMMON = ["--kind", "continuous", "--sd", "3", "--mde", "1"]
CLUSTER = [*COMMON, "--icc", "0.05", "--cluster-size", "5"]
WEDGE = [*CLUSTER, "--layout", "stepped-wedge", "--steps", "3", "--clusters-per-step", "2"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--kind", "count", "--baseline", "0.1", "--mde", "0.5", "--icc", "0.05", "--cluster-size", "5"],
            "cluster designs (--icc, --cluster-size) plan continuous and binary outcomes, not counts",
        ),
        ([*COMMON, "--cluster-size", "5"], "a cluster design needs both --icc and --cluster-size"),
        ([*COMMON, "--icc", "-0.1", "--cluster-size", "5"], "--icc must be at least 0 and below 1, got -0.1"),
        ([*COMMON, "--icc", "0.1", "--cluster-size", "0.5"], "--cluster-size must be at least 1, got 0.5"),
        ([*CLUSTER, "--size-cv", "-1"], "--size-cv must be at least 0, got -1"),
        ([*COMMON, "--size-cv", "0.3"], "--size-cv needs a cluster design (--icc and --cluster-size)"),
        (
            [*CLUSTER, "--clusters", "4", "--n", "20"],
            "give --clusters (clusters per arm) or --n (units per arm), not both",
        ),
        ([*COMMON, "--rho", "-0.2"], "--rho must be at least 0 and below 1, got -0.2"),
        (
            [*COMMON, "--clusters-per-step", "2"],
            "--steps and --clusters-per-step describe a stepped wedge: add --layout stepped-wedge",
        ),
        (
            [*COMMON, "--layout", "stepped-wedge", "--steps", "3", "--clusters-per-step", "2"],
            "--layout stepped-wedge needs --steps, --clusters-per-step, --icc and --cluster-size",
        ),
        ([*WEDGE, "--rho", "0.3"], "--rho does not apply to --layout stepped-wedge"),
        ([*WEDGE, "--size-cv", "0.3"], "--size-cv does not apply to --layout stepped-wedge"),
        ([*WEDGE, "--clusters", "4"], "--clusters does not apply to --layout stepped-wedge"),
        ([*WEDGE, "--n", "40"], "--n does not apply to --layout stepped-wedge"),
        ([*WEDGE, "--looks", "2"], "--looks does not apply to --layout stepped-wedge"),
        (
            [*WEDGE, "--test", "non-inferiority"],
            "--layout stepped-wedge plans a superiority test with every cluster switching",
        ),
        (
            [
                *CLUSTER[:-2],
                "--cluster-size",
                "2.5",
                "--layout",
                "stepped-wedge",
                "--steps",
                "3",
                "--clusters-per-step",
                "2",
            ],
            "--cluster-size must be a whole number of units per period, got 2.5",
        ),
        (
            [*CLUSTER, "--layout", "stepped-wedge", "--steps", "21", "--clusters-per-step", "2"],
            "--steps must be 2 to 20 and --clusters-per-step 1 to 1000",
        ),
    ],
)
def test_more_design_options_that_do_not_fit_give_one_error_line_exit_1(runner, args, message):
    # the planner's errors follow the library convention: one line, exit 1 (click's own usage errors exit 2)
    result = runner.invoke(cli, ["plan", "size", *args])
    assert (result.exit_code, result.output) == (1, f"Error: {message}\n")


def test_design_json_has_no_nan(runner):
    for args in (
        [*CLUSTER, "--clusters", "3"],
        [*CLUSTER, "--rho", "0.4", "--looks", "2"],
        WEDGE,
        [
            "--kind",
            "binary",
            "--baseline",
            "0.2",
            "--margin",
            "0.1",
            "--icc",
            "0.1",
            "--cluster-size",
            "8",
            "--clusters",
            "5",
        ],
    ):
        result = runner.invoke(cli, ["plan", "size", *args, "--json"])
        assert result.exit_code == 0, result.output
        assert "NaN" not in result.output and "Infinity" not in result.output
        json.loads(result.output)
