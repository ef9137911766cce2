from __future__ import annotations

import base64
import gzip
import json

import pytest

from insights import (
    DecodeResult,
    EventParseError,
    RejectReason,
    decode_many,
    decode_message,
    parse_event,
)
from insights.events import is_read_only, principal_of

RECORD = {
    "eventVersion": "1.09",
    "eventTime": "2024-07-10T01:42:07Z",
    "eventSource": "iam.amazonaws.com",
    "eventName": "CreateUser",
    "awsRegion": "us-east-1",
    "recipientAccountId": "123456789012",
    "eventID": "e-1",
    "eventType": "AwsApiCall",
    "readOnly": False,
    "managementEvent": True,
    "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/a"},
}


def enc(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_single_record() -> None:
    ev = parse_event(enc(RECORD))
    assert (ev.event_source, ev.event_name, ev.event_id) == (
        "iam.amazonaws.com",
        "CreateUser",
        "e-1",
    )
    assert principal_of(ev) == "arn:aws:iam::123456789012:user/a"


def test_records_file_and_array() -> None:
    other = dict(RECORD, eventID="e-2")
    assert len(decode_message(enc({"Records": [RECORD, other]})).events) == 2
    assert len(decode_message(enc([RECORD, other])).events) == 2


def test_eventbridge_envelope() -> None:
    env = {
        "version": "0",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.iam",
        "detail": RECORD,
    }
    result = decode_message(enc(env))
    assert [e.event_id for e in result.events] == ["e-1"]


def test_cloudwatch_logs_payload_base64_gzip() -> None:
    payload = {
        "messageType": "DATA_MESSAGE",
        "logEvents": [
            {"id": "1", "timestamp": 0, "message": json.dumps(RECORD)},
            {"id": "2", "timestamp": 0, "message": json.dumps(dict(RECORD, eventID="e-2"))},
        ],
    }
    blob = base64.b64encode(gzip.compress(enc(payload)))
    assert len(decode_message(blob).events) == 2
    assert len(decode_message(gzip.compress(enc(payload))).events) == 2


def test_cloudwatch_control_message_has_no_events() -> None:
    blob = base64.b64encode(
        gzip.compress(
            enc(
                {
                    "messageType": "CONTROL_MESSAGE",
                    "logEvents": [
                        {
                            "id": "",
                            "timestamp": 0,
                            "message": "CWL CONTROL MESSAGE: Checking health",
                        }
                    ],
                }
            )
        )
    )
    result = decode_message(blob)
    assert result.events == []
    assert [r.reason for r in result.rejections] == [RejectReason.INVALID_JSON]


def test_insight_records_are_ignored_not_rejected() -> None:
    result = decode_message(enc(dict(RECORD, eventType="AwsCloudTrailInsight")))
    assert (result.events, result.rejections, result.ignored) == ([], [], 1)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{not json", RejectReason.INVALID_JSON),
        (b'{"eventTime": "\xff\xfe"}', RejectReason.INVALID_UTF8),
        (enc(dict(RECORD, eventTime=5)), RejectReason.WRONG_TYPE),
        (enc({k: v for k, v in RECORD.items() if k != "eventName"}), RejectReason.MISSING_FIELD),
        (enc({k: v for k, v in RECORD.items() if k != "eventTime"}), RejectReason.MISSING_FIELD),
        (enc(dict(RECORD, eventTime="yesterday")), RejectReason.BAD_TIMESTAMP),
        (enc(dict(RECORD, eventTime="2024-02-30T00:00:00Z")), RejectReason.BAD_TIMESTAMP),
        (enc(dict(RECORD, eventTime="2999-01-01T00:00:00Z")), RejectReason.ABSURD_TIMESTAMP),
        (enc(dict(RECORD, eventTime="1970-01-01T00:00:00Z")), RejectReason.ABSURD_TIMESTAMP),
        (b'{"x":' + b"[" * 5000 + b"]" * 5000 + b"}", RejectReason.TOO_DEEP),
        (b"\x00\x01binary", RejectReason.BAD_PAYLOAD),
        (enc({"hello": "world"}), RejectReason.UNSUPPORTED_SHAPE),
    ],
)
def test_bad_input_is_rejected_with_reason(data: bytes, reason: RejectReason) -> None:
    result = decode_message(data)
    assert result.events == []
    assert [r.reason for r in result.rejections] == [reason]
    with pytest.raises(EventParseError):
        parse_event(data)


