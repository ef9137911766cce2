"""CloudTrail events: every real input shape in, typed events (or reasoned rejections) out.

Accepted shapes (see ``docs`` in the README):

* a single event record (JSON object) or JSON lines of them;
* a CloudTrail log file ``{"Records": [...]}`` and a bare JSON array of records;
* an EventBridge event (``detail-type`` ... ``via CloudTrail``, record under ``detail``);
* a CloudWatch Logs subscription payload: base64 of gzip of ``{"messageType": ..., "logEvents"}``
  (raw gzip bytes are accepted too; ``CONTROL_MESSAGE`` payloads carry no events).

Decoding uses msgspec typed structs: unknown fields are skipped without building Python objects.
JSON lines are decoded a chunk at a time (no Python object per line), batches in one call. Any
failure falls back to a slower record-by-record path so that one bad record in a batch rejects
only itself.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

import msgspec

from insights.errors import EventParseError
from insights.timeparse import (
    _SECONDS_Z,
    TimestampError,
    _minute_cache,
    _minute_of,
    parse_epoch_seconds,
)

__all__ = [
    "DECODE_CHUNK_BYTES",
    "CloudTrailEvent",
    "DecodeResult",
    "RejectReason",
    "Rejection",
    "UserIdentity",
    "chunk_ranges",
    "decode_many",
    "decode_message",
    "event_seconds",
    "is_read_only",
    "parse_event",
    "principal_of",
]

#: How CloudTrail log files (and batch messages made from them) begin.
BATCH_PREFIX = b'{"Records"'
#: CloudTrail's own limit for one event record.
MAX_RECORD_BYTES = 256 * 1024
#: Default limit for one message (a batch or an envelope); log files pass a larger one.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024

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


#: Input bytes to decode per step when the events go straight to the engine (~256 records of
#: 1.5 KB, whether a message holds one record or a batch): a chunk this size is still in the CPU
#: cache when the engine reads it (replay of a busy stream is about a third faster than with
#: chunks of 4,096 records, see docs/performance.md).
DECODE_CHUNK_BYTES = 256 * 1536


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


class _LogEvent(msgspec.Struct, gc=False):
    message: str


class _Envelope(CloudTrailEvent, rename="camel", gc=False):
    """Every JSON shape at once: a record, a log file, EventBridge, CloudWatch Logs."""

    records: list[CloudTrailEvent] | None = msgspec.field(name="Records", default=None)
    detail: CloudTrailEvent | None = None
    detail_type: str | None = msgspec.field(name="detail-type", default=None)
    message_type: str | None = None
    log_events: list[_LogEvent] | None = None


class _RawEnvelope(msgspec.Struct, rename="camel", gc=False):
    """Fallback view of an envelope whose records are decoded one by one."""

    records: list[msgspec.Raw] | None = msgspec.field(name="Records", default=None)
    detail: msgspec.Raw | None = None
    log_events: list[msgspec.Raw] | None = None


_envelope_decoder = msgspec.json.Decoder(_Envelope)
_array_decoder = msgspec.json.Decoder(list[_Envelope])
_raw_envelope_decoder = msgspec.json.Decoder(_RawEnvelope)
_raw_array_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_event_decoder = msgspec.json.Decoder(CloudTrailEvent)
_log_event_decoder = msgspec.json.Decoder(_LogEvent)


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


def _valid_minute(prefix: str) -> bool:
    try:
        _minute_of(prefix)
    except TimestampError:
        return False
    return True


def _is_complete(event: CloudTrailEvent) -> bool:
    """Whether a decoded record is kept as it is, the common case: a strict ``eventTime`` in
    range, every field routing needs, not an Insight record (anything else: :func:`_accept`)."""
    text = event.event_time
    return bool(
        text is not None
        and len(text) == 20
        and text[17:] in _SECONDS_Z
        and (text[:17] in _minute_cache or _valid_minute(text[:17]))
        and event.event_source
        and event.event_name
        and event.aws_region
        and event.recipient_account_id
        and event.event_type != "AwsCloudTrailInsight"
        and event.event_category != "Insight"
    )


def _check(event: CloudTrailEvent, raw: bytes) -> Rejection | None:
    """Return a rejection when a decoded record lacks what detection needs."""
    if event.event_time is None and event.at_timestamp is None:
        return Rejection(RejectReason.MISSING_FIELD, "eventTime", raw)
    if not (event.event_source and event.event_name and event.aws_region):
        missing = next(
            n for n in ("event_source", "event_name", "aws_region") if not getattr(event, n)
        )
        return Rejection(RejectReason.MISSING_FIELD, missing, raw)
    if not event.recipient_account_id:
        ident = event.user_identity
        if ident is None or not ident.account_id:
            return Rejection(RejectReason.MISSING_FIELD, "recipientAccountId", raw)
        event.recipient_account_id = ident.account_id
    try:
        event_seconds(event)
    except TimestampError as exc:
        return Rejection(RejectReason(exc.reason), str(exc), raw)
    return None


def _rejection(exc: Exception, raw: bytes) -> Rejection:
    """The rejection for a record or message that failed to decode, by our own checks.

    The reason never depends on a library's message text (msgspec 0.23 reports invalid UTF-8 as
    a plain ``DecodeError``): UTF-8 is checked here, the rest goes by exception type.
    """
    if isinstance(exc, RecursionError):
        reason = RejectReason.TOO_DEEP
    elif isinstance(exc, UnicodeDecodeError) or not _is_utf8(raw):
        reason = RejectReason.INVALID_UTF8
    elif isinstance(exc, msgspec.ValidationError):
        reason = RejectReason.WRONG_TYPE
    else:
        reason = RejectReason.INVALID_JSON
    return Rejection(reason, str(exc)[:200], raw)


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _decode_one_record(raw: bytes, out: DecodeResult) -> None:
    if len(raw) > MAX_RECORD_BYTES:
        out.rejections.append(Rejection(RejectReason.TOO_LARGE, f"{len(raw)} bytes", raw))
        return
    try:
        event = _event_decoder.decode(raw)
    except (msgspec.MsgspecError, RecursionError, ValueError) as exc:
        out.rejections.append(_rejection(exc, raw))
        return
    _accept(event, raw, out)


def _accept(event: CloudTrailEvent, raw: bytes | None, out: DecodeResult) -> None:
    """Keep a decoded record, ignore an Insight record, or reject it.

    ``raw`` is the record's own bytes when known; records decoded inside a batch are re-encoded
    (their known fields) only if they are rejected.
    """
    if event.event_type == "AwsCloudTrailInsight" or event.event_category == "Insight":
        out.ignored += 1
        return
    rejection = _check(event, raw if raw is not None else b"")
    if rejection is not None and raw is None:
        rejection = Rejection(rejection.reason, rejection.detail, msgspec.json.encode(event))
    if rejection is None:
        out.events.append(event)
    else:
        out.rejections.append(rejection)


def _accept_records(records: list[CloudTrailEvent], out: DecodeResult) -> None:
    """:func:`_accept` each record of a batch (complete ones at once)."""
    if all(map(_is_complete, records)):  # the common batch
        out.events.extend(records)
        return
    append = out.events.append
    for record in records:
        if _is_complete(record):
            append(record)
        else:
            _accept(record, None, out)


def _from_envelope(env: _Envelope, raw: bytes | None, out: DecodeResult) -> None:
    if env.records is not None:
        _accept_records(env.records, out)
    elif env.detail is not None:
        _accept(env.detail, raw, out)
    elif env.message_type is not None or env.log_events is not None:
        for log_event in env.log_events or ():
            _decode_one_record(log_event.message.encode(), out)
    else:
        _accept_single(env, raw, out)


def _accept_single(event: CloudTrailEvent, raw: bytes | None, out: DecodeResult) -> None:
    """Accept a top-level object that is not a batch: a record, or an unknown shape."""
    if event.event_source is None and event.event_name is None and event.event_time is None:
        shown = raw if raw is not None else msgspec.json.encode(event)
        out.rejections.append(
            Rejection(RejectReason.UNSUPPORTED_SHAPE, "no CloudTrail record found", shown)
        )
    else:
        _accept(event, raw, out)


def _fallback_records(raws: list[msgspec.Raw], out: DecodeResult) -> None:
    for item in raws:
        _decode_one_record(bytes(item), out)


def _decode_json_slow(data: bytes, out: DecodeResult, exc: Exception) -> None:
    """Record-by-record decoding after the fast typed path failed."""
    try:
        if data.lstrip()[:1] == b"[":
            _fallback_records(_raw_array_decoder.decode(data), out)
            return
        env = _raw_envelope_decoder.decode(data)
    except (msgspec.MsgspecError, RecursionError, ValueError) as inner:
        out.rejections.append(_rejection(inner, data))
        return
    if env.records is not None:
        _fallback_records(env.records, out)
    elif env.detail is not None:
        _decode_one_record(bytes(env.detail), out)
    elif env.log_events is not None:
        for item in env.log_events:
            try:
                message = _log_event_decoder.decode(bytes(item)).message
            except (msgspec.MsgspecError, RecursionError, ValueError) as bad:
                out.rejections.append(_rejection(bad, bytes(item)))
                continue
            _decode_one_record(message.encode(), out)
    else:
        out.rejections.append(_rejection(exc, data))


def _decode_json(data: bytes, head: bytes, out: DecodeResult) -> None:
    try:
        if head == b"[":
            for env in _array_decoder.decode(data):
                _from_envelope(env, None, out)
            return
        if data.startswith(BATCH_PREFIX):
            # a log file or a batch message: decoding it as a record first would scan it twice
            _from_envelope(_envelope_decoder.decode(data), data, out)
            return
        # A single record (the common Kafka message) decodes faster into the narrower
        # struct; an object without record fields is decoded again as an envelope.
        event = _event_decoder.decode(data)
    except (msgspec.MsgspecError, RecursionError, ValueError) as exc:
        _decode_json_slow(data, out, exc)
        return
    _decode_object(data, event, out)


def _decode_object(data: bytes, event: CloudTrailEvent, out: DecodeResult) -> None:
    """Accept a JSON object already decoded as a record, or decode it as an envelope."""
    try:
        if event.event_source is None and event.event_name is None and event.event_time is None:
            _from_envelope(_envelope_decoder.decode(data), data, out)
        else:
            _accept(event, data, out)
    except (msgspec.MsgspecError, RecursionError, ValueError) as exc:
        _decode_json_slow(data, out, exc)


def _unwrap_cloudwatch(data: bytes) -> bytes | None:
    """Return the JSON inside a CloudWatch Logs subscription payload, or None if it is not one."""
    blob = data
    if blob[:2] != b"\x1f\x8b":
        try:
            blob = base64.b64decode(data.strip(), validate=True)
        except (binascii.Error, ValueError):
            return None
    if blob[:2] != b"\x1f\x8b":
        return None
    try:
        inner = gzip.decompress(blob)
    except (OSError, EOFError, zlib.error):
        return None
    return inner


def decode_message(data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> DecodeResult:
    """Decode one message (a Kafka value, a line, a file) of any accepted shape.

    Never raises for bad input: failures come back as :class:`Rejection` entries.

    Examples:
        >>> r = decode_message(b'{"Records": [{"eventTime": "2024-07-10T01:42:07Z", '
        ...     b'"eventSource": "ec2.amazonaws.com", "eventName": "RunInstances", '
        ...     b'"awsRegion": "eu-west-1", "recipientAccountId": "1"}, {"eventTime": 5}]}')
        >>> len(r.events), [x.reason.value for x in r.rejections]
        (1, ['wrong_type'])
    """
    out = DecodeResult(events=[], rejections=[])
    if len(data) > max_bytes:
        out.rejections.append(Rejection(RejectReason.TOO_LARGE, f"{len(data)} bytes", data[:1024]))
        return out
    head = data[:1]
    if head.isspace():
        head = data.lstrip()[:1]
    if head in (b"{", b"["):
        _decode_json(data, head, out)
        return out
    inner = _unwrap_cloudwatch(data)
    if inner is None:
        text_like = (head.isascii() and head.isalnum()) or head in (b'"', b"<")
        reason = RejectReason.INVALID_JSON if text_like else RejectReason.BAD_PAYLOAD
        out.rejections.append(Rejection(reason, "not JSON nor a CloudWatch Logs payload", data))
        return out
    if len(inner) > max_bytes:
        out.rejections.append(Rejection(RejectReason.TOO_LARGE, f"{len(inner)} bytes", data[:1024]))
        return out
    _decode_json(inner, inner.lstrip()[:1], out)
    return out


def decode_many(
    messages: Sequence[bytes],
    *,
    max_bytes: int = MAX_MESSAGE_BYTES,
    failed: list[tuple[int, DecodeResult]] | None = None,
) -> DecodeResult:
    """Decode many messages (JSON lines, a poll of Kafka values) into one result, in order.

    Equivalent to concatenating :func:`decode_message` of each, and faster: a message that is
    exactly one complete record is decoded and kept inline; anything else takes the general
    path. When ``failed`` is given, each message with rejections is appended to it as (index in
    ``messages``, its own result), so a caller can dead-letter the message itself.

    Examples:
        >>> failed = []
        >>> r = decode_many([b'{"eventTime": "2024-07-10T01:42:07Z", "eventSource": '
        ...     b'"ec2.amazonaws.com", "eventName": "RunInstances", "awsRegion": "eu-west-1", '
        ...     b'"recipientAccountId": "1"}', b"not json"], failed=failed)
        >>> len(r.events), [x.reason.value for x in r.rejections], [i for i, _ in failed]
        (1, ['invalid_json'], [1])
    """
    out = DecodeResult(events=[], rejections=[])
    append = out.events.append
    decode = _event_decoder.decode
    for index, data in enumerate(messages):
        one: DecodeResult | None = None
        # a log file or batch goes to the general path at once: a record decode first would
        # scan it twice
        if len(data) <= max_bytes and not (
            isinstance(data, bytes) and data.startswith(BATCH_PREFIX)
        ):
            try:
                event: CloudTrailEvent | None = decode(data)
            except (msgspec.MsgspecError, RecursionError, ValueError):
                event = None
            if event is not None:
                if _is_complete(event):
                    append(event)
                    continue
                # any other object (a batch, an envelope, a record to check): what
                # decode_message would do, without decoding it as a record a second time
                one = DecodeResult(events=[], rejections=[])
                _decode_object(data, event, one)
        if one is None:
            one = decode_message(data, max_bytes=max_bytes)
        _merge(out, one, index, failed)
    return out


def _merge(
    out: DecodeResult, one: DecodeResult, index: int, failed: list[tuple[int, DecodeResult]] | None
) -> None:
    """Append one message's result to ``out``; name it in ``failed`` if it has rejections."""
    out.events.extend(one.events)
    if one.rejections:
        out.rejections.extend(one.rejections)
        if failed is not None:
            failed.append((index, one))
    out.ignored += one.ignored


