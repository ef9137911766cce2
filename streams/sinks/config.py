"""Webhook settings (destination, format, filter, retries) and request signing."""

from __future__ import annotations

import hashlib
import hmac
import urllib.parse
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from streams.errors import ConfigError

__all__ = [
    "EVENT_ID_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "SinkFilter",
    "WebhookFormat",
    "WebhookSettings",
    "sign",
]

SIGNATURE_HEADER = "X-Ctinsights-Signature"
TIMESTAMP_HEADER = "X-Ctinsights-Timestamp"
EVENT_ID_HEADER = "X-Ctinsights-Event-Id"


class WebhookFormat(StrEnum):
    """Body format of a webhook."""

    GENERIC = "generic"
    EVENTBRIDGE = "eventbridge"
    SLACK = "slack"
    PAGERDUTY = "pagerduty"


class SinkFilter(BaseModel):
    """Which Insights a sink receives (empty lists mean all)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    insight_types: list[str] = []
    accounts: list[str] = []
    regions: list[str] = []
    min_score: float = 0.0
    start_only: bool = False

    def accepts(self, record: dict[str, Any]) -> bool:
        """Whether ``record`` (an Insight record as a dict) passes."""
        details = record["insightDetails"]
        if self.insight_types and details["insightType"] not in self.insight_types:
            return False
        if self.accounts and record["recipientAccountId"] not in self.accounts:
            return False
        if self.regions and record["awsRegion"] not in self.regions:
            return False
        if self.start_only and details["state"] != "Start":
            return False
        score = float(record.get("additionalEventData", {}).get("score", 0.0))
        return score >= self.min_score


class WebhookSettings(BaseModel):
    """One webhook destination."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,40}$")
    url: SecretStr
    """The endpoint; a credential for Slack and many SIEMs, so masked like one."""
    format: WebhookFormat = WebhookFormat.GENERIC
    secret: SecretStr | None = None
    secret_file: Path | None = None
    routing_key: SecretStr | None = None
    """PagerDuty integration key."""
    filter: SinkFilter = SinkFilter()
    timeout_seconds: float = Field(default=5.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    backoff_seconds: float = Field(default=0.5, gt=0)
    max_backoff_seconds: float = Field(default=60.0, gt=0)
    dead_letter_path: Path | None = None
    console_url: str | None = Field(default=None, pattern=r"^https?://")
    """Base URL of the insight console: each payload links the insight's page (default: the
    worker's ``console_url``)."""

    @model_validator(mode="after")
    def _check(self) -> WebhookSettings:
        if not self.url.get_secret_value().startswith(("http://", "https://")):
            raise ValueError(f"webhook {self.name}: url must be http(s)")
        if self.secret is not None and self.secret_file is not None:
            raise ValueError(f"webhook {self.name}: give secret or secret_file, not both")
        if self.format is WebhookFormat.PAGERDUTY and self.routing_key is None:
            raise ValueError(f"webhook {self.name}: pagerduty needs routing_key")
        return self

    def masked_url(self) -> str:
        """Scheme and host only: ``https://hooks.slack.com/**********``."""
        parts = urllib.parse.urlsplit(self.url.get_secret_value())
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/**********"

    def signing_key(self) -> bytes | None:
        """The HMAC key (from ``secret`` or ``secret_file``), never logged."""
        if self.secret is not None:
            return self.secret.get_secret_value().encode()
        if self.secret_file is not None:
            try:
                return self.secret_file.read_bytes().strip()
            except OSError as exc:
                raise ConfigError(f"webhook {self.name}: cannot read secret_file: {exc}") from exc
        return None


def sign(key: bytes, timestamp: int, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``.

    Examples:
        >>> sign(b"k", 1700000000, b"{}")[:3]
        'v1='
    """
    mac = hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()
