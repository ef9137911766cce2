from __future__ import annotations

import msgspec
import pytest

from insights import EngineConfig, InsightEngine, Sensitivity, StateDecodeError, model
from tests.factory import burst_after_a_day, run


def test_round_trip_mid_insight_gives_the_same_output() -> None:
    events = burst_after_a_day()
    config = EngineConfig(warmup_minutes=60)
    whole = InsightEngine(config)
    expected = [r.to_json() for r in whole.process_many(events) + whole.flush()]
    first = InsightEngine(config)
    out = []
    cut = 0
    while first.open_insights == 0:  # feed events until the burst's insight is open
        out += first.process(events[cut])
        cut += 1
    assert cut < len(events) - 100
    second = InsightEngine.from_state(first.save_state(), config)
    out += second.process_many(events[cut:]) + second.flush()
    assert [r.to_json() for r in out] == expected
    assert second.stats.as_dict() == whole.stats.as_dict()


def test_other_settings_are_refused() -> None:
    blob = InsightEngine(EngineConfig()).save_state()
    with pytest.raises(StateDecodeError, match="different detection settings"):
        InsightEngine.from_state(blob, EngineConfig(sensitivity=Sensitivity.HIGH))


def test_a_snapshot_of_another_model_shape_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    blob = InsightEngine(EngineConfig()).save_state()
    assert InsightEngine.from_state(blob).stats.events == 0  # the same shape loads
    monkeypatch.setattr(model, "MODEL", model.ModelParams(scales=(1, 10, 30, 60)))
    with pytest.raises(StateDecodeError, match="another model shape"):
        InsightEngine.from_state(blob)


def test_a_snapshot_from_before_the_shape_was_recorded_has_the_default_one() -> None:
    doc = msgspec.msgpack.decode(InsightEngine(EngineConfig()).save_state())
    del doc["shape"]
    assert InsightEngine.from_state(msgspec.msgpack.encode(doc)).stats.events == 0


@pytest.mark.parametrize("blob", [b"", b"garbage", b"\x81\xa6format\xa3bad"])
def test_corrupt_snapshots_are_refused(blob: bytes) -> None:
    with pytest.raises(StateDecodeError):
        InsightEngine.from_state(blob)


def test_round_trip_with_closed_minutes_not_yet_scored() -> None:
    events = burst_after_a_day()
    config = EngineConfig(warmup_minutes=60)
    expected = [r.to_json() for r in run(events, config)]
    cut = next(i for i, e in enumerate(events) if e.event_id and e.event_id.startswith("burst"))
    first = InsightEngine(config)
    out = first.process_many(events[: cut + 60], drain=False)
    assert first._clocks.due, "the snapshot must hold closed minutes that were not scored yet"
    second = InsightEngine.from_state(first.save_state(), config)
    out += second.process_many(events[cut + 60 :]) + second.flush()
    assert [r.to_json() for r in out] == expected
