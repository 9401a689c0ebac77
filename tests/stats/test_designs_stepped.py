"""Stepped wedge: the Hussey–Hughes model from cluster-period cells, its closed-form variance and power.

No published table of this model is quoted from memory here; each result is checked against
an independent computation instead: generalised least squares and REML written out on the
individual rows with dense matrices (V = σ²·I + τ²·ZZ'), and the numerical GLS variance of
the design matrix for the closed form.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

from riskreg.stats.stepped import (
    Cell,
    hussey_hughes_fit,
    hussey_hughes_variance,
    schedule_matrix,
    stepped_wedge_power,
)

# A classic stepped wedge: 6 clusters, 4 periods, two clusters switching at each of periods 1–3.
SCHEDULE = schedule_matrix([1, 1, 2, 2, 3, 3], 4)


def simulate(seed: int, theta: float = 0.5, tau: float = 0.6, sigma: float = 1.0, sizes=(3, 9)):
    """Return individual rows (cluster, period, treated, y) from the Hussey–Hughes model."""
    rng = np.random.default_rng(seed)
    rows = []
    trend = [0.0, 0.3, 0.5, 0.4]
    for i, row in enumerate(SCHEDULE):
        alpha = rng.normal(0, tau)
        for j, treated in enumerate(row):
            for _ in range(int(rng.integers(sizes[0], sizes[1] + 1))):
                rows.append((i, j, treated, 10 + trend[j] + theta * treated + alpha + rng.normal(0, sigma)))
    return rows


def cells_of(rows) -> list[Cell]:
    cells = []
    for key in sorted({(i, j) for i, j, _t, _y in rows}):
        ys = np.array([y for i, j, _t, y in rows if (i, j) == key])
        treated = next(t for i, j, t, _y in rows if (i, j) == key)
        cells.append(
            Cell(
                key[0], key[1], bool(treated), len(ys), float(ys.mean()), float(((ys - ys.mean()) ** 2).sum())
            )
        )
    return cells


def dense(rows):
    """Return y, X (intercept, period dummies, treated) and Z (cluster indicators) of the rows."""
    y = np.array([r[3] for r in rows])
    periods = sorted({r[1] for r in rows})
    x = np.column_stack(
        [np.ones(len(rows))]
        + [np.array([r[1] == p for r in rows], dtype=float) for p in periods[1:]]
        + [np.array([r[2] for r in rows], dtype=float)]
    )
    clusters = sorted({r[0] for r in rows})
    z = np.column_stack([np.array([r[0] == c for r in rows], dtype=float) for c in clusters])
    return y, x, z


def dense_gls(y, x, z, sigma2, tau2):
    v = sigma2 * np.eye(len(y)) + tau2 * z @ z.T
    vi = np.linalg.inv(v)
    cov = np.linalg.inv(x.T @ vi @ x)
    return cov @ x.T @ vi @ y, cov


def dense_reml(y, x, z):
    """Return (σ², τ²) maximising the individual-level restricted likelihood (Nelder–Mead on logs)."""

    def deviance(log_parameters):
        sigma2, tau2 = np.exp(log_parameters)
        v = sigma2 * np.eye(len(y)) + tau2 * z @ z.T
        vi = np.linalg.inv(v)
        xvx = x.T @ vi @ x
        beta = np.linalg.solve(xvx, x.T @ vi @ y)
        r = y - x @ beta
        return np.linalg.slogdet(v)[1] + np.linalg.slogdet(xvx)[1] + r @ vi @ r

    found = optimize.minimize(
        deviance, [0.0, -1.0], method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 4000}
    )
    return tuple(np.exp(found.x))


def test_gls_with_known_components_equals_dense_gls_on_the_individual_rows():
    rows = simulate(1)
    y, x, z = dense(rows)
    beta, cov = dense_gls(y, x, z, 1.3, 0.4)
    found = hussey_hughes_fit(cells_of(rows), components=(1.3, 0.4))
    assert found.estimate == pytest.approx(beta[-1], rel=1e-9)
    assert found.se == pytest.approx(math.sqrt(cov[-1, -1]), rel=1e-9)


def test_reml_from_cells_equals_reml_on_the_individual_rows():
    rows = simulate(2)
    y, x, z = dense(rows)
    sigma2, tau2 = dense_reml(y, x, z)
    beta, cov = dense_gls(y, x, z, sigma2, tau2)
    found = hussey_hughes_fit(cells_of(rows))
    assert (found.sigma2, found.tau2) == (pytest.approx(sigma2, rel=1e-4), pytest.approx(tau2, rel=1e-4))
    assert found.estimate == pytest.approx(beta[-1], rel=1e-5)
    assert found.se == pytest.approx(math.sqrt(cov[-1, -1]), rel=1e-4)
    assert found.icc == pytest.approx(tau2 / (tau2 + sigma2), rel=1e-4)
    assert (found.clusters, found.periods) == (6, 4)


def test_the_test_and_interval_use_z_or_the_t_reference_given():
    found = hussey_hughes_fit(cells_of(simulate(3)))
    assert found.p_value == pytest.approx(2 * stats.norm.sf(abs(found.estimate / found.se)))
    assert found.ci[1] - found.estimate == pytest.approx(1.959964 * found.se, rel=1e-6)
    with_t = hussey_hughes_fit(cells_of(simulate(3)), df=4)
    # qt(0.975, 4) = 2.776445
    assert with_t.ci[1] - with_t.estimate == pytest.approx(2.776445 * with_t.se, rel=1e-6)
    assert with_t.p_value == pytest.approx(2 * stats.t.sf(abs(with_t.statistic), 4))


def test_clusters_no_more_alike_than_chance_give_a_cluster_variance_of_zero():
    # seed 5 draws clusters that differ less than their units would make them (τ = 0 here)
    rows = simulate(5, tau=0.0)
    found = hussey_hughes_fit(cells_of(rows))
    assert found.tau2 == 0.0
    # then the model is ordinary least squares on the rows, and σ² its residual mean square
    y, x, _z = dense(rows)
    beta, rss, *_ = np.linalg.lstsq(x, y, rcond=None)
    assert found.estimate == pytest.approx(beta[-1], rel=1e-9)
    assert found.sigma2 == pytest.approx(rss[0] / (len(y) - x.shape[1]), rel=1e-9)


def test_closed_form_variance_equals_the_numerical_gls_variance_of_the_design():
    # Hussey & Hughes (2007) eq. 8 against (X'V⁻¹X)⁻¹ computed from the cell-mean design
    s2, tau2 = 0.05, 0.02
    x = np.asarray(SCHEDULE, dtype=float)
    clusters, periods = x.shape
    rows = [(i, j, x[i, j]) for i in range(clusters) for j in range(periods)]
    design = np.column_stack(
        [np.ones(len(rows))]
        + [np.array([r[1] == p for r in rows], dtype=float) for p in range(1, periods)]
        + [np.array([r[2] for r in rows])]
    )
    z = np.column_stack([np.array([r[0] == c for r in rows], dtype=float) for c in range(clusters)])
    v = s2 * np.eye(len(rows)) + tau2 * z @ z.T
    numerical = np.linalg.inv(design.T @ np.linalg.inv(v) @ design)[-1, -1]
    assert hussey_hughes_variance(SCHEDULE, s2, tau2) == pytest.approx(numerical, rel=1e-10)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(1, 5), min_size=3, max_size=8),
    st.floats(0.01, 2.0),
    st.floats(0.0, 2.0),
)
def test_the_closed_form_is_what_the_fit_gives_with_known_components(switches, s2, tau2):
    periods = 6
    schedule = schedule_matrix(switches, periods)
    if len(set(switches)) < 2:
        return  # all clusters switch together: the effect is confounded with time
    m = 4
    cells = [
        Cell(i, j, bool(treated), m, float(i + j), 0.0)
        for i, row in enumerate(schedule)
        for j, treated in enumerate(row)
    ]
    fitted = hussey_hughes_fit(cells, components=(s2 * m, tau2))
    assert fitted.se**2 == pytest.approx(hussey_hughes_variance(schedule, s2, tau2), rel=1e-8)


def test_power_is_the_normal_power_at_the_closed_form_se():
    power = stepped_wedge_power(SCHEDULE, effect=0.5, sd=1.0, icc=0.05, cell_size=20)
    variance = hussey_hughes_variance(SCHEDULE, 0.95 / 20, 0.05)
    assert power.variance == pytest.approx(variance)
    z = 0.5 / math.sqrt(variance)
    assert power.power == pytest.approx(
        stats.norm.cdf(z - 1.959964) + stats.norm.cdf(-z - 1.959964), rel=1e-6
    )
    # 4·sd²/(I·T·m) = 4 / 480 for the same units randomised individually
    assert power.design_effect == pytest.approx(variance / (4 / 480))


def test_with_no_clustering_the_design_matches_an_ols_variance():
    # ICC 0: Var(θ̂) is σ²/m times the OLS (X'X)⁻¹ of the cell design
    x = np.asarray(SCHEDULE, dtype=float)
    rows = [(j, x[i, j]) for i in range(6) for j in range(4)]
    design = np.column_stack(
        [np.ones(24)]
        + [np.array([r[0] == p for r in rows], dtype=float) for p in (1, 2, 3)]
        + [np.array([r[1] for r in rows])]
    )
    expected = 1.0 / 10 * np.linalg.inv(design.T @ design)[-1, -1]
    assert stepped_wedge_power(SCHEDULE, 0.3, 1.0, 0.0, 10).variance == pytest.approx(expected)


def test_the_model_se_matches_the_spread_of_estimates_over_repeated_pilots():
    # 300 simulated pilots at known σ = 1, τ = 0.6, m = 6: the estimates' SD should be the GLS SE
    estimates = []
    for seed in range(300):
        rows = simulate(100 + seed, sizes=(6, 6))
        estimates.append(hussey_hughes_fit(cells_of(rows), components=(1.0, 0.36)).estimate)
    expected = math.sqrt(hussey_hughes_variance(SCHEDULE, 1.0 / 6, 0.36))
    # the SD of 300 normal draws has a relative standard error of about 1/sqrt(600) ≈ 4 %
    assert float(np.std(estimates, ddof=1)) == pytest.approx(expected, rel=0.15)
    assert abs(float(np.mean(estimates)) - 0.5) < 4 * expected / math.sqrt(300)


def test_schedules_that_cannot_separate_the_effect_from_time_are_refused():
    together = schedule_matrix([2, 2, 2], 4)
    with pytest.raises(ValueError, match="cannot separate the pilot effect from the periods"):
        hussey_hughes_variance(together, 0.1, 0.05)
    cells = [
        Cell(i, j, bool(t), 5, float(j), 1.0) for i, row in enumerate(together) for j, t in enumerate(row)
    ]
    with pytest.raises(ValueError, match="cannot separate the pilot effect from the periods"):
        hussey_hughes_fit(cells)


def test_bad_input_is_refused_by_name():
    with pytest.raises(ValueError, match="switch_periods\\[1\\] must be at most 4"):
        schedule_matrix([1, 5], 4)
    with pytest.raises(ValueError, match="the schedule holds 0"):
        hussey_hughes_variance([[0, 2], [0, 1]], 0.1, 0.1)
    with pytest.raises(ValueError, match="within_ss must be >= 0"):
        hussey_hughes_fit([Cell(0, 0, False, 3, 1.0, -1.0)])
    with pytest.raises(ValueError, match="both before and after the switch"):
        hussey_hughes_fit([Cell(i, j, False, 3, 1.0, 1.0) for i in range(3) for j in range(3)])
    with pytest.raises(ValueError, match="icc must be at least 0 and below 1"):
        stepped_wedge_power(SCHEDULE, 0.5, 1.0, 1.0, 10)


def test_the_order_and_names_of_the_cells_change_nothing():
    cells = cells_of(simulate(6))
    renamed = [
        Cell(f"site-{c.cluster}", c.period, c.treated, c.n, c.mean, c.within_ss) for c in reversed(cells)
    ]
    first, second = hussey_hughes_fit(cells), hussey_hughes_fit(renamed)
    assert (second.estimate, second.se, second.tau2) == (
        pytest.approx(first.estimate, rel=1e-7),
        pytest.approx(first.se, rel=1e-6),
        pytest.approx(first.tau2, rel=1e-6, abs=1e-12),
    )
