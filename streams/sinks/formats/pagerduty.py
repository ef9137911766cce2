"""``pagerduty``: Events API v2; trigger on Start, resolve on End, dedup_key = sharedEventID."""

from __future__ import annotations

from typing import Any

from streams.sinks.config import WebhookSettings
from streams.sinks.formats.text import console_link, summary

__all__ = ["body"]


def body(record: dict[str, Any], settings: WebhookSettings) -> dict[str, Any]:
    """The event: a trigger carrying the insight on Start, a resolve on End."""
    assert settings.routing_key is not None  # the settings require it for this format
    routing_key = settings.routing_key.get_secret_value()
    d = record["insightDetails"]
    start = d["state"] == "Start"
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger" if start else "resolve",
        "dedup_key": record["sharedEventID"],
    }
    if start:
        body["payload"] = {
            "summary": summary(record)[:1024],
            "source": f"{record['recipientAccountId']}/{record['awsRegion']}",
            "severity": "warning",
            "timestamp": record["eventTime"],
            "component": d["eventSource"],
            "class": d["insightType"],
            "custom_details": d["insightContext"],
        }
        link = console_link(record, settings.console_url)
        if link is not None:
            body["links"] = [{"href": link, "text": "Open in the ctinsights console"}]
    return body
