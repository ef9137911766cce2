"""What an SQS message says was delivered: the S3 objects to read.

Three shapes reach the queue:

* an S3 event notification (``{"Records": [{"eventSource": "aws:s3", "s3": {...}}]}``), sent
  by the bucket to the queue directly; object keys in it are URL-encoded (``+`` for a space);
* the same wrapped by SNS (``{"Type": "Notification", "Message": "<the notification as a
  string>"}``), when the bucket notifies a topic the queue subscribes to (raw message delivery
  off);
* CloudTrail's own SNS notice of a delivered log file (``{"s3Bucket": "...", "s3ObjectKey":
  ["..."]}``), keys not encoded.

``s3:TestEvent`` (sent when a notification is configured) names nothing. Digest and Insight
files (``CloudTrail-Digest/``, ``CloudTrail-Insight/``) are skipped, and counted as such.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

__all__ = ["NotificationError", "S3Object", "objects_of"]

_SKIPPED = ("/CloudTrail-Digest/", "/CloudTrail-Insight/")


class NotificationError(ValueError):
    """A message that is not a notification of any shape ingest reads (it is dead-lettered)."""


@dataclass(frozen=True, slots=True)
class S3Object:
    bucket: str
    key: str
    size: int | None = None

    @property
    def skipped(self) -> bool:
        """A digest or Insight file, or a folder marker: not CloudTrail events to read."""
        return any(part in f"/{self.key}" for part in _SKIPPED) or self.key.endswith("/")


def objects_of(body: str) -> list[S3Object]:
    """The S3 objects a message body names (``NotificationError`` if it is none of the
    shapes above).

    Examples:
        >>> objects_of('{"s3Bucket": "b", "s3ObjectKey": ["AWSLogs/1/CloudTrail/x.json.gz"]}')
        [S3Object(bucket='b', key='AWSLogs/1/CloudTrail/x.json.gz', size=None)]
        >>> objects_of('{"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}')
        []
    """
    doc = _json(body)
    if doc.get("Type") == "Notification" and isinstance(doc.get("Message"), str):
        doc = _json(doc["Message"])  # SNS envelope
    if doc.get("Event") == "s3:TestEvent":
        return []
    if "s3ObjectKey" in doc:
        bucket, keys = doc.get("s3Bucket"), doc["s3ObjectKey"]
        if not isinstance(bucket, str) or not isinstance(keys, list):
            raise NotificationError("CloudTrail notice without s3Bucket or s3ObjectKey list")
        return [S3Object(bucket, str(key)) for key in keys]
    records = doc.get("Records")
    if not isinstance(records, list):
        raise NotificationError("no Records, s3ObjectKey or s3:TestEvent in the message")
    out = []
    for record in records:
        if not isinstance(record, dict) or record.get("eventSource") != "aws:s3":
            raise NotificationError("a Records entry that is not an S3 event")
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue  # deletions, restores, ...: nothing new to read
        s3 = record.get("s3") or {}
        bucket = (s3.get("bucket") or {}).get("name")
        obj = s3.get("object") or {}
        if not isinstance(bucket, str) or not isinstance(obj.get("key"), str):
            raise NotificationError("an S3 event without bucket name or object key")
        size = obj.get("size")
        out.append(
            S3Object(bucket, unquote_plus(obj["key"]), size if isinstance(size, int) else None)
        )
    return out


def _json(text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise NotificationError(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise NotificationError("not a JSON object")
    return doc
