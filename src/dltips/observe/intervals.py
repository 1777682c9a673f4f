"""Means over seeds with their 95% t-intervals: what every view of settings, not seeds, reports
(dltips-compare's tables and bands, the sweep's aggregate TensorBoard runs, the lecture report).

A setting's seeds are n draws of its result; the interval of their mean uses Student's t with
n - 1 degrees of freedom, and two settings trained on the same seeds are compared seed by seed
(`paired`), which removes the part of the spread that the seed gives both.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

LEVEL = 0.95


@cache
def t_critical(n: int, level: float = LEVEL) -> float:
    """Student's t quantile for the two-sided `level` interval of a mean over n values: the t
    at which P(|T| <= t) = level with n - 1 degrees of freedom, found by bisection on the closed
    form of that probability (`within`). Computed here, not by scipy, whose special functions
    take about half a second to import at the end of every sweep."""
    low, high = 0.0, math.pi / 2  # over theta = atan(t / sqrt(df)), where `within` rises from 0 to 1
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if within(mid, n - 1) < level else (low, mid)
        if high - low < 1e-15:
            break
    return math.sqrt(n - 1) * math.tan((low + high) / 2)


def within(theta: float, df: int) -> float:
    """P(|T| <= sqrt(df) tan(theta)) for Student's t with an integer df >= 1 (Abramowitz and
    Stegun 26.7.3-4): a finite sum of powers of cos(theta)."""
    c2, term, total = math.cos(theta) ** 2, 1.0, 1.0
    if df % 2 == 0:  # sin θ (1 + 1/2 cos²θ + 1·3/(2·4) cos⁴θ + … up to cos^(df−2)θ)
        for k in range(2, df, 2):
            term *= c2 * (k - 1) / k
            total += term
        return math.sin(theta) * total
    if df == 1:
        return 2 * theta / math.pi
    # (2/π) (θ + sin θ cos θ (1 + 2/3 cos²θ + 2·4/(3·5) cos⁴θ + … up to cos^(df−3)θ))
    for k in range(3, df - 1, 2):
        term *= c2 * (k - 1) / k
        total += term
    return 2 / math.pi * (theta + math.sin(theta) * math.cos(theta) * total)


def mean_ci(values, level: float = LEVEL) -> tuple[float, float]:
    """Mean over seeds and the half-width of its t confidence interval (0 for a single seed)."""
    values = np.asarray(list(values), dtype=float)
    n = len(values)
    if n < 2:
        return float(values.mean()), 0.0
    return float(values.mean()), float(t_critical(n, level) * values.std(ddof=1) / np.sqrt(n))


def mean_ci_curves(curves: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Per step (column) of `curves` (one row per seed): the mean and the interval's half-width."""
    curves = np.asarray(curves, dtype=float)
    n = curves.shape[0]
    if n < 2:
        return curves.mean(axis=0), np.zeros(curves.shape[1:])
    return curves.mean(axis=0), t_critical(n, level) * curves.std(axis=0, ddof=1) / np.sqrt(n)


def paired(a, b) -> tuple[float, float, float]:
    """Seed by seed a − b (same seed: same split and, where the variants allow, the same init):
    (mean difference, lower, upper bound of its 95% t-interval)."""
    m, h = mean_ci(np.asarray(list(a), dtype=float) - np.asarray(list(b), dtype=float))
    return m, m - h, m + h


def welch(a, b, level: float = LEVEL) -> tuple[float, float, float]:
    """a − b for settings on different seeds: (mean difference, lower, upper bound of Welch's
    t-interval), or no interval (nan) where either side has a single value."""
    from scipy.special import stdtrit

    a, b = np.asarray(list(a), dtype=float), np.asarray(list(b), dtype=float)
    m = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return m, float("nan"), float("nan")
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = float(np.sqrt(va + vb))
    if se == 0:
        return m, m, m
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    h = float(stdtrit(df, 0.5 + level / 2)) * se
    return m, m - h, m + h
