from collections.abc import Callable
from typing import Any

def decode_fast(
    decode: Callable[[bytes], object],
    messages: list[Any],
    start: int,
    max_bytes: int,
    out: list[Any],
) -> tuple[int, object | None]: ...
def scan(
    events: list[Any],
    streams: dict[Any, Any],
    jump: int,
    lateness: int,
    accept: Callable[..., object],
    schedule: Callable[..., object],
    slow: Callable[..., object],
) -> tuple[int, int]: ...
def strict_seconds(text: object) -> int: ...
