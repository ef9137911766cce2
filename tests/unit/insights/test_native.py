"""The C accelerator (insights/csrc/) gives exactly what the pure-Python loops give."""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import random
import sys
import types
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from itertools import cycle
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import special

import insights
from insights import (
    CloudTrailEvent,
    EngineConfig,
    InsightEngine,
    decode_many,
    model,
    native,
    windows,
)
from insights.attribution import AttributionTable, Interner
from insights.baselines import N_SLOTS, BaselineTable, StreamExposure
from insights.errors import InsightsConfigError
from insights.events import UserIdentity, event_seconds
from insights.stats import nb_tail_score
from insights.timeparse import MAX_EPOCH, MIN_EPOCH, parse_epoch_seconds
from streams.files import read_inputs
from streams.lab.simulate import Scenario, generate, hard_scenario, render
from tests.factory import T0, background, burst, burst_after_a_day, iso, make_event, run

T = TypeVar("T")
BUILT = native.module

#: Each test here compares the accelerator with the Python code: ``make test-pure`` leaves them
#: out (``-m "not accelerator"``); ``make test`` runs them.
pytestmark = pytest.mark.accelerator


def both(run: Callable[[], T]) -> tuple[T, T]:
    """``run()`` with the accelerator, then with the pure-Python loops."""
    assert BUILT is not None, "insights._native was not built: is a C compiler installed?"
    try:
        native.module = BUILT
        fast = run()
        native.module = None  # type: ignore[assignment]
        pure = run()
    finally:
        native.module = BUILT
    return fast, pure


def test_the_built_module_has_the_calling_convention_of_this_code() -> None:
    assert BUILT is not None
    assert BUILT.ABI == native.ABI


