"""A stream's time: seasonal slots, the decayed minutes each slot was observed, row clocks.

The exposure (how many decayed minutes each seasonal slot has been observed) is shared by all
keys of one account and Region (:class:`StreamExposure`); a closing step reads it, with each
row's minute and decay, through a :class:`RowClock`. Decay is forward: weights grow with time
from a reference minute and are rebased before they leave the float range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from insights import model

__all__ = [
    "N_SLOTS",
    "RESCALE_EXPONENT",
    "RowClock",
    "StreamExposure",
    "daytype_of",
    "daytypes",
    "slot_of",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Seasonal slots: UTC hour of day x weekday/weekend (the model's shape, :mod:`insights.model`).
N_SLOTS = model.MODEL.n_slots
#: Rescale forward-decay sums before weights exceed 2**RESCALE_EXPONENT.
RESCALE_EXPONENT = 40.0


def slot_of(minute: int) -> int:
    """Seasonal slot of an epoch minute: UTC hour, plus 24 on Saturday and Sunday.

    Examples:
        >>> slot_of(0)  # 1970-01-01 00:00 was a Thursday
        0
        >>> slot_of(2 * 1440 + 13 * 60)  # Saturday 13:00
        37
    """
    return daytype_of(minute) * 24 + (minute // 60) % 24


def daytype_of(minute: int) -> int:
    """0 for Monday to Friday, 1 for Saturday and Sunday (UTC)."""
    return 1 if (minute // 1440 + 3) % 7 >= 5 else 0


def daytypes(minutes: IntArray) -> IntArray:
    return ((minutes // 1440 + 3) % 7 >= 5).astype(np.int64)


@dataclass(slots=True)
class StreamExposure:
    """Decayed minutes observed per seasonal slot for one (account, Region) stream."""

    ref_minute: int
    half_life: float
    total: float = 0.0
    slots: FloatArray | None = None

    def __post_init__(self) -> None:
        if self.slots is None:
            self.slots = np.zeros(N_SLOTS, dtype=np.float64)

    def add_minutes(self, start: int, end: int) -> None:
        """Account for the closed minutes ``[start, end)`` (hour-sized steps)."""
        minute = start
        while minute < end:
            chunk_end = min(end, (minute // 60 + 1) * 60)
            # numpy's exp2 like every other decay weight (a scalar call is the same loop)
            first = float(np.exp2((minute - self.ref_minute) / self.half_life))
            self._add_run(minute, chunk_end, first)
            minute = chunk_end

    def add_minute(self, minute: int, weight: float) -> None:
        """Account for one closed minute whose forward-decay weight is known (a closing step
        computed it: :attr:`ScoredMinutes.item_decay`)."""
        self._add_run(minute, minute + 1, weight)

    def _add_run(self, start: int, end: int, first: float) -> None:
        """Minutes ``[start, end)`` of one hour; ``first`` is the weight of ``start``."""
        slots = self.slots
        assert slots is not None
        ratio = 2.0 ** (1.0 / self.half_life)
        weight = first * (ratio ** (end - start) - 1.0) / (ratio - 1.0)
        slot = ((start // 1440 + 3) % 7 >= 5) * 24 + (start // 60) % 24  # slot_of, inlined
        slots[slot] += weight
        self.total += weight

    def effective_minutes(self, minute: int) -> float:
        """The baseline's length in minutes as seen from ``minute``: the minutes observed before
        it, each weighted by its decay (never more than the stream's history; ``half_life / ln 2``
        minutes for an endless one)."""
        return self.total * float(np.exp2(-(minute - self.ref_minute) / self.half_life))

    def needs_rescale(self, minute: int) -> bool:
        """Whether weights at ``minute`` are large enough to rebase the stream's sums."""
        return (minute - self.ref_minute) / self.half_life > RESCALE_EXPONENT

    def rebase(self, new_ref: int) -> float:
        """Move the reference minute; return the factor every decayed sum must be multiplied by."""
        assert self.slots is not None
        factor = float(2.0 ** (-(new_ref - self.ref_minute) / self.half_life))
        self.ref_minute = new_ref
        self.total *= factor
        self.slots *= factor
        return factor


@dataclass(frozen=True, slots=True)
class RowClock:
    """Per-row time and exposure for one vectorized step over rows of several streams.

    Row ``i`` is being closed at ``minute[i]`` of a stream whose forward-decay reference is
    ``ref[i]`` and whose exposure (before this minute) is ``total[i]`` and ``slots[i]``.
    ``decay``, ``slot`` and ``daytype`` are derived once per step, since every stage of the
    step reads them.
    """

    minute: IntArray
    ref: IntArray
    total: FloatArray
    slots: FloatArray
    decay: FloatArray
    """Forward-decay weight of each row's minute (its stream's half-life)."""
    item_decay: FloatArray
    """The same weight per stream-minute (``decay == item_decay[item]``)."""
    slot: IntArray
    """Seasonal slot of each row's minute (:func:`slot_of`)."""
    daytype: IntArray
    """Day type of each row's minute (:func:`daytype_of`)."""

    @classmethod
    def gather(
        cls, exposures: Sequence[StreamExposure], minutes: Sequence[int], item: IntArray
    ) -> RowClock:
        """Rows whose stream is ``exposures[item[i]]``, closing ``minutes[item[i]]``.

        Every exposure must have the same half-life (one engine's streams do).
        """
        item_minute = np.asarray(minutes, dtype=np.int64)
        item_ref = np.array([e.ref_minute for e in exposures], dtype=np.int64)
        item_decay = np.exp2((item_minute - item_ref) / exposures[0].half_life)
        minute = item_minute[item]
        total = np.array([e.total for e in exposures], dtype=np.float64)[item]
        stacked = np.concatenate([e.slots for e in exposures if e.slots is not None])
        slots = stacked.reshape(len(exposures), N_SLOTS)[item]
        daytype = daytypes(minute)
        return cls(
            minute=minute,
            ref=item_ref[item],
            total=total,
            slots=slots,
            decay=item_decay[item],
            item_decay=item_decay,
            slot=daytype * 24 + (minute // 60) % 24,
            daytype=daytype,
        )

    @classmethod
    def single(cls, exposure: StreamExposure, minute: int, n_rows: int) -> RowClock:
        """``n_rows`` rows of one stream, all at ``minute``."""
        return cls.gather([exposure], [minute], np.zeros(n_rows, dtype=np.int64))
