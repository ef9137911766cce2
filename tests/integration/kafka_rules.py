"""Apache Kafka's record rules, checked on every record a worker produces.

The local broker (Tansu) accepts records Apache Kafka refuses: a record without a key on a
compacted topic (``InvalidRecordException``, "Compacted topic cannot accept message without
key") and a record batch above the topic's ``max.message.bytes`` (``RecordTooLargeException``;
broker default 1,048,588). :class:`StrictKafka` wraps the worker's producer and admin client,
remembers the configs of the topics it creates, and notes each record that a real cluster would
refuse. Sizes are the uncompressed size of a one-record batch (the bound a compressed batch of
records this size still meets).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer

#: ``message.max.bytes``, the broker default of a topic's ``max.message.bytes``.
DEFAULT_MAX_MESSAGE_BYTES = 1_048_588
#: A record batch header (magic v2).
_BATCH_OVERHEAD = 61
#: A record's attributes, timestamp and offset deltas, and its length varints (upper bound).
_RECORD_OVERHEAD = 21
_HEADER_OVERHEAD = 10
_LEGAL_TOPIC = re.compile(r"[a-zA-Z0-9._-]{1,249}")


def record_size(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> int:
    """An upper bound of the size of a batch that holds this one record."""
    size = _BATCH_OVERHEAD + _RECORD_OVERHEAD + len(key or b"") + len(value or b"")
    for name, header_value in headers:
        size += _HEADER_OVERHEAD + len(name.encode()) + len(header_value)
    return size


@dataclass
class StrictKafka:
    """What a worker produced and created, and every rule of Apache Kafka it broke."""

    configs: dict[str, dict[str, str]] = field(default_factory=dict)
    produced: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def created(self, topics: list[Any]) -> None:
        for topic in topics:
            configs = dict(topic.topic_configs or {})
            if not _LEGAL_TOPIC.fullmatch(topic.name):
                self.violations.append(f"illegal topic name {topic.name!r}")
            if topic.replication_factor == 0:
                self.violations.append(f"{topic.name}: replication factor 0")
            self.configs[topic.name] = configs

    def sent(self, topic: str, key: Any, value: Any, headers: list[tuple[str, bytes]]) -> None:
        self.produced[topic] = self.produced.get(topic, 0) + 1
        configs = self.configs.get(topic, {})
        if "compact" in configs.get("cleanup.policy", "delete") and key is None:
            self.violations.append(f"{topic}: record without a key on a compacted topic")
        if not all(isinstance(n, str) and isinstance(v, bytes) for n, v in headers):
            self.violations.append(f"{topic}: header names must be str and values bytes")
        limit = int(configs.get("max.message.bytes", DEFAULT_MAX_MESSAGE_BYTES))
        size = record_size(key, value, headers)
        if size > limit:
            self.violations.append(f"{topic}: record of {size} bytes above {limit}")


def strict_classes(rules: StrictKafka) -> tuple[type[KafkaProducer], type[KafkaAdminClient]]:
    """A producer and an admin client class that report to ``rules``."""

    class Producer(KafkaProducer):  # type: ignore[misc]
        def send(self, topic: str, value: Any = None, key: Any = None, **kwargs: Any) -> Any:
            rules.sent(topic, key, value, list(kwargs.get("headers") or []))
            return super().send(topic, value=value, key=key, **kwargs)

    class Admin(KafkaAdminClient):  # type: ignore[misc]
        def create_topics(self, new_topics: list[Any], *args: Any, **kwargs: Any) -> Any:
            rules.created(new_topics)
            return super().create_topics(new_topics, *args, **kwargs)

    return Producer, Admin
