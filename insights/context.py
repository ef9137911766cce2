"""An insight's context: what the console draws beside its records.

For each insight the engine keeps its key's count per minute from up to
:data:`CONTEXT_BEFORE_MINUTES` before its first minute to :data:`CONTEXT_AFTER_MINUTES` after
its end, with the baseline's expectation and 2-sigma band per minute:

* minutes the open insight observed (from its detection on): the expectation and dispersion
  its End rule was computed from, minute by minute;
* every other minute (before the detection, and after the End): the baseline as it stood when
  the context was written, for that minute's hour-of-week slot (the seasonal mean and the
  minute scale's dispersion).

Counts before the detection come from the stream's retained minutes
(:meth:`insights.windows.StreamState.row_counts`), so the memory this costs is per stream-minute
(the rows active in it, for :data:`insights.windows.HISTORY_MINUTES`), not per key. A context is
issued at the Start, every :data:`CONTEXT_EVERY_MINUTES` while the insight is open, at the End,
and a last time (``final``) 30 minutes after the end; each issue replaces the one before it.
Contexts are deterministic: the same input gives the same contexts, in snapshots too.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
import numpy as np

from insights.baselines import BaselineTable, RowClock
from insights.exposure import daytypes
from insights.records import InsightKey, InsightRecord
from insights.timeparse import format_minute
from insights.windows import MinuteBuffer, StreamState

__all__ = [
    "CONTEXT_AFTER_MINUTES",
    "CONTEXT_BEFORE_MINUTES",
    "CONTEXT_EVERY_MINUTES",
    "ContextBook",
    "InsightContext",
]

CONTEXT_BEFORE_MINUTES = 360
CONTEXT_AFTER_MINUTES = 30
CONTEXT_EVERY_MINUTES = 10

Status = Literal["open", "ended", "final"]


@dataclass(slots=True)
class _Trace:
    """Per-minute numbers of one insight's context from ``first`` on."""

    first: int
    counts: list[int] = field(default_factory=list)
    expected: list[float] = field(default_factory=list)
    upper: list[float] = field(default_factory=list)
    lower: list[float] = field(default_factory=list)

    @property
    def following(self) -> int:
        """The first minute not in the trace yet."""
        return self.first + len(self.counts)

    def add(self, count: int, mu: float, phi: float) -> None:
        spread = 2.0 * math.sqrt(max(phi * mu, 0.0))
        self.counts.append(count)
        self.expected.append(round(mu, 6))
        self.upper.append(round(mu + spread, 6))
        self.lower.append(round(max(mu - spread, 0.0), 6))

    def to_state(self) -> list[Any]:
        return [self.first, self.counts, self.expected, self.upper, self.lower]

    @classmethod
    def from_state(cls, d: list[Any]) -> _Trace:
        first, counts, expected, upper, lower = d
        return cls(int(first), list(counts), list(expected), list(upper), list(lower))


@dataclass(frozen=True, slots=True)
class InsightContext:
    """One issue of an insight's context (:meth:`to_dict` is the file the console reads)."""

    shared_event_id: str
    key: InsightKey
    status: Status
    start_minute: int
    end_minute: int | None
    """The End's ``eventTime`` minute; None while the insight is open."""
    first_minute: int
    counts: tuple[int, ...]
    expected: tuple[float, ...]
    upper: tuple[float, ...]
    lower: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        key = self.key
        return {
            "sharedEventID": self.shared_event_id,
            "recipientAccountId": key.account,
            "awsRegion": key.region,
            "eventSource": key.event_source,
            "eventName": key.event_name,
            "insightType": key.insight_type,
            "errorCode": key.error_code or None,
            "status": self.status,
            "startTime": format_minute(self.start_minute),
            "endTime": None if self.end_minute is None else format_minute(self.end_minute),
            "firstMinute": format_minute(self.first_minute),
            "minutes": len(self.counts),
            "counts": list(self.counts),
            "expected": list(self.expected),
            "upper": list(self.upper),
            "lower": list(self.lower),
        }

    def to_json(self) -> bytes:
        return msgspec.json.encode(self.to_dict())


@dataclass(slots=True)
class _Insight:
    """An insight the book follows: open (``due`` None) or ended, waiting for its tail."""

    row: int
    key: InsightKey
    shared_event_id: str
    start_minute: int
    trace: _Trace
    end_minute: int | None = None

    def to_state(self) -> list[Any]:
        return [self.row, self.shared_event_id, self.start_minute, self.trace.to_state(),
                self.end_minute]  # fmt: skip


