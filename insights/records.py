"""Insight records in AWS's own format (Start/End pairs), with deterministic ids."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from insights.timeparse import format_minute

__all__ = [
    "DETECTOR_NAME",
    "AttributionEntry",
    "InsightKey",
    "InsightRecord",
    "records_to_json_lines",
    "shared_event_id",
]

DETECTOR_NAME = "ctinsights-nb-seasonal/1"
EVENT_VERSION = "1.08"
_NAMESPACE = uuid.UUID("6f1b0d3c-6a53-5c2e-9d4e-2b1f0c6a7e01")

InsightType = Literal["ApiCallRateInsight", "ApiErrorRateInsight"]
State = Literal["Start", "End"]


@dataclass(frozen=True, slots=True, order=True)
class InsightKey:
    """What one baseline (and one insight) is about."""

    account: str
    region: str
    event_source: str
    event_name: str
    insight_type: InsightType
    error_code: str = ""

    def as_tuple(self) -> tuple[str, str, str, str, str, str]:
        """Plain tuple form (used as a dictionary key and in snapshots)."""
        return (
            self.account,
            self.region,
            self.event_source,
            self.event_name,
            self.insight_type,
            self.error_code,
        )


def shared_event_id(key: InsightKey, start_minute: int, drop: bool = False) -> str:
    """Deterministic ``sharedEventID``: UUIDv5 of the key and the start minute (and of the
    direction, for a drop: :mod:`insights.drops`).

    Examples:
        >>> k = InsightKey("1", "us-east-1", "iam.amazonaws.com", "CreateUser",
        ...                "ApiCallRateInsight")
        >>> shared_event_id(k, 100) == shared_event_id(k, 100) != shared_event_id(k, 101)
        True
        >>> shared_event_id(k, 100) != shared_event_id(k, 100, drop=True)
        True
    """
    name = "|".join((*key.as_tuple(), str(start_minute), *(("drop",) if drop else ())))
    return str(uuid.uuid5(_NAMESPACE, name))


@dataclass(frozen=True, slots=True)
class AttributionEntry:
    """One attribute's top values during the insight and in the baseline."""

    attribute: str
    insight: tuple[tuple[str, float], ...]
    baseline: tuple[tuple[str, float], ...]


def _num(value: float) -> float | int:
    rounded = round(value, 10)
    return int(rounded) if rounded == int(rounded) and abs(rounded) < 2**53 else rounded


@dataclass(frozen=True, slots=True)
class InsightRecord:
    """One Insight event (``state`` Start or End)."""

    key: InsightKey
    state: State
    start_minute: int
    event_minute: int
    baseline_average: float
    insight_average: float
    insight_duration: int
    baseline_duration: int
    attributions: tuple[AttributionEntry, ...]
    detection_minute: int
    score: float
    extra: tuple[tuple[str, Any], ...] = ()
    drop: bool = False
    """A drop (:mod:`insights.drops`): the rate fell, where AWS's insights only rise."""

    @property
    def shared_event_id(self) -> str:
        """Identity of the insight (same on Start and End)."""
        return shared_event_id(self.key, self.start_minute, self.drop)

    @property
    def event_id(self) -> str:
        """Identity of this record (Start and End differ)."""
        return str(uuid.uuid5(_NAMESPACE, f"{self.shared_event_id}|{self.state}"))

    def to_dict(self) -> dict[str, Any]:
        """The record as AWS writes it (camelCase), plus ``additionalEventData``."""
        key = self.key
        details: dict[str, Any] = {
            "state": self.state,
            "eventSource": key.event_source,
            "eventName": key.event_name,
            "insightType": key.insight_type,
        }
        if key.insight_type == "ApiErrorRateInsight":
            details["errorCode"] = key.error_code
        details["insightContext"] = {
            "statistics": {
                "baseline": {"average": _num(self.baseline_average)},
                "insight": {"average": _num(self.insight_average)},
                "insightDuration": self.insight_duration,
                "baselineDuration": self.baseline_duration,
            },
            "attributions": [
                {
                    "attribute": entry.attribute,
                    "insight": [{"value": v, "average": _num(a)} for v, a in entry.insight],
                    "baseline": [{"value": v, "average": _num(a)} for v, a in entry.baseline],
                }
                for entry in self.attributions
            ],
        }
        extra = {
            "detectionTime": format_minute(self.detection_minute),
            "score": _num(round(self.score, 3)),
            "detector": DETECTOR_NAME,
        }
        extra.update(dict(self.extra))
        return {
            "eventVersion": EVENT_VERSION,
            "eventTime": format_minute(self.event_minute),
            "awsRegion": key.region,
            "eventID": self.event_id,
            "eventType": "AwsCloudTrailInsight",
            "recipientAccountId": key.account,
            "sharedEventID": self.shared_event_id,
            "insightDetails": details,
            "eventCategory": "Insight",
            "additionalEventData": extra,
        }

    def to_json(self) -> bytes:
        """Compact JSON bytes of :meth:`to_dict` (stable field order)."""
        return msgspec.json.encode(self.to_dict())


def records_to_json_lines(records: list[InsightRecord]) -> bytes:
    """JSON lines of several records."""
    return b"".join(r.to_json() + b"\n" for r in records)
