"""The insight engine: CloudTrail events in, Insight records out.

Time comes only from the events. ``process`` is the hot path (a few dictionary operations per
event); all statistics run once per closed stream-minute, vectorized over the keys active in it
(see :mod:`insights.baselines` and :mod:`insights.detectors`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from insights import native, state
from insights.attribution import ATTRIBUTES, AttributionTable, Interner
from insights.baselines import (
    _RESCALE_EXPONENT,
    SCALES,
    BaselineTable,
    Expectation,
    RowClock,
    ScoredMinutes,
    StreamExposure,
)
from insights.codec import pack_array, unpack_array
from insights.config import EngineConfig
from insights.detectors import OpenInsight, OpenInsights, Seen, start_decisions
from insights.errors import StateDecodeError
from insights.events import CloudTrailEvent, RejectReason, is_read_only
from insights.records import InsightKey, InsightRecord
from insights.stats import nb_tail_score
from insights.timeparse import _SECONDS_Z, TimestampError, _minute_cache, parse_epoch_seconds
from insights.windows import DedupeWindow, MinuteBuffer, StreamState

__all__ = ["EngineStats", "InsightEngine", "KeyRate"]

logger = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
KeyTuple = tuple[str, str, str, str, str, str]
#: What an open insight observes of a step the C accelerator learned:
#: (index in the step, row, count, mu, dispersion per scale).
Observation = tuple[int, int, int, float, tuple[float, float, float]]
RouteKey = tuple[object, ...]

_CALL: Final = "ApiCallRateInsight"
_ERROR: Final = "ApiErrorRateInsight"
_API_EVENT_TYPES = frozenset({None, "AwsApiCall"})
#: Minutes of closed per-minute detail kept for attributing an insight's first minutes.
_LOOKBACK = max(SCALES) + 1
#: Events between two vectorized closing steps inside one ``process_many`` call.
DRAIN_EVERY = 4096
#: How far a stream's own clock must move on after its first held event to show that its
#: traffic still arrives on time (the held events are then rejected).
_ON_TIME_PROGRESS = 60
#: ``max_seen`` of a stream whose clock has not started (only held records so far): every
#: record of it takes the Python path, which starts the clock at its first on-time record.
_UNBORN = -(2**62)
#: The ``reject_after`` bound when none is set (later than any accepted timestamp).
_NO_HORIZON = 2**62
#: Bound of the cache of event shapes -> keys (cleared when full).
_MAX_ROUTES = 1 << 20
#: Empty minutes are accounted in pieces of at most this many half-lives (keeps weights finite).
_GAP_PIECE_HALF_LIVES = 20


@dataclass(slots=True)
class EngineStats:
    """Counters of what the engine did with its input."""

    events: int = 0
    analysed: int = 0
    not_analysed: int = 0
    duplicates: int = 0
    """Analysed events whose ``eventID`` was seen before (read-only calls without an error
    code count for no key, so they are never de-duplicated and their ids are not kept)."""
    late: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    insights_started: Counter[str] = field(default_factory=Counter)
    insights_ended: Counter[str] = field(default_factory=Counter)

    def copy(self) -> EngineStats:
        """An independent copy (to compute what changed since)."""
        return EngineStats(
            events=self.events,
            analysed=self.analysed,
            not_analysed=self.not_analysed,
            duplicates=self.duplicates,
            late=self.late,
            rejected=Counter(self.rejected),
            insights_started=Counter(self.insights_started),
            insights_ended=Counter(self.insights_ended),
        )

    def as_dict(self) -> dict[str, object]:
        """Plain-data view (for summaries and snapshots)."""
        return {
            "events": self.events,
            "analysed": self.analysed,
            "not_analysed": self.not_analysed,
            "duplicates": self.duplicates,
            "late": self.late,
            "rejected": dict(self.rejected),
            "insights_started": dict(self.insights_started),
            "insights_ended": dict(self.insights_ended),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EngineStats:
        """The counters :meth:`as_dict` gave."""
        return cls(
            events=d["events"],
            analysed=d["analysed"],
            not_analysed=d["not_analysed"],
            duplicates=d["duplicates"],
            late=d["late"],
            rejected=Counter(d["rejected"]),
            insights_started=Counter(d["insights_started"]),
            insights_ended=Counter(d["insights_ended"]),
        )


@dataclass(frozen=True, slots=True)
class KeyRate:
    """Current rate and baseline of one key (see :meth:`InsightEngine.rates`)."""

    key: InsightKey
    rate_per_minute: float
    baseline_per_minute: float
    in_insight: bool


class InsightEngine:
    """Detects unusual API call and error rates and emits AWS-format Insight records.

    Examples:
        >>> from insights.events import decode_message
        >>> engine = InsightEngine(EngineConfig(warmup_minutes=0))
        >>> line = (b'{"eventTime": "2024-07-10T01:42:07Z", "eventSource": "iam.amazonaws.com", '
        ...         b'"eventName": "CreateUser", "awsRegion": "us-east-1", '
        ...         b'"recipientAccountId": "1", "readOnly": false, "managementEvent": true}')
        >>> engine.process_many(decode_message(line).events)
        []
        >>> engine.stats.analysed
        1
    """

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.stats = EngineStats()
        cfg = self.config
        self._lateness = cfg.allowed_lateness_seconds
        self._jump = cfg.max_clock_jump_minutes * 60
        self._call_categories = cfg.categories_for(_CALL)
        self._error_categories = cfg.categories_for(_ERROR)
        self._thresholds = cfg.thresholds  # the config is frozen
        self._gap_piece = int(_GAP_PIECE_HALF_LIVES * cfg.baseline_half_life_minutes)
        self._table = BaselineTable(cfg.baseline_half_life_minutes, cfg.peak_half_life_minutes)
        self._attrs = AttributionTable()
        self._names = Interner()
        #: what the C closing step makes the arrays of a possible Start with
        self._step_tools = (
            np.empty,
            np.dtype(np.int64),
            np.dtype(np.float64),
            np.dtype(np.bool_),
        )
        self._rows: dict[KeyTuple, int] = {}
        self._keys: list[InsightKey] = []
        self._row_stream: list[StreamState] = []
        self._streams: dict[tuple[str, str], StreamState] = {}
        self._insights = OpenInsights(cfg)
        self._dedupe = DedupeWindow(cfg.dedupe_window_minutes, cfg.dedupe_max_ids)
        self._routes: dict[RouteKey, tuple[int, ...]] = {}
        self._due: dict[tuple[str, str], StreamState] = {}
        self._undrained = 0
        #: streams holding events (see :meth:`_hold`); a lower bound of the newest stream clock
        self._holding: set[StreamState] = set()
        self._newest_bound = 0
        #: see :meth:`reject_after`
        self._horizon = _NO_HORIZON
        self._rejected: list[CloudTrailEvent] = []
        self._keep_rejected = False

    # ------------------------------------------------------------------ hot path
    def process(self, event: CloudTrailEvent) -> list[InsightRecord]:
        """Process one event; return the Insight records it caused (usually none)."""
        return self.process_many((event,))

    def process_many(
        self,
        events: Iterable[CloudTrailEvent],
        *,
        drain: bool = True,
    ) -> list[InsightRecord]:
        """Process events in order; return the Insight records they caused.

        Minutes closed by these events are scored in vectorized steps every
        :data:`DRAIN_EVERY` events and at the end, so pass events in chunks (hundreds to
        thousands) rather than one by one for throughput; the insights are the same.

        With ``drain=False`` the step at the end is left out: closed minutes are scored once
        :data:`DRAIN_EVERY` events have arrived since the last step (counted across calls)
        or at the next :meth:`drain`. Callers that decode small chunks (whose events are still
        in the CPU cache when the engine reads them) use it to keep the steps large.

        Read-only calls without an error code (most of CloudTrail's volume) count for no key:
        they only move their stream's clock, so they skip de-duplication and routing.
        """
        if not isinstance(events, list):
            events = list(events)
        out: list[InsightRecord] = []
        begin, total = 0, len(events)
        while begin < total:
            end = min(total, begin + DRAIN_EVERY - self._undrained)
            self._process_slice(events[begin:end])
            self._undrained += end - begin
            begin = end
            if self._undrained >= DRAIN_EVERY:
                out.extend(self.drain())
        if drain:
            out.extend(self.drain())
        self.stats.events += total
        return out

    def drain(self) -> list[InsightRecord]:
        """Score every minute closed so far; return the Insight records that caused."""
        self._undrained = 0
        if self._holding:
            self._review_held()  # the other streams may have moved on
        return self._drain() if self._due else []

    def _process_slice(self, events: list[CloudTrailEvent]) -> None:
        """The per-event loop: in C when :mod:`insights.native` is built, else :meth:`_scan`.

        The C loop also does :meth:`_accept`'s work for events of a shape already routed, with
        nothing to evict from the dedupe window; it hands those to :meth:`_accept` and anything
        else unusual to :meth:`_scan_one`."""
        fast = native.module
        if fast is None:
            self._scan(events)
            return
        skipped, late, analysed, duplicates = fast.scan(
            events,
            self._streams,
            self._jump,
            self._lateness,
            self._accept,
            self._due,
            self._scan_one,
            self._dedupe,
            self._routes,
            self._horizon,
        )
        stats = self.stats
        stats.not_analysed += skipped
        stats.late += late
        stats.analysed += analysed
        stats.duplicates += duplicates

    def _scan_one(self, event: CloudTrailEvent) -> None:
        self._scan([event])

    def _scan(self, events: list[CloudTrailEvent]) -> None:
        """The per-event loop in Python: time, stream, and routing of each event (inlined)."""
        streams = self._streams
        jump = self._jump
        lateness = self._lateness
        horizon = self._horizon
        accept = self._accept
        minute_of = _minute_cache
        second_of = _SECONDS_Z
        skipped = 0
        late = 0
        for event in events:
            text = event.event_time
            if text is not None and len(text) == 20:
                minute = minute_of.get(text[:17])
                second = second_of.get(text[17:])
                seconds = (
                    minute * 60 + second
                    if minute is not None and second is not None
                    else self._seconds_of(event)
                )
            else:
                seconds = self._seconds_of(event)
            if seconds < 0:
                continue
            stream = streams.get((event.recipient_account_id, event.aws_region))  # type: ignore[arg-type]
            if stream is None:
                stream = self._first_of_stream(event, seconds)
                if stream is None:
                    continue
            elif seconds > stream.max_seen + jump or seconds > horizon:
                self._hold(stream, seconds, event)
                continue
            if event.read_only is True and event.error_code is None and event.event_name:
                if not event.event_source:
                    self.stats.rejected[RejectReason.MISSING_FIELD.value] += 1
                    continue
                if seconds // 60 < stream.closed_until:
                    late += 1
                    continue
                skipped += 1
                if seconds > stream.max_seen:
                    stream.max_seen = seconds
                    target = (seconds - lateness) // 60
                    if target > stream.closed_until:
                        self._schedule(stream, target)
            else:
                accept(stream, seconds, event)
        self.stats.not_analysed += skipped
        self.stats.late += late

    def _seconds_of(self, event: CloudTrailEvent) -> int:
        """Epoch seconds of an event off the fast path; -1 (and counted) when it has none."""
        text = event.event_time
        if text is None:
            text = event.at_timestamp or ""
        try:
            return parse_epoch_seconds(text)
        except TimestampError:
            self.stats.rejected[RejectReason.BAD_TIMESTAMP.value] += 1
            return -1

    def _accept(self, stream: StreamState, seconds: int, event: CloudTrailEvent) -> None:
        stats = self.stats
        minute = seconds // 60
        event_id = event.event_id
        if event_id is not None and self._dedupe.seen(event_id, minute):
            stats.duplicates += 1
            return
        if minute < stream.closed_until:
            stats.late += 1
            return
        route = (
            stream,
            event.event_source,
            event.event_name,
            event.error_code,
            event.read_only,
            event.management_event,
            event.event_category,
            event.event_type,
        )
        rows = self._routes.get(route)
        if rows is None:
            rows = self._route(stream, event, route)
            if rows is None:
                return
        if rows:
            stats.analysed += 1
            buffer = stream.pending.get(minute)
            if buffer is None:
                buffer = stream.pending[minute] = {}
            ident = event.user_identity
            principal = (
                "null"
                if ident is None
                else ident.arn or ident.invoked_by or ident.principal_id or "null"
            )
            agent = event.user_agent or "null"
            error = event.error_code or "null"
            for row in rows:
                slot = (row, principal, agent, error)
                buffer[slot] = buffer.get(slot, 0) + 1
        else:
            stats.not_analysed += 1
        if seconds > stream.max_seen:
            stream.max_seen = seconds
            target = (seconds - self._lateness) // 60
            if target > stream.closed_until:
                self._schedule(stream, target)

    def _route(
        self, stream: StreamState, event: CloudTrailEvent, route: RouteKey
    ) -> tuple[int, ...] | None:
        """The rows (keys) an event of this shape counts for, cached per shape; None if invalid."""
        if not event.event_source or not event.event_name:
            self.stats.rejected[RejectReason.MISSING_FIELD.value] += 1
            return None
        rows = tuple(self._keys_of(event, stream))
        if len(self._routes) >= _MAX_ROUTES:
            self._routes.clear()
        self._routes[route] = rows
        return rows

    def _keys_of(self, event: CloudTrailEvent, stream: StreamState) -> list[int]:
        if event.event_type not in _API_EVENT_TYPES:
            return []
        management = event.management_event
        if management is None:
            management = event.event_category != "Data"
        category = "Management" if management else "Data"
        rows: list[int] = []
        if category in self._call_categories and not is_read_only(event):
            rows.append(self._row(stream, event, _CALL, ""))
        error = event.error_code
        if error and category in self._error_categories:
            rows.append(self._row(stream, event, _ERROR, error))
        return rows

    def _row(self, stream: StreamState, event: CloudTrailEvent, kind: str, error: str) -> int:
        assert event.event_source is not None
        assert event.event_name is not None
        key = (stream.account, stream.region, event.event_source, event.event_name, kind, error)
        row = self._rows.get(key)
        if row is None:
            row = self._new_row(key, stream)
        return row

    def _new_row(self, key: KeyTuple, stream: StreamState) -> int:
        row = self._table.add_row()
        self._attrs.ensure(row + 1)
        self._rows[key] = row
        if key[4] == _CALL:
            insight_key = InsightKey(key[0], key[1], key[2], key[3], _CALL, key[5])
        else:
            insight_key = InsightKey(key[0], key[1], key[2], key[3], _ERROR, key[5])
        self._keys.append(insight_key)
        self._row_stream.append(stream)
        stream.rows.append(row)
        return row

    def _first_of_stream(self, event: CloudTrailEvent, seconds: int) -> StreamState | None:
        """A new stream for ``event``; None when the event was held (or rejected) instead.

        A first record far ahead of every other stream's clock does not start the stream's
        clock: it is held, and the clock starts at the first on-time record.
        """
        account, region = event.recipient_account_id, event.aws_region
        if not (account and region):
            self.stats.rejected[RejectReason.MISSING_FIELD.value] += 1
            return None
        if seconds > self._horizon:
            self._reject_future([event])
            return None
        # clocks only move on: most first records are within reach of the bound, no scan needed
        far = seconds > self._newest_bound + self._jump
        reference = self._other_clocks(None) if far else None
        stream = self._new_stream(account, region, seconds)
        if reference is None or seconds <= reference + self._jump:
            self._newest_bound = max(self._newest_bound, seconds)
            return stream
        stream.max_seen = _UNBORN
        self._hold(stream, seconds, event)
        return None

    def _start_clock(self, stream: StreamState, seconds: int) -> None:
        """Start an unborn stream's clock at ``seconds``, as :meth:`_new_stream` would have."""
        start = (seconds - self._lateness) // 60
        stream.exposure = StreamExposure(start, self.config.baseline_half_life_minutes)
        stream.first_minute = stream.closed_until = stream.next_close = start
        stream.max_seen = seconds

    def _new_stream(self, account: str, region: str, seconds: int) -> StreamState:
        start = (seconds - self._lateness) // 60
        stream = StreamState(
            account=account,
            region=region,
            exposure=StreamExposure(start, self.config.baseline_half_life_minutes),
            first_minute=start,
            max_seen=seconds,
            closed_until=start,
        )
        self._streams[(account, region)] = stream
        return stream

    # ------------------------------------------------------------------ clock jumps
    def _other_clocks(self, stream: StreamState | None) -> int | None:
        """The newest clock of the streams other than ``stream``; None when there is none."""
        newest = max(
            (
                s.max_seen
                for s in self._streams.values()
                if s is not stream and s.max_seen != _UNBORN
            ),
            default=None,
        )
        if newest is not None:
            self._newest_bound = max(self._newest_bound, newest)
        return newest

    def _hold(self, stream: StreamState, seconds: int, event: CloudTrailEvent) -> None:
        """Hold back an event far ahead of its stream's clock (see :mod:`insights.windows`).

        The rule: a few records cannot move a stream's clock while its own traffic keeps
        arriving. Held events are rejected as soon as the stream's clock moves on by
        :data:`_ON_TIME_PROGRESS` since the first of them; they move the stream only while it
        stalls, by numbers no small injection reaches (``jump_confirm_events`` distinct
        eventIDs) or vouched for by the other streams' clocks (:meth:`_vouched`). An event
        after the caller's bound (:meth:`reject_after`) is rejected at once.
        """
        if seconds > self._horizon:
            self._reject_future([event])
            return
        if stream.max_seen == _UNBORN:
            reference = self._other_clocks(stream)
            if reference is None or seconds <= reference + self._jump:
                # the stream's first on-time record: its clock starts here, with what it holds
                held, since = stream.held, stream.held_reference
                self._start_clock(stream, seconds)
                stream.held, stream.held_clock, stream.held_reference = held, seconds, since
                self._scan([event])
                return
        if stream.held and stream.max_seen - stream.held_clock >= _ON_TIME_PROGRESS:
            self._reject_held(stream, len(stream.held))
        if not stream.held:
            self._start_holding(stream)
        event_id = event.event_id
        if event_id is not None and any(e.event_id == event_id for _, e in stream.held):
            self.stats.duplicates += 1  # a copy cannot confirm its own record
            return
        stream.held.append((seconds, event))
        self._holding.add(stream)
        if len(stream.held) > 2 * self.config.jump_confirm_events:
            self._reject_held(stream, 1)  # the oldest: bounded memory per stream
        self._maybe_jump(stream)

    def _start_holding(self, stream: StreamState) -> None:
        stream.held_clock = stream.max_seen
        stream.held_reference = self._other_clocks(stream) or 0

    def _reject_held(self, stream: StreamState, count: int) -> None:
        self._reject_future([e for _, e in stream.held[:count]])
        del stream.held[:count]

    def _reject_future(self, events: list[CloudTrailEvent]) -> None:
        self.stats.rejected[RejectReason.FUTURE_TIMESTAMP.value] += len(events)
        if self._keep_rejected or self._horizon != _NO_HORIZON:
            self._rejected.extend(events)

    def keep_rejected(self) -> None:
        """Keep every event rejected as ``future_timestamp`` for :meth:`take_rejected`, with or
        without a bound (``replay --rejected``)."""
        self._keep_rejected = True

    def reject_after(self, seconds: int | None) -> None:
        """Reject events dated after ``seconds`` as ``future_timestamp`` (None: no bound).

        A caller with a clock it trusts sets it (the worker: its wall clock plus the allowed
        skew); the engine never reads a clock. While a bound is set, every event rejected as
        ``future_timestamp`` is kept for :meth:`take_rejected`.
        """
        self._horizon = _NO_HORIZON if seconds is None else seconds

    def take_rejected(self) -> list[CloudTrailEvent]:
        """The events rejected as ``future_timestamp`` since the last call (see
        :meth:`reject_after`), oldest first."""
        taken, self._rejected = self._rejected, []
        return taken

    def _review_held(self) -> None:
        """Re-judge the held events of every stream holding some (other clocks moved on)."""
        for stream in list(self._holding):
            if stream.held and stream.max_seen - stream.held_clock >= _ON_TIME_PROGRESS:
                self._reject_held(stream, len(stream.held))
            elif stream.held:
                self._maybe_jump(stream)
            if not stream.held:
                self._holding.discard(stream)

    def _maybe_jump(self, stream: StreamState, force: bool = False) -> None:
        """Move ``stream`` to its held events' time if the rule allows it (or ``force``)."""
        cfg = self.config
        held = sorted(stream.held, key=lambda p: p[0])
        pivot = held[len(held) // 2][0]
        agreeing = [(s, e) for s, e in held if abs(s - pivot) <= self._jump]
        distinct = sum(1 for _, e in agreeing if e.event_id is not None)
        if not (
            force
            or distinct >= cfg.jump_confirm_events
            or (distinct >= cfg.jump_vouched_events and self._vouched(stream, agreeing[-1][0]))
        ):
            return
        first = agreeing[0][0]
        earlier = [e for s, e in held if s < first]
        later = [(s, e) for s, e in held if s > agreeing[-1][0]]
        if earlier:
            self._reject_future(earlier)
        logger.debug(
            "stream %s/%s jumps forward to %d after %d held events",
            stream.account,
            stream.region,
            first,
            len(agreeing),
        )
        stream.held = []
        if stream.max_seen == _UNBORN:
            self._start_clock(stream, first)
        self._schedule(stream, (first - self._lateness) // 60)
        for held_seconds, held_event in agreeing:
            self._accept(stream, held_seconds, held_event)
        if later:  # beyond the new clock too: held again, from it
            stream.held = later
            self._start_holding(stream)

    def _vouched(self, stream: StreamState, newest: int) -> bool:
        """Whether another clock says the time of the held events (up to ``newest``) has come.

        It has when that clock was past them already (a replay whose other streams are ahead)
        or moved on to them while the stream stalled. A stream whose clock has not started, or
        an input that has shown no other stream (the first of a replay), has only its own
        agreeing records to go by: other streams are other clocks, and a log tree ordered by
        account or Region holds streams years apart.
        """
        other = self._other_clocks(stream)
        if other is None or stream.max_seen == _UNBORN:
            return True
        vouch = self.config.jump_vouch_seconds
        return other - newest >= vouch or (
            newest <= other and other - stream.held_reference >= vouch
        )

    # ------------------------------------------------------------------ minute closing
    def _schedule(self, stream: StreamState, target: int) -> None:
        """Close ``stream``'s minutes before ``target`` to new events; score them at the next drain.

        Closing is deferred so that the minutes of many streams are scored in one vectorized
        step. A stream's results do not depend on which other streams share its step.
        """
        if target > stream.closed_until:
            stream.closed_until = target
            self._due[(stream.account, stream.region)] = stream

    def _drain(self) -> list[InsightRecord]:
        """Score and learn every closed minute not yet processed, all streams in lock-step."""
        out: list[InsightRecord] = []
        # each due stream's pending minutes, newest first, taken when it first has a gap to skip
        # (no minute is added while draining)
        ahead: dict[tuple[str, str], list[int]] = {}
        fast = native.module
        while self._due:
            batch: list[tuple[StreamState, int, MinuteBuffer]]
            if fast is not None:  # the same round in C
                batch = fast.next_batch(
                    self._due, ahead, self._gap_piece, _RESCALE_EXPONENT, self._rebase_if_needed
                )
            else:
                batch = []
                for key, stream in list(self._due.items()):
                    minute = self._next_to_close(stream, ahead, key)
                    if minute is None:
                        del self._due[key]
                    else:
                        batch.append((stream, minute, stream.pending.pop(minute, {})))
            if batch:
                out.extend(self._close_batch(batch))
        return out

    def _next_to_close(
        self, stream: StreamState, ahead: dict[tuple[str, str], list[int]], key: tuple[str, str]
    ) -> int | None:
        """The next minute of ``stream`` that needs scoring; empty minutes are skipped cheaply.

        ``ahead`` holds the drain's sorted pending minutes of its streams (newest first)."""
        minute = stream.next_close
        target = stream.closed_until
        if minute < target and not stream.open_rows and minute not in stream.pending:
            pending = ahead.get(key)
            if pending is None:
                pending = ahead[key] = sorted(stream.pending, reverse=True)
            while pending and pending[-1] < minute:  # closed since (or behind next_close)
                pending.pop()
            gap_end = min(pending[-1], target) if pending else target
            self._skip_empty(stream, minute, gap_end)
            minute = stream.next_close = gap_end
        if minute >= target:
            return None
        stream.next_close = minute + 1
        return minute

    def _skip_empty(self, stream: StreamState, start: int, end: int) -> None:
        piece = self._gap_piece
        while start < end:
            stop = min(end, start + piece)
            self._rebase_if_needed(stream, stop)
            stream.exposure.add_minutes(start, stop)
            start = stop

    def _rebase_if_needed(self, stream: StreamState, minute: int) -> None:
        if not stream.exposure.needs_rescale(minute):
            return
        factor = stream.exposure.rebase(minute)
        rows = np.asarray(stream.rows, dtype=np.int64)
        self._table.rescale(rows, factor)
        self._attrs.rescale(rows, factor)

    def _close_batch(
        self, batch: list[tuple[StreamState, int, MinuteBuffer]]
    ) -> list[InsightRecord]:
        """Score, learn and decide one minute of each stream in ``batch``, vectorized over rows."""
        fast = native.module
        if fast is not None:
            done = fast.close_step(
                batch,
                self._table,
                self._attrs.ids,
                self._attrs.weights,
                self._names.id,
                self._thresholds.min_excess,
                self._thresholds.start_score,
                _RESCALE_EXPONENT,
                _LOOKBACK,
                self._step_tools,
            )
            if done is False:  # the whole step ran in C: nothing started, nothing open
                return []
            if isinstance(done, list):  # learned in C; the open insights observe here
                return self._observe_step(batch, done)
            if isinstance(done, tuple):  # scored in C: a Start is possible
                rows, counts, item, minute, planes, scratch, needed, scores = done
                scored = ScoredMinutes.from_planes(minute, planes, scratch, len(batch), needed)
                spans = None  # the rows of each stream-minute, where insights are open
                if any(stream.open_rows for stream, _, _ in batch):
                    spans = np.searchsorted(item, np.arange(len(batch) + 1)).tolist()
                return self._decide(batch, rows, counts, item, spans, scored, scores)
        row_list: list[int] = []
        count_list: list[int] = []
        item_list: list[int] = []
        bounds: list[int] = [0]
        for index, (stream, minute, buffer) in enumerate(batch):
            if stream.exposure.needs_rescale(minute + 1):
                self._rebase_if_needed(stream, minute + 1)
            active: dict[int, int] = dict.fromkeys(stream.open_rows, 0) if stream.open_rows else {}
            for (row, _p, _a, _e), count in buffer.items():
                active[row] = active.get(row, 0) + count
            for row in sorted(active):
                row_list.append(row)
                count_list.append(active[row])
            item_list.extend([index] * len(active))
            bounds.append(len(row_list))
        rows = np.array(row_list, dtype=np.int64)
        counts = np.array(count_list, dtype=np.float64)
        item = np.array(item_list, dtype=np.int64)
        scored = self._table.score_minutes(
            rows,
            counts,
            item,
            [s.exposure for s, _, _ in batch],
            [m for _, m, _ in batch],
            self._thresholds.min_excess,
        )
        scores = nb_tail_score(scored.window, scored.lam, scored.phi, where=scored.needed)
        return self._decide(batch, rows, counts, item, bounds, scored, scores)

    def _decide(
        self,
        batch: list[tuple[StreamState, int, MinuteBuffer]],
        rows: npt.NDArray[np.int64],
        counts: npt.NDArray[np.float64],
        item: npt.NDArray[np.int64],
        bounds: list[int] | None,
        scored: ScoredMinutes,
        scores: npt.NDArray[np.float64],
    ) -> list[InsightRecord]:
        """The rest of a step once it is scored: Starts, learning, sketches, open insights.

        ``bounds[i]:bounds[i + 1]`` are the rows of ``batch[i]``; None when no stream of the
        batch has open insights (the only reader)."""
        table = self._table
        thresholds = self._thresholds
        expected = scored.expected
        window, lam = scored.window, scored.lam
        open_rows = self._insights.open
        is_open = (
            np.array([r in open_rows for r in rows.tolist()], dtype=bool)
            if open_rows
            else np.zeros(len(rows), dtype=bool)
        )
        # most minutes have no score near the Start threshold: then the peaks are not needed
        decision = None
        if np.count_nonzero(scores >= thresholds.start_score):
            first = np.array([s.first_minute for s, _, _ in batch], dtype=np.int64)[item]
            warmed = scored.minute - first >= self.config.warmup_minutes
            decision = start_decisions(
                scores,
                window,
                lam,
                table.peaks(rows, scored.minute),
                ~is_open & warmed,
                thresholds,
            )
        guarded = is_open if decision is None else is_open | decision.mask
        table.learn_minutes(scored, rows, counts, scores, guarded)
        learned = ~guarded
        self._attrs.merge_buffers(
            [buffer for _, _, buffer in batch],
            dict(zip(rows[learned].tolist(), scored.decay[learned].tolist(), strict=True)),
            self._names.id,
        )
        records: list[InsightRecord] = []
        # the rows that start an insight, per stream-minute of the batch
        starts: dict[int, list[tuple[int, int, float]]] = {}
        if decision is not None:
            for i in np.flatnonzero(decision.mask).tolist():
                starts.setdefault(int(item[i]), []).append(
                    (i, int(decision.scale_index[i]), float(decision.score[i]))
                )
        for index, (stream, minute, buffer) in enumerate(batch):
            if stream.open_rows:  # before this minute's Starts: they are not open in it yet
                assert bounds is not None
                lo, hi = bounds[index], bounds[index + 1]
                records.extend(
                    self._observe_open(stream, minute, buffer, rows, lo, hi, counts, expected)
                )
            for i, scale_index, score in starts.get(index, ()):
                records.append(
                    self._start(
                        stream,
                        int(rows[i]),
                        minute,
                        buffer,
                        scale_index,
                        score,
                        float(expected.mu[i]),
                        float(expected.mean_rate[i]),
                    )
                )
            stream.remember(minute, buffer, _LOOKBACK)
        return records

    def _baseline_attributions(
        self, row: int, exposure: StreamExposure
    ) -> tuple[tuple[tuple[str, float], ...], ...]:
        total = max(exposure.total, 1e-12)
        out = []
        for attr in range(len(ATTRIBUTES)):
            pairs = [(self._names.value(v), w / total) for v, w in self._attrs.top(row, attr)]
            out.append(tuple(sorted(pairs, key=lambda p: (-p[1], p[0]))))
        return tuple(out)

    def _start(
        self,
        stream: StreamState,
        row: int,
        minute: int,
        buffer: MinuteBuffer,
        scale_index: int,
        score: float,
        mu: float,
        mean_rate: float,
    ) -> InsightRecord:
        attributions = self._baseline_attributions(row, stream.exposure)
        record = self._insights.start(
            stream,
            self._keys[row],
            row,
            minute,
            buffer,
            scale_index,
            score,
            mu,
            mean_rate,
            attributions,
        )
        self.stats.insights_started[record.key.insight_type] += 1
        return record

    def _observe_open(
        self,
        stream: StreamState,
        minute: int,
        buffer: MinuteBuffer,
        rows: IntArray,
        lo: int,
        hi: int,
        counts: FloatArray,
        expected: Expectation,
    ) -> list[InsightRecord]:
        """Feed the minute to ``stream``'s open insights (its rows are ``rows[lo:hi]``)."""
        if not stream.open_rows:
            return []
        index = {r: lo + i for i, r in enumerate(rows[lo:hi].tolist())}
        seen = []
        for row in sorted(stream.open_rows):
            i = index[row]
            phi = expected.phi[i]
            seen.append(
                (
                    row,
                    int(counts[i]),
                    float(expected.mu[i]),
                    (float(phi[0]), float(phi[1]), float(phi[2])),
                )
            )
        return self._observe(stream, minute, buffer, seen)

    def _observe_step(
        self, batch: list[tuple[StreamState, int, MinuteBuffer]], observed: list[Observation]
    ) -> list[InsightRecord]:
        """Feed a step the C accelerator learned to its open insights: ``observed`` holds
        (item, row, count, mu, phi per scale) of every open row, in the step's order."""
        records: list[InsightRecord] = []
        start = 0
        while start < len(observed):
            index = observed[start][0]
            end = start
            while end < len(observed) and observed[end][0] == index:
                end += 1
            stream, minute, buffer = batch[index]
            seen = [(row, count, mu, phi) for _, row, count, mu, phi in observed[start:end]]
            records.extend(self._observe(stream, minute, buffer, seen))
            start = end
        return records

    def _observe(
        self, stream: StreamState, minute: int, buffer: MinuteBuffer, seen: list[Seen]
    ) -> list[InsightRecord]:
        records = self._insights.observe(stream, minute, buffer, seen)
        for record in records:
            self.stats.insights_ended[record.key.insight_type] += 1
        return records

    def _end(
        self, stream: StreamState, insight: OpenInsight, minute: int, mu: float, reason: str
    ) -> InsightRecord:
        record = self._insights.end(stream, insight, minute, mu, reason)
        self.stats.insights_ended[record.key.insight_type] += 1
        return record

    # ------------------------------------------------------------------ end of input
    def flush(self) -> list[InsightRecord]:
        """Close every open minute and end every open insight (end of a finite input).

        Held-back far-future events that were never confirmed are rejected, except those of a
        stream whose clock never started (nothing of its own contradicts them).
        """
        lasts: list[tuple[StreamState, int]] = []
        for stream in list(self._streams.values()):
            if stream.max_seen == _UNBORN:
                self._maybe_jump(stream, force=True)
            if stream.held:
                self._reject_held(stream, len(stream.held))
            last = max([stream.max_seen // 60, *stream.pending]) + 1
            self._schedule(stream, last)
            lasts.append((stream, last))
        out = self._drain()
        for stream, last in lasts:
            for row in sorted(stream.open_rows):
                insight = self._insights.open[row]
                out.append(self._end(stream, insight, last - 1, 0.0, "end_of_input"))
        return out

    # ------------------------------------------------------------------ snapshots
    def save_state(self) -> bytes:
        """Versioned snapshot of the whole engine (see :mod:`insights.state`)."""
        return state.dump_engine(self.config, self.to_state())

    @classmethod
    def from_state(cls, data: bytes, config: EngineConfig | None = None) -> InsightEngine:
        """Engine restored from :meth:`save_state` output, under the same config."""
        engine = cls(config)
        parts = state.load_engine(engine.config, data)
        try:
            engine._load_parts(parts)
        except (KeyError, TypeError, ValueError) as exc:
            raise StateDecodeError(f"corrupt engine snapshot: {exc}") from exc
        return engine

    def to_state(self) -> dict[str, Any]:
        """The engine's parts as snapshot data (each part's own ``to_state``)."""
        size = self._table.size
        return {
            "table": {k: pack_array(v) for k, v in self._table.arrays().items()},
            "attr_ids": pack_array(self._attrs.ids[:size]),
            "attr_weights": pack_array(self._attrs.weights[:size]),
            "names": self._names.values(),
            "keys": [list(k.as_tuple()) for k in self._keys],
            "streams": [s.to_state() for s in self._streams.values()],
            **self._insights.to_state(),
            "dedupe": self._dedupe.to_state(),
            "stats": self.stats.as_dict(),
        }

    def _load_parts(self, doc: dict[str, Any]) -> None:
        """Take the parts :meth:`to_state` saved (into a freshly constructed engine)."""
        self._table.load_arrays({k: unpack_array(v) for k, v in doc["table"].items()})
        size = self._table.size
        self._attrs.ensure(max(size, 1))
        self._attrs.ids[:size] = unpack_array(doc["attr_ids"])
        self._attrs.weights[:size] = unpack_array(doc["attr_weights"])
        self._names = Interner(list(doc["names"]))
        self._keys = [InsightKey(*k) for k in doc["keys"]]
        self._rows = {k.as_tuple(): i for i, k in enumerate(self._keys)}
        half_life = self.config.baseline_half_life_minutes
        streams = [StreamState.from_state(s, half_life) for s in doc["streams"]]
        self._streams = {(s.account, s.region): s for s in streams}
        self._holding = {s for s in streams if s.held}
        # minutes closed but not yet scored when the snapshot was taken (drain=False)
        self._due = {(s.account, s.region): s for s in streams if s.next_close < s.closed_until}
        self._row_stream = [streams[0]] * len(self._keys) if streams else []
        for s in streams:
            for row in s.rows:
                self._row_stream[row] = s
        self._insights.load_state(doc, self._keys)
        self._dedupe.load_state(doc["dedupe"])
        self.stats = EngineStats.from_dict(doc["stats"])

    # ------------------------------------------------------------------ introspection
    @property
    def keys_tracked(self) -> int:
        """Number of baselines (keys) held."""
        return len(self._keys)

    @property
    def ids_remembered(self) -> int:
        """Event ids held for de-duplication (at most ``dedupe_max_ids``)."""
        return len(self._dedupe)

    @property
    def open_insights(self) -> int:
        """Number of insights started and not yet ended."""
        return len(self._insights)

    def rates(self, top_n: int = 20) -> list[KeyRate]:
        """Rate vs baseline of the keys that matter: every open insight's key, plus the ``top_n``
        busiest keys of the current hour (for "rate vs baseline" dashboards, bounded).

        The rate is the observed mean per minute over the closed minutes of the current hour
        (the counts as they came, not the winsorized ones the baseline learns); the baseline is
        the seasonal expectation for the stream's last closed minute.
        """
        table = self._table
        size = table.size
        if size == 0:
            return []
        hour = table.part_raw[:size, 1].astype(np.float64)
        chosen = set(self._insights.open)
        if top_n > 0:
            busiest = np.argsort(-hour, kind="stable")[:top_n]
            chosen.update(int(r) for r in busiest if hour[r] > 0)
        out: list[KeyRate] = []
        for row in sorted(chosen):
            stream = self._row_stream[row]
            minute = stream.next_close - 1
            rows = np.array([row], dtype=np.int64)
            expected = table.expect(rows, RowClock.single(stream.exposure, minute, 1))
            last = int(table.last_minute[row])
            same_hour = last >= 0 and last // 60 == minute // 60
            elapsed = minute % 60 + 1
            rate = float(hour[row]) / elapsed if same_hour else 0.0
            out.append(
                KeyRate(self._keys[row], rate, float(expected.mu[0]), row in self._insights.open)
            )
        return out

    def keys(self, start: int = 0) -> list[InsightKey]:
        """Tracked keys in the order they were first seen, from index ``start``."""
        return self._keys[start:]

    def newest_watermark(self) -> int | None:
        """The most advanced closed-minute watermark over all streams (epoch minute)."""
        return max((s.closed_until for s in self._streams.values()), default=None)

    def stream_spans(self) -> dict[tuple[str, str], int]:
        """Minutes of event time each (account, Region) stream has closed since its first."""
        return {
            key: max(stream.closed_until - stream.first_minute, 0)
            for key, stream in self._streams.items()
        }

    def watermarks(self) -> dict[tuple[str, str], int]:
        """Closed-minute watermark (epoch minute) of every (account, Region) stream."""
        return {key: stream.closed_until for key, stream in self._streams.items()}

    def watermark(self, account: str, region: str) -> int | None:
        """Closed-minute watermark (epoch minute) of a stream, or None if unknown."""
        stream = self._streams.get((account, region))
        return None if stream is None else stream.closed_until
