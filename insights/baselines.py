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

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from insights.stats import decay_weight

__all__ = [
    "N_SLOTS",
    "SCALES",
    "BaselineTable",
    "Expectation",
    "StreamExposure",
    "daytype_of",
    "slot_of",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Window scales in minutes (tumbling buckets aligned to the hour).
SCALES: tuple[int, ...] = (1, 10, 60)
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
        ...     table.flush_buckets(rows, minute, exp)
        ...     exp.add_minutes(minute, minute + 1)
        ...     table.learn(rows, np.array([2.0]), minute, exp)
        >>> e = table.expect(np.array([row]), 600, exp)
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

    def flush_buckets(self, rows: IntArray, minute: int, exposure: StreamExposure) -> None:
        """Close the 10/60-minute buckets of ``rows`` that ended before ``minute``."""
        last = self.last_minute[rows]
        for index, scale in enumerate(SCALES[1:], start=1):
            done = (last >= 0) & (last // scale != minute // scale)
            if not done.any():
                continue
            done_rows = rows[done]
            value = self.part[done_rows, index - 1].astype(np.float64)
            raw = self.part_raw[done_rows, index - 1].astype(np.float64)
            bucket_end = (last[done] // scale + 1) * scale - 1
            weight = decay_weight(bucket_end, exposure.ref_minute, self.half_life)
            self.sq[done_rows, index] += value * value * weight
            daytypes = ((bucket_end // 1440 + 3) % 7 >= 5).astype(np.int64)
            self._update_peaks(done_rows, index, daytypes, raw, bucket_end)
            self.part[done_rows, index - 1] = 0.0
            self.part_raw[done_rows, index - 1] = 0.0

    def _update_peaks(
        self,
        rows: IntArray,
        scale_index: int,
        daytypes: IntArray,
        value: FloatArray,
        minute: IntArray | int,
    ) -> None:
        current = self.decayed_peaks_at(rows, scale_index, daytypes, minute)
        higher = value >= current
        if higher.any():
            minutes = np.broadcast_to(np.asarray(minute, dtype=np.int64), rows.shape)
            self.peak_val[rows[higher], scale_index, daytypes[higher]] = value[higher]
            self.peak_min[rows[higher], scale_index, daytypes[higher]] = minutes[higher]

    def decayed_peaks_at(
        self, rows: IntArray, scale_index: int, daytypes: IntArray, minute: IntArray | int
    ) -> FloatArray:
        """Recent peak bucket count at one scale, decayed to ``minute``."""
        val = self.peak_val[rows, scale_index, daytypes].astype(np.float64)
        age = np.asarray(minute, dtype=np.int64) - self.peak_min[rows, scale_index, daytypes]
        return np.asarray(val * np.exp2(-np.maximum(age, 0) / self.peak_half_life))

    def peaks(self, rows: IntArray, minute: int) -> FloatArray:
        """Decayed peaks of all scales for the day type of ``minute``, shape (rows, scales).

        A day type with no peak yet (the first weekend) borrows the other day type's.
        """
        daytype = daytype_of(minute)
        own = np.full(rows.shape, daytype, dtype=np.int64)
        other = 1 - own
        columns = []
        for i in range(len(SCALES)):
            mine = self.decayed_peaks_at(rows, i, own, minute)
            never = self.peak_min[rows, i, daytype] == 0
            borrowed = self.decayed_peaks_at(rows, i, other, minute)
            columns.append(np.where(never, borrowed, mine))
        return np.stack(columns, axis=1)

    def window_counts(self, rows: IntArray, counts: FloatArray, minute: int) -> FloatArray:
        """Counts of the current (partial) bucket at each scale, including this minute."""
        out = np.empty((rows.shape[0], len(SCALES)), dtype=np.float64)
        out[:, 0] = counts
        last = self.last_minute[rows]
        for index, scale in enumerate(SCALES[1:], start=1):
            same = (last >= 0) & (last // scale == minute // scale)
            out[:, index] = np.where(same, self.part[rows, index - 1], 0.0) + counts
        return out

    def expect(self, rows: IntArray, minute: int, exposure: StreamExposure) -> Expectation:
        """Expected rate and dispersion of ``rows`` in ``minute``, from history before it."""
        assert exposure.slots is not None
        slot = slot_of(minute)
        counts = self.counts[rows].astype(np.float64)
        total = counts.sum(axis=1)
        # priors are in minutes *now*, i.e. in the same forward-decay units as the sums
        now = float(decay_weight(minute, exposure.ref_minute, self.half_life))
        mean_rate = (total + _PRIOR_COUNT * now) / (exposure.total + _PRIOR_MINUTES * now)
        slot_exposure = exposure.slots[slot]
        mu = (counts[:, slot] + _SLOT_PRIOR_MINUTES * now * mean_rate) / (
            slot_exposure + _SLOT_PRIOR_MINUTES * now
        )
        observed = exposure.slots > 0
        inv = np.where(observed, 1.0 / np.where(observed, exposure.slots, 1.0), 0.0)
        between = (counts * counts) @ inv
        phi = np.empty((rows.shape[0], len(SCALES)), dtype=np.float64)
        buckets_seen = np.maximum(exposure.total, 1.0)
        for index, scale in enumerate(SCALES):
            within = np.maximum(self.sq[rows, index] - between * scale, 0.0)
            variance = within / max(buckets_seen / scale, 1.0)
            phi[:, index] = variance / np.maximum(scale * mean_rate, 1e-9)
        np.clip(phi, 1.0, _MAX_PHI, out=phi)
        return Expectation(mu=mu, mean_rate=mean_rate, phi=phi)

    def learn(
        self,
        rows: IntArray,
        counts: FloatArray,
        minute: int,
        exposure: StreamExposure,
        peak_counts: FloatArray | None = None,
    ) -> None:
        """Add one closed minute's counts of ``rows`` (each row at most once).

        ``counts`` feed the moments; ``peak_counts`` (default: the same) feed the peaks, so that
        a suspicious minute can be learned winsorized while its size still sets the bar.
        Call :meth:`flush_buckets` for ``rows`` and ``minute`` first (the engine does so once,
        before :meth:`expect`).
        """
        peak_counts = counts if peak_counts is None else peak_counts
        weight = float(decay_weight(minute, exposure.ref_minute, self.half_life))
        slot = slot_of(minute)
        self.counts[rows, slot] += (counts * weight).astype(np.float32)
        self.sq[rows, 0] += counts * counts * weight
        self.part[rows] += counts[:, None].astype(np.float32)
        self.part_raw[rows] += peak_counts[:, None].astype(np.float32)
        daytypes = np.full(rows.shape, daytype_of(minute), dtype=np.int64)
        self._update_peaks(rows, 0, daytypes, peak_counts, minute)
        self.last_minute[rows] = minute
