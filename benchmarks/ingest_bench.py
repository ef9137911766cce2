"""``ctinsights ingest`` from a local S3 emulator into the local broker, as a user runs it.

    .venv/bin/python benchmarks/ingest_bench.py [--days 4] [--runs 3] [--concurrency 1 4]

A simulated organization's CloudTrail (~1.45 KB records, 2 accounts x 2 Regions) is written as
gzip log files, one per account, Region and 5 minutes (CloudTrail's delivery), uploaded to a
bucket of moto's S3 server (127.0.0.1) that notifies an SQS queue of moto's. Per run and
concurrency, ``ctinsights ingest`` (a process) reads the queue into a fresh topic of the local
Tansu broker; the time is from its start until the topic holds every record (sampled every
0.1 s), start-up included. Reported: medians of records/s and log files/s over the runs. Both
servers share the machine's two cores with ingest: a real bucket and broker are elsewhere.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import defaultdict

import boto3
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from moto.server import ThreadedMotoServer

from streams.lab.broker import LocalBroker, free_port
from streams.lab.simulate import Scenario, generate, render

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "x",
    "AWS_SECRET_ACCESS_KEY": "x",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def log_files(days: int) -> list[tuple[str, bytes, int]]:
    """(key, gzip body, records) per account, Region and 5 minutes, in delivery order."""
    groups: dict[tuple[str, str, str], list[bytes]] = defaultdict(list)
    for line in render(generate(Scenario(days=days, reads_per_minute=6.0))):
        record = json.loads(line)
        slot = record["eventTime"][:15] + str(int(record["eventTime"][15]) // 5 * 5)
        groups[(slot, record["recipientAccountId"], record["awsRegion"])].append(line)
    out = []
    for n, ((slot, account, region), lines) in enumerate(sorted(groups.items())):
        day = slot[:10].replace("-", "/")
        key = f"AWSLogs/o-bench/{account}/CloudTrail/{region}/{day}/{n}.json.gz"
        body = gzip.compress(b'{"Records":[' + b",".join(lines) + b"]}", mtime=0)
        out.append((key, body, len(lines)))
    return out


class Counting:
    """Counts the messages of a topic as they arrive (the local broker's end offsets can lag
    behind what a consumer reads, so the records themselves are counted)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
        )
        self.consumer.topics()
        parts = self.consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        self.consumer.assign(tps)
        self.consumer.seek_to_beginning(*tps)
        self.count = 0

    def poll(self) -> int:
        for messages in self.consumer.poll(timeout_ms=100).values():
            self.count += len(messages)
        return self.count

    def close(self) -> None:
        self.consumer.close()


def one_run(
    endpoint: str, bootstrap: str, files: list[tuple[str, bytes, int]], concurrency: int
) -> float:
    s3 = boto3.client("s3", endpoint_url=endpoint)
    sqs = boto3.client("sqs", endpoint_url=endpoint)
    name = f"b{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.put_bucket_notification_configuration(
        Bucket=name,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    for key, body, _ in files:
        s3.put_object(Bucket=name, Key=key, Body=body)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(name, 4, 1)])
    admin.close()
    total = sum(n for _, _, n in files)
    command = [
        sys.executable, "-m", "streams", "ingest", "--sqs-queue-url", queue, "--topic", name,
        "--bootstrap-servers", bootstrap, "--endpoint-url", endpoint,
        "--concurrency", str(concurrency), "--exit-when-idle", "3",
    ]  # fmt: skip
    counting = Counting(bootstrap, name)
    started = time.monotonic()
    with subprocess.Popen(
        command, env={**os.environ, **AWS_ENV}, stderr=subprocess.DEVNULL
    ) as ingest:
        try:
            while counting.poll() < total:
                if time.monotonic() - started > 600:
                    raise SystemExit(f"ingest delivered {counting.count} of {total} records")
            elapsed = time.monotonic() - started
        finally:
            counting.close()
        ingest.wait(60)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    os.environ.update(AWS_ENV)
    files = log_files(args.days)
    records = sum(n for _, _, n in files)
    size = sum(len(b) for _, b, _ in files)
    print(
        f"# {records:,} records in {len(files)} log files ({size / 1e6:.1f} MB gzip), "
        f"medians of {args.runs} runs"
    )
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    try:
        with LocalBroker() as broker:
            print("| concurrency | records/s | log files/s |")
            print("|---|---|---|")
            for concurrency in args.concurrency:
                times = [
                    one_run(f"http://127.0.0.1:{port}", broker.bootstrap, files, concurrency)
                    for _ in range(args.runs)
                ]
                t = statistics.median(times)
                print(f"| {concurrency} | {records / t:,.0f} | {len(files) / t:,.1f} |", flush=True)
    finally:
        moto.stop()


if __name__ == "__main__":
    main()
