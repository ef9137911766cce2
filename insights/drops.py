"""Drop insights: a key with a steady rhythm that goes silent for several of its periods.

Opt-in per selector (``InsightSelector(insight_type="ApiCallRateInsight", drops=True)``).
AWS reports only rises; this is a documented extension that keeps AWS's record format: an
``ApiCallRateInsight`` whose insight average is below its baseline, marked
``"direction": "drop"`` in ``additionalEventData`` (its ``sharedEventID`` is its own).

Per call-rate key the watch keeps, in event time, the minute of its last call, an exponentially
weighted mean of the gaps between its active minutes, and a decayed maximum gap (half-life 7
days). A key *has a rhythm* once it has shown :data:`RHYTHM_GAPS` gaps, their mean is at most
:data:`MAX_PERIOD_MINUTES` and the largest recent gap at most :data:`MAX_GAP_RATIO` times the
mean, all within the last week at least (so its nights and weekend are among its gaps): a job
every few minutes qualifies; a key that people call in business hours does not (its nights are
gaps), nor a job that rests at night or at weekends (after its first week, the rest is its
largest gap), nor one called at random (its gaps vary). It *drops* when it stays
silent past ``max(DROP_PERIODS x mean gap, GAP_FACTOR x largest recent gap, MIN_SILENCE)``
after its last call: the Start is dated at the call that did not come (last call + mean gap)
and declared when the silence passes that bound in a closed minute; the End comes with its
next call, or after ``max_insight_minutes`` (the key then has to show its rhythm again).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Any

from insights.config import EngineConfig
from insights.records import InsightKey, InsightRecord
from insights.routing import CALL
from insights.windows import MinuteBuffer, StreamState

__all__ = ["DropWatch", "Rhythm"]

#: Gaps a key must have shown, over at least this many minutes (a week: its nights and its
#: weekend are among them), before its rhythm counts.
RHYTHM_GAPS = 48
RHYTHM_MINUTES = 7 * 1440
#: The longest mean gap (minutes) of a rhythm: periodic work, not a daily job.
MAX_PERIOD_MINUTES = 60.0
#: The largest recent gap may be at most this many mean gaps.
MAX_GAP_RATIO = 4.0
#: A silence of this many mean gaps ...
DROP_PERIODS = 4.0
#: ... and this many times the largest recent gap ...
GAP_FACTOR = 3.0
#: ... and at least these minutes is a drop.
MIN_SILENCE = 20
#: Weight of a new gap in the mean, and half-life (minutes) of the largest recent gap.
_ALPHA = 1.0 / 32.0
_MAX_HALF_LIFE = 10_080.0


@dataclass(slots=True)
class Rhythm:
    """What the watch knows of one key's calls."""

    last: int
    """The key's last active minute."""
    since: int = 0
    """The first active minute of the rhythm (its gaps are counted from there)."""
    calls: float = 0.0
    """Mean calls in an active minute."""
    gap: float = 0.0
    """Mean gap between active minutes."""
    largest: float = 0.0
    """The largest recent gap (decayed)."""
    gaps: int = 0
    """Gaps seen since the rhythm was (re)started."""

    def steady(self) -> bool:
        """Whether the key's calls keep a rhythm a silence can break."""
        return (
            self.gaps >= RHYTHM_GAPS
            and self.last - self.since >= RHYTHM_MINUTES
            and 0 < self.gap <= MAX_PERIOD_MINUTES
            and self.largest <= MAX_GAP_RATIO * self.gap
        )

    def silence(self) -> int:
        """Minutes after the last call at which the silence is a drop."""
        return max(
            math.ceil(DROP_PERIODS * self.gap), math.ceil(GAP_FACTOR * self.largest), MIN_SILENCE
        )

    def observe(self, minute: int, calls: int) -> None:
        """Account an active minute (after the last one)."""
        gap = minute - self.last
        if self.gaps == 0:
            self.gap, self.largest, self.calls = float(gap), float(gap), float(calls)
            self.since = self.last
        else:
            self.gap += _ALPHA * (gap - self.gap)
            self.calls += _ALPHA * (calls - self.calls)
            self.largest = max(float(gap), self.largest * 2.0 ** (-gap / _MAX_HALF_LIFE))
        self.gaps += 1
        self.last = minute


@dataclass(slots=True)
class _OpenDrop:
    key: InsightKey
    start: int
    rate: float
    detected: int


