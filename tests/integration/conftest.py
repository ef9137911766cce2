"""Integration fixtures: a real Kafka-protocol broker (Tansu) on 127.0.0.1, workers, topic I/O.

Set ``CTINSIGHTS_TEST_BOOTSTRAP=host:port`` to run against an external broker instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from insights import EngineConfig, InsightEngine, decode_message
from streams.lab.broker import LocalBroker, free_port
from streams.lab.simulate import Label, Scenario, generate, render
from streams.produce import produce
from streams.settings import WorkerSettings, load_settings
from tests.integration.kafka_rules import StrictKafka, strict_classes

logging.getLogger("kafka").setLevel(logging.CRITICAL)

#: The broker of this session: an external one, or the port the local Tansu will listen on.
EXTERNAL_BOOTSTRAP = os.environ.get("CTINSIGHTS_TEST_BOOTSTRAP")
BROKER_PORT = int(EXTERNAL_BOOTSTRAP.rsplit(":", 1)[1]) if EXTERNAL_BOOTSTRAP else free_port()
#: The client-facing port of the broker behind a fault-injecting proxy (``test_outage``).
PROXY_PORT = free_port()


def _broker_socket_leak_filters(*ports: int) -> list[pytest.MarkDecorator]:
    """Tolerate kafka-python 3.0.12 dropping a socket *to the broker* without closing it.

    Its ``sock_connect`` coroutine holds a freshly connected socket while it waits for
    writability; when the client closes (or the connect times out) at that instant the coroutine
    is abandoned and the socket is reclaimed by the garbage collector, which warns. Only sockets
    whose peer is one of this session's broker ports are ignored; any other unclosed socket (our
    own HTTP servers, webhook clients, metrics scrapes) still fails the test run.
    """
    alternatives = "|".join(str(port) for port in ports)
    peer = rf"<socket\.socket [^>]*raddr=\('127\.0\.0\.1', ({alternatives})\)>"
    return [
        pytest.mark.filterwarnings(f"ignore:unclosed {peer}:ResourceWarning"),
        pytest.mark.filterwarnings(
            f"ignore:Exception ignored in. {peer}:pytest.PytestUnraisableExceptionWarning"
        ),
    ]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    leak_filters = _broker_socket_leak_filters(BROKER_PORT, PROXY_PORT)
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.integration)
        for mark in leak_filters:  # a leaked socket may be collected during any later test
            item.add_marker(mark)


@pytest.fixture(scope="session")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a running broker for the whole session."""
    if EXTERNAL_BOOTSTRAP:
        yield EXTERNAL_BOOTSTRAP
        return
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    broker = LocalBroker(port=BROKER_PORT, log_path=log).start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@dataclass(frozen=True)
class Dataset:
    """A labelled simulated stream and what an uninterrupted streaming run must emit."""

    lines: list[bytes]
    labels: list[Label]
    expected: frozenset[bytes]


@pytest.fixture(scope="session")
def dataset() -> Dataset:
    """3 days, 2 accounts x 2 Regions, the 7 anomaly kinds on day 2 (~27k records)."""
    scenario = Scenario(days=3, reads_per_minute=0.5, anomaly_day=2)
    lines = list(render(generate(scenario)))
    engine = InsightEngine(EngineConfig())
    expected: list[bytes] = []
    for start in range(0, len(lines), 4096):
        events = [e for line in lines[start : start + 4096] for e in decode_message(line).events]
        expected.extend(r.to_json() for r in engine.process_many(events))
    return Dataset(lines=lines, labels=scenario.labels, expected=frozenset(expected))


def unique(prefix: str) -> str:
    """A topic or group name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()


def produce_lines(bootstrap: str, topic: str, lines: list[bytes], **options: Any) -> None:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024, **options
    )
    try:
        produce(producer, topic, lines)
    finally:
        producer.close()


def read_topic(bootstrap: str, topic: str, settle: float = 2.0, timeout: float = 60.0) -> list[Any]:
    """Every message of a topic (read to its high-water marks)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + timeout
        partitions: set[int] | None = None
        while time.monotonic() < deadline and not partitions:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                consumer.topics()
                time.sleep(0.2)
        assert partitions, f"topic {topic} not found"
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        out: list[Any] = []
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=300)
            for messages in batch.values():
                out.extend(messages)
            if batch:
                quiet_since = time.monotonic()
            caught_up = all(
                consumer.highwater(tp) is not None
                and consumer.position(tp) >= consumer.highwater(tp)
                for tp in tps
            )
            if caught_up and time.monotonic() - quiet_since >= settle:
                return out
        raise AssertionError(f"timed out reading {topic}")
    finally:
        consumer.close()


