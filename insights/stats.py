"""Vectorized count statistics: negative-binomial tail scores and forward-decay weights.

A per-minute (or per-bucket) count ``x`` is modelled as negative binomial with mean ``lam`` and
variance ``phi * lam`` (``phi >= 1`` is the dispersion: 1 is Poisson, larger is clumpier).
The *score* of an observation is ``-log10 P(X >= x)``: 2 means a 1-in-100 event under the
baseline, 7 a 1-in-10-million event. It is capped at :data:`MAX_SCORE`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import special

__all__ = ["MAX_SCORE", "decay_weight", "nb_tail_score"]

FloatArray = npt.NDArray[np.float64]

#: Upper bound of a score (a tail probability below 1e-300 is reported as 1e-300).
MAX_SCORE = 300.0
_POISSON_PHI = 1.0 + 1e-6


def nb_tail_score(x: FloatArray, lam: FloatArray, phi: FloatArray) -> FloatArray:
    """Return ``-log10 P(X >= x)`` for ``X ~ NB(mean=lam, var=phi*lam)``, elementwise.

    ``x <= 0`` scores 0. ``phi`` at or below 1 falls back to Poisson.

    Examples:
        >>> import numpy as np
        >>> s = nb_tail_score(np.array([0.0, 5.0, 5.0]), np.array([1.0, 1.0, 1.0]),
        ...                   np.array([1.0, 1.0, 4.0]))
        >>> [round(float(v), 2) for v in s]
        [0.0, 2.44, 1.23]
    """
    x = np.asarray(x, dtype=np.float64)
    lam = np.maximum(np.asarray(lam, dtype=np.float64), 1e-12)
    phi = np.asarray(phi, dtype=np.float64)
    k = np.ceil(x)
    positive = k > 0
    k_safe = np.where(positive, k, 1.0)
    poisson = phi <= _POISSON_PHI
    phi_nb = np.where(poisson, 2.0, phi)
    r = lam / (phi_nb - 1.0)
    with np.errstate(all="ignore"):
        p_nb = special.betainc(k_safe, r, 1.0 - 1.0 / phi_nb)
        p_po = special.gammainc(k_safe, lam)
    tail = np.where(poisson, p_po, p_nb)
    tail = np.where(positive, tail, 1.0)
    score = -np.log10(np.clip(tail, 1e-300, 1.0))
    capped: FloatArray = np.minimum(np.nan_to_num(score, nan=0.0, posinf=MAX_SCORE), MAX_SCORE)
    return capped + 0.0


def decay_weight(minute: int | FloatArray, ref_minute: int, half_life: float) -> FloatArray:
    """Forward-decay weight ``2 ** ((minute - ref_minute) / half_life)``.

    Adding ``x * decay_weight(t)`` to a running sum and dividing by the sum of weights gives an
    exponentially weighted mean in which old minutes count half as much every ``half_life``
    minutes, without ever touching the sum for minutes in which nothing happened.

    Examples:
        >>> float(decay_weight(20, 10, 10.0))
        2.0
    """
    return np.asarray(np.exp2((np.asarray(minute, dtype=np.float64) - ref_minute) / half_life))
