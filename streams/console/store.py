"""What the console shows: the insights of an Insight directory, their records and contexts.

Records are read from the AWS-layout Insight files (ours, or AWS's own), grouped by
``sharedEventID`` into one :class:`Insight` each (its Start and, once it ended, its End). The
directory is re-read when a request comes more than ``refresh_seconds`` after the last read, so a
worker's new files show up without a restart.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from streams.sinks.files import read_context, read_insight_files

__all__ = ["PAGE_SIZE", "Filters", "Insight", "InsightStore"]

PAGE_SIZE = 50
_TIME = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True, slots=True)
class Insight:
    """One insight: its Start record and, once it ended, its End record."""

    shared_event_id: str
    start: dict[str, Any] | None
    end: dict[str, Any] | None

    @property
    def latest(self) -> dict[str, Any]:
        record = self.end or self.start
        assert record is not None
        return record

    @property
    def details(self) -> dict[str, Any]:
        return dict(self.latest.get("insightDetails") or {})

    @property
    def extra(self) -> dict[str, Any]:
        return dict((self.start or self.latest).get("additionalEventData") or {})

    @property
    def start_time(self) -> str:
        return str((self.start or self.latest)["eventTime"])

    @property
    def end_time(self) -> str | None:
        return None if self.end is None else str(self.end["eventTime"])

    @property
    def score(self) -> float | None:
        value = self.extra.get("score")
        return float(value) if isinstance(value, int | float) else None

    @property
    def api(self) -> str:
        d = self.details
        return f"{d.get('eventSource', '')}:{d.get('eventName', '')}"

    def statistics(self) -> dict[str, Any]:
        context = self.details.get("insightContext") or {}
        return dict(context.get("statistics") or {})

    def summary(self) -> dict[str, Any]:
        """The insight as the list API gives it."""
        d, stats, extra = self.details, self.statistics(), self.extra
        return {
            "sharedEventID": self.shared_event_id,
            "insightType": d.get("insightType"),
            "eventSource": d.get("eventSource"),
            "eventName": d.get("eventName"),
            "errorCode": d.get("errorCode"),
            "recipientAccountId": self.latest.get("recipientAccountId"),
            "awsRegion": self.latest.get("awsRegion"),
            "startTime": self.start_time,
            "endTime": self.end_time,
            "open": self.end is None,
            "score": self.score,
            "direction": extra.get("direction", "rise"),
            "detectionTime": extra.get("detectionTime"),
            "baselineAverage": (stats.get("baseline") or {}).get("average"),
            "insightAverage": (stats.get("insight") or {}).get("average"),
            "insightDuration": stats.get("insightDuration"),
        }


def _time(text: str, name: str) -> str:
    """``text`` (an ISO date or time, UTC unless it says otherwise) in the records' format."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{name}: not an ISO date or time: {text!r}") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime(_TIME)


@dataclass(frozen=True, slots=True)
class Filters:
    """The list's filters, from a query string (``ValueError`` for a value that is not valid)."""

    since: str = ""
    until: str = ""
    account: str = ""
    region: str = ""
    source: str = ""
    name: str = ""
    insight_type: str = ""
    state: str = ""
    min_score: float | None = None
    page: int = 1

    @classmethod
    def from_query(cls, query: dict[str, list[str]]) -> Filters:
        def one(name: str) -> str:
            return (query.get(name) or [""])[-1].strip()

        state = one("state")
        if state not in ("", "open", "closed"):
            raise ValueError(f"state: open or closed, not {state!r}")
        kind = one("type")
        if kind not in ("", "ApiCallRateInsight", "ApiErrorRateInsight"):
            raise ValueError(f"type: ApiCallRateInsight or ApiErrorRateInsight, not {kind!r}")
        try:
            min_score = float(one("min_score")) if one("min_score") else None
            page = int(one("page") or 1)
        except ValueError as exc:
            raise ValueError(f"min_score and page are numbers ({exc})") from exc
        return cls(
            since=_time(one("since"), "since") if one("since") else "",
            until=_time(one("until"), "until") if one("until") else "",
            account=one("account"),
            region=one("region"),
            source=one("source"),
            name=one("name"),
            insight_type=kind,
            state=state,
            min_score=min_score,
            page=max(page, 1),
        )

    def matches(self, insight: Insight) -> bool:
        d, record = insight.details, insight.latest
        wanted: list[tuple[str, object]] = [
            (self.account, record.get("recipientAccountId")),
            (self.region, record.get("awsRegion")),
            (self.source, d.get("eventSource")),
            (self.name, d.get("eventName")),
            (self.insight_type, d.get("insightType")),
            (self.state, "open" if insight.end is None else "closed"),
        ]
        if any(value and value != actual for value, actual in wanted):
            return False
        if self.since and (insight.end_time or "9999") < self.since:
            return False
        if self.until and insight.start_time > self.until:
            return False
        score = insight.score
        return self.min_score is None or (score is not None and score >= self.min_score)

    def query(self, **changes: Any) -> str:
        """The query string of these filters with ``changes`` (for links)."""
        values = {
            "since": self.since,
            "until": self.until,
            "account": self.account,
            "region": self.region,
            "source": self.source,
            "name": self.name,
            "type": self.insight_type,
            "state": self.state,
            "min_score": "" if self.min_score is None else f"{self.min_score:g}",
            "page": str(self.page),
        }
        values.update({k: str(v) for k, v in changes.items()})
        return urlencode({k: v for k, v in values.items() if v and (k, v) != ("page", "1")})


class InsightStore:
    """The insights under ``root`` (re-read at most every ``refresh_seconds``)."""

    def __init__(self, root: Path, refresh_seconds: float = 2.0) -> None:
        self.root = root
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._read_at = -float("inf")
        self._insights: list[Insight] = []
        self._by_id: dict[str, Insight] = {}

    def insights(self) -> list[Insight]:
        """Every insight, newest Start first."""
        with self._lock:
            now = time.monotonic()
            if now - self._read_at >= self.refresh_seconds:
                self._load()
                self._read_at = now
            return self._insights

    def get(self, shared_event_id: str) -> Insight | None:
        self.insights()
        return self._by_id.get(shared_event_id)

    def context(self, shared_event_id: str) -> dict[str, Any] | None:
        return read_context(self.root, shared_event_id)

    def _load(self) -> None:
        parts: dict[str, dict[str, dict[str, Any]]] = {}
        for record in read_insight_files(self.root):
            sid = record.get("sharedEventID")
            state = (record.get("insightDetails") or {}).get("state")
            if isinstance(sid, str) and state in ("Start", "End"):
                parts.setdefault(sid, {})[state] = record
        insights = [Insight(sid, p.get("Start"), p.get("End")) for sid, p in parts.items()]
        insights.sort(key=lambda i: (i.start_time, i.shared_event_id), reverse=True)
        self._insights = insights
        self._by_id = {i.shared_event_id: i for i in insights}
