"""Real CloudTrail logs: false insights on everyday traffic, and injected attack bursts.

    .venv/bin/python benchmarks/real_logs_bench.py [--shared ../shared]

1. The GRyCAP teaching account as it is: Insight Starts per active day, and which of the natural
   bursts its README lists fire.
2. Attack simulations with a baseline warmed on that account: the Invictus IR run (Stratus Red
   Team techniques, 56 minutes) and the burst-shaped Stratus detonations are re-timed into the
   account's sparse sa-east-1 stream (2018-01-27 ... 2018-05-09; account and Region rewritten, the
   relative timing of each file kept) and replayed merged; for each documented burst: did an
   Insight start on its API, and how many minutes after the burst began.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from insights import EngineConfig, InsightEngine, decode_message
from insights.timeparse import parse_epoch_seconds
from streams.produce import iter_raw_records

ACCOUNT, REGION = "974349055189", "sa-east-1"
#: Where each injected file starts (inside the warm sa-east-1 stream), and the bursts to check.
INVICTUS_AT = "2018-04-10T14:00:00Z"
STRATUS_AT = {
    "aws.credential-access.ec2-get-password-data.json": "2018-04-12T10:00:00Z",
    "aws.execution.ec2-user-data.json": "2018-04-13T10:00:00Z",
    "aws.discovery.ec2-download-user-data.json": "2018-04-16T10:00:00Z",
    "aws.credential-access.secretsmanager-retrieve-secrets.json": "2018-04-17T10:00:00Z",
}
#: Invictus bursts (README table): start time, API.
INVICTUS_BURSTS = [
    ("2023-07-10T11:54:38Z", "ec2.amazonaws.com", "GetPasswordData"),
    ("2023-07-10T11:57:46Z", "secretsmanager.amazonaws.com", "GetSecretValue"),
    ("2023-07-10T11:58:08Z", "ssm.amazonaws.com", "PutParameter"),
    ("2023-07-10T12:02:40Z", "ec2.amazonaws.com", "DescribeInstanceAttribute"),
    ("2023-07-10T12:07:00Z", "ssm.amazonaws.com", "DeleteParameter"),
]


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(r) for r in iter_raw_records([str(path)])]


def retime(records: list[dict[str, Any]], at: str) -> tuple[list[dict[str, Any]], int]:
    """Records moved so that the earliest starts at ``at``; returns them and the shift (s)."""
    first = min(parse_epoch_seconds(r["eventTime"]) for r in records)
    shift = parse_epoch_seconds(at) - first
    out = []
    for r in records:
        r = dict(r)
        r["eventTime"] = _iso(parse_epoch_seconds(r["eventTime"]) + shift)
        r["recipientAccountId"], r["awsRegion"] = ACCOUNT, REGION
        out.append(r)
    return out, shift


def _iso(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def replay(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], InsightEngine]:
    records = sorted(records, key=lambda r: r.get("eventTime", ""))
    engine = InsightEngine(EngineConfig())
    events = [e for r in records for e in decode_message(json.dumps(r).encode()).events]
    out = engine.process_many(events) + engine.flush()
    return [r.to_dict() for r in out], engine


def starts(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["insightDetails"]["state"] == "Start"]


def describe(r: dict[str, Any]) -> str:
    d = r["insightDetails"]
    return (
        f"{r['eventTime']} {r['awsRegion']} {d['insightType']} {d['eventSource']}:"
        f"{d['eventName']} {d.get('errorCode', '')} score {r['additionalEventData']['score']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared"
    )
    args = parser.parse_args()
    root = args.shared / "datasets" / "cloudtrail"
    grycap = load(root / "grycap-cloudtrail-tracker")
    out, engine = replay(grycap)
    days = Counter(r["eventTime"][:10] for r in grycap)
    found = starts(out)
    print(
        f"GRyCAP as is: {len(grycap):,} records, {len(days)} active days, "
        f"{engine.keys_tracked} keys, {len(found)} insight starts "
        f"({len(found) / len(days):.2f} per active day):"
    )
    for r in found:
        print("  " + describe(r))

    injected: list[dict[str, Any]] = []
    checks: list[tuple[str, str, str, int]] = []  # (name, source, api, burst start)
    invictus, shift = retime(load(root / "invictus-ir-aws-dataset"), INVICTUS_AT)
    injected += invictus
    for at, source, api in INVICTUS_BURSTS:
        checks.append(("invictus", source, api, parse_epoch_seconds(at) + shift))
    for name, at in STRATUS_AT.items():
        records, _ = retime(load(root / "stratus-red-team-detonation-logs" / name), at)
        injected += records
        top = Counter((r["eventSource"], r["eventName"]) for r in records).most_common(1)[0][0]
        checks.append((name.split(".", 2)[2].removesuffix(".json"), *top, parse_epoch_seconds(at)))
    out, _ = replay(grycap + injected)
    found = starts(out)
    print(f"\nInjected into {ACCOUNT}/{REGION}: {len(injected):,} records")
    print("| burst | API | insight | minutes after burst start |")
    print("|---|---|---|---|")
    matched: set[str] = set()
    for name, source, api, begin in checks:
        hits = [
            r
            for r in found
            if r["insightDetails"]["eventSource"] == source
            and r["insightDetails"]["eventName"] == api
            and r["awsRegion"] == REGION
            and abs(parse_epoch_seconds(r["eventTime"]) - begin) <= 3600
        ]
        matched.update(r["eventID"] for r in hits)
        if hits:
            first = min(hits, key=lambda r: r["additionalEventData"]["detectionTime"])
            delay = (
                parse_epoch_seconds(first["additionalEventData"]["detectionTime"]) - begin
            ) / 60
            kind = first["insightDetails"]["insightType"].removesuffix("Insight")
            print(f"| {name} | {source.split('.')[0]}:{api} | {kind} | {delay:.0f} |")
        else:
            print(f"| {name} | {source.split('.')[0]}:{api} | none | - |")
    window = [
        r
        for r in found
        if r["awsRegion"] == REGION
        and r["eventTime"] >= "2018-04-10"
        and r["eventID"] not in matched
    ]
    print(
        f"other insight starts during the injections (other APIs of the same runs): {len(window)}"
    )


if __name__ == "__main__":
    main()
