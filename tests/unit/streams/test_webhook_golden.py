"""Every webhook format's body for three Insight records, against payloads a person has read.

``tests/golden/insights.json`` holds a call-rate Start with a tiny baseline, its End, and
an error-rate Start. The expected bodies are ``webhook_<format>.json`` beside it. After an
intended change of a format, re-write them with ``CTINSIGHTS_UPDATE_GOLDEN=1`` and read the diff.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from streams.sinks import WebhookFormat, WebhookSettings, format_body

GOLDEN = Path(__file__).parents[2] / "golden"
FORMATS = ("generic", "eventbridge", "slack", "pagerduty")


def _settings(fmt: str) -> WebhookSettings:
    extra: dict[str, Any] = {"routing_key": "R" * 32} if fmt == "pagerduty" else {}
    return WebhookSettings(
        name=fmt,
        url=SecretStr("http://127.0.0.1:9/hook"),
        format=WebhookFormat(fmt),
        console_url="https://insights.example.com",
        **extra,
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_webhook_bodies_match_their_golden_payloads(fmt: str) -> None:
    records = json.loads((GOLDEN / "insights.json").read_text())
    bodies = [json.loads(format_body(_settings(fmt), record)) for record in records]
    path = GOLDEN / f"webhook_{fmt}.json"
    if os.environ.get("CTINSIGHTS_UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(bodies, indent=1, ensure_ascii=False) + "\n")
    assert bodies == json.loads(path.read_text())


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_links_the_insights_console_page_only_when_a_console_is_set(
    fmt: str,
) -> None:
    record = json.loads((GOLDEN / "insights.json").read_text())[0]
    page = f"https://insights.example.com/insights/{record['sharedEventID']}"
    linked = format_body(_settings(fmt), record).decode()
    plain = format_body(_settings(fmt).model_copy(update={"console_url": None}), record)
    assert page in linked
    assert "insights.example.com" not in plain.decode()


def test_slack_text_says_what_a_person_needs() -> None:
    records = json.loads((GOLDEN / "insights.json").read_text())
    start, end, errors = (json.loads(format_body(_settings("slack"), r))["text"] for r in records)
    assert "20.0 calls/min vs baseline 0.000088 calls/min since 2024-07-10T01:42:00Z" in start
    assert "from 2024-07-10T01:42:00Z to 2024-07-10T01:53:00Z (11 min)" in end
    assert "errors/min" in errors
    assert "calls/min" not in errors
    assert not re.search(r"\b0\.0+(?![0-9])", start + end + errors)  # no rate printed as 0.00
