from __future__ import annotations

import json

import pytest

from insights import EngineConfig, InsightEngine, InsightSelector, decode_many, native
from insights.clocks import StreamClocks
from insights.timeparse import parse_epoch_seconds
from streams.lab.simulate import Scenario, generate, render
from tests.factory import T0, background, burst, burst_after_a_day, make_event, run

DAY = 86_400


def starts(records: list) -> list:  # type: ignore[type-arg]
    return [r for r in records if r.state == "Start"]


def test_burst_on_a_silent_api_starts_and_ends() -> None:
    events = background(1.0) + burst(T0 + DAY + 3600, 30)
    events.sort(key=lambda e: e.event_time or "")
    records = run(events)
    assert [(r.state, r.key.event_name) for r in records] == [
        ("Start", "CreateUser"),
        ("End", "CreateUser"),
    ]
    start, end = records
    assert start.shared_event_id == end.shared_event_id
    assert start.event_id != end.event_id
    assert start.event_minute == (T0 + DAY + 3600) // 60
    assert start.detection_minute - start.event_minute <= 2
    assert end.insight_average >= 15
    assert start.baseline_average < 0.01


def test_steady_traffic_never_fires() -> None:
    records = run(background(3.0, rate_per_minute=2.0, seed=9), EngineConfig(warmup_minutes=60))
    assert records == []


def test_one_stray_call_on_a_silent_api_is_not_an_insight() -> None:
    events = background(1.0) + burst(T0 + DAY + 600, 2, "DeleteTrail")
    events.sort(key=lambda e: e.event_time or "")
    assert starts(run(events)) == []


def test_nothing_fires_during_warmup() -> None:
    events = background(0.5) + burst(T0 + 3600, 50)
    events.sort(key=lambda e: e.event_time or "")
    assert run(events, EngineConfig(warmup_minutes=1440)) == []


def test_error_rate_insight_is_per_error_code() -> None:
    events = background(1.0)
    events += burst(
        T0 + DAY + 600,
        40,
        "ListBuckets",
        source="s3.amazonaws.com",
        read_only=True,
        error="AccessDenied",
    )
    events.sort(key=lambda e: e.event_time or "")
    (start,) = starts(run(events))
    assert start.key.insight_type == "ApiErrorRateInsight"
    assert start.key.error_code == "AccessDenied"
    assert start.to_dict()["insightDetails"]["errorCode"] == "AccessDenied"


def test_reads_without_errors_and_service_events_are_not_analysed() -> None:
    engine = InsightEngine(EngineConfig(warmup_minutes=0))
    engine.process(make_event(T0, "DescribeInstances", read_only=True))
    engine.process(make_event(T0, "RotateKey", event_type="AwsServiceEvent"))
    engine.process(make_event(T0, "CreateTags"))
    assert (engine.stats.analysed, engine.stats.not_analysed) == (1, 2)


def test_data_events_are_opt_in() -> None:
    data_event = make_event(T0, "PutObject", source="s3.amazonaws.com", management=False)
    off = InsightEngine(EngineConfig())
    off.process(data_event)
    assert off.stats.analysed == 0
    on = InsightEngine(
        EngineConfig(
            selectors=(
                InsightSelector(
                    insight_type="ApiCallRateInsight", event_categories=("Management", "Data")
                ),
            )
        )
    )
    on.process(data_event)
    assert on.stats.analysed == 1


def test_duplicates_count_once() -> None:
    engine = InsightEngine()
    event = make_event(T0, event_id="same")
    engine.process_many([event, event, event])
    assert (engine.stats.analysed, engine.stats.duplicates) == (1, 2)


def test_plain_reads_skip_deduplication_but_still_move_the_clock() -> None:
    engine = InsightEngine(EngineConfig(allowed_lateness_seconds=60))
    read = make_event(T0, "DescribeInstances", read_only=True, event_id="r1")
    engine.process_many([read, read])
    assert (engine.stats.not_analysed, engine.stats.duplicates) == (2, 0)
    assert engine.ids_remembered == 0  # their ids cost no memory
    engine.process(make_event(T0 + 600, "DescribeInstances", read_only=True))
    assert engine.watermark("123456789012", "us-east-1") == (T0 + 600 - 60) // 60
    failed = make_event(T0 + 600, "DescribeInstances", read_only=True, error="AccessDenied")
    engine.process_many([failed, failed])  # same id: an error call counts once
    assert (engine.stats.analysed, engine.stats.duplicates) == (1, 1)


