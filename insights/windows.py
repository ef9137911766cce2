"""Event-time windows: per-stream minute buckets, watermark, lateness, clock jumps, dedupe.

A *stream* is one (account, Region): CloudTrail delivers each Region's files on its own, so each
stream has its own watermark. The watermark of a stream is ``max event time seen - allowed
lateness``; a minute is *closed* (counted, scored, learned) once the watermark passes its end.
Events for a closed minute are *late*: they are counted and not analysed.

An event more than ``max_clock_jump_minutes`` ahead of its stream is held back, not trusted: a
few records dated ahead must not move time while the stream's own traffic keeps arriving. The
held events move the stream to their time (a replay crossing a real gap in the logs, a quiet
Region waking up) only when the stream's clock has stalled since the first of them and either
``jump_confirm_events`` distinct eventIDs are held, or ``jump_vouched_events`` agreeing ones
that the engine's other streams vouch for (their clock is ``jump_vouch_seconds`` past them, or
moved on that far meanwhile). Once the stream's own clock moves on instead, the held events are
rejected as ``future_timestamp`` (see :meth:`insights.clocks.StreamClocks.hold`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from insights.baselines import StreamExposure
from insights.codec import pack_array, unpack_array
from insights.events import CloudTrailEvent

__all__ = ["HISTORY_MINUTES", "AttrKey", "DedupeWindow", "MinuteBuffer", "StreamState"]

Int32Array = npt.NDArray[np.int32]
#: Minutes of per-row counts kept once a minute's detail is dropped: an insight's context shows
#: 6 h before its first minute, which comes up to an hour before it is detected.
HISTORY_MINUTES = 7 * 60
#: Minutes retired from the look-back together (the look-back holds up to this many more;
#: ``csrc/native.h`` has the same number).
RETIRE_EVERY = 30

#: (row, principal, user agent, error code) -> count, for one stream-minute.
AttrKey = tuple[int, str, str, str]
MinuteBuffer = dict[AttrKey, int]


@dataclass(slots=True, eq=False)
class StreamState:
    """Clock and open minutes of one (account, Region) stream."""

    account: str
    region: str
    exposure: StreamExposure
    first_minute: int
    max_seen: int
    closed_until: int
    """Minutes before this are closed to new events (the watermark)."""
    next_close: int = -1
    """First minute not yet scored and learned (``<= closed_until``; closing is batched)."""
    rows: list[int] = field(default_factory=list)
    pending: dict[int, MinuteBuffer] = field(default_factory=dict)
    recent: dict[int, MinuteBuffer] = field(default_factory=dict)
    held: list[tuple[int, CloudTrailEvent]] = field(default_factory=list)
    held_clock: int = 0
    """``max_seen`` when the first held event arrived (the stall is measured from it)."""
    held_reference: int = 0
    """The other streams' newest clock when the first held event arrived (-1 until the next
    review of held events takes it: :class:`insights.clocks.StreamClocks`)."""
    open_rows: set[int] = field(default_factory=set)
    history: list[tuple[Int32Array, Int32Array, Int32Array]] = field(default_factory=list)
    """Blocks of minutes retired from ``recent``, oldest first: (minute, row, count) of each
    entry of their buffers (a row's count in a minute is the sum of its entries), in minute
    order."""

    def __post_init__(self) -> None:
        if self.next_close < 0:
            self.next_close = self.closed_until

    def to_state(self) -> dict[str, Any]:
        """The stream as snapshot data (:meth:`from_state` reads it back)."""
        exposure = self.exposure
        assert exposure.slots is not None
        return {
            "account": self.account,
            "region": self.region,
            "exposure": [exposure.ref_minute, exposure.total, pack_array(exposure.slots)],
            "first_minute": self.first_minute,
            "max_seen": self.max_seen,
            "closed_until": self.closed_until,
            "next_close": self.next_close,
            "rows": self.rows,
            "pending": {str(m): _buffer_state(b) for m, b in self.pending.items()},
            "recent": {str(m): _buffer_state(b) for m, b in self.recent.items()},
            "held": [[sec, msgspec.json.encode(ev)] for sec, ev in self.held],
            "held_since": [self.held_clock, self.held_reference],
            "open_rows": sorted(self.open_rows),
            "history": [[pack_array(a) for a in block] for block in self.history],
        }

    @classmethod
    def from_state(cls, d: dict[str, Any], half_life: float) -> StreamState:
        """The stream :meth:`to_state` saved, its exposure decaying with ``half_life``."""
        ref, total, slots = d["exposure"]
        held_since = d.get("held_since", (0, 0))
        return cls(
            account=d["account"],
            region=d["region"],
            exposure=StreamExposure(int(ref), half_life, float(total), unpack_array(slots)),
            first_minute=d["first_minute"],
            max_seen=d["max_seen"],
            closed_until=d["closed_until"],
            next_close=d.get("next_close", -1),
            rows=list(d["rows"]),
            pending={int(m): _buffer_of(b) for m, b in d["pending"].items()},
            recent={m: _buffer_of(d["recent"][str(m)]) for m in sorted(map(int, d["recent"]))},
            held=[
                (int(sec), msgspec.json.decode(raw, type=CloudTrailEvent)) for sec, raw in d["held"]
            ],
            held_clock=int(held_since[0]),
            held_reference=int(held_since[1]),
            open_rows=set(d["open_rows"]),
            history=[
                (unpack_array(m), unpack_array(r), unpack_array(c))
                for m, r, c in d.get("history", [])
            ],
        )

    def remember(self, minute: int, buffer: MinuteBuffer, lookback: int) -> None:
        """Keep a closed minute's buffer for attribution look-back; retire old ones."""
        recent = self.recent
        if buffer:
            recent[minute] = buffer
        # minutes are remembered in closing (increasing) order: the oldest come first
        if recent and next(iter(recent)) <= minute - lookback - RETIRE_EVERY:
            self.retire(minute - lookback)

    def retire(self, cutoff: int) -> None:
        """Take the buffers of minutes at or before ``cutoff`` out of ``recent``, once they
        span :data:`RETIRE_EVERY` minutes (one block for many minutes): principals, agents and
        errors are dropped, each entry's row and count stay in ``history`` for
        :data:`HISTORY_MINUTES` (what an insight's context shows of the hours before it)."""
        recent = self.recent
        if not recent or next(iter(recent)) > cutoff - RETIRE_EVERY:
            return
        minutes: list[int] = []
        rows: list[int] = []
        counts: list[int] = []
        for minute in [m for m in recent if m <= cutoff]:  # in closing (increasing) order
            buffer = recent.pop(minute)
            minutes += [minute] * len(buffer)
            rows += [key[0] for key in buffer]
            counts += buffer.values()
        block = (minutes, rows, counts)
        self.history.append(tuple(np.array(a, dtype=np.int32) for a in block))  # type: ignore[arg-type]
        horizon = cutoff - HISTORY_MINUTES
        while self.history and int(self.history[0][0][-1]) <= horizon:
            del self.history[0]

    def row_counts(self, row: int, first: int, last: int) -> list[int]:
        """``row``'s count in each closed minute of ``[first, last]`` that ``recent`` or
        ``history`` still holds (0 elsewhere)."""
        out = [0] * (last - first + 1)
        for minutes, rows, counts in self.history:
            if minutes[-1] < first or minutes[0] > last:
                continue
            hit = (rows == row) & (minutes >= first) & (minutes <= last)
            for minute, count in zip(minutes[hit].tolist(), counts[hit].tolist(), strict=True):
                out[minute - first] += count
        for minute, buffer in self.recent.items():
            if first <= minute <= last:
                out[minute - first] = sum(c for (r, _p, _a, _e), c in buffer.items() if r == row)
        return out

    def row_minutes(
        self, row: int, first: int, last: int, current: tuple[int, MinuteBuffer]
    ) -> dict[int, list[tuple[str, str, str, int]]]:
        """Per minute in ``[first, last]``: the (principal, agent, error, count) of ``row``."""
        out: dict[int, list[tuple[str, str, str, int]]] = defaultdict(list)
        sources = [(m, b) for m, b in self.recent.items() if first <= m <= last]
        sources.append(current)
        for minute, buffer in sources:
            if not first <= minute <= last:
                continue
            for (r, principal, agent, error), count in buffer.items():
                if r == row:
                    out[minute].append((principal, agent, error, count))
        return out


class DedupeWindow:
    """Remembers event ids for ``window`` minutes of event time (and at most ``max_ids``).

    Examples:
        >>> d = DedupeWindow(window=10, max_ids=100)
        >>> d.seen("a", 1), d.seen("a", 2), d.seen("b", 2)
        (False, True, False)
        >>> d.seen("a", 30)  # forgotten after the window
        False

    Its three fields are its whole state and its contract with the C scan, which updates them
    by the same rules as :meth:`seen` and hands the window back to it when it is full:
    ``ids`` (every remembered id), ``by_minute`` (the ids of each minute, in arrival order) and
    ``newest`` (the newest minute seen, -1 before any).
    """

    def __init__(self, window: int, max_ids: int) -> None:
        self.window = window
        self.max_ids = max_ids
        self.ids: set[str] = set()
        self.by_minute: dict[int, list[str]] = {}
        self.newest = -1

    def seen(self, event_id: str, minute: int) -> bool:
        """Return True if ``event_id`` was seen; otherwise remember it and return False."""
        if minute > self.newest:
            self.newest = minute
            self._evict(minute - self.window)
        if event_id in self.ids:
            return True
        if self.max_ids <= 0:
            return False
        self.ids.add(event_id)
        bucket = self.by_minute.get(minute)
        if bucket is None:
            self.by_minute[minute] = bucket = []
        bucket.append(event_id)
        if len(self.ids) > self.max_ids:
            self._evict_oldest()
        return False

    def _evict(self, before: int) -> None:
        for old in [m for m in self.by_minute if m < before]:
            self.ids.difference_update(self.by_minute.pop(old))

    def _evict_oldest(self) -> None:
        while len(self.ids) > self.max_ids and self.by_minute:
            oldest = min(self.by_minute)
            self.ids.difference_update(self.by_minute.pop(oldest))

    def to_state(self) -> dict[str, object]:
        """Plain-data snapshot."""
        return {"newest": self.newest, "by_minute": dict(self.by_minute)}

    def load_state(self, state: dict[str, object]) -> None:
        """Restore from :meth:`to_state` output."""
        newest = state["newest"]
        by_minute = state["by_minute"]
        assert isinstance(newest, int)
        assert isinstance(by_minute, dict)
        self.newest = newest
        self.by_minute = {int(m): list(ids) for m, ids in by_minute.items()}
        self.ids = {i for ids in self.by_minute.values() for i in ids}

    def __len__(self) -> int:
        return len(self.ids)


def _buffer_state(b: MinuteBuffer) -> list[list[Any]]:
    return [[row, p, a, e, c] for (row, p, a, e), c in b.items()]


def _buffer_of(items: list[list[Any]]) -> MinuteBuffer:
    return {(int(r), str(p), str(a), str(e)): int(c) for r, p, a, e, c in items}
