"""CloudTrail events: the typed event record, and what a decoder says of its input.

:mod:`insights.decoding` turns every accepted input shape into these; the engine reads only
them. Unknown fields of a record are skipped (msgspec builds no Python object for them).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import msgspec

from insights.timeparse import TimestampError, parse_epoch_seconds

__all__ = [
    "CloudTrailEvent",
    "DecodeResult",
    "RejectReason",
    "Rejection",
    "UserIdentity",
    "event_seconds",
    "is_read_only",
    "principal_of",
]


_READ_PREFIXES = ("Describe", "Get", "List", "Head", "Lookup", "Search", "BatchGet", "Scan")
#: APIs whose ``readOnly`` differs from what their name's prefix says, as CloudTrail records
#: them (checked against every record of the shared datasets that carries the field; AWS
#: publishes no per-API table). Credentials and cryptographic calls change no resource, so
#: CloudTrail marks them read-only; ``GetFederationToken`` issues credentials under the caller
#: and is marked a write.
_READ_ONLY_BY_NAME: dict[tuple[str, str], bool] = {
    **{
        ("sts.amazonaws.com", name): True
        for name in (
            "AssumeRole",
            "AssumeRoleWithSAML",
            "AssumeRoleWithWebIdentity",
            "AssumeRoot",
            "DecodeAuthorizationMessage",
        )
    },
    ("sts.amazonaws.com", "GetFederationToken"): False,
    **{
        ("kms.amazonaws.com", name): True
        for name in (
            "Decrypt",
            "Encrypt",
            "GenerateDataKey",
            "GenerateDataKeyPair",
            "GenerateDataKeyPairWithoutPlaintext",
            "GenerateDataKeyWithoutPlaintext",
            "GenerateMac",
            "GenerateRandom",
            "ReEncrypt",
            "Sign",
            "Verify",
            "VerifyMac",
        )
    },
    ("bedrock.amazonaws.com", "InvokeModel"): True,
    ("bedrock.amazonaws.com", "InvokeModelWithResponseStream"): True,
}


class RejectReason(StrEnum):
    """Why a record or message was rejected (bounded set: safe as a metric label)."""

    INVALID_JSON = "invalid_json"
    INVALID_UTF8 = "invalid_utf8"
    TOO_LARGE = "too_large"
    TOO_DEEP = "too_deep"
    WRONG_TYPE = "wrong_type"
    MISSING_FIELD = "missing_field"
    BAD_TIMESTAMP = "bad_timestamp"
    ABSURD_TIMESTAMP = "absurd_timestamp"
    UNSUPPORTED_SHAPE = "unsupported_shape"
    BAD_PAYLOAD = "bad_payload"
    FUTURE_TIMESTAMP = "future_timestamp"


class UserIdentity(msgspec.Struct, rename="camel", gc=False):
    """The fields of ``userIdentity`` that attribution uses."""

    type: str | None = None
    arn: str | None = None
    principal_id: str | None = None
    account_id: str | None = None
    invoked_by: str | None = None


class CloudTrailEvent(msgspec.Struct, rename="camel", gc=False):
    """A CloudTrail event record, reduced to the fields detection needs.

    Examples:
        >>> from insights.decoding import parse_event
        >>> ev = parse_event(b'{"eventTime": "2024-07-10T01:42:07Z", "eventSource": '
        ...     b'"iam.amazonaws.com", "eventName": "CreateUser", "awsRegion": "us-east-1", '
        ...     b'"recipientAccountId": "123456789012"}')
        >>> ev.event_name, event_seconds(ev)
        ('CreateUser', 1720575727)
    """

    event_time: str | None = None
    event_source: str | None = None
    event_name: str | None = None
    aws_region: str | None = None
    recipient_account_id: str | None = None
    event_id: str | None = msgspec.field(name="eventID", default=None)
    event_type: str | None = None
    event_version: str | None = None
    event_category: str | None = None
    error_code: str | None = None
    read_only: bool | None = None
    management_event: bool | None = None
    user_agent: str | None = None
    user_identity: UserIdentity | None = None
    at_timestamp: str | None = msgspec.field(name="@timestamp", default=None)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record or message that was not accepted, with the reason and the raw bytes."""

    reason: RejectReason
    detail: str
    raw: bytes


@dataclass(slots=True)
class DecodeResult:
    """What one message decoded to: events, rejections, and records ignored by design."""

    events: list[CloudTrailEvent]
    rejections: list[Rejection]
    ignored: int = 0


def event_seconds(event: CloudTrailEvent) -> int:
    """Epoch seconds of an event (``eventTime``, else ``@timestamp``); :class:`TimestampError`."""
    text = event.event_time if event.event_time is not None else event.at_timestamp
    if text is None:
        raise TimestampError("bad_timestamp", "no eventTime")
    return parse_epoch_seconds(text)


def is_read_only(event: CloudTrailEvent) -> bool:
    """``readOnly``, inferred from the API when the record predates the field (< 1.05)."""
    if event.read_only is not None:
        return event.read_only
    name = event.event_name or ""
    known = _READ_ONLY_BY_NAME.get((event.event_source or "", name))
    return name.startswith(_READ_PREFIXES) if known is None else known


def principal_of(event: CloudTrailEvent) -> str:
    """The ``userIdentityArn`` attribution value: the ARN, else the calling service or id."""
    ident = event.user_identity
    if ident is None:
        return "null"
    return ident.arn or ident.invoked_by or ident.principal_id or "null"
