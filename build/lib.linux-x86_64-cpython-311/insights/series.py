"""The detector core on a plain univariate series (used to score it on NAB).

The same model as the engine's baselines, applied to one series of per-interval values: a
forward-decayed mean and variance learned online (winsorized, so an anomaly does not become the
baseline), and the negative-binomial tail score of :func:`insights.stats.nb_tail_score` with the
variance matched (``phi = variance / mean``). Values are shifted by the smallest value seen so
far so that they behave as non-negative rates. Both directions count: a drop is scored as the
mirror-image rise. Everything at row *t* uses rows before *t* only.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from insights.stats import nb_tail_score

__all__ = ["series_scores"]

FloatArray = npt.NDArray[np.float64]


def series_scores(values: FloatArray, half_life: float = 1500.0) -> FloatArray:
    """Score every row of ``values`` (``-log10`` tail probability, 0 for the first rows).

    Examples:
        >>> import numpy as np
        >>> v = np.r_[np.random.default_rng(0).normal(10, 1, 500), 30.0]
        >>> s = series_scores(v)
        >>> bool(s[-1] > 10 > s[:-1][100:].max())
        True
    """
    n = values.shape[0]
    decay = 2.0 ** (-1.0 / half_life)
    means = np.zeros(n)
    variances = np.zeros(n)
    bases = np.zeros(n)
    weight = total = squares = 0.0
    base = math.inf
    for t in range(n):
        value = float(values[t])
        if weight > 0:
            mean = total / weight
            var = max(squares / weight - mean * mean, 1e-12)
        else:
            mean, var = value, 1.0
        means[t], variances[t], bases[t] = mean, var, base
        # winsorize what is learned: beyond 4 sigma counts as 4 sigma
        limit = 4.0 * math.sqrt(var) if weight > 0 else math.inf
        learned = min(max(value, mean - limit), mean + limit)
        base = min(base, value)
        weight = weight * decay + 1.0
        total = total * decay + learned
        squares = squares * decay + learned * learned
    shift = np.where(np.isfinite(bases), bases, values)
    lam = np.maximum(means - shift, 1e-6)
    x = np.maximum(values - shift, 0.0)
    # a count scale: the variance of the shifted series matched to NB(mean=lam, var=phi*lam)
    # a variance floor (2 % of the level, squared) so that flat stretches do not make every
    # small step infinitely unlikely
    floor = (0.02 * np.maximum(np.abs(means), 1e-3)) ** 2
    phi = np.maximum(np.maximum(variances, floor) / lam, 1.0)
    up = nb_tail_score(x, lam, phi)
    down = nb_tail_score(np.maximum(2.0 * lam - x, 0.0), lam, phi)
    scores = np.maximum(up, down)
    scores[: min(n, 10)] = 0.0
    return scores
