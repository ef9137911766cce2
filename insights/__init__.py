"""ctinsights detection library: CloudTrail events in, AWS-format Insight records out.

Pure computation: no I/O, no wall clock, no Kafka, metrics or HTTP. Time comes from events.
"""

from __future__ import annotations

import logging

from insights.config import SENSITIVITY_LEVELS, EngineConfig, InsightSelector, Sensitivity
from insights.engine import EngineStats, InsightEngine, KeyRate
from insights.errors import EventParseError, InsightsConfigError, InsightsError, StateDecodeError
from insights.events import (
    DECODE_CHUNK_BYTES,
    CloudTrailEvent,
    DecodeResult,
    Rejection,
    RejectReason,
    chunk_ranges,
    decode_many,
    decode_message,
    iter_json_lines,
    parse_event,
    prepare_decode,
)
from insights.records import InsightKey, InsightRecord, records_to_json_lines

__all__ = [
    "DECODE_CHUNK_BYTES",
    "SENSITIVITY_LEVELS",
    "CloudTrailEvent",
    "DecodeResult",
    "EngineConfig",
    "EngineStats",
    "EventParseError",
    "InsightEngine",
    "InsightKey",
    "InsightRecord",
    "InsightSelector",
    "InsightsConfigError",
    "InsightsError",
    "KeyRate",
    "RejectReason",
    "Rejection",
    "Sensitivity",
    "StateDecodeError",
    "chunk_ranges",
    "decode_many",
    "decode_message",
    "iter_json_lines",
    "parse_event",
    "prepare_decode",
    "records_to_json_lines",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
