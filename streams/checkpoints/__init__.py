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

from collections.abc import Callable

from kafka import KafkaConsumer, KafkaProducer

from streams.checkpoints.directory import DirectoryStore
from streams.checkpoints.kafka import KafkaStore
from streams.checkpoints.model import Checkpoint, CheckpointStore, PendingInsight
from streams.settings import CheckpointStoreKind, WorkerSettings

__all__ = [
    "Checkpoint",
    "CheckpointStore",
    "DirectoryStore",
    "KafkaStore",
    "PendingInsight",
    "open_store",
]


def open_store(
    settings: WorkerSettings,
    producer: KafkaProducer,
    new_consumer: Callable[[], KafkaConsumer],
) -> CheckpointStore:
    """The store ``settings.checkpoint_store`` names (a new store is a module here and a line)."""
    if settings.checkpoint_store is CheckpointStoreKind.KAFKA:
        return KafkaStore(
            producer=producer,
            consumer=new_consumer(),
            topic_of={t: settings.state_topic(t) for t in settings.input_topics},
            chunk_bytes=settings.checkpoint_chunk_bytes,
        )
    return DirectoryStore(settings.state_dir / settings.group_id)