def parse_event(data: bytes) -> CloudTrailEvent:
    """Decode exactly one event record, raising :class:`EventParseError` otherwise."""
    result = decode_message(data, max_bytes=MAX_RECORD_BYTES)
    if result.rejections:
        first = result.rejections[0]
        raise EventParseError(first.reason.value, first.detail)
    if len(result.events) != 1:
        raise EventParseError(RejectReason.UNSUPPORTED_SHAPE.value, "expected one record")
    return result.events[0]


def iter_json_lines(
    data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES, budget: int = DECODE_CHUNK_BYTES
) -> Iterator[DecodeResult]:
    """Decode JSON lines (one message per non-blank line), one result per ``budget`` bytes
    of whole lines; the same as :func:`decode_many` of the lines.

    A chunk whose every line is one complete record is decoded in one call, without a Python
    object per line; any other goes line by line.

    Examples:
        >>> [len(r.rejections) for r in iter_json_lines(b"x\\n\\n{}\\ny\\n", budget=3)]
        [2, 1]
    """
    start, size = 0, len(data)
    while start < size:
        end = data.find(b"\n", start + budget)
        end = size if end < 0 else end + 1
        events = _whole_records(data, start, end, max_bytes)
        if events is not None:
            yield DecodeResult(events=events, rejections=[])
        else:
            lines = [line for line in data[start:end].split(b"\n") if line.strip()]
            if lines:
                yield decode_many(lines, max_bytes=max_bytes)
        start = end


