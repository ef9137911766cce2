"""``ctinsights demo``: the whole pipeline on one machine, with nothing to install.

1. start a local Kafka-compatible broker (Tansu) on 127.0.0.1;
2. simulate a labelled CloudTrail stream (2 accounts x 2 Regions, with the 7 injected bursts) and
   ``produce`` it, keyed by account and Region, into a 4-partition topic;
3. run the stream worker on it (checkpoints in Kafka, metrics on ``/metrics``, Insight files
   and the insight console over them);
4. print each Insight as it arrives on the output topic, then which bursts were found.

Ctrl-C stops everything cleanly at any point (worker checkpoints, broker stops).
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from streams.lab.broker import LocalBroker, free_port
from streams.lab.evaluation import evaluate
from streams.lab.simulate import Scenario, generate, render
from streams.metrics import MetricsServer
from streams.produce import produce
from streams.runner import install_signal_handlers, start_console
from streams.settings import load_settings
from streams.sinks.formats.text import describe
from streams.sinks.runner import start_sinks
from streams.worker import Worker

__all__ = ["describe", "run_demo"]

_INPUT = "cloudtrail"
_OUTPUT = "cloudtrail-insights"
_PARTITIONS = 4


def _print_output(bootstrap: str, stop: threading.Event, seen: list[dict[str, Any]]) -> None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    tp = TopicPartition(_OUTPUT, 0)
    consumer.assign([tp])
    consumer.seek(tp, 0)
    try:
        while not stop.is_set():
            for messages in consumer.poll(timeout_ms=300).values():
                for message in messages:
                    record = json.loads(message.value)
                    seen.append(record)
                    print(describe(record), flush=True)
    finally:
        consumer.close()


def _caught_up(worker: Worker, total: int) -> bool:
    read = worker.metrics.registry.get_sample_value(
        "ctinsights_messages_read_total", {"topic": _INPUT}
    )
    return read is not None and read >= total


def run_demo(days: int = 5, metrics_port: int | None = None, serve: bool = False) -> int:
    """Run the demo; returns the process exit code."""
    stop = threading.Event()
    install_signal_handlers(stop)
    scenario = Scenario(days=days, reads_per_minute=1.0, anomaly_day=days - 1)
    print("starting a local Kafka-compatible broker (Tansu) on 127.0.0.1 ...", flush=True)
    with LocalBroker() as broker, tempfile.TemporaryDirectory(prefix="ctinsights-demo-") as tmp:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        admin.create_topics([NewTopic(_INPUT, _PARTITIONS, 1), NewTopic(_OUTPUT, 1, 1)])
        admin.close()
        print(
            f"simulating {days} days of CloudTrail for {len(scenario.accounts)} accounts x "
            f"{len(scenario.regions)} Regions with {len(scenario.anomalies)} injected bursts "
            f"on the last day ...",
            flush=True,
        )
        lines = list(render(generate(scenario)))
        producer = KafkaProducer(
            bootstrap_servers=broker.bootstrap,
            linger_ms=20,
            batch_size=256 * 1024,
            compression_type="lz4",
        )
        started = time.monotonic()
        stats = produce(producer, _INPUT, lines)
        producer.close()
        print(
            f"produced {stats.records:,} records to '{_INPUT}' ({_PARTITIONS} partitions, "
            f"keyed by account/Region) in {time.monotonic() - started:.1f} s",
            flush=True,
        )
        settings = load_settings(
            None,
            bootstrap_servers=broker.bootstrap,
            input_topics=[_INPUT],
            output_topic=_OUTPUT,
            group_id="ctinsights-demo",
            metrics_host="127.0.0.1",
            checkpoint_interval_seconds=5.0,
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
            insight_dir=Path(tmp),
            console_port=free_port(),
        )
        worker = Worker(settings)
        worker.stop_event = stop
        worker.on_connected = lambda: sinks.extend(
            start_sinks(settings, worker.metrics, worker.health, stop)
        )
        sinks: list[Any] = []
        server = MetricsServer(worker.metrics.registry, worker.health)
        port = server.start("127.0.0.1", metrics_port if metrics_port is not None else free_port())
        console = start_console(settings)
        assert console is not None
        print(
            f"worker running; metrics on http://127.0.0.1:{port}/metrics "
            f"(also /healthz, /readyz); insight console on {console.url}/ ; "
            "Insights as they arrive:\n",
            flush=True,
        )
        seen: list[dict[str, Any]] = []
        printer = threading.Thread(
            target=_print_output, args=(broker.bootstrap, stop, seen), daemon=True
        )
        printer.start()
        runner = threading.Thread(target=worker.run, name="worker", daemon=True)
        started = time.monotonic()
        runner.start()
        while not stop.is_set() and not _caught_up(worker, stats.messages):
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        time.sleep(0 if stop.is_set() else settings.output_delay_seconds + 2)
        if not stop.is_set():
            _summary(scenario, seen, stats.records, elapsed, worker)
        if serve and not stop.is_set():
            print(
                f"\nserving metrics on http://127.0.0.1:{port}/metrics and the insight console "
                f"on {console.url}/ ; Ctrl-C to stop",
                flush=True,
            )
            stop.wait()
        stop.set()
        runner.join(60)
        printer.join(10)
        for sink in sinks:
            sink.thread.join(10)
        server.stop()
        console.close()
    print("stopped: worker checkpointed, broker shut down", flush=True)
    return 0


def _summary(
    scenario: Scenario, seen: list[dict[str, Any]], records: int, elapsed: float, worker: Worker
) -> None:
    keys = worker.metrics.registry.get_sample_value("ctinsights_keys_tracked") or 0
    result = evaluate(
        seen, scenario.labels, key_days=keys * (scenario.days - 1), after=scenario.start + 86_400
    )
    print(
        f"\n{records:,} records through Kafka and the worker in {elapsed:.1f} s; "
        f"{int(keys)} baselines"
    )
    for name, found in result.found.items():
        latency = result.latencies.get(name)
        when = f"detected {latency / 60:.0f} min after onset" if latency is not None else ""
        print(f"  {'found' if found else 'MISSED':<6} {name} {when}")
    print(f"false insights: {len(result.false_insights)}", flush=True)
