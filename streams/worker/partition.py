"""One assigned input partition: its engine, position and Insights waiting for a checkpoint."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kafka.structs import TopicPartition

from insights import EngineStats, InsightEngine, InsightRecord
from streams.checkpoints import PendingInsight
from streams.metrics import WorkerMetrics

__all__ = ["Partition"]

logger = logging.getLogger(__name__)


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
    """When a poll last advanced this partition (see ``Worker._unstall``)."""

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
