from __future__ import annotations

import numpy as np
from scipy import stats

from insights.stats import MAX_SCORE, decay_weight, nb_tail_score


def test_poisson_tail_matches_scipy() -> None:
    x = np.array([1.0, 3.0, 10.0, 25.0])
    lam = np.array([0.5, 2.0, 4.0, 10.0])
    expected = -np.log10(stats.poisson.sf(x - 1, lam))
    np.testing.assert_allclose(nb_tail_score(x, lam, np.ones(4)), expected, rtol=1e-9)


def test_negative_binomial_tail_matches_scipy() -> None:
    x = np.array([2.0, 8.0, 30.0])
    lam = np.array([1.0, 2.0, 5.0])
    phi = np.array([2.0, 5.0, 3.0])
    p = 1.0 / phi
    r = lam / (phi - 1.0)
    expected = -np.log10(stats.nbinom.sf(x - 1, r, p))
    np.testing.assert_allclose(nb_tail_score(x, lam, phi), expected, rtol=1e-7)


def test_overdispersion_lowers_the_score() -> None:
    x, lam = np.array([20.0, 20.0]), np.array([2.0, 2.0])
    poisson, clumpy = nb_tail_score(x, lam, np.array([1.0, 10.0]))
    assert poisson > clumpy > 0


def test_zero_count_and_extremes() -> None:
    s = nb_tail_score(np.array([0.0, 1000.0]), np.array([1.0, 1e-9]), np.array([1.0, 1.0]))
    assert s[0] == 0.0
    assert s[1] == MAX_SCORE


def test_decay_weight_halves_per_half_life() -> None:
    assert float(decay_weight(0, 100, 50.0)) == 0.25
