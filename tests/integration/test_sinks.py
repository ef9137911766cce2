"""Sinks read the output topic in their own groups: every Insight reaches each of them."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from kafka import KafkaProducer

from streams.delivery import start_sinks
from streams.metrics import WorkerMetrics
from streams.settings import load_settings
from streams.sinks import read_insight_files
from tests.integration.conftest import Dataset, create_topic, unique
from tests.unit.streams.test_sinks import Receiver, valid


def test_webhook_and_file_sinks_receive_every_insight(
    bootstrap: str, dataset: Dataset, tmp_path: Path
) -> None:
    output = unique("out")
    create_topic(bootstrap, output, 1)
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for value in sorted(dataset.expected):
        producer.send(output, key=json.loads(value)["sharedEventID"].encode(), value=value)
    producer.flush()
    producer.close()
    receiver = Receiver(fail_first=5).start()
    settings = load_settings(
        None,
        bootstrap_servers=bootstrap,
        input_topics=["unused"],
        output_topic=output,
        group_id=unique("g"),
        insight_dir=tmp_path / "insights",
        webhooks=[
            {"name": "siem", "url": receiver.url, "secret": "s3cret-key", "backoff_seconds": 0.05}
        ],
    )
    metrics = WorkerMetrics()
    stop = threading.Event()
    runners = start_sinks(settings, metrics, stop)
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
