"""`[design] stratify = "site"`: each metric also combined within site, with the sites shown."""

from __future__ import annotations

import pytest

from riskreg.stats.stratified import (
    BinaryStratum,
    MeanStratum,
    RateStratum,
    inverse_variance,
    mh_rate_ratio,
    mh_risk_difference,
)
from tests.pilot_fixtures import PROTOCOL, registered, write

STRATIFIED = PROTOCOL.replace(
    'arms = ["comparison", "pilot"]', 'arms = ["comparison", "pilot"]\nstratify = "site"'
)

# two sites; wellbeing: north pilot 44, 46 vs comparison 40, 42; south pilot 50, 54 vs comparison 49, 51
ROWS = [
    ("n1", "comparison", "north", 40, 1, 0, 10.0),
    ("n2", "comparison", "north", 42, 0, 1, 10.0),
    ("n3", "pilot", "north", 44, 0, 0, 10.0),
    ("n4", "pilot", "north", 46, 1, 1, 10.0),
    ("s1", "comparison", "south", 49, 1, 2, 20.0),
    ("s2", "comparison", "south", 51, 1, 0, 20.0),
    ("s3", "pilot", "south", 50, 0, 1, 20.0),
    ("s4", "pilot", "south", 54, 1, 0, 20.0),
]


def data() -> str:
    lines = ["unit_id,arm,metric,value,exposure,site"]
    for unit, arm, site, wellbeing, readmitted, incidents, exposure in ROWS:
        lines += [
            f"{unit},{arm},wellbeing,{wellbeing},,{site}",
            f"{unit},{arm},readmitted,{readmitted},,{site}",
            f"{unit},{arm},incidents,{incidents},{exposure},{site}",
        ]
    return "\n".join(lines) + "\n"


def analysed(rr, tmp_path, protocol: str = STRATIFIED) -> dict:
    registered(rr, tmp_path, protocol)
    assert (
        rr("pilot", "data", "P-1", write(tmp_path, "d.csv", data()), "--stage", "feasibility").exit_code == 0
    )
    return rr.json("pilot", "analyse", "P-1")


def test_each_metric_is_combined_within_site_as_the_pooling_functions_do(rr, tmp_path):
    stratified = analysed(rr, tmp_path)["stratified"]
    # continuous: each site's difference in means, with its Welch variance, pooled by inverse variance
    north = MeanStratum(45 - 41, 2 / 2 + 2 / 2)  # variances 2 in each arm, n = 2
    south = MeanStratum(52 - 50, 8 / 2 + 2 / 2)
    wellbeing = inverse_variance([north, south])
    assert stratified["wellbeing"]["estimate"] == pytest.approx(wellbeing.estimate)
    assert stratified["wellbeing"]["ci"] == [pytest.approx(v) for v in wellbeing.ci]
    assert [s["site"] for s in stratified["wellbeing"]["sites"]] == ["north", "south"]
    assert [s["estimate"] for s in stratified["wellbeing"]["sites"]] == [
        pytest.approx(4.0),
        pytest.approx(2.0),
    ]
    # binary: Mantel-Haenszel risk difference; count: Mantel-Haenszel rate ratio
    readmitted = mh_risk_difference([BinaryStratum(1, 2, 1, 2), BinaryStratum(1, 2, 2, 2)])
    assert stratified["readmitted"]["estimate"] == pytest.approx(readmitted.estimate)
    incidents = mh_rate_ratio([RateStratum(1, 20.0, 1, 20.0), RateStratum(1, 40.0, 2, 40.0)])
    assert stratified["incidents"]["estimate"] == pytest.approx(incidents.estimate)
    assert stratified["incidents"]["heterogeneity"]["df"] == 1
    assert stratified["wellbeing"]["sites"][0]["pilot"] == {"n": 2, "summary": 45.0}


def test_the_terminal_report_shows_the_sites_and_says_what_the_recommendation_reads(rr, tmp_path):
    analysed(rr, tmp_path)
    text = rr("pilot", "analyse", "P-1").stdout
    assert (
        "stratified by site (95% intervals, not adjusted for looks; the recommendation reads the pooled results):"
        in text
    )
    assert "north: 4, south: 2" in text


def test_without_stratify_the_analysis_is_as_before(rr, tmp_path):
    found = analysed(rr, tmp_path, PROTOCOL)
    assert "stratified" not in found
    assert "stratify" not in rr.json("pilot", "show", "P-1")["protocol"]["design"]


def test_stratify_names_only_the_site_column(rr, tmp_path):
    path = write(
        tmp_path,
        "x.toml",
        PROTOCOL.replace(
            'arms = ["comparison", "pilot"]', 'arms = ["comparison", "pilot"]\nstratify = "ward"'
        ),
    )
    result = rr("pilot", "register", path)
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {path}: design.stratify: expected site, got 'ward'\n",
    )


