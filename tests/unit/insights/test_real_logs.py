"""Every record of every shared real CloudTrail dataset is analysed or rejected with a reason."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import msgspec

from insights import EngineConfig, InsightEngine
from insights.events import event_seconds, is_read_only
from streams.files import read_inputs


def replay(path: Path) -> tuple[InsightEngine, Counter[str], int]:
    engine = InsightEngine(EngineConfig())
    rejected: Counter[str] = Counter()
    ignored = 0
    for batch in read_inputs([str(path)]):
        rejected.update(r.reason.value for r in batch.result.rejections)
        ignored += batch.result.ignored
        engine.process_many(batch.result.events)
    engine.flush()
    return engine, rejected, ignored


def accounted(engine: InsightEngine) -> int:
    s = engine.stats
    return s.analysed + s.not_analysed + s.duplicates + s.late + sum(s.rejected.values())


def test_grycap_teaching_account(cloudtrail_datasets: Path) -> None:
    engine, rejected, _ = replay(cloudtrail_datasets / "grycap-cloudtrail-tracker")
    # README: 17,603 records, 17,599 distinct eventIDs (4 genuine duplicate deliveries)
    assert engine.stats.events + sum(rejected.values()) == 17_603
    # 4 repeats exist; one arrives after its minute closed and counts as late instead
    assert engine.stats.duplicates >= 3
    assert accounted(engine) == engine.stats.events
    assert engine.stats.late < 0.05 * engine.stats.events
    assert engine.stats.analysed > 1000
    # the sparse sa-east-1 calls days apart are real records, not records from the future
    assert engine.stats.rejected.get("future_timestamp", 0) == 0


def test_invictus_attack_simulation(cloudtrail_datasets: Path) -> None:
    engine, rejected, _ = replay(cloudtrail_datasets / "invictus-ir-aws-dataset" / "CloudTrail")
    assert engine.stats.events + sum(rejected.values()) == 2_900
    assert not rejected
    assert accounted(engine) == 2_900
    assert engine.stats.not_analysed >= 42  # AwsServiceEvent records are not API calls


def test_otrf_logstash_lines(cloudtrail_datasets: Path) -> None:
    path = cloudtrail_datasets / "otrf-ec2-proxy-s3-exfiltration"
    engine, rejected, _ = replay(path)
    assert engine.stats.events + sum(rejected.values()) == 103
    assert not rejected  # @timestamp is mapped to eventTime


def test_stratus_detonation_arrays(cloudtrail_datasets: Path) -> None:
    engine, rejected, _ = replay(cloudtrail_datasets / "stratus-red-team-detonation-logs")
    assert engine.stats.events + sum(rejected.values()) == 310
    assert not rejected


def test_fixture_excerpts(data_dir: Path) -> None:
    engine, rejected, ignored = replay(data_dir)
    # synthetic 2014-shape log (3), invictus (3), otrf (2), stratus (2); digest and Insight
    # folders are skipped, so nothing is ignored or rejected
    assert (engine.stats.events, sum(rejected.values()), ignored) == (10, 0, 0)


def test_insights_of_one_key_never_overlap(cloudtrail_datasets: Path) -> None:
    """On real traffic, a key's next Start begins at or after its previous End."""
    engine = InsightEngine(EngineConfig())
    records = []
    for batch in read_inputs([str(cloudtrail_datasets / "grycap-cloudtrail-tracker")]):
        records += engine.process_many(batch.result.events)
    records += engine.flush()
    assert len([r for r in records if r.state == "Start"]) >= 10
    last_end: dict[object, int] = {}
    for record in records:
        if record.state == "Start":
            assert record.start_minute >= last_end.get(record.key, record.start_minute)
        else:
            last_end[record.key] = record.event_minute


def test_a_start_is_the_first_busy_minute_and_its_baseline_no_longer_than_the_history(
    cloudtrail_datasets: Path,
) -> None:
    """On the GRyCAP account: a Start's minute holds calls of its own key (it used to be pulled
    back to the previous insight's End, into empty minutes), and ``baselineDuration`` is minutes
    of the stream's real history (it used to be a raw decay sum of ~13.5 billion)."""
    config = EngineConfig()
    engine = InsightEngine(config)
    records = []
    busy: set[tuple[object, ...]] = set()  # (account, Region, source, name, error?, minute)
    first_minute: dict[tuple[str, str], int] = {}
    for batch in read_inputs([str(cloudtrail_datasets / "grycap-cloudtrail-tracker")]):
        for event in batch.result.events:
            minute = event_seconds(event) // 60
            stream = (event.recipient_account_id or "", event.aws_region or "")
            first_minute[stream] = min(first_minute.get(stream, minute), minute)
            call = (*stream, event.event_source, event.event_name)
            busy.add((*call, False, minute))
            if event.error_code:
                busy.add((*call, True, minute))
        records += engine.process_many(batch.result.events)
    records += engine.flush()
    starts = [r for r in records if r.state == "Start"]
    assert len(starts) >= 10
    longest = config.baseline_half_life_minutes / math.log(2)
    for record in starts:
        key = record.key
        errors = key.insight_type == "ApiErrorRateInsight"
        wanted = (key.account, key.region, key.event_source, key.event_name, errors)
        assert (*wanted, record.event_minute) in busy, f"{record.to_dict()['eventTime']} {wanted}"
        history = record.event_minute - first_minute[(key.account, key.region)]
        assert 0 < record.baseline_duration <= min(history, longest + 1)


def test_read_only_inference_agrees_with_every_record_that_states_it(
    cloudtrail_datasets: Path,
) -> None:
    """Records before eventVersion 1.05 have no ``readOnly``: the inference from the API must
    say what CloudTrail says on every record that has the field (sts:AssumeRole, kms:Decrypt
    and others are read-only though their names do not say so)."""
    checked = 0
    wrong: Counter[tuple[str | None, str | None, bool]] = Counter()
    for batch in read_inputs([str(cloudtrail_datasets)]):
        for event in batch.result.events:
            if event.read_only is None:
                continue
            checked += 1
            if is_read_only(msgspec.structs.replace(event, read_only=None)) != event.read_only:
                wrong[(event.event_source, event.event_name, event.read_only)] += 1
    assert checked > 3_000
    assert not wrong