def test_too_large_message() -> None:
    big = enc(dict(RECORD, requestParameters={"blob": "x" * 5_000_000}))
    result = decode_message(big)
    assert [r.reason for r in result.rejections] == [RejectReason.TOO_LARGE]


def test_one_bad_record_in_a_batch_rejects_only_itself() -> None:
    batch = {"Records": [RECORD, dict(RECORD, eventTime=[1]), dict(RECORD, eventID="e-3")]}
    result = decode_message(enc(batch))
    assert [e.event_id for e in result.events] == ["e-1", "e-3"]
    assert [r.reason for r in result.rejections] == [RejectReason.WRONG_TYPE]


def test_rejected_batch_records_keep_their_content() -> None:
    batch = {"Records": [RECORD, {k: v for k, v in RECORD.items() if k != "awsRegion"}]}
    (rejection,) = decode_message(enc(batch)).rejections
    assert rejection.reason == RejectReason.MISSING_FIELD
    assert b'"eventName":"CreateUser"' in rejection.raw
    (in_array,) = decode_message(enc([RECORD, {"hello": 1}])).rejections
    assert in_array.reason == RejectReason.UNSUPPORTED_SHAPE
    assert in_array.raw


def test_logstash_timestamp_and_missing_account_fallback() -> None:
    rec = {k: v for k, v in RECORD.items() if k not in ("eventTime", "recipientAccountId")}
    rec["@timestamp"] = "2020-09-14T00:44:23.000Z"
    rec["userIdentity"] = {"type": "IAMUser", "accountId": "999"}
    ev = parse_event(enc(rec))
    assert ev.recipient_account_id == "999"


def test_read_only_inferred_for_old_records() -> None:
    old = {k: v for k, v in RECORD.items() if k != "readOnly"}
    assert is_read_only(parse_event(enc(dict(old, eventName="DescribeInstances"))))
    assert not is_read_only(parse_event(enc(dict(old, eventName="RunInstances"))))


def test_decode_many_equals_decode_message_of_each_and_names_failed_messages() -> None:
    messages = [
        enc(RECORD),
        enc(dict(RECORD, eventID="e-2", eventTime="2024-07-10T01:43:59Z")),  # minute not yet seen
        b"  " + enc(dict(RECORD, eventID="e-3")),
        b"{not json",
        enc({"Records": [dict(RECORD, eventID="e-4"), dict(RECORD, eventTime=[1])]}),
        enc(dict(RECORD, eventType="AwsCloudTrailInsight")),
        enc([dict(RECORD, eventID="e-5")]),
        enc({k: v for k, v in RECORD.items() if k != "recipientAccountId"}),
        enc(dict(RECORD, eventID="e-6", requestParameters={"x": "y" * 1000})),
    ]
    failed: list[tuple[int, DecodeResult]] = []
    many = decode_many(messages, max_bytes=1000, failed=failed)
    each = [decode_message(m, max_bytes=1000) for m in messages]
    assert many.events == [e for r in each for e in r.events]
    assert many.rejections == [x for r in each for x in r.rejections]
    assert many.ignored == sum(r.ignored for r in each) == 1
    assert [i for i, _ in failed] == [3, 4, 7, 8]
    assert [r.reason for r in many.rejections] == [
        RejectReason.INVALID_JSON,
        RejectReason.WRONG_TYPE,
        RejectReason.MISSING_FIELD,
        RejectReason.TOO_LARGE,
    ]
