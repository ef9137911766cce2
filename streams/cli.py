"""The ``ctinsights`` command line: ``replay``, ``simulate`` and ``demo``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from insights import CloudTrailEvent, EngineConfig, InsightEngine, InsightRecord
from streams.errors import ConfigError, StreamsError
from streams.files import read_inputs

__all__ = ["main"]

logger = logging.getLogger("ctinsights")

EXIT_OK = 0
EXIT_USAGE = 2
#: Events handed to the engine at once by ``replay``.
REPLAY_CHUNK = 4096


def load_config(path: str | None, overrides: dict[str, Any]) -> EngineConfig:
    """Detection settings from an optional TOML/JSON file plus command-line overrides."""
    values: dict[str, Any] = {}
    if path:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            text = file.read_text(encoding="utf-8")
            loaded = json.loads(text) if file.suffix == ".json" else tomllib.loads(text)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
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
    return "\n".join(lines)


def cmd_replay(args: argparse.Namespace) -> int:
    """Replay files, trees or stdin through the engine; Insight records as JSON lines."""
    config = load_config(
        args.config, {"sensitivity": args.sensitivity, "warmup_minutes": args.warmup_minutes}
    )
    engine = InsightEngine(config)
    out: IO[bytes] = open(args.output, "wb") if args.output else sys.stdout.buffer  # noqa: SIM115
    rejects: Counter[str] = Counter()
    progress = _Progress(sys.stderr)
    written = 0

    def emit(records: list[InsightRecord]) -> None:
        nonlocal written
        for record in records:
            out.write(record.to_json() + b"\n")
            out.flush()
            written += 1

    chunk: list[CloudTrailEvent] = []
    chunk_started = time.monotonic()
    try:
        for batch in read_inputs(args.paths):
            for rejection in batch.result.rejections:
                rejects[rejection.reason.value] += 1
                logger.debug(
                    "rejected %s from %s: %s", rejection.reason, batch.source, rejection.detail
                )
            if not chunk:
                chunk_started = time.monotonic()
            chunk.extend(batch.result.events)
            # Events go to the engine in chunks so minutes are scored in vectorized steps;
            # a slow input (a pipe) still gets its insights within about a second.
            if len(chunk) >= REPLAY_CHUNK or time.monotonic() - chunk_started > 1.0:
                emit(engine.process_many(chunk))
                chunk = []
                progress.update(engine.stats.events, written)
        emit(engine.process_many(chunk))
        emit(engine.flush())
    finally:
        progress.done()
        if args.output:
            out.close()
    print(_summary(engine, rejects, written), file=sys.stderr)
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace) -> int:
    """Write a simulated CloudTrail stream as JSON lines, and its labels as JSON."""
    from streams.simulate import Scenario, generate, render

    scenario = Scenario(seed=args.seed, days=args.days, reads_per_minute=args.reads_per_minute)
    events = generate(scenario)
    with open(args.output, "wb") as out:
        for line in render(events, seed=args.seed):
            out.write(line + b"\n")
    if args.labels:
        Path(args.labels).write_text(json.dumps([_label(lb) for lb in scenario.labels], indent=1))
    print(f"{len(events)} events, {len(scenario.labels)} labelled anomalies", file=sys.stderr)
    return EXIT_OK


def _label(label: Any) -> dict[str, Any]:
    return {name: getattr(label, name) for name in label.__slots__}


def cmd_demo(args: argparse.Namespace) -> int:
    """Simulate a stream with injected bursts and print Insights as they are detected."""
    from streams.demo import run_demo

    return run_demo(days=args.days)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(prog="ctinsights", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    replay = sub.add_parser("replay", help="replay CloudTrail files through the detector")
    replay.add_argument("paths", nargs="+", help="file, directory (S3 layout) or - for stdin")
    replay.add_argument("--config", help="TOML or JSON file with detection settings")
    replay.add_argument("--output", "-o", help="write Insight records here instead of stdout")
    replay.add_argument("--sensitivity", choices=["low", "medium", "high"])
    replay.add_argument("--warmup-minutes", type=int)
    replay.set_defaults(func=cmd_replay)

    simulate = sub.add_parser("simulate", help="write a simulated, labelled CloudTrail stream")
    simulate.add_argument("--output", "-o", required=True)
    simulate.add_argument("--labels", help="write the labelled anomalies here (JSON)")
    simulate.add_argument("--days", type=int, default=10)
    simulate.add_argument("--seed", type=int, default=7)
    simulate.add_argument("--reads-per-minute", type=float, default=6.0)
    simulate.set_defaults(func=cmd_simulate)

    demo = sub.add_parser("demo", help="simulated stream with injected bursts, live Insights")
    demo.add_argument("--days", type=int, default=9)
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ctinsights`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        code: int = args.func(args)
    except StreamsError as exc:
        print(f"ctinsights: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_OK
    return code


if __name__ == "__main__":
    sys.exit(main())
