"""Per-key call-rate and error-rate baselines, stored column-wise for a million keys.

Every tracked key (account, Region, API [, error code]) is one *row* of a few numpy arrays:

* ``C[row, slot]``: forward-decayed count of events in each of 48 seasonal slots
  (UTC hour of day x weekday/weekend).
* ``M2[row, scale]``: forward-decayed sum of squared bucket counts at the 1, 10 and 60 minute
  scales, from which the within-slot variance (hence the dispersion) at each scale follows.
* ``part[row, scale]``: count of the current, still open 10- and 60-minute bucket.
* ``peak_val/peak_min[row, scale, daytype]``: recent decayed maximum bucket count.

Decay is *forward* (:func:`~insights.stats.decay_weight`): a minute in which a key saw nothing
changes none of its numbers, so the cost of a closed minute is proportional to the keys that were
active in it, and all per-key arithmetic is vectorized over those rows. The exposure (how many
decayed minutes each slot has been observed) is shared by all keys of one account and Region and
kept in :class:`StreamExposure`. A key that appears for the first time inherits its stream's
exposure with zero counts: "never seen in N days" is real information, which is what lets a
burst of a never-seen API be scored at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from insights.stats import decay_weight

__all__ = [
    "N_SLOTS",
    "SCALES",
    "BaselineTable",
    "Expectation",
    "RowClock",
    "StreamExposure",
    "daytype_of",
    "slot_of",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Window scales in minutes (tumbling buckets aligned to the hour).
SCALES: tuple[int, ...] = (1, 10, 60)
_SCALE_INDEX = np.arange(len(SCALES))
_SCALES_F = np.array(SCALES, dtype=np.float64)
_LONG_SCALES = np.array(SCALES[1:], dtype=np.int64)
N_SLOTS = 48
#: Prior pseudo-count and prior minutes of the overall rate (keeps a never-seen key's rate > 0).
_PRIOR_COUNT = 0.5
_PRIOR_MINUTES = 60.0
#: Minutes of weight the overall rate carries inside a seasonal slot (shrinkage).
_SLOT_PRIOR_MINUTES = 120.0
_MAX_PHI = 1e4
#: Rescale forward-decay sums before weights exceed 2**_RESCALE_EXPONENT.
_RESCALE_EXPONENT = 40.0


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


def _daytypes(minutes: IntArray) -> IntArray:
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
        assert self.slots is not None
        minute = start
        while minute < end:
            chunk_end = min(end, (minute // 60 + 1) * 60)
            first = float(decay_weight(minute, self.ref_minute, self.half_life))
            ratio = 2.0 ** (1.0 / self.half_life)
            count = chunk_end - minute
            weight = first * (ratio**count - 1.0) / (ratio - 1.0)
            self.slots[slot_of(minute)] += weight
            self.total += weight
            minute = chunk_end

    def needs_rescale(self, minute: int) -> bool:
        """Whether weights at ``minute`` are large enough to rebase the stream's sums."""
        return (minute - self.ref_minute) / self.half_life > _RESCALE_EXPONENT

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
        minute = np.asarray(minutes, dtype=np.int64)[item]
        ref = np.array([e.ref_minute for e in exposures], dtype=np.int64)[item]
        total = np.array([e.total for e in exposures], dtype=np.float64)[item]
        stacked = np.concatenate([e.slots for e in exposures if e.slots is not None])
        slots = stacked.reshape(len(exposures), N_SLOTS)[item]
        daytype = _daytypes(minute)
        return cls(
            minute=minute,
            ref=ref,
            total=total,
            slots=slots,
            decay=np.exp2((minute - ref) / exposures[0].half_life),
            slot=daytype * 24 + (minute // 60) % 24,
            daytype=daytype,
        )

    @classmethod
    def single(cls, exposure: StreamExposure, minute: int, n_rows: int) -> RowClock:
        """``n_rows`` rows of one stream, all at ``minute``."""
        return cls.gather([exposure], [minute], np.zeros(n_rows, dtype=np.int64))


@dataclass(frozen=True, slots=True)
class Expectation:
    """What the baseline expects of a set of rows in one minute."""

    mu: FloatArray
    """Expected count per minute in the current seasonal slot."""
    mean_rate: FloatArray
    """Overall mean count per minute over the baseline (AWS's ``baseline.average``)."""
    phi: FloatArray
    """Dispersion (variance / mean) per scale, shape ``(rows, len(SCALES))``."""


class BaselineTable:
    """Column-wise baseline state of every tracked key.

    Examples:
        >>> import numpy as np
        >>> exp = StreamExposure(ref_minute=0, half_life=10080.0)
        >>> table = BaselineTable(half_life=10080.0, peak_half_life=4320.0)
        >>> row = table.add_row()
        >>> rows = np.array([row])
        >>> for minute in range(600):
        ...     clock = RowClock.single(exp, minute, 1)
        ...     table.flush_buckets(rows, clock)
        ...     exp.add_minutes(minute, minute + 1)
        ...     table.learn(rows, np.array([2.0]), clock)
        >>> e = table.expect(rows, RowClock.single(exp, 600, 1))
        >>> round(float(e.mean_rate[0]), 2), round(float(e.phi[0, 0]), 2)
        (1.82, 1.0)
    """

    def __init__(self, half_life: float, peak_half_life: float, capacity: int = 1024) -> None:
        self.half_life = half_life
        self.peak_half_life = peak_half_life
        self._size = 0
        self.counts = np.zeros((capacity, N_SLOTS), dtype=np.float32)
        self.sq = np.zeros((capacity, len(SCALES)), dtype=np.float64)
        self.part = np.zeros((capacity, len(SCALES) - 1), dtype=np.float32)
        self.part_raw = np.zeros((capacity, len(SCALES) - 1), dtype=np.float32)
        self.last_minute = np.full(capacity, -1, dtype=np.int64)
        self.peak_val = np.zeros((capacity, len(SCALES), 2), dtype=np.float32)
        self.peak_min = np.zeros((capacity, len(SCALES), 2), dtype=np.int64)

    @property
    def size(self) -> int:
        """Number of rows in use."""
        return self._size

    _ARRAYS = ("counts", "sq", "part", "part_raw", "last_minute", "peak_val", "peak_min")

    def add_row(self) -> int:
        """Allocate a row with an empty baseline and return its index."""
        if self._size == self.counts.shape[0]:
            for name in self._ARRAYS:
                old = getattr(self, name)
                fill = -1 if name == "last_minute" else 0
                new = np.full((old.shape[0] * 2, *old.shape[1:]), fill, dtype=old.dtype)
                new[: old.shape[0]] = old
                setattr(self, name, new)
        row = self._size
        self._size += 1
        return row

    def arrays(self) -> dict[str, np.ndarray]:
        """The used part of every array (for state snapshots)."""
        return {name: getattr(self, name)[: self._size] for name in self._ARRAYS}

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Replace the table's contents with saved arrays."""
        size = int(arrays["counts"].shape[0])
        capacity = max(1024, 1 << max(size - 1, 1).bit_length())
        for name in self._ARRAYS:
            saved = arrays[name]
            fill = -1 if name == "last_minute" else 0
            new = np.full((capacity, *saved.shape[1:]), fill, dtype=getattr(self, name).dtype)
            new[:size] = saved
            setattr(self, name, new)
        self._size = size

    def rescale(self, rows: IntArray, factor: float) -> None:
        """Multiply the decayed sums of ``rows`` after their stream was rebased."""
        self.counts[rows] *= np.float32(factor)
        self.sq[rows] *= factor

    def flush_buckets(self, rows: IntArray, clock: RowClock) -> None:
        """Close the 10/60-minute buckets of ``rows`` that ended before their clock's minute."""
        last = self.last_minute[rows]
        bucket = last[:, None] // _LONG_SCALES
        done = (last[:, None] >= 0) & (bucket != clock.minute[:, None] // _LONG_SCALES)
        which, part = np.nonzero(done)  # (row position, index among the long scales)
        if not which.size:
            return
        done_rows = rows[which]
        value = self.part[done_rows, part].astype(np.float64)
        raw = self.part_raw[done_rows, part].astype(np.float64)
        bucket_end = (bucket[which, part] + 1) * _LONG_SCALES[part] - 1
        weight = np.exp2((bucket_end - clock.ref[which]) / self.half_life)
        self.sq[done_rows, part + 1] += value * value * weight
        self._update_peaks(done_rows, part + 1, _daytypes(bucket_end), raw, bucket_end)
        self.part[done_rows, part] = 0.0
        self.part_raw[done_rows, part] = 0.0

    def _update_peaks(
        self,
        rows: IntArray,
        scale_index: int | IntArray,
        daytypes: IntArray,
        value: FloatArray,
        minutes: IntArray,
    ) -> None:
        current = self.decayed_peaks_at(rows, scale_index, daytypes, minutes)
        higher = value >= current
        if np.count_nonzero(higher):
            scales = scale_index if isinstance(scale_index, int) else scale_index[higher]
            self.peak_val[rows[higher], scales, daytypes[higher]] = value[higher]
            self.peak_min[rows[higher], scales, daytypes[higher]] = minutes[higher]

    def decayed_peaks_at(
        self, rows: IntArray, scale_index: int | IntArray, daytypes: IntArray, minutes: IntArray
    ) -> FloatArray:
        """Recent peak bucket count at a scale (one, or one per row), decayed to ``minutes``."""
        val = self.peak_val[rows, scale_index, daytypes].astype(np.float64)
        age = minutes - self.peak_min[rows, scale_index, daytypes]
        return np.asarray(val * np.exp2(-np.maximum(age, 0) / self.peak_half_life))

    def peaks(self, rows: IntArray, minutes: IntArray) -> FloatArray:
        """Decayed peaks of all scales for the day type of each row's minute, ``(rows, scales)``.

        A day type with no peak yet (the first weekend) borrows the other day type's.
        """
        own = _daytypes(minutes)
        take = np.where(self.peak_min[rows, :, own] == 0, 1 - own[:, None], own[:, None])
        index = (rows[:, None], _SCALE_INDEX, take)
        val = self.peak_val[index]
        at = self.peak_min[index]
        age = np.maximum(minutes[:, None] - at, 0)
        return np.asarray(val.astype(np.float64) * np.exp2(-age / self.peak_half_life))

    def window_counts(self, rows: IntArray, counts: FloatArray, minutes: IntArray) -> FloatArray:
        """Counts of the current (partial) bucket at each scale, including this minute."""
        out = np.empty((rows.shape[0], len(SCALES)), dtype=np.float64)
        out[:, 0] = counts
        last = self.last_minute[rows]
        same = (last[:, None] >= 0) & (
            last[:, None] // _LONG_SCALES == minutes[:, None] // _LONG_SCALES
        )
        out[:, 1:] = np.where(same, self.part[rows], 0.0) + counts[:, None]
        return out

    def expect(self, rows: IntArray, clock: RowClock) -> Expectation:
        """Expected rate and dispersion of ``rows`` in their minute, from history before it."""
        counts = self.counts[rows].astype(np.float64)
        total = counts.sum(axis=1)
        # priors are in minutes *now*, i.e. in the same forward-decay units as the sums
        now = clock.decay
        mean_rate = (total + _PRIOR_COUNT * now) / (clock.total + _PRIOR_MINUTES * now)
        slot = clock.slot
        index = np.arange(rows.shape[0])
        slot_exposure = clock.slots[index, slot]
        mu = (counts[index, slot] + _SLOT_PRIOR_MINUTES * now * mean_rate) / (
            slot_exposure + _SLOT_PRIOR_MINUTES * now
        )
        observed = clock.slots > 0
        inv = np.where(observed, 1.0 / np.where(observed, clock.slots, 1.0), 0.0)
        between = np.einsum("ij,ij->i", counts * counts, inv)
        scales = _SCALES_F
        buckets = np.maximum(np.maximum(clock.total, 1.0)[:, None] / scales, 1.0)
        within = np.maximum(self.sq[rows] - between[:, None] * scales, 0.0)
        phi = (within / buckets) / np.maximum(scales * mean_rate[:, None], 1e-9)
        np.minimum(np.maximum(phi, 1.0, out=phi), _MAX_PHI, out=phi)
        return Expectation(mu=mu, mean_rate=mean_rate, phi=phi)

    def learn(
        self,
        rows: IntArray,
        counts: FloatArray,
        clock: RowClock,
        peak_counts: FloatArray | None = None,
    ) -> None:
        """Add one closed minute's counts of ``rows`` (each row at most once).

        ``counts`` feed the moments; ``peak_counts`` (default: the same) feed the peaks, so that
        a suspicious minute can be learned winsorized while its size still sets the bar.
        Call :meth:`flush_buckets` for ``rows`` and ``clock`` first (the engine does so once,
        before :meth:`expect`).
        """
        peak_counts = counts if peak_counts is None else peak_counts
        weight = clock.decay
        self.counts[rows, clock.slot] += (counts * weight).astype(np.float32)
        self.sq[rows, 0] += counts * counts * weight
        self.part[rows] += counts[:, None].astype(np.float32)
        self.part_raw[rows] += peak_counts[:, None].astype(np.float32)
        self._update_peaks(rows, 0, clock.daytype, peak_counts, clock.minute)
        self.last_minute[rows] = clock.minute
