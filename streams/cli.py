"""The ``ctinsights`` command line: ``replay``, ``simulate`` and ``demo``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

import msgspec
from pydantic import ValidationError

from insights import (
    EngineConfig,
    InsightEngine,
    InsightRecord,
    Rejection,
    TimestampError,
    parse_epoch_seconds,
)
from streams.errors import ConfigError, SinkError, SourceError, StreamsError
from streams.files import read_inputs
from streams.settings import KeyScheme, WorkerSettings, load_settings, read_config_file

__all__ = ["main"]

logger = logging.getLogger("ctinsights")

EXIT_OK = 0
EXIT_USAGE = 2


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
    opened = _open_output(args.output, "Insight records to")
    rejected_out = _open_output(args.rejected, "rejected records to")
    rejected = None if rejected_out is None else _RejectedFile(rejected_out, engine)
    out: IO[bytes] = opened or sys.stdout.buffer
    rejects: Counter[str] = Counter()
    progress = _Progress(sys.stderr)
    written = 0

    def emit(records: list[InsightRecord], source: str) -> None:
        nonlocal written
        for record in records:
            out.write(record.to_json() + b"\n")
            out.flush()
            written += 1
        if rejected is not None:
            rejected.engine_rejected(source)

    drained_at = time.monotonic()
    try:
        for batch in read_inputs(args.paths, clock_only=True):
            result = batch.result
            rejects.update(r.reason.value for r in result.rejections)
            if rejected is not None:
                rejected.decoded(batch.source, result.rejections)
            # Each small decoded batch goes to the engine at once (still in the CPU cache);
            # minutes are scored in large vectorized steps every DRAIN_EVERY events, so the
            # output of files is byte-identical from run to run. Stdin (maybe a slow pipe)
            # also drains every second, so its insights are never held back for long.
            records = engine.process_many(result.events, drain=False, clock_only=result.clock_only)
            emit(records, batch.source)
            now = time.monotonic()
            if now - drained_at > 1.0:
                drained_at = now
                if batch.source == "-":
                    emit(engine.drain(), batch.source)
                progress.update(engine.stats.events, written)
        emit(engine.drain(), "end of input")
        if not args.keep_open:
            emit(engine.flush(), "end of input")
    finally:
        progress.done()
        for closing in (opened, rejected_out):
            if closing is not None:
                closing.close()
    print(_summary(engine, rejects, written), file=sys.stderr)
    return EXIT_OK


def _worker_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML or JSON settings file")
    parser.add_argument("--bootstrap-servers")
    parser.add_argument("--input-topic", action="append", dest="input_topics")
    parser.add_argument("--output-topic")
    parser.add_argument("--dead-letter-topic")
    parser.add_argument("--group-id")
    parser.add_argument("--metrics-port", type=int)
    parser.add_argument("--metrics-host")
    parser.add_argument("--checkpoint-store", choices=["kafka", "directory"])
    parser.add_argument("--state-dir")
    parser.add_argument("--checkpoint-interval-seconds", type=float)
    parser.add_argument("--security-protocol")
    parser.add_argument("--sasl-mechanism")
    parser.add_argument("--sasl-plain-username")
    parser.add_argument("--ssl-cafile")
    parser.add_argument("--sensitivity", choices=["low", "medium", "high"])
    parser.add_argument("--warmup-minutes", type=int)


_WORKER_FLAGS = (
    "bootstrap_servers",
    "input_topics",
    "output_topic",
    "dead_letter_topic",
    "group_id",
    "metrics_port",
    "metrics_host",
    "checkpoint_store",
    "state_dir",
    "checkpoint_interval_seconds",
    "security_protocol",
    "sasl_mechanism",
    "sasl_plain_username",
    "ssl_cafile",
)


def _settings(args: argparse.Namespace) -> WorkerSettings:
    flags = {name: getattr(args, name) for name in _WORKER_FLAGS}
    detection = {"sensitivity": args.sensitivity, "warmup_minutes": args.warmup_minutes}
    detection = {k: v for k, v in detection.items() if v is not None}
    if detection:
        flags["detection"] = detection
    return load_settings(args.config, **flags)


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate settings and the paths they name; print them (secrets masked) as JSON."""
    settings = _settings(args)
    print(json.dumps(settings.masked(), indent=2, sort_keys=True))
    problems = settings.path_problems()
    for problem in problems:
        print(f"ctinsights: error: {problem}", file=sys.stderr)
    return EXIT_USAGE if problems else EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    """Run the stream worker until SIGTERM or SIGINT."""
    from streams.runner import run_worker

    return run_worker(_settings(args))


