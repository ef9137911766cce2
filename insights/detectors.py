"""The life of an insight after its Start (:mod:`insights.starts`): observing, ending, records.

End (per open insight, every closed minute): the rate is back to baseline, meaning
``end_quiet_minutes`` consecutive minutes within the baseline's 2-sigma band and, for insights
started at the 10/60-minute scales, an exponentially weighted rate (half-life ``w/2``) back in
its band as well; or the insight reached ``max_insight_minutes``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from insights.attribution import ATTRIBUTES, InsightAttribution
from insights.baselines import SCALES
from insights.config import EngineConfig
from insights.records import AttributionEntry, InsightKey, InsightRecord
from insights.windows import MinuteBuffer, StreamState

__all__ = ["OpenInsight", "OpenInsights", "Seen", "upper_band"]


def upper_band(mu: float, phi: float, minutes: float = 1.0) -> float:
    """Two-sigma upper band of a rate averaged over ``minutes`` minutes."""
    return mu + 2.0 * math.sqrt(phi * mu / minutes)


@dataclass(slots=True)
class OpenInsight:
    """An insight between its Start and its End."""

    key: InsightKey
    row: int
    start_minute: int
    scale: int
    score: float
    baseline_average: float
    baseline_duration: int
    baseline_attributions: tuple[tuple[tuple[str, float], ...], ...]
    counts: list[int] = field(default_factory=list)
    attribution: InsightAttribution = field(default_factory=InsightAttribution)
    last_above: int = -1
    quiet_run: int = 0
    ew_rate: float = 0.0
    end_quiet_needed: int = 3

    def to_state(self) -> dict[str, Any]:
        """The open insight as snapshot data (its key is the row's; :meth:`from_state`)."""
        return {
            "row": self.row,
            "start_minute": self.start_minute,
            "scale": self.scale,
            "score": self.score,
            "baseline_average": self.baseline_average,
            "baseline_duration": self.baseline_duration,
            "baseline_attributions": [[list(p) for p in a] for a in self.baseline_attributions],
            "counts": self.counts,
            "attribution": [dict(c) for c in self.attribution.counters],
            "last_above": self.last_above,
            "quiet_run": self.quiet_run,
            "ew_rate": self.ew_rate,
            "end_quiet_needed": self.end_quiet_needed,
        }

    @classmethod
    def from_state(cls, d: dict[str, Any], key: InsightKey) -> OpenInsight:
        """The open insight :meth:`to_state` saved, for ``key``."""
        return cls(
            key=key,
            row=d["row"],
            start_minute=d["start_minute"],
            scale=d["scale"],
            score=d["score"],
            baseline_average=d["baseline_average"],
            baseline_duration=d["baseline_duration"],
            baseline_attributions=tuple(
                tuple((str(v), float(a)) for v, a in attr) for attr in d["baseline_attributions"]
            ),
            counts=list(d["counts"]),
            attribution=InsightAttribution([Counter(c) for c in d["attribution"]]),
            last_above=d["last_above"],
            quiet_run=d["quiet_run"],
            ew_rate=d["ew_rate"],
            end_quiet_needed=d["end_quiet_needed"],
        )

    def observe(self, minute: int, count: int, mu: float, phi1: float, phi_w: float) -> bool:
        """Account one closed minute; return True when the insight should end."""
        self.counts.append(count)
        if count > mu:
            self.last_above = minute
        self.quiet_run = self.quiet_run + 1 if count <= upper_band(mu, phi1) else 0
        half_life = max(1.0, self.scale / 2.0)
        alpha = 1.0 - 2.0 ** (-1.0 / half_life)
        self.ew_rate += alpha * (count - self.ew_rate)
        if self.quiet_run < self.end_quiet_needed:
            return False
        if self.scale == 1:
            return True
        n_eff = (2.0 - alpha) / alpha
        return self.ew_rate <= upper_band(mu, phi_w, n_eff)

    @property
    def end_minute(self) -> int:
        """End of the unusual activity: after the last minute above the expectation."""
        return max(self.last_above + 1, self.start_minute + 1)

    def insight_average(self, until: int) -> float:
        """Mean count per minute from the start to ``until`` (exclusive)."""
        minutes = max(until - self.start_minute, 1)
        return sum(self.counts[:minutes]) / minutes

    def attributions(self, minutes: int) -> tuple[AttributionEntry, ...]:
        """Attribution entries: insight side now, baseline side as it was at Start."""
        return tuple(
            AttributionEntry(
                attribute=name,
                insight=tuple(self.attribution.top(index, minutes)),
                baseline=self.baseline_attributions[index],
            )
            for index, name in enumerate(ATTRIBUTES)
        )


#: (row, count, expectation, dispersion per scale) of an open insight's row in a closed minute.
Seen = tuple[int, int, float, tuple[float, float, float]]


class OpenInsights:
    """The insights between their Start and their End, and the minute each key's last one
    ended: the Start and End records are made here (the engine counts them)."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.open: dict[int, OpenInsight] = {}
        #: row -> the End minute of its last insight (a new Start never reaches back into it)
        self.ended: dict[int, int] = {}
        #: row -> the principals of its last insight: reported once, they are not new to it
        #: (its minutes are kept out of the baseline's sketches), so a repeat is judged by the
        #: count model and the peaks, like any repeat
        self.reported: dict[int, tuple[str, ...]] = {}

    def __len__(self) -> int:
        return len(self.open)

    def start(
        self,
        stream: StreamState,
        key: InsightKey,
        row: int,
        minute: int,
        buffer: MinuteBuffer,
        decided: tuple[int, float, int],
        mu: float,
        mean_rate: float,
        baseline_attributions: tuple[tuple[tuple[str, float], ...], ...],
    ) -> InsightRecord:
        """Open an insight on ``row`` whose Start rule passed in ``minute``; its Start record.

        ``decided``: the winning scale's index, its score, and the calls of actors new to the
        key when they alone started it (0 otherwise)."""
        scale_index, score, new_actor_calls = decided
        scale = SCALES[scale_index]
        bucket_start = minute - minute % scale
        detail = stream.row_minutes(row, bucket_start, minute, (minute, buffer))
        per_minute = {m: sum(c for *_, c in items) for m, items in detail.items()}
        # the first minute of the burst itself, never inside the key's previous insight (its
        # End covers those minutes) and never an empty minute before the calls resume
        floor = min(self.ended.get(row, bucket_start), minute)
        busy = sorted(m for m, c in per_minute.items() if c > 0 and m >= floor)
        onset = next((m for m in busy if per_minute[m] > mu), busy[0] if busy else minute)
        insight = OpenInsight(
            key=key,
            row=row,
            start_minute=onset,
            scale=scale,
            score=score,
            baseline_average=mean_rate,
            baseline_duration=round(stream.exposure.effective_minutes(minute)),
            baseline_attributions=baseline_attributions,
            counts=[per_minute.get(m, 0) for m in range(onset, minute + 1)],
            attribution=InsightAttribution(),
            last_above=minute,
            end_quiet_needed=self.config.end_quiet_minutes,
        )
        for m in range(onset, minute + 1):
            for principal, agent, error, count in detail.get(m, ()):
                insight.attribution.add(principal, agent, error, count)
        insight.ew_rate = sum(insight.counts) / len(insight.counts)
        self.open[row] = insight
        stream.open_rows.add(row)
        duration = minute + 1 - onset
        return InsightRecord(
            key=insight.key,
            state="Start",
            start_minute=onset,
            event_minute=onset,
            baseline_average=mean_rate,
            insight_average=sum(insight.counts) / duration,
            insight_duration=duration,
            baseline_duration=insight.baseline_duration,
            attributions=insight.attributions(duration),
            detection_minute=minute + 1,
            score=score,
            extra=self._extra(scale, mu, "new_actors" if new_actor_calls else "Start")
            + ((("newActorCalls", new_actor_calls),) if new_actor_calls else ()),
        )

    def observe(
        self, stream: StreamState, minute: int, buffer: MinuteBuffer, seen: list[Seen]
    ) -> list[InsightRecord]:
        """Feed a closed minute to ``stream``'s open insights (``seen``: each one's row, in row
        order); the End records of those that end."""
        for (row, principal, agent, error), count in buffer.items():
            insight = self.open.get(row)
            if insight is not None:
                insight.attribution.add(principal, agent, error, count)
        records: list[InsightRecord] = []
        for row, count, mu, phi in seen:
            insight = self.open[row]
            ends = insight.observe(minute, count, mu, phi[0], phi[SCALES.index(insight.scale)])
            too_long = minute + 1 - insight.start_minute >= self.config.max_insight_minutes
            if ends or too_long:
                reason = "max_duration" if too_long and not ends else "back_to_baseline"
                records.append(self.end(stream, insight, minute, mu, reason))
        return records

    def end(
        self, stream: StreamState, insight: OpenInsight, minute: int, mu: float, reason: str
    ) -> InsightRecord:
        """Close ``insight`` after ``minute``; its End record."""
        del self.open[insight.row]
        stream.open_rows.discard(insight.row)
        end = insight.end_minute if reason != "max_duration" else minute + 1
        self.ended[insight.row] = end
        self.reported[insight.row] = tuple(v for v, _ in insight.attribution.top(0, 1))
        duration = max(end - insight.start_minute, 1)
        return InsightRecord(
            key=insight.key,
            state="End",
            start_minute=insight.start_minute,
            event_minute=end,
            baseline_average=insight.baseline_average,
            insight_average=insight.insight_average(end),
            insight_duration=duration,
            baseline_duration=insight.baseline_duration,
            attributions=insight.attributions(duration),
            detection_minute=minute + 1,
            score=insight.score,
            extra=self._extra(insight.scale, mu, reason),
        )

    def _extra(self, scale: int, mu: float, reason: str) -> tuple[tuple[str, object], ...]:
        return (
            ("scaleMinutes", scale),
            ("expectedPerMinute", round(mu, 6)),
            ("sensitivity", self.config.sensitivity.value),
            ("reason", reason),
        )

    def to_state(self) -> dict[str, Any]:
        """The open insights and the End minutes as snapshot data (:meth:`load_state`)."""
        return {
            "open": [o.to_state() for o in self.open.values()],
            "ended": [[row, minute] for row, minute in self.ended.items()],
            "reported": [[row, list(values)] for row, values in self.reported.items()],
        }

    def load_state(self, doc: dict[str, Any], keys: list[InsightKey]) -> None:
        """Take what :meth:`to_state` saved; ``keys`` are the engine's, by row."""
        self.open = {d["row"]: OpenInsight.from_state(d, keys[d["row"]]) for d in doc["open"]}
        self.ended = {int(row): int(minute) for row, minute in doc["ended"]}
        self.reported.clear()  # in place: the closing step's actor review holds it
        self.reported.update((int(row), tuple(values)) for row, values in doc.get("reported", []))
