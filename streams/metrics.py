"""Prometheus metrics and the health endpoints of the worker.

All metric names start with ``ctinsights_``; every label has a bounded set of values (reject
reasons, insight types, sinks, assigned partitions). ``/metrics``, ``/healthz`` (the process
runs its loop) and ``/readyz`` (partitions restored and broker reachable) are served on one port.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from importlib import metadata
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily, Metric

from insights import EngineStats, KeyRate, RejectReason, accelerated

__all__ = ["HealthState", "MetricsServer", "WorkerMetrics"]

logger = logging.getLogger(__name__)

_SECONDS_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _version() -> str:
    try:
        return metadata.version("ctinsights")
    except metadata.PackageNotFoundError:
        return "unknown"


#: Label values of ``insight_type``.
INSIGHT_TYPES = ("ApiCallRateInsight", "ApiErrorRateInsight")
#: Label values of ``ctinsights_broker_errors_total{operation}``.
BROKER_OPERATIONS = (
    "poll",
    "produce",
    "flush",
    "commit",
    "committed",
    "end_offsets",
    "beginning_offsets",
)


class WorkerMetrics:
    """The worker's metrics, in their own registry (tests run several workers per process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.build = Info(
            "ctinsights_build",
            "Version, and whether the per-event loops run in C (see insights.native)",
            registry=r,
        )
        self.build.info({"version": _version(), "accelerator": "c" if accelerated() else "none"})
        self.messages = Counter(
            "ctinsights_messages_read", "Kafka messages read", ["topic"], registry=r
        )
        self.events = Counter("ctinsights_events_read", "CloudTrail records read", registry=r)
        self.analysed = Counter(
            "ctinsights_events_analysed", "Records counted in at least one baseline", registry=r
        )
        self.not_analysed = Counter(
            "ctinsights_events_not_analysed",
            "Valid records outside the analysed categories (read-only calls without errors)",
            registry=r,
        )
        self.rejected = Counter(
            "ctinsights_events_rejected", "Records rejected", ["reason"], registry=r
        )
        self.late = Counter(
            "ctinsights_events_late", "Records later than the allowed lateness", registry=r
        )
        self.duplicates = Counter(
            "ctinsights_events_duplicate", "Records whose eventID was already seen", registry=r
        )
        self.started = Counter(
            "ctinsights_insights_started", "Insights started", ["insight_type"], registry=r
        )
        self.ended = Counter(
            "ctinsights_insights_ended", "Insights ended", ["insight_type"], registry=r
        )
        self.produced = Counter(
            "ctinsights_insight_records_produced",
            "Insight records written to the output topic",
            registry=r,
        )
        self.contexts_written = Counter(
            "ctinsights_insight_contexts_written",
            "Insight contexts written to the Insight directory (each issue replaces the last)",
            registry=r,
        )
        self.open = Gauge("ctinsights_insights_open", "Insights started and not ended", registry=r)
        self.keys = Gauge("ctinsights_keys_tracked", "Baselines held", registry=r)
        self.watermark_lag = Gauge(
            "ctinsights_watermark_lag_seconds",
            "Wall clock minus the most advanced event-time watermark of this worker",
            registry=r,
        )
        self.stream_watermark_lag = Gauge(
            "ctinsights_stream_watermark_lag_seconds",
            "Wall clock minus the event-time watermark of each (account, Region) stream "
            "(the freshest stream_metrics_limit streams)",
            ["account", "region"],
            registry=r,
        )
        self.consumer_lag = Gauge(
            "ctinsights_consumer_lag_messages",
            "Messages behind the end of each assigned partition",
            ["topic", "partition"],
            registry=r,
        )
        self.processing = Histogram(
            "ctinsights_processing_seconds",
            "Time to process one polled batch",
            buckets=_SECONDS_BUCKETS,
            registry=r,
        )
        self.checkpoint_seconds = Histogram(
            "ctinsights_checkpoint_seconds",
            "Time to write one partition checkpoint",
            buckets=_SECONDS_BUCKETS,
            registry=r,
        )
        self.checkpoint_bytes = Gauge(
            "ctinsights_checkpoint_bytes",
            "Size of the last checkpoint of each assigned partition",
            ["topic", "partition"],
            registry=r,
        )
        self.dead_letters = Counter(
            "ctinsights_dead_letter_messages",
            "Messages or records sent to the dead-letter topic",
            ["reason"],
            registry=r,
        )
        self.partitions = Gauge(
            "ctinsights_partitions_assigned", "Input partitions owned", registry=r
        )
        self.broker_up = Gauge(
            "ctinsights_broker_up", "1 when the last broker call succeeded", registry=r
        )
        self.broker_errors = Counter(
            "ctinsights_broker_errors", "Failed broker calls (retried)", ["operation"], registry=r
        )
        self.rewinds = Counter(
            "ctinsights_input_rewinds",
            "Polls whose first record was not the partition's next offset: sought back, re-read",
            registry=r,
        )
        self.input_stalls = Counter(
            "ctinsights_input_stalls",
            "Partitions sought again after getting no records for 30 s though the log held more",
            registry=r,
        )
        self.offset_gaps = Counter(
            "ctinsights_input_offset_gaps",
            "Offsets the input log does not hold (compaction, transaction markers, retention), "
            "confirmed by a read from the expected offset",
            registry=r,
        )
        self.key_conflicts = Counter(
            "ctinsights_key_partition_conflicts",
            "Detection keys seen on more than one input partition (mis-keyed producer)",
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "ctinsights_webhook_deliveries",
            "Webhook deliveries that succeeded",
            ["sink"],
            registry=r,
        )
        self.webhook_failures = Counter(
            "ctinsights_webhook_failures",
            "Webhook attempts that failed (each retry counts)",
            ["sink"],
            registry=r,
        )
        self.webhook_retries = Counter(
            "ctinsights_webhook_retries", "Webhook attempts after a failure", ["sink"], registry=r
        )
        self.webhook_dead = Counter(
            "ctinsights_webhook_undeliverable",
            "Insights given up on by a sink (written to its dead-letter file)",
            ["sink"],
            registry=r,
        )
        self.webhook_queue = Gauge(
            "ctinsights_webhook_queue", "Insights waiting for delivery", ["sink"], registry=r
        )
        self.sink_up = Gauge(
            "ctinsights_sink_up",
            "1 while a sink delivers; 0 while it fails and retries with backoff",
            ["sink"],
            registry=r,
        )
        self.sink_errors = Counter(
            "ctinsights_sink_errors",
            "Failed sink steps (a batch that could not be handled, a consumer that failed)",
            ["sink"],
            registry=r,
        )
        self.baselines = BaselineCollector()
        r.register(self.baselines)
        self.last_poll = Gauge(
            "ctinsights_last_poll_timestamp_seconds", "Wall clock of the last poll", registry=r
        )

        self._zero_series()

    def _zero_series(self) -> None:
        """Create every known label set at 0, so ``increase()`` sees the first increment."""
        for reason in RejectReason:
            self.rejected.labels(reason.value)
            self.dead_letters.labels(reason.value)
        for insight_type in INSIGHT_TYPES:
            self.started.labels(insight_type)
            self.ended.labels(insight_type)
        for operation in BROKER_OPERATIONS:
            self.broker_errors.labels(operation)

    def add_engine_delta(self, before: EngineStats, after: EngineStats) -> EngineStats:
        """Count what an engine did since ``before`` (an earlier copy); return a new copy."""
        for counter, delta in (
            (self.events, after.events - before.events),
            (self.analysed, after.analysed - before.analysed),
            (self.not_analysed, after.not_analysed - before.not_analysed),
            (self.late, after.late - before.late),
            (self.duplicates, after.duplicates - before.duplicates),
        ):
            if delta > 0:
                counter.inc(delta)
        for labelled, old, new in (
            (self.rejected, before.rejected, after.rejected),
            (self.started, before.insights_started, after.insights_started),
            (self.ended, before.insights_ended, after.insights_ended),
        ):
            for label, value in new.items():
                if value > old.get(label, 0):
                    labelled.labels(label).inc(value - old.get(label, 0))
        return after.copy()


