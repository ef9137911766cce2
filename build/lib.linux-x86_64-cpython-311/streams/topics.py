"""Reading a topic's partitions from given offsets to their current end.

The end is the high-water mark that comes back with fetched data, not ``end_offsets``: some
brokers (Tansu) report ``end_offsets`` behind the real end. A reported end of 0 with nothing
fetched means the partition is empty.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from streams.errors import SourceError

__all__ = ["read_to_end"]


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
