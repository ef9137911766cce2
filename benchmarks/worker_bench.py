"""Worker throughput from a local broker, as a ratio to a bare kafka-python consume loop.

    .venv/bin/python benchmarks/worker_bench.py [--records 60000] [--batch-records 300000]
        [--days 12] [--runs 5] [--keys 100000] [--reads-per-minute 6]
        [--layouts single,single-lz4,batch,batch-lz4] [--no-extras] [--threads] [--parts]

For each input layout (one record per message, or ``{"Records": [...]}`` batches of 100;
uncompressed and lz4) the same topic is read by a bare ``KafkaConsumer`` loop and then by the
worker (decode, dead-letter check, engine, checkpoints), ``--runs`` times, each on a new topic.
Each layout gets a broker of its own (the local broker's in-memory store is never freed, and a
later layout should not pay for an earlier one's messages). Reported: the median rates, and the
median of the runs' ratios (each run's worker rate over the bare rate measured just before it,
so a slow spell of this shared machine hits both sides of a ratio) with every run's ratio. The
batch layouts read ``--batch-records`` records (as many as the ``--days`` of the scenario have,
if fewer): 30,000 records in batches are only 300 messages, read in under 0.1 s, too short a
run to time on a shared machine. Also:
wall-clock latency from producing the minute that closes a burst to its Insight on the output
topic, and checkpoint size and time for ``--keys`` tracked keys. With ``--threads`` (Linux),
the CPU time per record of each thread over the timed part, bare loop and worker, and of the
broker: medians over the runs, in µs per record. With ``--parts``, each run also times the
worker with an engine that drops the decoded events (the worker's Kafka and decoding side
alone), reported as the median ratio of that to the bare loop: what the engine costs the
worker.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, cast

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from insights import EngineConfig, InsightEngine, InsightRecord, decode_many, decode_message
from streams.checkpoints import Checkpoint, DirectoryStore
from streams.lab.broker import LocalBroker
from streams.lab.simulate import Scenario, generate, render
from streams.settings import WorkerSettings, load_settings
from streams.worker import Worker

logging.getLogger("kafka").setLevel(logging.CRITICAL)


def bench_settings(bootstrap: str, topic: str, state: Path) -> WorkerSettings:
    """A worker of its own group on ``topic``, checkpoints in ``state``, no metrics server."""
    return load_settings(
        None,
        bootstrap_servers=bootstrap,
        input_topics=[topic],
        output_topic=f"{topic}-out",
        group_id=f"g-{uuid.uuid4().hex[:6]}",
        metrics_port=None,
        checkpoint_store="directory",
        state_dir=state,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )


def fill(
    bootstrap: str, topic: str, lines: list[bytes], batch: int, compression: str | None
) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 1, 1)])
    admin.close()
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=20,
        batch_size=512 * 1024,
        compression_type=compression,
        max_request_size=8 * 1024 * 1024,
    )
    messages = 0
    for start in range(0, len(lines), batch):
        chunk = lines[start : start + batch]
        value = chunk[0] if batch == 1 else b'{"Records":[' + b",".join(chunk) + b"]}"
        producer.send(topic, value=value)
        messages += 1
    producer.flush()
    producer.close()
    return messages


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(stat: str) -> float:
    """User + system CPU seconds from a ``/proc/.../stat`` file (0 if it has gone)."""
    try:
        with open(stat) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


class CpuMeter:
    """CPU seconds of this process's threads (by role) and of the broker over a timed span.

    Roles: ``calling`` (the thread that polls), ``kafka IO`` (kafka-python 3's IO threads),
    ``native`` (threads Python does not know: the accelerator's reader), else the thread's name
    without digits. Threads that end inside the span are not counted."""

    def __init__(self, broker_pid: int) -> None:
        self.broker_pid = broker_pid
        self.calling: int | None = None
        self._threads: dict[int, float] = {}
        self._broker = 0.0
        self.spent: dict[str, float] = {}

    @staticmethod
    def _sample() -> dict[int, float]:
        return {
            int(tid): _cpu_seconds(f"/proc/self/task/{tid}/stat")
            for tid in os.listdir("/proc/self/task")
        }

    def start(self, calling: int) -> None:
        self.calling = calling
        self._threads = self._sample()
        self._broker = _cpu_seconds(f"/proc/{self.broker_pid}/stat")

    def stop(self) -> None:
        """Set :attr:`spent`: CPU seconds per role since :meth:`start`."""
        now = self._sample()
        names = {t.native_id: t.name for t in threading.enumerate()}
        used: dict[str, float] = {}
        for tid, seconds in now.items():
            spent = seconds - self._threads.get(tid, 0.0)
            if spent <= 0:
                continue
            name = names.get(tid)
            if tid == self.calling:
                role = "calling"
            elif name is None:
                role = "native"
            elif name.startswith("kafka-io"):
                role = "kafka IO"
            else:
                role = "".join(c for c in name if not c.isdigit()).strip("-_ ") or "other"
            used[role] = used.get(role, 0.0) + spent
        used["broker"] = _cpu_seconds(f"/proc/{self.broker_pid}/stat") - self._broker
        self.spent = used


def bare(bootstrap: str, topic: str, messages: int, meter: CpuMeter | None = None) -> float:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=16 << 20,
        fetch_max_bytes=64 << 20,
    )
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek(tp, 0)
    consumer.topics()  # connected before the clock starts
    seen = 0
    if meter is not None:
        meter.start(threading.get_native_id())
    started = time.perf_counter()
    while seen < messages:
        for batch in consumer.poll(timeout_ms=500, max_records=2000).values():
            seen += len(batch)
    elapsed = time.perf_counter() - started
    if meter is not None:
        meter.stop()
    consumer.close()
    return elapsed


class _TimedWorker(Worker):
    """The worker, telling when it has processed the topic's last message (no polling of its
    metrics from the benchmark's thread, which would take CPU and the GIL from the worker)."""

    def __init__(self, settings: WorkerSettings, last_offset: int) -> None:
        super().__init__(settings)
        self.last_offset = last_offset
        self.finished = threading.Event()

    def _process(self, tp: TopicPartition, messages: list[Any]) -> None:
        super()._process(tp, messages)
        if messages and messages[-1].offset >= self.last_offset:
            self.finished.set()


class _DroppingEngine:
    """The engine of a --parts run: takes the decoded events and drops them."""

    def __init__(self, engine: InsightEngine) -> None:
        self._engine = engine

    def process_many(self, events: list[Any], **_: object) -> list[InsightRecord]:
        return []

    def drain(self) -> list[InsightRecord]:
        return []

    def __getattr__(self, name: str) -> Any:  # stats, keys, state: the real (empty) engine's
        return getattr(self._engine, name)


class _TimedDecodingWorker(_TimedWorker):
    """The timed worker without detection: Kafka, decoding, checkpoints."""

    def _restore(self, tp: TopicPartition) -> None:
        super()._restore(tp)
        part = self._parts[tp]
        part.engine = cast(InsightEngine, _DroppingEngine(part.engine))


def worker_run(
    bootstrap: str,
    topic: str,
    messages: int,
    state: Path,
    meter: CpuMeter | None = None,
    *,
    engine: bool = True,
) -> float:
    """Seconds from the worker's partition being restored to its last message processed."""
    kind = _TimedWorker if engine else _TimedDecodingWorker
    worker = kind(bench_settings(bootstrap, topic, state), last_offset=messages - 1)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    while not worker.health.snapshot()["restored"]:  # joined the group, partition restored
        time.sleep(0.002)
    if meter is not None:
        assert thread.native_id is not None
        meter.start(thread.native_id)
    started = time.perf_counter()
    if not worker.finished.wait(600):
        raise RuntimeError("the worker did not process the topic within 600 s")
    elapsed = time.perf_counter() - started
    if meter is not None:
        meter.stop()
    worker.stop_event.set()
    thread.join(60)
    return elapsed


def checkpoint_cost(keys: int, state: Path) -> tuple[int, float, float]:
    engine = InsightEngine(EngineConfig())
    line = (
        b'{"eventTime": "2024-01-01T00:00:%02dZ", "eventSource": "ec2.amazonaws.com", '
        b'"eventName": "Api%d", "awsRegion": "us-east-1", "recipientAccountId": "1", '
        b'"readOnly": false, "managementEvent": true}'
    )
    events = [decode_message(line % (i % 60, i)).events[0] for i in range(keys)]
    engine.process_many(events)
    started = time.perf_counter()
    snapshot = engine.save_state()
    snap_time = time.perf_counter() - started
    started = time.perf_counter()
    size = DirectoryStore(state).save(Checkpoint("t", 0, 0, snapshot))
    return size, snap_time, time.perf_counter() - started


def burst_latency(bootstrap: str, state: Path) -> float:
    """Seconds from producing the events that close a burst's minute to its Start on the output."""
    topic = f"lat-{uuid.uuid4().hex[:6]}"
    scenario = Scenario(days=2, reads_per_minute=0.5, anomaly_day=1, anomalies=("iam_burst",))
    events = generate(scenario)
    onset = scenario.labels[0].onset
    lines = list(render(events))
    cut = next(i for i, ev in enumerate(events) if ev.seconds >= onset + 120)
    fill(bootstrap, topic, lines[:cut], 1, None)
    settings = bench_settings(bootstrap, topic, state)
    arrived = threading.Event()

    def on_insight(record: InsightRecord) -> None:
        if record.state == "Start" and record.key.event_source == "iam.amazonaws.com":
            arrived.set()

    worker = Worker(settings, on_insight=on_insight)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    # the burst is in the topic but its minutes close only when later events pass the lateness
    while not worker.health.snapshot()["restored"]:
        time.sleep(0.01)
    time.sleep(3)
    assert not arrived.is_set(), "the burst was detected before its closing events were sent"
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    started = time.perf_counter()
    for line in lines[cut : cut + 600]:
        producer.send(topic, value=line)
    producer.flush()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    out = TopicPartition(f"{topic}-out", 0)
    consumer.assign([out])
    consumer.seek(out, 0)
    latency = float("nan")
    deadline = time.perf_counter() + 60
    while time.perf_counter() < deadline and latency != latency:
        for messages in consumer.poll(timeout_ms=50).values():
            if any(b'"iam.amazonaws.com"' in m.value and b'"Start"' in m.value for m in messages):
                latency = time.perf_counter() - started
    consumer.close()
    producer.close()
    worker.stop_event.set()
    thread.join(60)
    return latency


LAYOUTS = {
    "single": (1, None),
    "single-lz4": (1, "lz4"),
    "batch": (100, None),
    "batch-lz4": (100, "lz4"),
}


def per_record(runs: list[dict[str, float]], records: int) -> str:
    """Medians over the runs of each role's seconds, as µs per record (0 where a run lacks it)."""
    roles = sorted({role for run in runs for role in run}, key=lambda r: (r != "wall", r))
    return (
        ", ".join(
            f"{role} {statistics.median(run.get(role, 0.0) for run in runs) / records * 1e6:.2f}"
            for role in roles
        )
        + " µs/record (CPU; wall: elapsed)"
    )


def selected_layouts(names: str) -> list[tuple[int, str | None]]:
    chosen = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in LAYOUTS]
    if unknown or not chosen:
        raise SystemExit(f"--layouts: choose from {', '.join(LAYOUTS)} (got {names!r})")
    return [LAYOUTS[name] for name in chosen]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument(
        "--batch-records", type=int, default=300_000, help="records for the batch layouts"
    )
    parser.add_argument("--days", type=int, default=12, help="days of the simulated scenario")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument(
        "--layouts",
        default="single,single-lz4,batch,batch-lz4",
        help="comma-separated subset of the four input layouts",
    )
    parser.add_argument(
        "--no-extras", action="store_true", help="skip the latency and checkpoint measurements"
    )
    parser.add_argument(
        "--threads",
        action="store_true",
        help="also report CPU per record of each thread and of the broker (Linux /proc)",
    )
    parser.add_argument(
        "--parts",
        action="store_true",
        help="also time the worker without the engine (events decoded, then dropped)",
    )
    parser.add_argument(
        "--reads-per-minute",
        type=float,
        default=6.0,
        help="read calls per minute per stream: event density (closing a minute has a fixed cost)",
    )
    args = parser.parse_args()
    scenario = Scenario(
        days=args.days, reads_per_minute=args.reads_per_minute, anomaly_day=args.days - 1
    )
    every = list(render(generate(scenario)))
    lines = every[: args.records]
    minutes = len({(e.event_time or "")[:16] for e in decode_many(lines).events})
    print(
        f"{len(lines):,} records of {sum(map(len, lines)) / len(lines):,.0f} bytes, "
        f"{len(lines) / max(minutes, 1):,.0f} per minute of event time; batch layouts read "
        f"{min(args.batch_records, len(every)):,} records"
    )
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        print("| layout | bare consume rec/s | worker rec/s | ratio | ratios of the runs |")
        print("|---|---|---|---|---|")
        for batch, compression in selected_layouts(args.layouts):
            records = lines if batch == 1 else every[: args.batch_records]
            bare_rates, worker_rates, decoding_ratios = [], [], []
            cpu: dict[str, list[dict[str, float]]] = {"bare": [], "worker": []}
            with LocalBroker() as broker:
                for _ in range(args.runs):
                    topic = f"b-{uuid.uuid4().hex[:6]}"
                    messages = fill(broker.bootstrap, topic, records, batch, compression)
                    meters = {side: CpuMeter(broker.pid) for side in cpu} if args.threads else {}
                    wall = {
                        "bare": bare(broker.bootstrap, topic, messages, meters.get("bare")),
                        "worker": worker_run(
                            broker.bootstrap, topic, messages, state, meters.get("worker")
                        ),
                    }
                    bare_rates.append(len(records) / wall["bare"])
                    worker_rates.append(len(records) / wall["worker"])
                    for side, meter in meters.items():
                        cpu[side].append({"wall": wall[side], **meter.spent})
                    if args.parts:
                        alone = worker_run(broker.bootstrap, topic, messages, state, engine=False)
                        decoding_ratios.append(wall["bare"] / alone)
            ratios = [w / b for w, b in zip(worker_rates, bare_rates, strict=True)]
            name = ("1 record/message" if batch == 1 else f"{batch} records/message") + (
                f", {compression}" if compression else ""
            )
            print(
                f"| {name} | {statistics.median(bare_rates):,.0f} | "
                f"{statistics.median(worker_rates):,.0f} | {statistics.median(ratios):.2f} | "
                f"{' '.join(f'{r:.2f}' for r in ratios)} |",
                flush=True,
            )
            if decoding_ratios:
                print(
                    f"    without the engine: {statistics.median(decoding_ratios):.2f} of the "
                    f"bare rate ({' '.join(f'{r:.2f}' for r in decoding_ratios)})",
                    flush=True,
                )
            for side, runs in cpu.items():
                if runs:
                    print(f"    {side} {per_record(runs, len(records))}", flush=True)
    if args.no_extras:
        return
    with tempfile.TemporaryDirectory() as tmp, LocalBroker() as broker:
        state = Path(tmp)
        latencies = [burst_latency(broker.bootstrap, state) for _ in range(args.runs)]
        print(
            f"burst latency (produce of the closing events -> Insight on the output topic): "
            f"median {statistics.median(latencies):.2f} s of {[round(x, 2) for x in latencies]}"
        )
        size, snap, write = checkpoint_cost(args.keys, state)
        print(
            f"checkpoint for {args.keys:,} keys: {size / 1e6:.1f} MB ({size / args.keys:.0f} "
            f"B/key), snapshot {snap:.2f} s, durable write {write:.2f} s"
        )


if __name__ == "__main__":
    main()
