"""A few hostile or skewed records cannot move a stream's clock while its own traffic arrives.

Up to 100 records dated beyond the clock-jump bound (same or distinct eventIDs, any such future
times, any positions once every stream has shown up, in blocks or spread) are injected into one
stream of a flowing simulated organization; the Insight records must be exactly the clean
stream's, and every injected record
must be counted (rejected as ``future_timestamp``, or a duplicate of a held one). Real gaps must
still be crossed: with a whole day missing from every stream, < 1 % of later events are lost.
"""

from __future__ import annotations

import calendar
import json
import time
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from insights import EngineConfig, InsightEngine, decode_many
from streams.lab.simulate import Scenario, generate, render

CONFIG = EngineConfig()
JUMP = CONFIG.max_clock_jump_minutes * 60
DAY = 86_400
YEAR = 365 * DAY
_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@cache
def _clean() -> tuple[list[bytes], list[str], int]:
    sc = Scenario(days=3, anomaly_day=2, reads_per_minute=2)
    lines = list(render(generate(sc)))
    return lines, _run(lines)[0], sc.start


def _run(lines: list[bytes]) -> tuple[list[str], InsightEngine]:
    engine = InsightEngine(CONFIG)
    records = engine.process_many(decode_many(lines).events) + engine.flush()
    return [r.to_json().decode() for r in records], engine


def _stamp(seconds: int) -> str:
    return time.strftime(_FORMAT, time.gmtime(seconds))


@st.composite
def _attack(draw: st.DrawFn) -> tuple[int, bool, list[tuple[int, int]]]:
    """(template record, same eventID, [(position, seconds ahead of the newest event)])."""
    count = draw(st.integers(1, 100))
    template = draw(st.sampled_from(_writes()))
    ahead = st.integers(JUMP + 61, 70 * YEAR)  # decoding rejects times after 2099
    # once every stream has shown up: before that a replay's first stream has no other clock,
    # and three agreeing records move it (docs/detection.md, "Records dated ahead")
    start = _all_streams_seen()
    # and while another stream flows too: a stream alone at the front whose own traffic has
    # stopped (the scenario's Saturday tail, after its last records) is moved by 3 agreeing
    # records, as the first stream of a replay is (docs/detection.md, "Records dated ahead")
    end = _others_flow_until()
    if draw(st.booleans()):  # a block at one position
        positions = [draw(st.integers(start, end))] * count
    else:
        positions = sorted(draw(st.lists(st.integers(start, end), min_size=count, max_size=count)))
    if draw(st.booleans()):  # times spread anywhere ahead
        offsets = [draw(ahead) for _ in positions]
    else:  # times that agree with each other
        first = draw(ahead)
        offsets = [first + i for i in range(count)]
    return template, draw(st.booleans()), list(zip(positions, offsets, strict=True))


@cache
def _all_streams_seen() -> int:
    """The first position after which every stream of the clean input has had a record."""
    lines = _clean()[0]
    streams = {(e["recipientAccountId"], e["awsRegion"]) for e in map(json.loads, lines)}
    seen: set[tuple[str, str]] = set()
    for index, line in enumerate(lines):
        event = json.loads(line)
        seen.add((event["recipientAccountId"], event["awsRegion"]))
        if seen == streams:
            return index + 1
    raise AssertionError("unreachable")


@cache
def _others_flow_until() -> int:
    """The position of the last record of the stream that ends second to last."""
    last: dict[tuple[str, str], int] = {}
    for index, line in enumerate(_clean()[0]):
        event = json.loads(line)
        last[(event["recipientAccountId"], event["awsRegion"])] = index
    return sorted(last.values())[-2]


def test_records_riding_along_a_lone_streams_jump_are_rejected() -> None:
    """Found by the property below: 3 agreeing records dated 6 h past the end, injected
    into the stream alone at the front (the scenario's Saturday activity, after the other
    streams' week ended) while its own traffic still arrives. They moved its clock at once,
    and its next 703 records were late; now they are rejected like anywhere else."""
    attack = [(19, 21661 + i) for i in range(51)] + [(40198, 21712), (40206, 21713), (40206, 21714)]
    out, engine = _run(_inject(27215, False, attack))
    assert out == _clean()[1]
    assert engine.stats.rejected.get("future_timestamp", 0) == len(attack)
    assert engine.stats.late == 0


@cache
def _writes() -> list[int]:
    return [i for i, line in enumerate(_clean()[0]) if b'"readOnly":false' in line]


def _inject(template: int, same_id: bool, attack: list[tuple[int, int]]) -> list[bytes]:
    lines, _, _ = _clean()
    record = json.loads(lines[template])
    newest = calendar.timegm(time.strptime(json.loads(lines[-1])["eventTime"], _FORMAT))
    out = list(lines)
    for i, (position, offset) in reversed(list(enumerate(attack))):
        record["eventID"] = "hostile" if same_id else f"hostile-{i}"
        # dated ahead of wherever the stream is at that position (at most its newest time)
        record["eventTime"] = _stamp(newest + offset)
        out.insert(position, json.dumps(record).encode())
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_attack())
def test_injected_future_records_change_no_insight_and_are_all_counted(
    attack: tuple[int, bool, list[tuple[int, int]]],
) -> None:
    lines = _inject(*attack)
    _, clean, _ = _clean()
    clean_engine = _run(_clean()[0])[1]
    out, engine = _run(lines)
    assert out == clean
    rejected = engine.stats.rejected.get("future_timestamp", 0)
    duplicates = engine.stats.duplicates - clean_engine.stats.duplicates
    assert rejected + duplicates == len(attack[2])
    assert engine.stats.late == clean_engine.stats.late


def test_a_day_missing_from_every_stream_is_crossed() -> None:
    lines, _, start = _clean()
    gap_from, gap_to = _stamp(start + DAY), _stamp(start + 2 * DAY)
    kept = [line for line in lines if not gap_from <= json.loads(line)["eventTime"] < gap_to]
    later = sum(1 for line in kept if json.loads(line)["eventTime"] >= gap_to)
    _, engine = _run(kept)
    lost = engine.stats.late + engine.stats.rejected.get("future_timestamp", 0)
    assert later > 5000
    assert lost < 0.01 * later, (lost, later)
