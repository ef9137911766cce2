"""``slack``: an incoming-webhook message (text and one mrkdwn section)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from streams.sinks.config import WebhookSettings
from streams.sinks.formats.text import console_link, per_minute, summary

__all__ = ["body"]


def body(record: dict[str, Any], settings: WebhookSettings) -> dict[str, Any]:
    """The message: what, how much against the baseline, since when, and who."""
    d = record["insightDetails"]
    stats = d["insightContext"]["statistics"]
    unit = "errors/min" if d["insightType"] == "ApiErrorRateInsight" else "calls/min"
    principals: list[dict[str, Any]] = next(
        (
            a["insight"]
            for a in d["insightContext"]["attributions"]
            if a["attribute"] == "userIdentityArn"
        ),
        [],
    )
    who = ", ".join(f"{p['value']} ({per_minute(p['average'])}/min)" for p in principals[:3])
    minutes = int(stats["insightDuration"])
    if d["state"] == "Start":
        when = f"since {record['eventTime']}"
        rate = "rate"
    else:
        end = datetime.fromisoformat(record["eventTime"].replace("Z", "+00:00"))
        began = (end - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
        when = f"from {began} to {record['eventTime']} ({minutes} min)"
        rate = "mean rate"
    text = (
        f"*{summary(record)}*\n"
        f"{rate} {per_minute(stats['insight']['average'])} {unit} vs baseline "
        f"{per_minute(stats['baseline']['average'])} {unit} {when} "
        f"(score {record['additionalEventData'].get('score')})\n"
        f"Top principals: {who or 'n/a'}\nsharedEventID `{record['sharedEventID']}`"
    )
    link = console_link(record, settings.console_url)
    if link is not None:
        text += f"\n<{link}|Open in the console>"
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
