"""Webhook body formats: one module each, with ``body(record, settings) -> dict``.

A new format is a module here, a value of :class:`~streams.sinks.config.WebhookFormat`, and a
line in :data:`FORMATS`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from streams.sinks.config import WebhookFormat, WebhookSettings
from streams.sinks.formats import eventbridge, generic, pagerduty, slack
from streams.sinks.formats.text import per_minute

__all__ = ["FORMATS", "format_body", "per_minute"]

Body = Callable[[dict[str, Any], WebhookSettings], dict[str, Any]]

FORMATS: dict[WebhookFormat, Body] = {
    WebhookFormat.GENERIC: generic.body,
    WebhookFormat.EVENTBRIDGE: eventbridge.body,
    WebhookFormat.SLACK: slack.body,
    WebhookFormat.PAGERDUTY: pagerduty.body,
}


def format_body(settings: WebhookSettings, record: dict[str, Any]) -> bytes:
    """The request body for one Insight record, in the webhook's format."""
    payload = FORMATS[settings.format](record, settings)
    return json.dumps(payload, separators=(",", ":")).encode()
