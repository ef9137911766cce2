"""Prometheus rules (promtool) and every Grafana panel query against a running worker.

Debian's ``prometheus`` scrapes a real worker on 127.0.0.1; each panel query of the dashboard
must be valid PromQL and return data.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from streams.lab.broker import free_port
from streams.metrics import MetricsServer
from streams.sinks.runner import start_sinks
from streams.worker import Worker
from tests.integration.conftest import (
    Dataset,
    create_topic,
    end_offsets,
    produce_lines,
    unique,
    wait_committed,
    worker_settings,
)
from tests.unit.streams.test_sinks import Receiver

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} not found: `make test` installs Debian's prometheus (see Makefile)"
    return path


def test_alert_rules_pass_their_unit_tests() -> None:
    rules = DEPLOY / "prometheus"
    for args in (
        ["check", "rules", "rules.yml"],
        ["test", "rules", "rules_test.yml"],
        ["check", "config", "prometheus.yml"],
    ):
        done = subprocess.run(
            [tool("promtool"), *args], cwd=rules, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr


def load_dashboard_builder() -> Any:
    spec = importlib.util.spec_from_file_location(
        "build_dashboard", DEPLOY / "grafana" / "build_dashboard.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dashboard_queries() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "ctinsights.json").read_text())
    assert dashboard == load_dashboard_builder().build(), "run deploy/grafana/build_dashboard.py"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    queries = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            expr = target["expr"]
            for name in ("$account", "$region", "$api"):
                expr = expr.replace(name, ".*")  # what "All" selects
            queries.append(expr)
    for variable in dashboard["templating"]["list"][1:]:
        queries.append(variable["query"]["query"])
    return queries


def query(base: str, expr: str) -> dict[str, Any]:
    if expr.startswith("label_values("):
        metric, label = expr[len("label_values(") : -1].split(", ")
        url = f"{base}/api/v1/label/{label}/values?" + urllib.parse.urlencode({"match[]": metric})
    else:
        url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        result: dict[str, Any] = json.loads(response.read())
    return result


def test_every_panel_query_returns_data_from_a_running_worker(
    bootstrap: str, dataset: Dataset, tmp_path: Path
) -> None:
    queries = dashboard_queries()
    topic = unique("ct")
    create_topic(bootstrap, topic, 2)
    produce_lines(bootstrap, topic, [*dataset.lines, b"not json"])
    receiver = Receiver(fail_first=2).start()
    settings = worker_settings(
        bootstrap,
        topic,
        webhooks=[{"name": "siem", "url": receiver.url, "backoff_seconds": 0.05}],
    )
    worker = Worker(settings)
    server = MetricsServer(worker.metrics.registry, worker.health)
    port = server.start("127.0.0.1", 0)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    sinks = start_sinks(settings, worker.metrics, worker.health, worker.stop_event)
    prom_port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n  - job_name: ctinsights\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
    )
    prometheus = subprocess.Popen(
        [
            tool("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{prom_port}"
    try:
        wait_committed(bootstrap, settings.group_id, topic, end_offsets(bootstrap, topic))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as ready:
            assert json.loads(ready.read())["ok"] is True
        deadline = time.monotonic() + 60
        missing = queries
        while missing and time.monotonic() < deadline:
            time.sleep(1)
            try:
                answers = {expr: query(base, expr) for expr in queries}
            except OSError:
                continue  # prometheus still starting
            for expr, answer in answers.items():
                assert answer["status"] == "success", (expr, answer)
            missing = [
                e
                for e, a in answers.items()
                if not (a["data"]["result"] if isinstance(a["data"], dict) else a["data"])
            ]
        assert not missing, f"queries without data: {missing}"
    finally:
        prometheus.terminate()
        prometheus.wait(20)
        worker.stop_event.set()
        thread.join(60)
        for sink in sinks:
            sink.thread.join(30)
        server.stop()
        receiver.stop()
