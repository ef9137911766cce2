"""Input in chunks: JSON lines a chunk of whole lines at a time, messages in ranges of bytes.

A chunk of about :data:`DECODE_CHUNK_BYTES` is still in the CPU cache when
the engine reads its events (see :mod:`insights.pipeline`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import msgspec

from insights import decoding
from insights.decoding import BATCH_PREFIX, MAX_MESSAGE_BYTES
from insights.events import CloudTrailEvent, DecodeResult

__all__ = ["DECODE_CHUNK_BYTES", "chunk_ranges", "iter_json_lines"]

#: Input bytes to decode per step when the events go straight to the engine (~256 records of
#: 1.5 KB, whether a message holds one record or a batch): a chunk this size is still in the CPU
#: cache when the engine reads it (replay of a busy stream is about a third faster than with
#: chunks of 4,096 records, see docs/performance.md).
DECODE_CHUNK_BYTES = 256 * 1536


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
                yield decoding.decode_many(lines, max_bytes=max_bytes)
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
        events = decoding.EVENT_DECODER.decode_lines(memoryview(data)[start:stop])
    except (msgspec.MsgspecError, RecursionError, ValueError):
        return None
    if len(events) != lines or not all(map(decoding.is_complete, events)):
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
