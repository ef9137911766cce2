"""``ctinsights ingest`` from S3 + SQS (moto in server mode on 127.0.0.1) into a real broker.

An organization trail's tree of log files is uploaded to a bucket that notifies a queue; the
ingest process reads the queue into a topic, and a worker reads the topic. Its Insights must be
exactly those of ``ctinsights replay --keep-open`` of the same files, also when ingest is
killed -9 mid-way and started again; a corrupt file and a message that is no notification go
to the dead-letter topic with their reasons, and digest and Insight files are passed over.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.cli import main
from streams.lab.broker import free_port
from streams.worker import Worker
from tests.integration.conftest import (
    Dataset,
    create_topic,
    read_topic,
    unique,
    worker_settings,
)
from tests.integration.test_worker import running, wait_caught_up

pytestmark = pytest.mark.integration

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def aws() -> Iterator[str]:
    """moto's S3 and SQS over HTTP on 127.0.0.1; its endpoint URL."""
    os.environ.update(AWS_ENV)
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def client(kind: str, endpoint: str) -> Any:
    import boto3

    return boto3.client(kind, endpoint_url=endpoint, region_name="us-east-1")


def trail_tree(lines: list[bytes], root: Path) -> list[tuple[str, bytes]]:
    """The records as an organization trail writes them: a gzip log file per account, Region
    and hour, under ``AWSLogs/<org>/<account>/CloudTrail/<region>/yyyy/mm/dd/``; written
    under ``root`` too (for replay); (key, body) in delivery (time) order."""
    files: dict[tuple[str, str, str], list[bytes]] = defaultdict(list)
    for line in lines:
        record = json.loads(line)
        hour = record["eventTime"][:13]
        files[(hour, record["recipientAccountId"], record["awsRegion"])].append(line)
    out: list[tuple[str, bytes]] = []
    for (hour, account, region), records in sorted(files.items()):
        day = hour[:10].replace("-", "/")
        stamp = hour.replace("-", "").replace("T", "T") + "00Z"
        key = (
            f"AWSLogs/o-example/{account}/CloudTrail/{region}/{day}/"
            f"{account}_CloudTrail_{region}_{stamp}_{len(out):04d}.json.gz"
        )
        body = gzip.compress(b'{"Records":[' + b",".join(records) + b"]}", mtime=0)
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(body)
        out.append((key, body))
    return out


def bucket_with_queue(endpoint: str) -> tuple[Any, str, str]:
    """A bucket notifying a new queue of created objects: (s3 client, bucket, queue URL)."""
    s3, sqs = client("s3", endpoint), client("sqs", endpoint)
    bucket, queue = unique("trail"), unique("ct")
    s3.create_bucket(Bucket=bucket)
    url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn["QueueArn"], "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    return s3, bucket, url


def ingest(
    endpoint: str, bootstrap: str, queue: str, topic: str, idle: float, **env: str
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "streams", "ingest", "--sqs-queue-url", queue, "--topic", topic,
        "--bootstrap-servers", bootstrap, "--endpoint-url", endpoint, "--concurrency", "1",
        "--visibility-timeout", "4", "--exit-when-idle", str(idle),
    ]  # fmt: skip
    return subprocess.Popen(
        command,
        env={**os.environ, **AWS_ENV, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def insights_of(bootstrap: str, topic: str, tmp_path: Path) -> set[bytes]:
    """The Insight records a worker emits from ``topic`` (read to its end)."""
    settings = worker_settings(bootstrap, topic, checkpoint_store="directory", state_dir=tmp_path)
    with running(Worker(settings)):
        wait_caught_up(bootstrap, settings)
    return {m.value for m in read_topic(bootstrap, settings.output_topic)}


def replayed(tree: Path, tmp_path: Path) -> set[bytes]:
    out = tmp_path / "replay.jsonl"
    assert main(["replay", str(tree), "--keep-open", "--output", str(out)]) == 0
    return set(out.read_bytes().splitlines())


@pytest.mark.parametrize(
    "kill",
    [None, "clock", "ingest_mid_file:40", "ingest_before_delete:40", "ingest_deleted:40"],
)
def test_ingest_from_s3_gives_what_replay_of_the_files_gives(
    aws: str, bootstrap: str, dataset: Dataset, tmp_path: Path, kill: str | None
) -> None:
    """Straight through, and with ingest killed -9 (by the clock once some files are in, or
    at a failpoint in the middle of a file or before a message's delete) and started again
    once the message it held is visible again."""
    s3, bucket, queue = bucket_with_queue(aws)
    topic = unique("ct")
    create_topic(bootstrap, topic, 4)
    create_topic(bootstrap, f"{topic}-ingest-dlq", 1)
    files = trail_tree(dataset.lines, tmp_path / "tree")
    half = len(files) // 2
    for key, body in files[:half]:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    # what ingest passes over, and what it dead-letters
    account = json.loads(dataset.lines[0])["recipientAccountId"]
    digest = f"AWSLogs/o-example/{account}/CloudTrail-Digest/us-east-1/2024/01/01/d.json.gz"
    s3.put_object(Bucket=bucket, Key=digest, Body=b"{}")
    s3.put_object(Bucket=bucket, Key="AWSLogs/o-example/broken.json.gz", Body=b"\x1f\x8bnot gzip")
    client("sqs", aws).send_message(QueueUrl=queue, MessageBody="hello, not a notification")
    for key, body in files[half:]:
        s3.put_object(Bucket=bucket, Key=key, Body=body)

    points = {} if kill in (None, "clock") else {"CTINSIGHTS_FAILPOINT": str(kill)}
    first = ingest(aws, bootstrap, queue, topic, idle=8, **points)
    if kill is not None:
        if kill == "clock":  # once some files are in
            deadline = time.monotonic() + 120
            while len(read_topic(bootstrap, topic, settle=0.1)) < 3000:
                assert time.monotonic() < deadline, "ingest produced nothing"
            first.send_signal(signal.SIGKILL)
        first.communicate(timeout=120)
        assert first.returncode == -signal.SIGKILL
        time.sleep(5)  # the message it held becomes visible again (visibility timeout 4 s)
        first = ingest(aws, bootstrap, queue, topic, idle=8)
    _, errors = first.communicate(timeout=300)
    assert first.returncode == 0, errors.decode()[-2000:]

    # at least once: every record of every file is on the topic (repeats are the worker's)
    on_topic = {json.loads(m.value)["eventID"] for m in read_topic(bootstrap, topic)}
    assert on_topic == {json.loads(line)["eventID"] for line in dataset.lines}
    assert insights_of(bootstrap, topic, tmp_path / "state") == replayed(
        tmp_path / "tree", tmp_path
    )
    dead = [json.loads(m.value) for m in read_topic(bootstrap, f"{topic}-ingest-dlq")]
    assert sorted({d["reason"] for d in dead}) == ["bad_gzip", "not_a_notification"]
    assert any(d.get("key") == "AWSLogs/o-example/broken.json.gz" for d in dead)