class ContextBook:
    """The contexts of the engine's open and recently ended insights (:mod:`insights.context`).

    The closing step calls :meth:`started`, :meth:`observed`, :meth:`ended`, :meth:`due` and
    :meth:`finish`; the engine hands :attr:`ready` out (when :attr:`keep` is set).
    """

    def __init__(self, table: BaselineTable) -> None:
        self._table = table
        #: open insights by row
        self.open: dict[int, _Insight] = {}
        #: ended insights waiting for their last minutes, by stream
        self.ending: dict[tuple[str, str], list[_Insight]] = {}
        self.ready: list[InsightContext] = []
        #: issue contexts (off by default: a caller that never takes them would keep them all)
        self.keep = False

    def started(
        self,
        stream: StreamState,
        row: int,
        record: InsightRecord,
        minute: int,
        buffer: MinuteBuffer,
    ) -> None:
        """A Start on ``row`` detected in ``minute`` (whose ``buffer`` is not retained yet)."""
        first = max(record.start_minute - CONTEXT_BEFORE_MINUTES, stream.first_minute)
        first = min(first, record.start_minute)
        insight = _Insight(row, record.key, record.shared_event_id, record.start_minute,
                           _Trace(first))  # fmt: skip
        self._fill(stream, insight, minute - 1, minute)
        now = sum(c for (r, _p, _a, _e), c in buffer.items() if r == row)
        self._fill_counts(stream, insight, [now], minute)
        self.open[row] = insight
        self._issue(insight, "open")

    def observed(self, stream: StreamState, minute: int, seen: list[Any]) -> None:
        """An observed minute of open insights: (row, count, mu, phi per scale) each."""
        for row, count, mu, phi in seen:
            insight = self.open.get(row)
            if insight is None:  # opened before contexts were kept (an older snapshot)
                continue
            self._fill(stream, insight, minute - 1, minute)
            insight.trace.add(count, mu, phi[0])
            if (minute + 1 - insight.start_minute) % CONTEXT_EVERY_MINUTES == 0:
                self._issue(insight, "open")

    def ended(self, stream: StreamState, records: list[InsightRecord]) -> None:
        """Issue the contexts of the insights that ``records`` (of ``stream``) end."""
        by_id = {i.shared_event_id: i for i in self.open.values()}
        for record in records:
            insight = by_id.get(record.shared_event_id) if record.state == "End" else None
            if insight is None:
                continue
            del self.open[insight.row]
            insight.end_minute = record.event_minute
            self._issue(insight, "ended")
            self.ending.setdefault((stream.account, stream.region), []).append(insight)

    def due(self, streams: list[tuple[StreamState, int]]) -> None:
        """Issue the final contexts whose tail the closed ``(stream, minute)`` completed."""
        for stream, minute in streams:
            waiting = self.ending.get((stream.account, stream.region))
            if waiting:
                self._complete(stream, waiting, minute, False)

    def finish(self, streams: list[tuple[StreamState, int]]) -> None:
        """At the end of a finite input: every ended insight's final context, with the
        minutes there are (``streams``: each stream and the minute after its last)."""
        for stream, after in streams:
            waiting = self.ending.get((stream.account, stream.region))
            if waiting:
                self._complete(stream, waiting, after - 1, True)

    def _complete(
        self, stream: StreamState, waiting: list[_Insight], minute: int, all_: bool
    ) -> None:
        keep = []
        for insight in waiting:
            assert insight.end_minute is not None
            last = insight.end_minute + CONTEXT_AFTER_MINUTES - 1
            if minute < last and not all_:
                keep.append(insight)
                continue
            self._fill(stream, insight, min(minute, last), minute)
            self._issue(insight, "final")
        if keep:
            waiting[:] = keep
        else:
            del self.ending[(stream.account, stream.region)]

    def _fill(self, stream: StreamState, insight: _Insight, last: int, now: int) -> None:
        """Add the retained counts of the minutes up to ``last`` (expectations as of ``now``)."""
        first = insight.trace.following
        if last >= first:
            self._fill_counts(stream, insight, stream.row_counts(insight.row, first, last), now)

    def _fill_counts(
        self, stream: StreamState, insight: _Insight, counts: list[int], now: int
    ) -> None:
        """Add ``counts`` from the trace's next minute on, with the baseline's expectation for
        each minute's slot as of ``now``."""
        n = len(counts)
        minutes = np.arange(insight.trace.following, insight.trace.following + n, dtype=np.int64)
        clock = RowClock.single(stream.exposure, now, n)
        kinds = daytypes(minutes)
        clock = dataclasses.replace(clock, slot=kinds * 24 + (minutes // 60) % 24, daytype=kinds)
        expected = self._table.expect(np.full(n, insight.row, dtype=np.int64), clock)
        for count, mu, phi in zip(
            counts, expected.mu.tolist(), expected.phi[:, 0].tolist(), strict=True
        ):
            insight.trace.add(count, mu, phi)

    def _issue(self, insight: _Insight, status: Status) -> None:
        if not self.keep:
            return
        t = insight.trace
        self.ready.append(
            InsightContext(
                shared_event_id=insight.shared_event_id,
                key=insight.key,
                status=status,
                start_minute=insight.start_minute,
                end_minute=insight.end_minute,
                first_minute=t.first,
                counts=tuple(t.counts),
                expected=tuple(t.expected),
                upper=tuple(t.upper),
                lower=tuple(t.lower),
            )
        )

    def take(self) -> list[InsightContext]:
        """The contexts issued since the last call."""
        out, self.ready = self.ready, []
        return out

    def to_state(self) -> dict[str, Any]:
        return {
            "open": [i.to_state() for i in self.open.values()],
            "ending": [i.to_state() for w in self.ending.values() for i in w],
        }

    def load_state(self, doc: dict[str, Any], keys: list[InsightKey]) -> None:
        """Take what :meth:`to_state` saved; ``keys`` are the engine's, by row."""
        self.open.clear()
        self.ending.clear()
        for row, sid, start, trace, _end in doc.get("open", []):
            self.open[row] = _Insight(row, keys[row], sid, start, _Trace.from_state(trace))
        for row, sid, start, trace, end in doc.get("ending", []):
            key = keys[row]
            insight = _Insight(row, key, sid, start, _Trace.from_state(trace), end)
            self.ending.setdefault((key.account, key.region), []).append(insight)
