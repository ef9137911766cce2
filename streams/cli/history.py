"""``ctinsights insights list``: Insight files read back (ours or AWS's)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from insights import TimestampError, parse_epoch_seconds
from streams.cli.status import EXIT_OK
from streams.errors import ConfigError, SourceError
from streams.sinks.files import read_insight_files
from streams.sinks.formats.text import describe

__all__ = ["cmd_insights_list"]


def cmd_insights_list(args: argparse.Namespace) -> int:
    """List Insights from Insight files (ours or AWS's), filtered, like the console's page."""
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