def test_the_pilot_report_shows_each_metric_by_site(rr, tmp_path):
    analysed(rr, tmp_path)
    assert rr("report", "pilot", "P-1", "-o", "p.html", "--as-of", "2026-12-01").exit_code == 0
    html = (tmp_path / "p.html").read_text(encoding="utf-8")
    assert "<h4>By site at feasibility</h4>" in html
    assert (
        '<tr><th scope="row"><bdi>north</bdi></th><td class="num">41 (n = 2)</td><td class="num">45 (n = 2)</td>'
        '<td class="num">4</td></tr>'
    ) in html
    assert 'aria-label="wellbeing by site at feasibility (table; scrolls sideways)"' in html


def test_each_metric_carries_its_chance_of_benefit_and_the_panel_says_it(rr, tmp_path):
    """Issue 18's probabilities: the normal posterior of each metric's estimate under the default prior."""
    from scipy.stats import norm

    found = analysed(rr, tmp_path)
    wellbeing = next(m for m in found["metrics"] if m["name"] == "wellbeing")
    chance = wellbeing["chance"]
    # the default prior for a continuous metric without a protocol sd: N(0, sd²) with the pooled
    # observed sd: sums of squares 85 (40, 42, 49, 51) and 59 (44, 46, 50, 54) on 6 df
    tau = (144 / 6) ** 0.5
    assert chance["prior"] == {"mean": 0.0, "sd": pytest.approx(tau)}
    assert chance["prior_source"] == "default (the observed sd)"
    # conjugate normal update (Spiegelhalter, Abrams & Myles 2004, §3.6)
    estimate, se = wellbeing["estimate"], wellbeing["se"]
    precision = 1 / se**2 + 1 / tau**2
    mean, sd = estimate / se**2 / precision, precision**-0.5
    assert chance["better"] == pytest.approx(norm.cdf(mean / sd))
    assert chance["worse"] == pytest.approx(1 - chance["better"])
    # non-inferiority, higher better, margin 3: clears it above -3, harm below -3
    assert chance["beyond_margin"] == pytest.approx(norm.cdf((mean + 3) / sd))
    assert chance["harm"] == pytest.approx(norm.cdf((-3 - mean) / sd))
    assert chance["words"].endswith("chance it is worse by more than the margin")
    incidents = next(m for m in found["metrics"] if m["name"] == "incidents")
    assert incidents["chance"]["beyond_margin"] is None  # superiority: no margin line
    assert incidents["chance"]["harm"] is None
    assert incidents["chance"]["prior"] == {"mean": 0.0, "sd": 1.0}  # log rate ratio
    assert rr("report", "pilot", "P-1", "-o", "p.html", "--as-of", "2026-12-01").exit_code == 0
    html = (tmp_path / "p.html").read_text(encoding="utf-8")
    assert "<strong>Probability:</strong> The chance that the pilot arm is better: " in html


def test_a_protocol_prior_replaces_the_default(rr, tmp_path):
    protocol = PROTOCOL.replace('name = "wellbeing"', 'name = "wellbeing"\nprior = { mean = 1.0, sd = 2.0 }')
    assert protocol != PROTOCOL
    found = analysed(rr, tmp_path, protocol)
    chance = next(m for m in found["metrics"] if m["name"] == "wellbeing")["chance"]
    assert chance["prior"] == {"mean": 1.0, "sd": 2.0}
    assert chance["prior_source"] == "protocol"


# --- baseline adjustment -------------------------------------------------------------------------

ADJUSTED = (
    PROTOCOL.replace(
        'test = "non-inferiority"\nmargin = 3.0\n',
        'test = "non-inferiority"\nmargin = 3.0\ncovariate = "wellbeing_at_referral"\n',
    )
    + '\n[[metrics]]\nname = "wellbeing_at_referral"\nkind = "continuous"\nrole = "baseline"\nbetter = "higher"\n'
)


def baseline_data() -> tuple[str, list[tuple[str, int, float, float]]]:
    """Wide-form rows: unit, arm (0 comparison, 1 pilot), baseline, outcome; outcome ≈ 10 + 0.8·baseline (+2 pilot)."""
    import random

    rng = random.Random(5)
    units = []
    for i in range(40):
        arm = i % 2
        x = rng.gauss(40, 8)
        units.append((f"u{i}", arm, round(x, 2), round(10 + 0.8 * x + 2 * arm + rng.gauss(0, 2), 2)))
    lines = ["unit_id,arm,wellbeing,wellbeing_at_referral,readmitted,incidents,exposure"]
    for unit, arm, x, y in units:
        lines.append(f"{unit},{'pilot' if arm else 'comparison'},{y},{x},0,0,10")
    return "\n".join(lines) + "\n", units


