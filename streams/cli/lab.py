"""``ctinsights simulate`` and ``demo``: the lab's commands (imported only when run)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from streams.cli.status import EXIT_OK
from streams.errors import ConfigError

__all__ = ["cmd_demo", "cmd_simulate"]


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
