"""Runs the sinks of :mod:`streams.sinks`: each reads the output topic in its own group and thread.

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

from streams.metrics import WorkerMetrics
from streams.settings import WorkerSettings
from streams.sinks import Delivery, InsightFileWriter, WebhookSender

__all__ = ["SinkRunner", "start_sinks"]

logger = logging.getLogger(__name__)

Handler = Callable[[list[dict[str, Any]]], object]


class SinkRunner:
    """One sink: a consumer of the output topic feeding a handler, in a daemon thread."""

    def __init__(
        self, settings: WorkerSettings, name: str, handler: Handler, stop: threading.Event
    ) -> None:
        self.settings = settings
        self.name = name
        self.handler = handler
        self.stop = stop
        self.thread = threading.Thread(target=self._run, name=f"sink-{name}", daemon=True)

    def start(self) -> SinkRunner:
        self.thread.start()
        return self

    def _run(self) -> None:
        s = self.settings
        consumer = KafkaConsumer(
            s.output_topic,
            **s.kafka_options(),
            group_id=f"{s.group_id}.sink.{self.name}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=100,
        )
        try:
            while not self.stop.is_set():
                batch = consumer.poll(timeout_ms=500)
                records = [json.loads(m.value) for ms in batch.values() for m in ms]
                if not records:
                    continue
                self.handler(records)
                if self.stop.is_set():
                    break  # records may be cut short: leave them for the next start
                try:
                    consumer.commit()
                except KafkaError as exc:
                    logger.warning(
                        "sink %s: commit failed (%s); records may repeat", self.name, exc
                    )
        except Exception:
            logger.exception("sink %s stopped", self.name)
            raise
        finally:
            consumer.close()


def start_sinks(
    settings: WorkerSettings, metrics: WorkerMetrics, stop: threading.Event
) -> list[SinkRunner]:
    """Start one runner per configured webhook, plus the Insight file writer if configured."""
    runners: list[SinkRunner] = []
    for hook in settings.webhooks:
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

        runners.append(SinkRunner(settings, hook.name, deliver, stop).start())
    if settings.insight_dir is not None:
        writer = InsightFileWriter(settings.insight_dir, int(settings.insight_file_mode, 8))
        runners.append(SinkRunner(settings, "files", writer.write, stop).start())
    return runners
