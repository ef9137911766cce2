"""``ctinsights ingest``: the S3 + SQS input (:mod:`streams.ingest`)."""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from streams.cli.status import EXIT_OK
from streams.errors import ConfigError, SinkError
from streams.settings import KeyScheme

__all__ = ["add_ingest_parser", "cmd_ingest"]

logger = logging.getLogger("ctinsights")


def add_ingest_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ingest = sub.add_parser("ingest", help="CloudTrail from S3 (SQS notifications) into Kafka")
    ingest.add_argument("--sqs-queue-url", required=True)
    ingest.add_argument("--topic", required=True)
    ingest.add_argument("--bootstrap-servers", required=True)
    ingest.add_argument("--dead-letter-topic", help="default: <topic>-ingest-dlq")
    ingest.add_argument(
        "--key", choices=[k.value for k in KeyScheme], default=KeyScheme.ACCOUNT_REGION.value
    )
    ingest.add_argument("--endpoint-url", help="S3 and SQS endpoint (an S3-compatible store)")
    ingest.add_argument("--region", help="AWS Region (default: the standard chain's)")
    ingest.add_argument("--concurrency", type=int, default=4, help="messages handled at once")
    ingest.add_argument("--visibility-timeout", type=int, default=300, help="seconds")
    ingest.add_argument("--wait-seconds", type=int, default=20, help="SQS long-poll wait")
    ingest.add_argument(
        "--exit-when-idle", type=float, help="stop after the queue was empty this long"
    )
    ingest.add_argument("--metrics-port", type=int, help="serve /metrics and /healthz here")
    ingest.add_argument("--metrics-host", default="127.0.0.1")
    ingest.set_defaults(func=cmd_ingest)


def cmd_ingest(args: argparse.Namespace) -> int:
    """Run the ingest loop until a signal (or an idle queue, with --exit-when-idle)."""
    import boto3
    from botocore.config import Config
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    from streams.ingest import Ingest, IngestMetrics, IngestOptions
    from streams.metrics import HealthState, MetricsServer
    from streams.runner import install_signal_handlers

    if args.concurrency < 1 or args.visibility_timeout < 2:
        raise ConfigError("--concurrency must be >= 1 and --visibility-timeout >= 2 seconds")
    options = IngestOptions(
        queue_url=args.sqs_queue_url,
        topic=args.topic,
        dead_letter_topic=args.dead_letter_topic or f"{args.topic}-ingest-dlq",
        key=KeyScheme(args.key),
        concurrency=args.concurrency,
        visibility_seconds=args.visibility_timeout,
        wait_seconds=args.wait_seconds,
        exit_when_idle_seconds=args.exit_when_idle,
    )
    session = boto3.session.Session(region_name=args.region)
    config = Config(retries={"mode": "standard", "max_attempts": 5})
    sqs = session.client("sqs", endpoint_url=args.endpoint_url, config=config)
    s3 = session.client("s3", endpoint_url=args.endpoint_url, config=config)
    try:
        producer = KafkaProducer(
            bootstrap_servers=args.bootstrap_servers.split(","),
            acks="all",
            linger_ms=20,
            batch_size=256 * 1024,
            max_request_size=8 * 1024 * 1024,
        )
    except KafkaError as exc:
        raise SinkError(f"cannot connect to {args.bootstrap_servers}: {exc}") from exc
    metrics = IngestMetrics()
    stop = threading.Event()
    install_signal_handlers(stop)
    server = None
    if args.metrics_port is not None:
        server = MetricsServer(metrics.registry, HealthState())
        server.start(args.metrics_host, args.metrics_port)
    try:
        Ingest(options, sqs, s3, producer, metrics, stop).run()
    finally:
        producer.close()
        if server is not None:
            server.stop()
    done = metrics.registry.get_sample_value("ctinsights_ingest_records_total") or 0
    print(f"ingest stopped: {int(done)} records produced", file=sys.stderr)
    return EXIT_OK
