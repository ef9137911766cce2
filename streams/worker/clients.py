"""The worker's Kafka clients, and the topics it needs."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import TopicAlreadyExistsError

from streams.checkpoints import CheckpointStore, open_store
from streams.errors import ConfigError
from streams.settings import WorkerSettings
from streams.topics import missing_topics
from streams.worker.broker import partitions_of
from streams.worker.dead_letters import LIMIT

__all__ = ["Clients", "connect"]

logger = logging.getLogger(__name__)

_MAX_FETCH = 16 * 1024 * 1024


@dataclass(slots=True)
class Clients:
    """The group consumer of the input, the producer, a consumer outside the group (to read
    the output topic back) and the checkpoint store."""

    consumer: KafkaConsumer
    producer: KafkaProducer
    scanner: KafkaConsumer
    store: CheckpointStore


def _unassigned(settings: WorkerSettings) -> KafkaConsumer:
    return KafkaConsumer(
        **settings.kafka_options(),
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=_MAX_FETCH,
        fetch_max_bytes=_MAX_FETCH * 4,
    )


def connect(settings: WorkerSettings, listener: ConsumerRebalanceListener) -> Clients:
    """Open the clients (creating missing topics when asked) and subscribe to the input."""
    s = settings
    producer = KafkaProducer(
        **s.kafka_options(),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_block_ms=10_000,
        max_request_size=max(s.checkpoint_chunk_bytes, LIMIT) + 64 * 1024,
    )
    scanner = _unassigned(s)
    try:
        if s.create_topics:
            ensure_topics(s, scanner)
        store = open_store(s, producer, lambda: _unassigned(s))
        consumer = KafkaConsumer(
            **s.kafka_options(),
            group_id=s.group_id,
            enable_auto_commit=False,
            auto_offset_reset=s.auto_offset_reset,
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=s.heartbeat_interval_ms,
            max_poll_records=s.max_poll_records,
            max_poll_interval_ms=s.max_poll_interval_ms,
            max_partition_fetch_bytes=_MAX_FETCH,
            fetch_max_bytes=_MAX_FETCH * 4,
            fetch_max_wait_ms=s.fetch_max_wait_ms,
        )
    except BaseException:
        scanner.close()
        producer.close()
        raise
    consumer.subscribe(s.input_topics, listener=listener)
    return Clients(consumer, producer, scanner, store)


def ensure_topics(settings: WorkerSettings, scanner: KafkaConsumer) -> None:
    """Create the output, dead-letter and state topics that are missing; the inputs must exist."""
    admin = KafkaAdminClient(**settings.kafka_options())
    try:
        existing = set(admin.list_topics())
        missing_inputs = [t for t in settings.input_topics if t not in existing]
        if missing_inputs:
            raise ConfigError(f"input topics do not exist: {', '.join(missing_inputs)}")
        counts = {t: len(partitions_of(scanner, t)) for t in settings.input_topics}
        for topic in missing_topics(settings, existing, counts):
            try:
                admin.create_topics([topic])
                logger.info("created topic %s (%d partitions)", topic.name, topic.num_partitions)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
