"""Sinks read the output topic in their own groups: every Insight reaches each of them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

from kafka import KafkaProducer

from streams.metrics import HealthState, WorkerMetrics
from streams.settings import WorkerSettings, load_settings
from streams.sinks import read_insight_files
from streams.sinks.runner import start_sinks
from tests.integration.conftest import Dataset, create_topic, unique
from tests.unit.streams.test_sinks import Receiver, valid


def _filled_output(bootstrap: str, dataset: Dataset) -> str:
    output = unique("out")
    create_topic(bootstrap, output, 1)
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for value in sorted(dataset.expected):
        producer.send(output, key=json.loads(value)["sharedEventID"].encode(), value=value)
    producer.flush()
    producer.close()
    return output


def _sink_settings(
    bootstrap: str, output: str, insight_dir: Path, webhook: dict[str, object]
) -> WorkerSettings:
    """Settings of sinks (files and one webhook) reading ``output`` in groups of their own."""
    return load_settings(
        None,
        bootstrap_servers=bootstrap,
        input_topics=["unused"],
        output_topic=output,
        group_id=unique("g"),
        insight_dir=insight_dir,
        webhooks=[webhook],
    )


def test_webhook_and_file_sinks_receive_every_insight(
    bootstrap: str, dataset: Dataset, tmp_path: Path
) -> None:
    output = _filled_output(bootstrap, dataset)
    receiver = Receiver(fail_first=5).start()
    hook = {"name": "siem", "url": receiver.url, "secret": "s3cret-key", "backoff_seconds": 0.05}
    settings = _sink_settings(bootstrap, output, tmp_path / "insights", hook)
    metrics = WorkerMetrics()
    stop = threading.Event()
    runners = start_sinks(settings, metrics, HealthState(), stop)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(receiver.bodies) < len(dataset.expected):
            time.sleep(0.2)
        time.sleep(1)
    finally:
        stop.set()
        for runner in runners:
            runner.thread.join(30)
        receiver.stop()

    def by_id(values: list[bytes]) -> list[object]:
        return sorted((json.loads(v) for v in values), key=lambda r: r["eventID"])

    assert by_id(receiver.bodies) == by_id(list(dataset.expected))
    assert all(valid(h, b) for h, b in zip(receiver.headers, receiver.bodies, strict=True))
    files = read_insight_files(tmp_path / "insights")
    assert sorted(files, key=lambda r: r["eventID"]) == by_id(list(dataset.expected))
    samples = metrics.registry
    assert samples.get_sample_value("ctinsights_webhook_failures_total", {"sink": "siem"}) == 5
    assert samples.get_sample_value("ctinsights_webhook_deliveries_total", {"sink": "siem"}) == len(
        dataset.expected
    )


def _wait(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_sink_that_cannot_write_is_retried_counted_and_fails_readiness(
    bootstrap: str, dataset: Dataset, tmp_path: Path
) -> None:
    """An Insight directory under a file, and a webhook whose receiver refuses everything and
    whose dead-letter file cannot be written: both sinks stay alive, report themselves down
    (metric and ``/readyz``), and deliver everything once the paths are fixed."""
    output = _filled_output(bootstrap, dataset)
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where a directory should be")
    refusing = Receiver(fail_first=10**9, fail_status=400).start()
    hook = {
        "name": "siem",
        "url": refusing.url,
        "max_attempts": 1,
        "dead_letter_path": str(blocker / "dead.jsonl"),
    }
    settings = _sink_settings(bootstrap, output, blocker / "insights", hook)
    metrics = WorkerMetrics()
    health = HealthState()
    health.update(restored=True, broker_ok=True)
    stop = threading.Event()
    runners = start_sinks(settings, metrics, health, stop)
    registry = metrics.registry

    def up(sink: str) -> float | None:
        return registry.get_sample_value("ctinsights_sink_up", {"sink": sink})

    try:
        _wait(lambda: up("files") == 0 and up("siem") == 0)
        assert all(runner.thread.is_alive() for runner in runners)
        assert not health.ready()
        assert health.snapshot()["sinks_down"] == ["files", "siem"]
        _wait(
            lambda: (
                (registry.get_sample_value("ctinsights_sink_errors_total", {"sink": "files"}) or 0)
                >= 2
            )
        )
        blocker.unlink()  # the operator fixes the path
        _wait(lambda: up("files") == 1 and up("siem") == 1)
        assert health.ready()
        _wait(lambda: len(read_insight_files(blocker / "insights")) == len(dataset.expected))
    finally:
        stop.set()
        for runner in runners:
            runner.thread.join(30)
        refusing.stop()
    dead = [json.loads(line) for line in (blocker / "dead.jsonl").read_text().splitlines()]
    assert {d["record"]["eventID"] for d in dead} == {
        json.loads(v)["eventID"] for v in dataset.expected
    }
    # not gated: a failing sink is reported but does not fail readiness
    relaxed = HealthState()
    relaxed.update(restored=True, broker_ok=True, sinks_gate_readiness=False)
    relaxed.sink_state("files", up=False)
    assert relaxed.ready()
