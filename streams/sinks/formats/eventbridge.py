"""``eventbridge``: the record as AWS's EventBridge delivers Insights (``detail``)."""

from __future__ import annotations

from typing import Any

from streams.sinks.config import WebhookSettings
from streams.sinks.formats.text import linked

__all__ = ["body"]


def body(record: dict[str, Any], settings: WebhookSettings) -> dict[str, Any]:
    """An EventBridge event with detail-type ``AWS Insight via CloudTrail``."""
    return {
        "version": "0",
        "id": record["eventID"],
        "detail-type": "AWS Insight via CloudTrail",
        "source": "aws.cloudtrail",
        "account": record["recipientAccountId"],
        "time": record["eventTime"],
        "region": record["awsRegion"],
        "resources": [],
        "detail": linked(record, settings.console_url),
    }
