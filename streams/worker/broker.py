"""Calls to the broker that must go through: retried with backoff, and reported."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from kafka import KafkaConsumer
from kafka.errors import KafkaError

from streams.errors import SinkError, SourceError
from streams.metrics import HealthState, WorkerMetrics
from streams.settings import WorkerSettings

__all__ = ["BrokerCalls", "partitions_of"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class BrokerCalls:
    """Retries a call until the broker answers, keeping ``broker_up`` and readiness current."""

    def __init__(
        self,
        settings: WorkerSettings,
        metrics: WorkerMetrics,
        health: HealthState,
        stop_event: threading.Event,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.health = health
        self.stop_event = stop_event

    def retry(self, operation: str, call: Callable[[], T]) -> T:
        """Call until it succeeds, with exponential backoff and jitter; the worker stays up.

        Gives up (``SinkError``) only when stopping and the shutdown bound has passed.
        """
        delay = 0.2
        give_up_at: float | None = None
        while True:
            try:
                result = call()
                self.reached(True)
                return result
            except KafkaError as exc:
                self.metrics.broker_errors.labels(operation).inc()
                self.reached(False)
                logger.warning("%s failed (%s); retrying in %.1f s", operation, exc, delay)
            if self.stop_event.is_set():
                if give_up_at is None:
                    give_up_at = time.monotonic() + self.settings.shutdown_timeout_seconds
                elif time.monotonic() > give_up_at:
                    raise SinkError(f"{operation} still failing at shutdown")
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 10.0)

    def reached(self, ok: bool) -> None:
        """Report whether the last call to the broker got through (metric and readiness)."""
        self.metrics.broker_up.set(1 if ok else 0)
        self.health.update(broker_ok=ok)

    def probe(self, consumer: KafkaConsumer) -> None:
        """A real round trip to the broker (an idle worker's check that it is there)."""
        try:
            # topics() may answer from cached metadata while the broker is away
            assigned = sorted(consumer.assignment())
            if assigned:
                consumer.end_offsets(assigned[:1], timeout_ms=5000)
            else:
                consumer.topics()
        except KafkaError as exc:
            self.reached(False)
            logger.warning("broker unreachable: %s", exc)
            return
        self.reached(True)


def partitions_of(client: KafkaConsumer, topic: str, timeout: float = 30.0) -> set[int]:
    """The partition numbers of ``topic`` (refreshing metadata until they are known)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found: Any = client.partitions_for_topic(topic)
        if found:
            return set(found)
        client.topics()  # refresh metadata
        time.sleep(0.2)
    raise SourceError(f"no partition metadata for topic {topic}")
