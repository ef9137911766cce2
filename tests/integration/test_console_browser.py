"""The insight console in a real browser: Debian's chromium, headless, driven by Playwright.

A simulated stream with known bursts (and one burst by a principal whose ARN is HTML) is
replayed by ``ctinsights replay --insight-dir`` and served by ``ctinsights console``, both as
processes. Screenshots go to ``$CTINSIGHTS_ARTIFACTS/console`` (default
``build/test-artifacts/console``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from streams.lab.broker import free_port

pytestmark = pytest.mark.integration

ARTIFACTS = Path(os.environ.get("CTINSIGHTS_ARTIFACTS", "build/test-artifacts")) / "console"
HOSTILE = (
    "arn:aws:iam::111122223333:user/<img src=x onerror=window.pwned=1>"
    "<script>window.pwned=2</script>"
)
#: what the probe of this machine kind found chromium needs here (no network, no sandbox as root)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def ctinsights(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "streams", *args], check=True, timeout=300)


def hostile_burst(at: int) -> list[bytes]:
    """30 DeleteUser calls in two minutes by a principal (and agent) made of HTML."""
    out = []
    for i in range(30):
        stamp = datetime.fromtimestamp(at + 4 * i, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "eventVersion": "1.09",
            "userIdentity": {"type": "IAMUser", "arn": HOSTILE, "accountId": "111122223333"},
            "eventTime": stamp,
            "eventSource": "iam.amazonaws.com",
            "eventName": "DeleteUser",
            "awsRegion": "us-east-1",
            "userAgent": "<b>agent</b>",
            "eventID": f"hostile-{i}",
            "eventType": "AwsApiCall",
            "readOnly": False,
            "managementEvent": True,
            "recipientAccountId": "111122223333",
            "eventCategory": "Management",
        }
        out.append(json.dumps(event).encode())
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The console of a replayed 3-day stream, as processes; its URL and what was replayed."""
    tmp = tmp_path_factory.mktemp("console-browser")
    sim, labels = tmp / "sim.jsonl", tmp / "labels.json"
    ctinsights("simulate", "-o", str(sim), "--labels", str(labels), "--days", "3", "--seed", "3")
    lines = sim.read_bytes().splitlines()
    first = json.loads(lines[0])["eventTime"]
    start = int(datetime.fromisoformat(first.replace("Z", "+00:00")).timestamp())
    lines = sorted(
        lines + hostile_burst(start + 2 * 86_400 + 5 * 3600),
        key=lambda line: json.loads(line)["eventTime"],
    )
    sim.write_bytes(b"\n".join(lines) + b"\n")
    root, out = tmp / "insights", tmp / "out.jsonl"
    ctinsights("replay", str(sim), "--insight-dir", str(root), "-o", str(out))
    port = free_port()
    with subprocess.Popen(
        [sys.executable, "-m", "streams", "console", "--root", str(root), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as server:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                    break
            except OSError:
                time.sleep(0.1)
        try:
            records = [json.loads(x) for x in out.read_text().splitlines()]
            yield {"url": url, "records": records, "events": [json.loads(x) for x in lines]}
        finally:
            server.terminate()
            server.wait(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium, "chromium not found: `make test` installs Debian's chromium (see Makefile)"
    with sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    opened = browser.new_page(viewport={"width": 1280, "height": 900})
    yield opened
    opened.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def minute_text(stamp: str) -> str:
    return stamp.replace("T", " ")[:16]


def test_a_person_filters_opens_an_insight_and_reads_its_chart_and_attributions(
    site: dict[str, Any], page: Page
) -> None:
    starts = [r for r in site["records"] if r["insightDetails"]["state"] == "Start"]
    page.goto(site["url"] + "/")
    assert page.locator("tr.insight").count() == len(starts)
    shot(page, "list.png")

    page.fill("input[name=name]", "CreateUser")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(lambda url: "name=CreateUser" in url)
    rows = page.locator("tr.insight")
    created = [s for s in starts if s["insightDetails"]["eventName"] == "CreateUser"]
    assert rows.count() == len(created) >= 1
    for i in range(rows.count()):
        assert ":CreateUser" in rows.nth(i).inner_text()

    rows.first.locator("a").click()
    page.wait_for_url("**/insights/*")
    sid = page.url.rsplit("/", 1)[1]
    start = next(r for r in created if r["sharedEventID"] == sid)
    end = next(r for r in site["records"] if r["sharedEventID"] == sid and r is not start)
    assert "CreateUser" in page.locator("h1").inner_text()

    # the shaded span is the insight's minutes, from its Start to its End
    span = page.locator("#chart-near svg.rate-chart rect.span")
    assert span.get_attribute("data-start") == minute_text(start["eventTime"])
    assert span.get_attribute("data-end") == minute_text(end["eventTime"])
    box = span.bounding_box()
    assert box is not None
    inside = page.locator("#chart-near svg.rate-chart rect.minute").evaluate_all(
        """(rects, [first, last]) => rects
             .filter(r => r.dataset.minute >= first && r.dataset.minute < last)
             .map(r => { const b = r.getBoundingClientRect(); return [b.left, b.right]; })""",
        [minute_text(start["eventTime"]), minute_text(end["eventTime"])],
    )
    assert inside
    assert all(
        box["x"] - 1 <= left and right <= box["x"] + box["width"] + 1 for left, right in inside
    )

    # hovering a minute of the burst shows its numbers
    minute = page.locator(
        f'#chart-near svg.rate-chart rect.minute[data-minute="{minute_text(start["eventTime"])}"]'
    )
    minute.hover()
    count = minute.get_attribute("data-count")
    assert count is not None
    assert int(count) > 0
    assert f": {count} (expected" in page.locator("#readout").inner_text()
    shot(page, "insight-rate.png")

    # the attributions name the burst's principal (counted here from the replayed events)
    first, last = start["eventTime"], end["eventTime"]
    callers = Counter(
        e["userIdentity"]["arn"]
        for e in site["events"]
        if e["eventName"] == "CreateUser"
        and first <= e["eventTime"] < last
        and e["recipientAccountId"] == start["recipientAccountId"]
        and e["awsRegion"] == start["awsRegion"]
    )
    page.click("button[data-tab=tab-attributions]")
    attributions = page.locator("#tab-attributions")
    assert attributions.is_visible()
    assert not page.locator("#tab-rate").is_visible()
    assert callers.most_common(1)[0][0] in attributions.inner_text()
    shot(page, "insight-attributions.png")

    page.click("button[data-tab=tab-records]")
    assert page.locator("#tab-records").is_visible()
    assert sid in page.locator("#tab-records").inner_text()
    assert not attributions.is_visible()

    # the longest insight of the stream, for the README's picture
    ends = [r for r in site["records"] if r["insightDetails"]["state"] == "End"]
    longest = max(
        ends, key=lambda r: r["insightDetails"]["insightContext"]["statistics"]["insightDuration"]
    )
    page.goto(f"{site['url']}/insights/{longest['sharedEventID']}")
    assert page.locator("#chart-near rect.span").count() == 1
    shot(page, "insight-longest.png")


def test_a_principal_arn_made_of_html_is_shown_as_text_and_never_runs(
    site: dict[str, Any], page: Page
) -> None:
    page.goto(site["url"] + "/?name=DeleteUser")
    rows = page.locator("tr.insight")
    assert rows.count() == 1
    rows.first.locator("a").click()
    page.wait_for_url("**/insights/*")
    page.click("button[data-tab=tab-attributions]")
    text = page.locator("#tab-attributions").inner_text()
    assert HOSTILE in text
    assert "<b>agent</b>" in text
    assert page.evaluate("window.pwned") is None
    assert page.locator("#tab-attributions img, #tab-attributions b").count() == 0
    shot(page, "hostile-principal.png")
