"""``ctinsights produce``: load CloudTrail files, S3 trees or JSON lines into a Kafka topic.

Each record is sent unchanged (one per message, or grouped into ``{"Records": [...]}`` batches),
keyed so that every detection key lands on one partition: the key is ``account/Region`` by
default (``account/Region/eventSource`` with ``--key account-region-source``). Records that
cannot be keyed (not CloudTrail at all) are sent without a key, so the worker's dead-letter path
sees them too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import msgspec
from kafka import KafkaProducer
from kafka.errors import KafkaError

from insights import decode_message
from streams.errors import SinkError
from streams.files import iter_blobs
from streams.settings import KeyScheme

__all__ = ["ProduceStats", "iter_raw_records", "message_key", "produce", "records_of"]

logger = logging.getLogger(__name__)


class _RawFile(msgspec.Struct):
    Records: list[msgspec.Raw] | None = None


_raw_file = msgspec.json.Decoder(_RawFile)
_raw_array = msgspec.json.Decoder(list[msgspec.Raw])


def records_of(data: bytes) -> Iterator[bytes]:
    """The records of a file's bytes, unchanged: a log file's, an array's, or JSON lines (a
    file that only looked like the first two is yielded whole, for the worker to reject)."""
    head = data.lstrip()[:12]
    try:
        if head.startswith(b"["):
            yield from (bytes(r) for r in _raw_array.decode(data))
            return
        if head.replace(b" ", b"").startswith(b'{"Records"'):
            parsed = _raw_file.decode(data)
            yield from (bytes(r) for r in parsed.Records or ())
            return
    except msgspec.MsgspecError:
        yield data  # not what it looked like: let the worker reject it
        return
    for line in data.split(b"\n"):
        if line.strip():
            yield line.strip()


def iter_raw_records(paths: list[str]) -> Iterator[bytes]:
    """Every record's bytes, unchanged, from files, S3-layout trees and ``-`` (stdin)."""
    for blob in iter_blobs(paths):
        if blob.error is not None:
            logger.warning("skipping %s", blob.error)
        elif blob.from_stdin:
            yield from (line.strip() for line in blob.data.split(b"\n") if line.strip())
        else:
            yield from records_of(blob.data)


def message_key(record: bytes, scheme: KeyScheme) -> bytes | None:
    """The partitioning key of one record, or None when it has no account and Region."""
    events = decode_message(record).events
    if not events:
        return None
    event = events[0]
    parts = [event.recipient_account_id or "", event.aws_region or ""]
    if scheme is KeyScheme.ACCOUNT_REGION_SOURCE:
        parts.append(event.event_source or "")
    return "/".join(parts).encode()


@dataclass(slots=True)
class ProduceStats:
    """What ``produce`` sent."""

    records: int = 0
    messages: int = 0
    unkeyed: int = 0
    keys: set[bytes] = field(default_factory=set)


def produce(
    producer: KafkaProducer,
    topic: str,
    records: Iterable[bytes],
    scheme: KeyScheme = KeyScheme.ACCOUNT_REGION,
    batch: int = 1,
) -> ProduceStats:
    """Send ``records`` to ``topic``; ``batch`` > 1 groups records of one key per message."""
    stats = ProduceStats()
    pending: dict[bytes | None, list[bytes]] = {}

    def send(key: bytes | None, items: list[bytes]) -> None:
        value = items[0] if batch == 1 else b'{"Records":[' + b",".join(items) + b"]}"
        try:
            producer.send(topic, key=key, value=value)
        except KafkaError as exc:
            raise SinkError(f"cannot produce to {topic}: {exc}") from exc
        stats.messages += 1

    for record in records:
        key = message_key(record, scheme)
        stats.records += 1
        if key is None:
            stats.unkeyed += 1
            send(None, [record])
            continue
        stats.keys.add(key)
        if batch == 1:
            send(key, [record])
            continue
        items = pending.setdefault(key, [])
        items.append(record)
        if len(items) >= batch:
            send(key, items)
            pending[key] = []
    for key, items in pending.items():
        if items:
            send(key, items)
    try:
        producer.flush(timeout=60)
    except KafkaError as exc:
        raise SinkError(f"cannot flush to {topic}: {exc}") from exc
    return stats
