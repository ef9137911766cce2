"""Delivering Insight records to one webhook: retries, backoff, signing, a dead-letter file."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from streams.sinks.config import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookSettings,
    sign,
)
from streams.sinks.formats import format_body

__all__ = ["Delivery", "WebhookSender"]

logger = logging.getLogger(__name__)


class Delivery(StrEnum):
    """Outcome of delivering one record."""

    DELIVERED = "delivered"
    FILTERED = "filtered"
    DEAD_LETTERED = "dead_lettered"


class WebhookSender:
    """Posts records to one webhook with retries, exponential backoff and jitter."""

    def __init__(
        self,
        settings: WebhookSettings,
        on_attempt: Callable[[str], None] | None = None,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.key = settings.signing_key()
        self.on_attempt = on_attempt or (lambda outcome: None)
        self.stop = stop or threading.Event()
        self.clock = clock

    def deliver(self, record: dict[str, Any]) -> Delivery:
        """Deliver one record (blocking, with retries); dead-letter it when it cannot be."""
        s = self.settings
        if not s.filter.accepts(record):
            return Delivery.FILTERED
        body = format_body(s, record)
        delay = s.backoff_seconds
        reason = ""
        for attempt in range(1, s.max_attempts + 1):
            status, reason = self._post(body, record["eventID"])
            if status == "ok":
                self.on_attempt("delivered")
                return Delivery.DELIVERED
            self.on_attempt("failed")
            if status == "permanent" or attempt == s.max_attempts:
                break
            self.on_attempt("retry")
            if self.stop.wait(delay * (0.5 + random.random())):
                reason = f"stopping ({reason})"
                break
            delay = min(delay * 2, s.max_backoff_seconds)
        self._dead_letter(record, reason)
        return Delivery.DEAD_LETTERED

    def _post(self, body: bytes, event_id: str) -> tuple[str, str]:
        headers = {
            "Content-Type": "application/json",
            EVENT_ID_HEADER: event_id,
            "User-Agent": "ctinsights",
        }
        if self.key is not None:
            timestamp = int(self.clock())
            headers[TIMESTAMP_HEADER] = str(timestamp)
            headers[SIGNATURE_HEADER] = sign(self.key, timestamp, body)
        request = urllib.request.Request(
            self.settings.url.get_secret_value(), data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout_seconds) as resp:
                resp.read()
            return "ok", ""
        except urllib.error.HTTPError as exc:
            exc.close()
            retriable = exc.code in (408, 425, 429) or exc.code >= 500
            return ("retry" if retriable else "permanent"), f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            return "retry", str(getattr(exc, "reason", exc))[:200]

    def _dead_letter(self, record: dict[str, Any], reason: str) -> None:
        logger.warning(
            "webhook %s gave up on %s: %s", self.settings.name, record["eventID"], reason
        )
        path = self.settings.dead_letter_path
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"sink": self.settings.name, "reason": reason, "record": record})
        with open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")
