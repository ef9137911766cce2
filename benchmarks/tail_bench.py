"""One busy partition left: consume rate by ``fetch_max_wait_ms``, bare loop and worker.

    .venv/bin/python benchmarks/tail_bench.py [--records 60000] [--waits 500,100,50,20]

A 4-partition topic on the local broker where partition 0 holds ``--records`` simulated
CloudTrail records and partitions 1-3 hold 100 each: the shape of the tail of a keyed topic in
which one account-Region carries most of the traffic. For each ``fetch_max_wait_ms`` a bare
``KafkaConsumer`` loop (``poll(timeout_ms=200, max_records=2000)``) and then the worker read the
whole topic in a group of their own; reported: messages per second from the first message to
the last, and polls per second. The local broker (Tansu) holds a fetch while some of its
partitions have no data, so the busy partition is read one held fetch at a time; Apache Kafka
answers as soon as ``fetch_min_bytes`` (1) are there.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import threading
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from streams.lab.broker import LocalBroker
from streams.lab.simulate import Scenario, generate, render
from streams.settings import load_settings
from streams.worker import Worker

_TOPIC = "tail"
_QUIET = 100


def _fill(bootstrap: str, records: int) -> int:
    lines = list(render(generate(Scenario(days=2, reads_per_minute=20))))[:records]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(_TOPIC, 4, 1)])
    admin.close()
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, batch_size=1 << 20, max_request_size=8 << 20
    )
    for line in lines:
        producer.send(_TOPIC, value=line, partition=0)
    for partition in (1, 2, 3):
        for line in lines[:_QUIET]:
            producer.send(_TOPIC, value=line, partition=partition)
    producer.flush()
    producer.close()
    return len(lines) + 3 * _QUIET


def _bare(bootstrap: str, total: int, wait: int) -> tuple[float, float]:
    consumer = KafkaConsumer(
        _TOPIC,
        bootstrap_servers=bootstrap,
        group_id=f"bare-{wait}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=16 << 20,
        fetch_max_bytes=64 << 20,
        fetch_max_wait_ms=wait,
    )
    got = polls = 0
    started: float | None = None
    deadline = time.monotonic() + 300
    while got < total and time.monotonic() < deadline:
        batch = consumer.poll(timeout_ms=200, max_records=2000)
        count = sum(len(messages) for messages in batch.values())
        if count and started is None:
            started = time.monotonic()
        if started is not None:
            polls += 1
        got += count
    consumer.close()
    assert started is not None, "the bare loop read nothing"
    assert got >= total, f"bare loop read {got} of {total}"
    seconds = time.monotonic() - started
    return got / seconds, polls / seconds


def _worker(bootstrap: str, total: int, wait: int) -> tuple[float, float]:
    settings = load_settings(
        None,
        bootstrap_servers=bootstrap,
        input_topics=[_TOPIC],
        output_topic=f"out-{wait}",
        dead_letter_topic=f"dlq-{wait}",
        group_id=f"worker-{wait}",
        metrics_port=None,
        checkpoint_store="directory",
        state_dir=tempfile.mkdtemp(),
        fetch_max_wait_ms=wait,
    )
    worker = Worker(settings)
    thread = threading.Thread(target=worker.run)
    thread.start()
    registry = worker.metrics.registry
    read = 0.0
    started: float | None = None
    deadline = time.monotonic() + 300
    while read < total and time.monotonic() < deadline:
        read = registry.get_sample_value("ctinsights_messages_read_total", {"topic": _TOPIC}) or 0
        if read and started is None:
            started = time.monotonic()
        time.sleep(0.01)
    seconds = time.monotonic() - (started or 0.0)
    polls = registry.get_sample_value("ctinsights_processing_seconds_count") or 0.0
    worker.stop_event.set()
    thread.join(60)
    assert read >= total, f"worker read {read:.0f} of {total}"
    return read / seconds, polls / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--waits", default="500,100,50,20")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with LocalBroker() as broker:
        total = _fill(broker.bootstrap, args.records)
        print("| fetch_max_wait_ms | bare msgs/s | bare polls/s | worker msgs/s | worker polls/s |")
        print("|---|---|---|---|---|")
        for wait in (int(w) for w in args.waits.split(",")):
            bare, bare_polls = _bare(broker.bootstrap, total, wait)
            worker, worker_polls = _worker(broker.bootstrap, total, wait)
            print(
                f"| {wait} | {bare:,.0f} | {bare_polls:.1f} | {worker:,.0f} | {worker_polls:.1f} |"
            )


if __name__ == "__main__":
    main()
