from __future__ import annotations

import calendar
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from insights.timeparse import TimestampError, format_minute, parse_epoch_seconds


@given(st.integers(min_value=1_136_073_600, max_value=4_102_444_799))
def test_fast_path_matches_calendar(seconds: int) -> None:
    text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
    assert parse_epoch_seconds(text) == seconds == calendar.timegm(time.gmtime(seconds))


def test_fractional_and_offset_forms() -> None:
    assert parse_epoch_seconds("2020-09-14T00:44:23.000Z") == 1_600_044_263
    assert parse_epoch_seconds("2020-09-14T02:44:23+02:00") == 1_600_044_263


@pytest.mark.parametrize(
    "text",
    [
        "2024-13-01T00:00:00Z",
        "2024-01-01T00:00:61Z",
        "",
        "abc",
        "2024-01-01T00:00:+1Z",
        "+024-01-01T00:00:00Z",
        "2024-01-01T0 :00:00Z",
        "2024/01/01T00:00:00Z",
    ],
)
def test_invalid(text: str) -> None:
    with pytest.raises(TimestampError):
        parse_epoch_seconds(text)


def test_format_minute_round_trip() -> None:
    assert parse_epoch_seconds(format_minute(28_676_262)) == 28_676_262 * 60


@pytest.mark.parametrize(
    "text", ["2200-01-01T00:00:00Z", "1999-12-31T23:59:59Z", "2200-01-01T00:00:00.5Z"]
)
def test_absurd_years_are_their_own_reason(text: str) -> None:
    with pytest.raises(TimestampError) as info:
        parse_epoch_seconds(text)
    assert info.value.reason == "absurd_timestamp"
