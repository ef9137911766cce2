"""One assigned input partition: its engine, position and Insights waiting for a checkpoint."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer
from kafka.errors import KafkaError
from kafka.structs import TopicPartition

from insights import EngineStats, InsightEngine, InsightRecord
from streams.checkpoints import PendingInsight
from streams.metrics import WorkerMetrics

__all__ = ["STALL_SECONDS", "Partition", "reseek_stalled"]

logger = logging.getLogger(__name__)

#: A partition with records on the broker that has not advanced for this long is sought to its
#: position again: once, under CPU load, a restored partition got no records for four minutes
#: while its sibling was read.
STALL_SECONDS = 30.0


@dataclass(slots=True)
class Partition:
    """What the worker holds for one assigned input partition."""

    tp: TopicPartition
    engine: InsightEngine
    offset: int
    """The next offset the engine expects: no other record reaches it (see :meth:`in_order`)."""
    pending: list[PendingInsight] = field(default_factory=list)
    pending_records: list[InsightRecord] = field(default_factory=list)
    pending_since: float | None = None
    dirty: bool = False
    last_checkpoint: float = field(default_factory=time.monotonic)
    sequence: int = 0
    stats_seen: EngineStats = field(default_factory=EngineStats)
    keys_seen: int = 0
    sought: int | None = None
    """The offset last sought to after a gap: a poll from there proves the gap is in the log."""
    last_records: float = field(default_factory=time.monotonic)
    """When a poll last advanced this partition (see :func:`reseek_stalled`)."""
    contexts: dict[str, bytes] = field(default_factory=dict)
    """Each insight's newest context (JSON, by sharedEventID) waiting for the next checkpoint,
    then for the Insight files."""

    def __post_init__(self) -> None:
        self.engine.contexts.keep = True  # taken after every poll (Output.contexts)

    def add(self, records: list[InsightRecord], contexts: dict[str, bytes]) -> None:
        """Insight records and contexts to go out after the next checkpoint."""
        if records and self.pending_since is None:
            self.pending_since = time.monotonic()
        for record in records:
            item = PendingInsight(record.event_id, record.shared_event_id, record.to_json())
            self.pending.append(item)
            self.pending_records.append(record)
        self.contexts.update(contexts)

    def in_order(
        self,
        messages: list[Any],
        seek: Callable[[TopicPartition, int], None],
        metrics: WorkerMetrics,
    ) -> list[Any]:
        """The polled records that continue the partition exactly where its engine stands.

        Records below the expected offset are already in the state (a redelivery). Records
        that start above it mean something between was polled and not processed: the partition
        is sought back and read again, never skipped. A gap seen again when reading from the
        expected offset itself is in the log (compaction, transaction markers) and is crossed.
        """
        if not messages:
            return messages
        if messages[0].offset < self.offset:
            messages = [m for m in messages if m.offset >= self.offset]
            if not messages:
                return messages
        first = messages[0].offset
        if first != self.offset and self.sought != self.offset:
            logger.warning(
                "%s: polled offset %d where %d was expected; seeking back to read it again",
                self.tp,
                first,
                self.offset,
            )
            metrics.rewinds.inc()
            seek(self.tp, self.offset)
            self.sought = self.offset
            return []
        if first != self.offset:
            logger.info("%s: offsets %d-%d are not in the log", self.tp, self.offset, first - 1)
        # one read of the log from the expected offset: what it skips is not in the log
        missing = messages[-1].offset + 1 - self.offset - len(messages)
        if missing:
            metrics.offset_gaps.inc(missing)
        self.sought = None
        return messages


def reseek_stalled(
    parts: Iterable[Partition], consumer: KafkaConsumer, now: float, metrics: WorkerMetrics
) -> None:
    """Seek again each partition that has records on the broker but has not advanced for
    :data:`STALL_SECONDS` (no record polled, or only records before its position): a seek
    resets the client's fetch state for it."""
    quiet = [p for p in parts if now - p.last_records >= STALL_SECONDS]
    if not quiet:
        return
    try:
        ends = consumer.end_offsets([p.tp for p in quiet], timeout_ms=5000)
    except KafkaError as exc:
        logger.info("end offsets for the stall check failed: %s", exc)
        return
    for part in quiet:
        # the broker's reported end may lag the real one (Tansu): the fetched high-water mark
        # counts too
        end = max(ends.get(part.tp) or 0, consumer.highwater(part.tp) or 0)
        if end > part.offset:
            logger.warning(
                "%s: no records for %.0f s though the log holds %d more; seeking to %d again",
                part.tp,
                now - part.last_records,
                end - part.offset,
                part.offset,
            )
            metrics.input_stalls.inc()
            consumer.seek(part.tp, part.offset)
        part.last_records = now
