"""Reading a delivered log file from S3: ranged retries, and what makes a file unreadable.

A read cut short (a connection reset, a timeout mid-body) is resumed from the byte it reached
with a ``Range`` request, up to ``attempts`` times; boto3's own retries (throttling, 5xx) come
first. What no retry can fix (the object is gone, access is denied, it is not gzip or not a
CloudTrail log file) is an :class:`ObjectError` with a reason: the caller dead-letters it and
moves on. Any other failure propagates, and the message is read again after its visibility
timeout.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from streams.files import load_file_bytes
from streams.ingest.notifications import S3Object
from streams.produce import records_of

__all__ = ["ObjectError", "fetch", "log_records"]

#: S3 error codes no retry fixes: the object is dead-lettered with the code as its reason.
_FINAL = {"NoSuchKey", "NoSuchBucket", "AccessDenied", "InvalidObjectState", "InvalidRange"}
_CUT_SHORT = (ConnectionClosedError, IncompleteReadError, ReadTimeoutError, ResponseStreamingError)
_CHUNK = 1 << 20


class ObjectError(Exception):
    """An object that cannot be read as a CloudTrail log file, with the reason why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def fetch(s3: Any, obj: S3Object, attempts: int = 5) -> bytes:
    """The object's bytes, resumed with ranged reads when a read is cut short."""
    got = bytearray()
    failures = 0
    while True:
        request: dict[str, str] = {"Bucket": obj.bucket, "Key": obj.key}
        if got:
            request["Range"] = f"bytes={len(got)}-"
        try:
            body = s3.get_object(**request)["Body"]
            for chunk in body.iter_chunks(_CHUNK):
                got += chunk
            return bytes(got)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _FINAL:
                raise ObjectError(code, f"s3://{obj.bucket}/{obj.key}") from exc
            raise
        except _CUT_SHORT:
            failures += 1
            if failures >= attempts:
                raise


def log_records(obj: S3Object, data: bytes) -> list[bytes]:
    """The records of a CloudTrail log file (``{"Records": [...]}``, gzip or not), each as
    its bytes; ``ObjectError`` when the object is not one."""
    try:
        text = load_file_bytes(data)
    except ValueError as exc:
        raise ObjectError("bad_gzip", f"s3://{obj.bucket}/{obj.key}: {exc}") from exc
    if not text.lstrip()[:12].replace(b" ", b"").startswith(b'{"Records"'):
        raise ObjectError("not_a_log_file", f"s3://{obj.bucket}/{obj.key} has no Records")
    records = list(records_of(text))
    if len(records) == 1 and records[0] is text:
        raise ObjectError("not_a_log_file", f"s3://{obj.bucket}/{obj.key} is not valid JSON")
    return records
