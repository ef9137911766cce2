"""Worker behaviour that needs no broker: a poll that raises while the broker goes away."""

from __future__ import annotations

from pathlib import Path

from kafka.errors import KafkaConnectionError

from streams.settings import load_settings
from streams.worker import Worker


class _FailingConsumer:
    """Stands in for a KafkaConsumer whose connections were just reset."""

    def __init__(self) -> None:
        self.polls = 0

    def poll(self, timeout_ms: int) -> dict[object, list[object]]:
        self.polls += 1
        raise KafkaConnectionError("socket disconnected")


def test_a_poll_that_raises_marks_the_broker_down_and_keeps_the_loop(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        bootstrap_servers="127.0.0.1:9",
        input_topics=["in"],
        output_topic="out",
        group_id="g",
        metrics_port=None,
        checkpoint_store="directory",
        state_dir=tmp_path,
    )
    worker = Worker(settings)
    worker.stop_event.set()  # the back-off wait returns at once
    consumer = _FailingConsumer()
    for _ in range(3):
        worker.poll_once(consumer)
    registry = worker.metrics.registry
    assert consumer.polls == 3
    assert registry.get_sample_value("ctinsights_broker_up") == 0.0
    assert registry.get_sample_value("ctinsights_broker_errors_total", {"operation": "poll"}) == 3
    assert worker.health.snapshot()["broker_ok"] is False