def _whole_records(
    data: bytes, start: int, end: int, max_bytes: int
) -> list[CloudTrailEvent] | None:
    """The records of the lines in ``data[start:end]`` when each line is exactly one complete
    record, else None. Nothing is copied: msgspec reads the lines where they are.

    msgspec's ``decode_lines`` reads whitespace-separated values; a line is one value when
    every line starts with ``{`` and ends with ``}`` (a ``}``, a newline and a ``{`` never
    occur inside one JSON value, nor a raw newline inside a string, so no value spans lines)
    and there are as many values as lines.
    """
    stop = end
    if data[stop - 1 : stop] == b"\n":
        stop -= 1
    if data[stop - 1 : stop] == b"\r":
        stop -= 1
    if stop - start > max_bytes or data[start : start + 1] != b"{" or data[stop - 1 : stop] != b"}":
        return None
    lines = data.count(b"\n", start, stop) + 1
    joins = data.count(b"}\n{", start, stop)
    if data.find(b"\r", start, stop) >= 0:
        joins += data.count(b"}\r\n{", start, stop)
    # a batch on a line of its own goes to the general path (see decode_many)
    if joins != lines - 1 or data.startswith(BATCH_PREFIX, start):
        return None
    if data.find(b"\n" + BATCH_PREFIX, start, stop) >= 0:
        return None
    try:
        events = _event_decoder.decode_lines(memoryview(data)[start:stop])
    except (msgspec.MsgspecError, RecursionError, ValueError):
        return None
    if len(events) != lines or not all(map(_is_complete, events)):
        return None
    return events


def chunk_ranges(
    messages: Sequence[bytes], budget: int = DECODE_CHUNK_BYTES
) -> Iterator[tuple[int, int]]:
    """Consecutive ``[start, end)`` ranges of ``messages`` of about ``budget`` bytes each.

    Every range holds at least one message, so a message above the budget is a range alone.

    Examples:
        >>> list(chunk_ranges([b"aa", b"bb", b"cccccc", b"d"], budget=4))
        [(0, 2), (2, 3), (3, 4)]
    """
    start = size = 0
    for index, message in enumerate(messages):
        size += len(message)
        if size >= budget:
            yield start, index + 1
            start, size = index + 1, 0
    if start < len(messages):
        yield start, len(messages)
