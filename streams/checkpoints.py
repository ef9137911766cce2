"""Partition checkpoints: engine state + the input offset it reflects + Insights not yet produced.

A checkpoint is written *before* the Insights it carries are produced; after a crash the next
owner of the partition restores it, produces those Insights again unless the output topic already
holds them (it scans the output topic from the positions recorded in the checkpoint), and
re-reads the input from the checkpoint's offset. Replaying the same input through the same state
gives byte-identical Insights, so the output topic ends up with exactly the records of an
uninterrupted run. No Kafka transactions or log compaction are needed.

Two stores:

* :class:`DirectoryStore`: one file per partition, replaced atomically (write, fsync, rename).
  Survives worker crashes and broker restarts; shared between hosts only through a shared volume.
* :class:`KafkaStore`: a state topic per input topic (partition *p* holds the checkpoints of input
  partition *p*), each checkpoint split into chunks. The newest complete checkpoint is found from
  the tail of the partition, so restoring never depends on compaction: the topic is
  ``cleanup.policy=delete`` with a retention (``state_retention_hours``), and the worker
  re-writes an idle partition's checkpoint well within it. Survives the loss of a worker host.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import msgspec
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from streams.errors import SinkError, SourceError
from streams.files import write_atomically
from streams.topics import read_to_end

__all__ = ["Checkpoint", "CheckpointStore", "DirectoryStore", "KafkaStore", "PendingInsight"]

logger = logging.getLogger(__name__)

_FORMAT = 1


class PendingInsight(msgspec.Struct, array_like=True, frozen=True):
    """An Insight record waiting to be produced: its ids and its JSON bytes."""

    event_id: str
    shared_event_id: str
    value: bytes


class Checkpoint(msgspec.Struct, frozen=True):
    """What a partition's next owner needs to continue exactly where this one left off."""

    topic: str
    partition: int
    offset: int
    """Next input offset to read (everything before it is reflected in ``engine``)."""
    engine: bytes
    pending: list[PendingInsight] = []
    output_from: dict[int, int] = {}
    """Output-topic positions before which none of ``pending`` can be (where a re-check starts)."""
    sequence: int = 0
    format: int = _FORMAT

    def encode(self) -> bytes:
        """MessagePack bytes."""
        return msgspec.msgpack.encode(self)

    @classmethod
    def decode(cls, data: bytes) -> Checkpoint:
        """Inverse of :meth:`encode`; ``SourceError`` for anything else."""
        try:
            checkpoint = msgspec.msgpack.decode(data, type=cls)
        except msgspec.MsgspecError as exc:
            raise SourceError(f"unreadable checkpoint: {exc}") from exc
        if checkpoint.format != _FORMAT:
            raise SourceError(f"checkpoint format {checkpoint.format} is not {_FORMAT}")
        return checkpoint


class CheckpointStore(Protocol):
    """Durable storage of the newest checkpoint of each input partition."""

    def save(self, checkpoint: Checkpoint) -> int:
        """Store durably (return only once it would survive a crash); return its size."""
        ...

    def load(self, topic: str, partition: int) -> Checkpoint | None:
        """The newest complete checkpoint of a partition, or None."""
        ...

    def close(self) -> None:
        """Release resources."""
        ...


class DirectoryStore:
    """Checkpoints as files ``<root>/<topic>/<partition>.ckpt``, replaced atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, topic: str, partition: int) -> Path:
        return self.root / topic / f"{partition}.ckpt"

    def save(self, checkpoint: Checkpoint) -> int:
        path = self._path(checkpoint.topic, checkpoint.partition)
        data = checkpoint.encode()
        try:
            write_atomically(path, data)
        except OSError as exc:
            raise SinkError(f"cannot write checkpoint {path}: {exc}") from exc
        return len(data)

    def load(self, topic: str, partition: int) -> Checkpoint | None:
        path = self._path(topic, partition)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SourceError(f"cannot read checkpoint {path}: {exc}") from exc
        return Checkpoint.decode(data)

    def close(self) -> None:
        return None


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