def cmd_produce(args: argparse.Namespace) -> int:
    """Load CloudTrail records into a topic, keyed by account and Region."""
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    from streams.produce import iter_raw_records, produce

    if args.batch < 1:
        raise ConfigError("--batch must be at least 1")
    records = iter_raw_records(args.paths)
    try:
        if args.partitions:
            admin = KafkaAdminClient(bootstrap_servers=args.bootstrap_servers)
            try:
                admin.create_topics([NewTopic(args.topic, args.partitions, 1)])
            except TopicAlreadyExistsError:
                pass
            finally:
                admin.close()
        compression = None if args.compression == "none" else args.compression
        producer = KafkaProducer(
            bootstrap_servers=args.bootstrap_servers,
            compression_type=compression,
            linger_ms=20,
            batch_size=256 * 1024,
            max_request_size=8 * 1024 * 1024,
            acks="all",
        )
    except KafkaError as exc:
        raise SinkError(f"cannot connect to {args.bootstrap_servers}: {exc}") from exc
    try:
        stats = produce(producer, args.topic, records, KeyScheme(args.key), args.batch)
    finally:
        producer.close()
    print(
        f"{stats.records} records in {stats.messages} messages to {args.topic} "
        f"({len(stats.keys)} keys, {stats.unkeyed} unkeyed)",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_insights_list(args: argparse.Namespace) -> int:
    """List Insights from Insight files (ours or AWS's), filtered, like the console's page."""
    from streams.lab.demo import describe
    from streams.sinks import read_insight_files

    root = Path(args.root)
    if not root.is_dir():
        raise SourceError(f"no such directory: {args.root}")
    since = None
    if args.since:
        try:
            since = parse_epoch_seconds(args.since)
        except TimestampError as exc:
            raise ConfigError(f"--since: {exc}") from exc
    shown = 0
    for record in read_insight_files(root):
        details = record["insightDetails"]
        if since is not None and parse_epoch_seconds(record["eventTime"]) < since:
            continue
        if args.account and record["recipientAccountId"] != args.account:
            continue
        if args.region and record["awsRegion"] != args.region:
            continue
        source, name = details["eventSource"], details["eventName"]
        # as keys print (ec2:CreateTags), or in full (ec2.amazonaws.com:CreateTags)
        if args.api and args.api not in (
            name,
            f"{source}:{name}",
            f"{source.split('.')[0]}:{name}",
        ):
            continue
        print(json.dumps(record) if args.json else describe(record))
        shown += 1
    print(f"{shown} insight records", file=sys.stderr)
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace) -> int:
    """Write a simulated CloudTrail stream as JSON lines, and its labels as JSON."""
    from streams.lab.simulate import Scenario, generate, render

    anomaly_day = args.anomaly_day if args.anomaly_day is not None else args.days - 1
    if not 1 <= anomaly_day < args.days:
        raise ConfigError("--anomaly-day must be after the first day and before --days")
    scenario = Scenario(
        seed=args.seed,
        days=args.days,
        reads_per_minute=args.reads_per_minute,
        anomaly_day=anomaly_day,
    )
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
    from streams.lab.demo import run_demo

    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    logging.getLogger("streams").setLevel(logging.WARNING)
    logging.getLogger("insights").setLevel(logging.WARNING)
    return run_demo(days=args.days, metrics_port=args.metrics_port, serve=args.serve)


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
    replay.add_argument(
        "--keep-open",
        action="store_true",
        help="at end of input, leave insights and the last minutes open (as a streaming "
        "worker has them) instead of closing them with End records",
    )
    replay.add_argument(
        "--rejected",
        help="write each rejected record here as a JSON line with its reason (like the "
        "worker's dead-letter topic)",
    )
    replay.set_defaults(func=cmd_replay)

    run = sub.add_parser("run", help="the Kafka stream worker")
    _worker_flags(run)
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check-config", help="print the effective settings, secrets masked")
    _worker_flags(check)
    check.set_defaults(func=cmd_check_config)

    prod = sub.add_parser("produce", help="load CloudTrail files into a Kafka topic")
    prod.add_argument("paths", nargs="+", help="file, directory (S3 layout) or - for stdin")
    prod.add_argument("--topic", required=True)
    prod.add_argument("--bootstrap-servers", required=True)
    prod.add_argument(
        "--key",
        choices=[k.value for k in KeyScheme],
        default=KeyScheme.ACCOUNT_REGION.value,
        help="message key (every detection key must land on one partition)",
    )
    prod.add_argument(
        "--batch", type=int, default=1, help='records per message ({"Records": [...]} when > 1)'
    )
    prod.add_argument("--compression", choices=["none", "gzip", "lz4"], default="none")
    prod.add_argument("--partitions", type=int, help="create the topic with this many partitions")
    prod.set_defaults(func=cmd_produce)

    simulate = sub.add_parser("simulate", help="write a simulated, labelled CloudTrail stream")
    simulate.add_argument("--output", "-o", required=True)
    simulate.add_argument("--labels", help="write the labelled anomalies here (JSON)")
    simulate.add_argument("--days", type=int, default=10)
    simulate.add_argument("--seed", type=int, default=7)
    simulate.add_argument("--reads-per-minute", type=float, default=6.0)
    simulate.add_argument(
        "--anomaly-day", type=int, help="day (0-based) of the injected bursts; default the last"
    )
    simulate.set_defaults(func=cmd_simulate)

    insights = sub.add_parser("insights", help="read Insight history back")
    insights_sub = insights.add_subparsers(dest="insights_command", required=True)
    listing = insights_sub.add_parser("list", help="list Insights from Insight files")
    listing.add_argument("--root", required=True, help="directory holding AWSLogs/...")
    listing.add_argument("--since", help="ISO-8601 time, e.g. 2024-01-05T00:00:00Z")
    listing.add_argument("--account")
    listing.add_argument("--region")
    listing.add_argument("--api", help="eventName or eventSource:eventName")
    listing.add_argument("--json", action="store_true", help="JSON lines instead of a summary")
    listing.set_defaults(func=cmd_insights_list)

    demo = sub.add_parser("demo", help="simulated stream with injected bursts, live Insights")
    demo.add_argument("--days", type=int, default=5)
    demo.add_argument("--metrics-port", type=int, help="default: a free port")
    demo.add_argument(
        "--serve", action="store_true", help="keep serving metrics after the summary until Ctrl-C"
    )
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
    if not args.verbose:  # kafka-python narrates every connection at INFO
        logging.getLogger("kafka").setLevel(logging.WARNING)
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
