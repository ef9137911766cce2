"""Deploy assets validated offline: they parse, reference what exists, and their settings load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.settings import WorkerSettings, load_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ROOT = DEPLOY.parent


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_every_yaml_file_parses() -> None:
    files = sorted(DEPLOY.rglob("*.yml")) + sorted(DEPLOY.rglob("*.yaml"))
    assert len(files) >= 6
    for path in files:
        assert docs(path), path


def test_kubernetes_manifests(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    manifests = {d["kind"]: d for d in docs(DEPLOY / "kubernetes" / "ctinsights.yaml")}
    assert set(manifests) == {"ConfigMap", "Secret", "Deployment", "Service", "ServiceMonitor"}
    for doc in manifests.values():
        assert doc["apiVersion"]
        assert doc["metadata"]["name"].startswith("ctinsights")
    # the ConfigMap's worker.toml and the Secret's webhooks are valid worker settings
    config = tmp_path / "worker.toml"
    config.write_text(manifests["ConfigMap"]["data"]["worker.toml"])
    monkeypatch.setenv(
        "CTINSIGHTS_WEBHOOKS", manifests["Secret"]["stringData"]["CTINSIGHTS_WEBHOOKS"]
    )
    settings = load_settings(str(config))
    assert settings.webhooks[0].format == "slack"
    container = manifests["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    port = container["ports"][0]["containerPort"]
    assert port == WorkerSettings.model_fields["metrics_port"].default
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    selector = manifests["Deployment"]["spec"]["selector"]["matchLabels"]
    assert manifests["Service"]["spec"]["selector"] == selector
    assert manifests["ServiceMonitor"]["spec"]["endpoints"][0]["port"] == "metrics"


def test_compose_references_files_that_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    compose = docs(DEPLOY / "docker-compose.yml")[0]
    services = compose["services"]
    assert {"kafka", "worker-1", "worker-2", "prometheus", "grafana", "receiver"} <= set(services)
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), source
    for name, value in services["worker-1"]["environment"].items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.bootstrap_servers == "kafka:9092"
    assert settings.webhooks[0].name == "receiver"
    scrape = docs(DEPLOY / "prometheus" / "prometheus.yml")[0]["scrape_configs"][0]
    assert scrape["job_name"] == "ctinsights"  # the name the alert rules and dashboard use


def test_dockerfile_copies_what_exists_and_runs_as_non_root() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    for line in text.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
    assert "USER 10001" in text
    assert "HEALTHCHECK" in text
    assert "/healthz" in text


def test_grafana_provisioning_points_at_the_dashboard() -> None:
    provider = docs(DEPLOY / "grafana" / "provisioning" / "dashboards" / "ctinsights.yml")[0]
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "ctinsights.json").read_text())
    assert dashboard["uid"] == "ctinsights"


def test_kubernetes_schema_offline() -> None:
    """Strict validation against the bundled Kubernetes OpenAPI schemas (no cluster needed)."""
    import copy

    import kubernetes_validate

    version = kubernetes_validate.latest_version()
    checked = 0
    for doc in docs(DEPLOY / "kubernetes" / "ctinsights.yaml"):
        if doc["kind"] == "ServiceMonitor":
            continue  # a CRD of the Prometheus operator: no bundled schema
        kubernetes_validate.validate(doc, version, strict=True)
        checked += 1
        if doc["kind"] == "Deployment":
            broken = copy.deepcopy(doc)
            broken["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "x"
            with pytest.raises(kubernetes_validate.ValidationError):
                kubernetes_validate.validate(broken, version, strict=True)
    assert checked == 4


def _dropped(ours: Any, theirs: Any, path: str = "") -> list[str]:
    if isinstance(ours, dict):
        if not isinstance(theirs, dict):
            return [path]
        out = []
        for key, value in ours.items():
            out += (
                [f"{path}/{key}"]
                if key not in theirs
                else _dropped(value, theirs[key], f"{path}/{key}")
            )
        return out
    if isinstance(ours, list) and isinstance(theirs, list):
        return [
            p
            for i, (a, b) in enumerate(zip(ours, theirs, strict=False))
            for p in _dropped(a, b, f"{path}[{i}]")
        ]
    return []


def test_dashboard_uses_only_fields_of_the_grafana_sdk_model() -> None:
    """Round-trip through grafana-foundation-sdk's Dashboard model: nothing may be dropped
    (a misspelt or unknown field would be)."""
    from grafana_foundation_sdk.models.dashboard import Dashboard

    ours = json.loads((DEPLOY / "grafana" / "dashboards" / "ctinsights.json").read_text())
    model = Dashboard.from_json(ours)
    theirs = json.loads(json.dumps(model.to_json(), default=lambda o: o.to_json()))
    assert _dropped(ours, theirs) == []
    misspelt = {**ours["panels"][1], "gridpos": {}}
    assert _dropped(misspelt, theirs["panels"][1]) == [
        "/gridpos"
    ]  # the check does catch a misspelt field
