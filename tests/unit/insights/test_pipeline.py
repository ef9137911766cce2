"""The pipeline (bytes in, Insight records out) gives the same insights however its input is cut.

The records are the same bytes; only their order across streams follows the scoring steps.
"""

from __future__ import annotations

import random

from insights import EngineConfig, InsightEngine, Pipeline, decode_many
from streams.lab.simulate import Scenario, generate, render

CONFIG = EngineConfig(warmup_minutes=60)


def _lines() -> list[bytes]:
    return list(render(generate(Scenario(days=2, reads_per_minute=2, anomaly_day=1, seed=4))))


def _reference(lines: list[bytes]) -> list[bytes]:
    engine = InsightEngine(CONFIG)
    records = engine.process_many(decode_many(lines).events) + engine.flush()
    return [r.to_json() for r in records]


def test_polls_of_any_size_give_the_insights_of_one_pass() -> None:
    lines = _lines()
    expected = _reference(lines)
    assert any(b'"Start"' in r for r in expected), "the stream must raise insights"
    rng = random.Random(7)
    for _ in range(3):
        pipeline = Pipeline(InsightEngine(CONFIG))
        out: list[bytes] = []
        start = 0
        while start < len(lines):
            end = min(len(lines), start + rng.choice((1, 17, 500, 6000)))
            fed = pipeline.messages(lines[start:end])
            assert fed.failed == []
            assert fed.future == []
            out += [r.to_json() for r in fed.records]
            start = end
        out += [r.to_json() for r in pipeline.flush()]
        assert sorted(out) == sorted(expected)


def test_a_reader_s_decoded_chunks_give_the_insights_of_one_pass() -> None:
    lines = _lines()
    pipeline = Pipeline(InsightEngine(CONFIG))
    out = []
    for start in range(0, len(lines), 333):
        out += pipeline.decoded(decode_many(lines[start : start + 333]))
    out += pipeline.drain() + pipeline.flush()
    assert sorted(r.to_json() for r in out) == sorted(_reference(lines))


def test_bad_messages_are_named_by_their_place_in_the_poll() -> None:
    lines = _lines()[:2000]
    bad = {0: b"{", 1500: b"[1]", 1999: b'{"eventTime": "2024-01-01T00:00:00Z"}'}
    values = [bad.get(i, line) for i, line in enumerate(lines)]
    fed = Pipeline(InsightEngine(CONFIG)).messages(values)
    assert [index for index, _ in fed.failed] == sorted(bad)
    assert all(result.rejections for _, result in fed.failed)
