"""Bytes in, Insight records out: the one path that replay and the worker both run.

Decoded events go to the engine a small chunk at a time, while they are still in the CPU cache;
the closed minutes are scored in large vectorized steps (every ``DRAIN_EVERY`` events, and at
:meth:`Pipeline.drain`). The insights do not depend on how the input was cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from insights.chunks import chunk_ranges
from insights.decoding import decode_many
from insights.engine import InsightEngine
from insights.events import CloudTrailEvent, DecodeResult
from insights.records import InsightRecord

__all__ = ["Fed", "Pipeline"]


@dataclass(slots=True)
class Fed:
    """What a batch of messages gave (see :meth:`Pipeline.messages`)."""

    records: list[InsightRecord] = field(default_factory=list)
    """The Insight records the batch caused, in order."""
    failed: list[tuple[int, DecodeResult]] = field(default_factory=list)
    """Each message with rejections: (its index in the batch, its own decode result)."""
    future: list[CloudTrailEvent] = field(default_factory=list)
    """Events the engine rejected as ``future_timestamp`` (see ``reject_after``)."""


class Pipeline:
    """Feeds an engine decoded input; the engine's state is its state (snapshots included)."""

    def __init__(self, engine: InsightEngine) -> None:
        self.engine = engine

    def decoded(self, result: DecodeResult) -> list[InsightRecord]:
        """Events decoded by a reader (files, trees, stdin); closed minutes are scored once
        enough events have come (or at :meth:`drain`)."""
        return self.engine.process_many(result.events, drain=False)

    def messages(self, values: Sequence[bytes]) -> Fed:
        """A batch of messages (each a record, a batch of records or any accepted shape), then
        every closed minute scored: what a poll of Kafka needs."""
        fed = Fed()
        for start, end in chunk_ranges(values):
            failed: list[tuple[int, DecodeResult]] = []
            decoded = decode_many(values[start:end], failed=failed)
            fed.failed.extend((start + index, result) for index, result in failed)
            fed.records.extend(self.decoded(decoded))
        fed.records.extend(self.engine.drain())
        fed.future = self.engine.take_rejected()
        return fed

    def drain(self) -> list[InsightRecord]:
        """Score every minute closed so far."""
        return self.engine.drain()

    def flush(self) -> list[InsightRecord]:
        """End of a finite input: close every minute and end every open insight."""
        return self.engine.flush()
