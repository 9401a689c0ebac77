"""Tests for riskreg.stats.verdicts: judge() decision rules and Holm adjustment."""

import math

import pytest

from riskreg.stats.verdicts import VERDICTS, holm, judge


class TestSuperiority:
    @pytest.mark.parametrize(
        ("better", "low", "high", "verdict"),
        [
            ("higher", 0.5, 2.0, "superior"),
            ("higher", -2.0, -0.5, "harm"),
            ("higher", -0.5, 2.0, "inconclusive"),
            ("higher", 0.0, 2.0, "inconclusive"),  # touching the null does not exclude it
            ("lower", -2.0, -0.5, "superior"),
            ("lower", 0.5, 2.0, "harm"),
        ],
    )
    def test_difference(self, better, low, high, verdict):
        assert judge("superiority", better, low, high) == verdict

    @pytest.mark.parametrize(
        ("better", "low", "high", "verdict"),
        [
            ("lower", 0.5, 0.9, "superior"),
            ("lower", 1.1, 3.0, "harm"),
            ("higher", 1.1, 3.0, "superior"),
            ("higher", 0.0, 0.8, "harm"),  # a ratio CI may start at 0 (no pilot events)
            ("higher", 0.8, 1.2, "inconclusive"),
        ],
    )
    def test_ratio(self, better, low, high, verdict):
        assert judge("superiority", better, low, high, ratio=True) == verdict


class TestNonInferiority:
    @pytest.mark.parametrize(
        ("better", "low", "high", "verdict"),
        [
            ("higher", 0.1, 3.0, "superior"),
            ("higher", -0.9, 3.0, "non-inferior"),
            ("higher", -3.0, -1.5, "inferior"),
            ("higher", -1.5, -0.2, "harm"),
            ("higher", -1.5, 0.5, "inconclusive"),
            ("lower", -0.5, 0.9, "non-inferior"),
            ("lower", 1.5, 3.0, "inferior"),
        ],
    )
    def test_difference_margin_one(self, better, low, high, verdict):
        assert judge("non-inferiority", better, low, high, margin=1.0) == verdict

    @pytest.mark.parametrize(
        ("better", "low", "high", "verdict"),
        [
            # lower is better, margin 1.25: tolerated worse ratio is 1.25
            ("lower", 0.9, 1.2, "non-inferior"),
            ("lower", 1.3, 2.0, "inferior"),
            ("lower", 1.1, 1.3, "harm"),
            # higher is better, margin 1.25: tolerated worse ratio is 1 / 1.25 = 0.8
            ("higher", 0.85, 1.1, "non-inferior"),
            ("higher", 0.5, 0.75, "inferior"),
            ("higher", 0.7, 1.1, "inconclusive"),
        ],
    )
    def test_ratio_margin(self, better, low, high, verdict):
        assert judge("non-inferiority", better, low, high, margin=1.25, ratio=True) == verdict


class TestEquivalence:
    @pytest.mark.parametrize(
        ("low", "high", "tost", "verdict"),
        [
            (-0.8, 0.9, (-0.6, 0.7), "equivalent"),
            (-0.8, 1.2, (-0.6, 1.1), "inconclusive"),
            (-3.0, -1.5, (-2.8, -1.7), "inferior"),
            (1.5, 3.0, (1.7, 2.8), "superior"),
            (-1.4, -0.2, (-1.2, -0.3), "harm"),
            (-0.8, 0.9, (None, None), "inconclusive"),
        ],
    )
    def test_difference(self, low, high, tost, verdict):
        assert judge("equivalence", "higher", low, high, margin=1.0, equivalence_ci=tost) == verdict

    def test_ratio(self):
        inside = judge(
            "equivalence", "lower", 0.82, 1.22, margin=1.25, ratio=True, equivalence_ci=(0.85, 1.18)
        )
        assert inside == "equivalent"
        # lower is better, so a ratio CI entirely above 1.25 is the worse side.
        above = judge("equivalence", "lower", 1.3, 1.6, margin=1.25, ratio=True, equivalence_ci=(1.35, 1.5))
        assert above == "inferior"


class TestJudgeInputs:
    def test_none_bounds_are_inconclusive(self):
        assert judge("superiority", "higher", None, 2.0) == "inconclusive"
        assert judge("non-inferiority", "lower", 0.1, None, margin=0.5) == "inconclusive"
        assert judge("superiority", "higher", 0.5, None, ratio=True) == "inconclusive"

    def test_verdicts_are_listed(self):
        assert judge("superiority", "higher", 1.0, 2.0) in VERDICTS

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"test": "superority", "better": "higher"},
            {"test": "superiority", "better": "up"},
            {"test": "non-inferiority", "better": "higher"},  # no margin
            {"test": "non-inferiority", "better": "higher", "margin": -1.0},
            {"test": "non-inferiority", "better": "higher", "margin": 0.9, "ratio": True},
            {"test": "equivalence", "better": "higher", "margin": 1.0},  # no equivalence_ci
            {"test": "superiority", "better": "higher", "low": 2.0, "high": 1.0},
            {"test": "superiority", "better": "higher", "low": -0.5, "high": 1.0, "ratio": True},
            {"test": "superiority", "better": "higher", "low": math.nan, "high": 1.0},
        ],
    )
    def test_invalid(self, kwargs):
        low, high = kwargs.pop("low", 0.1), kwargs.pop("high", 0.2)
        test, better = kwargs.pop("test"), kwargs.pop("better")
        with pytest.raises(ValueError):
            judge(test, better, low, high, **kwargs)


class TestHolm:
    def test_r_p_adjust(self):
        # R: p.adjust(c(.042, .001, .031, .014, .007), "holm")  (Dmisc::holm example);
        # by hand: sorted .001*5, .007*4, .014*3, .031*2, .042*1 -> cummax
        #   = 0.005, 0.028, 0.042, 0.062, 0.062, returned in input order:
        adjusted = holm([0.042, 0.001, 0.031, 0.014, 0.007])
        assert adjusted == pytest.approx((0.062, 0.005, 0.062, 0.042, 0.028), abs=1e-12)

    def test_r_kim_examples(self):
        # R: p.adjust(c(.05, .01), "holm") -> 0.05 0.02  (kim::holm_adjusted_p example)
        assert holm([0.05, 0.01]) == pytest.approx((0.05, 0.02), abs=1e-12)
        # R: p.adjust(c(.05, .05, .05), "holm") -> 0.15 0.15 0.15
        assert holm([0.05, 0.05, 0.05]) == pytest.approx((0.15, 0.15, 0.15), abs=1e-12)

    def test_capped_and_empty(self):
        assert holm([0.6, 0.9]) == (1.0, 1.0)
        assert holm([]) == ()

    @pytest.mark.parametrize("bad", [[0.5, 1.2], [-0.1], [math.nan]])
    def test_invalid(self, bad):
        with pytest.raises(ValueError):
            holm(bad)
