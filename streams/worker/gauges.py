"""What the worker reports about its partitions: lag, keys, watermarks, rates, mis-keyed input."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from kafka.structs import TopicPartition

from streams.metrics import WorkerMetrics
from streams.worker.partition import Partition

__all__ = ["PartitionGauges"]

logger = logging.getLogger(__name__)

#: Keys exported with rate and baseline (besides every key in an open insight).
_TOP_KEYS = 20
#: Rates and per-stream watermarks are recomputed at most this often.
_EVERY_SECONDS = 5.0
_MAX_CONFLICT_LOGS = 20


class PartitionGauges:
    """Gauges over every assigned partition, and the detection keys seen on two partitions."""

    def __init__(self, metrics: WorkerMetrics, stream_limit: int) -> None:
        self.metrics = metrics
        self.stream_limit = stream_limit
        self._key_partition: dict[tuple[str, str, str, str], TopicPartition] = {}
        self._conflicts_logged = 0
        self._rates_published = 0.0
        self._streams_published = 0.0
        self._streams_exported: set[tuple[str, str]] = set()

    def check_keys(self, part: Partition) -> None:
        """Report detection keys that arrive on more than one partition (mis-keyed input)."""
        keys = part.engine.keys(part.keys_seen)
        part.keys_seen += len(keys)
        for key in keys:
            ident = (key.account, key.region, key.event_source, key.event_name)
            owner = self._key_partition.setdefault(ident, part.tp)
            if owner != part.tp:
                self.metrics.key_conflicts.inc()
                if self._conflicts_logged < _MAX_CONFLICT_LOGS:
                    self._conflicts_logged += 1
                    logger.warning(
                        "detection key %s arrives on %s/%d and %s/%d: key input messages by "
                        "account and Region (see README)",
                        "/".join(ident),
                        owner.topic,
                        owner.partition,
                        part.tp.topic,
                        part.tp.partition,
                    )

    def update(self, parts: Iterable[Partition], consumer: Any, now_wall: float) -> None:
        """Lag, keys, open insights and the newest watermark; rates and per-stream watermarks
        every few seconds."""
        parts = list(parts)
        keys = open_insights = 0
        newest: int | None = None
        for part in parts:
            keys += part.engine.keys_tracked
            open_insights += part.engine.open_insights
            mark = part.engine.newest_watermark()
            if mark is not None and (newest is None or mark > newest):
                newest = mark
            highwater = consumer.highwater(part.tp)
            if highwater is not None:
                lag = max(highwater - part.offset, 0)
                self.metrics.consumer_lag.labels(part.tp.topic, str(part.tp.partition)).set(lag)
        self.metrics.keys.set(keys)
        self.metrics.open.set(open_insights)
        if time.monotonic() - self._rates_published >= _EVERY_SECONDS:
            self._rates_published = time.monotonic()
            rates = [r for part in parts for r in part.engine.rates(_TOP_KEYS)]
            busiest = sorted(rates, key=lambda r: -r.rate_per_minute)[:_TOP_KEYS]
            chosen = {id(r): r for r in busiest + [r for r in rates if r.in_insight]}
            self.metrics.baselines.publish(list(chosen.values()))
        if newest is not None:
            self.metrics.watermark_lag.set(now_wall - newest * 60)
            self.publish_streams(parts, now_wall)

    def publish_streams(self, parts: Iterable[Partition], now_wall: float) -> None:
        """Per-stream watermark lag of the freshest ``stream_limit`` streams."""
        if time.monotonic() - self._streams_published < _EVERY_SECONDS:
            return
        self._streams_published = time.monotonic()
        marks: dict[tuple[str, str], int] = {}
        for part in parts:
            for key, mark in part.engine.watermarks().items():
                marks[key] = max(mark, marks.get(key, mark))
        freshest = sorted(marks.items(), key=lambda item: -item[1])
        gauge = self.metrics.stream_watermark_lag
        chosen = dict(freshest[: self.stream_limit])
        for gone in self._streams_exported - chosen.keys():
            gauge.remove(*gone)  # no series disappears and comes back between scrapes
        for (account, region), mark in chosen.items():
            gauge.labels(account, region).set(now_wall - mark * 60)
        self._streams_exported = set(chosen)
