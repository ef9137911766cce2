"""The ``ctinsights`` command line: ``replay``, ``run``, ``check-config``, ``produce``,
``insights list``, ``simulate`` and ``demo``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from streams.cli.console import add_console_parser
from streams.cli.history import cmd_insights_list
from streams.cli.ingest import add_ingest_parser
from streams.cli.lab import cmd_demo, cmd_simulate
from streams.cli.replay import cmd_replay, load_config
from streams.cli.status import EXIT_OK, EXIT_USAGE
from streams.cli.worker import cmd_check_config, cmd_produce, cmd_run, worker_flags
from streams.errors import StreamsError
from streams.settings import KeyScheme

__all__ = ["build_parser", "load_config", "main"]


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
    replay.add_argument(
        "--insight-dir",
        type=Path,
        help="also write Insight files (AWS's S3 layout) and each insight's context here, "
        "as the worker does (for ctinsights console)",
    )
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
    worker_flags(run)
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check-config", help="print the effective settings, secrets masked")
    worker_flags(check)
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

    add_console_parser(sub)
    add_ingest_parser(sub)

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
