"""The insight engine: CloudTrail events in, Insight records out.

Time comes only from the events. ``process`` is the hot path (a few dictionary operations per
event); all statistics run once per closed stream-minute, vectorized over the keys active in it
(see :mod:`insights.baselines` and :mod:`insights.detectors`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from insights import native, state
from insights.attribution import AttributionTable, Interner
from insights.baselines import BaselineTable, RowClock
from insights.clocks import StreamClocks
from insights.closing import MinuteCloser
from insights.codec import pack_array, unpack_array
from insights.config import EngineConfig
from insights.counters import EngineStats
from insights.detectors import OpenInsights
from insights.errors import InsightsConfigError, StateDecodeError
from insights.events import CloudTrailEvent, RejectReason
from insights.records import InsightKey, InsightRecord
from insights.routing import Router
from insights.timeparse import _SECONDS_Z, TimestampError, _minute_cache, parse_epoch_seconds
from insights.windows import DedupeWindow, StreamState

__all__ = ["EngineStats", "InsightEngine", "KeyRate"]

logger = logging.getLogger(__name__)


#: Events between two vectorized closing steps inside one ``process_many`` call.
DRAIN_EVERY = 4096


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
        >>> from insights.decoding import decode_message
        >>> engine = InsightEngine(EngineConfig(warmup_minutes=0))
        >>> line = (b'{"eventTime": "2024-07-10T01:42:07Z", "eventSource": "iam.amazonaws.com", '
        ...         b'"eventName": "CreateUser", "awsRegion": "us-east-1", '
        ...         b'"recipientAccountId": "1", "readOnly": false, "managementEvent": true}')
        >>> engine.process_many(decode_message(line).events)
        []
        >>> engine.stats.analysed
        1
    """

    def __init__(
        self, config: EngineConfig | None = None, *, accelerated: bool | None = None
    ) -> None:
        """``accelerated``: run the C kernels (True: they must be built), not (False), or
        when they are built (None). The output is the same bits either way."""
        self.config = config or EngineConfig()
        self.stats = EngineStats()
        cfg = self.config
        if accelerated and native.module is None:
            raise InsightsConfigError("the C accelerator is not built (or not usable here)")
        kernels = None if accelerated is False else native.module
        self._kernels = kernels
        self._lateness = cfg.allowed_lateness_seconds
        self._table = BaselineTable(
            cfg.baseline_half_life_minutes, cfg.peak_half_life_minutes, kernels=kernels
        )
        self._attrs = AttributionTable(kernels=kernels)
        self._names = Interner()
        self._router = Router(cfg, self.stats, self._table, self._attrs)
        self._clocks = StreamClocks(cfg, self.stats, self._accept, self._scan)
        self._insights = OpenInsights(cfg)
        self._closer = MinuteCloser(
            cfg,
            self.stats,
            self._table,
            self._attrs,
            self._names,
            self._router,
            self._clocks,
            self._insights,
        )
        self._dedupe = DedupeWindow(cfg.dedupe_window_minutes, cfg.dedupe_max_ids)
        self._undrained = 0
        #: each insight's counts and expectations around it: ``contexts.take()`` after each call
        self.contexts = self._closer.contexts

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
        clocks = self._clocks
        if clocks.holding:
            clocks.review_held()  # the other streams may have moved on
        return self._closer.drain() if clocks.due else []

    def keep_rejected(self) -> None:
        """Keep every event rejected as ``future_timestamp`` for :meth:`take_rejected`, with or
        without a bound (``replay --rejected``)."""
        self._clocks.keep_rejected()

    def reject_after(self, seconds: int | None) -> None:
        """Reject events dated after ``seconds`` as ``future_timestamp`` (None: no bound).

        A caller with a clock it trusts sets it (the worker: its wall clock plus the allowed
        skew); the engine never reads a clock. While a bound is set, every event rejected as
        ``future_timestamp`` is kept for :meth:`take_rejected`.
        """
        self._clocks.reject_after(seconds)

    def take_rejected(self) -> list[CloudTrailEvent]:
        """The events rejected as ``future_timestamp`` since the last call (see
        :meth:`reject_after`), oldest first."""
        return self._clocks.take_rejected()

    def _process_slice(self, events: list[CloudTrailEvent]) -> None:
        """The per-event loop: in C when the engine runs the C kernels, else :meth:`_scan`.

        The C loop also does :meth:`_accept`'s work for events of a shape already routed, with
        nothing to evict from the dedupe window; it hands those to :meth:`_accept` and anything
        else unusual to :meth:`_scan_one`."""
        fast = self._kernels
        if fast is None:
            self._scan(events)
            return
        clocks = self._clocks
        skipped, late, analysed, duplicates = fast.scan(
            events,
            clocks.streams,
            clocks.jump,
            self._lateness,
            self._accept,
            clocks.due,
            self._scan_one,
            self._dedupe,
            self._router.routes,
            clocks.horizon,
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
        clocks = self._clocks
        streams = clocks.streams
        jump = clocks.jump
        lateness = self._lateness
        horizon = clocks.horizon
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
                stream = clocks.first_of_stream(event, seconds)
                if stream is None:
                    continue
            elif seconds > stream.max_seen + jump or seconds > horizon:
                clocks.hold(stream, seconds, event)
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
                        clocks.schedule(stream, target)
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
        rows = self._router.routes.get(route)
        if rows is None:
            rows = self._router.route(stream, event, route)
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
                self._clocks.schedule(stream, target)

    # ------------------------------------------------------------------ end of input
    def flush(self) -> list[InsightRecord]:
        """Close every open minute and end every open insight (end of a finite input).

        Held-back far-future events that were never confirmed are rejected, except those of a
        stream whose clock never started (nothing of its own contradicts them).
        """
        lasts = self._clocks.close_all()
        return self._closer.drain() + self._closer.finish(lasts)

    # ------------------------------------------------------------------ snapshots
    def save_state(self) -> bytes:
        """Versioned snapshot of the whole engine (see :mod:`insights.state`)."""
        return state.dump_engine(self.config, self.to_state())

    @classmethod
    def from_state(
        cls, data: bytes, config: EngineConfig | None = None, *, accelerated: bool | None = None
    ) -> InsightEngine:
        """Engine restored from :meth:`save_state` output, under the same config."""
        engine = cls(config, accelerated=accelerated)
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
            "keys": self._router.to_state(),
            "streams": self._clocks.to_state(),
            **self._insights.to_state(),
            "dedupe": self._dedupe.to_state(),
            **({"drops": self._closer.drops.to_state()} if self._closer.drops else {}),
            "contexts": self.contexts.to_state(),
            "stats": self.stats.as_dict(),
        }

    def _load_parts(self, doc: dict[str, Any]) -> None:
        """Take the parts :meth:`to_state` saved (into a freshly constructed engine)."""
        self._table.load_arrays({k: unpack_array(v) for k, v in doc["table"].items()})
        size = self._table.size
        self._attrs.ensure(max(size, 1))
        self._attrs.ids[:size] = unpack_array(doc["attr_ids"])
        self._attrs.weights[:size] = unpack_array(doc["attr_weights"])
        self._names.load(doc["names"])
        streams = self._clocks.load_state(doc["streams"])
        self._router.load_state(doc["keys"], streams)
        self._insights.load_state(doc, self._router.keys)
        self._dedupe.load_state(doc["dedupe"])
        self.contexts.load_state(doc.get("contexts", {}), self._router.keys)
        if self._closer.drops is not None:
            self._closer.drops.load_state(doc.get("drops", {}), self._router.keys)
        self.stats.load(doc["stats"])

    # ------------------------------------------------------------------ introspection
    @property
    def keys_tracked(self) -> int:
        """Number of baselines (keys) held."""
        return len(self._router.keys)

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
            stream = self._router.row_stream[row]
            minute = stream.next_close - 1
            rows = np.array([row], dtype=np.int64)
            expected = table.expect(rows, RowClock.single(stream.exposure, minute, 1))
            last = int(table.last_minute[row])
            same_hour = last >= 0 and last // 60 == minute // 60
            elapsed = minute % 60 + 1
            rate = float(hour[row]) / elapsed if same_hour else 0.0
            key, in_insight = self._router.keys[row], row in self._insights.open
            out.append(KeyRate(key, rate, float(expected.mu[0]), in_insight))
        return out

    def keys(self, start: int = 0) -> list[InsightKey]:
        """Tracked keys in the order they were first seen, from index ``start``."""
        return self._router.keys[start:]

    def newest_watermark(self) -> int | None:
        """The most advanced closed-minute watermark over all streams (epoch minute)."""
        return max((s.closed_until for s in self._clocks.streams.values()), default=None)

    def stream_spans(self) -> dict[tuple[str, str], int]:
        """Minutes of event time each (account, Region) stream has closed since its first."""
        return {
            key: max(stream.closed_until - stream.first_minute, 0)
            for key, stream in self._clocks.streams.items()
        }

    def watermarks(self) -> dict[tuple[str, str], int]:
        """Closed-minute watermark (epoch minute) of every (account, Region) stream."""
        return {key: stream.closed_until for key, stream in self._clocks.streams.items()}

    def watermark(self, account: str, region: str) -> int | None:
        """Closed-minute watermark (epoch minute) of a stream, or None if unknown."""
        stream = self._clocks.streams.get((account, region))
        return None if stream is None else stream.closed_until
