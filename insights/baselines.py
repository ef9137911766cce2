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
from types import ModuleType

import numpy as np
import numpy.typing as npt

from insights import model
from insights.exposure import (
    N_SLOTS,
    RowClock,
    StreamExposure,
    daytype_of,
    daytypes,
    slot_of,
)
from insights.scored import PLANES, Expectation, ScoredMinutes

__all__ = [
    "N_SLOTS",
    "SCALES",
    "BaselineTable",
    "Expectation",
    "RowClock",
    "ScoredMinutes",
    "StreamExposure",
    "daytype_of",
    "slot_of",
]
# the stream's time (exposure, clocks, seasonal slots) is in insights.exposure and a step's
# scored rows in insights.scored; these names are re-exported here because every user of the
# baselines reads them with it

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Window scales in minutes and seasonal slots (the model's shape: :mod:`insights.model`; the
#: other constants are read from :data:`insights.model.MODEL` where they are used).
SCALES: tuple[int, ...] = model.MODEL.scales
_SCALE_INDEX = np.arange(len(SCALES))
_SCALES_F = np.array(SCALES, dtype=np.float64)
_LONG_SCALES = np.array(SCALES[1:], dtype=np.int64)


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

    def __init__(
        self,
        half_life: float,
        peak_half_life: float,
        capacity: int = 1024,
        kernels: ModuleType | None = None,
    ) -> None:
        #: the C kernels (:data:`insights.native.module`) or None (pure Python, the same bits)
        self.kernels = kernels
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
        self._update_peaks(done_rows, part + 1, daytypes(bucket_end), raw, bucket_end)
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
        own = daytypes(minutes)
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
        m = model.MODEL
        mean_rate = (total + m.prior_count * now) / (clock.total + m.prior_minutes * now)
        slot = clock.slot
        index = np.arange(rows.shape[0])
        slot_exposure = clock.slots[index, slot]
        mu = (counts[index, slot] + m.slot_prior_minutes * now * mean_rate) / (
            slot_exposure + m.slot_prior_minutes * now
        )
        observed = clock.slots > 0
        inv = np.where(observed, 1.0 / np.where(observed, clock.slots, 1.0), 0.0)
        # an elementwise product and numpy's pairwise row sum: an order the C accelerator can
        # reproduce bit for bit (einsum's order depends on the CPU's vector width and FMA)
        between = (counts * counts * inv).sum(axis=1)
        scales = _SCALES_F
        buckets = np.maximum(np.maximum(clock.total, 1.0)[:, None] / scales, 1.0)
        within = np.maximum(self.sq[rows] - between[:, None] * scales, 0.0)
        phi = (within / buckets) / np.maximum(scales * mean_rate[:, None], 1e-9)
        np.minimum(np.maximum(phi, 1.0, out=phi), m.max_phi, out=phi)
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

    def score_minutes(
        self,
        rows: IntArray,
        counts: FloatArray,
        item: IntArray,
        exposures: Sequence[StreamExposure],
        minutes: Sequence[int],
        min_excess: float,
    ) -> ScoredMinutes:
        """Close the buckets of ``rows`` and say what their baselines expect of this minute.

        Row ``i`` saw ``counts[i]`` events in ``minutes[item[i]]`` of the stream whose exposure
        is ``exposures[item[i]]``; each row and each exposure appears at most once. The rows are
        scored against the exposures before the minute, then every exposure accounts for its
        minute (:meth:`StreamExposure.add_minute`). Nothing is learned yet: score the minute,
        then call :meth:`learn_minutes`. In C given the C kernels, with the same
        arithmetic in the same order (the same bits).
        """
        minute = np.asarray(minutes, dtype=np.int64)[item]
        fast = self.kernels
        if fast is not None and len(exposures):
            n = rows.shape[0]
            planes = np.empty((PLANES, n), dtype=np.float64)
            needed = np.empty((n, len(SCALES)), dtype=np.bool_)
            scratch = np.empty(len(exposures) + 5 * n, dtype=np.float64)
            fast.score_minutes(
                self,
                rows,
                counts,
                item,
                exposures,
                minutes,
                min_excess,
                scratch,
                planes,
                needed,
            )
            return ScoredMinutes.from_planes(minute, planes, scratch, len(exposures), needed)
        clock = RowClock.gather(exposures, minutes, item)
        for exposure, at, weight in zip(exposures, minutes, clock.item_decay.tolist(), strict=True):
            exposure.add_minute(at, weight)
        self.flush_buckets(rows, clock)
        expected = self.expect(rows, clock)
        window = self.window_counts(rows, counts, clock.minute)
        elapsed = (clock.minute[:, None] % _SCALES_F) + 1.0
        lam = expected.mu[:, None] * elapsed
        phi = np.where(
            elapsed < _SCALES_F, np.maximum(expected.phi, expected.phi[:, :1]), expected.phi
        )
        needed = window - np.floor(lam) >= min_excess
        needed[:, 0] = True
        return ScoredMinutes(
            minute=clock.minute,
            decay=clock.decay,
            item_decay=clock.item_decay,
            expected=expected,
            window=window,
            lam=lam,
            phi=phi,
            needed=needed,
            clock=clock,
        )

    def learn_minutes(
        self,
        scored: ScoredMinutes,
        rows: IntArray,
        counts: FloatArray,
        scores: FloatArray,
        guarded: BoolArray,
    ) -> None:
        """Learn the minute :meth:`score_minutes` scored (nothing may change the table between).

        The moments learn a winsorized count: capped at the baseline's ``winsor_sigma`` bound
        (:mod:`insights.model`) for ``guarded`` rows (in or starting an insight, so a burst does
        not poison the baseline it is measured against), the excess over the cap at
        ``suspect_weight`` for minutes whose minute-scale score (column 0 of ``scores``) reaches
        ``suspect_score``, the raw count otherwise. The peaks learn the raw count, insight
        minutes included: a job that repeats at the same size (or a deploy burst) fires once,
        not every run.
        """
        if scored.planes is not None:
            fast = self.kernels
            assert fast is not None
            fast.learn_minutes(self, rows, counts, scores, guarded, scored.minute, scored.planes)
            return
        assert scored.clock is not None
        expected = scored.expected
        m = model.MODEL
        cap = np.ceil(expected.mu + m.winsor_sigma * np.sqrt(expected.phi[:, 0] * expected.mu))
        clipped = np.minimum(counts, cap)
        suspect = scores[:, 0] >= m.suspect_score
        learn = np.where(suspect, clipped + m.suspect_weight * (counts - clipped), counts)
        learn = np.where(guarded, clipped, learn)
        self.learn(rows, learn, scored.clock, counts)
