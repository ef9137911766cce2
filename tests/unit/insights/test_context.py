"""An insight's context: its key's counts per minute around it, with the baseline's numbers."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from insights import CloudTrailEvent, EngineConfig, InsightContext, InsightEngine, accelerated
from insights.context import CONTEXT_AFTER_MINUTES, CONTEXT_BEFORE_MINUTES
from insights.timeparse import parse_epoch_seconds
from tests.factory import T0, background, burst

BURST_AT = T0 + 36 * 3600 + 600  # day 2, 12:10


def events() -> list[CloudTrailEvent]:
    """Two days of CreateTags at 2 a minute, and 200 more of them over 5 minutes at day 2 noon."""
    out = background(2.2, rate_per_minute=2.0) + burst(BURST_AT, 200, name="CreateTags", spread=300)
    out.sort(key=lambda e: e.event_time or "")
    return out


def replay(
    stream: list[CloudTrailEvent], accelerate: bool | None = None, cut: int | None = None
) -> list[InsightContext]:
    """The contexts of a replay (restored from a snapshot after ``cut`` events, if given)."""
    config = EngineConfig(warmup_minutes=60)
    engine = InsightEngine(config, accelerated=accelerate)
    engine.contexts.keep = True
    out: list[InsightContext] = []
    head, tail = (stream, []) if cut is None else (stream[:cut], stream[cut:])
    engine.process_many(head)
    out += engine.contexts.take()
    if cut is not None:
        engine = InsightEngine.from_state(engine.save_state(), config, accelerated=accelerate)
        engine.contexts.keep = True
    engine.process_many(tail)
    engine.flush()
    return out + engine.contexts.take()


@pytest.mark.parametrize(
    "accelerate", [False, pytest.param(True, marks=pytest.mark.accelerator)], ids=["pure", "c"]
)
def test_the_context_holds_the_keys_counts_from_6_hours_before_to_30_minutes_after(
    accelerate: bool,
) -> None:
    assert accelerated() or not accelerate, "make builds the C accelerator"
    stream = events()
    contexts = [c for c in replay(stream, accelerate) if c.key.event_name == "CreateTags"]
    statuses = [c.status for c in contexts]
    assert (statuses[0], statuses[-1], statuses.count("final")) == ("open", "final", 1)
    assert statuses.count("ended") == 1
    final = contexts[-1]
    assert final.end_minute is not None
    assert final.first_minute == final.start_minute - CONTEXT_BEFORE_MINUTES
    assert final.first_minute + len(final.counts) == final.end_minute + CONTEXT_AFTER_MINUTES
    # every count is the input's own count of that minute (seen from outside the engine)
    per_minute = Counter(parse_epoch_seconds(e.event_time or "") // 60 for e in stream)
    first = final.first_minute
    assert list(final.counts) == [per_minute[first + i] for i in range(len(final.counts))]
    assert final.start_minute == BURST_AT // 60
    # the baseline expects about 2 a minute, and the burst's minutes are above its band
    assert all(1.0 < mu < 3.5 for mu in final.expected)
    burst_minutes = range(final.start_minute - first, final.start_minute - first + 5)
    assert all(final.counts[i] > final.upper[i] for i in burst_minutes)
    bands = zip(final.lower, final.expected, final.upper, strict=True)
    assert all(lo <= mu <= hi for lo, mu, hi in bands)
    # each issue extends the one before it
    for before, after in itertools.pairwise(contexts):
        assert after.counts[: len(before.counts)] == before.counts


def test_contexts_are_the_same_after_a_restore_from_a_snapshot() -> None:
    stream = events()
    whole = [c.to_dict() for c in replay(stream)]
    cut = next(i for i, e in enumerate(stream) if e.event_time == burst(BURST_AT, 1)[0].event_time)
    for at in (cut - 500, cut + 60):  # before the burst, and while its insight is open
        assert [c.to_dict() for c in replay(stream, cut=at)] == whole


@pytest.mark.accelerator
def test_the_c_step_and_python_issue_the_same_contexts() -> None:
    assert accelerated(), "make builds the C accelerator"
    stream = events()
    assert [c.to_dict() for c in replay(stream, True)] == [
        c.to_dict() for c in replay(stream, False)
    ]
