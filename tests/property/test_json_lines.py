"""JSON lines read a chunk at a time give exactly what decoding each line gives.

``iter_json_lines`` decodes a chunk in one msgspec call when every line is one complete record;
the properties below feed it every line shape that could make one call read something other
than the lines: blank and whitespace lines, two objects on a line, a record spread over lines,
CRLF endings, batches, Insight records, incomplete and broken records, cut anywhere.
"""

from __future__ import annotations

import json

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from insights import DecodeResult, decode_many, iter_json_lines

RECORD = {
    "eventTime": "2024-07-10T01:42:07Z",
    "eventSource": "iam.amazonaws.com",
    "eventName": "CreateUser",
    "awsRegion": "us-east-1",
    "recipientAccountId": "123456789012",
    "eventType": "AwsApiCall",
    "readOnly": False,
    "requestParameters": {"note": "} {\\n", "list": [{}, {"a": 1}]},
}
CHANGES = [
    {},
    {},
    {"eventTime": "2024-07-10T01:42:07.123Z"},
    {"eventTime": "2024-02-30T01:42:07Z"},
    {"eventTime": "2199-07-10T01:42:07Z"},
    {"eventTime": "2031-01-01T00:00:61Z"},
    {"eventTime": 5},
    {"eventSource": ""},
    {"eventName": None},
    {"recipientAccountId": None, "userIdentity": {"accountId": "210987654321"}},
    {"recipientAccountId": ""},
    {"eventType": "AwsCloudTrailInsight"},
    {"eventCategory": "Insight"},
]


def _compact(record: dict[str, object]) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()


def _line(kind: str, change: dict[str, object]) -> bytes:
    record = {**RECORD, **change}
    one = _compact(record)
    other = _compact({**record, "eventID": "other"})
    shapes = {
        "record": one,
        "spaced": json.dumps(record).encode(),
        "crlf": one + b"\r",
        "padded": b"  " + one + b" ",
        "two": one + b"," + one,
        "two-spaced": one + b" " + one,
        "pretty": json.dumps(record, indent=1).encode(),  # one record over many lines
        "split": one.replace(b',"eventName"', b',\n"eventName"'),  # at a legal blank
        "batch": b'{"Records":[' + one + b"," + one + b"]}",
        # a batch that is also a record: the batch's records count, as for any batch
        "batch-with-fields": b'{"Records":[' + one + b"]," + other[1:],
        "eventbridge": b'{"detail-type":"AWS API Call via CloudTrail","detail":' + one + b"}",
        "blank": b"",
        "spaces": b"   ",
        "garbage": b"\xff\x00{",
        "text": b"not json",
        "array": b"[" + one + b"]",
        "empty-object": b"{}",
    }
    return shapes[kind]


KINDS = ["record"] * 8 + [
    "spaced",
    "crlf",
    "padded",
    "two",
    "two-spaced",
    "pretty",
    "split",
    "batch",
    "batch-with-fields",
    "eventbridge",
    "blank",
    "spaces",
    "garbage",
    "text",
    "array",
    "empty-object",
]
lines = st.lists(st.builds(_line, st.sampled_from(KINDS), st.sampled_from(CHANGES)), max_size=30)


def _view(results: list[DecodeResult]) -> object:
    return (
        [msgspec.json.encode(e) for r in results for e in r.events],
        [(x.reason, x.detail, x.raw) for r in results for x in r.rejections],
        sum(r.ignored for r in results),
    )


def _per_line(data: bytes, max_bytes: int) -> object:
    one_by_one = [line for line in data.split(b"\n") if line.strip()]
    return _view([decode_many(one_by_one, max_bytes=max_bytes)])


@settings(max_examples=400)
@given(lines, st.integers(min_value=1, max_value=3_000), st.booleans())
def test_chunks_decode_exactly_as_lines_do(
    items: list[bytes], budget: int, final_newline: bool
) -> None:
    data = b"\n".join(items) + (b"\n" if final_newline else b"")
    expected = _per_line(data, max_bytes=1 << 20)
    assert _view(list(iter_json_lines(data, budget=budget))) == expected


@given(lines, st.integers(min_value=200, max_value=2_000))
def test_the_message_limit_holds_for_lines_read_in_one_call(items: list[bytes], limit: int) -> None:
    data = b"\n".join(items)
    expected = _per_line(data, max_bytes=limit)
    assert _view(list(iter_json_lines(data, max_bytes=limit, budget=1 << 16))) == expected


def test_hazards_among_clean_records_decode_as_lines_do() -> None:
    """Each hazard, and pairs whose miscounts cancel (two records on a line and one record over
    two lines), between complete records: the chunk a single call would read wrongly."""
    clean = [_line("record", {}) for _ in range(3)]
    hazards = [k for k in KINDS if k != "record"]
    cases = [[k] for k in hazards] + [["two-spaced", "split"], ["two-spaced", "pretty"]]
    for kinds in cases:
        data = b"\n".join([*clean, *(_line(k, {}) for k in kinds), *clean])
        for budget in (1, 1 << 16):
            got = _view(list(iter_json_lines(data, budget=budget)))
            assert got == _per_line(data, max_bytes=1 << 20), kinds


def test_a_clean_chunk_is_read_in_one_call_and_an_odd_one_line_by_line() -> None:
    """The fast path is taken when it may be (else the properties above would hold vacuously)."""
    from insights import decoding

    calls: list[int] = []
    decoder = decoding.EVENT_DECODER

    class Spy:
        def decode(self, data: bytes) -> object:
            calls.append(1)
            return decoder.decode(data)

        def decode_lines(self, data: memoryview) -> object:
            calls.append(len(bytes(data).split(b"\n")))
            return decoder.decode_lines(data)

    clean = b"\n".join(_compact({**RECORD, "eventID": str(i)}) for i in range(50)) + b"\n"
    odd = clean + b"not json\n"
    decoding.EVENT_DECODER = Spy()  # type: ignore[assignment]
    try:
        assert sum(len(r.events) for r in iter_json_lines(clean)) == 50
        assert calls == [50]
        calls.clear()
        assert [len(r.rejections) for r in iter_json_lines(odd)] == [1]
        assert len(calls) == 51  # the failed lines-call is not made: the last line is no record
    finally:
        decoding.EVENT_DECODER = decoder
