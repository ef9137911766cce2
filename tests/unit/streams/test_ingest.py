"""What ingest reads of a notification, and how it reads a log file (without a network)."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, ResponseStreamingError

from streams.ingest import NotificationError, S3Object, objects_of
from streams.ingest.objects import ObjectError, fetch, log_records

KEY = "AWSLogs/o-1/111122223333/CloudTrail/us-east-1/2024/01/02/a b+c.json.gz"


def s3_event(key: str, name: str = "ObjectCreated:Put") -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": name,
                "s3": {"bucket": {"name": "trail"}, "object": {"key": key, "size": 42}},
            }
        ]
    }


def test_raw_sns_wrapped_and_cloudtrail_notices_name_the_same_object() -> None:
    encoded = "AWSLogs/o-1/111122223333/CloudTrail/us-east-1/2024/01/02/a+b%2Bc.json.gz"
    raw = json.dumps(s3_event(encoded))
    sns = json.dumps({"Type": "Notification", "Message": raw})
    notice = json.dumps({"s3Bucket": "trail", "s3ObjectKey": [KEY]})
    assert objects_of(raw) == objects_of(sns) == [S3Object("trail", KEY, 42)]
    assert objects_of(notice) == [S3Object("trail", KEY)]


def test_test_events_deletions_digests_and_insight_files_name_nothing_to_read() -> None:
    assert objects_of(json.dumps({"Event": "s3:TestEvent", "Bucket": "trail"})) == []
    assert objects_of(json.dumps(s3_event(KEY, "ObjectRemoved:Delete"))) == []
    for folder in ("CloudTrail-Digest", "CloudTrail-Insight"):
        (obj,) = objects_of(json.dumps(s3_event(f"AWSLogs/1/{folder}/us-east-1/x.json.gz")))
        assert obj.skipped
    assert not objects_of(json.dumps(s3_event(KEY)))[0].skipped


@pytest.mark.parametrize(
    "body",
    ["not json", "[1, 2]", '{"Records": [{"eventSource": "aws:sqs"}]}', '{"hello": 1}'],
)
def test_anything_else_is_a_notification_error(body: str) -> None:
    with pytest.raises(NotificationError):
        objects_of(body)


class _Body:
    def __init__(self, data: bytes, cut_after: int | None) -> None:
        self.data, self.cut_after = data, cut_after

    def iter_chunks(self, size: int) -> Any:
        for start in range(0, len(self.data), 7):
            if self.cut_after is not None and start >= self.cut_after:
                raise ResponseStreamingError(error="connection reset")
            yield self.data[start : start + 7]


class _Flaky:
    """get_object whose first ``cuts`` reads break part-way; records the ranges asked for."""

    def __init__(self, data: bytes, cuts: int) -> None:
        self.data, self.cuts = data, cuts
        self.ranges: list[str | None] = []

    def get_object(self, Bucket: str, Key: str, Range: str | None = None) -> dict[str, Any]:
        self.ranges.append(Range)
        start = int(Range.removeprefix("bytes=").rstrip("-")) if Range else 0
        cut = 14 if self.cuts > 0 else None
        self.cuts -= 1
        return {"Body": _Body(self.data[start:], cut)}


def test_a_read_cut_short_resumes_from_the_byte_it_reached() -> None:
    data = bytes(range(100))
    s3 = _Flaky(data, cuts=2)
    assert fetch(s3, S3Object("b", "k")) == data
    assert s3.ranges == [None, "bytes=14-", "bytes=28-"]
    with pytest.raises(ResponseStreamingError):
        fetch(_Flaky(data, cuts=9), S3Object("b", "k"), attempts=3)


def test_a_missing_object_is_an_object_error_with_its_code() -> None:
    class Gone:
        def get_object(self, **_: str) -> None:
            raise ClientError({"Error": {"Code": "NoSuchKey"}}, "GetObject")

    with pytest.raises(ObjectError) as caught:
        fetch(Gone(), S3Object("b", "k"))
    assert caught.value.reason == "NoSuchKey"


def test_log_records_are_the_files_records_and_other_files_are_refused() -> None:
    obj = S3Object("b", "k")
    body = gzip.compress(b'{"Records": [{"eventID": "1"}, {"eventID": "2"}]}')
    assert [json.loads(r) for r in log_records(obj, body)] == [{"eventID": "1"}, {"eventID": "2"}]
    for bad, reason in (
        (b"\x1f\x8b broken", "bad_gzip"),
        (b'{"hello": 1}', "not_a_log_file"),
        (b'{"Records": [1, 2', "not_a_log_file"),
    ):
        with pytest.raises(ObjectError) as caught:
            log_records(obj, bad)
        assert caught.value.reason == reason
