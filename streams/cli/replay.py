"""``ctinsights replay``: files, S3 trees or stdin through the engine."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from typing import IO, Any

import msgspec
from pydantic import ValidationError

from insights import EngineConfig, InsightEngine, InsightRecord, Pipeline, Rejection
from streams.cli.status import EXIT_OK
from streams.errors import ConfigError
from streams.files import read_inputs
from streams.settings import read_config_file
from streams.sinks.files import InsightFileWriter

__all__ = ["cmd_replay", "load_config"]

logger = logging.getLogger("ctinsights")


def load_config(path: str | None, overrides: dict[str, Any]) -> EngineConfig:
    """Detection settings from an optional TOML/JSON file plus command-line overrides."""
    values: dict[str, Any] = {}
    if path:
        loaded = read_config_file(path)
        values.update(loaded.get("detection", loaded))
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return EngineConfig(**values)
    except ValidationError as exc:
        raise ConfigError(f"invalid detection settings: {exc}") from exc


class _Progress:
    """A one-line progress report on a terminal (nothing when stderr is not a TTY)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.started = time.monotonic()
        self.last = 0.0

    def update(self, events: int, insights: int) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.last < 0.5:
            return
        self.last = now
        rate = events / max(now - self.started, 1e-9)
        self.stream.write(f"\r{events:,} events, {insights} insight records, {rate:,.0f} ev/s ")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\n")


def _summary(engine: InsightEngine, decode_rejects: Counter[str], records: int) -> str:
    stats = engine.stats
    rejected = Counter(decode_rejects)
    rejected.update(stats.rejected)
    lines = [
        f"events read:      {stats.events + sum(decode_rejects.values())}",
        f"analysed:         {stats.analysed}",
        f"not analysed:     {stats.not_analysed} (read-only calls without errors, service events)",
        f"rejected:         {sum(rejected.values())} {dict(sorted(rejected.items()))}",
        f"late:             {stats.late}",
        f"duplicates:       {stats.duplicates}",
        f"insight records:  {records} (started {dict(stats.insights_started)})",
    ]
    spans = engine.stream_spans()
    warmup = engine.config.warmup_minutes
    if not records and spans and max(spans.values()) < warmup:
        lines.append(
            f"no insights: warm-up not reached (a stream needs {warmup / 60:g} h of its own "
            f"event time before it can raise one; the longest here spans "
            f"{max(spans.values()) / 60:.1f} h; see --warmup-minutes)"
        )
    elif not records and not spans:
        lines.append("no insights: no analysable records in the input")
    return "\n".join(lines)


def _open_output(path: str | None, what: str) -> IO[bytes] | None:
    """``path`` opened for writing (``ConfigError`` with the reason when it cannot be)."""
    if path is None:
        return None
    try:
        return open(path, "wb")  # closed by the caller
    except OSError as exc:
        raise ConfigError(f"cannot write {what} {path}: {exc.strerror or exc}") from exc


class _RejectedFile:
    """``replay --rejected``: each rejected record as a JSON line with its reason."""

    def __init__(self, out: IO[bytes], engine: InsightEngine) -> None:
        self.out = out
        self.engine = engine
        engine.keep_rejected()

    def _line(self, reason: str, detail: str, source: str, record: bytes) -> None:
        text = record.decode("utf-8", "replace")
        entry = {"reason": reason, "detail": detail, "source": source, "record": text}
        self.out.write(json.dumps(entry).encode() + b"\n")

    def decoded(self, source: str, rejections: list[Rejection]) -> None:
        for rejection in rejections:
            self._line(rejection.reason.value, rejection.detail, source, rejection.raw)

    def engine_rejected(self, source: str) -> None:
        for event in self.engine.take_rejected():
            detail = f"eventTime {event.event_time} is ahead of its stream's clock"
            self._line("future_timestamp", detail, source, msgspec.json.encode(event))


def cmd_replay(args: argparse.Namespace) -> int:
    """Replay files, trees or stdin through the engine; Insight records as JSON lines."""
    config = load_config(
        args.config, {"sensitivity": args.sensitivity, "warmup_minutes": args.warmup_minutes}
    )
    engine = InsightEngine(config)
    pipeline = Pipeline(engine)
    opened = _open_output(args.output, "Insight records to")
    rejected_out = _open_output(args.rejected, "rejected records to")
    rejected = None if rejected_out is None else _RejectedFile(rejected_out, engine)
    out: IO[bytes] = opened or sys.stdout.buffer
    rejects: Counter[str] = Counter()
    progress = _Progress(sys.stderr)
    written = 0
    files = None if args.insight_dir is None else InsightFileWriter(args.insight_dir)
    engine.contexts.keep = files is not None

    def emit(records: list[InsightRecord], source: str) -> None:
        nonlocal written
        for record in records:
            out.write(record.to_json() + b"\n")
            out.flush()
            written += 1
        contexts = engine.contexts.take()
        if files is not None:  # what the worker's file sink and checkpoints write
            files.write([r.to_dict() for r in records])
            files.write_contexts({c.shared_event_id: c.to_json() for c in contexts})
        if rejected is not None:
            rejected.engine_rejected(source)

    drained_at = time.monotonic()
    try:
        for batch in read_inputs(args.paths):
            result = batch.result
            rejects.update(r.reason.value for r in result.rejections)
            if rejected is not None:
                rejected.decoded(batch.source, result.rejections)
            # the output of files is byte-identical from run to run; stdin (maybe a slow
            # pipe) also drains every second, so its insights are never held back for long
            records = pipeline.decoded(result)
            emit(records, batch.source)
            now = time.monotonic()
            if now - drained_at > 1.0:
                drained_at = now
                if batch.source == "-":
                    emit(pipeline.drain(), batch.source)
                progress.update(engine.stats.events, written)
        emit(pipeline.drain(), "end of input")
        if not args.keep_open:
            emit(pipeline.flush(), "end of input")
    finally:
        progress.done()
        for closing in (opened, rejected_out):
            if closing is not None:
                closing.close()
    print(_summary(engine, rejects, written), file=sys.stderr)
    return EXIT_OK
