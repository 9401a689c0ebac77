"""Chance of benefit: a flat-prior normal reading of an estimate and its standard error."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from riskreg.stats.probability import chance_of_benefit


def test_values_from_the_standard_normal_table():
    # Φ(1.96) = 0.9750 and Φ(1.645) = 0.9500 (standard normal table, e.g. Armitage, Berry & Matthews, Table A1)
    assert chance_of_benefit(1.96, 1.0, higher_is_better=True).better == pytest.approx(0.9750, abs=5e-5)
    assert chance_of_benefit(1.96, 1.0, higher_is_better=False).better == pytest.approx(0.0250, abs=5e-5)
    # a non-inferiority line 1.645 standard errors below an estimate of 0: 95 % beyond it
    found = chance_of_benefit(0.0, 1.0, higher_is_better=True, margin_line=-1.645)
    assert (found.better, found.beyond_margin) == (pytest.approx(0.5), pytest.approx(0.9500, abs=5e-5))


def test_a_ratio_is_read_on_the_log_scale():
    # a rate ratio of exp(-0.98) with log-scale se 0.5: 1.96 se below 1, lower better
    found = chance_of_benefit(math.exp(-0.98), 0.5, higher_is_better=False, ratio=True, margin_line=1.25)
    assert found.better == pytest.approx(0.9750, abs=5e-5)
    # the margin line 1.25 lies (0.98 + ln 1.25) / 0.5 = 2.406 se above the estimate: Φ(2.406) = 0.9919
    assert found.beyond_margin == pytest.approx(0.9919, abs=1e-4)


def test_bad_input_is_refused_by_name():
    with pytest.raises(ValueError, match="se must be greater than 0"):
        chance_of_benefit(1.0, 0.0, True)
    with pytest.raises(ValueError, match="estimate must be greater than 0"):
        chance_of_benefit(0.0, 1.0, True, ratio=True)


@given(estimate=st.floats(-50, 50), se=st.floats(0.01, 10))
def test_the_two_directions_add_to_one(estimate, se):
    up = chance_of_benefit(estimate, se, True).better
    down = chance_of_benefit(estimate, se, False).better
    assert up + down == pytest.approx(1.0)
