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

import gzip
import hashlib
import hmac
import json
import logging
import math
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from streams.errors import ConfigError
from streams.files import write_atomically

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
    "read_insight_files",
    "sign",
]

logger = logging.getLogger(__name__)

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


def _summary(record: dict[str, Any]) -> str:
    d = record["insightDetails"]
    api = f"{d['eventSource'].split('.')[0]}:{d['eventName']}"
    if d.get("errorCode"):
        api += f" {d['errorCode']}"
    kind = "error rate" if d["insightType"] == "ApiErrorRateInsight" else "call rate"
    return (
        f"{d['state']}: unusual {kind} of {api} in {record['recipientAccountId']}/"
        f"{record['awsRegion']}"
    )


def per_minute(value: float) -> str:
    """A rate per minute for people: two significant digits below 1, never ``0.0000``.

    Examples:
        >>> [per_minute(v) for v in (0, 0.0000882145, 0.25, 3.14159, 42.0)]
        ['0', '0.000088', '0.25', '3.14', '42.0']
    """
    if value <= 0:
        return "0"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    digits = max(2, 1 - math.floor(math.log10(value)))
    return f"{value:.{digits}f}"


def _slack(record: dict[str, Any]) -> dict[str, Any]:
    d = record["insightDetails"]
    stats = d["insightContext"]["statistics"]
    unit = "errors/min" if d["insightType"] == "ApiErrorRateInsight" else "calls/min"
    principals: list[dict[str, Any]] = next(
        (
            a["insight"]
            for a in d["insightContext"]["attributions"]
            if a["attribute"] == "userIdentityArn"
        ),
        [],
    )
    who = ", ".join(f"{p['value']} ({per_minute(p['average'])}/min)" for p in principals[:3])
    minutes = int(stats["insightDuration"])
    if d["state"] == "Start":
        when = f"since {record['eventTime']}"
        rate = "rate"
    else:
        end = datetime.fromisoformat(record["eventTime"].replace("Z", "+00:00"))
        began = (end - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
        when = f"from {began} to {record['eventTime']} ({minutes} min)"
        rate = "mean rate"
    text = (
        f"*{_summary(record)}*\n"
        f"{rate} {per_minute(stats['insight']['average'])} {unit} vs baseline "
        f"{per_minute(stats['baseline']['average'])} {unit} {when} "
        f"(score {record['additionalEventData'].get('score')})\n"
        f"Top principals: {who or 'n/a'}\nsharedEventID `{record['sharedEventID']}`"
    )
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def _pagerduty(record: dict[str, Any], routing_key: str) -> dict[str, Any]:
    d = record["insightDetails"]
    start = d["state"] == "Start"
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger" if start else "resolve",
        "dedup_key": record["sharedEventID"],
    }
    if start:
        body["payload"] = {
            "summary": _summary(record)[:1024],
            "source": f"{record['recipientAccountId']}/{record['awsRegion']}",
            "severity": "warning",
            "timestamp": record["eventTime"],
            "component": d["eventSource"],
            "class": d["insightType"],
            "custom_details": d["insightContext"],
        }
    return body


def format_body(settings: WebhookSettings, record: dict[str, Any]) -> bytes:
    """The request body for one Insight record."""
    fmt = settings.format
    if fmt is WebhookFormat.GENERIC:
        payload: dict[str, Any] = record
    elif fmt is WebhookFormat.EVENTBRIDGE:
        payload = {
            "version": "0",
            "id": record["eventID"],
            "detail-type": "AWS Insight via CloudTrail",
            "source": "aws.cloudtrail",
            "account": record["recipientAccountId"],
            "time": record["eventTime"],
            "region": record["awsRegion"],
            "resources": [],
            "detail": record,
        }
    elif fmt is WebhookFormat.SLACK:
        payload = _slack(record)
    else:
        assert settings.routing_key is not None
        payload = _pagerduty(record, settings.routing_key.get_secret_value())
    return json.dumps(payload, separators=(",", ":")).encode()


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


class InsightFileWriter:
    """Insight records in AWS's S3 layout, gzip JSON ``{"Records": [...]}``, written atomically.

    ``<root>/AWSLogs/<account>/CloudTrail-Insight/<region>/<yyyy>/<mm>/<dd>/
    <account>_CloudTrail-Insight_<region>_<yyyymmddThhmmZ>_<id>.json.gz``; the id is derived from
    the records' eventIDs, so writing the same batch again replaces the same file.
    """

    def __init__(self, root: Path, mode: int = 0o640) -> None:
        self.root = root
        self.mode = mode

    def write(self, records: list[dict[str, Any]]) -> list[Path]:
        """Write ``records`` grouped by account, Region and the UTC day of each record's own
        ``eventTime`` (as AWS folders them); return the files written."""
        groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for record in records:
            day = _event_time(record).strftime("%Y/%m/%d")
            key = (record["recipientAccountId"], record["awsRegion"], day)
            groups.setdefault(key, []).append(record)
        return [self._write_group(a, r, d, items) for (a, r, d), items in sorted(groups.items())]

    def _write_group(
        self, account: str, region: str, day: str, records: list[dict[str, Any]]
    ) -> Path:
        when = max(_event_time(r) for r in records)
        digest = hashlib.sha256("".join(sorted(r["eventID"] for r in records)).encode())
        name = (
            f"{account}_CloudTrail-Insight_{region}_{when:%Y%m%dT%H%MZ}_"
            f"{digest.hexdigest()[:16]}.json.gz"
        )
        path = self.root / "AWSLogs" / account / "CloudTrail-Insight" / region / day / name
        body = gzip.compress(json.dumps({"Records": records}).encode(), mtime=0)
        write_atomically(path, body, mode=self.mode)
        return path


def _event_time(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(record["eventTime"].replace("Z", "+00:00")).astimezone(UTC)


def read_insight_files(root: Path) -> list[dict[str, Any]]:
    """Every Insight record under ``root``'s ``AWSLogs/*/CloudTrail-Insight`` trees (AWS's or
    ours), de-duplicated by eventID, oldest first."""
    seen: dict[str, dict[str, Any]] = {}
    for path in sorted(root.glob("**/CloudTrail-Insight/**/*.json.gz")):
        try:
            records = json.loads(gzip.decompress(path.read_bytes())).get("Records", [])
        except (OSError, ValueError, EOFError) as exc:
            logger.warning("skipping unreadable Insight file %s: %s", path, exc)
            continue
        for record in records:
            seen.setdefault(record["eventID"], record)
    return sorted(seen.values(), key=lambda r: (r["eventTime"], r["eventID"]))
