"""Versioned engine snapshots (MessagePack; numpy arrays as raw little-endian bytes; no pickle).

A snapshot holds everything the engine needs to continue exactly where it stopped: baselines,
attribution sketches, open minutes and held events, open insights, the dedupe window and the
counters. It also records the detection settings; restoring under different settings is refused
because the baselines would not mean the same thing.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from insights.attribution import InsightAttribution, Interner
from insights.baselines import StreamExposure
from insights.detectors import OpenInsight
from insights.errors import StateDecodeError
from insights.events import CloudTrailEvent
from insights.records import InsightKey
from insights.windows import MinuteBuffer, StreamState

if TYPE_CHECKING:
    from insights.engine import InsightEngine

__all__ = ["FORMAT", "VERSION", "dump_engine", "load_engine"]

FORMAT = "ctinsights-engine-state"
VERSION = 2


def _array(a: np.ndarray) -> dict[str, Any]:
    a = np.ascontiguousarray(a)
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": a.tobytes()}


def _unarray(d: dict[str, Any]) -> np.ndarray:
    return np.frombuffer(d["data"], dtype=np.dtype(d["dtype"])).reshape(d["shape"]).copy()


def _buffer(b: MinuteBuffer) -> list[list[Any]]:
    return [[row, p, a, e, c] for (row, p, a, e), c in b.items()]


def _unbuffer(items: list[list[Any]]) -> MinuteBuffer:
    return {(int(r), str(p), str(a), str(e)): int(c) for r, p, a, e, c in items}


def _stream(s: StreamState) -> dict[str, Any]:
    assert s.exposure.slots is not None
    return {
        "account": s.account,
        "region": s.region,
        "exposure": [s.exposure.ref_minute, s.exposure.total, _array(s.exposure.slots)],
        "first_minute": s.first_minute,
        "max_seen": s.max_seen,
        "closed_until": s.closed_until,
        "next_close": s.next_close,
        "rows": s.rows,
        "pending": {str(m): _buffer(b) for m, b in s.pending.items()},
        "recent": {str(m): _buffer(b) for m, b in s.recent.items()},
        "held": [[sec, msgspec.json.encode(ev)] for sec, ev in s.held],
        "held_since": [s.held_clock, s.held_reference],
        "open_rows": sorted(s.open_rows),
    }


def _unstream(d: dict[str, Any], half_life: float) -> StreamState:
    ref, total, slots = d["exposure"]
    return StreamState(
        account=d["account"],
        region=d["region"],
        exposure=StreamExposure(int(ref), half_life, float(total), _unarray(slots)),
        first_minute=d["first_minute"],
        max_seen=d["max_seen"],
        closed_until=d["closed_until"],
        next_close=d.get("next_close", -1),
        rows=list(d["rows"]),
        pending={int(m): _unbuffer(b) for m, b in d["pending"].items()},
        recent={m: _unbuffer(d["recent"][str(m)]) for m in sorted(map(int, d["recent"]))},
        held=[(int(sec), msgspec.json.decode(raw, type=CloudTrailEvent)) for sec, raw in d["held"]],
        held_clock=int(d.get("held_since", (0, 0))[0]),
        held_reference=int(d.get("held_since", (0, 0))[1]),
        open_rows=set(d["open_rows"]),
    )


def _insight(o: OpenInsight) -> dict[str, Any]:
    return {
        "row": o.row,
        "start_minute": o.start_minute,
        "scale": o.scale,
        "score": o.score,
        "baseline_average": o.baseline_average,
        "baseline_duration": o.baseline_duration,
        "baseline_attributions": [[list(p) for p in attr] for attr in o.baseline_attributions],
        "counts": o.counts,
        "attribution": [dict(c) for c in o.attribution.counters],
        "last_above": o.last_above,
        "quiet_run": o.quiet_run,
        "ew_rate": o.ew_rate,
        "end_quiet_needed": o.end_quiet_needed,
    }


def _uninsight(d: dict[str, Any], key: InsightKey) -> OpenInsight:
    return OpenInsight(
        key=key,
        row=d["row"],
        start_minute=d["start_minute"],
        scale=d["scale"],
        score=d["score"],
        baseline_average=d["baseline_average"],
        baseline_duration=d["baseline_duration"],
        baseline_attributions=tuple(
            tuple((str(v), float(a)) for v, a in attr) for attr in d["baseline_attributions"]
        ),
        counts=list(d["counts"]),
        attribution=InsightAttribution([Counter(c) for c in d["attribution"]]),
        last_above=d["last_above"],
        quiet_run=d["quiet_run"],
        ew_rate=d["ew_rate"],
        end_quiet_needed=d["end_quiet_needed"],
    )


def dump_engine(engine: InsightEngine) -> bytes:
    """Serialize an engine's complete state."""
    e = engine
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "config": e.config.model_dump_json(),
        "table": {k: _array(v) for k, v in e._table.arrays().items()},
        "attr_ids": _array(e._attrs.ids[: e._table.size]),
        "attr_weights": _array(e._attrs.weights[: e._table.size]),
        "names": e._names.values(),
        "keys": [list(k.as_tuple()) for k in e._keys],
        "streams": [_stream(s) for s in e._streams.values()],
        "open": [_insight(o) for o in e._open.values()],
        "ended": [[row, minute] for row, minute in e._ended.items()],
        "dedupe": e._dedupe.to_state(),
        "stats": e.stats.as_dict(),
    }
    return msgspec.msgpack.encode(doc)


