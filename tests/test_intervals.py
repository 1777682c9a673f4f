"""The 95% intervals of means over seeds, against scipy's own t-tests."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from dltips.observe.intervals import mean_ci, mean_ci_curves, paired, t_critical, welch


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 11, 30, 101, 1024])
@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_t_critical_is_scipys_t_quantile(n, level):
    assert t_critical(n, level) == pytest.approx(stats.t.ppf(0.5 + level / 2, n - 1), rel=1e-10)


@pytest.mark.parametrize("n", [2, 3, 10])
def test_mean_ci_is_the_one_sample_t_interval(n):
    values = np.random.default_rng(n).normal(0.6, 0.05, n)
    mean, half = mean_ci(values)
    low, high = stats.ttest_1samp(values, 0).confidence_interval(0.95)
    assert mean == pytest.approx(values.mean()) and (mean - half, mean + half) == pytest.approx((low, high))


def test_a_single_seed_has_no_interval():
    assert mean_ci([0.5]) == (0.5, 0.0)


def test_curves_get_the_interval_of_each_step():
    curves = np.random.default_rng(0).normal(size=(4, 6))
    mean, half = mean_ci_curves(curves)
    for step in range(6):
        assert (mean[step], half[step]) == pytest.approx(mean_ci(curves[:, step]))


def test_paired_is_the_paired_t_interval():
    rng = np.random.default_rng(1)
    a = rng.normal(0.6, 0.05, 5)
    b = a - 0.01 + rng.normal(0, 0.002, 5)
    m, low, high = paired(a, b)
    assert m == pytest.approx((a - b).mean())
    assert (low, high) == pytest.approx(tuple(stats.ttest_rel(a, b).confidence_interval(0.95)))


def test_welch_is_scipys_unequal_variance_interval():
    rng = np.random.default_rng(2)
    a, b = rng.normal(0.6, 0.05, 4), rng.normal(0.55, 0.01, 6)
    m, low, high = welch(a, b)
    assert m == pytest.approx(a.mean() - b.mean())
    ref = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (low, high) == pytest.approx((ref.low, ref.high))
    assert np.isnan(welch([0.5], b)[1])
