"""``generic``: the Insight record itself, as the output topic holds it."""

from __future__ import annotations

from typing import Any

from streams.sinks.config import WebhookSettings
from streams.sinks.formats.text import linked

__all__ = ["body"]


def body(record: dict[str, Any], settings: WebhookSettings) -> dict[str, Any]:
    """The record unchanged (with ``additionalEventData.consoleUrl`` when a console is set)."""
    return linked(record, settings.console_url)
