"""Scoring Insight records against labelled anomalies: recall, false insights, latency."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from insights import parse_epoch_seconds
from streams.lab.simulate import Label

__all__ = ["Evaluation", "evaluate"]

#: A Start within this many seconds of a label's window counts as finding it.
SLACK_SECONDS = 300


@dataclass(slots=True)
class Evaluation:
    """How a run of insights compares with the labels."""

    found: dict[str, bool] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    """Each label's kind, by the label's name (the keys of ``found``)."""
    latencies: dict[str, float] = field(default_factory=dict)
    false_insights: list[dict[str, Any]] = field(default_factory=list)
    key_days: float = 0.0

    @property
    def recall(self) -> float:
        """Share of labelled anomalies with at least one matching insight."""
        return sum(self.found.values()) / max(len(self.found), 1)

    @property
    def false_per_1000_key_days(self) -> float:
        """False insights per 1,000 key-days."""
        return 1000.0 * len(self.false_insights) / max(self.key_days, 1e-9)

    @property
    def median_latency_minutes(self) -> float:
        """Median of detectionTime - labelled onset, in minutes."""
        values = list(self.latencies.values())
        return statistics.median(values) / 60 if values else float("nan")

    def by_kind(self) -> dict[str, tuple[int, int, list[float]]]:
        """Per anomaly kind: labels found, labels, and the latencies found (minutes)."""
        out: dict[str, tuple[int, int, list[float]]] = {}
        for name, kind in self.kinds.items():
            found, total, latencies = out.get(kind, (0, 0, []))
            if self.found[name]:
                latencies = [*latencies, self.latencies[name] / 60]
            out[kind] = (found + self.found[name], total + 1, latencies)
        return out


def _matches(record: dict[str, Any], label: Label) -> bool:
    d = record["insightDetails"]
    key = (d["eventSource"], d["eventName"], d["insightType"], d.get("errorCode", ""))
    if (record["recipientAccountId"], record["awsRegion"]) != (label.account, label.region):
        return False
    direction = record.get("additionalEventData", {}).get("direction", "increase")
    if direction != label.direction:
        return False
    start = parse_epoch_seconds(record["eventTime"])
    return key in label.keys and label.onset - SLACK_SECONDS <= start <= label.end + SLACK_SECONDS


def evaluate(
    records: list[dict[str, Any]], labels: list[Label], key_days: float, after: int = 0
) -> Evaluation:
    """Match Start records to labels. Starts before ``after`` (epoch s) are not counted as false."""
    result = Evaluation(key_days=key_days)
    for label in labels:
        name = f"{label.kind}@{label.account}/{label.region}"
        result.found[name] = False
        result.kinds[name] = label.kind
        for record in records:
            if record["insightDetails"]["state"] == "Start" and _matches(record, label):
                detected = parse_epoch_seconds(record["additionalEventData"]["detectionTime"])
                latency = detected - label.onset
                if not result.found[name] or latency < result.latencies[name]:
                    result.latencies[name] = latency
                result.found[name] = True
    for record in records:
        if record["insightDetails"]["state"] != "Start":
            continue
        if parse_epoch_seconds(record["eventTime"]) < after:
            continue
        if not any(_matches(record, label) for label in labels):
            result.false_insights.append(record)
    return result
