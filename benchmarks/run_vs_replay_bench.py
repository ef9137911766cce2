"""``ctinsights run`` against ``ctinsights replay`` on the same file, as a user runs them.

    .venv/bin/python benchmarks/run_vs_replay_bench.py [--events 200000] [--runs 3]
        [--partitions 4] [--layouts skewed-single,skewed-batch-lz4,even-single,even-batch-lz4]

A simulated CloudTrail stream (~1.5 KB records) is written to a file. ``skewed``: one
account-Region carries most of the events (the shares are printed), three others share the
rest (the normal case of an organization); ``even``: eight account-Regions alike. Per layout,
``ctinsights produce`` (a process) loads the file into a ``--partitions`` topic of the local
broker, keyed by account/Region, as single-record messages or ``{"Records": [...]}`` batches
of 100, plain or lz4. Then, ``--runs`` times: ``ctinsights run`` (a process, its own consumer
group) reads the topic from the start while its ``/metrics`` are sampled every 0.05 s, and
``ctinsights replay`` of the same file (a process) is timed right after. Reported per layout,
medians over the runs:

* the worker's events/s from its first event to its last (``ctinsights_events_read_total``);
* per phase: while more than one partition has lag, and once one partition is left (the tail);
* replay's events/s (whole process, start-up included), and each run's ratio run/replay;
* CPU seconds per second of wall time of the worker process and of the broker while the
  worker reads (the machine has two cores: their sum near 2 means the cores are the limit);
* a bare kafka-python loop (``poll`` and count, the worker's fetch settings) on the same topic
  in the same run: the client's own ceiling.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import NewTopic

from streams.lab.broker import LocalBroker, free_port
from streams.lab.simulate import Scenario, generate, render

_CLI = [sys.executable, "-m", "streams"]
_SAMPLE_SECONDS = 0.05
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Layout:
    name: str
    skewed: bool
    batch: int
    compression: str


LAYOUTS = {
    f"{skew}-{shape}{'-lz4' if lz4 else ''}": Layout(
        f"{skew}-{shape}{'-lz4' if lz4 else ''}", skew == "skewed", batch, "lz4" if lz4 else "none"
    )
    for skew in ("skewed", "even")
    for shape, batch in (("single", 1), ("batch", 100))
    for lz4 in (False, True)
}


def write_stream(path: Path, events: int, skewed: bool) -> int:
    """Simulate ``events`` events into ``path`` (JSON lines); return the count written.

    Each stream is simulated over four days and the merged stream is thinned evenly to
    ``events`` (every stream keeps its share and its whole time span).
    """
    days = 4
    if skewed:
        busy = Scenario(
            seed=11,
            days=days,
            accounts=("111122223333",),
            regions=("us-east-1",),
            reads_per_minute=70.0,
        )
        quiet = Scenario(
            seed=12,
            days=days,
            accounts=("444455556666",),
            regions=("us-east-1", "eu-west-1", "ap-south-1"),
            reads_per_minute=1.0,
        )
        parts = [generate(busy), generate(quiet)]
    else:
        even = Scenario(
            seed=13,
            days=days,
            accounts=("111122223333", "444455556666", "777788889999", "121212121212"),
            regions=("us-east-1", "eu-west-1"),
            reads_per_minute=9.0,
        )
        parts = [generate(even)]
    merged = sorted((e for part in parts for e in part), key=lambda e: e.seconds)
    if len(merged) < events:
        raise SystemExit(f"the scenario has {len(merged)} events, fewer than --events {events}")
    step = len(merged) / events
    chosen = [merged[int(i * step)] for i in range(events)]
    streams = Counter((e.account, e.region) for e in chosen)
    analysed = sum(1 for e in chosen if not e.read_only or e.error) / len(chosen)
    print(
        f"# {path.stem}: {len(chosen):,} events, {len(streams)} account-Regions, the busiest "
        f"{max(streams.values()) / len(chosen):.0%}, {analysed:.0%} analysed calls",
        flush=True,
    )
    with open(path, "wb") as out:
        for line in render(chosen, seed=5):
            out.write(line + b"\n")
    return len(chosen)


def produce(bootstrap: str, topic: str, path: Path, partitions: int, layout: Layout) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, partitions, 1)])
    admin.close()
    command = [*_CLI, "produce", str(path), "--topic", topic, "--bootstrap-servers", bootstrap]
    command += ["--batch", str(layout.batch), "--compression", layout.compression]
    subprocess.run(command, check=True, capture_output=True, timeout=1800)


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
        text: str = response.read().decode()
        return text


def _value(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def _lags(text: str) -> list[float]:
    return [
        float(v)
        for v in re.findall(r"^ctinsights_consumer_lag_messages\{[^}]*\} (\S+)$", text, re.M)
    ]


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


@dataclass
class RunResult:
    rate: float
    busy_rate: float | None
    tail_rate: float | None
    replay_rate: float
    bare_rate: float
    worker_cpu: float
    broker_cpu: float


def run_worker(bootstrap: str, topic: str, total: int, broker_pid: int) -> tuple[float, ...]:
    """``ctinsights run`` until it has read ``total`` events; its rates and CPU use."""
    port = free_port()
    group = f"bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as state:
        command = [*_CLI, "run", "--bootstrap-servers", bootstrap, "--input-topic", topic]
        command += ["--output-topic", f"{topic}-out", "--dead-letter-topic", f"{topic}-dlq"]
        command += ["--group-id", group, "--metrics-host", "127.0.0.1", "--metrics-port"]
        command += [str(port), "--checkpoint-store", "directory", "--state-dir", state]
        worker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples: list[tuple[float, float, int, float, float]] = []  # t, events, busy, cpu, cpu
        try:
            deadline = time.monotonic() + 900
            while time.monotonic() < deadline:
                time.sleep(_SAMPLE_SECONDS)
                try:
                    text = _metrics(port)
                except OSError:
                    continue
                events = _value(text, "ctinsights_events_read_total")
                busy = sum(1 for lag in _lags(text) if lag > 0)
                now = time.monotonic()
                samples.append((now, events, busy, _cpu(worker.pid), _cpu(broker_pid)))
                if events >= total:
                    break
            else:
                raise RuntimeError("the worker did not read the whole topic in 15 minutes")
        finally:
            worker.terminate()
            worker.wait(60)
    start = max(i for i, s in enumerate(samples) if s[1] == 0 or i == 0)
    reading = samples[start:]
    first, last = reading[0], reading[-1]
    seconds = last[0] - first[0]
    phase: dict[str, list[tuple[float, float]]] = {"busy": [], "tail": []}
    for before, after in itertools.pairwise(reading):
        key = "busy" if before[2] > 1 else "tail"
        phase[key].append((after[0] - before[0], after[1] - before[1]))

    def rate(parts: list[tuple[float, float]]) -> float:
        wall = sum(p[0] for p in parts)
        return sum(p[1] for p in parts) / wall if wall > 0.5 else float("nan")

    return (
        total / seconds,
        rate(phase["busy"]),
        rate(phase["tail"]),
        (last[3] - first[3]) / seconds,
        (last[4] - first[4]) / seconds,
    )


def run_bare(bootstrap: str, topic: str, total: int) -> float:
    """Messages/s of a consumer that only polls, with the worker's fetch settings."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bare-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=16 << 20,
        fetch_max_bytes=64 << 20,
        fetch_max_wait_ms=50,
        max_poll_records=2000,
    )
    try:
        seen, started = 0, 0.0
        deadline = time.monotonic() + 900
        while seen < total and time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=200)
            if batch and not started:
                started = time.monotonic()
            seen += sum(len(messages) for messages in batch.values())
        return seen / (time.monotonic() - started)
    finally:
        consumer.close()


