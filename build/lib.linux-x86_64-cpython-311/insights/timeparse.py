"""Fast, strict parsing of CloudTrail timestamps into epoch seconds.

CloudTrail writes ``eventTime`` as ``YYYY-MM-DDTHH:MM:SSZ``. The fast path caches the epoch
minute of each ``YYYY-MM-DDTHH:MM`` prefix (a stream touches few distinct minutes at a time), so
parsing costs a slice and a dictionary look-up. Other ISO-8601 forms (fractional seconds,
offsets) go through :func:`datetime.fromisoformat`.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

#: Earliest and latest accepted event times (epoch seconds). CloudTrail launched in 2013; a time
#: outside this range is not a clock skew but a broken or hostile record.
MIN_EPOCH = 1_136_073_600  # 2006-01-01T00:00:00Z
MAX_EPOCH = 4_102_444_800  # 2100-01-01T00:00:00Z

_CACHE_LIMIT = 65_536
_minute_cache: dict[str, int] = {}
#: Seconds with CloudTrail's trailing ``Z`` (``"07Z"``): one slice validates both.
_SECONDS_Z = {f"{n:02d}Z": n for n in range(60)}


class TimestampError(ValueError):
    """The text is not a valid timestamp, or lies outside the accepted range."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(f"{reason}: {text[:64]!r}")
        self.reason = reason


def _slow_parse(text: str) -> int:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise TimestampError("bad_timestamp", text) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def _minute_of(prefix: str) -> int:
    """Epoch minute of a validated ``YYYY-MM-DDTHH:MM:`` prefix (cached)."""
    cached = _minute_cache.get(prefix)
    if cached is not None:
        return cached
    if prefix[4] != "-" or prefix[7] != "-" or prefix[10] != "T" or prefix[13] != ":":
        raise TimestampError("bad_timestamp", prefix)
    try:
        tm = (
            int(prefix[0:4]),
            int(prefix[5:7]),
            int(prefix[8:10]),
            int(prefix[11:13]),
            int(prefix[14:16]),
            0,
        )
        datetime(*tm[:5])  # validates ranges (month 13, day 31 of February, ...)
    except ValueError as exc:
        raise TimestampError("bad_timestamp", prefix) from exc
    if not prefix[:16].replace("-", "").replace("T", "").replace(":", "").isdigit():
        raise TimestampError("bad_timestamp", prefix)  # int() would accept " 1" or "+1"
    value = calendar.timegm(tm) // 60
    if not MIN_EPOCH // 60 <= value < MAX_EPOCH // 60:
        raise TimestampError("absurd_timestamp", prefix)
    if len(_minute_cache) >= _CACHE_LIMIT:
        _minute_cache.clear()
    _minute_cache[prefix] = value
    return value


def parse_epoch_seconds(text: str) -> int:
    """Return epoch seconds of an ISO-8601 UTC timestamp, range-checked.

    The common ``YYYY-MM-DDTHH:MM:SSZ`` form costs two dictionary look-ups.

    Examples:
        >>> parse_epoch_seconds("2024-07-10T01:42:07Z")
        1720575727
        >>> parse_epoch_seconds("2020-09-14T00:44:23.000Z")
        1600044263
    """
    if len(text) == 20:
        seconds = _SECONDS_Z.get(text[17:])
        if seconds is not None:
            minute = _minute_cache.get(text[:17])
            if minute is None:
                minute = _minute_of(text[:17])
            return minute * 60 + seconds
    value = _slow_parse(text)
    if not MIN_EPOCH <= value < MAX_EPOCH:
        raise TimestampError("absurd_timestamp", text)
    return value


def format_minute(minute: int) -> str:
    """Format an epoch minute as CloudTrail's ``YYYY-MM-DDTHH:MM:00Z``.

    Examples:
        >>> format_minute(28676262)
        '2024-07-10T01:42:00Z'
    """
    return datetime.fromtimestamp(minute * 60, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
