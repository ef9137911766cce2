"""Worker behaviour that needs no broker: a poll that raises while the broker goes away, how
the poll timeout follows the traffic, and how one poll is cut into decode chunks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.errors import KafkaConnectionError

from insights import InsightEngine, Rejection, decode_many
from insights.chunks import chunk_ranges
from streams.lab.simulate import Scenario, generate, render
from streams.settings import WorkerSettings
from streams.worker import Partition, Worker


class _FailingConsumer:
    """Stands in for a KafkaConsumer whose connections were just reset."""

    def __init__(self) -> None:
        self.polls = 0

    def poll(self, timeout_ms: int) -> dict[object, list[object]]:
        self.polls += 1
        raise KafkaConnectionError("socket disconnected")


def test_a_poll_that_raises_marks_the_broker_down_and_keeps_the_loop(
    offline_settings: Callable[..., WorkerSettings],
) -> None:
    worker = Worker(offline_settings())
    worker.stop_event.set()  # the back-off wait returns at once
    consumer = _FailingConsumer()
    for _ in range(3):
        worker.poll_once(consumer)
    registry = worker.metrics.registry
    assert consumer.polls == 3
    assert registry.get_sample_value("ctinsights_broker_up") == 0.0
    assert registry.get_sample_value("ctinsights_broker_errors_total", {"operation": "poll"}) == 3
    assert worker.health.snapshot()["broker_ok"] is False


class _ScriptedConsumer:
    """Returns the scripted poll results in turn (then nothing) and notes each poll's timeout."""

    def __init__(self, results: list[dict[TopicPartition, list[Any]]]) -> None:
        self.results = results
        self.timeouts: list[int] = []

    def poll(self, timeout_ms: int) -> dict[TopicPartition, list[Any]]:
        self.timeouts.append(timeout_ms)
        return self.results.pop(0) if self.results else {}


def test_the_worker_polls_without_blocking_while_data_flows_and_blocks_once_idle(
    offline_settings: Callable[..., WorkerSettings],
) -> None:
    worker = Worker(offline_settings())
    data: dict[TopicPartition, list[Any]] = {TopicPartition("in", 0): [_Message(0, b"{}")]}
    consumer = _ScriptedConsumer([{}, data, {}, data])
    for _ in range(5):
        worker.poll_once(consumer)
    # idle: a blocking poll; after data: non-blocking polls (empty ones wait 1 ms on stop_event)
    assert consumer.timeouts == [200, 200, 0, 0, 0]
    worker._last_records -= 1.0  # half a second without data: back to blocking polls
    worker.poll_once(consumer)
    assert consumer.timeouts[-1] == 200


class _Message:
    def __init__(self, offset: int, value: bytes) -> None:
        self.topic, self.partition, self.offset, self.value = "in", 0, offset, value


def test_a_poll_spanning_several_decode_chunks_dead_letters_exactly_its_bad_messages(
    offline_settings: Callable[..., WorkerSettings],
) -> None:
    lines = list(render(generate(Scenario(days=2, reads_per_minute=2, anomaly_day=1))))[:900]
    bad = {3: b"not json", 400: b'{"eventTime": 5}', 899: b'{"eventName": "\xff"}'}
    values = [bad.get(i, line) for i, line in enumerate(lines)]
    # a batch message among the records
    values[600] = b'{"Records":[' + values[600] + b"," + values[601] + b"]}"
    values[601] = b'{"Records":[]}'
    worker = Worker(offline_settings())
    tp = TopicPartition("in", 0)
    part = Partition(tp=tp, engine=InsightEngine(worker.settings.detection), offset=1000)
    worker._parts[tp] = part
    dead: list[tuple[int, bytes, str]] = []

    def record(message: Any, value: bytes, rejections: list[Rejection], whole: bool) -> None:
        dead.append((message.offset, value, rejections[0].reason.value))

    worker._dead_letter = record  # type: ignore[method-assign]
    worker._process(tp, [_Message(1000 + i, v) for i, v in enumerate(values)])
    assert len(list(chunk_ranges(values))) >= 3, "the poll spans several decode chunks"
    assert [(o, v) for o, v, _ in dead] == [(1000 + i, bad[i]) for i in sorted(bad)]
    assert [r for *_, r in dead] == ["invalid_json", "wrong_type", "invalid_utf8"]
    reference = InsightEngine(worker.settings.detection)
    reference.process_many(decode_many([v for i, v in enumerate(values) if i not in bad]).events)
    assert part.engine.stats.as_dict() == reference.stats.as_dict()
    assert part.offset == 1900


def test_an_idle_partitions_checkpoint_is_rewritten_before_retention_could_delete_it(
    offline_settings: Callable[..., WorkerSettings],
) -> None:
    worker = Worker(offline_settings(state_retention_hours=8))
    part = Partition(tp=TopicPartition("in", 0), engine=InsightEngine(), offset=0)
    part.last_checkpoint = written = 1000.0  # exact in floating point
    assert not worker._due(part, written + 60)  # clean, interval passed: nothing to write
    assert not worker._due(part, written + 2 * 3600 - 1)
    assert worker._due(part, written + 2 * 3600)  # a quarter of the retention


