"""Tail areas and quantiles of the normal, t and chi-squared distributions, from scipy.special.

``scipy.stats`` would give the same numbers (its ``norm``, ``t`` and ``chi2`` call these
very functions) but takes about 0.35 s to import, which every analysis and report paid;
``scipy.special`` loads in a fraction of that. Upper tails and upper quantiles are computed
directly, not as 1 - cdf, so small probabilities keep their precision.
"""

from __future__ import annotations

from scipy import special


def norm_sf(x: float) -> float:
    """P(Z > x) for a standard normal Z (``scipy.stats.norm.sf``)."""
    return float(special.ndtr(-x))


def norm_cdf(x: float) -> float:
    """P(Z <= x) for a standard normal Z (``scipy.stats.norm.cdf``)."""
    return float(special.ndtr(x))


def norm_isf(p: float) -> float:
    """The z with P(Z > z) = p (``scipy.stats.norm.isf``)."""
    return float(-special.ndtri(p))


def t_sf(x: float, df: float) -> float:
    """P(T > x) for Student's t on ``df`` degrees of freedom (``scipy.stats.t.sf``)."""
    return float(special.stdtr(df, -x))


def t_isf(p: float, df: float) -> float:
    """The t with P(T > t) = p on ``df`` degrees of freedom (``scipy.stats.t.isf``)."""
    return float(-special.stdtrit(df, p))


def chi2_sf(x: float, df: float) -> float:
    """P(X > x) for chi-squared on ``df`` degrees of freedom (``scipy.stats.chi2.sf``)."""
    return float(special.chdtrc(df, x))
