"""One error hierarchy for the deployment layer."""

from __future__ import annotations

from typing import ClassVar


class StreamsError(Exception):
    """Root of errors raised by :mod:`streams`. ``retriable`` decides backoff versus exit."""

    retriable: ClassVar[bool] = False


class SourceError(StreamsError):
    """An input could not be read (missing path, unreadable file)."""


class SinkError(StreamsError):
    """An output could not be written."""

    retriable = True


class ConfigError(StreamsError):
    """Invalid settings (reported before anything connects)."""
