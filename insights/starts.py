"""The Start rule of an insight, vectorized over the keys active in a closed minute.

At some scale ``w`` in (1, 10, 60) minutes, with ``S`` the count of the current bucket so far,
``n`` its minutes elapsed and ``mu`` the seasonal expected rate (:mod:`insights.baselines`), a
key starts an insight when one of three holds:

* **the count model**: ``score = -log10 P(X >= S) >= start_score`` with
  ``X ~ NB(mean=mu*n, var=phi_w*mu*n)``, ``S - floor(mu*n) >= min_excess`` (one stray call on
  a silent API is never an insight), and ``S > peak_factor * peak``: the decayed recent peak of
  whole buckets at that scale and day type (hourly jobs and deploy bursts set the bar they have
  to clear); on a key expecting under one call per bucket, the longer scales' peaks too (a clump
  is one event whichever scale counts it);
* **new actors** (a *rare* key: the bucket expects fewer calls than
  :func:`sparse_expectation`): the calls of actors new to the key and its stream
  (:mod:`insights.familiarity`) alone pass ``min_excess`` and score ``start_score`` as a Poisson
  count. A rare key's usual actors call it in clumps, which the count model learns to tolerate;
  that says nothing about a principal it has never seen;
* **outsized clumps** (a rare key): the bucket holds ``k`` of the key's typical clumps and ``k``
  clumps are a ``start_score`` event for a Poisson count of clumps. The typical clump is the
  largest dispersion ``phi`` (variance over mean) over the scales, which for a key called in
  clumps is their weighted mean size. At medium that is three clumps' worth: the usual actors'
  clumps of the usual size never fire, one three times that size does.

The record's score is the highest of the paths that passed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special

from insights.baselines import SCALES
from insights.config import Thresholds
from insights.stats import nb_tail_score

__all__ = ["StartDecision", "sparse_expectation", "start_decisions"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

_SCALES_F = np.array(SCALES, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class StartDecision:
    """Rows that start an insight now, with the winning scale and its score."""

    mask: BoolArray
    scale_index: IntArray
    score: FloatArray
    new_actor_calls: FloatArray
    """Where new actors' calls alone started it: how many, at the winning scale (else 0)."""


def sparse_expectation(thresholds: Thresholds) -> float:
    """The expected count below which ``min_excess`` calls score ``start_score`` as Poisson.

    Examples:
        >>> from insights.config import SENSITIVITY_LEVELS, Sensitivity
        >>> round(sparse_expectation(SENSITIVITY_LEVELS[Sensitivity.MEDIUM]), 3)
        0.106
    """
    k = np.ceil(thresholds.min_excess)
    target = 10.0**-thresholds.start_score
    low, high = 0.0, max(float(k), 1.0)
    for _ in range(60):  # bisection: the Poisson tail P(X >= k) grows with the mean
        mid = (low + high) / 2
        if special.gammainc(k, mid) < target:
            low = mid
        else:
            high = mid
    return low


def _poisson_scores(count: FloatArray, mean: FloatArray, where: BoolArray) -> FloatArray:
    return nb_tail_score(count, mean, np.ones_like(mean), where=where & (count > 0))


def start_decisions(
    scores: FloatArray,
    window: FloatArray,
    expected: FloatArray,
    peaks: FloatArray,
    eligible: BoolArray,
    thresholds: Thresholds,
    *,
    dispersion: FloatArray | None = None,
    novel: FloatArray | None = None,
    sparse: float = 0.0,
) -> StartDecision:
    """Apply the Start rule to ``(rows, scales)`` arrays.

    ``dispersion`` is each scale's ``phi`` and ``novel`` the calls of new actors
    (:func:`insights.familiarity.novel_counts`); without them, or with ``sparse`` 0, only the
    count model's path is taken.

    Examples:
        >>> import numpy as np
        >>> from insights.config import Thresholds
        >>> t = Thresholds(start_score=7, min_excess=5, peak_factor=1.2)
        >>> d = start_decisions(np.array([[9.0, 2, 1], [9.0, 2, 1]]),
        ...     np.array([[20.0, 20, 20], [4.0, 4, 4]]), np.array([[1.0, 5, 30]] * 2),
        ...     np.zeros((2, 3)), np.array([True, True]), t)
        >>> d.mask.tolist(), d.scale_index.tolist()
        ([True, False], [0, 0])
    """
    excess = (window - np.floor(expected) >= thresholds.min_excess) & eligible[:, None]
    sparse_at = expected[:, :1] * _SCALES_F < 1.0
    longer = np.maximum.accumulate(np.where(sparse_at, peaks, 0.0)[:, ::-1], axis=1)[:, ::-1]
    clears_peaks = window > thresholds.peak_factor * np.maximum(peaks, longer)
    passing = (scores >= thresholds.start_score) & excess & clears_peaks
    new_actors = np.zeros(scores.shape, dtype=bool)
    rare = expected < sparse
    if np.count_nonzero(rare):
        if dispersion is not None:
            clump = np.maximum(dispersion.max(axis=1, keepdims=True), 1.0)
            clump_scores = _poisson_scores(np.floor(window / clump), expected / clump, rare)
            outsized = rare & (clump_scores >= thresholds.start_score) & excess & clears_peaks
            scores = np.where(outsized, np.maximum(scores, clump_scores), scores)
            passing |= outsized
        if novel is not None:
            novel_scores = _poisson_scores(novel, expected, rare)
            new_actors = (
                rare
                & (novel_scores >= thresholds.start_score)
                & (novel - np.floor(expected) >= thresholds.min_excess)
                & eligible[:, None]
            )
            new_actors &= ~passing | (novel_scores > scores)  # the path that decided it
            scores = np.where(new_actors, np.maximum(scores, novel_scores), scores)
            passing |= new_actors
    masked = np.where(passing, scores, -1.0)
    best = masked.argmax(axis=1)
    at = np.arange(masked.shape[0])
    calls = np.where(new_actors[at, best], novel[at, best], 0.0) if novel is not None else None
    return StartDecision(
        mask=np.asarray(passing.any(axis=1), dtype=bool),
        scale_index=best,
        score=masked[at, best],
        new_actor_calls=np.zeros(at.shape[0]) if calls is None else calls,
    )
