"""Stream clocks: each (account, Region) stream's event-time clock, and the records held back.

A stream's clock is the newest event time it has seen (``max_seen``); its minutes close
``allowed_lateness_seconds`` behind it. A few records far ahead of the clock cannot move it while
the stream's own traffic keeps arriving (see :meth:`StreamClocks.hold`): they are held, and then
rejected as ``future_timestamp`` or, when enough of them agree or other clocks vouch for them,
they move the clock. Time comes only from the events; a caller with a clock it trusts may set a
bound (:meth:`StreamClocks.reject_after`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from insights.baselines import StreamExposure
from insights.config import EngineConfig
from insights.counters import EngineStats
from insights.events import CloudTrailEvent, RejectReason
from insights.windows import StreamState

__all__ = ["StreamClocks"]

logger = logging.getLogger(__name__)

#: How far a stream's own clock must move on after its first held event to show that its
#: traffic still arrives on time (the held events are then rejected).
_ON_TIME_PROGRESS = 60
#: ``max_seen`` of a stream whose clock has not started (only held records so far): every
#: record of it takes the Python path, which starts the clock at its first on-time record.
UNBORN = -(2**62)
#: The ``reject_after`` bound when none is set (later than any accepted timestamp).
NO_HORIZON = 2**62
#: ``held_reference`` not taken yet: the next :meth:`StreamClocks.review_held` takes it (finding
#: the newest other clock costs a pass over every stream; a review makes one for all).
_PENDING = -1

StreamKey = tuple[str, str]
Accept = Callable[[StreamState, int, CloudTrailEvent], None]
Rescan = Callable[[list[CloudTrailEvent]], None]


class StreamClocks:
    """The streams, their clocks, the minutes due for closing and the records held back.

    ``accept`` takes a record the clocks let in after all (a confirmed jump); ``rescan`` runs
    a record through the engine again (the first on-time record of a stream that was held).
    """

    def __init__(
        self, config: EngineConfig, stats: EngineStats, accept: Accept, rescan: Rescan
    ) -> None:
        self.config = config
        self.stats = stats
        self.lateness = config.allowed_lateness_seconds
        self.jump = config.max_clock_jump_minutes * 60
        self._accept = accept
        self._rescan = rescan
        self.streams: dict[StreamKey, StreamState] = {}
        #: streams with closed minutes not scored yet (the closing step takes them)
        self.due: dict[StreamKey, StreamState] = {}
        #: streams holding events (see :meth:`hold`)
        self.holding: set[StreamState] = set()
        #: a lower bound of the newest stream clock
        self._newest_bound = 0
        #: during :meth:`review_held`: the newest clock, its stream, the second newest
        self._top: tuple[int | None, StreamState | None, int | None] | None = None
        #: see :meth:`reject_after`
        self.horizon = NO_HORIZON
        self._rejected: list[CloudTrailEvent] = []
        self._keep_rejected = False

    # ------------------------------------------------------------------ streams
    def first_of_stream(self, event: CloudTrailEvent, seconds: int) -> StreamState | None:
        """A new stream for ``event``; None when the event was held (or rejected) instead.

        A first record far ahead of every other stream's clock does not start the stream's
        clock: it is held, and the clock starts at the first on-time record.
        """
        account, region = event.recipient_account_id, event.aws_region
        if not (account and region):
            self.stats.rejected[RejectReason.MISSING_FIELD.value] += 1
            return None
        if seconds > self.horizon:
            self.reject_future([event])
            return None
        # clocks only move on: most first records are within reach of the bound, no scan needed
        far = seconds > self._newest_bound + self.jump
        reference = self._other_clocks(None) if far else None
        stream = self._new_stream(account, region, seconds)
        if reference is None or seconds <= reference + self.jump:
            self._newest_bound = max(self._newest_bound, seconds)
            return stream
        stream.max_seen = UNBORN
        self.hold(stream, seconds, event)
        return None

    def _start_clock(self, stream: StreamState, seconds: int) -> None:
        """Start an unborn stream's clock at ``seconds``, as :meth:`_new_stream` would have."""
        start = (seconds - self.lateness) // 60
        stream.exposure = StreamExposure(start, self.config.baseline_half_life_minutes)
        stream.first_minute = stream.closed_until = stream.next_close = start
        stream.max_seen = seconds

    def _new_stream(self, account: str, region: str, seconds: int) -> StreamState:
        start = (seconds - self.lateness) // 60
        stream = StreamState(
            account=account,
            region=region,
            exposure=StreamExposure(start, self.config.baseline_half_life_minutes),
            first_minute=start,
            max_seen=seconds,
            closed_until=start,
        )
        self.streams[(account, region)] = stream
        return stream

    def schedule(self, stream: StreamState, target: int) -> None:
        """Close ``stream``'s minutes before ``target`` to new events; score them at the next drain.

        Closing is deferred so that the minutes of many streams are scored in one vectorized
        step. A stream's results do not depend on which other streams share its step.
        """
        if target > stream.closed_until:
            stream.closed_until = target
            self.due[(stream.account, stream.region)] = stream

    # ------------------------------------------------------------------ clock jumps
    def _other_clocks(self, stream: StreamState | None) -> int | None:
        """The newest clock of the streams other than ``stream``; None when there is none."""
        if self._top is not None:
            best, owner, second = self._top
            newest = second if owner is stream else best
        else:
            newest = max(
                (
                    s.max_seen
                    for s in self.streams.values()
                    if s is not stream and s.max_seen != UNBORN
                ),
                default=None,
            )
        if newest is not None:
            self._newest_bound = max(self._newest_bound, newest)
        return newest

    def hold(self, stream: StreamState, seconds: int, event: CloudTrailEvent) -> None:
        """Hold back an event far ahead of its stream's clock (see :mod:`insights.windows`).

        The rule: a few records cannot move a stream's clock while its own traffic keeps
        arriving. Held events are rejected as soon as the stream's clock moves on by
        :data:`_ON_TIME_PROGRESS` since the first of them; they move the stream only while it
        stalls, by numbers no small injection reaches (``jump_confirm_events`` distinct
        eventIDs) or vouched for by the other streams' clocks (:meth:`_vouched`). An event
        after the caller's bound (:meth:`reject_after`) is rejected at once.
        """
        if seconds > self.horizon:
            self.reject_future([event])
            return
        if stream.max_seen == UNBORN:
            reference = self._other_clocks(stream)
            if reference is None or seconds <= reference + self.jump:
                # the stream's first on-time record: its clock starts here, with what it holds
                held, since = stream.held, stream.held_reference
                self._start_clock(stream, seconds)
                stream.held, stream.held_clock, stream.held_reference = held, seconds, since
                self._rescan([event])
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
        self.holding.add(stream)
        if len(stream.held) > 2 * self.config.jump_confirm_events:
            self._reject_held(stream, 1)  # the oldest: bounded memory per stream
        # a stall shows only as the other clocks move on: the next review judges that
        self._maybe_jump(stream)

    def _start_holding(self, stream: StreamState) -> None:
        stream.held_clock = stream.max_seen
        # taken at the next review when not in one: later, so a stall is never seen sooner
        stream.held_reference = _PENDING if self._top is None else (self._other_clocks(stream) or 0)

    def _reject_held(self, stream: StreamState, count: int) -> None:
        self.reject_future([e for _, e in stream.held[:count]])
        del stream.held[:count]

    def reject_future(self, events: list[CloudTrailEvent]) -> None:
        """Count ``events`` as ``future_timestamp`` (and keep them when asked to)."""
        self.stats.rejected[RejectReason.FUTURE_TIMESTAMP.value] += len(events)
        if self._keep_rejected or self.horizon != NO_HORIZON:
            self._rejected.extend(events)

    def keep_rejected(self) -> None:
        """Keep every event rejected as ``future_timestamp`` for :meth:`take_rejected`."""
        self._keep_rejected = True

    def reject_after(self, seconds: int | None) -> None:
        """Reject events dated after ``seconds`` as ``future_timestamp`` (None: no bound)."""
        self.horizon = NO_HORIZON if seconds is None else seconds

    def take_rejected(self) -> list[CloudTrailEvent]:
        """The events rejected as ``future_timestamp`` since the last call, oldest first."""
        taken, self._rejected = self._rejected, []
        return taken

    def review_held(self) -> None:
        """Re-judge the held events of every stream holding some (other clocks moved on).

        The held events of a stream whose own traffic moved its clock on are rejected; the
        others are judged by the jump rule (:meth:`_maybe_jump`), a stall now being observable.
        """
        self._judge_each(list(self.holding), self._review)

    def _review(self, stream: StreamState) -> None:
        if stream.held_reference == _PENDING:
            stream.held_reference = self._other_clocks(stream) or 0
        if stream.held and stream.max_seen - stream.held_clock >= _ON_TIME_PROGRESS:
            self._reject_held(stream, len(stream.held))
        elif stream.held:
            self._maybe_jump(stream, stall_seen=True)
        if not stream.held:
            self.holding.discard(stream)

    def _judge_each(self, streams: list[StreamState], judge: Callable[[StreamState], None]) -> None:
        """``judge`` each stream, with the two newest clocks found once for all of them (an
        organization has thousands of quiet account-Regions) and kept up as clocks move."""
        self._top = self._two_newest()
        try:
            for stream in streams:
                clock = stream.max_seen
                judge(stream)
                if stream.max_seen != clock:
                    self._top = self._raised(self._top, stream)
        finally:
            self._top = None

    @staticmethod
    def _raised(
        top: tuple[int | None, StreamState | None, int | None], stream: StreamState
    ) -> tuple[int | None, StreamState | None, int | None]:
        """``top`` (:meth:`_two_newest`) after ``stream``'s clock moved on (clocks only do)."""
        best, owner, second = top
        clock = stream.max_seen
        if owner is stream or best is None or clock > best:
            return clock, stream, (second if owner is stream else best)
        return best, owner, (clock if second is None or clock > second else second)

    def _two_newest(self) -> tuple[int | None, StreamState | None, int | None]:
        """The newest started clock, its stream, and the newest clock of the other streams."""
        best: int | None = None
        second: int | None = None
        owner: StreamState | None = None
        for s in self.streams.values():
            clock = s.max_seen
            if clock == UNBORN:
                continue
            if best is None or clock > best:
                best, second, owner = clock, best, s
            elif second is None or clock > second:
                second = clock
        return best, owner, second

    def _maybe_jump(
        self,
        stream: StreamState,
        force: bool = False,
        at_end: bool = False,
        stall_seen: bool = False,
    ) -> None:
        """Move ``stream`` to its held events' time if the rule allows it (or ``force``).

        The events around the median held time are judged together (so that a few outliers do
        not decide); at the end of a finite input, the earliest first (:meth:`close_all`).
        ``stall_seen``: called by a review, when a stall of the stream can have been observed.
        """
        cfg = self.config
        held = sorted(stream.held, key=lambda p: p[0])
        pivot = held[0][0] if at_end else held[len(held) // 2][0]
        agreeing = [(s, e) for s, e in held if abs(s - pivot) <= self.jump]
        distinct = sum(1 for _, e in agreeing if e.event_id is not None)
        newest = agreeing[-1][0]
        if not (
            force
            or distinct >= cfg.jump_confirm_events
            or (distinct and self._vouched(stream, newest, distinct, stall_seen, at_end))
        ):
            return
        # the held events before the agreeing ones are in the past of the time they confirm:
        # they cannot move the clock past it, so they are taken too, in order
        taken = [(s, e) for s, e in held if s <= newest]
        later = held[len(taken) :]
        first = taken[0][0]
        logger.debug(
            "stream %s/%s jumps forward to %d after %d held events",
            stream.account,
            stream.region,
            first,
            len(taken),
        )
        stream.held = []
        if stream.max_seen == UNBORN:
            self._start_clock(stream, first)
        self.schedule(stream, (first - self.lateness) // 60)
        for held_seconds, held_event in taken:
            self._accept(stream, held_seconds, held_event)
        if later:  # beyond the new clock too: held again, from it
            stream.held = later
            self._start_holding(stream)

    def _vouched(
        self, stream: StreamState, newest: int, distinct: int, stall_seen: bool, at_end: bool
    ) -> bool:
        """Whether the other clocks say the time of ``distinct`` held events (up to ``newest``)
        has come.

        It has when the other streams' newest clock was ``jump_vouch_seconds`` past them
        already (a replay whose other streams are ahead) or moved on that far while the stream
        stalled: ``jump_vouched_events`` agreeing events then move it. A stall seen by a review
        (the other clock moved on since the first held event and the stream's own did not: its
        traffic still arriving would have had the events rejected), or the other clocks that far
        past them at the end of the input, is enough for even one (a sparse stream's next call).
        A stream whose clock has not started, or an input that has shown no other stream (the
        first of a replay), has only its own agreeing events to go by: other streams are other
        clocks, and a log tree ordered by account or Region holds streams years apart. So has a
        stream alone at the front (every other clock more than ``max_clock_jump_minutes``
        behind its own: they stopped long ago, and cannot vouch for anything), once a review
        saw its own traffic stall (or at the end of the input): while its own traffic arrives,
        a few records dated ahead of it are rejected, as anywhere else.
        """
        cfg = self.config
        few = distinct < cfg.jump_vouched_events
        if few and not (stall_seen or at_end):
            return False  # without finding the other clocks: a pass over every stream
        other = self._other_clocks(stream)
        if other is None or stream.max_seen == UNBORN:
            return not few
        if other < stream.max_seen - self.jump:  # alone at the front: once its traffic stalls
            return not few and (stall_seen or at_end)
        vouch = cfg.jump_vouch_seconds
        passed = other - newest >= vouch
        stalled = (
            newest <= other
            and stream.held_reference != _PENDING
            and other - stream.held_reference >= vouch
        )
        if (stall_seen and stalled) or (at_end and passed):
            return True
        return not few and (passed or stalled)

    # ------------------------------------------------------------------ end of input
    def close_all(self) -> list[tuple[StreamState, int]]:
        """Settle what every stream holds and close all its minutes; (stream, last minute + 1).

        Held events never confirmed are rejected, except those of a stream whose clock never
        started (nothing of its own contradicts them) and those the other streams' clocks had
        passed (a sparse stream's records after a long gap).
        """
        lasts: list[tuple[StreamState, int]] = []

        def settle(stream: StreamState) -> None:
            if stream.max_seen == UNBORN:
                self._maybe_jump(stream, force=True)
            while stream.held:  # each pass takes the earliest group or leaves all held
                held = len(stream.held)
                self._maybe_jump(stream, at_end=True)
                if len(stream.held) == held:
                    break
            if stream.held:
                self._reject_held(stream, len(stream.held))
            last = max([stream.max_seen // 60, *stream.pending]) + 1
            self.schedule(stream, last)
            lasts.append((stream, last))

        self._judge_each(list(self.streams.values()), settle)
        return lasts

    # ------------------------------------------------------------------ snapshots
    def to_state(self) -> list[dict[str, Any]]:
        """Every stream as snapshot data."""
        return [s.to_state() for s in self.streams.values()]

    def load_state(self, streams: list[dict[str, Any]]) -> list[StreamState]:
        """Take the streams :meth:`to_state` saved; return them in their saved order."""
        half_life = self.config.baseline_half_life_minutes
        loaded = [StreamState.from_state(s, half_life) for s in streams]
        self.streams = {(s.account, s.region): s for s in loaded}
        self.holding = {s for s in loaded if s.held}
        # minutes closed but not yet scored when the snapshot was taken (drain=False)
        self.due = {(s.account, s.region): s for s in loaded if s.next_close < s.closed_until}
        return loaded