def test_late_events_are_counted_not_analysed() -> None:
    engine = InsightEngine(EngineConfig(allowed_lateness_seconds=60))
    engine.process(make_event(T0 + 600))
    engine.process(make_event(T0 + 560))  # within lateness
    engine.process(make_event(T0 + 100))  # minute already closed
    assert (engine.stats.analysed, engine.stats.late) == (2, 1)


def test_a_far_future_event_does_not_move_time() -> None:
    engine = InsightEngine(EngineConfig(allowed_lateness_seconds=60))
    engine.process(make_event(T0))
    before = engine.watermark("123456789012", "us-east-1")
    engine.process(make_event(T0 + 5 * 365 * DAY))
    assert engine.watermark("123456789012", "us-east-1") == before
    engine.process(make_event(T0 + 30))  # still on time, not late
    assert engine.stats.late == 0
    engine.flush()
    assert engine.stats.rejected["future_timestamp"] == 1


def test_a_confirmed_jump_moves_time() -> None:
    engine = InsightEngine(EngineConfig(jump_confirm_events=5, allowed_lateness_seconds=60))
    engine.process(make_event(T0))
    later = T0 + 3 * 365 * DAY
    engine.process_many(make_event(later + i) for i in range(5))
    watermark = engine.watermark("123456789012", "us-east-1")
    assert watermark is not None
    assert watermark >= (later - 60) // 60
    assert engine.stats.analysed == 6


def test_a_quiet_region_waking_up_is_vouched_for_by_the_flowing_ones() -> None:
    engine = InsightEngine(EngineConfig(allowed_lateness_seconds=60))
    engine.process(make_event(T0, region="eu-west-1"))  # then silent for 7 h
    flowing = [make_event(T0 + m * 60) for m in range(8 * 60)]
    woken = [make_event(T0 + 7 * 3600 + i, region="eu-west-1") for i in range(5)]
    engine.process_many(flowing[: 7 * 60] + woken + flowing[7 * 60 :])
    engine.flush()
    assert engine.stats.rejected.get("future_timestamp", 0) == 0
    assert engine.stats.analysed == 1 + 8 * 60 + 5


def test_a_sparse_stream_beside_a_flowing_one_has_every_record_counted() -> None:
    """One call every 8 hours (beyond the 6 h jump) next to a busy Region, fed as the worker
    feeds it (a wall-clock bound set): each call moves its stream once the busy clock has
    passed it, instead of waiting held for ever."""
    engine = InsightEngine(EngineConfig(allowed_lateness_seconds=60))
    events = []
    for m in range(3 * 24 * 60):
        events.append(make_event(T0 + m * 60, event_id=f"busy{m}"))
        if m % (8 * 60) == 0:
            events.append(make_event(T0 + m * 60 + 5, region="sa-east-1", event_id=f"s{m}"))
    for start in range(0, len(events), 500):
        engine.reject_after(T0 + 10 * DAY)
        engine.process_many(events[start : start + 500])
    assert engine.stats.analysed == len(events)
    assert engine.stats.rejected.get("future_timestamp", 0) == 0
    assert engine.watermark("123456789012", "sa-east-1") == (T0 + 2 * DAY + 16 * 3600 - 55) // 60


