"""A checkpoint (engine state, input offset, Insights not yet produced) and the store protocol."""

from __future__ import annotations

from typing import Protocol

import msgspec

from streams.errors import SourceError

__all__ = ["Checkpoint", "CheckpointStore", "PendingInsight"]

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
    contexts: dict[str, bytes] = {}
    """Insight contexts (JSON) issued before this checkpoint and not yet written to the Insight
    directory: a worker restored from it writes them (they replace older issues)."""
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
