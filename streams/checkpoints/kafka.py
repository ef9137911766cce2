"""Checkpoints in a state topic, chunked, the newest found from the tail (the default store)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from streams.checkpoints.model import Checkpoint
from streams.errors import SinkError, SourceError
from streams.topics import read_to_end

__all__ = ["KafkaStore"]

logger = logging.getLogger(__name__)

_H_SEQ = "ckpt-seq"
_H_INDEX = "ckpt-index"
_H_COUNT = "ckpt-count"
_H_FIRST = "ckpt-first"
_H_PREV = "ckpt-prev"


@dataclass(slots=True)
class _Chunk:
    offset: int
    seq: int
    index: int
    count: int
    first: int
    prev: int
    value: bytes


def _chunk_of(message: object) -> _Chunk | None:
    headers = dict(getattr(message, "headers", None) or [])
    try:
        return _Chunk(
            offset=int(getattr(message, "offset")),  # noqa: B009
            seq=int(headers[_H_SEQ]),
            index=int(headers[_H_INDEX]),
            count=int(headers[_H_COUNT]),
            first=int(headers[_H_FIRST]),
            prev=int(headers[_H_PREV]),
            value=bytes(getattr(message, "value")),  # noqa: B009
        )
    except (KeyError, ValueError, TypeError):
        return None


@dataclass(slots=True)
class KafkaStore:
    """Checkpoints in a state topic per input topic, chunked, newest found from the tail."""

    producer: KafkaProducer
    consumer: KafkaConsumer
    """A consumer without a group, used only to read state partitions."""
    topic_of: dict[str, str]
    """Input topic -> its state topic."""
    chunk_bytes: int = 900_000
    read_timeout: float = 30.0
    _last_first: dict[tuple[str, int], int] = field(default_factory=dict)

    def save(self, checkpoint: Checkpoint) -> int:
        data = checkpoint.encode()
        state_topic = self.topic_of[checkpoint.topic]
        key = (checkpoint.topic, checkpoint.partition)
        prev = self._last_first.get(key, -1)
        chunks = [data[i : i + self.chunk_bytes] for i in range(0, len(data), self.chunk_bytes)]
        first = -1
        try:
            for index, chunk in enumerate(chunks or [b""]):
                headers = [
                    (_H_SEQ, str(checkpoint.sequence).encode()),
                    (_H_INDEX, str(index).encode()),
                    (_H_COUNT, str(len(chunks) or 1).encode()),
                    (_H_FIRST, str(first).encode()),
                    (_H_PREV, str(prev).encode()),
                ]
                # keyed although nothing relies on compaction: Apache Kafka refuses keyless
                # records on a compacted topic, and an operator may have made it one
                chunk_key = f"{checkpoint.topic}/{checkpoint.partition}/{index}".encode()
                future = self.producer.send(
                    state_topic,
                    key=chunk_key,
                    value=chunk,
                    partition=checkpoint.partition,
                    headers=headers,
                )
                if index == 0:
                    first = future.get(timeout=self.read_timeout).offset
            self.producer.flush(timeout=self.read_timeout)
        except KafkaError as exc:
            raise SinkError(f"cannot write checkpoint to {state_topic}: {exc}") from exc
        self._last_first[key] = first
        return len(data)

    def load(self, topic: str, partition: int) -> Checkpoint | None:
        state_topic = self.topic_of[topic]
        tp = TopicPartition(state_topic, partition)
        tail = self._read_tail(tp)
        if tail is None:
            return None
        # the first chunk names no "first" (it is the first); later ones name chunk 0's offset
        start = tail.offset if tail.index == 0 else tail.first
        if tail.index != tail.count - 1:
            # the newest checkpoint was cut short by a crash: use the one before it
            start = tail.prev
            if start < 0:
                return None
        chunks = self._read_checkpoint(tp, start)
        if chunks is None:
            raise SourceError(f"checkpoint at {state_topic}/{partition}@{start} is incomplete")
        self._last_first[(topic, partition)] = start
        return Checkpoint.decode(b"".join(c.value for c in chunks))

    def _read_tail(self, tp: TopicPartition) -> _Chunk | None:
        """The last chunk of a state partition (reads forward from the reported end - 1)."""
        self.consumer.assign([tp])
        end = self.consumer.end_offsets([tp]).get(tp) or 0
        last: _Chunk | None = None
        for message in read_to_end(self.consumer, {tp: max(end - 1, 0)}, self.read_timeout):
            last = _chunk_of(message) or last
        return last

    def _read_checkpoint(self, tp: TopicPartition, start: int) -> list[_Chunk] | None:
        self.consumer.seek(tp, start)
        chunks: list[_Chunk] = []
        deadline = time.monotonic() + self.read_timeout
        while time.monotonic() < deadline:
            for message in self.consumer.poll(timeout_ms=500).get(tp, []):
                chunk = _chunk_of(message)
                if chunk is None:
                    continue
                if chunk.index == 0 and chunks:
                    chunks = []  # a newer checkpoint started (cannot happen with one writer)
                if chunk.index == 0 and chunk.offset != start:
                    return None
                chunks.append(chunk)
                if chunk.index == chunk.count - 1:
                    return chunks
        return None

    def close(self) -> None:
        self.consumer.close()
