"""Webhooks against real HTTP servers on 127.0.0.1, Insight files, ``insights list``."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from insights import EngineConfig, InsightEngine, decode_message
from streams.cli import main
from streams.lab.broker import free_port
from streams.lab.simulate import Scenario, generate, render
from streams.metrics import HealthState, WorkerMetrics
from streams.settings import WorkerSettings
from streams.sinks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Delivery,
    InsightFileWriter,
    SinkFilter,
    WebhookSender,
    WebhookSettings,
    read_insight_files,
)
from streams.sinks.runner import SinkRunner

SECRET = b"s3cret-key"


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    scenario = Scenario(days=3, reads_per_minute=0.5, anomaly_day=2)
    engine = InsightEngine(EngineConfig())
    events = [e for line in render(generate(scenario)) for e in decode_message(line).events]
    out = engine.process_many(events) + engine.flush()
    assert len(out) >= 10
    return [r.to_dict() for r in out]


class Receiver:
    """An HTTP receiver that fails the first ``fail_first`` requests with ``fail_status``, and
    answers each request ``delay`` seconds after it has recorded it."""

    def __init__(self, fail_first: int = 0, fail_status: int = 503, delay: float = 0.0) -> None:
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.delay = delay
        self.attempts = 0
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.attempts += 1
                    failing = receiver.attempts <= receiver.fail_first
                    if not failing:
                        receiver.bodies.append(body)
                        receiver.headers.append(dict(self.headers))
                time.sleep(receiver.delay)
                self.send_response(receiver.fail_status if failing else 200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.handler = Handler
        self.server: ThreadingHTTPServer | None = None

    def start(self, port: int = 0) -> Receiver:
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self.handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=3).start()
    yield r
    r.stop()


def hook(url: str, **extra: Any) -> WebhookSettings:
    return WebhookSettings(
        name="test",
        url=SecretStr(url),
        secret=SecretStr(SECRET.decode()),
        backoff_seconds=0.01,
        max_backoff_seconds=0.05,
        **extra,
    )


def valid(headers: dict[str, str], body: bytes) -> bool:
    timestamp = headers[TIMESTAMP_HEADER]
    mac = hmac.new(SECRET, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers[SIGNATURE_HEADER], "v1=" + mac)


def test_flaky_receiver_gets_every_insight_once_per_success_signed(
    receiver: Receiver, records: list[dict[str, Any]]
) -> None:
    outcomes: list[str] = []
    sender = WebhookSender(hook(receiver.url), on_attempt=outcomes.append)
    results = [sender.deliver(r) for r in records]
    assert results == [Delivery.DELIVERED] * len(records)
    received = [json.loads(b)["eventID"] for b in receiver.bodies]
    assert received == [r["eventID"] for r in records]
    assert all(valid(h, b) for h, b in zip(receiver.headers, receiver.bodies, strict=True))
    assert receiver.attempts == len(records) + 3
    assert outcomes.count("failed") == 3
    assert outcomes.count("retry") == 3


def test_tampered_body_fails_the_signature(
    receiver: Receiver, records: list[dict[str, Any]]
) -> None:
    WebhookSender(hook(receiver.url)).deliver(records[0])
    assert not valid(receiver.headers[0], receiver.bodies[0] + b" ")


def test_receiver_down_for_a_while_still_receives(
    records: list[dict[str, Any]], tmp_path: Path
) -> None:
    port = free_port()
    late = Receiver()
    timer = threading.Timer(0.5, lambda: late.start(port))
    timer.start()
    try:
        sender = WebhookSender(
            hook(
                f"http://127.0.0.1:{port}/hook",
                max_attempts=30,
                dead_letter_path=tmp_path / "dead.jsonl",
            )
        )
        assert sender.deliver(records[0]) is Delivery.DELIVERED
        assert len(late.bodies) == 1
        assert not (tmp_path / "dead.jsonl").exists()
    finally:
        timer.join()
        late.stop()


def test_permanent_errors_and_exhausted_retries_are_dead_lettered(
    records: list[dict[str, Any]], tmp_path: Path
) -> None:
    rejecting = Receiver(fail_first=10**6, fail_status=400).start()
    try:
        dead = tmp_path / "dead.jsonl"
        sender = WebhookSender(hook(rejecting.url, dead_letter_path=dead))
        assert sender.deliver(records[0]) is Delivery.DEAD_LETTERED
        assert rejecting.attempts == 1  # a 400 is not retried
        rejecting.fail_status = 503
        assert sender.deliver(records[1]) is Delivery.DEAD_LETTERED
        assert rejecting.attempts == 1 + sender.settings.max_attempts
        lines = [json.loads(line) for line in dead.read_text().splitlines()]
        assert [x["record"]["eventID"] for x in lines] == [
            records[0]["eventID"],
            records[1]["eventID"],
        ]
        assert lines[0]["reason"] == "HTTP 400"
        assert SECRET.decode() not in dead.read_text()
    finally:
        rejecting.stop()


def test_formats(receiver: Receiver, records: list[dict[str, Any]]) -> None:
    receiver.fail_first = 0
    start = next(r for r in records if r["insightDetails"]["state"] == "Start")
    end = next(
        r
        for r in records
        if r["insightDetails"]["state"] == "End" and r["sharedEventID"] == start["sharedEventID"]
    )
    for fmt in ("eventbridge", "slack"):
        WebhookSender(hook(receiver.url, format=fmt)).deliver(start)
    pd = hook(receiver.url, format="pagerduty", routing_key="R" * 32)
    WebhookSender(pd).deliver(start)
    WebhookSender(pd).deliver(end)
    bridge, slack, trigger, resolve = (json.loads(b) for b in receiver.bodies)
    assert bridge["detail-type"] == "AWS Insight via CloudTrail"
    assert bridge["detail"] == start
    assert start["insightDetails"]["eventName"] in slack["text"]
    assert "baseline" in slack["text"]
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"] == start["sharedEventID"]


def test_filters(records: list[dict[str, Any]]) -> None:
    start = next(r for r in records if r["insightDetails"]["state"] == "Start")
    assert SinkFilter().accepts(start)
    assert not SinkFilter(accounts=["000000000000"]).accepts(start)
    assert not SinkFilter(min_score=1e9).accepts(start)
    ends = [r for r in records if r["insightDetails"]["state"] == "End"]
    assert not any(SinkFilter(start_only=True).accepts(r) for r in ends)


def test_insight_files_round_trip_and_list(
    records: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    writer = InsightFileWriter(tmp_path)
    paths = writer.write(records)
    assert writer.write(records) == paths  # rewriting a batch replaces the same files
    for path in paths:
        parts = path.relative_to(tmp_path).parts
        assert parts[0] == "AWSLogs"
        assert parts[2] == "CloudTrail-Insight"
        assert path.name.startswith(f"{parts[1]}_CloudTrail-Insight_{parts[3]}_")
        assert json.loads(gzip.decompress(path.read_bytes()))["Records"]
    assert sorted(r["eventID"] for r in read_insight_files(tmp_path)) == sorted(
        r["eventID"] for r in records
    )
    account = records[0]["recipientAccountId"]
    assert main(["insights", "list", "--root", str(tmp_path), "--account", account, "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert listed
    assert {r["recipientAccountId"] for r in listed} == {account}
    assert main(["insights", "list", "--root", str(tmp_path / "missing")]) == 2


def test_stopping_interrupts_retries(records: list[dict[str, Any]]) -> None:
    """A sender retrying a dead receiver gives up promptly when the worker stops."""
    stop = threading.Event()
    sender = WebhookSender(hook("http://127.0.0.1:9/never", max_attempts=100), stop=stop)
    thread = threading.Thread(target=sender.deliver, args=(records[0],))
    started = time.monotonic()
    thread.start()
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 5


def test_insight_files_are_foldered_by_each_records_own_day_and_not_world_readable(
    records: list[dict[str, Any]], tmp_path: Path
) -> None:
    """A batch with records of several days (a replay of 2014-2017 logs delivers such) puts
    each record under its own day, as AWS does; files are 0640, or the mode given."""
    old = {**records[0], "eventTime": "2014-09-26T11:34:00Z", "eventID": "old-1"}
    older = {**records[1], "eventTime": "2014-09-25T23:59:00Z", "eventID": "old-2"}
    batch = [old, older, *records]
    paths = InsightFileWriter(tmp_path).write(batch)
    for path in paths:
        day = "-".join(path.relative_to(tmp_path).parts[4:7])
        inside = json.loads(gzip.decompress(path.read_bytes()))["Records"]
        assert {r["eventTime"][:10] for r in inside} == {day}
        assert path.name.split("_")[3][:8] == day.replace("-", "")
        assert path.stat().st_mode & 0o777 == 0o640
    assert sorted(r["eventID"] for r in read_insight_files(tmp_path)) == sorted(
        r["eventID"] for r in batch
    )
    private = InsightFileWriter(tmp_path / "private", mode=0o600).write(records[:1])
    assert private[0].stat().st_mode & 0o777 == 0o600


def test_sink_consumers_join_with_the_workers_group_timings(
    offline_settings: Callable[..., WorkerSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """kafka-python's default 3 s heartbeat kept a sink out of its group for 23 s on the local
    broker (the first alert after a start came 16-39 s late): sinks use the worker's timings."""
    made: list[dict[str, Any]] = []
    monkeypatch.setattr(
        "streams.sinks.runner.KafkaConsumer", lambda *topics, **options: made.append(options)
    )
    settings = offline_settings(session_timeout_ms=9000, heartbeat_interval_ms=1500)
    runner = SinkRunner(
        settings, "files", lambda records: None, threading.Event(), WorkerMetrics(), HealthState()
    )
    runner._consumer()
    assert made[0]["group_id"] == "g.sink.files"
    assert (made[0]["session_timeout_ms"], made[0]["heartbeat_interval_ms"]) == (9000, 1500)


