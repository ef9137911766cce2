"""Where Insights go besides the output topic: alert webhooks and AWS-layout Insight files.

Every sink reads the worker's output topic with its own consumer group
(``<group>.sink.<name>``) in its own thread, so a slow or dead receiver never blocks detection,
the topic is the (bounded-by-retention) queue, and delivery is at-least-once: the sink's offset
is committed only after a record was delivered or written to the sink's dead-letter file.
Receivers de-duplicate by ``eventID`` (also sent as a header).

Webhook formats: ``generic`` (the Insight record), ``eventbridge`` (an EventBridge event with
detail-type ``AWS Insight via CloudTrail``), ``slack`` (incoming webhook message) and
``pagerduty`` (Events API v2: trigger on Start, resolve on End, ``dedup_key`` = sharedEventID).

Signing: with a secret, each request carries ``X-Ctinsights-Timestamp: <unix seconds>`` and
``X-Ctinsights-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``; receivers
recompute it and reject stale timestamps.
"""

from __future__ import annotations

from streams.sinks.config import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SinkFilter,
    WebhookFormat,
    WebhookSettings,
    sign,
)
from streams.sinks.files import InsightFileWriter, read_insight_files
from streams.sinks.formats import format_body, per_minute
from streams.sinks.webhook import Delivery, WebhookSender

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Delivery",
    "InsightFileWriter",
    "SinkFilter",
    "WebhookFormat",
    "WebhookSender",
    "WebhookSettings",
    "format_body",
    "per_minute",
    "read_insight_files",
    "sign",
]
