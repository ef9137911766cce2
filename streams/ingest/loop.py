"""``ctinsights ingest``: S3 event notifications on SQS in, CloudTrail records on Kafka out.

The way Splunk's, Elastic's and Panther's CloudTrail inputs work: CloudTrail writes log files
to S3, the bucket notifies an SQS queue (directly or through SNS), and this loop long-polls the
queue, reads each new log file, produces its records keyed by account/Region (as ``ctinsights
produce`` does), and deletes the message only once Kafka acknowledged every record of every
file it names: at-least-once. A crash re-reads the message after its visibility timeout and
produces its records again; the worker drops the repeats by eventID.

While a message is being handled its visibility is extended every half timeout, so a large
file is not handed to another reader meanwhile. The files of a received batch (up to 10
messages) are read and sent ``concurrency`` messages at a time (files of one message in
order), flushed once, and each message is deleted when every record of its files is
acknowledged. A message that is no notification, and a file that cannot be
read as a log file, go to the dead-letter topic with the reason (and are deleted); anything
else (S3 or Kafka unavailable) leaves the message for a later attempt.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter, Gauge

from streams.errors import SinkError
from streams.failpoints import failpoint
from streams.ingest.notifications import NotificationError, S3Object, objects_of
from streams.ingest.objects import ObjectError, fetch, log_records
from streams.produce import message_key
from streams.settings import KeyScheme

__all__ = ["Ingest", "IngestMetrics", "IngestOptions"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IngestOptions:
    queue_url: str
    topic: str
    dead_letter_topic: str
    key: KeyScheme = KeyScheme.ACCOUNT_REGION
    concurrency: int = 4
    visibility_seconds: int = 300
    wait_seconds: int = 20
    exit_when_idle_seconds: float | None = None
    """Stop after the queue was empty this long (backfills and tests); None: run until told."""


class IngestMetrics:
    """``ctinsights_ingest_*`` on a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.messages = Counter("ctinsights_ingest_messages", "SQS messages handled", registry=r)
        self.objects = Counter("ctinsights_ingest_objects", "Log files read", registry=r)
        self.skipped = Counter(
            "ctinsights_ingest_skipped_objects", "Digest and Insight files passed over", registry=r
        )
        self.records = Counter("ctinsights_ingest_records", "Records produced", registry=r)
        self.bytes = Counter("ctinsights_ingest_bytes", "Bytes of log files read", registry=r)
        self.dead = Counter(
            "ctinsights_ingest_dead_letters", "Messages and files dead-lettered", ["reason"],
            registry=r,
        )  # fmt: skip
        self.lag = Gauge(
            "ctinsights_ingest_lag_seconds",
            "Age of the oldest message of the last receive (0 when the queue was empty)",
            registry=r,
        )


@dataclass(frozen=True, slots=True)
class _Sent:
    """A log file's records, sent and not yet acknowledged."""

    obj: S3Object
    futures: list[Any]
    size: int