class BaselineCollector:
    """Exports per-key rate and baseline for the keys that matter, at scrape time.

    The worker publishes a bounded snapshot (open insights + the busiest keys) from its own
    thread with :meth:`publish`; a scrape only reads it, so label cardinality stays bounded and
    scrapes never touch live engine state.
    """

    _LABELS = ("account", "region", "event_source", "event_name", "insight_type", "error_code")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rates: list[KeyRate] = []

    def publish(self, rates: list[KeyRate]) -> None:
        """Replace the exported snapshot."""
        with self._lock:
            self._rates = list(rates)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            rates = list(self._rates)
        rate = GaugeMetricFamily(
            "ctinsights_api_rate_per_minute",
            "Observed calls (or errors) per minute over the current hour (as counted, not "
            "clipped), for open insights and busy keys",
            labels=self._LABELS,
        )
        base = GaugeMetricFamily(
            "ctinsights_api_baseline_per_minute",
            "Seasonal baseline (expected per minute) of the same keys",
            labels=self._LABELS,
        )
        active = GaugeMetricFamily(
            "ctinsights_api_in_insight", "1 while the key has an open insight", labels=self._LABELS
        )
        for item in rates:
            k = item.key
            labels = [
                k.account,
                k.region,
                k.event_source,
                k.event_name,
                k.insight_type,
                k.error_code,
            ]
            rate.add_metric(labels, item.rate_per_minute)
            base.add_metric(labels, item.baseline_per_minute)
            active.add_metric(labels, 1.0 if item.in_insight else 0.0)
        yield rate
        yield base
        yield active