class DropWatch:
    """Rhythms of the call-rate keys of the streams it is fed, and their open drops."""

    @classmethod
    def for_config(cls, config: EngineConfig) -> DropWatch | None:
        """The watch ``config`` asks for (a selector with ``drops``), or None."""
        return cls(config.max_insight_minutes, config.sensitivity.value) if config.drops else None

    def __init__(self, max_minutes: int, sensitivity: str) -> None:
        self.max_minutes = max_minutes
        self.sensitivity = sensitivity
        self.rhythms: dict[int, Rhythm] = {}
        self.open: dict[int, _OpenDrop] = {}
        #: per stream: (deadline minute, row, last call then) of its rows with a rhythm
        self._deadlines: dict[tuple[str, str], list[tuple[int, int, int]]] = {}

    def watch(
        self, batch: list[tuple[StreamState, int, MinuteBuffer]], keys: list[InsightKey]
    ) -> list[InsightRecord]:
        """Feed a closing step (one closed minute of each stream) to the watch."""
        records: list[InsightRecord] = []
        for stream, minute, buffer in batch:
            active: dict[int, int] = {}
            for (row, _p, _a, _e), count in buffer.items():
                if keys[row].insight_type == CALL:
                    active[row] = active.get(row, 0) + count
            records += self.observe((stream.account, stream.region), minute, active, keys)
        return records

    def end_all(self, last: dict[tuple[str, str], int]) -> list[InsightRecord]:
        """End every open drop at the end of a finite input (``last``: each stream's end)."""
        records = []
        for _row, drop in sorted(self.open.items()):
            end = last.get((drop.key.account, drop.key.region), drop.detected)
            records.append(self._record(drop, "End", max(end, drop.start + 1), end, "end_of_input"))
        self.open.clear()
        return records

    def observe(
        self, stream: tuple[str, str], minute: int, active: dict[int, int], keys: list[InsightKey]
    ) -> list[InsightRecord]:
        """A closed minute of ``stream``: ``active`` maps its call-rate rows to their calls. The
        End records of drops that the calls end, then the Starts of drops due by this minute."""
        records = self.due(stream, minute, keys)
        for row, calls in active.items():
            rhythm = self.rhythms.get(row)
            if rhythm is None:
                self.rhythms[row] = Rhythm(last=minute, since=minute)
                continue
            if minute <= rhythm.last:
                continue
            dropped = self.open.pop(row, None)
            if dropped is not None:
                records.append(self._record(dropped, "End", minute, minute, "resumed"))
            rhythm.observe(minute, calls)
            if rhythm.steady():
                deadline = minute + rhythm.silence()
                heapq.heappush(self._deadlines.setdefault(stream, []), (deadline, row, minute))
        return records

    def due(
        self, stream: tuple[str, str], minute: int, keys: list[InsightKey]
    ) -> list[InsightRecord]:
        """Starts of the drops of ``stream`` whose silence passed its bound by ``minute``
        (closed), and Ends of those open longer than ``max_minutes``."""
        records: list[InsightRecord] = []
        heap = self._deadlines.get(stream)
        while heap and heap[0][0] <= minute:
            _deadline, row, last = heapq.heappop(heap)
            rhythm = self.rhythms[row]
            if rhythm.last != last or row in self.open:
                continue  # the key called since: a later deadline stands for it
            start = last + max(1, round(rhythm.gap))
            drop = _OpenDrop(keys[row], start, rhythm.calls / rhythm.gap, minute + 1)
            self.open[row] = drop
            records.append(self._record(drop, "Start", start, minute + 1, "silence"))
        for row, drop in list(self.open.items()):
            key = keys[row]
            if (key.account, key.region) == stream and minute + 1 - drop.start >= self.max_minutes:
                del self.open[row]
                self.rhythms[row].gaps = 0  # it has to show its rhythm again
                end = minute + 1
                records.append(self._record(drop, "End", end, end, "max_duration"))
        return records

    def _record(
        self, drop: _OpenDrop, state: str, event_minute: int, detected: int, reason: str
    ) -> InsightRecord:
        duration = max(event_minute - drop.start, 1) if state == "End" else detected - drop.start
        silence = max(detected - drop.start, 1)
        return InsightRecord(
            key=drop.key,
            state=state,  # type: ignore[arg-type]
            start_minute=drop.start,
            event_minute=event_minute,
            baseline_average=drop.rate,
            insight_average=0.0,
            insight_duration=duration,
            baseline_duration=0,
            attributions=(),
            detection_minute=detected,
            score=min(drop.rate * silence / math.log(10.0), 300.0),
            extra=(
                ("direction", "drop"),
                ("expectedPerMinute", round(drop.rate, 6)),
                ("sensitivity", self.sensitivity),
                ("reason", reason),
            ),
            drop=True,
        )

    def to_state(self) -> dict[str, Any]:
        """Rhythms and open drops as snapshot data (:meth:`load_state`)."""
        return {
            "rhythms": [
                [row, r.last, r.since, r.calls, r.gap, r.largest, r.gaps]
                for row, r in self.rhythms.items()
            ],
            "open": [[row, d.start, d.rate, d.detected] for row, d in self.open.items()],
        }

    def load_state(self, doc: dict[str, Any], keys: list[InsightKey]) -> None:
        """Take what :meth:`to_state` saved; ``keys`` are the engine's, by row."""
        self.rhythms = {
            int(row): Rhythm(
                int(last), int(since), float(calls), float(gap), float(largest), int(gaps)
            )
            for row, last, since, calls, gap, largest, gaps in doc.get("rhythms", [])
        }
        self.open = {
            int(row): _OpenDrop(keys[int(row)], int(start), float(rate), int(detected))
            for row, start, rate, detected in doc.get("open", [])
        }
        self._deadlines = {}
        for row, rhythm in self.rhythms.items():
            if rhythm.steady() and row not in self.open:
                key = keys[row]
                heapq.heappush(
                    self._deadlines.setdefault((key.account, key.region), []),
                    (rhythm.last + rhythm.silence(), row, rhythm.last),
                )
