"""The worker's producing side: Insight records to the output topic, and their re-delivery.

A checkpoint carries the Insights produced after it was written, with the output topic's end
offsets at that time; a worker restored from it looks for them on the output topic from there
and produces only those it does not find (see :mod:`streams.checkpoints`).
"""

from __future__ import annotations

import logging

from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition

from insights import InsightEngine
from streams.checkpoints import Checkpoint, PendingInsight
from streams.metrics import WorkerMetrics
from streams.settings import WorkerSettings
from streams.sinks.files import InsightFileWriter
from streams.topics import read_to_end
from streams.worker.broker import BrokerCalls, partitions_of

__all__ = ["EVENT_ID_HEADER", "Output"]

logger = logging.getLogger(__name__)

#: Header of every produced Insight record: its ``eventID`` (used to de-duplicate re-sends).
EVENT_ID_HEADER = "ctinsights-event-id"


class Output:
    """Sends to Kafka through one idempotent producer; reads the output topic back to re-check.

    ``producer`` and ``scanner`` (a consumer outside the group) are set once connected.
    """

    def __init__(self, settings: WorkerSettings, metrics: WorkerMetrics, broker: BrokerCalls):
        self.settings = settings
        self.metrics = metrics
        self.broker = broker
        self.producer: KafkaProducer | None = None
        self.scanner: KafkaConsumer | None = None
        folder = settings.insight_dir
        mode = int(settings.insight_file_mode, 8)
        self.files = None if folder is None else InsightFileWriter(folder, mode)

    def contexts(self, engine: InsightEngine) -> dict[str, bytes]:
        """The newest context of each insight ``engine`` issued, by sharedEventID (none kept
        without an ``insight_dir``)."""
        issued = engine.contexts.take()
        if self.files is None:
            return {}
        return {c.shared_event_id: c.to_json() for c in issued}

    def write_contexts(self, contexts: dict[str, bytes]) -> dict[str, bytes]:
        """Write ``contexts`` into the Insight directory, beside the file sink's records (a
        context is written by the worker that holds its partition, from its checkpoint: see
        :mod:`insights.context`); return what is left to write (nothing)."""
        if self.files is not None and contexts:
            self.files.write_contexts(contexts)
            self.metrics.contexts_written.inc(len(contexts))
        return {}

    def send(
        self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        """Queue one message (retrying while the broker is away); :meth:`flush` sends."""
        producer = self.producer
        assert producer is not None
        self.broker.retry(
            "produce", lambda: producer.send(topic, key=key, value=value, headers=headers)
        )

    def flush(self) -> None:
        """Wait until every queued message is acknowledged."""
        producer = self.producer
        assert producer is not None
        self.broker.retry("flush", lambda: producer.flush(timeout=30))

    def produce(self, pending: list[PendingInsight]) -> None:
        """Produce Insight records keyed by their ``sharedEventID``, and wait for them."""
        if not pending:
            return
        topic = self.settings.output_topic
        for item in pending:
            headers = [(EVENT_ID_HEADER, item.event_id.encode())]
            self.send(topic, item.shared_event_id.encode(), item.value, headers)
        self.flush()
        self.metrics.produced.inc(len(pending))

    def positions(self) -> dict[int, int]:
        """Lower bounds of the output topic's end offsets (where a re-check would start)."""
        scanner = self.scanner
        assert scanner is not None
        topic = self.settings.output_topic
        tps = [TopicPartition(topic, p) for p in sorted(partitions_of(scanner, topic))]
        ends = self.broker.retry("end_offsets", lambda: scanner.end_offsets(tps))
        return {tp.partition: int(offset) for tp, offset in ends.items()}

    def redeliver(self, checkpoint: Checkpoint) -> None:
        """Produce the checkpoint's pending Insights that are not on the output topic yet, and
        write its contexts."""
        self.write_contexts(checkpoint.contexts)
        if not checkpoint.pending:
            return
        wanted = {p.event_id for p in checkpoint.pending}
        present = self._found(checkpoint.output_from, wanted)
        missing = [p for p in checkpoint.pending if p.event_id not in present]
        logger.info(
            "re-delivering %d of %d pending insights of %s/%d",
            len(missing),
            len(checkpoint.pending),
            checkpoint.topic,
            checkpoint.partition,
        )
        self.produce(missing)

    def _found(self, start: dict[int, int], wanted: set[str]) -> set[str]:
        """Event ids among ``wanted`` found on the output topic at or after ``start``."""
        scanner = self.scanner
        assert scanner is not None
        topic = self.settings.output_topic
        starts = {
            TopicPartition(topic, p): start.get(p, 0) for p in sorted(partitions_of(scanner, topic))
        }
        found: set[str] = set()
        for message in read_to_end(scanner, starts, timeout=60.0):
            event_id = dict(message.headers or []).get(EVENT_ID_HEADER, b"").decode()
            if event_id in wanted:
                found.add(event_id)
        return found