def run_replay(path: Path, total: int) -> float:
    started = time.monotonic()
    subprocess.run(
        [*_CLI, "replay", str(path), "-o", os.devnull],
        check=True,
        capture_output=True,
        timeout=1800,
    )
    return total / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--layouts", default="skewed-single,skewed-batch-lz4,even-single,even-batch-lz4"
    )
    args = parser.parse_args()
    print(f"{args.events:,} events, {args.partitions} partitions, medians of {args.runs} runs")
    print(
        f"{'layout':<18} {'run ev/s':>9} {'busy':>9} {'tail':>9} {'replay':>9} {'ratio':>6}"
        f" {'bare':>9}  {'cpu run':>7} {'broker':>6}  ratios"
    )
    with tempfile.TemporaryDirectory() as scratch:
        files: dict[bool, tuple[Path, int]] = {}
        for name in args.layouts.split(","):
            layout = LAYOUTS[name]
            if layout.skewed not in files:
                path = Path(scratch) / f"{'skewed' if layout.skewed else 'even'}.jsonl"
                files[layout.skewed] = (path, write_stream(path, args.events, layout.skewed))
            path, total = files[layout.skewed]
            broker = LocalBroker(port=free_port(), log_path=Path(scratch) / f"{name}.log").start()
            try:
                produce(broker.bootstrap, name, path, args.partitions, layout)
                results = []
                for _ in range(args.runs):
                    run = run_worker(broker.bootstrap, name, total, broker.pid)
                    replay = run_replay(path, total)
                    messages = total if layout.batch == 1 else -(-total // layout.batch)
                    bare = run_bare(broker.bootstrap, name, messages) * total / messages
                    results.append(RunResult(run[0], run[1], run[2], replay, bare, *run[3:]))
            finally:
                broker.stop()

            def median(values: list[float | None]) -> float:
                kept = [v for v in values if v is not None and v == v]
                return statistics.median(kept) if kept else float("nan")

            ratios = [r.rate / r.replay_rate for r in results]
            print(
                f"{name:<18} {median([r.rate for r in results]):>9,.0f}"
                f" {median([r.busy_rate for r in results]):>9,.0f}"
                f" {median([r.tail_rate for r in results]):>9,.0f}"
                f" {median([r.replay_rate for r in results]):>9,.0f}"
                f" {statistics.median(ratios):>6.2f}"
                f" {median([r.bare_rate for r in results]):>9,.0f}"
                f"  {median([r.worker_cpu for r in results]):>7.2f}"
                f" {median([r.broker_cpu for r in results]):>6.2f}"
                f"  {' '.join(f'{x:.2f}' for x in ratios)}",
                flush=True,
            )


if __name__ == "__main__":
    main()
