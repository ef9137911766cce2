"""Kill -9 at named points across a worker's life, with both cores kept busy.

Each case produces the labelled stream into 2 partitions, runs a worker that kills itself at
one point (``streams.failpoints``: during the group join by the clock, right after an
assignment before anything is processed, between a checkpoint with Insights and their produce,
during a revoke, during the shutdown drain), then a clean worker to the end. The output topic
must hold exactly an uninterrupted run's Insights, none twice; the webhook and file sinks must
still deliver every Insight after a kill mid-delivery. Two busy processes load both
cores the whole time (CPU contention is what exposed the lost-records bug); they are bounded in
time and stopped by PID.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.sinks import read_insight_files
from streams.sinks.files import read_context
from tests.integration.conftest import (
    Dataset,
    WorkerProcess,
    assert_exactly_expected,
    create_topic,
    end_offsets,
    read_topic,
    unique,
    wait_committed,
)
from tests.integration.test_recovery import produce_cli
from tests.integration.test_worker import replay_contexts
from tests.unit.streams.test_sinks import Receiver

_BUSY = "import time\nend = time.monotonic() + 600\nwhile time.monotonic() < end:\n    pass\n"


@pytest.fixture
def cpu_contention() -> Iterator[None]:
    """Two busy-looping processes (one per core here), for at most 10 minutes each."""
    busy = [subprocess.Popen([sys.executable, "-c", _BUSY]) for _ in range(2)]
    try:
        yield
    finally:
        for process in busy:
            process.kill()
            process.wait(10)


def _dies(worker: WorkerProcess, seed: int, point: str, timeout: float = 120.0) -> None:
    assert worker.process is not None
    try:
        code = worker.process.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"seed {seed}: the worker never reached {point}") from None
    assert code == -9, f"seed {seed}: the worker exited with {code} before {point}"


@pytest.mark.usefixtures("cpu_contention")
@pytest.mark.parametrize(
    ("point", "seed"),
    [
        ("join", 1),
        ("assigned", 2),
        ("before_produce", 3),
        ("before_produce", 4),
        ("revoking", 5),
        ("draining", 6),
    ],
)
def test_kill_9_at_each_point_of_a_workers_life_loses_and_duplicates_nothing(
    bootstrap: str,
    dataset: Dataset,
    tmp_path: Path,
    workers: list[WorkerProcess],
    point: str,
    seed: int,
) -> None:
    rng = random.Random(seed)
    topic, group = unique("ct"), unique("g")
    output = f"{topic}-out"
    create_topic(bootstrap, topic, 2)
    # hostile messages spread through the stream: each must reach the dead-letter topic
    lines = list(dataset.lines)
    for i, line in enumerate(_hostile()):
        lines.insert((i + 1) * len(lines) // 6, line)
    produce_cli(bootstrap, topic, lines, tmp_path)
    ends = end_offsets(bootstrap, topic)
    log = tmp_path / "worker.log"
    insight_dir = tmp_path / "insights"

    def worker(**env: str) -> WorkerProcess:
        process = WorkerProcess(bootstrap, topic, output, group, log)
        started = process.start(CTINSIGHTS_INSIGHT_DIR=str(insight_dir), **env)
        workers.append(started)
        return started

    if point == "join":  # by the clock: somewhere in the first join, assignment and restore
        doomed = worker()
        time.sleep(rng.uniform(0.5, 3.0))
        doomed.kill()
    elif point == "revoking":  # a second member joins and takes partitions away
        doomed = worker(CTINSIGHTS_FAILPOINT="revoking")
        doomed.wait_ready()
        time.sleep(rng.uniform(0.0, 2.0))
        worker()
        _dies(doomed, seed, point)
    elif point == "draining":
        doomed = worker(CTINSIGHTS_FAILPOINT="draining")
        doomed.wait_ready()
        time.sleep(rng.uniform(0.5, 3.0))
        doomed.stop()
        _dies(doomed, seed, point)
    else:
        nth = rng.randint(1, 3) if point == "before_produce" else 1
        _dies(worker(CTINSIGHTS_FAILPOINT=f"{point}:{nth}"), seed, f"{point}:{nth}")
    final = worker()
    final.wait_ready()
    wait_committed(bootstrap, group, topic, ends, timeout=240)
    for process in workers:
        if process.alive():
            assert process.stop() == 0, f"seed {seed}: a worker did not stop cleanly"
    assert_exactly_expected(bootstrap, output, dataset)
    # every insight's context file is the one an uninterrupted replay issues last
    ids = {json.loads(value)["sharedEventID"] for value in dataset.expected}
    contexts = {sid: read_context(insight_dir, sid) for sid in ids}
    assert contexts == replay_contexts(dataset.lines), f"seed {seed}: contexts differ"
    dead = {m.value for m in read_topic(bootstrap, f"{output}-dlq")}
    missing = [line for line in _hostile() if line not in dead]
    assert not missing, f"seed {seed}: not dead-lettered: {missing}"


def _hostile() -> list[bytes]:
    """Messages of which nothing is usable (the dead-letter topic holds them unchanged)."""
    return [
        b"not json at all",
        b'{"eventTime": 5, "eventName": "CreateUser"}',
        b"\xff\xfe broken utf-8",
        b'{"eventTime": "2024-01-02T03:04:05Z", "awsRegion": "us-east-1"}',
    ]


@pytest.mark.usefixtures("cpu_contention")
def test_sinks_deliver_every_insight_after_a_kill_9_mid_delivery(
    bootstrap: str, dataset: Dataset, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    topic, group = unique("ct"), unique("g")
    output = f"{topic}-out"
    create_topic(bootstrap, topic, 2)
    produce_cli(bootstrap, topic, dataset.lines, tmp_path)
    ends = end_offsets(bootstrap, topic)
    receiver = Receiver(delay=0.3).start()  # slow: deliveries are in flight at the kill
    sinks = {
        "CTINSIGHTS_WEBHOOKS": json.dumps(
            [{"name": "siem", "url": receiver.url, "backoff_seconds": 0.05}]
        ),
        "CTINSIGHTS_INSIGHT_DIR": str(tmp_path / "insights"),
    }
    expected = {json.loads(v)["eventID"] for v in dataset.expected}
    log = tmp_path / "worker.log"
    try:
        first = WorkerProcess(bootstrap, topic, output, group, log).start(**sinks)
        workers.append(first)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(receiver.bodies) < 3:
            time.sleep(0.05)
        assert receiver.bodies, "no delivery started before the kill"
        first.kill()
        final = WorkerProcess(bootstrap, topic, output, group, log).start(**sinks)
        workers.append(final)
        wait_committed(bootstrap, group, topic, ends, timeout=240)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _ids(receiver.bodies) < expected:
            time.sleep(0.2)
        assert final.stop() == 0
    finally:
        receiver.stop()
    assert _ids(receiver.bodies) == expected  # at-least-once: repeats allowed, nothing missing
    files = read_insight_files(tmp_path / "insights")
    assert sorted(r["eventID"] for r in files) == sorted(expected)  # a re-delivery replaces


def _ids(bodies: list[bytes]) -> set[str]:
    return {json.loads(body)["eventID"] for body in list(bodies)}