class _KeepInvisible:
    """Extends a message's visibility every half timeout until :meth:`stop`."""

    def __init__(self, sqs: Any, queue_url: str, receipt: str, seconds: int) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(sqs, queue_url, receipt, seconds), daemon=True
        )
        self._thread.start()

    def _run(self, sqs: Any, queue_url: str, receipt: str, seconds: int) -> None:
        while not self._stop.wait(seconds / 2):
            try:
                sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=seconds
                )
            except Exception as exc:  # the message may be handled already; log, keep going
                logger.warning("could not extend a message's visibility: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class Ingest:
    """The loop: :meth:`run` until ``stop`` is set (or the queue stays empty, if asked)."""

    def __init__(
        self,
        options: IngestOptions,
        sqs: Any,
        s3: Any,
        producer: KafkaProducer,
        metrics: IngestMetrics | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.options = options
        self.sqs = sqs
        self.s3 = s3
        self.producer = producer
        self.metrics = metrics or IngestMetrics()
        self.stop = stop or threading.Event()

    def run(self) -> None:
        idle_since = time.monotonic()
        limit = self.options.exit_when_idle_seconds
        with ThreadPoolExecutor(self.options.concurrency, "ingest") as pool:
            while not self.stop.is_set():
                if self.poll_once(pool):
                    idle_since = time.monotonic()
                elif limit is not None and time.monotonic() - idle_since >= limit:
                    logger.info("queue empty for %.0f s: stopping", limit)
                    return

    def poll_once(self, pool: ThreadPoolExecutor) -> int:
        """Receive a batch and handle it; the number of messages."""
        o = self.options
        wait = o.wait_seconds if o.exit_when_idle_seconds is None else min(o.wait_seconds, 1)
        reply = self.sqs.receive_message(
            QueueUrl=o.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait,
            VisibilityTimeout=o.visibility_seconds,
            MessageSystemAttributeNames=["SentTimestamp"],
        )
        messages = reply.get("Messages", [])
        sent = [int(m.get("Attributes", {}).get("SentTimestamp", 0)) for m in messages]
        self.metrics.lag.set(max(time.time() - min(sent) / 1000, 0.0) if sent else 0.0)
        keepers = [
            _KeepInvisible(self.sqs, o.queue_url, m["ReceiptHandle"], o.visibility_seconds)
            for m in messages
        ]
        try:
            # the batch's files are read and sent (concurrency at a time), flushed once, and
            # each message is deleted when all its records are acknowledged
            sends = list(pool.map(self._send, messages))
            self.producer.flush(timeout=60)
            for message, sent_or_failed in zip(messages, sends, strict=True):
                try:
                    if isinstance(sent_or_failed, Exception):
                        raise sent_or_failed
                    self._acknowledged(sent_or_failed)
                    failpoint("ingest_before_delete")  # all acknowledged, the message kept
                    self.sqs.delete_message(
                        QueueUrl=o.queue_url, ReceiptHandle=message["ReceiptHandle"]
                    )
                    self.metrics.messages.inc()
                    failpoint("ingest_deleted")  # a message gone: its records must be in Kafka
                except Exception as exc:  # S3 or Kafka away: the message comes back later
                    logger.error("message left for a later attempt: %s", exc)
        finally:
            for keeper in keepers:
                keeper.stop()
        return len(messages)

    def _send(self, message: dict[str, Any]) -> list[_Sent] | Exception:
        """Send the records of every file ``message`` names (not waiting for them)."""
        try:
            try:
                objects = objects_of(message.get("Body", ""))
            except NotificationError as exc:
                self._dead_letter("not_a_notification", str(exc), {"body": message.get("Body")})
                objects = []
            return [sent for obj in objects if (sent := self._send_object(obj)) is not None]
        except Exception as exc:  # S3 away: the message comes back after its timeout
            return exc

    def _send_object(self, obj: S3Object) -> _Sent | None:
        if obj.skipped:
            self.metrics.skipped.inc()
            return None
        try:
            data = fetch(self.s3, obj)
            records = log_records(obj, data)
        except ObjectError as exc:
            self._dead_letter(exc.reason, exc.detail, {"bucket": obj.bucket, "key": obj.key})
            return None
        futures = []
        for index, record in enumerate(records):
            if index == len(records) // 2:
                failpoint("ingest_mid_file")  # half the file sent, nothing acknowledged
            key = message_key(record, self.options.key)
            futures.append(self.producer.send(self.options.topic, key=key, value=record))
        return _Sent(obj, futures, len(data))

    def _acknowledged(self, sent: list[_Sent]) -> None:
        """Wait for the acknowledgements of ``sent`` (``SinkError`` for a refused record)."""
        for item in sent:
            for future in item.futures:
                try:
                    future.get(timeout=60)  # raises what the broker said
                except KafkaError as exc:
                    where = f"s3://{item.obj.bucket}/{item.obj.key}"
                    raise SinkError(f"{where}: not acknowledged: {exc}") from exc
            self.metrics.objects.inc()
            self.metrics.bytes.inc(item.size)
            self.metrics.records.inc(len(item.futures))

    def _dead_letter(self, reason: str, detail: str, what: dict[str, Any]) -> None:
        entry = {"reason": reason, "detail": detail, **what}
        logger.warning("dead-lettered (%s): %s", reason, detail)
        future = self.producer.send(
            self.options.dead_letter_topic,
            value=json.dumps(entry).encode(),
            headers=[("ctinsights-reason", reason.encode())],
        )
        future.get(timeout=60)
        self.metrics.dead.labels(reason).inc()