def _loaded_instead(
    substitute: types.ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> str:
    """Reload insights.native with ``substitute`` as the compiled module: the module it keeps
    must be None; returns the warnings logged. The built module is back afterwards."""
    monkeypatch.setitem(sys.modules, "insights._native", substitute)
    monkeypatch.setattr(insights, "_native", substitute)
    try:
        with caplog.at_level(logging.WARNING, logger="insights.native"):
            importlib.reload(native)
        assert native.module is None
        return caplog.text
    finally:
        monkeypatch.undo()
        importlib.reload(native)
        assert native.module is BUILT


def test_a_module_of_another_version_is_not_used(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    stale = types.ModuleType("insights._native")
    stale.ABI = native.ABI - 1  # type: ignore[attr-defined]
    assert "from another version" in _loaded_instead(stale, monkeypatch, caplog)


def test_a_numpy_release_it_was_not_checked_with_runs_pure_python(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert BUILT is not None
    monkeypatch.setattr(np, "__version__", "2.99.0")
    assert "not checked with numpy 2.99.0" in _loaded_instead(BUILT, monkeypatch, caplog)


def test_a_numpy_whose_ufunc_loops_cannot_be_read_runs_pure_python(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    unreadable = types.ModuleType("insights._native")
    unreadable.ABI = native.ABI  # type: ignore[attr-defined]
    unreadable.set_loops = lambda *ufuncs: False  # type: ignore[attr-defined]
    assert "double loops" in _loaded_instead(unreadable, monkeypatch, caplog)


def test_only_double_loops_of_the_expected_arity_are_taken() -> None:
    assert BUILT is not None
    ufuncs = [np.exp2, special.gammainc, special.betainc, np.log10]
    x = np.array([[5.0, 3.0, 0.0]])
    phi = np.array([[1.0, 4.0, 1.0]])
    expected = nb_tail_score(x, np.ones((1, 3)), phi, kernels=BUILT).tobytes()
    for slot, wrong in enumerate([np.add, special.betainc, len, np.bitwise_not]):
        # two operands where one is read, three where two are, not a ufunc, no double loop
        others = [*ufuncs[:slot], wrong, *ufuncs[slot + 1 :]]
        assert BUILT.set_loops(*others) is False
    # a failed call keeps the loops found before
    assert nb_tail_score(x, np.ones((1, 3)), phi, kernels=BUILT).tobytes() == expected
    assert nb_tail_score(x, np.ones((1, 3)), phi).tobytes() == expected  # pure Python
    assert BUILT.set_loops(*ufuncs) is True
    with pytest.raises(TypeError, match="expected set_loops"):
        BUILT.set_loops(np.exp2)  # type: ignore[call-arg]


# ------------------------------------------------------------------ timestamps
def test_strict_seconds_matches_the_python_parser_on_edge_cases() -> None:
    assert BUILT is not None
    cases = {
        "2024-07-10T01:42:07Z": 1_720_575_727,
        "2024-02-29T23:59:59Z": parse_epoch_seconds("2024-02-29T23:59:59Z"),
        "2000-02-29T00:00:00Z": -1,  # valid, but before CloudTrail: out of range
        "2006-01-01T00:00:00Z": MIN_EPOCH,
        "2099-12-31T23:59:59Z": MAX_EPOCH - 1,
        "2100-01-01T00:00:00Z": -1,
        "2023-02-29T00:00:00Z": -1,
        "2024-13-01T00:00:00Z": -1,
        "2024-07-10T24:00:00Z": -1,
        "2024-07-10T01:60:00Z": -1,
        "2024-07-10T01:42:60Z": -1,
        "2024-07-10 01:42:07Z": -1,
        "2024/07-10T01:42:07Z": -1,
        "2024-07/10T01:42:07Z": -1,
        "2024-07-10T01-42:07Z": -1,
        "2024-07-10T01:42:07z": -1,
        "2024-07-10T01:42:07.000Z": -1,  # not the strict form: Python decides
        "2024-07-10T01:42:07+00:00": -1,
        "２024-07-10T01:42:07Z": -1,
    }
    assert {text: BUILT.strict_seconds(text) for text in cases} == cases
    assert BUILT.strict_seconds(None) == -1
    assert BUILT.strict_seconds(b"2024-07-10T01:42:07Z") == -1


@given(st.datetimes(min_value=datetime(2006, 1, 1), max_value=datetime(2099, 12, 31, 23, 59)))
def test_strict_seconds_reads_every_time_in_range(moment: datetime) -> None:
    assert BUILT is not None
    text = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert BUILT.strict_seconds(text) == int(moment.replace(tzinfo=UTC).timestamp())


@given(st.integers(min_value=0, max_value=19), st.characters(codec="utf-8"))
def test_strict_seconds_never_accepts_what_python_rejects(at: int, char: str) -> None:
    assert BUILT is not None
    valid = "2024-07-10T01:42:07Z"
    text = valid[:at] + char + valid[at + 1 :]
    fast = BUILT.strict_seconds(text)
    if fast >= 0:  # where it declines, Python decides (it accepts more: fractions, offsets)
        assert parse_epoch_seconds(text) == fast


# ------------------------------------------------------------------ the engine's loop
class TaggedEvent(CloudTrailEvent, gc=False):
    """A subclass, as a library user might pass: its fields are read through its own layout."""

    tag: str = ""


def _hostile_stream() -> list[CloudTrailEvent]:
    """A day of background and a burst, with every case the loop hands back to Python."""
    events = background(1.2, 2.0) + burst(T0 + 86_400 + 600, 80, spread=180)
    events += [
        make_event(T0 + 3600 + i, "DescribeInstances", read_only=True, event_id=f"r{i}")
        for i in range(0, 3600, 7)
    ]
    events += [  # read-only calls with an error count for the error-rate key
        make_event(T0 + 7200 + i, "GetObject", read_only=True, error="AccessDenied")
        for i in range(0, 900, 30)
    ]
    # delivered out of order: up to 5 minutes behind, against 2 minutes of allowed lateness
    rng = random.Random(3)
    events.sort(key=lambda e: event_seconds(e) + rng.uniform(0, 300))
    # just beyond the clock-jump limit of its stream: held back
    newest = max(map(event_seconds, events[:800]))
    events.insert(800, make_event(newest + 360 * 60 + 30, "CreateTags", event_id="ahead"))
    tail = events[-1]
    odd = [
        # a second delivery of a write call shortly before
        msgspec.structs.replace(next(e for e in reversed(events[:900]) if not e.read_only)),
        make_event(T0 + 60, "CreateTags", event_id="late-one"),  # far behind its stream
        make_event(T0 + 40 * 86_400, "CreateTags", event_id="future-0"),  # held back
        make_event(T0 + 3 * 86_400, "RunInstances", account="999999999999"),  # a new stream
        msgspec.structs.replace(tail, event_time="2024-01-02T05:00:00.500Z"),  # not strict
        msgspec.structs.replace(tail, event_time="yesterday"),
        msgspec.structs.replace(tail, event_time=None, at_timestamp=iso(T0 + 86_400 + 60)),
        msgspec.structs.replace(tail, event_source=None, read_only=True),
        msgspec.structs.replace(tail, event_name="", read_only=True),
        msgspec.structs.replace(tail, recipient_account_id=None),
        msgspec.structs.replace(tail, event_type="AwsServiceEvent"),
        TaggedEvent(**msgspec.structs.asdict(make_event(T0 + 86_400, "DeleteUser")), tag="x"),
    ]
    odd[1:] = [msgspec.structs.replace(e, event_id=f"odd-{i}") for i, e in enumerate(odd[1:])]
    for position, event in zip(range(900, 900 + 97 * len(odd), 97), odd, strict=True):
        events.insert(position, event)
    return events


EngineView = tuple[list[bytes], dict[str, object]]


def _engine_view(run: Callable[[InsightEngine], list[bytes]]) -> tuple[EngineView, EngineView]:
    def once() -> EngineView:
        engine = InsightEngine(EngineConfig(warmup_minutes=60, allowed_lateness_seconds=120))
        records = run(engine)
        return records, engine.stats.as_dict()

    return both(once)


def test_engine_output_and_counters_are_the_same_with_and_without_the_accelerator() -> None:
    events = _hostile_stream()

    def run(engine: InsightEngine) -> list[bytes]:
        out = []
        for start in range(0, len(events), 300):
            out += engine.process_many(events[start : start + 300], drain=False)
        return [r.to_json() for r in out + engine.drain() + engine.flush()]

    fast, pure = _engine_view(run)
    assert fast == pure
    records, stats = fast
    assert stats["duplicates"] == 1
    late = stats["late"]
    assert isinstance(late, int)
    assert late > 100
    assert stats["rejected"]
    assert records  # the burst and the error spike


def test_drain_rounds_in_c_skip_long_gaps_and_rebase_as_python_does() -> None:
    """Streams silent for days between bursts of calls: the C drain accounts the empty minutes in
    pieces and rebases the exposure where due (a short half-life makes that every few hours)."""
    events = []
    for day in (0, 3, 7):
        for k in range(300):
            account = ("111111111111", "222222222222")[k % 2]
            events.append(make_event(T0 + day * 86_400 + 7 * k, "GetObject", account=account))
    rebases = []

    def run() -> tuple[list[bytes], bytes]:
        engine = InsightEngine(EngineConfig(warmup_minutes=60, baseline_half_life_minutes=11.0))
        rebase = engine._closer._rebase_if_needed

        def counted(stream: object, minute: int) -> None:
            rebases.append(native.module is not None)
            rebase(stream, minute)  # type: ignore[arg-type]

        engine._closer._rebase_if_needed = counted  # type: ignore[method-assign]
        out = []
        for start in range(0, len(events), 100):
            out += engine.process_many(events[start : start + 100])
        return [r.to_json() for r in out + engine.flush()], engine.save_state()

    fast, pure = both(run)
    assert fast == pure
    assert rebases.count(True) > 10  # the C rounds called back where a rebase was due


def test_real_logs_give_the_same_output_with_and_without_the_accelerator(
    cloudtrail_datasets: Path,
) -> None:
    paths = [str(cloudtrail_datasets / name) for name in ("grycap-cloudtrail-tracker",)]

    def run(engine: InsightEngine) -> list[bytes]:
        out = []
        for batch in read_inputs(paths):
            out += engine.process_many(batch.result.events)
        return [r.to_json() for r in out + engine.flush()]

    fast, pure = _engine_view(run)
    assert fast == pure


class _CountingSteps(types.SimpleNamespace):
    """The built module, with its closing step's outcomes counted."""

    def __init__(self) -> None:
        super().__init__(outcomes={"python": 0, "done": 0, "observed": 0, "scored": 0})

    def __getattr__(self, name: str) -> object:
        return getattr(BUILT, name)

    def close_step(self, *args: object) -> object:
        assert BUILT is not None
        done = BUILT.close_step(*args)  # type: ignore[arg-type]
        kinds = {type(None): "python", bool: "done", list: "observed", tuple: "scored"}
        kind = kinds[type(done)]
        self.outcomes[kind] += 1
        return done


@pytest.mark.parametrize("half_life", [10_080.0, 11.0])
def test_closing_steps_in_c_leave_the_same_state_on_every_path(half_life: float) -> None:
    """A step runs wholly in C (nothing starts, nothing is open), runs in C but for its open
    insights' observations, is scored in C and decided in Python (a Start is possible), or runs
    in Python (a stream's exposure must be rebased first: the short half-life): the records and
    the saved state are the same bytes as the pure-Python engine's."""
    events = decode_many(
        list(render(generate(Scenario(days=2, reads_per_minute=2, anomaly_day=1, seed=3))))
    ).events
    counting = _CountingSteps()

    def run() -> tuple[list[bytes], list[bytes]]:
        engine = InsightEngine(
            EngineConfig(warmup_minutes=60, baseline_half_life_minutes=half_life)
        )
        out, states = [], []
        for start in range(0, len(events), 250):
            out += engine.process_many(events[start : start + 250])
            states.append(engine.save_state())
        return [r.to_json() for r in out], states

    try:
        native.module = counting  # type: ignore[assignment]
        fast = run()
    finally:
        native.module = BUILT
    native.module = None  # type: ignore[assignment]
    try:
        pure = run()
    finally:
        native.module = BUILT
    assert fast == pure
    assert fast[0], "the scenario's bursts start insights"
    taken = {kind for kind, count in counting.outcomes.items() if count}
    # rebases before a step (the Python path) come with the short half-life
    assert taken == ({"done", "observed", "scored"} | ({"python"} if half_life < 100 else set()))


def _identities_and_repeats() -> list[CloudTrailEvent]:
    """Every principal, agent and error-code fallback, missing ids and repeated ids."""
    variants = [
        {"user_identity": None},
        {"user_identity": UserIdentity(arn="", invoked_by="ec2.amazonaws.com", principal_id="P")},
        {"user_identity": UserIdentity(principal_id="AIDAEXAMPLE")},
        {"user_identity": UserIdentity()},
        {"user_agent": None},
        {"user_agent": "", "error_code": ""},
        {"error_code": "AccessDenied"},
        {},
    ]
    events = background(0.5, 3.0, seed=4) + burst(T0 + 36_000, 60, spread=120)
    events.sort(key=event_seconds)
    out: list[CloudTrailEvent] = []
    for i, event in enumerate(events):
        changed = msgspec.structs.replace(event, **variants[i % len(variants)])  # type: ignore[arg-type]
        if i % 11 == 0:
            changed = msgspec.structs.replace(changed, event_id=None)
        out.append(changed)
        if i % 13 == 0:  # delivered twice
            out.append(msgspec.structs.replace(changed))
    return out


@pytest.mark.parametrize(("window", "max_ids"), [(10, 40), (60, 0), (60, 2_000_000)])
def test_accepted_events_are_the_same_with_and_without_the_accelerator(
    window: int, max_ids: int
) -> None:
    """Records, counters and the whole saved state (buffers, dedupe ids) of both paths, with a
    dedupe window that fills up, one that keeps nothing and one that never fills."""
    events = _identities_and_repeats()

    def run() -> tuple[list[bytes], dict[str, object], bytes]:
        config = EngineConfig(
            warmup_minutes=30, dedupe_window_minutes=window, dedupe_max_ids=max_ids
        )
        engine = InsightEngine(config)
        out = []
        start, sizes = 0, cycle((1, 1, 2, 1, 50))
        while start < len(events):
            size = next(sizes)
            out += engine.process_many(events[start : start + size], drain=False)
            start += size
            assert engine.ids_remembered <= max_ids  # bounded after every call
        state = engine.save_state()
        records = [r.to_json() for r in out + engine.drain() + engine.flush()]
        return records, engine.stats.as_dict(), state

    fast, pure = both(run)
    assert fast == pure
    records, stats, _ = fast
    assert records
    duplicates = stats["duplicates"]
    assert isinstance(duplicates, int)
    assert duplicates > 0 if max_ids else duplicates == 0


def _many_streams_and_shapes() -> list[bytes]:
    """Write calls of 160 account-Regions (4 accounts) and 120 event shapes interleaved, as JSON
    lines, half of them from two of the streams: more streams and routes than the C loop keeps
    by identity, so that they share its slots, decoded with shared strings."""
    rng = random.Random(11)
    places = [(f"20000000000{k % 4}", f"region-{k // 4:02d}") for k in range(160)]
    shapes = [(f"Api{k}", ("AccessDenied", None, None)[k % 3]) for k in range(120)]
    lines = []
    for second in range(0, 3 * 3600, 2):
        account, region = rng.choice(places if rng.random() < 0.5 else places[:2])
        name, error = rng.choice(shapes)
        if 7200 <= second < 7500 and rng.random() < 0.8:  # a burst in one stream
            (account, region), (name, error) = places[0], shapes[0]
        event = make_event(T0 + second, name, account=account, region=region, error=error)
        lines.append(msgspec.json.encode(event))
    return lines


def test_many_streams_and_shapes_give_the_same_output_with_and_without_the_accelerator() -> None:
    lines = _many_streams_and_shapes()

    def run() -> tuple[list[bytes], dict[str, object], bytes]:
        engine = InsightEngine(EngineConfig(warmup_minutes=30))
        out = []
        for start in range(0, len(lines), 256):
            decoded = decode_many(lines[start : start + 256])
            out += engine.process_many(decoded.events, drain=False)
        state = engine.save_state()
        return (
            [r.to_json() for r in out + engine.drain() + engine.flush()],
            engine.stats.as_dict(),
            state,
        )

    fast, pure = both(run)
    assert fast == pure
    records, stats, _ = fast
    assert any(b'"Api0"' in record for record in records)
    assert stats["analysed"] == len(lines)


class _Untouchable(types.ModuleType):
    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the engine reached for the kernels' {name}")


def test_an_engine_keeps_the_choice_of_kernels_it_was_constructed_with(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events = burst_after_a_day()
    expected = [r.to_json() for r in run(events)]  # with the built kernels
    monkeypatch.setattr(native, "module", _Untouchable("insights._native"))
    pure = InsightEngine(EngineConfig(warmup_minutes=60), accelerated=False)
    out = pure.process_many(events) + pure.flush()
    assert [r.to_json() for r in out] == expected
    monkeypatch.setattr(native, "module", BUILT)
    fast = InsightEngine(EngineConfig(warmup_minutes=60))
    monkeypatch.setattr(native, "module", _Untouchable("insights._native"))
    out = fast.process_many(events) + fast.flush()
    assert [r.to_json() for r in out] == expected
    monkeypatch.setattr(native, "module", None)
    with pytest.raises(InsightsConfigError, match="not built"):
        InsightEngine(accelerated=True)


def test_a_read_only_stream_counts_as_not_analysed() -> None:
    events = [
        make_event(T0 + i, "ListUsers", read_only=True, event_id=f"l{i}") for i in range(0, 600)
    ]

    def run() -> tuple[int, int, int]:
        engine = InsightEngine(EngineConfig(allowed_lateness_seconds=60))
        engine.process_many(events)
        return engine.stats.not_analysed, engine.stats.analysed, engine.keys_tracked

    assert both(run) == ((600, 0, 0), (600, 0, 0))


# ------------------------------------------------------------------ attribution sketches
@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=1, max_value=3))
def test_sketch_merges_are_bit_identical_with_and_without_the_accelerator(
    seed: int, attributes: int
) -> None:
    def run() -> tuple[np.ndarray, np.ndarray]:
        table = AttributionTable(capacity=8, kernels=native.module)
        rng = np.random.default_rng(seed)
        for minute in range(40):  # repeats, new values, full sketches, small and large minutes
            n = int(rng.integers(1, 200 if minute % 7 == 0 else 30))
            rows = rng.integers(0, 8, n).tolist()
            ranks = [rng.integers(0, 12, n).tolist() for _ in range(attributes)]
            weighted = (rng.random(n) * 10.0 ** rng.integers(-3, 4)).tolist()
            table.merge_minute(rows, ranks, weighted, list(range(100, 112)) if seed % 2 else None)
        return table.ids.copy(), table.weights.copy()

    (fast_ids, fast_weights), (ids, weights) = both(run)
    assert np.array_equal(fast_ids, ids)
    assert fast_weights.tobytes() == weights.tobytes()


def test_sketch_merge_rejects_what_it_cannot_index() -> None:
    assert BUILT is not None
    table = AttributionTable(capacity=2)
    with pytest.raises(IndexError):
        BUILT.merge_minute(table.ids, table.weights, [5], [[0]], [1.0], None)
    with pytest.raises(IndexError):
        BUILT.merge_minute(table.ids, table.weights, [0], [[3]], [1.0], [7, 8])
    with pytest.raises(ValueError, match="differ in length"):
        BUILT.merge_minute(table.ids, table.weights, [0, 1], [[0]], [1.0], None)
    with pytest.raises(TypeError):
        BUILT.merge_minute(table.weights, table.weights, [0], [[0]], [1.0], None)
    assert not table.weights.any()  # nothing was half-merged


def test_loops_reject_calls_they_do_not_understand() -> None:
    assert BUILT is not None
    with pytest.raises(TypeError, match="expected scan"):
        BUILT.scan([], [], 0, 0, len, len, len, None, {}, 0)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):  # the dedupe window is not one
        BUILT.scan([], {}, 0, 0, len, {}, len, object(), {}, 0)
    with pytest.raises(TypeError, match="expected scan"):  # ``due`` is the engine's dict
        BUILT.scan([], {}, 0, 0, len, len, len, None, {}, 0)  # type: ignore[arg-type]


# ------------------------------------------------------------------ closing steps
def _random_table(rng: np.random.Generator, rows: int) -> BaselineTable:
    """A table in an arbitrary (not necessarily learned) state, from sparse to heavy rows."""
    table = BaselineTable(
        half_life=10080.0, peak_half_life=4320.0, capacity=4, kernels=native.module
    )
    for _ in range(rows):
        table.add_row()
    scale = 10.0 ** rng.integers(-3, 5, (rows, 1))
    table.counts[:rows] = rng.random((rows, N_SLOTS)) * scale * (rng.random((rows, 1)) < 0.9)
    table.sq[:rows] = rng.random((rows, 3)) * scale * scale * 40.0
    table.part[:rows] = rng.integers(0, 50, (rows, 2))
    table.part_raw[:rows] = table.part[:rows] + rng.integers(0, 5, (rows, 2))
    table.peak_val[:rows] = rng.integers(0, 80, (rows, 3, 2)) * (rng.random((rows, 3, 2)) < 0.7)
    table.peak_min[:rows] = np.where(table.peak_val[:rows] > 0, 28_000_000, 0)
    table.last_minute[:rows] = np.where(
        rng.random(rows) < 0.2, -1, 28_000_000 - rng.integers(0, 3000, rows)
    )
    return table


def _closing_steps(seed: int, big: bool) -> list[bytes]:
    """Score and learn 25 steps of random rows, counts and scores; every output as bytes."""
    rng = np.random.default_rng(seed)
    n_rows = 3000 if big else 40
    table = _random_table(rng, n_rows)
    exposures = [
        StreamExposure(ref_minute=27_990_000 + int(rng.integers(0, 9000)), half_life=10080.0)
        for _ in range(3)
    ]
    for exposure in exposures:
        assert exposure.slots is not None
        exposure.slots[:] = rng.random(N_SLOTS) * 400.0 * (rng.random(N_SLOTS) < 0.8)
        exposure.total = float(exposure.slots.sum())
    minute = 28_000_000 + int(rng.integers(0, 1440 * 7))
    out: list[bytes] = []
    for _ in range(25):
        minute += int(rng.choice([1, 1, 2, 9, 61, 1440 * 2]))  # buckets, hours and weekends
        streams = sorted(rng.choice(3, int(rng.integers(1, 4)), replace=False).tolist())
        chosen = rng.permutation(n_rows)[: int(rng.integers(1, n_rows))]
        item = np.sort(rng.integers(0, len(streams), chosen.shape[0]))
        rows = chosen.astype(np.int64)
        counts = np.floor(rng.random(rows.shape[0]) * 10.0 ** rng.integers(0, 4))
        scored = table.score_minutes(
            rows,
            counts,
            item,
            [exposures[s] for s in streams],
            [minute - s for s in range(len(streams))],
            float(rng.integers(1, 6)),
        )
        expected = scored.expected
        for array in (
            scored.decay,
            scored.item_decay,
            scored.window,
            scored.lam,
            scored.phi,
            scored.needed,
            scored.minute,
            expected.mu,
            expected.mean_rate,
            expected.phi,
        ):
            out.append(np.ascontiguousarray(array).tobytes())
        scores = rng.random((rows.shape[0], 3)) * 8.0
        guarded = np.asarray(rng.random(rows.shape[0]) < 0.2)
        table.learn_minutes(scored, rows, counts, scores, guarded)
        for s in streams:  # scoring accounted the minute in each stream's exposure
            out.append(np.float64(exposures[s].total).tobytes() + exposures[s].slots.tobytes())
    out += [array.tobytes() for array in table.arrays().values()]
    return out


@given(st.integers(min_value=0, max_value=2**32))
def test_closing_steps_are_bit_identical_with_and_without_the_accelerator(seed: int) -> None:
    fast, pure = both(lambda: _closing_steps(seed, big=False))
    assert fast == pure


@pytest.mark.parametrize(
    "change",
    [
        {"winsor_sigma": 4.0},
        {"suspect_score": 2.5, "suspect_weight": 0.5},
        {"prior_count": 2.0, "slot_prior_minutes": 30.0},
        {"max_phi": 3.0},
        {"poisson_phi": 1.5},
    ],
)
def test_a_model_changed_in_python_changes_both_paths_alike(
    change: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The docs' "change the model" example: editing insights/model.py alone moves the C code
    too (it takes the constants from Python), so the paths stay bit-identical."""
    assert BUILT is not None

    def outputs() -> list[bytes]:
        rng = np.random.default_rng(3)
        x = np.floor(rng.random((50, 3)) * 20.0)
        lam = rng.random((50, 3)) * 5.0
        phi = 1.0 + rng.random((50, 3)) * 0.8  # around the Poisson bound
        return [*_closing_steps(7, big=False), _score_bytes(x, lam, phi, x >= 0)]

    before = outputs()
    changed = dataclasses.replace(model.MODEL, **change)
    monkeypatch.setattr(model, "MODEL", changed)
    BUILT.set_model(*changed.native_arguments())
    try:
        fast, pure = both(outputs)
    finally:
        BUILT.set_model(*model.ModelParams().native_arguments())
    assert fast == pure
    assert fast != before


def test_the_model_arguments_are_in_the_order_c_reads_them() -> None:
    names = [f.name for f in dataclasses.fields(model.ModelParams)][2:]
    assert names == [
        "prior_count",
        "prior_minutes",
        "slot_prior_minutes",
        "max_phi",
        "winsor_sigma",
        "suspect_score",
        "suspect_weight",
        "poisson_phi",
    ]
    assert BUILT is not None
    assert (model.MODEL.scales, model.MODEL.n_slots) == BUILT.SHAPE
    with pytest.raises(TypeError, match="expected set_model"):
        BUILT.set_model(1.0)  # type: ignore[call-arg]


def test_the_c_step_retires_look_back_minutes_in_the_blocks_python_does() -> None:
    assert BUILT is not None
    assert BUILT.RETIRE_EVERY == windows.RETIRE_EVERY


def test_a_model_of_another_shape_runs_pure_python(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(model, "MODEL", model.ModelParams(scales=(1, 10, 30, 60)))
    assert BUILT is not None
    assert "compiled for scales" in _loaded_instead(BUILT, monkeypatch, caplog)


def test_large_closing_steps_are_bit_identical_with_and_without_the_accelerator() -> None:
    fast, pure = both(lambda: _closing_steps(11, big=True))
    assert fast == pure


def test_closing_step_rejects_what_it_cannot_index() -> None:
    assert BUILT is not None
    table = _random_table(np.random.default_rng(1), 4)
    table.last_minute[0], table.part[0] = 27_999_000, 5.0  # its buckets close at 28,000,000
    exposure = StreamExposure(ref_minute=27_990_000, half_life=10080.0)
    before = [array.copy() for array in table.arrays().values()]

    def call(rows: object, scratch: int = 64, planes: int = 16, item: object = None) -> None:
        n = len(rows)  # type: ignore[arg-type]
        assert BUILT is not None
        BUILT.score_minutes(
            table,
            rows,
            np.ones(n),
            np.zeros(n, dtype=np.int64) if item is None else item,
            [exposure],
            [28_000_000],
            2.0,
            np.zeros(scratch),
            np.zeros((planes, n)),
            np.zeros((n, 3), dtype=bool),
        )

    with pytest.raises(IndexError):
        call(np.array([0, 4]))  # row 4 was never added
    with pytest.raises(IndexError):
        call(np.array([0, 1]), item=np.array([0, 1]))  # one stream-minute only
    with pytest.raises(TypeError):
        call(np.array([0, 1], dtype=np.int32))
    with pytest.raises(TypeError):
        call(np.array([0, 1]), planes=15)
    with pytest.raises(ValueError, match="scratch"):
        call(np.array([0, 1]), scratch=10)
    with pytest.raises(TypeError, match="expected score_minutes"):
        BUILT.score_minutes(table)  # type: ignore[call-arg]
    with pytest.raises(IndexError):
        BUILT.learn_minutes(
            table,
            np.array([9]),
            np.ones(1),
            np.zeros((1, 3)),
            np.zeros(1, dtype=bool),
            np.zeros(1, dtype=np.int64),
            np.zeros((16, 1)),
        )
    after = list(table.arrays().values())
    assert all(a.tobytes() == b.tobytes() for a, b in zip(before, after, strict=True))
    call(np.array([0, 3]))  # a valid call does change the table
    assert table.part[0].tolist() == [0.0, 0.0]


@given(
    st.lists(
        st.dictionaries(
            st.tuples(
                st.integers(min_value=0, max_value=7),
                st.sampled_from(["arn:a", "arn:b", "ä", "Z", "", "arn:a\x00x"]),
                st.sampled_from(["aws-cli", "Boto3", "console", "ü"]),
                st.sampled_from(["", "AccessDenied", "Throttling"]),
            ),
            st.integers(min_value=1, max_value=500),
            max_size=40,
        ),
        max_size=5,
    ),
    st.dictionaries(
        st.integers(min_value=0, max_value=7),
        st.floats(min_value=1e-3, max_value=1e6),
        max_size=8,
    ),
)
def test_buffer_merges_are_bit_identical_with_and_without_the_accelerator(
    buffers: list[dict[tuple[int, str, str, str], int]], row_weights: dict[int, float]
) -> None:
    def run() -> tuple[bytes, bytes, list[str]]:
        table = AttributionTable(capacity=8, kernels=native.module)
        names = Interner(["Throttling"])  # an id that is not in text order
        for _ in range(3):  # again, so values already in the sketches are matched
            table.merge_buffers(buffers, row_weights, names.id)
        return table.ids.tobytes(), table.weights.tobytes(), names.values()

    fast, pure = both(run)
    assert fast == pure


def test_buffer_merge_rejects_what_it_cannot_read() -> None:
    assert BUILT is not None
    table = AttributionTable(capacity=2)
    names = Interner()
    good = {(0, "arn:a", "cli", ""): 3}
    with pytest.raises(TypeError, match="dicts"):
        BUILT.merge_buffers(table.ids, table.weights, [[1]], {0: 1.0}, names.id)
    with pytest.raises(TypeError, match="buffer entries"):
        BUILT.merge_buffers(table.ids, table.weights, [{(0, "a", "b"): 1}], {0: 1.0}, names.id)
    with pytest.raises(TypeError, match="buffer entries"):
        BUILT.merge_buffers(table.ids, table.weights, [{(0, "a", b"b", ""): 1}], {0: 1.0}, names.id)
    with pytest.raises(IndexError):
        BUILT.merge_buffers(table.ids, table.weights, [{(5, "a", "b", ""): 1}], {5: 1.0}, names.id)
    with pytest.raises(TypeError, match="expected merge_buffers"):
        BUILT.merge_buffers(table.ids, table.weights, [good], [(0, 1.0)], names.id)  # type: ignore[arg-type]

    def refuse(value: str) -> int:
        raise ValueError(f"refused {value!r}")

    with pytest.raises(ValueError, match="refused"):
        BUILT.merge_buffers(table.ids, table.weights, [good], {0: 1.0}, refuse)
    assert not table.weights.any()
    fresh = Interner()
    BUILT.merge_buffers(table.ids, table.weights, [good], {0: 2.0}, fresh.id)
    assert table.weights[0, :, 0].tolist() == [6.0, 6.0, 6.0]
    assert fresh.values() == ["", "arn:a", "cli"]  # interned in text order


# ------------------------------------------------------------------ tail scores
special_values = st.sampled_from([0.0, -0.0, 1.0, -3.0, 1e-300, 1e300, np.inf, -np.inf, np.nan])


@given(
    st.integers(min_value=0, max_value=2**32),
    st.integers(min_value=1, max_value=30),
    st.lists(special_values, max_size=6),
)
def test_tail_scores_are_bit_identical_with_and_without_the_accelerator(
    seed: int, n: int, odd: list[float]
) -> None:
    rng = np.random.default_rng(seed)
    x = np.floor(rng.random((n, 3)) * 10.0 ** rng.integers(0, 4, (n, 3)))
    lam = rng.random((n, 3)) * 10.0 ** rng.integers(-3, 3, (n, 3))
    phi = np.where(rng.random((n, 3)) < 0.3, 1.0, 1.0 + rng.random((n, 3)) * 40.0)
    x[0, 0], phi[0, 0] = 3.0, 1.0 + 1e-6  # the largest dispersion still scored as Poisson
    for value in odd:  # NaN, infinities, zeros and negatives somewhere in the operands
        operand = (x, lam, phi)[int(rng.integers(0, 3))]
        operand[int(rng.integers(0, n)), int(rng.integers(0, 3))] = value
    where = rng.random((n, 3)) < 0.7
    # the engine's layout: (rows, scales) views of (scales, rows) planes
    planes = np.ascontiguousarray(np.stack([x.T, lam.T, phi.T]))
    cases = [(x, lam, phi, where), (planes[0].T, planes[1].T, planes[2].T, where)]
    cases.append((x[:, 0], lam[:, 0], phi[:, 0], np.ascontiguousarray(where[:, 0])))
    for operands in cases:
        fast, pure = both(partial(_score_bytes, *operands))
        assert fast == pure


def _score_bytes(x: np.ndarray, lam: np.ndarray, phi: np.ndarray, where: np.ndarray) -> bytes:
    return nb_tail_score(x, lam, phi, where=where, kernels=native.module).tobytes()


def test_tail_scores_reject_what_they_cannot_read() -> None:
    assert BUILT is not None
    x = np.ones((2, 3))
    mask = np.ones((2, 3), dtype=bool)
    work = np.empty((6, 6))
    with pytest.raises(ValueError, match="differ in shape"):
        BUILT.tail_scores(x, x, np.ones((3, 2)), mask, np.empty(6), work)
    with pytest.raises(TypeError, match="where"):
        BUILT.tail_scores(x, x, x, x, np.empty(6), work)
    with pytest.raises(TypeError, match="work"):
        BUILT.tail_scores(x, x, x, mask, np.empty(6), np.empty(5))
    with pytest.raises(TypeError, match="expected tail_scores"):
        BUILT.tail_scores(x, x, x, mask)  # type: ignore[call-arg]
    out = np.full(6, 7.0)
    BUILT.tail_scores(x * 5.0, x, x, mask, out, work)
    assert out.round(2).tolist() == [2.44] * 6  # P(Poisson(1) >= 5), as the doctest says


def test_rare_keys_reviewed_for_their_actors_give_the_same_output_with_and_without_it() -> None:
    """The C step hands back every step Python must review (a rare key that could start by new
    actors, a suspicious minute its usual actors may have made): the same records and state."""
    scenario = dataclasses.replace(
        hard_scenario(7),
        accounts=("111122223333",),
        regions=("us-east-1",),
        anomalies=("new_principal_clump", "new_error_code_at_night", "never_seen_api"),
    )
    events = decode_many(list(render(generate(scenario), seed=7))).events

    def run() -> tuple[list[bytes], bytes]:
        engine = InsightEngine(EngineConfig())
        records = engine.process_many(events) + engine.flush()
        return [r.to_json() for r in records], engine.save_state()

    fast, pure = both(run)
    assert fast == pure
    reasons = [json.loads(r)["additionalEventData"]["reason"] for r in fast[0]]
    assert "new_actors" in reasons
