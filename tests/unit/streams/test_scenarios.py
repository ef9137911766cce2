"""The labelled scenario: every anomaly found, nothing else fires, quick detection."""

from __future__ import annotations

from typing import Any

from insights import EngineConfig, InsightEngine, decode_message
from streams.lab.background import INVENTORY_API, RARE_WRITES
from streams.lab.evaluation import evaluate
from streams.lab.simulate import (
    ANOMALY_KINDS,
    HARD_KINDS,
    Label,
    Scenario,
    generate,
    hard_scenario,
    render,
)


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


def test_the_hard_suite_labels_every_kind_over_the_organization_background() -> None:
    scenario = hard_scenario(3, days=14)
    events = generate(scenario)
    assert [label.kind for label in scenario.labels] == list(HARD_KINDS)
    (drop,) = [label for label in scenario.labels if label.direction == "drop"]
    assert drop.kind == "periodic_drop"
    assert drop.end - drop.onset == 4 * 3600
    stream = (drop.account, drop.region, *INVENTORY_API)
    job = [e.seconds for e in events if (e.account, e.region, e.source, e.name) == stream]
    assert not [t for t in job if drop.onset <= t < drop.end]  # the job stopped ...
    assert len([t for t in job if drop.end <= t < drop.end + 3600]) >= 12  # ... and resumed
    saturday = next(lb for lb in scenario.labels if lb.kind == "weekend_ci_activity")
    assert (saturday.onset - scenario.start) // 86_400 % 7 == 5
    iac = [e for e in events if e.principal.endswith("assumed-role/terraform-apply/ci")]
    assert {(e.source, e.name) for e in iac} >= set(RARE_WRITES[:3])


def test_a_drop_label_is_found_only_by_a_drop_and_results_add_up_by_kind() -> None:
    key = (("s", "Api", "ApiCallRateInsight", ""),)
    t0 = 1_704_067_200  # 2024-01-01T00:00:00Z
    label = Label("periodic_drop", "1", "r", key, t0, t0 + 3600, "drop")
    burst = Label("iam_burst", "1", "r", key, t0, t0 + 600)

    def start(direction: str | None, detected: str) -> dict[str, Any]:
        extra: dict[str, Any] = {"detectionTime": detected}
        if direction:
            extra["direction"] = direction
        return {
            "recipientAccountId": "1",
            "awsRegion": "r",
            "eventTime": "2024-01-01T00:10:00Z",
            "insightDetails": {
                "state": "Start",
                "eventSource": "s",
                "eventName": "Api",
                "insightType": "ApiCallRateInsight",
            },
            "additionalEventData": extra,
        }

    result = evaluate([start(None, "2024-01-01T00:11:00Z")], [label, burst], key_days=1.0)
    assert result.by_kind() == {"periodic_drop": (0, 1, []), "iam_burst": (1, 1, [11.0])}
    result = evaluate([start("drop", "2024-01-01T00:20:00Z")], [label, burst], key_days=1.0)
    assert result.by_kind()["periodic_drop"] == (1, 1, [20.0])
    assert result.by_kind()["iam_burst"] == (0, 1, [])
