"""One error hierarchy for the detection library."""

from __future__ import annotations


class InsightsError(Exception):
    """Root of every error raised by :mod:`insights`."""


class EventParseError(InsightsError):
    """A record or message could not be turned into a CloudTrail event.

    ``reason`` is a short, bounded label (a :class:`~insights.events.RejectReason`)
    suitable for a metric label or a dead-letter header.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class StateDecodeError(InsightsError):
    """A saved engine state could not be restored (corrupt, wrong version or config)."""


class InsightsConfigError(InsightsError):
    """The detection configuration is invalid."""
