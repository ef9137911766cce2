"""Building CloudTrail events and streams for tests."""

from __future__ import annotations

import random
from collections.abc import Iterable

from insights import CloudTrailEvent, EngineConfig, InsightEngine, InsightRecord
from insights.events import UserIdentity
from insights.timeparse import format_minute

T0 = 1_704_067_200  # 2024-01-01T00:00:00Z (Monday)


def iso(seconds: int) -> str:
    """ISO timestamp of epoch seconds."""
    return format_minute(seconds // 60)[:17] + f"{seconds % 60:02d}Z"


def make_event(
    seconds: int,
    name: str = "CreateTags",
    *,
    source: str = "ec2.amazonaws.com",
    account: str = "123456789012",
    region: str = "us-east-1",
    error: str | None = None,
    read_only: bool = False,
    principal: str = "arn:aws:iam::123456789012:user/alice",
    event_id: str | None = None,
    event_type: str = "AwsApiCall",
    management: bool = True,
) -> CloudTrailEvent:
    """A CloudTrail event with the fields detection uses."""
    return CloudTrailEvent(
        event_time=iso(seconds),
        event_source=source,
        event_name=name,
        aws_region=region,
        recipient_account_id=account,
        event_id=event_id or f"{seconds}-{name}-{random.random()}",
        event_type=event_type,
        error_code=error,
        read_only=read_only,
        management_event=management,
        event_category="Management" if management else "Data",
        user_agent="aws-cli/2",
        user_identity=UserIdentity(type="IAMUser", arn=principal),
    )


def background(
    days: float, rate_per_minute: float = 0.5, seed: int = 1, name: str = "CreateTags"
) -> list[CloudTrailEvent]:
    """Poisson background traffic on one write API, with unique, seeded event ids."""
    rng = random.Random(seed)
    events = []
    for minute in range(int(days * 1440)):
        n = 0
        p = rng.random()
        threshold = 2.718281828 ** (-rate_per_minute)
        while p > threshold:
            n += 1
            p *= rng.random()
        for k in range(n):
            sec = T0 + minute * 60 + rng.randrange(60)
            events.append(make_event(sec, name, event_id=f"bg-{minute}-{k}-{seed}"))
    events.sort(key=lambda e: e.event_time or "")
    return events


def burst(
    at: int, count: int, name: str = "CreateUser", spread: int = 60, **kw: object
) -> list[CloudTrailEvent]:
    """``count`` calls within ``spread`` seconds from ``at``."""
    return [
        make_event(at + (i * spread) // count, name, event_id=f"burst-{at}-{name}-{i}", **kw)  # type: ignore[arg-type]
        for i in range(count)
    ]


def burst_after_a_day(days: float = 1.1) -> list[CloudTrailEvent]:
    """Background CreateTags at 2 per minute, and 120 CreateUser calls over 4 minutes 10 minutes
    into the second day (sorted by time)."""
    events = background(days, rate_per_minute=2.0) + burst(T0 + 86_400 + 600, 120, spread=240)
    events.sort(key=lambda e: e.event_time or "")
    return events


def run(
    events: Iterable[CloudTrailEvent], config: EngineConfig | None = None
) -> list[InsightRecord]:
    """All records of a finite input, flushed."""
    engine = InsightEngine(config or EngineConfig(warmup_minutes=60))
    return engine.process_many(events) + engine.flush()
