"""Words and numbers for people, shared by the formats that write text."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["console_link", "describe", "linked", "per_minute", "summary"]


def console_link(record: dict[str, Any], console_url: str | None) -> str | None:
    """The insight's page on the console at ``console_url``, if one is set."""
    if not console_url:
        return None
    return f"{console_url.rstrip('/')}/insights/{record['sharedEventID']}"


def linked(record: dict[str, Any], console_url: str | None) -> dict[str, Any]:
    """``record`` with ``additionalEventData.consoleUrl`` (our extension field) when a console
    is set; the record itself otherwise."""
    link = console_link(record, console_url)
    if link is None:
        return record
    return {**record, "additionalEventData": {**record["additionalEventData"], "consoleUrl": link}}


def summary(record: dict[str, Any]) -> str:
    """``Start: unusual call rate of iam:CreateUser in <account>/<Region>``."""
    d = record["insightDetails"]
    api = f"{d['eventSource'].split('.')[0]}:{d['eventName']}"
    if d.get("errorCode"):
        api += f" {d['errorCode']}"
    kind = "error rate" if d["insightType"] == "ApiErrorRateInsight" else "call rate"
    return (
        f"{d['state']}: unusual {kind} of {api} in {record['recipientAccountId']}/"
        f"{record['awsRegion']}"
    )


def per_minute(value: float) -> str:
    """A rate per minute for people: two significant digits below 1, never ``0.0000``.

    Examples:
        >>> [per_minute(v) for v in (0, 0.0000882145, 0.25, 3.14159, 42.0)]
        ['0', '0.000088', '0.25', '3.14', '42.0']
    """
    if value <= 0:
        return "0"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    digits = max(2, 1 - math.floor(math.log10(value)))
    return f"{value:.{digits}f}"


def describe(d: dict[str, Any]) -> str:
    """One readable line for an Insight record (as a dict)."""
    details = d["insightDetails"]
    stats = details["insightContext"]["statistics"]
    api = f"{details['eventSource'].split('.')[0]}:{details['eventName']}"
    if details.get("errorCode"):
        api += f" [{details['errorCode']}]"
    who = ""
    for attribution in details["insightContext"]["attributions"]:
        if attribution["attribute"] == "userIdentityArn" and attribution["insight"]:
            who = f" top principal {attribution['insight'][0]['value']}"
    return (
        f"{details['state']:<5} {d['eventTime']} {d['recipientAccountId']}/{d['awsRegion']} "
        f"{details['insightType']:<19} {api}: {per_minute(stats['insight']['average'])}/min vs "
        f"baseline {per_minute(stats['baseline']['average'])}/min "
        f"(score {d['additionalEventData']['score']}, "
        f"detected {d['additionalEventData']['detectionTime']}){who}"
    )