class _AlwaysReadyConsumer:
    """Has the next records ready at every poll, as a consumer with a fetch in hand does."""

    def __init__(self, values: list[bytes], per_poll: int) -> None:
        self.values = values
        self.per_poll = per_poll
        self.next = 0
        self.timeouts: list[int] = []

    def poll(self, timeout_ms: int) -> dict[TopicPartition, list[Any]]:
        self.timeouts.append(timeout_ms)
        chunk = self.values[self.next : self.next + self.per_poll]
        messages = [_Message(self.next + i, v) for i, v in enumerate(chunk)]
        self.next += len(chunk)
        return {TopicPartition("in", 0): messages} if messages else {}

    def highwater(self, tp: TopicPartition) -> int:
        return len(self.values)


def test_while_records_are_ready_the_loop_never_blocks_or_sleeps_between_polls(
    offline_settings: Callable[..., WorkerSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decisions of the poll loop, without a clock: every poll after the first that found
    records is non-blocking, and nothing waits between polls while records keep coming."""
    lines = list(render(generate(Scenario(days=1, reads_per_minute=2, anomaly_day=0))))[:3000]
    worker = Worker(offline_settings(dead_letter_topic=None))
    tp = TopicPartition("in", 0)
    worker._parts[tp] = Partition(tp=tp, engine=InsightEngine(worker.settings.detection), offset=0)
    waits: list[float | None] = []
    monkeypatch.setattr(worker.stop_event, "wait", lambda timeout=None: waits.append(timeout))
    monkeypatch.setattr("streams.worker.core.time.sleep", lambda seconds: waits.append(seconds))
    consumer = _AlwaysReadyConsumer(lines, per_poll=500)
    for _ in range(6):
        worker.poll_once(consumer)
    assert worker._parts[tp].offset == len(lines)  # every record reached the engine, in order
    assert consumer.timeouts == [200, 0, 0, 0, 0, 0]  # the first poll came after an idle start
    assert waits == []


class _SilentConsumer:
    """Returns no records, though the log of each partition ends at ``ends``."""

    def __init__(self, ends: dict[TopicPartition, int]) -> None:
        self.ends = ends
        self.seeks: list[tuple[TopicPartition, int]] = []

    def poll(self, timeout_ms: int) -> dict[TopicPartition, list[Any]]:
        return {}

    def end_offsets(
        self, tps: list[TopicPartition], timeout_ms: int | None = None
    ) -> dict[TopicPartition, int]:
        return {tp: self.ends[tp] for tp in tps}

    def assignment(self) -> set[TopicPartition]:
        return set(self.ends)

    def highwater(self, tp: TopicPartition) -> None:
        return None

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))


def test_a_partition_that_gets_no_records_though_the_log_has_more_is_sought_again(
    offline_settings: Callable[..., WorkerSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr("streams.worker.core.time.monotonic", lambda: clock[0])
    behind, caught_up = TopicPartition("in", 0), TopicPartition("in", 1)
    worker = Worker(offline_settings())
    for tp, offset in ((behind, 7087), (caught_up, 500)):
        worker._parts[tp] = Partition(
            tp=tp, engine=InsightEngine(), offset=offset, last_records=clock[0]
        )
    consumer = _SilentConsumer({behind: 13705, caught_up: 500})
    for second in range(0, 29, 3):
        clock[0] = 1000.0 + second
        worker.poll_once(consumer)
    assert consumer.seeks == []  # quiet for less than 30 s: nothing yet
    for second in range(30, 45, 3):
        clock[0] = 1000.0 + second
        worker.poll_once(consumer)
    assert consumer.seeks == [(behind, 7087)]  # once, and not the partition at its end
    assert worker.metrics.registry.get_sample_value("ctinsights_input_stalls_total") == 1


class _StaleConsumer(_SilentConsumer):
    """Returns the same records from before the position at every poll; its reported end lags
    behind the fetched high-water mark (as the local broker's may)."""

    def __init__(self, tp: TopicPartition, stale: list[Any], highwater: int) -> None:
        super().__init__({tp: stale[0].offset})
        self.tp, self.stale, self.mark = tp, stale, highwater

    def poll(self, timeout_ms: int) -> dict[TopicPartition, list[Any]]:
        return {self.tp: list(self.stale)}

    def highwater(self, tp: TopicPartition) -> int:  # type: ignore[override]
        return self.mark


def test_a_partition_polled_only_below_its_position_is_sought_again(
    offline_settings: Callable[..., WorkerSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr("streams.worker.core.time.monotonic", lambda: clock[0])
    tp = TopicPartition("in", 0)
    worker = Worker(offline_settings())
    worker._parts[tp] = Partition(tp=tp, engine=InsightEngine(), offset=4665, last_records=1000.0)
    consumer = _StaleConsumer(tp, [_Message(4000 + i, b"{}") for i in range(3)], highwater=13238)
    for second in range(0, 45, 3):
        clock[0] = 1000.0 + second
        worker.poll_once(consumer)
    assert consumer.seeks == [(tp, 4665)]
    assert worker._parts[tp].offset == 4665  # the stale records never reached the engine