def _count_passes_over_streams(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A counter of the clock rule's passes over every stream (finding the newest clocks)."""
    scans = [0]
    other_clocks, two_newest = StreamClocks._other_clocks, StreamClocks._two_newest

    def counted_other(self: StreamClocks, stream: object) -> int | None:
        scans[0] += self._top is None
        return other_clocks(self, stream)  # type: ignore[arg-type]

    def counted_two(self: StreamClocks) -> object:
        scans[0] += 1
        return two_newest(self)

    monkeypatch.setattr(StreamClocks, "_other_clocks", counted_other)
    monkeypatch.setattr(StreamClocks, "_two_newest", counted_two)
    return scans


def test_quiet_streams_cost_one_pass_over_the_streams_per_review(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An organization has thousands of quiet account-Regions: holding and reviewing their
    records must not scan every stream once per held record (that made 26,000 events with
    2,000 quiet streams take 9 s instead of 0.5 s)."""
    scans = _count_passes_over_streams(monkeypatch)
    engine = InsightEngine(EngineConfig(allowed_lateness_seconds=60))
    events, quiet = [], 300
    for m in range(2 * 24 * 60):
        events.append(make_event(T0 + m * 60, event_id=f"busy{m}"))
        if m % (8 * 60) == 0:
            events += [
                make_event(T0 + m * 60 + 5, account=f"{s:012d}", event_id=f"q{m}-{s}")
                for s in range(quiet)
            ]
    drains = 0
    for start in range(0, len(events), 500):
        engine.reject_after(T0 + 10 * DAY)
        engine.process_many(events[start : start + 500])
        drains += 1
    assert engine.stats.analysed == len(events)
    assert scans[0] <= 2 * drains + quiet  # a pass per review, and one per new stream at most


def test_the_end_of_a_replay_settles_quiet_streams_in_one_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Flushing 300 quiet streams that each hold a record finds the newest clocks once, not
    once per stream (3,000 such streams took 1.65 s to flush, now 0.1 s)."""
    engine = InsightEngine(EngineConfig(allowed_lateness_seconds=60))
    engine.process_many([make_event(T0 + m * 60, event_id=f"b{m}") for m in range(3 * 24 * 60)])
    engine.process_many(
        [
            make_event(T0 + d * DAY + s, account=f"{s:012d}", event_id=f"q{d}-{s}")
            for s in range(300)
            for d in range(2)
        ]
    )
    scans = _count_passes_over_streams(monkeypatch)
    engine.flush()
    assert engine.stats.rejected.get("future_timestamp", 0) == 0
    assert engine.stats.analysed == 3 * 24 * 60 + 600
    assert scans[0] <= 2


def test_a_sparse_streams_records_before_the_ones_that_move_it_are_taken() -> None:
    """A one-Region log with calls hours apart: the records held before an agreeing group
    are in the past of the time it confirms, so they are counted, not rejected."""
    engine = InsightEngine(EngineConfig(allowed_lateness_seconds=60))
    engine.process(make_event(T0, event_id="a"))
    sparse = [make_event(T0 + h * 3600, event_id=f"h{h}") for h in (10, 20)]
    group = [make_event(T0 + 30 * 3600 + i, event_id=f"g{i}") for i in range(3)]
    engine.process_many(sparse + group)
    engine.flush()
    assert engine.stats.rejected.get("future_timestamp", 0) == 0
    assert engine.stats.analysed == 6


def test_at_the_end_of_a_replay_records_the_other_clocks_passed_are_taken() -> None:
    """A tree read Region by Region: the busy Region is read first, then a quiet one whose
    single calls are days apart; nothing of its own contradicts them and the other clock is
    past them, so the end of the input takes them."""
    engine = InsightEngine(EngineConfig(allowed_lateness_seconds=60))
    engine.process_many([make_event(T0 + m * 60, event_id=f"b{m}") for m in range(5 * 24 * 60)])
    quiet = [make_event(T0 + d * DAY, region="sa-east-1", event_id=f"q{d}") for d in range(4)]
    engine.process_many(quiet)
    engine.flush()
    assert engine.stats.rejected.get("future_timestamp", 0) == 0
    assert engine.stats.analysed == 5 * 24 * 60 + 4


def test_records_ahead_of_a_flowing_stream_are_rejected_once_it_moves_on() -> None:
    engine = InsightEngine(EngineConfig(allowed_lateness_seconds=60))
    # two Regions flowing; 50 agreeing records (distinct ids) 30 h ahead of one of them
    events = [make_event(T0 + m * 60, region=r) for m in range(120) for r in ("us-east-1", "x")]
    ahead = [make_event(T0 + 30 * 3600 + i) for i in range(50)]
    engine.process_many(events[:120] + ahead + events[120:])
    assert engine.stats.rejected["future_timestamp"] == 50
    assert engine.stats.late == 0
    assert engine.stats.analysed == 240
    assert engine.watermark("123456789012", "us-east-1") == (T0 + 119 * 60 - 60) // 60


def test_the_only_stream_of_an_input_moves_on_three_agreeing_records() -> None:
    # nothing else to compare with: a replay crossing a gap in a one-Region log
    engine = InsightEngine(EngineConfig(allowed_lateness_seconds=60))
    engine.process(make_event(T0))
    engine.process_many(make_event(T0 + 30 * DAY + i) for i in range(3))
    assert engine.stats.analysed == 4
    assert engine.watermark("123456789012", "us-east-1") == (T0 + 30 * DAY - 60) // 60


def test_a_new_streams_first_record_far_ahead_does_not_start_its_clock() -> None:
    engine = InsightEngine(EngineConfig(allowed_lateness_seconds=60))
    engine.process(make_event(T0, region="eu-west-1"))
    engine.process(make_event(T0 + 40 * 365 * DAY))  # us-east-1's first record
    engine.process_many(make_event(T0 + m * 60) for m in range(1, 10))
    assert engine.stats.late == 0
    assert engine.stats.rejected["future_timestamp"] == 1


def test_regions_have_their_own_clocks() -> None:
    engine = InsightEngine(EngineConfig(allowed_lateness_seconds=60))
    engine.process(make_event(T0 + 3600, region="eu-west-1"))
    engine.process(make_event(T0, region="us-east-1"))
    assert engine.stats.late == 0


def test_identical_input_gives_identical_bytes() -> None:
    events = background(1.0) + burst(T0 + DAY + 3600, 30)
    events.sort(key=lambda e: e.event_time or "")
    first = [r.to_json() for r in run(events)]
    second = [r.to_json() for r in run(events)]
    assert first == second
    assert first


def test_max_duration_ends_a_level_shift() -> None:
    events = background(1.0, 0.2)
    events += [e for m in range(240) for e in burst(T0 + DAY + m * 60, 8, spread=59)]
    events.sort(key=lambda e: e.event_time or "")
    records = run(events, EngineConfig(warmup_minutes=60, max_insight_minutes=60))
    ends = [r for r in records if r.state == "End"]
    assert ends
    first_end = ends[0].to_dict()
    assert first_end["additionalEventData"]["reason"] == "max_duration"
    assert first_end["insightDetails"]["insightContext"]["statistics"]["insightDuration"] == 60
    assert parse_epoch_seconds(first_end["eventTime"]) > T0 + DAY


def test_rates_show_open_insights_above_their_baseline() -> None:
    engine = InsightEngine(EngineConfig())
    quiet = background(1.0)
    engine.process_many(sorted(quiet, key=lambda e: e.event_time or ""))
    steady = {r.key.event_name: r for r in engine.rates(top_n=50)}
    assert steady
    assert not any(r.in_insight for r in steady.values())
    onset = T0 + DAY + 3600
    records = engine.process_many([*burst(onset, 30), make_event(onset + 961, "PutObject")])
    assert [r.state for r in records] == ["Start"]
    rates = {r.key.event_name: r for r in engine.rates(top_n=0)}
    assert list(rates) == ["CreateUser"]  # top_n=0: only keys in an insight
    hot = rates["CreateUser"]
    assert hot.in_insight
    assert hot.rate_per_minute > 10 * hot.baseline_per_minute


def test_a_job_that_repeats_at_the_same_size_fires_once() -> None:
    """Its first run is unusual; later runs of the same size are cleared by the learned peak."""
    runs = [T0 + DAY + hour * 3600 for hour in (2, 4, 6, 15, 20)]
    events = background(1.5) + [e for at in runs for e in burst(at, 23, "DeleteSnapshot")]
    events.sort(key=lambda e: e.event_time or "")
    records = starts(run(events, EngineConfig(warmup_minutes=600)))
    assert [(r.key.event_name, r.event_minute) for r in records] == [
        ("DeleteSnapshot", runs[0] // 60)
    ]
    # the runs are the key's clumps, learned as such: a run holding three of them fires
    bigger = events + burst(T0 + DAY + 22 * 3600, 80, "DeleteSnapshot")
    bigger.sort(key=lambda e: e.event_time or "")
    assert len(starts(run(bigger, EngineConfig(warmup_minutes=600)))) == 2


def test_deferred_scoring_in_small_chunks_gives_the_same_records() -> None:
    events = burst_after_a_day(1.2)
    config = EngineConfig(warmup_minutes=60)
    whole = InsightEngine(config)
    expected = [r.to_json() for r in whole.process_many(events) + whole.flush()]
    chunked = InsightEngine(config)
    out = []
    for start in range(0, len(events), 37):
        out += chunked.process_many(events[start : start + 37], drain=False)
    assert chunked._clocks.due, "minutes were closed and left for drain()"
    out += chunked.drain()
    assert not chunked._clocks.due
    out += chunked.flush()
    assert [r.to_json() for r in out] == expected
    assert chunked.stats.as_dict() == whole.stats.as_dict()


@pytest.mark.parametrize("accelerated", [pytest.param(True, marks=pytest.mark.accelerator), False])
def test_events_after_the_callers_bound_are_rejected_and_kept(
    monkeypatch: pytest.MonkeyPatch, accelerated: bool
) -> None:
    if not accelerated:
        monkeypatch.setattr(native, "module", None)
    elif native.module is None:
        pytest.fail("the C accelerator is not built")
    lines = list(render(generate(Scenario(days=1, reads_per_minute=2))))
    bound = parse_epoch_seconds(json.loads(lines[len(lines) // 2])["eventTime"])
    after = [line for line in lines if parse_epoch_seconds(json.loads(line)["eventTime"]) > bound]
    engine = InsightEngine()
    engine.reject_after(bound)
    engine.process_many(decode_many(lines).events)
    rejected = engine.take_rejected()
    assert engine.stats.rejected["future_timestamp"] == len(after) > 1000
    assert sorted(e.event_id or "" for e in rejected) == sorted(
        json.loads(line)["eventID"] for line in after
    )
    assert engine.take_rejected() == []
    assert engine.stats.analysed + engine.stats.not_analysed == len(lines) - len(after)


def test_rates_of_an_open_insight_are_the_observed_counts_not_the_learned_ones() -> None:
    """20 calls a minute for 11 minutes read as 20/min (the learned table clips them)."""
    engine = InsightEngine(EngineConfig(allowed_lateness_seconds=0))
    engine.process_many(background(1.0))
    onset = T0 + DAY + 3600  # on the hour: the hour's mean is the burst's
    wave = [e for m in range(11) for e in burst(onset + m * 60, 20, "CreateAccessKey", spread=59)]
    # the next minute's first call closes the burst's 11 minutes
    records = engine.process_many([*wave, make_event(onset + 11 * 60, "PutObject")])
    assert [r.state for r in records] == ["Start"]
    rate = {r.key.event_name: r for r in engine.rates(top_n=0)}["CreateAccessKey"]
    assert rate.in_insight
    assert rate.rate_per_minute == 20.0
    assert rate.baseline_per_minute < 1.0


def test_a_burst_on_a_stream_alone_at_the_front_moves_its_clock() -> None:
    """The other streams stopped long ago (a replay merging logs of different years): they
    cannot vouch for anything, so the stream's own agreeing records move it, as the first
    stream of a replay's would. Before, a 30-call burst days after the stream's last call was
    held, then rejected as future_timestamp (the Stratus detonations injected into the GRyCAP
    logs' sa-east-1 stream, whose other Regions ended a year earlier)."""
    old = [make_event(T0 + 60 * m, region="eu-west-1") for m in range(0, 1440, 7)]
    front = [make_event(T0 + DAY + 60 * m) for m in range(0, 1440, 5)]
    later = T0 + 5 * DAY + 3600
    burst_later = burst(
        later, 30, "GetPasswordData", error="Client.UnauthorizedOperation", read_only=True
    )
    engine = InsightEngine(EngineConfig(warmup_minutes=60))
    records = engine.process_many([*old, *front, *burst_later]) + engine.flush()
    assert engine.stats.rejected == {}
    (start,) = starts(records)
    assert start.key.event_name == "GetPasswordData"
    assert start.detection_minute - later // 60 <= 1
