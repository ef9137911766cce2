"""Crashes and scale-out: the output topic always ends with exactly an uninterrupted run's set."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from tests.integration.conftest import (
    Dataset,
    WorkerProcess,
    assert_exactly_expected,
    create_topic,
    end_offsets,
    unique,
    wait_committed,
)


def produce_cli(
    bootstrap: str, topic: str, lines: list[bytes], tmp_path: Path, *extra: str
) -> subprocess.CompletedProcess[bytes]:
    """``ctinsights produce`` of ``lines`` as a process; its outcome."""
    source = tmp_path / f"{topic}.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "streams",
            "produce",
            str(source),
            "--topic",
            topic,
            "--bootstrap-servers",
            bootstrap,
            *extra,
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )


def committed_total(consumer: KafkaConsumer, topic: str, partitions: int) -> int:
    return sum(consumer.committed(TopicPartition(topic, p)) or 0 for p in range(partitions))


def test_kill_9_at_random_points_loses_and_duplicates_nothing(
    bootstrap: str, dataset: Dataset, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    topic, group = unique("ct"), unique("g")
    output = f"{topic}-out"
    create_topic(bootstrap, topic, 2)
    lines = dataset.lines
    rng = random.Random(2024)
    kills = produced = 0
    watcher = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        # the input arrives in three parts, one before each worker: however fast the worker,
        # the first two cannot reach the end of the stream before they are killed
        for fraction, part_end in ((0.15, 0.4), (0.45, 0.7), (0.75, 1.0)):
            upto = int(part_end * len(lines))
            produce_cli(bootstrap, topic, lines[produced:upto], tmp_path)
            produced = upto
            worker = WorkerProcess(bootstrap, topic, output, group, tmp_path / "worker.log").start()
            workers.append(worker)
            # kill -9 once the committed progress passes the fraction, plus a random instant
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if committed_total(watcher, topic, 2) >= fraction * len(lines):
                    break
                time.sleep(0.1)
            time.sleep(rng.uniform(0.0, 0.7))
            if committed_total(watcher, topic, 2) >= len(lines):
                worker.stop()
                break
            worker.kill()
            kills += 1
    finally:
        watcher.close()
    ends = end_offsets(bootstrap, topic)
    assert sum(ends.values()) == len(lines)  # one message per record
    assert kills >= 2
    final = WorkerProcess(bootstrap, topic, output, group, tmp_path / "worker.log").start()
    workers.append(final)
    # the killed workers may have committed everything already: the final one must still be
    # up (its SIGTERM handler installed) before it is asked to stop cleanly
    final.wait_ready()
    wait_committed(bootstrap, group, topic, ends, timeout=180)
    assert final.stop() == 0
    assert_exactly_expected(bootstrap, output, dataset)


def test_two_workers_split_partitions_and_take_over(
    bootstrap: str, dataset: Dataset, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    topic, group = unique("ct"), unique("g")
    output = f"{topic}-out"
    create_topic(bootstrap, topic, 4)
    half = len(dataset.lines) // 2
    produce_cli(bootstrap, topic, dataset.lines[:half], tmp_path)
    state = ("--checkpoint-store", "directory", "--state-dir", str(tmp_path / "state"))
    a = WorkerProcess(bootstrap, topic, output, group, tmp_path / "a.log", *state).start()
    b = WorkerProcess(bootstrap, topic, output, group, tmp_path / "b.log", *state).start()
    workers.extend([a, b])
    wait_committed(bootstrap, group, topic, end_offsets(bootstrap, topic), timeout=180)
    owned = {w: _partitions_owned(w) for w in (a, b)}
    assert owned[a] + owned[b] == 4, owned
    assert min(owned.values()) >= 1, owned
    assert b.stop() == 0  # a takes over b's partitions from their checkpoints
    produce_cli(bootstrap, topic, dataset.lines[half:], tmp_path)
    wait_committed(bootstrap, group, topic, end_offsets(bootstrap, topic), timeout=180)
    assert _partitions_owned(a) == 4
    assert a.stop() == 0
    assert_exactly_expected(bootstrap, output, dataset)


def _partitions_owned(worker: WorkerProcess) -> int:
    import urllib.request

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}/metrics") as resp:
            for line in resp.read().decode().splitlines():
                if line.startswith("ctinsights_partitions_assigned "):
                    return int(float(line.split()[1]))
        time.sleep(0.5)
    raise AssertionError("no partitions metric")
