"""Runs the sinks: each reads the output topic in its own group and thread.

The offset of a sink's group is committed only after every record of a poll was delivered,
filtered out or dead-lettered, so a crash re-sends (at-least-once) and never skips.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer
from kafka.errors import KafkaError

from streams.metrics import HealthState, WorkerMetrics
from streams.settings import WorkerSettings
from streams.sinks.files import InsightFileWriter
from streams.sinks.webhook import Delivery, WebhookSender

__all__ = ["SinkRunner", "start_sinks"]

logger = logging.getLogger(__name__)

Handler = Callable[[list[dict[str, Any]]], object]


#: Backoff between attempts of a failing sink: doubles from the first to the last.
_SINK_BACKOFF_SECONDS = (1.0, 60.0)


class SinkRunner:
    """One sink: a consumer of the output topic feeding a handler, in a daemon thread.

    A sink never dies quietly: when its handler raises (a directory it cannot write, a
    dead-letter file it cannot open) or its consumer fails, the same records are tried again
    with exponential backoff until they go through or the worker stops, while
    ``ctinsights_sink_up{sink}`` is 0 and (``sink_failure_fails_readiness``) ``/readyz`` fails.
    """

    def __init__(
        self,
        settings: WorkerSettings,
        name: str,
        handler: Handler,
        stop: threading.Event,
        metrics: WorkerMetrics,
        health: HealthState,
    ) -> None:
        self.settings = settings
        self.name = name
        self.handler = handler
        self.stop = stop
        self.metrics = metrics
        self.health = health
        self.failures = 0
        self.thread = threading.Thread(target=self._run, name=f"sink-{name}", daemon=True)

    def start(self) -> SinkRunner:
        self._state(True)
        self.thread.start()
        return self

    def _state(self, up: bool) -> None:
        self.metrics.sink_up.labels(self.name).set(1 if up else 0)
        self.health.sink_state(self.name, up)

    def _failed(self, what: str, exc: BaseException) -> None:
        """Count a failure, report the sink down, and wait before the next attempt."""
        self.failures += 1
        self.metrics.sink_errors.labels(self.name).inc()
        self._state(False)
        first, longest = _SINK_BACKOFF_SECONDS
        delay = min(first * 2 ** (self.failures - 1), longest)
        log = logger.error if self.failures == 1 or self.failures % 10 == 0 else logger.warning
        log(
            "sink %s: %s failed (%s: %s); attempt %d, retrying in %.0f s",
            self.name,
            what,
            type(exc).__name__,
            exc,
            self.failures,
            delay,
        )
        self.stop.wait(delay)

    def _recovered(self) -> None:
        if self.failures:
            logger.info("sink %s: delivering again after %d failures", self.name, self.failures)
        self.failures = 0
        self._state(True)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                consumer = self._consumer()
            except KafkaError as exc:
                self._failed("connecting", exc)
                continue
            try:
                self._consume(consumer)
            except KafkaError as exc:
                self._failed("reading the output topic", exc)
            finally:
                consumer.close()

    def _consumer(self) -> KafkaConsumer:
        s = self.settings
        return KafkaConsumer(
            s.output_topic,
            **s.kafka_options(),
            group_id=f"{s.group_id}.sink.{self.name}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=100,
            # the worker's group timings: with kafka-python's default heartbeat (3 s) the local
            # broker took 23 s to admit a sink to its group, so the first alert after a start
            # came 16-39 s late; with these (10 s / 2 s) it takes ~5 s
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=s.heartbeat_interval_ms,
        )

    def _consume(self, consumer: KafkaConsumer) -> None:
        while not self.stop.is_set():
            batch = consumer.poll(timeout_ms=500)
            records = self._decode([m for ms in batch.values() for m in ms])
            if not records:
                if batch:
                    consumer.commit()  # only records no sink can read: passed, not re-read
                continue
            if not self._handle(records):
                return  # stopping: the records are left for the next start
            try:
                consumer.commit()
            except KafkaError as exc:
                logger.warning("sink %s: commit failed (%s); records may repeat", self.name, exc)

    def _decode(self, messages: list[Any]) -> list[dict[str, Any]]:
        """The Insight records among ``messages``; anything else on the output topic is logged,
        counted and passed over (retrying it would stop the sink for good)."""
        records = []
        for message in messages:
            try:
                record = json.loads(message.value)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
            except (TypeError, ValueError) as exc:
                self.metrics.sink_errors.labels(self.name).inc()
                logger.error(
                    "sink %s: %s/%d@%d is not an Insight record (%s); passed over",
                    self.name,
                    message.topic,
                    message.partition,
                    message.offset,
                    exc,
                )
                continue
            records.append(record)
        return records

    def _handle(self, records: list[dict[str, Any]]) -> bool:
        """Hand ``records`` over until it works; False if the worker stopped first."""
        while not self.stop.is_set():
            try:
                self.handler(records)
            except Exception as exc:
                self._failed("handling a batch", exc)
                continue
            if self.stop.is_set():
                return False  # records may be cut short: leave them for the next start
            self._recovered()
            return True
        return False


def start_sinks(
    settings: WorkerSettings, metrics: WorkerMetrics, health: HealthState, stop: threading.Event
) -> list[SinkRunner]:
    """Start one runner per configured webhook, plus the Insight file writer if configured."""
    runners: list[SinkRunner] = []
    for hook in settings.linked_webhooks():
        for family in (
            metrics.webhook_deliveries,
            metrics.webhook_failures,
            metrics.webhook_retries,
            metrics.webhook_dead,
        ):
            family.labels(hook.name)  # series exist (at 0) before the first event

        def count(outcome: str, name: str = hook.name) -> None:
            {
                "delivered": metrics.webhook_deliveries,
                "failed": metrics.webhook_failures,
                "retry": metrics.webhook_retries,
            }[outcome].labels(name).inc()

        sender = WebhookSender(hook, on_attempt=count, stop=stop)

        def deliver(records: list[dict[str, Any]], sender: WebhookSender = sender) -> None:
            for record in records:
                if sender.deliver(record) is Delivery.DEAD_LETTERED:
                    metrics.webhook_dead.labels(sender.settings.name).inc()

        runners.append(SinkRunner(settings, hook.name, deliver, stop, metrics, health).start())
    if settings.insight_dir is not None:
        writer = InsightFileWriter(settings.insight_dir, int(settings.insight_file_mode, 8))
        runners.append(SinkRunner(settings, "files", writer.write, stop, metrics, health).start())
    return runners
