"""Drop insights: a steady rhythm that stops gets a Start, and an End when it resumes."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from insights import CloudTrailEvent, EngineConfig, InsightEngine, InsightRecord, InsightSelector
from tests.factory import T0, make_event

DAY = 86_400
DROPS = EngineConfig(
    selectors=(
        InsightSelector(insight_type="ApiCallRateInsight", drops=True),
        InsightSelector(insight_type="ApiErrorRateInsight"),
    )
)


def job(
    first: int, last: int, every: int = 300, name: str = "PutInventory"
) -> list[CloudTrailEvent]:
    """A job calling ``name`` every ``every`` seconds from ``first`` to ``last`` (exclusive)."""
    return [make_event(at, name, event_id=f"{name}-{at}") for at in range(first, last, every)]


def busy(days: int, seed: int = 5) -> list[CloudTrailEvent]:
    """Steady traffic on another API, day and night (keeps the stream's clock moving)."""
    rng = random.Random(seed)
    return [
        make_event(T0 + m * 60 + rng.randrange(60), "UpdateInstanceInformation", event_id=f"b{m}")
        for m in range(days * 1440)
    ]


def run(events: list[CloudTrailEvent], config: EngineConfig = DROPS) -> list[InsightRecord]:
    events.sort(key=lambda e: e.event_time or "")
    engine = InsightEngine(config)
    return engine.process_many(events) + engine.flush()


def drops(records: list[InsightRecord]) -> list[InsightRecord]:
    return [r for r in records if r.drop]


def test_a_job_that_stops_for_four_hours_starts_a_drop_that_ends_when_it_resumes() -> None:
    stop, resume = T0 + 9 * DAY + 9 * 3600, T0 + 9 * DAY + 13 * 3600
    events = busy(10) + job(T0, stop) + job(resume, T0 + 10 * DAY)
    start, end = drops(run(events))
    last_call = stop - 300
    assert (start.state, end.state) == ("Start", "End")
    assert start.shared_event_id == end.shared_event_id
    assert start.event_minute == last_call // 60 + 5  # the call that did not come
    assert start.detection_minute <= last_call // 60 + 21
    assert end.event_minute == resume // 60
    as_dict = start.to_dict()
    assert as_dict["insightDetails"]["insightType"] == "ApiCallRateInsight"
    assert as_dict["additionalEventData"]["direction"] == "drop"
    assert as_dict["insightDetails"]["insightContext"]["statistics"]["insight"]["average"] == 0
    assert as_dict["insightDetails"]["insightContext"]["statistics"]["baseline"]["average"] == 0.2
    assert not [r for r in run(events, EngineConfig()) if r.drop]  # opt-in


def test_no_drop_on_office_hours_nights_weekends_or_sparse_keys() -> None:
    rng = random.Random(7)
    events = busy(14)
    for day in range(14):
        if day % 7 < 5:  # people in office hours, a weekday-only job
            for minute in range(9 * 60, 17 * 60):
                if rng.random() < 0.3:
                    events.append(make_event(T0 + day * DAY + minute * 60, "CreateTags"))
            events += job(T0 + day * DAY + 8 * 3600, T0 + day * DAY + 18 * 3600, name="PutImage")
        for hour in range(0, 24, 5):  # a sparse key
            events.append(make_event(T0 + day * DAY + hour * 3600 + 77, "CreateRole"))
    assert drops(run(events)) == []


def test_a_job_that_stops_for_good_ends_after_the_longest_insight_and_does_not_start_again() -> (
    None
):
    stop = T0 + 8 * DAY
    records = drops(run(busy(10) + job(T0, stop)))
    assert [(r.state, dict(r.extra)["reason"]) for r in records] == [
        ("Start", "silence"),
        ("End", "max_duration"),
    ]
    assert records[1].event_minute - records[0].start_minute == DROPS.max_insight_minutes


def test_a_snapshot_in_the_silence_gives_the_same_records() -> None:
    stop, resume = T0 + 9 * DAY + 9 * 3600, T0 + 9 * DAY + 13 * 3600
    events = busy(10) + job(T0, stop) + job(resume, T0 + 10 * DAY)
    events.sort(key=lambda e: e.event_time or "")
    cut = next(i for i, e in enumerate(events) if (e.event_time or "") >= "2024-01-10T10:30")
    whole = InsightEngine(DROPS)
    expected = whole.process_many(events) + whole.flush()
    first = InsightEngine(DROPS)
    records = first.process_many(events[:cut])
    second = InsightEngine.from_state(first.save_state(), DROPS)
    records += second.process_many(events[cut:]) + second.flush()
    assert [r.to_json() for r in records] == [r.to_json() for r in expected]
    assert len(drops(records)) == 2


def test_drops_are_for_call_rates_only() -> None:
    with pytest.raises(ValidationError, match="ApiCallRateInsight only"):
        InsightSelector(insight_type="ApiErrorRateInsight", drops=True)
