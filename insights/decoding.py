"""Decoding: every real input shape in, typed events (or reasoned rejections) out.

Accepted shapes (see the README):

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
from collections.abc import Sequence

import msgspec

from insights.errors import EventParseError
from insights.events import CloudTrailEvent, DecodeResult, Rejection, RejectReason, event_seconds
from insights.timeparse import _SECONDS_Z, TimestampError, _minute_cache, _minute_of

__all__ = [
    "BATCH_PREFIX",
    "EVENT_DECODER",
    "MAX_MESSAGE_BYTES",
    "MAX_RECORD_BYTES",
    "decode_many",
    "decode_message",
    "is_complete",
    "parse_event",
]

#: How CloudTrail log files (and batch messages made from them) begin.
BATCH_PREFIX = b'{"Records"'
#: CloudTrail's own limit for one event record.
MAX_RECORD_BYTES = 256 * 1024
#: Default limit for one message (a batch or an envelope); log files pass a larger one.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


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
#: The decoder of one record (and of JSON lines of them, :mod:`insights.chunks`).
EVENT_DECODER = msgspec.json.Decoder(CloudTrailEvent)
_logEVENT_DECODER = msgspec.json.Decoder(_LogEvent)


def _valid_minute(prefix: str) -> bool:
    try:
        _minute_of(prefix)
    except TimestampError:
        return False
    return True


def is_complete(event: CloudTrailEvent) -> bool:
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
        event = EVENT_DECODER.decode(raw)
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
    if all(map(is_complete, records)):  # the common batch
        out.events.extend(records)
        return
    append = out.events.append
    for record in records:
        if is_complete(record):
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
                message = _logEVENT_DECODER.decode(bytes(item)).message
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
        event = EVENT_DECODER.decode(data)
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
    decode = EVENT_DECODER.decode
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
                if is_complete(event):
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