def test_a_metric_with_a_covariate_is_also_adjusted_as_full_least_squares_would(rr, tmp_path):
    import numpy as np

    registered(rr, tmp_path, ADJUSTED)
    text, units = baseline_data()
    assert rr("pilot", "data", "P-1", write(tmp_path, "d.csv", text), "--stage", "feasibility").exit_code == 0
    found = rr.json("pilot", "analyse", "P-1")
    assert [m["name"] for m in found["metrics"]] == [
        "wellbeing",
        "readmitted",
        "incidents",
    ]  # the baseline is not tested
    adjusted = found["adjusted"]["wellbeing"]
    design = np.array([[1.0, arm, x] for _u, arm, x, _y in units])
    outcome = np.array([y for *_rest, y in units])
    coefficients, *_ = np.linalg.lstsq(design, outcome, rcond=None)
    assert adjusted["estimate"] == pytest.approx(float(coefficients[1]), rel=1e-9)
    assert adjusted["units"] == {"comparison": 20, "pilot": 20}
    assert adjusted["variance_reduction"] > 0.7  # the baseline explains most of the spread
    means = [np.mean([y for _u, arm, _x, y in units if arm == a]) for a in (1, 0)]
    assert adjusted["unadjusted_estimate"] == pytest.approx(means[0] - means[1])
    # the protocol pre-specifies the adjustment: the metric's result, and the gate, read it
    wellbeing = next(m for m in found["metrics"] if m["name"] == "wellbeing")
    assert wellbeing["estimate"] == pytest.approx(adjusted["estimate"])
    assert wellbeing["nominal"]["ci"] == [pytest.approx(v) for v in adjusted["ci"]]
    assert wellbeing["method"].startswith("non-inferiority test (higher is better, margin 3); ANCOVA")
    text_report = rr("pilot", "analyse", "P-1").stdout
    assert (
        "adjusted for a baseline, as the protocol pre-specifies (ANCOVA; two-stage for clusters)"
        in text_report
    )
    assert "wellbeing_at_referral" in text_report


def test_units_without_a_baseline_count_once_through_a_missing_indicator(rr, tmp_path):
    import numpy as np

    registered(rr, tmp_path, ADJUSTED)
    text, units = baseline_data()
    lines = text.splitlines()
    for index in (3, 8, 15):  # units u2, u7 and u14 have no baseline recorded
        cells = lines[index].split(",")
        cells[3] = "NA"
        lines[index] = ",".join(cells)
    path = write(tmp_path, "d.csv", "\n".join(lines) + "\n")
    assert rr("pilot", "data", "P-1", path, "--stage", "feasibility").exit_code == 0
    adjusted = rr.json("pilot", "analyse", "P-1")["adjusted"]["wellbeing"]
    assert adjusted["units"] == {"comparison": 20, "pilot": 20}  # every unit with the outcome, once
    assert adjusted["missing_baseline"] == {"comparison": 2, "pilot": 1}
    gaps = {"u2", "u7", "u14"}
    observed = [x for u, _arm, x, _y in units if u not in gaps]
    fill = sum(observed) / len(observed)
    design = np.array([[1.0, arm, fill if u in gaps else x, float(u in gaps)] for u, arm, x, _y in units])
    outcome = np.array([y for *_rest, y in units])
    coefficients, *_ = np.linalg.lstsq(design, outcome, rcond=None)
    assert adjusted["estimate"] == pytest.approx(float(coefficients[1]), rel=1e-9)


def test_a_baseline_that_is_not_a_number_is_refused_with_its_line(rr, tmp_path):
    registered(rr, tmp_path, ADJUSTED)
    text, _units = baseline_data()
    lines = text.splitlines()
    lines[4] = lines[4].replace(lines[4].split(",")[3], "high", 1)
    path = write(tmp_path, "d.csv", "\n".join(lines) + "\n")
    result = rr("pilot", "data", "P-1", path, "--stage", "feasibility")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {path}: line 5: wellbeing_at_referral: value must be a number, got 'high'; nothing was imported\n"
    )


def test_a_covariate_must_name_a_continuous_baseline_metric(rr, tmp_path):
    wrong = ADJUSTED.replace('covariate = "wellbeing_at_referral"', 'covariate = "readmitted"')
    path = write(tmp_path, "x.toml", wrong)
    result = rr("pilot", "register", path)
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {path}: metrics[0].covariate: expected the name of a metric with role 'baseline', got 'readmitted'\n",
    )


def test_the_pilot_report_gives_the_adjusted_result_in_words(rr, tmp_path):
    registered(rr, tmp_path, ADJUSTED)
    text, _units = baseline_data()
    assert rr("pilot", "data", "P-1", write(tmp_path, "d.csv", text), "--stage", "feasibility").exit_code == 0
    assert rr("report", "pilot", "P-1", "-o", "p.html", "--as-of", "2026-12-01").exit_code == 0
    html = (tmp_path / "p.html").read_text(encoding="utf-8")
    assert "<h4>Adjusted for a baseline at feasibility</h4>" in html
    assert "wellbeing, adjusted for wellbeing_at_referral: difference " in html
    assert "on 20 comparison and 20 pilot units; the baseline cut the variance" in html
