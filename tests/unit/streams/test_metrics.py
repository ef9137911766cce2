"""What the worker's registry says: the build, zero series, per-stream watermarks."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kafka import TopicPartition
from prometheus_client import generate_latest

from insights import InsightEngine, RejectReason, native
from streams.metrics import WorkerMetrics
from streams.settings import WorkerSettings
from streams.worker import Partition, Worker
from tests.factory import T0, make_event


@pytest.mark.parametrize("built", [pytest.param(True, marks=pytest.mark.accelerator), False])
def test_build_info_names_the_version_and_the_accelerator(
    built: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not built:
        monkeypatch.setattr(native, "module", None)
    text = generate_latest(WorkerMetrics().registry).decode()
    line = next(x for x in text.splitlines() if x.startswith("ctinsights_build_info{"))
    assert f'accelerator="{"c" if built else "none"}"' in line
    assert 'version="0.1.0"' in line
    assert line.endswith(" 1.0")


def test_every_known_label_set_exists_at_zero_before_its_first_increment() -> None:
    """``increase(...[1h])`` needs a 0 sample before the first dead letter to see it."""
    registry = WorkerMetrics().registry
    for reason in RejectReason:
        labels = {"reason": reason.value}
        assert registry.get_sample_value("ctinsights_dead_letter_messages_total", labels) == 0
        assert registry.get_sample_value("ctinsights_events_rejected_total", labels) == 0
    for insight_type in ("ApiCallRateInsight", "ApiErrorRateInsight"):
        labels = {"insight_type": insight_type}
        assert registry.get_sample_value("ctinsights_insights_started_total", labels) == 0
        assert registry.get_sample_value("ctinsights_insights_ended_total", labels) == 0
    for operation in ("poll", "produce", "flush", "commit"):
        labels = {"operation": operation}
        assert registry.get_sample_value("ctinsights_broker_errors_total", labels) == 0


def test_each_stream_has_its_own_watermark_lag_bounded_in_number(
    offline_settings: Callable[..., WorkerSettings],
) -> None:
    worker = Worker(offline_settings(stream_metrics_limit=2))
    engine = InsightEngine()
    now = T0 + 7200
    engine.process_many(
        [
            make_event(T0, region="eu-west-1"),  # silent for two hours
            make_event(now - 600, region="us-east-1"),
            make_event(now - 60, region="ap-south-1"),
            make_event(now, region="ap-south-1"),
        ]
    )
    worker._parts[TopicPartition("in", 0)] = Partition(
        tp=TopicPartition("in", 0), engine=engine, offset=0
    )
    worker._gauges.publish_streams(worker._parts.values(), float(now))
    registry = worker.metrics.registry

    def lag(region: str) -> float | None:
        labels = {"account": "123456789012", "region": region}
        return registry.get_sample_value("ctinsights_stream_watermark_lag_seconds", labels)

    assert lag("eu-west-1") is None  # the limit keeps the two freshest
    fresh, older = lag("ap-south-1"), lag("us-east-1")
    assert fresh is not None
    assert older is not None
    assert fresh < older < 7200
    assert registry.get_sample_value("ctinsights_messages_read_total", {"topic": "in"}) == 0
