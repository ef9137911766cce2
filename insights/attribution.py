"""Who and what drives an insight: top principals, user agents and error codes.

Baseline side: per key and attribute, a 5-slot *space-saving* sketch (Metwally et al., 2005)
of forward-decayed counts, held column-wise and merged once per closed minute, vectorized over
all (key, value) pairs of that minute. Memory is fixed: 5 value ids and 5 weights per attribute
per key. Insight side: exact counts over the minutes of the insight (few keys are in an insight
at a time).
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np
import numpy.typing as npt

__all__ = ["ATTRIBUTES", "TOP_N", "AttributionTable", "InsightAttribution", "Interner"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

ATTRIBUTES = ("userIdentityArn", "userAgent", "errorCode")
TOP_N = 5
_SLOTS = TOP_N
#: Above this many (entry, attribute) pairs a minute is summed with numpy instead of a dict.
_DICT_MERGE_MAX = 384


#: A minute's (row, attribute, rank) is summed and ordered as one integer:
#: ``row << _ROW_SHIFT | attribute << _ATTR_SHIFT | rank`` (2 bits of attribute, 32 of rank).
_ROW_SHIFT = 34
_ATTR_SHIFT = 32
_RANK_MASK = (1 << _ATTR_SHIFT) - 1


class Interner:
    """Maps attribute values (ARNs, user agents, error codes) to small integer ids.

    Examples:
        >>> names = Interner()
        >>> names.id("arn:a"), names.id("arn:b"), names.id("arn:a"), names.value(1)
        (0, 1, 0, 'arn:b')
    """

    def __init__(self, values: list[str] | None = None) -> None:
        self._values: list[str] = list(values or [])
        self._ids = {value: index for index, value in enumerate(self._values)}

    def load(self, values: list[str]) -> None:
        """Take the values :meth:`values` gave, in place (ids are their positions)."""
        self._values = list(values)
        self._ids = {value: index for index, value in enumerate(self._values)}

    def id(self, value: str) -> int:
        """Return the id of ``value``, assigning the next one if it is new."""
        found = self._ids.get(value)
        if found is None:
            found = len(self._values)
            self._ids[value] = found
            self._values.append(value)
        return found

    def find(self, value: str) -> int | None:
        """Return the id of ``value``, or None if it has none (nothing is assigned)."""
        return self._ids.get(value)

    def value(self, ident: int) -> str:
        """Return the value of an id."""
        return self._values[ident]

    def values(self) -> list[str]:
        """All values in id order (for state snapshots)."""
        return list(self._values)

    def __len__(self) -> int:
        return len(self._values)


class AttributionTable:
    """Space-saving sketches of every key's baseline attributions, column-wise."""

    def __init__(self, capacity: int = 1024, kernels: ModuleType | None = None) -> None:
        #: the C kernels (:data:`insights.native.module`) or None (pure Python, the same bits)
        self.kernels = kernels
        self.ids = np.full((capacity, len(ATTRIBUTES), _SLOTS), -1, dtype=np.int32)
        self.weights = np.zeros((capacity, len(ATTRIBUTES), _SLOTS), dtype=np.float32)

    def ensure(self, size: int) -> None:
        """Grow so that rows ``< size`` exist."""
        capacity = self.ids.shape[0]
        if size <= capacity:
            return
        while capacity < size:
            capacity *= 2
        ids = np.full((capacity, len(ATTRIBUTES), _SLOTS), -1, dtype=np.int32)
        weights = np.zeros((capacity, len(ATTRIBUTES), _SLOTS), dtype=np.float32)
        ids[: self.ids.shape[0]] = self.ids
        weights[: self.weights.shape[0]] = self.weights
        self.ids, self.weights = ids, weights

    def rescale(self, rows: IntArray, factor: float) -> None:
        """Multiply the decayed weights of ``rows`` after their stream was rebased."""
        self.weights[rows] *= np.float32(factor)

    def add(self, rows: IntArray, attrs: IntArray, vals: IntArray, weighted: FloatArray) -> None:
        """Merge one minute's decayed counts, one entry per distinct (row, attribute, value).

        Entries are sorted by (row, attribute, tie order); when several new values compete for
        the slots of a full sketch in one minute, the earlier entry goes first.
        """
        current = self.ids[rows, attrs]
        match = current == vals[:, None]
        matched = match.any(axis=1)
        if np.count_nonzero(matched):
            slot = match.argmax(axis=1)[matched]
            np.add.at(
                self.weights,
                (rows[matched], attrs[matched], slot),
                weighted[matched].astype(np.float32),
            )
        pending = ~matched
        while np.count_nonzero(pending):
            idx = np.flatnonzero(pending)
            keys = rows[idx] * len(ATTRIBUTES) + attrs[idx]
            _, first = np.unique(keys, return_index=True)
            take = idx[first]
            r, a = rows[take], attrs[take]
            slot = self.weights[r, a].argmin(axis=1)
            base = self.weights[r, a, slot]
            self.ids[r, a, slot] = vals[take]
            self.weights[r, a, slot] = base + weighted[take].astype(np.float32)
            pending[take] = False

    def merge_buffers(
        self,
        buffers: Sequence[Mapping[tuple[int, str, str, str], int]],
        row_weights: Mapping[int, float],
        intern: Callable[[str], int],
    ) -> None:
        """Merge closed minutes' ``(row, principal, user agent, error code) -> count`` buffers,
        each count times its row's weight; rows without a weight are not learned.

        Values are ranked by their text and interned (``intern``) in that order, so the
        sketches do not depend on the order in which values were first seen.
        """
        fast = self.kernels
        if fast is not None:
            weights = row_weights if type(row_weights) is dict else dict(row_weights)
            fast.merge_buffers(self.ids, self.weights, buffers, weights, intern)
            return
        slots = [
            (slot, count)
            for buffer in buffers
            for slot, count in buffer.items()
            if slot[0] in row_weights
        ]
        if not slots:
            return
        keys, counts = zip(*slots, strict=True)
        slot_rows, principals, agents, errors = zip(*keys, strict=True)
        weighted = list(map(operator.mul, counts, map(row_weights.__getitem__, slot_rows)))
        distinct = sorted({*principals, *agents, *errors})
        rank = {value: i for i, value in enumerate(distinct)}
        ranks = [list(map(rank.__getitem__, values)) for values in (principals, agents, errors)]
        self.merge_minute(slot_rows, ranks, weighted, list(map(intern, distinct)))

    def merge_minute(
        self,
        rows: Sequence[int],
        ranks: Sequence[Sequence[int]],
        weighted: Sequence[float],
        ids: Sequence[int] | None = None,
    ) -> None:
        """Merge one minute's decayed counts: entry ``i`` adds ``weighted[i]`` to the value
        ranked ``ranks[attr][i]`` of row ``rows[i]``, for every attribute ``attr``.

        Repeats of a (row, attribute, value) are summed in entry order. ``rank`` is the value
        id, or an index into ``ids`` when given: ranks then set the order in which new values
        compete for a full sketch, so callers can make it independent of the order in which
        values were first interned. Small minutes are summed in a dict, large ones with
        ``np.unique`` (whose fixed cost only pays off on hundreds of entries); both give the
        same sums. Given the C kernels, the whole merge runs in C with the same
        float32 arithmetic (tests compare the sketches bit for bit).
        """
        if not rows:
            return
        fast = self.kernels
        if fast is not None:
            fast.merge_minute(self.ids, self.weights, rows, ranks, weighted, ids)
            return
        if len(rows) * len(ranks) <= _DICT_MERGE_MAX:
            summed: dict[int, float] = {}
            get = summed.get
            for attr, attr_ranks in enumerate(ranks):
                bits = attr << _ATTR_SHIFT
                for row, rank, weight in zip(rows, attr_ranks, weighted, strict=True):
                    key = (row << _ROW_SHIFT) | bits | rank
                    summed[key] = get(key, 0.0) + weight
            order = sorted(summed)
            packed: IntArray = np.array(order, dtype=np.int64)
            sums: FloatArray = np.array([summed[key] for key in order], dtype=np.float64)
        else:
            row_bits = np.asarray(rows, dtype=np.int64) << _ROW_SHIFT
            every = np.concatenate(
                [
                    row_bits | (attr << _ATTR_SHIFT) | np.asarray(r, dtype=np.int64)
                    for attr, r in enumerate(ranks)
                ]
            )
            packed, inverse = np.unique(every, return_inverse=True)
            weights = np.tile(np.asarray(weighted, dtype=np.float64), len(ranks))
            sums = np.asarray(
                np.bincount(inverse.ravel(), weights=weights, minlength=packed.shape[0]),
                dtype=np.float64,
            )
        ranked = packed & _RANK_MASK
        vals = ranked if ids is None else np.asarray(ids, dtype=np.int64)[ranked]
        attrs = (packed >> _ATTR_SHIFT) & 0x3
        self.add(packed >> _ROW_SHIFT, attrs, vals.astype(np.int32), sums)

    def top(self, row: int, attr: int) -> list[tuple[int, float]]:
        """(value id, decayed weight) of a row's sketch for one attribute, heaviest first."""
        pairs = [
            (int(i), float(w))
            for i, w in zip(self.ids[row, attr], self.weights[row, attr], strict=True)
            if i >= 0 and w > 0
        ]
        return sorted(pairs, key=lambda p: (-p[1], p[0]))

    def baseline(
        self, row: int, minutes: float, names: Interner
    ) -> tuple[tuple[tuple[str, float], ...], ...]:
        """Each attribute's sketch of ``row`` as (value, average per minute of the baseline's
        ``minutes``), heaviest first: the baseline side of an insight's attributions."""
        total = max(minutes, 1e-12)
        out = []
        for attr in range(len(ATTRIBUTES)):
            pairs = [(names.value(v), w / total) for v, w in self.top(row, attr)]
            out.append(tuple(sorted(pairs, key=lambda p: (-p[1], p[0]))))
        return tuple(out)


@dataclass(slots=True)
class InsightAttribution:
    """Exact value counts over the minutes of one open insight."""

    counters: list[Counter[str]] = field(default_factory=lambda: [Counter() for _ in ATTRIBUTES])

    def add(self, principal: str, user_agent: str, error_code: str, count: int) -> None:
        """Count ``count`` events with these attribute values."""
        self.counters[0][principal] += count
        self.counters[1][user_agent] += count
        self.counters[2][error_code] += count

    def top(self, attr: int, minutes: int) -> list[tuple[str, float]]:
        """Top values of one attribute as (value, average per minute), heaviest first."""
        items = sorted(self.counters[attr].items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_N]
        return [(value, count / max(minutes, 1)) for value, count in items]
