"""The broker goes away mid-stream: the worker stays up, says so, and loses nothing.

A dedicated Tansu advertises the port of a TCP proxy; cutting the proxy resets every client
connection and refuses new ones (the broker process keeps its in-memory data, which a restart of
Tansu itself would not).
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

from streams.lab.broker import LocalBroker, free_port
from tests.integration.conftest import (
    PROXY_PORT,
    Dataset,
    WorkerProcess,
    assert_exactly_expected,
    create_topic,
    end_offsets,
    produce_lines,
    unique,
    wait_committed,
)
from tests.integration.proxy import TcpProxy

OUTAGE_SECONDS = 15.0


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        body = exc.read().decode()
        exc.close()
        return exc.code, body


def _broker_up(port: int) -> float | None:
    status, text = _get(port, "/metrics")
    assert status == 200
    for line in text.splitlines():
        if line.startswith("ctinsights_broker_up "):
            return float(line.split()[1])
    return None


def _wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_worker_rides_out_a_broker_outage_without_loss(
    dataset: Dataset, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    with (
        TcpProxy(PROXY_PORT, free_port()) as proxy,
        LocalBroker(
            port=proxy.target_port, advertised_port=PROXY_PORT, log_path=tmp_path / "tansu.log"
        ) as broker,
    ):
        bootstrap = broker.bootstrap
        topic, group = unique("ct"), unique("g")
        create_topic(bootstrap, topic, 2)
        half = len(dataset.lines) // 2
        produce_lines(bootstrap, topic, dataset.lines[:half])
        first_ends = end_offsets(bootstrap, topic)

        worker = WorkerProcess(bootstrap, topic, f"{topic}-out", group, tmp_path / "w.log")
        workers.append(worker.start())
        wait_committed(bootstrap, group, topic, first_ends, timeout=180)
        _wait_for(lambda: _get(worker.metrics_port, "/readyz")[0] == 200, 30, "ready")

        proxy.cut()
        cut_at = time.monotonic()
        _wait_for(lambda: _broker_up(worker.metrics_port) == 0.0, 60, "broker_up == 0")
        assert _get(worker.metrics_port, "/readyz")[0] == 503
        assert _get(worker.metrics_port, "/healthz")[0] == 200
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - cut_at)))
        assert worker.alive(), "the worker exited during the outage"

        proxy.restore()
        produce_lines(bootstrap, topic, dataset.lines[half:])
        ends = end_offsets(bootstrap, topic)
        assert sum(ends.values()) == len(dataset.lines)
        wait_committed(bootstrap, group, topic, ends, timeout=180)
        _wait_for(lambda: _broker_up(worker.metrics_port) == 1.0, 60, "broker_up == 1")
        assert worker.stop() == 0

        assert_exactly_expected(bootstrap, f"{topic}-out", dataset)
