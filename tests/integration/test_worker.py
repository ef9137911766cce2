"""The worker against a real broker: same Insights as replay, dead letters, key conflicts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
from kafka import KafkaProducer

from insights import EngineConfig, InsightEngine, decode_message
from streams.checkpoints import DirectoryStore, PendingInsight
from streams.settings import WorkerSettings
from streams.sinks.files import read_context
from streams.worker import EVENT_ID_HEADER, Worker
from tests.integration.conftest import (
    Dataset,
    WorkerProcess,
    create_topic,
    end_offsets,
    produce_lines,
    read_topic,
    unique,
    wait_committed,
    worker_settings,
)
from tests.integration.kafka_rules import StrictKafka
from tests.integration.test_recovery import produce_cli


def wait_caught_up(bootstrap: str, settings: WorkerSettings) -> None:
    """Until the worker's committed offsets reach the end of its input topic."""
    topic = settings.input_topics[0]
    wait_committed(bootstrap, settings.group_id, topic, end_offsets(bootstrap, topic))


@contextmanager
def running(worker: Worker) -> Iterator[Worker]:
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop_event.set()
        thread.join(60)
        assert not thread.is_alive()


def test_worker_emits_what_replay_emits(bootstrap: str, dataset: Dataset, tmp_path: Path) -> None:
    topic = unique("ct")
    create_topic(bootstrap, topic, 4)
    produce_lines(bootstrap, topic, dataset.lines, compression_type="lz4")
    settings = worker_settings(
        bootstrap,
        topic,
        checkpoint_store="directory",
        state_dir=tmp_path / "state",
        insight_dir=tmp_path / "insights",
    )
    seen: list[bytes] = []
    worker = Worker(settings, on_insight=lambda r: seen.append(r.to_json()))
    with running(worker):
        wait_caught_up(bootstrap, settings)
        # the broker may hold a fetch only this long (docs/performance.md, one busy partition)
        assert worker._consumer is not None
        assert worker._consumer.config["fetch_max_wait_ms"] == settings.fetch_max_wait_ms == 50
    out = read_topic(bootstrap, settings.output_topic)
    values = [m.value for m in out]
    assert len(values) == len(set(values)) == len(dataset.expected) > 0
    assert set(values) == dataset.expected
    assert set(seen) == dataset.expected
    for message in out:
        record = json.loads(message.value)
        assert message.key.decode() == record["sharedEventID"]
        assert dict(message.headers)[EVENT_ID_HEADER].decode() == record["eventID"]
    # the metrics saw the same stream
    registry = worker.metrics.registry
    assert registry.get_sample_value("ctinsights_events_read_total") == len(dataset.lines)
    assert registry.get_sample_value("ctinsights_insight_records_produced_total") == len(values)
    assert (tmp_path / "state" / settings.group_id / topic / "0.ckpt").is_file()
    # each insight's context, written from the checkpoints, is the one a replay issues last
    contexts = {json.loads(r)["sharedEventID"] for r in values}
    written = {sid: read_context(tmp_path / "insights", sid) for sid in contexts}
    assert written == replay_contexts(dataset.lines)
    assert registry.get_sample_value("ctinsights_insight_contexts_written_total")


def replay_contexts(lines: list[bytes]) -> dict[str, object]:
    """The newest context of each insight of an in-process replay, left open at the end."""
    engine = InsightEngine(EngineConfig())
    engine.contexts.keep = True
    newest: dict[str, object] = {}
    for start in range(0, len(lines), 4096):
        events = [e for line in lines[start : start + 4096] for e in decode_message(line).events]
        engine.process_many(events)
        newest.update((c.shared_event_id, c.to_dict()) for c in engine.contexts.take())
    return newest


def test_hostile_messages_go_to_the_dead_letter_topic(
    bootstrap: str, dataset: Dataset, strict_kafka: StrictKafka
) -> None:
    topic = unique("ct")
    create_topic(bootstrap, topic, 1)
    hostile = [
        b'{"eventTime": "2024-01-01T00:00:00Z", "eventSource": "iam.amazonaws.com", ',  # cut
        bytes(range(256)) * 4,  # binary
        b'{"eventTime": 17, "eventSource": [], "eventName": {}}',  # wrong types
        b'{"a": "' + b"x" * (5 * 1024 * 1024) + b'"}',  # 5 MB
    ]
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, max_request_size=8 * 1024 * 1024, linger_ms=20
    )
    half = len(dataset.lines) // 2
    for line in dataset.lines[:half]:
        producer.send(topic, value=line)
    for bad in hostile:
        producer.send(topic, value=bad)
    for line in dataset.lines[half:]:
        producer.send(topic, value=line)
    producer.flush()
    producer.close()
    # small checkpoint chunks: every chunk of a checkpoint goes through the record rules
    settings = worker_settings(bootstrap, topic, checkpoint_chunk_bytes=16_384)
    worker = Worker(settings)
    with running(worker):
        wait_caught_up(bootstrap, settings)
    # what Apache Kafka would have refused (Tansu accepts it): nothing
    assert strict_kafka.violations == []
    state = settings.state_topic(topic)
    assert strict_kafka.configs[state]["cleanup.policy"] == "delete"
    assert int(strict_kafka.configs[state]["retention.ms"]) == 168 * 3_600_000
    checked = strict_kafka.produced
    assert checked[state] > 1
    assert checked[f"{topic}-dlq"] == 4
    assert checked[settings.output_topic] == len(dataset.expected)
    dead = read_topic(bootstrap, f"{topic}-dlq")
    reasons = [dict(m.headers)["ctinsights-reason"].decode() for m in dead]
    assert sorted(reasons) == sorted(["invalid_json", "bad_payload", "wrong_type", "too_large"])
    by_reason = {dict(m.headers)["ctinsights-reason"].decode(): m for m in dead}
    assert by_reason["invalid_json"].value == hostile[0]  # unchanged
    assert by_reason["bad_payload"].value == hostile[1]
    big = dict(by_reason["too_large"].headers)
    assert int(big["ctinsights-truncated-from"]) == len(hostile[3])
    for message in dead:
        headers = dict(message.headers)
        assert headers["ctinsights-source-topic"].decode() == topic
        assert int(headers["ctinsights-source-offset"]) in range(half, half + len(hostile))
    # valid traffic around them is unaffected
    values = {m.value for m in read_topic(bootstrap, settings.output_topic)}
    assert values == dataset.expected
    assert (
        worker.metrics.registry.get_sample_value(
            "ctinsights_dead_letter_messages_total", {"reason": "bad_payload"}
        )
        == 1
    )


