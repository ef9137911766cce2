"""Hypothesis properties of parsing, ordering, determinism and snapshots."""

from __future__ import annotations

import json
import random

from hypothesis import given
from hypothesis import strategies as st

from insights import EngineConfig, InsightEngine, RejectReason, decode_many, decode_message
from tests.factory import T0, background, burst

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)
fields = st.sampled_from(
    [
        "eventTime",
        "eventSource",
        "eventName",
        "awsRegion",
        "Records",
        "detail",
        "logEvents",
        "recipientAccountId",
        "userIdentity",
        "readOnly",
    ]
)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    result = decode_message(data)
    # every input is accounted for: something decoded, ignored by design, or rejected with a
    # reason and the bytes it was given
    assert len(result.events) + len(result.rejections) + result.ignored >= 1
    for rejection in result.rejections:
        assert isinstance(rejection.reason, RejectReason)
        assert rejection.raw is None or rejection.raw in data or len(data) == 0


@given(st.dictionaries(fields, json_values, max_size=6))
def test_arbitrary_json_objects_never_raise(obj: dict[str, object]) -> None:
    result = decode_message(json.dumps(obj).encode())
    for event in result.events:
        assert event.event_source
        assert event.event_name
        assert event.aws_region


VALID = json.dumps(
    {
        "eventTime": "2024-07-10T01:42:07Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": "CreateUser",
        "awsRegion": "us-east-1",
        "recipientAccountId": "1",
    }
).encode()


@given(st.lists(st.dictionaries(fields, json_values, max_size=6) | st.just(None), max_size=8))
def test_decode_many_equals_decode_message_of_each(objs: list[dict[str, object] | None]) -> None:
    messages = [VALID if obj is None else json.dumps(obj).encode() for obj in objs]
    each = [decode_message(m) for m in messages]
    many = decode_many(messages)
    assert many.events == [e for r in each for e in r.events]
    assert many.rejections == [x for r in each for x in r.rejections]
    assert many.ignored == sum(r.ignored for r in each)


SCENARIO = (
    background(1.0, 0.5, seed=4)
    + burst(T0 + 86_400 + 900, 40)
    + burst(
        T0 + 86_400 + 2000,
        30,
        "ListBuckets",
        source="s3.amazonaws.com",
        read_only=True,
        error="AccessDenied",
        spread=120,
    )
)
SCENARIO.sort(key=lambda e: e.event_time or "")
CONFIG = EngineConfig(warmup_minutes=60, allowed_lateness_seconds=300)


def _run(events: list, config: EngineConfig = CONFIG) -> list[bytes]:  # type: ignore[type-arg]
    engine = InsightEngine(config)
    return [r.to_json() for r in engine.process_many(events) + engine.flush()]


BASELINE_OUTPUT = _run(SCENARIO)


@given(st.integers(min_value=0, max_value=2**32))
def test_shuffling_within_lateness_gives_the_same_insights(seed: int) -> None:
    rng = random.Random(seed)
    # delay each event by up to 4 minutes of arrival order (within the 5-minute lateness)
    keyed = sorted(SCENARIO, key=lambda e: (e.event_time or "", 0))
    arrival = sorted(
        range(len(keyed)),
        key=lambda i: (
            int((keyed[i].event_time or "")[11:13]) * 3600
            + int((keyed[i].event_time or "")[14:16]) * 60
            + int((keyed[i].event_time or "")[17:19])
            + int((keyed[i].event_time or "")[8:10]) * 86_400
            + rng.uniform(0, 240)
        ),
    )
    shuffled = [keyed[i] for i in arrival]
    assert sorted(_run(shuffled)) == sorted(BASELINE_OUTPUT)
    assert BASELINE_OUTPUT


@given(st.integers(min_value=1, max_value=len(SCENARIO) - 1))
def test_snapshot_anywhere_gives_the_same_output(cut: int) -> None:
    first = InsightEngine(CONFIG)
    out = [r.to_json() for r in first.process_many(SCENARIO[:cut])]
    second = InsightEngine.from_state(first.save_state(), CONFIG)
    out += [r.to_json() for r in second.process_many(SCENARIO[cut:]) + second.flush()]
    assert out == BASELINE_OUTPUT


def test_replay_is_deterministic() -> None:
    assert _run(SCENARIO) == BASELINE_OUTPUT
    assert len(BASELINE_OUTPUT) == 4
