"""The dead-letter topic: rejected input with headers naming why and where it came from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from kafka.structs import TopicPartition

from insights import CloudTrailEvent, Rejection, RejectReason
from streams.metrics import WorkerMetrics

__all__ = ["DeadLetters"]

#: Bodies above this are cut (header ``ctinsights-truncated-from``) to fit a default broker's
#: 1 MB message limit.
LIMIT = 900_000

Send = Callable[[str, bytes | None, bytes, list[tuple[str, bytes]]], None]


@dataclass(slots=True)
class DeadLetters:
    """Counts every rejection and, with a topic, sends what was rejected there (at least once)."""

    topic: str | None
    metrics: WorkerMetrics
    send: Send
    flush: Callable[[], None]

    def message(self, message: Any, value: bytes, rejections: list[Rejection], whole: bool) -> None:
        """Send rejected input to the dead-letter topic with headers naming why and where.

        A message of which nothing was usable goes unchanged; a batch with some bad records
        sends each bad record. Anything above ~900 KB is cut (header ``truncated-from``).
        """
        for rejection in rejections:
            self.metrics.rejected.labels(rejection.reason.value).inc()
            self.metrics.dead_letters.labels(rejection.reason.value).inc()
        topic = self.topic
        if topic is None:
            return
        whole = whole and len(rejections) == 1
        items = [(rejections[0], value)] if whole else [(r, r.raw) for r in rejections]
        for rejection, raw in items:
            headers = [
                ("ctinsights-reason", rejection.reason.value.encode()),
                ("ctinsights-detail", rejection.detail[:200].encode("utf-8", "replace")),
                ("ctinsights-source-topic", message.topic.encode()),
                ("ctinsights-source-partition", str(message.partition).encode()),
                ("ctinsights-source-offset", str(message.offset).encode()),
                ("ctinsights-whole-message", b"true" if whole else b"false"),
            ]
            body = raw
            if len(body) > LIMIT:
                headers.append(("ctinsights-truncated-from", str(len(body)).encode()))
                body = body[:LIMIT]
            self.send(topic, None, body, headers)
        self.flush()

    def future(
        self, tp: TopicPartition, messages: list[Any], events: list[CloudTrailEvent]
    ) -> None:
        """Dead-letter records the engine rejected as dated in the future (counted there).

        The engine rejects them after decoding, so the body is the record as decoded (the
        fields detection reads) and the offset is the poll's range, not the record's own.
        """
        for _ in events:
            self.metrics.dead_letters.labels(RejectReason.FUTURE_TIMESTAMP.value).inc()
        topic = self.topic
        if topic is None:
            return
        for event in events:
            headers = [
                ("ctinsights-reason", RejectReason.FUTURE_TIMESTAMP.value.encode()),
                ("ctinsights-detail", f"eventTime {event.event_time}".encode()),
                ("ctinsights-source-topic", tp.topic.encode()),
                ("ctinsights-source-partition", str(tp.partition).encode()),
                ("ctinsights-source-offset", b"-1"),
                (
                    "ctinsights-source-offset-range",
                    f"{messages[0].offset}-{messages[-1].offset}".encode(),
                ),
                ("ctinsights-whole-message", b"false"),
            ]
            self.send(topic, None, msgspec.json.encode(event), headers)
        self.flush()
