"""What the engine did with its input: counters shared by its parts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from insights.records import InsightRecord

__all__ = ["EngineStats"]


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

    def count(self, records: list[InsightRecord]) -> list[InsightRecord]:
        """Count Start and End records by insight type; the records."""
        for record in records:
            counter = self.insights_started if record.state == "Start" else self.insights_ended
            counter[record.key.insight_type] += 1
        return records

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

    def load(self, d: dict[str, Any]) -> None:
        """Take the counters :meth:`as_dict` gave, in place (the engine's parts share them)."""
        loaded = EngineStats.from_dict(d)
        for name in self.__slots__:
            setattr(self, name, getattr(loaded, name))

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
