"""``ctinsights ingest``: CloudTrail from an S3 bucket, through its SQS notifications, to Kafka.

:mod:`streams.ingest.notifications` reads what a message names, :mod:`streams.ingest.objects`
reads a log file (ranged retries), :mod:`streams.ingest.loop` is the at-least-once loop.
"""

from __future__ import annotations

from streams.ingest.loop import Ingest, IngestMetrics, IngestOptions
from streams.ingest.notifications import NotificationError, S3Object, objects_of

__all__ = [
    "Ingest",
    "IngestMetrics",
    "IngestOptions",
    "NotificationError",
    "S3Object",
    "objects_of",
]
