"""The labelled scenario: every anomaly found, nothing else fires, quick detection."""

from __future__ import annotations

from insights import EngineConfig, InsightEngine, decode_message
from streams.lab.evaluation import evaluate
from streams.lab.simulate import ANOMALY_KINDS, Scenario, generate, render


def test_every_labelled_anomaly_is_found_and_normal_traffic_is_quiet() -> None:
    scenario = Scenario(days=13, reads_per_minute=1.5)
    events = generate(scenario)
    engine = InsightEngine(EngineConfig())
    records = []
    for raw in render(events):
        records += engine.process_many(decode_message(raw).events)
    records += engine.flush()
    result = evaluate(
        [r.to_dict() for r in records],
        scenario.labels,
        key_days=engine.keys_tracked * 12,
        after=scenario.start + 86_400,
    )
    assert {label.kind for label in scenario.labels} == set(ANOMALY_KINDS)
    assert all(result.found.values()), result.found
    assert result.false_per_1000_key_days <= 1.0, result.false_insights
    assert result.median_latency_minutes <= 2.0
