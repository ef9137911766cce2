"""``ctinsights run``, ``check-config`` and ``produce``: the Kafka side of the command line."""

from __future__ import annotations

import argparse
import json
import sys

from streams.cli.status import EXIT_OK, EXIT_USAGE
from streams.errors import ConfigError, SinkError
from streams.settings import KeyScheme, WorkerSettings, load_settings

__all__ = ["cmd_check_config", "cmd_produce", "cmd_run", "worker_flags"]


def worker_flags(parser: argparse.ArgumentParser) -> None:
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
