"""Means over seeds with their 95% t-intervals: what every view of settings, not seeds, reports
(dltips-compare's tables and bands, the sweep's aggregate TensorBoard runs, the lecture report).

A setting's seeds are n draws of its result; the interval of their mean uses Student's t with
n - 1 degrees of freedom, and two settings trained on the same seeds are compared seed by seed
(`paired`), which removes the part of the spread that the seed gives both.
"""

from __future__ import annotations

import numpy as np

LEVEL = 0.95


def t_critical(n: int, level: float = LEVEL) -> float:
    """Student's t quantile for the two-sided `level` interval of a mean over n values."""
    from scipy.special import stdtrit  # the t quantile itself: scipy.stats takes a second to import

    return float(stdtrit(n - 1, 0.5 + level / 2))


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
