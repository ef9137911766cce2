"""ctinsights detection library: CloudTrail events in, AWS-format Insight records out.

Pure computation: no I/O, no wall clock, no Kafka, metrics or HTTP. Time comes from events.
"""

from __future__ import annotations

import logging

from insights import native
from insights.chunks import DECODE_CHUNK_BYTES, iter_json_lines
from insights.config import SENSITIVITY_LEVELS, EngineConfig, InsightSelector, Sensitivity
from insights.context import InsightContext
from insights.decoding import decode_many, decode_message, parse_event
from insights.engine import EngineStats, InsightEngine, KeyRate
from insights.errors import EventParseError, InsightsConfigError, InsightsError, StateDecodeError
from insights.events import CloudTrailEvent, DecodeResult, Rejection, RejectReason
from insights.pipeline import Fed, Pipeline
from insights.records import InsightKey, InsightRecord, records_to_json_lines
from insights.timeparse import TimestampError, parse_epoch_seconds


def accelerated() -> bool:
    """Whether the per-event loops run in C (the accelerator is built and its checked
    msgspec and numpy releases are installed; see :mod:`insights.native`)."""
    return native.module is not None


__all__ = [
    "DECODE_CHUNK_BYTES",
    "SENSITIVITY_LEVELS",
    "CloudTrailEvent",
    "DecodeResult",
    "EngineConfig",
    "EngineStats",
    "EventParseError",
    "Fed",
    "InsightContext",
    "InsightEngine",
    "InsightKey",
    "InsightRecord",
    "InsightSelector",
    "InsightsConfigError",
    "InsightsError",
    "KeyRate",
    "Pipeline",
    "RejectReason",
    "Rejection",
    "Sensitivity",
    "StateDecodeError",
    "TimestampError",
    "accelerated",
    "decode_many",
    "decode_message",
    "iter_json_lines",
    "parse_epoch_seconds",
    "parse_event",
    "records_to_json_lines",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
