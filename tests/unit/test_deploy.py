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
    assert set(manifests) == {
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "ServiceMonitor",
        "PodDisruptionBudget",
        "PrometheusRule",
    }
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
    assert manifests["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == selector
    # the rules Prometheus-operator users get are the tested ones
    rules = docs(DEPLOY / "prometheus" / "rules.yml")[0]
    assert manifests["PrometheusRule"]["spec"] == rules
    # the Insight directory is on a writable volume (the root filesystem is read-only)
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert settings.insight_dir is not None
    assert not mounts[str(settings.insight_dir)].get("readOnly", False)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_compose_references_files_that_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    compose = docs(DEPLOY / "docker-compose.yml")[0]
    services = compose["services"]
    assert {
        "kafka",
        "worker-1",
        "worker-2",
        "producer",
        "prometheus",
        "alertmanager",
        "grafana",
        "receiver",
    } <= set(services)
    assert "29092:29092" in services["kafka"]["ports"]  # a listener for the host
    assert (
        "HOST://localhost:29092" in services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    )
    assert "ctinsights produce" in " ".join(services["producer"]["entrypoint"])
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
    healthcheck = text[text.index("HEALTHCHECK") :]
    assert "CTINSIGHTS_METRICS_PORT" in healthcheck.split("ENTRYPOINT")[0]  # not a fixed port
    assert "--require-hashes" in text


def test_the_image_installs_exactly_the_versions_ci_tested() -> None:
    """The runtime lock pins a subset of the development lock, at the same versions."""

    def pins(path: Path) -> dict[str, str]:
        found = {}
        for line in path.read_text().splitlines():
            if "==" in line and not line.startswith((" ", "#")):
                name, version = line.split(" ")[0].split("==")
                found[name] = version
        return found

    runtime = pins(DEPLOY / "requirements-runtime.lock")
    tested = pins(ROOT / "requirements.lock")
    assert {"numpy", "msgspec", "kafka-python", "prometheus-client"} <= set(runtime)
    assert {name: tested.get(name) for name in runtime} == runtime


def test_alertmanager_config_is_valid() -> None:
    import subprocess

    done = subprocess.run(
        ["amtool", "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    scrape = docs(DEPLOY / "prometheus" / "prometheus.yml")[0]
    targets = scrape["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["alertmanager:9093"]


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
        if doc["kind"] in ("ServiceMonitor", "PrometheusRule"):
            continue  # CRDs of the Prometheus operator: no bundled schema
        kubernetes_validate.validate(doc, version, strict=True)
        checked += 1
        if doc["kind"] == "Deployment":
            broken = copy.deepcopy(doc)
            broken["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "x"
            with pytest.raises(kubernetes_validate.ValidationError):
                kubernetes_validate.validate(broken, version, strict=True)
    assert checked == 5


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


def test_dockerfile_passes_hadolint() -> None:
    """No Docker engine runs here, so the image is linted (hadolint, from the lock), not built."""
    import subprocess
    import sys

    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run(
        [str(hadolint), "--no-color", str(DEPLOY / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_ingest_manifest_is_valid_and_holds_no_aws_keys() -> None:
    """The ingest Deployment passes the schemas, assumes an IAM role, and carries no keys."""
    import kubernetes_validate

    path = DEPLOY / "kubernetes" / "ingest.yaml"
    manifests = {d["kind"]: d for d in docs(path)}
    for doc in manifests.values():
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == manifests["ServiceAccount"]["metadata"]["name"]
    assert "eks.amazonaws.com/role-arn" in manifests["ServiceAccount"]["metadata"]["annotations"]
    assert pod["containers"][0]["args"][0] == "ingest"
    text = path.read_text()
    assert "AWS_ACCESS_KEY_ID" not in text
    assert "AWS_SECRET_ACCESS_KEY" not in text