class HealthState:
    """What ``/healthz`` and ``/readyz`` report (updated by the worker loop)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.alive = True
        self.restored = False
        self.broker_ok = False
        self.sinks_down: frozenset[str] = frozenset()
        self.sinks_gate_readiness = True
        """Whether a failing sink fails ``/readyz`` (setting ``sink_failure_fails_readiness``)."""
        self.detail: dict[str, Any] = {}

    def update(self, **values: Any) -> None:
        """Set fields atomically."""
        with self._lock:
            for name, value in values.items():
                setattr(self, name, value)

    def sink_state(self, sink: str, up: bool) -> None:
        """Note whether a sink is delivering."""
        with self._lock:
            self.sinks_down = self.sinks_down - {sink} if up else self.sinks_down | {sink}

    def snapshot(self) -> dict[str, Any]:
        """Plain-data view."""
        with self._lock:
            return {
                "alive": self.alive,
                "restored": self.restored,
                "broker_ok": self.broker_ok,
                "sinks_down": sorted(self.sinks_down),
                **self.detail,
            }

    def ready(self) -> bool:
        """Restored, the broker reached, and (unless not gated) every sink delivering."""
        with self._lock:
            sinks_ok = not (self.sinks_gate_readiness and self.sinks_down)
            return self.restored and self.broker_ok and sinks_ok


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class MetricsServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` on one port, in a daemon thread."""

    def __init__(self, registry: CollectorRegistry, health: HealthState) -> None:
        self._metrics = make_wsgi_app(registry)
        self.health = health
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path in ("/healthz", "/readyz"):
            state = self.health.snapshot()
            ok = state["alive"] if path == "/healthz" else self.health.ready()
            body = json.dumps({"ok": bool(ok), **state}, default=str).encode()
            status = "200 OK" if ok else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json")])
            return [body]
        result: Iterable[bytes] = self._metrics(environ, start_response)
        return result

    def start(self, host: str, port: int) -> int:
        """Serve on ``host:port`` (0 picks a free port); return the port."""
        self._server = make_server(host, port, self._app, _Server, handler_class=_QuietHandler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics", daemon=True
        )
        self._thread.start()
        bound: int = self._server.server_address[1]
        logger.info("metrics on http://%s:%d/metrics", host, bound)
        return bound

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