def assert_exactly_expected(bootstrap: str, output: str, dataset: Dataset) -> None:
    """The output topic holds exactly an uninterrupted run's Insight records, none twice."""
    values = [m.value for m in read_topic(bootstrap, output)]
    duplicates = {v: n for v, n in Counter(values).items() if n > 1}
    assert not duplicates, f"{len(duplicates)} insight records were produced twice"
    assert set(values) == dataset.expected


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    counts: dict[int, int] = {}
    for message in read_topic(bootstrap, topic, settle=0.5):
        counts[message.partition] = max(counts.get(message.partition, 0), message.offset + 1)
    return counts


def wait_committed(
    bootstrap: str, group: str, topic: str, ends: dict[int, int], timeout: float = 120.0
) -> None:
    """Wait until the group's committed offsets reach ``ends`` (the worker caught up)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = all(
                (consumer.committed(TopicPartition(topic, p)) or 0) >= end
                for p, end in ends.items()
            )
            if done:
                return
            time.sleep(0.5)
        raise AssertionError(f"group {group} did not catch up to {ends}")
    finally:
        consumer.close()


def worker_settings(bootstrap: str, topic: str, **extra: object) -> WorkerSettings:
    """Settings of an in-process worker of its own group on ``topic``."""
    return load_settings(
        None,
        bootstrap_servers=bootstrap,
        input_topics=[topic],
        output_topic=f"{topic}-out",
        dead_letter_topic=f"{topic}-dlq",
        group_id=unique("g"),
        metrics_port=None,
        checkpoint_interval_seconds=1.0,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        **extra,
    )


class WorkerProcess:
    """``ctinsights run`` in a subprocess (so it can be killed with SIGKILL)."""

    def __init__(
        self, bootstrap: str, topic: str, output: str, group: str, log: Path, *extra: str
    ) -> None:
        self.metrics_port = free_port()
        self.command = [
            sys.executable,
            "-m",
            "streams",
            "run",
            "--bootstrap-servers",
            bootstrap,
            "--input-topic",
            topic,
            "--output-topic",
            output,
            "--dead-letter-topic",
            f"{output}-dlq",
            "--group-id",
            group,
            "--metrics-host",
            "127.0.0.1",
            "--metrics-port",
            str(self.metrics_port),
            "--checkpoint-interval-seconds",
            "1",
            *extra,
        ]
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, **env_extra: str) -> WorkerProcess:
        env = {
            **os.environ,
            "CTINSIGHTS_SESSION_TIMEOUT_MS": "6000",
            "CTINSIGHTS_HEARTBEAT_INTERVAL_MS": "1000",
            # small polls: more checkpoints and more instants to crash at
            "CTINSIGHTS_MAX_POLL_RECORDS": "100",
            **env_extra,
        }
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=log, env=env)
        return self

    def wait_ready(self, timeout: float = 120.0) -> WorkerProcess:
        """Wait until ``/readyz`` answers 200: signal handlers installed, partitions restored."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.metrics_port}/readyz"
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"worker exited with {self.process.returncode}"
            try:
                with urllib.request.urlopen(url, timeout=1.0) as response:
                    if response.status == 200:
                        return self
            except OSError:  # not listening yet, or 503 while restoring
                pass
            time.sleep(0.2)
        raise AssertionError(f"worker not ready within {timeout} s")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 40.0) -> int:
        """SIGTERM and wait: the worker drains, checkpoints and exits."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@pytest.fixture
def strict_kafka(monkeypatch: pytest.MonkeyPatch) -> StrictKafka:
    """In-process workers produce and create topics through Apache Kafka's record rules."""
    rules = StrictKafka()
    producer, admin = strict_classes(rules)
    monkeypatch.setattr("streams.worker.clients.KafkaProducer", producer)
    monkeypatch.setattr("streams.worker.clients.KafkaAdminClient", admin)
    return rules


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    """Worker processes a test starts; any left running are stopped at the end."""
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        if worker.alive():
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.stop(20)
