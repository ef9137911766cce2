"""The topics the worker creates, and reading a topic's partitions to their current end.

The end is the high-water mark that comes back with fetched data, not ``end_offsets``: some
brokers (Tansu) report ``end_offsets`` behind the real end. A reported end of 0 with nothing
fetched means the partition is empty.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import NewTopic

from streams.errors import SourceError
from streams.settings import CheckpointStoreKind, WorkerSettings

__all__ = ["missing_topics", "read_to_end"]


def missing_topics(
    settings: WorkerSettings, existing: set[str], partitions_of: dict[str, int]
) -> list[NewTopic]:
    """The output, dead-letter and checkpoint topics the worker must create.

    Every one is ``cleanup.policy=delete``: nothing relies on compaction, and Apache Kafka
    refuses records without a key on a compacted topic. A checkpoint topic has one partition
    per input partition (``partitions_of``: input topic -> partition count) and the retention
    of ``state_retention_hours``.
    """
    replication = settings.topic_replication_factor
    wanted: list[NewTopic] = []
    for name in (settings.output_topic, settings.dead_letter_topic):
        if name and name not in existing:
            wanted.append(
                NewTopic(name, 1, replication, topic_configs=settings.topic_configs(False))
            )
    if settings.checkpoint_store is CheckpointStoreKind.KAFKA:
        for topic in settings.input_topics:
            state = settings.state_topic(topic)
            if state not in existing:
                configs = settings.topic_configs(True)
                wanted.append(
                    NewTopic(state, partitions_of[topic], replication, topic_configs=configs)
                )
    return wanted


def read_to_end(
    consumer: KafkaConsumer, starts: dict[TopicPartition, int], timeout: float
) -> Iterator[Any]:
    """Every message of each partition from its start offset to its end (``SourceError`` when
    that takes longer than ``timeout`` seconds)."""
    tps = list(starts)
    consumer.assign(tps)
    reported = consumer.end_offsets(tps)
    for tp, offset in starts.items():
        consumer.seek(tp, offset)
    remaining = set(tps)
    deadline = time.monotonic() + timeout
    while remaining:
        if time.monotonic() > deadline:
            names = ", ".join(f"{tp.topic}/{tp.partition}" for tp in sorted(remaining))
            raise SourceError(f"timed out reading {names} to its end")
        batch = consumer.poll(timeout_ms=500)
        for messages in batch.values():
            yield from messages
        for tp in list(remaining):
            highwater = consumer.highwater(tp)
            if highwater is None:
                if not batch.get(tp) and not reported.get(tp):
                    remaining.discard(tp)  # empty partition
            elif consumer.position(tp) >= highwater:
                remaining.discard(tp)
