"""A closing step's rows as the baselines score them (:meth:`BaselineTable.score_minutes`).

:class:`Expectation` is what a key's baseline expects of its minute; :class:`ScoredMinutes`
adds the step's windows, expectations and dispersions per scale, computed in Python or read as
views of the C accelerator's output planes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from insights.exposure import RowClock

__all__ = ["PLANES", "Expectation", "ScoredMinutes"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Rows of the (planes, rows) output of the C accelerator's score_minutes (``csrc/closing.c``):
#: one plane each for decay, mu, mean rate and the minute-scale peak decay, three (one per
#: scale) for phi, window, lam and the phi each scale is scored with.
_P_DECAY, _P_MU, _P_MEAN, _P_PHI, _P_WINDOW = 0, 1, 2, 3, 6
_P_LAM, _P_SCORE_PHI, _P_PEAK0, PLANES = 9, 12, 15, 16


@dataclass(frozen=True, slots=True)
class Expectation:
    """What the baseline expects of a set of rows in one minute."""

    mu: FloatArray
    """Expected count per minute in the current seasonal slot."""
    mean_rate: FloatArray
    """Overall mean count per minute over the baseline (AWS's ``baseline.average``)."""
    phi: FloatArray
    """Dispersion (variance / mean) per scale, shape ``(rows, len(SCALES))``."""


@dataclass(frozen=True, slots=True)
class ScoredMinutes:
    """One closing step's rows as their baselines see them, before the minute is learned
    (:meth:`insights.baselines.BaselineTable.score_minutes`)."""

    minute: IntArray
    """The minute each row closes."""
    decay: FloatArray
    """Forward-decay weight of each row's minute."""
    item_decay: FloatArray
    """The same weight per stream-minute (the ``exposures`` and ``minutes`` of the step)."""
    expected: Expectation
    window: FloatArray
    """Count of the current bucket so far at each scale, this minute included ``(rows, scales)``."""
    lam: FloatArray
    """Expected count of those partial buckets (``mu`` times the minutes elapsed in them)."""
    phi: FloatArray
    """Dispersion each scale is scored with: a partial bucket may hold a whole clump (a job at
    minute 0 of the hour), so it takes the larger of its own scale's and the minute scale's."""
    needed: BoolArray
    """Scores anyone reads: the minute scale (suspect minutes) and wherever the excess rule
    passes (the Start rule)."""
    clock: RowClock | None = None
    """The pure-Python step's clock (None when the C accelerator scored the step)."""
    planes: FloatArray | None = None
    """The C accelerator's output, which ``BaselineTable.learn_minutes`` reads back."""

    @classmethod
    def from_planes(
        cls,
        minute: IntArray,
        planes: FloatArray,
        scratch: FloatArray,
        items: int,
        needed: BoolArray,
    ) -> ScoredMinutes:
        """The step the C accelerator scored into ``planes`` (and the item decays into
        ``scratch``), as views of those arrays."""
        expected = Expectation(
            mu=planes[_P_MU], mean_rate=planes[_P_MEAN], phi=planes[_P_PHI : _P_PHI + 3].T
        )
        return cls(
            minute=minute,
            decay=planes[_P_DECAY],
            item_decay=scratch[:items],
            expected=expected,
            window=planes[_P_WINDOW : _P_WINDOW + 3].T,
            lam=planes[_P_LAM : _P_LAM + 3].T,
            phi=planes[_P_SCORE_PHI : _P_SCORE_PHI + 3].T,
            needed=needed,
            planes=planes,
        )
