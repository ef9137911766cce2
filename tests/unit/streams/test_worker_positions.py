"""Every record of an assigned partition reaches its engine once, in offset order, whatever
kafka-python hands the worker around a rebalance (issue: kill -9 under CPU load lost insights).

A stand-in consumer keeps a position per partition as kafka-python does: a poll returns records
from there and moves it on; ``seek`` moves it anywhere. The races of the real client are
scripted: records of a partition returned before ``on_partitions_assigned`` has run, a poll that
starts beyond what the engine expects, and offsets missing from the log itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kafka import TopicPartition

from streams.checkpoints import DirectoryStore
from streams.lab.simulate import Scenario, generate, render
from streams.settings import WorkerSettings
from streams.worker import Worker

TP = TopicPartition("in", 0)


class _Message:
    def __init__(self, offset: int, value: bytes) -> None:
        self.topic, self.partition, self.offset, self.value = TP.topic, TP.partition, offset, value
        self.headers: list[tuple[str, bytes]] = []


class _Consumer:
    """A partition log with a position, polled ``batch`` records at a time."""

    def __init__(self, log: dict[int, bytes], batch: int, start: int = 0) -> None:
        self.log = log
        self.batch = batch
        self.position = start
        self.seeks: list[int] = []

    def poll(self, timeout_ms: int) -> dict[TopicPartition, list[Any]]:
        offsets = sorted(o for o in self.log if o >= self.position)[: self.batch]
        if not offsets:
            return {}
        self.position = offsets[-1] + 1
        return {TP: [_Message(o, self.log[o]) for o in offsets]}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append(offset)
        self.position = offset

    def committed(self, tp: TopicPartition) -> int | None:
        return None

    def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: min(self.log) for tp in tps}

    def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: max(self.log) + 1 for tp in tps}

    def highwater(self, tp: TopicPartition) -> int:
        return max(self.log) + 1

    def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        self.commits = [*getattr(self, "commits", []), *(o.offset for o in offsets.values())]


@pytest.fixture
def worker(offline_settings: Callable[..., WorkerSettings], tmp_path: Path) -> Worker:
    """A worker whose checkpoint store is ready (the consumer is the test's stand-in)."""
    worker = Worker(offline_settings())
    worker._store = DirectoryStore(tmp_path / "g")
    return worker


def _lines(count: int) -> list[bytes]:
    return list(render(generate(Scenario(days=1, reads_per_minute=4))))[:count]


def _drain(worker: Worker, consumer: _Consumer, polls: int = 50) -> None:
    for _ in range(polls):
        worker.poll_once(consumer)


def test_records_polled_before_the_assignment_callback_are_read_again(worker: Worker) -> None:
    lines = _lines(300)
    consumer = _Consumer(dict(enumerate(lines)), batch=100)
    worker._consumer = consumer
    # kafka-python makes the partition fetchable, a poll returns its first records, and only
    # then does its IO thread call on_partitions_assigned: no checkpoint, no committed offset
    worker.poll_once(consumer)
    assert TP not in worker._parts
    assert consumer.position == 100
    worker.on_assigned([TP])
    _drain(worker, consumer)
    part = worker._parts[TP]
    assert consumer.seeks[0] == 0, "the restore seeks to the reset position explicitly"
    assert part.offset == 300
    assert part.engine.stats.events == 300, "each record reached the engine exactly once"


def test_a_poll_beyond_the_expected_offset_is_sought_back_and_read_again(worker: Worker) -> None:
    lines = _lines(300)
    consumer = _Consumer(dict(enumerate(lines)), batch=100)
    worker._consumer = consumer
    worker.on_assigned([TP])
    worker.poll_once(consumer)
    assert worker._parts[TP].offset == 100
    consumer.position = 200  # records 100-199 polled elsewhere and never processed
    _drain(worker, consumer)
    part = worker._parts[TP]
    assert part.offset == 300
    assert part.engine.stats.events == 300
    assert worker.metrics.registry.get_sample_value("ctinsights_input_rewinds_total") == 1


def test_offsets_missing_from_the_log_itself_are_crossed_once_confirmed(worker: Worker) -> None:
    lines = _lines(300)
    # compacted away: at the start of a poll (100-109) and inside one (150-159)
    log = {o: line for o, line in enumerate(lines) if not (100 <= o < 110 or 150 <= o < 160)}
    consumer = _Consumer(log, batch=100)
    worker._consumer = consumer
    worker.on_assigned([TP])
    _drain(worker, consumer)
    part = worker._parts[TP]
    assert part.offset == 300
    assert part.engine.stats.events == 280
    registry = worker.metrics.registry
    assert registry.get_sample_value("ctinsights_input_offset_gaps_total") == 20
    assert registry.get_sample_value("ctinsights_input_rewinds_total") == 1


def test_records_dated_ahead_of_the_workers_clock_are_dead_lettered(worker: Worker) -> None:
    lines = _lines(300)
    ahead = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    hostile = {50, 51, 200}
    log = {}
    for offset, line in enumerate(lines):
        record = json.loads(line)
        if offset in hostile:
            record["eventTime"] = ahead  # an hour past the wall clock: beyond the 300 s skew
        log[offset] = json.dumps(record).encode()
    consumer = _Consumer(log, batch=100)
    worker._consumer = consumer
    sent: list[tuple[str, bytes, dict[str, bytes]]] = []
    worker._output.send = lambda topic, key, value, headers: sent.append(  # type: ignore[method-assign]
        (topic, value, dict(headers))
    )
    worker._output.flush = lambda: None  # type: ignore[method-assign]
    worker.on_assigned([TP])
    _drain(worker, consumer)
    part = worker._parts[TP]
    assert part.engine.stats.rejected["future_timestamp"] == 3
    assert part.engine.stats.analysed + part.engine.stats.not_analysed == 297
    assert sorted(json.loads(value)["eventID"] for _, value, _ in sent) == sorted(
        json.loads(log[o])["eventID"] for o in hostile
    )
    assert {topic for topic, _, _ in sent} == {worker.settings.dead_letter_topic}
    assert {h["ctinsights-reason"] for _, _, h in sent} == {b"future_timestamp"}
    registry = worker.metrics.registry
    labels = {"reason": "future_timestamp"}
    assert registry.get_sample_value("ctinsights_dead_letter_messages_total", labels) == 3


def test_a_partition_restored_at_its_end_commits_the_checkpoints_offset(
    worker: Worker, offline_settings: Callable[..., WorkerSettings], tmp_path: Path
) -> None:
    """A crash between a partition's last checkpoint and its commit left the group's offset
    behind; with no new records the restored partition was never checkpointed again, so lag
    tooling showed lag for ever (seen as a chaos test waiting for the commit)."""
    lines = _lines(300)
    consumer = _Consumer(dict(enumerate(lines)), batch=100)
    worker._consumer = consumer
    worker.on_assigned([TP])
    _drain(worker, consumer, polls=5)
    assert worker._store is not None
    worker._checkpoint(worker._parts[TP], commit=False)  # killed before the commit
    restarted = Worker(offline_settings())
    restarted._store = DirectoryStore(tmp_path / "g")
    fresh = _Consumer(dict(enumerate(lines)), batch=100)
    restarted._consumer = fresh
    restarted.on_assigned([TP])
    _drain(restarted, fresh, polls=3)
    assert restarted._parts[TP].offset == 300
    assert getattr(fresh, "commits", []) == [300]