class _Message:
    def __init__(self, offset: int, value: bytes) -> None:
        self.topic, self.partition, self.offset, self.value = "out", 0, offset, value


class _OutputTopic:
    """Polls the given batches in turn, then sets ``stop``; notes commits."""

    def __init__(self, batches: list[list[_Message]], stop: threading.Event) -> None:
        self.batches = batches
        self.stop = stop
        self.commits = 0

    def poll(self, timeout_ms: int) -> dict[str, list[_Message]]:
        if not self.batches:
            self.stop.set()
            return {}
        return {"out-0": self.batches.pop(0)}

    def commit(self) -> None:
        self.commits += 1


def test_a_record_no_sink_can_read_is_counted_and_passed_over(
    offline_settings: Callable[..., WorkerSettings], records: list[dict[str, Any]]
) -> None:
    """Something that is not an Insight record on the output topic must not stop the sink."""
    handled: list[dict[str, Any]] = []
    stop, metrics = threading.Event(), WorkerMetrics()
    runner = SinkRunner(offline_settings(), "files", handled.extend, stop, metrics, HealthState())
    good = json.dumps(records[0]).encode()
    topic = _OutputTopic(
        [[_Message(0, b"not json")], [_Message(1, b"[1]"), _Message(2, good)]], stop
    )
    runner._consume(topic)
    assert handled == [records[0]]
    assert topic.commits == 2  # past the unreadable records too, so they are not read again
    assert metrics.registry.get_sample_value("ctinsights_sink_errors_total", {"sink": "files"}) == 2
