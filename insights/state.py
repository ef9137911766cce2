"""Versioned engine snapshots: the envelope (MessagePack; numpy arrays as raw little-endian
bytes; no pickle).

A snapshot holds everything the engine needs to continue exactly where it stopped: baselines,
attribution sketches, open minutes and held events, open insights, the dedupe window and the
counters, each part written by its own ``to_state`` (:meth:`insights.InsightEngine.to_state`).
The envelope records the format, its version, the detection settings and the model's shape;
restoring under different settings or another shape is refused because the baselines would
not mean the same thing.
"""

from __future__ import annotations

from typing import Any

import msgspec

from insights import model
from insights.config import EngineConfig
from insights.errors import StateDecodeError
from insights.model import ModelParams

__all__ = ["FORMAT", "VERSION", "dump_engine", "load_engine"]

FORMAT = "ctinsights-engine-state"
VERSION = 2
_DEFAULT_SHAPE = [list(ModelParams().scales), ModelParams().n_slots]


def _shape() -> list[Any]:
    """The model's shape (scales, seasonal slots): the baseline arrays' layout."""
    return [list(model.MODEL.scales), model.MODEL.n_slots]


def dump_engine(config: EngineConfig, parts: dict[str, Any]) -> bytes:
    """A snapshot of an engine's ``parts`` (its ``to_state``) under ``config``."""
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "config": config.model_dump_json(),
        "shape": _shape(),
        **parts,
    }
    return msgspec.msgpack.encode(doc)


def load_engine(config: EngineConfig, data: bytes) -> dict[str, Any]:
    """The engine parts of a snapshot taken under ``config`` (:class:`StateDecodeError` if
    it is not one, or of another version, settings or shape)."""
    try:
        doc = msgspec.msgpack.decode(data)
    except msgspec.MsgspecError as exc:
        raise StateDecodeError(f"not an engine snapshot: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise StateDecodeError("not an engine snapshot")
    if doc.get("version") != VERSION:
        raise StateDecodeError(f"unsupported snapshot version {doc.get('version')!r}")
    if doc["config"] != config.model_dump_json():
        raise StateDecodeError("snapshot was taken with different detection settings")
    # snapshots from before the shape was recorded have the default one
    if doc.get("shape", _DEFAULT_SHAPE) != _shape():
        raise StateDecodeError(
            f"snapshot was taken with another model shape {doc.get('shape')!r} "
            f"(scales, slots; this model has {_shape()!r})"
        )
    return doc