def test_mis_keyed_input_is_reported(bootstrap: str, dataset: Dataset) -> None:
    topic = unique("ct")
    create_topic(bootstrap, topic, 2)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    for i, line in enumerate(dataset.lines[:4000]):
        producer.send(topic, value=line, partition=i % 2)  # round-robin: keys on both
    producer.flush()
    producer.close()
    settings = worker_settings(bootstrap, topic)
    worker = Worker(settings)
    with running(worker):
        wait_caught_up(bootstrap, settings)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            conflicts = worker.metrics.registry.get_sample_value(
                "ctinsights_key_partition_conflicts_total"
            )
            if conflicts:
                break
            time.sleep(0.2)
    assert conflicts is not None
    assert conflicts > 0


def test_pending_insights_of_a_checkpoint_are_produced_once(
    bootstrap: str, dataset: Dataset, tmp_path: Path
) -> None:
    """A crash between writing a checkpoint and producing its Insights (the narrow window)."""
    topic = unique("ct")
    create_topic(bootstrap, topic, 1)
    produce_lines(bootstrap, topic, dataset.lines)
    settings = worker_settings(
        bootstrap, topic, checkpoint_store="directory", state_dir=tmp_path / "state"
    )
    with running(Worker(settings)):
        wait_caught_up(bootstrap, settings)
    produced = read_topic(bootstrap, settings.output_topic)
    assert produced
    store = DirectoryStore(tmp_path / "state" / settings.group_id)
    checkpoint = store.load(topic, 0)
    assert checkpoint is not None
    assert not checkpoint.pending
    already = produced[0]
    new = PendingInsight("00000000-0000-5000-8000-000000000001", "shared-1", b'{"new": 1}')
    store.save(
        msgspec.structs.replace(
            checkpoint,
            pending=[
                PendingInsight(
                    dict(already.headers)[EVENT_ID_HEADER].decode(),
                    already.key.decode(),
                    already.value,
                ),
                new,
            ],
            output_from={0: 0},
            sequence=checkpoint.sequence + 1,
        )
    )
    with running(Worker(settings)) as worker:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not worker.metrics.registry.get_sample_value(
            "ctinsights_partitions_assigned"
        ):
            time.sleep(0.2)
    values = [m.value for m in read_topic(bootstrap, settings.output_topic)]
    assert sorted(values) == sorted([m.value for m in produced] + [new.value])


def test_state_made_under_other_settings_stops_the_worker_with_a_message_and_exit_2(
    bootstrap: str, dataset: Dataset, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    topic = unique("ct")
    create_topic(bootstrap, topic, 1)
    produce_lines(bootstrap, topic, dataset.lines[:2000])
    output, group = f"{topic}-out", unique("g")
    state = ("--checkpoint-store", "directory", "--state-dir", str(tmp_path / "state"))
    log = tmp_path / "worker.log"
    first = WorkerProcess(bootstrap, topic, output, group, log, *state).start()
    workers.append(first)
    first.wait_ready()
    wait_committed(bootstrap, group, topic, end_offsets(bootstrap, topic))
    assert first.stop() == 0
    second = WorkerProcess(bootstrap, topic, output, group, log, *state, "--sensitivity", "high")
    workers.append(second.start())
    assert second.process is not None
    assert second.process.wait(120) == 2
    text = log.read_text()
    assert "ctinsights: error: checkpoint of" in text
    assert "discard_incompatible_state" in text
    assert "Traceback" not in text


def test_produce_says_what_it_did_without_the_clients_chatter(
    bootstrap: str, dataset: Dataset, tmp_path: Path
) -> None:
    """``ctinsights produce`` printed ~40 INFO lines of kafka-python per run."""
    topic = unique("ct")
    create_topic(bootstrap, topic, 2)
    done = produce_cli(bootstrap, topic, dataset.lines[:500], tmp_path)
    lines = done.stderr.decode().splitlines()
    assert not [line for line in lines if " kafka." in line], lines
    assert len(lines) <= 3, lines
    assert sum(end_offsets(bootstrap, topic).values()) == 500