def load_engine(engine: InsightEngine, data: bytes) -> None:
    """Load a snapshot into a freshly constructed engine (same config)."""
    try:
        doc = msgspec.msgpack.decode(data)
    except msgspec.MsgspecError as exc:
        raise StateDecodeError(f"not an engine snapshot: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise StateDecodeError("not an engine snapshot")
    if doc.get("version") != VERSION:
        raise StateDecodeError(f"unsupported snapshot version {doc.get('version')!r}")
    if doc["config"] != engine.config.model_dump_json():
        raise StateDecodeError("snapshot was taken with different detection settings")
    try:
        _apply(engine, doc)
    except (KeyError, TypeError, ValueError) as exc:
        raise StateDecodeError(f"corrupt engine snapshot: {exc}") from exc


def _apply(e: InsightEngine, doc: dict[str, Any]) -> None:
    from insights.engine import EngineStats

    e._table.load_arrays({k: _unarray(v) for k, v in doc["table"].items()})
    size = e._table.size
    e._attrs.ensure(max(size, 1))
    e._attrs.ids[:size] = _unarray(doc["attr_ids"])
    e._attrs.weights[:size] = _unarray(doc["attr_weights"])
    e._names = Interner(list(doc["names"]))
    e._keys = [InsightKey(*k) for k in doc["keys"]]
    e._rows = {k.as_tuple(): i for i, k in enumerate(e._keys)}
    half_life = e.config.baseline_half_life_minutes
    streams = [_unstream(s, half_life) for s in doc["streams"]]
    e._streams = {(s.account, s.region): s for s in streams}
    e._holding = {s for s in streams if s.held}
    # minutes closed but not yet scored when the snapshot was taken (process_many(drain=False))
    e._due = {(s.account, s.region): s for s in streams if s.next_close < s.closed_until}
    e._row_stream = [streams[0]] * len(e._keys) if streams else []
    for s in streams:
        for row in s.rows:
            e._row_stream[row] = s
    e._open = {d["row"]: _uninsight(d, e._keys[d["row"]]) for d in doc["open"]}
    e._ended = {int(row): int(minute) for row, minute in doc["ended"]}
    e._dedupe.load_state(doc["dedupe"])
    st = doc["stats"]
    e.stats = EngineStats(
        events=st["events"],
        analysed=st["analysed"],
        not_analysed=st["not_analysed"],
        duplicates=st["duplicates"],
        late=st["late"],
        rejected=Counter(st["rejected"]),
        insights_started=Counter(st["insights_started"]),
        insights_ended=Counter(st["insights_ended"]),
    )
