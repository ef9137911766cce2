"""Vectorized count statistics: negative-binomial tail scores and forward-decay weights.

A per-minute (or per-bucket) count ``x`` is modelled as negative binomial with mean ``lam`` and
variance ``phi * lam`` (``phi >= 1`` is the dispersion: 1 is Poisson, larger is clumpier).
The *score* of an observation is ``-log10 P(X >= x)``: 2 means a 1-in-100 event under the
baseline, 7 a 1-in-10-million event. It is capped at :data:`MAX_SCORE`.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
import numpy.typing as npt
from scipy import special

from insights import model

__all__ = ["MAX_SCORE", "decay_weight", "nb_tail_score"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Upper bound of a score (a tail probability below 1e-300 is reported as 1e-300).
MAX_SCORE = 300.0


def nb_tail_score(
    x: FloatArray,
    lam: FloatArray,
    phi: FloatArray,
    where: BoolArray | None = None,
    kernels: ModuleType | None = None,
) -> FloatArray:
    """Return ``-log10 P(X >= x)`` for ``X ~ NB(mean=lam, var=phi*lam)``, elementwise.

        ``x <= 0`` scores 0. ``phi`` at or below 1 falls back to Poisson. With ``where``, only
        those elements are computed (the others score 0): the incomplete beta function costs about
        a microsecond per element, so callers skip the ones whose score nothing reads. Given the C
        ``kernels`` (:data:`insights.native.module`) and 1-d or 2-d float64 operands and mask, the
        selection and parameters are computed in C around the same scipy and numpy calls (the same
        bits).

        Examples:
            >>> from types import ModuleType

    import numpy as np
            >>> s = nb_tail_score(np.array([0.0, 5.0, 5.0]), np.array([1.0, 1.0, 1.0]),
            ...                   np.array([1.0, 1.0, 4.0]))
            >>> [round(float(v), 2) for v in s]
            [0.0, 2.44, 1.23]
            >>> nb_tail_score(np.array([5.0, 5.0]), np.ones(2), np.ones(2),
            ...               where=np.array([False, True])).round(2).tolist()
            [0.0, 2.44]
    """
    fast = kernels
    if fast is not None and _fast_shapes(x, lam, phi, where):
        out = np.empty(x.shape, dtype=np.float64)
        with np.errstate(all="ignore"):
            fast.tail_scores(
                x,
                lam,
                phi,
                where,
                out,
                np.empty((6, x.size), dtype=np.float64),
            )
        return out
    x, lam, phi = _same_shape_floats(x, lam, phi)
    k = np.ceil(x)
    todo = k > 0
    if where is not None:
        todo &= where
    out = np.zeros(x.shape, dtype=np.float64)
    if not np.count_nonzero(todo):
        return out
    k, lam, phi = k[todo], np.maximum(lam[todo], 1e-12), phi[todo]
    poisson = phi <= model.MODEL.poisson_phi
    tail = np.empty(k.shape, dtype=np.float64)
    with np.errstate(all="ignore"):
        if np.count_nonzero(poisson):
            tail[poisson] = special.gammainc(k[poisson], lam[poisson])
        nb = ~poisson
        if np.count_nonzero(nb):
            phi_nb = phi[nb]
            tail[nb] = special.betainc(k[nb], lam[nb] / (phi_nb - 1.0), 1.0 - 1.0 / phi_nb)
        # np.clip's own checks cost more than the clipping on these small arrays
        score = -np.log10(np.minimum(np.maximum(tail, 1e-300), 1.0))
    # the clip bounds the score to [0, MAX_SCORE]; fmax maps a NaN (invalid parameters) to 0
    out[todo] = np.fmax(score, 0.0)
    return out + 0.0


def _fast_shapes(x: object, lam: object, phi: object, where: object) -> bool:
    """Whether the C tail scores take these operands: 1-d or 2-d float64 arrays of one shape
    (any strides) and a boolean mask of that shape."""
    return (
        type(x) is np.ndarray
        and type(lam) is np.ndarray
        and type(phi) is np.ndarray
        and type(where) is np.ndarray
        and x.dtype == lam.dtype == phi.dtype == np.float64
        and where.dtype == np.bool_
        and 1 <= x.ndim <= 2
        and x.shape == lam.shape == phi.shape == where.shape
    )


def _same_shape_floats(
    x: FloatArray, lam: FloatArray, phi: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The three operands as float64 arrays of one shape (no copies when they already are)."""
    arrays = (x, lam, phi)
    if all(type(a) is np.ndarray and a.dtype == np.float64 for a in arrays) and (
        x.shape == lam.shape == phi.shape
    ):
        return x, lam, phi
    bx, blam, bphi = np.broadcast_arrays(
        np.asarray(x, dtype=np.float64),
        np.asarray(lam, dtype=np.float64),
        np.asarray(phi, dtype=np.float64),
    )
    return bx, blam, bphi


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
