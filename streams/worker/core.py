"""``ctinsights run``: the Kafka stream worker around :class:`insights.InsightEngine`.

One engine per assigned input partition (detection is partition-local: every detection key must
arrive on one partition; ``ctinsights produce`` keys by account + Region). Per polled batch the
worker decodes each message, sends what is rejected to the dead-letter topic, and feeds the rest
to the partition's engine. Insight records wait (at most ``output_delay_seconds``) for a
checkpoint that carries them; only then are they produced, keyed by ``sharedEventID``. See
:mod:`streams.checkpoints` for why that makes the output exactly-once without transactions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition

from insights import (
    InsightEngine,
    InsightRecord,
    Pipeline,
    Rejection,
    StateDecodeError,
    accelerated,
)
from streams.checkpoints import Checkpoint, CheckpointStore
from streams.errors import ConfigError, StreamsError
from streams.failpoints import failpoint
from streams.metrics import HealthState, WorkerMetrics
from streams.settings import WorkerSettings
from streams.worker.broker import BrokerCalls
from streams.worker.clients import connect
from streams.worker.dead_letters import DeadLetters
from streams.worker.gauges import PartitionGauges
from streams.worker.output import EVENT_ID_HEADER, Output
from streams.worker.partition import STALL_SECONDS, Partition, reseek_stalled

__all__ = ["EVENT_ID_HEADER", "Worker"]

logger = logging.getLogger(__name__)

_IDLE_PROBE_SECONDS = 10.0
#: Wait after a poll that raised (the broker went away mid-call) before polling again.
_POLL_BACKOFF_SECONDS = 1.0
#: While data flows the worker polls without blocking and waits this long between empty polls,
#: for at most ``_EAGER_POLL_SECONDS`` after the last data; then it blocks in ``poll`` again.
#: (kafka-python 3.0's blocking poll can sleep ``retry_backoff_ms`` (100 ms) while a fetch
#: response is being handed over by its IO thread: the worker met that 2-4 times per 30,000
#: messages, a third of its wall time on the worker benchmark; see docs/performance.md.)
_EAGER_POLL_WAIT = 0.001
_EAGER_POLL_SECONDS = 0.5

InsightCallback = Callable[[InsightRecord], None]


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Rebalance events, called on kafka-python 3's IO thread during a group join."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.worker.on_revoked(revoked)

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.worker.on_assigned(assigned)


class Worker:
    """Consumes CloudTrail from Kafka, detects, produces Insights; see the module docstring."""

    def __init__(
        self,
        settings: WorkerSettings,
        metrics: WorkerMetrics | None = None,
        health: HealthState | None = None,
        on_insight: InsightCallback | None = None,
        on_connected: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or WorkerMetrics()
        self.health = health or HealthState()
        self.on_insight = on_insight
        self.on_connected = on_connected
        """Called once the clients are up and the output topic exists (the sinks start then:
        a consumer subscribed to a topic before it exists sees it only at a metadata refresh)."""
        self.stop_event = threading.Event()
        self._parts: dict[TopicPartition, Partition] = {}
        # assignments noted on kafka-python's IO thread, restored by the polling thread
        self._rebalance_lock = threading.Lock()
        self._to_restore: set[TopicPartition] = set()
        self._last_data = time.monotonic()
        self._last_records = float("-inf")
        self._stall_checked = time.monotonic()
        self._consumer: KafkaConsumer | None = None
        self._store: CheckpointStore | None = None
        self._broker = BrokerCalls(settings, self.metrics, self.health, self.stop_event)
        self._output = Output(settings, self.metrics, self._broker)
        # through the methods, so that a stand-in of either (the tests') is what sends
        self._dead = DeadLetters(
            settings.dead_letter_topic,
            self.metrics,
            lambda topic, key, value, headers: self._output.send(topic, key, value, headers),
            lambda: self._output.flush(),
        )
        self._gauges = PartitionGauges(self.metrics, settings.stream_metrics_limit)
        for topic in settings.input_topics:
            self.metrics.messages.labels(topic)  # at 0 before the first message

    # ------------------------------------------------------------------ set-up
    def _connect(self) -> None:
        clients = connect(self.settings, _Listener(self))
        self._consumer, self._store = clients.consumer, clients.store
        self._output.producer, self._output.scanner = clients.producer, clients.scanner

    # ------------------------------------------------------------------ rebalances
    def on_assigned(self, assigned: list[TopicPartition]) -> None:
        """Note newly assigned partitions; the polling thread restores them after its poll.

        kafka-python makes a partition fetchable before it calls this, so a poll can return
        records of a partition not restored yet: they are dropped, and the restore seeks back
        to the partition's position explicitly, so they are read again.
        """
        with self._rebalance_lock:
            self._to_restore.update(assigned)

    def _restore_assigned(self) -> None:
        with self._rebalance_lock:
            restore, self._to_restore = self._to_restore, set()
        for tp in sorted(restore):
            if tp not in self._parts:
                self._restore(tp)
        failpoint("assigned")
        self.metrics.partitions.set(len(self._parts))
        self.health.update(restored=True, detail={"partitions": len(self._parts)})

    def on_revoked(self, revoked: list[TopicPartition]) -> None:
        """Checkpoint and hand over each revoked partition (before anyone else gets it).

        kafka-python runs the group join, and so this, while the polling thread is blocked in
        ``poll()``: no partition is being processed meanwhile (and this must not wait for that
        thread: it would wait for ever).
        """
        self.health.update(restored=False)
        if revoked:
            failpoint("revoking")
        with self._rebalance_lock:
            self._to_restore.difference_update(revoked)
        for tp in sorted(revoked):
            part = self._parts.get(tp)
            if part is None:
                continue
            try:
                # no offset commit here: it would block on the consumer's own IO thread, and
                # the next owner restores from the checkpoint's offset anyway
                self._checkpoint(part, commit=False)
            except StreamsError as exc:
                logger.warning(
                    "could not checkpoint %s on revoke (%s); its next owner "
                    "re-reads from the previous checkpoint",
                    tp,
                    exc,
                )
            del self._parts[tp]
            self.metrics.consumer_lag.remove(tp.topic, str(tp.partition))
        self.metrics.partitions.set(len(self._parts))

    def _restore(self, tp: TopicPartition) -> None:
        """Restore a partition's engine and seek to its position; every path seeks explicitly."""
        assert self._store is not None
        assert self._consumer is not None
        config = self.settings.detection
        checkpoint = self._store.load(tp.topic, tp.partition)
        if checkpoint is None:
            offset = self._start_offset(tp)
            part = Partition(tp=tp, engine=InsightEngine(config), offset=offset)
        else:
            try:
                engine = InsightEngine.from_state(checkpoint.engine, config)
            except StateDecodeError as exc:
                if not self.settings.discard_incompatible_state:
                    raise ConfigError(
                        f"checkpoint of {tp.topic}/{tp.partition} cannot be used: {exc}; run with "
                        "the same detection settings, or set discard_incompatible_state"
                    ) from exc
                logger.warning("discarding incompatible checkpoint of %s: %s", tp, exc)
                engine = InsightEngine(config)
            part = Partition(
                tp=tp, engine=engine, offset=checkpoint.offset, sequence=checkpoint.sequence
            )
            part.stats_seen = engine.stats.copy()
            part.keys_seen = engine.keys_tracked
            if checkpoint.pending or checkpoint.contexts:
                self._output.redeliver(checkpoint)
        self._consumer.seek(tp, part.offset)
        self._parts[tp] = part
        if checkpoint is not None and not self._commit(part):
            # the group's offset may be older than the checkpoint's (a crash between the two):
            # lag tooling would show lag that is not there until the partition gets new records
            part.dirty = True  # the next due checkpoint commits it
        logger.info(
            "partition %s/%d restored at offset %d (%d keys)",
            tp.topic,
            tp.partition,
            part.offset,
            part.engine.keys_tracked,
        )

    def _start_offset(self, tp: TopicPartition) -> int:
        """Where a partition without a checkpoint starts: its committed offset, else the reset
        position (``auto_offset_reset``) resolved to a number now."""
        consumer = self._consumer
        assert consumer is not None
        committed = self._broker.retry("committed", lambda: consumer.committed(tp))
        if committed is not None:
            logger.warning(
                "%s has a committed offset %d but no checkpoint: starting a new baseline there",
                tp,
                committed,
            )
            return int(committed)
        if self.settings.auto_offset_reset == "earliest":
            ends = self._broker.retry("beginning_offsets", lambda: consumer.beginning_offsets([tp]))
        else:
            ends = self._broker.retry("end_offsets", lambda: consumer.end_offsets([tp]))
        return int(ends[tp])

    # ------------------------------------------------------------------ processing
    def _process(self, tp: TopicPartition, messages: list[Any]) -> None:
        part = self._parts.get(tp)
        if part is None:
            return  # not restored yet: the restore seeks back to these records
        self.metrics.messages.labels(tp.topic).inc(len(messages))
        messages = part.in_order(messages, self._seek, self.metrics)
        if not messages:
            return
        part.last_records = time.monotonic()
        values = [m.value if m.value is not None else b"" for m in messages]
        skew = self.settings.max_future_skew_seconds
        part.engine.reject_after(None if skew is None else int(time.time()) + skew)
        fed = Pipeline(part.engine).messages(values)
        for index, result in fed.failed:
            self._dead_letter(messages[index], values[index], result.rejections, not result.events)
        part.offset = messages[-1].offset + 1
        if fed.future:
            self._dead.future(part.tp, messages, fed.future)
        part.dirty = True
        part.stats_seen = self.metrics.add_engine_delta(part.stats_seen, part.engine.stats)
        self._gauges.check_keys(part)
        part.add(fed.records, self._output.contexts(part.engine))

    def _seek(self, tp: TopicPartition, offset: int) -> None:
        assert self._consumer is not None
        self._consumer.seek(tp, offset)

    def _dead_letter(
        self, message: Any, value: bytes, rejections: list[Rejection], whole: bool
    ) -> None:
        self._dead.message(message, value, rejections, whole)

    # ------------------------------------------------------------------ checkpoints and output
    def _due(self, part: Partition, now: float) -> bool:
        s = self.settings
        if part.pending_since is not None and now - part.pending_since >= s.output_delay_seconds:
            return True
        since = now - part.last_checkpoint
        if part.dirty and since >= s.checkpoint_interval_seconds:
            return True
        # an idle partition's checkpoint is re-written before the state topic's retention
        # could delete it
        return since >= s.state_retention_hours * 3600 / 4

    def _checkpoint(self, part: Partition, commit: bool) -> None:
        """Write the partition's checkpoint, then produce its pending Insights."""
        assert self._store is not None
        started = time.monotonic()
        output_from = self._output.positions() if part.pending else {}
        part.sequence += 1
        checkpoint = Checkpoint(
            topic=part.tp.topic,
            partition=part.tp.partition,
            offset=part.offset,
            engine=part.engine.save_state(),
            pending=list(part.pending),
            contexts=dict(part.contexts),
            output_from=output_from,
            sequence=part.sequence,
        )
        size = self._store.save(checkpoint)
        if part.pending:
            failpoint("before_produce")
        self.metrics.checkpoint_seconds.observe(time.monotonic() - started)
        self.metrics.checkpoint_bytes.labels(part.tp.topic, str(part.tp.partition)).set(size)
        self._output.produce(part.pending)
        part.contexts = self._output.write_contexts(part.contexts)
        if self.on_insight is not None:
            for record in part.pending_records:
                self.on_insight(record)
        part.pending = []
        part.pending_records = []
        part.pending_since = None
        part.dirty = False
        part.last_checkpoint = time.monotonic()
        if commit:
            self._commit(part)

    def _commit(self, part: Partition) -> bool:
        """Commit the input offset (for lag tooling; the checkpoint's offset is what restores);
        whether it went through."""
        assert self._consumer is not None
        try:
            self._consumer.commit({part.tp: OffsetAndMetadata(part.offset, "", -1)})
        except KafkaError as exc:
            self.metrics.broker_errors.labels("commit").inc()
            logger.info(
                "offset commit for %s failed (%s); the checkpoint is authoritative", part.tp, exc
            )
            return False
        return True

    # ------------------------------------------------------------------ loop
    def run(self) -> None:
        """Run until :attr:`stop_event` is set; then checkpoint, commit and close."""
        logger.info(
            "per-event loops: %s",
            "C accelerator"
            if accelerated()
            else "pure Python (built without a C "
            "compiler: about 1.6-2x slower, see docs/performance.md)",
        )
        try:
            self._connect()
        except KafkaError as exc:
            self._shutdown()
            raise ConfigError(
                f"cannot reach Kafka at {self.settings.bootstrap_servers}: {exc}"
            ) from exc
        consumer = self._consumer
        assert consumer is not None
        if self.on_connected is not None:
            self.on_connected()
        try:
            while not self.stop_event.is_set():
                self.poll_once(consumer)
        except StreamsError as exc:
            logger.error("worker loop stopped: %s; checkpointing what it has", exc)
            raise
        except Exception:
            logger.exception("worker loop failed; checkpointing what it has")
            raise
        finally:
            self._shutdown()

    def poll_once(self, consumer: KafkaConsumer) -> None:
        """One poll, its processing, due checkpoints and gauges."""
        eager = time.monotonic() - self._last_records < _EAGER_POLL_SECONDS
        try:
            batch = consumer.poll(timeout_ms=0 if eager else 200)
        except KafkaError as exc:
            # kafka-python can raise out of poll while connections are reset: the broker is
            # away, not the worker's input; report it, back off, and poll again
            self.metrics.broker_errors.labels("poll").inc()
            self._broker.reached(False)
            logger.warning("poll failed (%s); retrying in %.1f s", exc, _POLL_BACKOFF_SECONDS)
            self.stop_event.wait(_POLL_BACKOFF_SECONDS)
            return
        if self._to_restore:
            self._restore_assigned()
        now_wall = time.time()
        self.metrics.last_poll.set(now_wall)
        if batch:
            self._last_data = self._last_records = time.monotonic()
            self._broker.reached(True)
            with self.metrics.processing.time():
                for tp, messages in batch.items():
                    self._process(tp, messages)
        elif eager:
            self.stop_event.wait(_EAGER_POLL_WAIT)
        elif time.monotonic() - self._last_data > _IDLE_PROBE_SECONDS:
            self._probe_broker(consumer)
        now = time.monotonic()
        for part in list(self._parts.values()):
            if self._due(part, now):
                self._checkpoint(part, commit=True)
        self._gauges.update(self._parts.values(), consumer, now_wall)
        if now - self._stall_checked >= STALL_SECONDS / 3:
            self._stall_checked = now
            reseek_stalled(self._parts.values(), consumer, now, self.metrics)

    def _probe_broker(self, consumer: KafkaConsumer) -> None:
        self._last_data = time.monotonic()
        self._broker.probe(consumer)

    def _shutdown(self) -> None:
        """Checkpoint every partition, commit, leave the group, close the clients."""
        logger.info("stopping: checkpointing %d partitions", len(self._parts))
        failpoint("draining")
        for part in list(self._parts.values()):
            try:
                self._checkpoint(part, commit=True)
            except StreamsError as exc:
                logger.error("final checkpoint of %s failed: %s", part.tp, exc)
        self._parts.clear()
        output = self._output
        for closer in (self._consumer, output.scanner, self._store, output.producer):
            if closer is None:
                continue
            try:
                closer.close()
            except (KafkaError, OSError) as exc:
                logger.warning("close failed: %s", exc)
        self.health.update(alive=False, restored=False)
