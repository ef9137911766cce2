"""The insight console over a real HTTP server on 127.0.0.1: pages, API, filters, security."""

from __future__ import annotations

import base64
import gzip
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from streams.cli import main
from streams.console import Console, ConsoleServer, serve
from streams.sinks.files import context_path
from tests.factory import T0, background, burst

HOSTILE = 'arn:aws:iam::123456789012:user/<script>alert("x")</script>'
BURST_AT = T0 + 30 * 3600


@pytest.fixture(scope="module")
def insight_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``replay --insight-dir`` of 1.5 days of CreateTags with a CreateUser burst by a
    principal whose ARN holds HTML, and one AWS-made Insight file (no context)."""
    tmp = tmp_path_factory.mktemp("console")
    events = background(1.5, rate_per_minute=2.0) + burst(BURST_AT, 60, principal=HOSTILE)
    events.sort(key=lambda e: e.event_time or "")
    source = tmp / "events.jsonl"
    source.write_bytes(b"".join(msgspec.json.encode(e) + b"\n" for e in events))
    root = tmp / "insights"
    out = tmp / "out.jsonl"
    assert main(["replay", str(source), "--insight-dir", str(root), "--output", str(out)]) == 0
    aws = dict(json.loads(out.read_text().splitlines()[0]))
    aws.pop("additionalEventData")
    aws["sharedEventID"] = "0f0e0d0c-0b0a-4908-8706-050403020100"
    aws["eventID"] = "1f0e0d0c-0b0a-4908-8706-050403020100"
    aws["eventTime"] = "2023-06-01T10:00:00Z"
    aws["recipientAccountId"] = "999988887777"
    folder = root / "AWSLogs/999988887777/CloudTrail-Insight/us-east-1/2023/06/01"
    folder.mkdir(parents=True)
    (folder / "999988887777_CloudTrail-Insight_us-east-1_20230601T1000Z_x.json.gz").write_bytes(
        gzip.compress(json.dumps({"Records": [aws]}).encode())
    )
    return root


@pytest.fixture
def console(insight_dir: Path) -> Iterator[ConsoleServer]:
    server = serve(Console(insight_dir, refresh_seconds=0), "127.0.0.1", 0)
    yield server
    server.close()


def get(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def api(console: ConsoleServer, query: str = "") -> dict[str, Any]:
    status, body = get(f"{console.url}/api/insights{query}")
    assert status == 200, body
    return dict(json.loads(body))


def test_the_list_has_every_insight_newest_first_with_counts_per_type(
    console: ConsoleServer, insight_dir: Path
) -> None:
    listed = api(console)
    items = listed["items"]
    assert listed["total"] == len(items) >= 2
    assert [i["startTime"] for i in items] == sorted((i["startTime"] for i in items), reverse=True)
    assert sum(listed["counts"].values()) == listed["total"]
    status, page = get(f"{console.url}/")
    assert status == 200
    assert page.count('<tr class="insight"') == listed["total"]
    for item in items:
        assert f'href="/insights/{item["sharedEventID"]}"' in page


def test_filters_narrow_the_list_and_bad_values_are_a_clear_400(console: ConsoleServer) -> None:
    only = api(console, "?name=CreateUser&type=ApiCallRateInsight&state=closed")
    assert only["total"] == 1
    assert only["items"][0]["eventName"] == "CreateUser"
    assert api(console, "?account=999988887777")["total"] == 1
    # the time range keeps the insights that overlap it (an open one overlaps what follows)
    assert api(console, "?since=2030-01-01")["total"] == api(console, "?state=open")["total"] == 1
    assert api(console, "?until=2023-12-31T00:00:00Z")["items"][0]["awsRegion"] == "us-east-1"
    assert api(console, "?until=2023-12-31T00:00:00Z")["total"] == 1
    assert api(console, "?min_score=1000")["total"] == 0
    status, body = get(f"{console.url}/api/insights?state=maybe")
    assert status == 400
    assert "state" in json.loads(body)["error"]
    assert get(f"{console.url}/?min_score=lots")[0] == 400


def test_an_insight_page_has_its_chart_statistics_attributions_and_records(
    console: ConsoleServer, insight_dir: Path
) -> None:
    sid = api(console, "?name=CreateUser")["items"][0]["sharedEventID"]
    status, page = get(f"{console.url}/insights/{sid}")
    assert status == 200
    assert '<svg class="rate-chart"' in page
    assert 'class="span"' in page
    assert "baseline average" in page
    assert page.count("<pre>") == 2  # its Start and End records
    detail = json.loads(get(f"{console.url}/api/insights/{sid}")[1])
    assert [r["insightDetails"]["state"] for r in detail["records"]] == ["Start", "End"]
    context = detail["context"]
    assert context["status"] == "final"
    assert context == json.loads(gzip.decompress(context_path(insight_dir, sid).read_bytes()))
    assert page.count('class="minute"') > len(context["counts"])  # the close-up, then all


def test_values_from_the_logs_are_shown_as_text_never_as_markup(console: ConsoleServer) -> None:
    sid = api(console, "?name=CreateUser")["items"][0]["sharedEventID"]
    page = get(f"{console.url}/insights/{sid}")[1]
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    with urllib.request.urlopen(f"{console.url}/insights/{sid}", timeout=10) as reply:
        policy = reply.headers["Content-Security-Policy"]
    assert "script-src 'sha256-" in policy
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]


def test_an_aws_insight_without_context_says_so(console: ConsoleServer) -> None:
    status, page = get(f"{console.url}/insights/0f0e0d0c-0b0a-4908-8706-050403020100")
    assert status == 200
    assert 'id="no-context"' in page
    assert "<pre>" in page


@pytest.mark.parametrize(
    "path",
    [
        "/insights/../../etc/passwd",
        "/insights/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/api/insights/..%2F..%2Fctinsights-context",
        "/insights/00000000-0000-0000-0000-000000000000",
        "/etc/passwd",
    ],
)
def test_paths_outside_the_insights_are_not_found(console: ConsoleServer, path: str) -> None:
    status, body = get(f"{console.url}{path}")
    assert status == 404
    assert "root:" not in body


def test_the_console_is_read_only(console: ConsoleServer) -> None:
    for method in ("POST", "PUT", "DELETE"):
        assert get(f"{console.url}/", method=method)[0] == 405
    status, body = get(f"{console.url}/", method="HEAD")
    assert (status, body) == (200, "")


def test_a_token_or_basic_credentials_guard_every_page_but_healthz(insight_dir: Path) -> None:
    server = serve(Console(insight_dir, token="t0ken", basic=("ops", "s3cret")), "127.0.0.1", 0)
    try:
        assert get(f"{server.url}/")[0] == 401
        assert get(f"{server.url}/api/insights", {"Authorization": "Bearer wrong"})[0] == 401
        assert get(f"{server.url}/api/insights", {"Authorization": "Bearer t0ken"})[0] == 200
        good = base64.b64encode(b"ops:s3cret").decode()
        bad = base64.b64encode(b"ops:guess").decode()
        assert get(f"{server.url}/", {"Authorization": f"Basic {good}"})[0] == 200
        assert get(f"{server.url}/", {"Authorization": f"Basic {bad}"})[0] == 401
        assert get(f"{server.url}/healthz")[0] == 200
    finally:
        server.close()


def test_the_console_command_refuses_a_missing_root(tmp_path: Path) -> None:
    assert main(["console", "--root", str(tmp_path / "nothing")]) == 2
