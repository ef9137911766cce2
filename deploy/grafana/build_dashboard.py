"""Generates ``dashboards/ctinsights.json`` (run it after editing; a test checks they agree).

python deploy/grafana/build_dashboard.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "dashboards" / "ctinsights.json"
DS = {"type": "prometheus", "uid": "${datasource}"}
SELECT = 'account=~"$account", region=~"$region", event_name=~"$api"'


def panel(
    pid: int,
    title: str,
    kind: str,
    x: int,
    y: int,
    w: int,
    h: int,
    *queries: tuple[str, str],
    unit: str = "short",
    instant: bool = False,
) -> dict[str, Any]:
    return {
        "id": pid,
        "type": kind,
        "title": title,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": DS,
                "expr": expr,
                "legendFormat": legend,
                "instant": instant,
                "range": not instant,
            }
            for i, (expr, legend) in enumerate(queries)
        ],
    }


def row(pid: int, title: str, y: int) -> dict[str, Any]:
    return {
        "id": pid,
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
        "panels": [],
    }


def variable(name: str, label: str) -> dict[str, Any]:
    query = f"label_values(ctinsights_api_rate_per_minute, {label})"
    return {
        "name": name,
        "label": name,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": name},
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"text": "All", "value": "$__all"},
    }


def build() -> dict[str, Any]:
    panels = [
        row(1, "Pipeline health", 0),
        panel(
            2,
            "Events read / analysed per second",
            "timeseries",
            0,
            1,
            8,
            7,
            ("sum(rate(ctinsights_events_read_total[1m]))", "read"),
            ("sum(rate(ctinsights_events_analysed_total[1m]))", "analysed"),
            unit="ops",
        ),
        panel(
            3,
            "Consumer lag (messages)",
            "timeseries",
            8,
            1,
            8,
            7,
            (
                "sum by (topic, partition) (ctinsights_consumer_lag_messages)",
                "{{topic}}/{{partition}}",
            ),
        ),
        panel(
            4,
            "Watermark lag (wall clock - event time)",
            "timeseries",
            16,
            1,
            8,
            7,
            ("max(ctinsights_watermark_lag_seconds)", "newest stream"),
            (
                "topk(5, max by (account, region) (ctinsights_stream_watermark_lag_seconds))",
                "{{account}}/{{region}}",
            ),
            unit="s",
        ),
        panel(
            5,
            "Rejected records per second by reason",
            "timeseries",
            0,
            8,
            8,
            7,
            ("sum by (reason) (rate(ctinsights_events_rejected_total[5m]))", "{{reason}}"),
            unit="ops",
        ),
        panel(
            6,
            "Dead-lettered in the last hour",
            "stat",
            8,
            8,
            4,
            7,
            ("sum(increase(ctinsights_dead_letter_messages_total[1h]))", "dead letters"),
        ),
        panel(
            7,
            "Workers up / partitions / keys",
            "stat",
            12,
            8,
            6,
            7,
            ('sum(up{job="ctinsights"})', "workers up"),
            ("sum(ctinsights_partitions_assigned)", "partitions"),
            ("sum(ctinsights_keys_tracked)", "keys"),
        ),
        panel(
            8,
            "Batch processing and checkpoint time (p99)",
            "timeseries",
            18,
            8,
            6,
            7,
            (
                "histogram_quantile(0.99, sum by (le) "
                "(rate(ctinsights_processing_seconds_bucket[5m])))",
                "processing",
            ),
            (
                "histogram_quantile(0.99, sum by (le) "
                "(rate(ctinsights_checkpoint_seconds_bucket[5m])))",
                "checkpoint",
            ),
            unit="s",
        ),
        row(9, "Insights", 15),
        panel(10, "Open insights", "stat", 0, 16, 4, 7, ("sum(ctinsights_insights_open)", "open")),
        panel(
            11,
            "Insights started per hour by type",
            "timeseries",
            4,
            16,
            10,
            7,
            (
                "sum by (insight_type) (increase(ctinsights_insights_started_total[1h]))",
                "{{insight_type}}",
            ),
        ),
        panel(
            12,
            "Keys in an open insight",
            "table",
            14,
            16,
            10,
            7,
            (
                "ctinsights_api_rate_per_minute * on (account, region, event_source, "
                "event_name, insight_type, error_code) (ctinsights_api_in_insight == 1)",
                "",
            ),
            instant=True,
        ),
        row(13, "Rate vs baseline (select account, Region, API above)", 23),
        panel(
            14,
            "Observed calls per minute vs baseline",
            "timeseries",
            0,
            24,
            24,
            9,
            (
                f"ctinsights_api_rate_per_minute{{{SELECT}}}",
                "{{event_name}} {{error_code}} observed ({{account}}/{{region}})",
            ),
            (
                f"ctinsights_api_baseline_per_minute{{{SELECT}}}",
                "{{event_name}} {{error_code}} baseline, expected ({{account}}/{{region}})",
            ),
        ),
        row(15, "Alert delivery", 33),
        panel(
            16,
            "Webhook deliveries and failures per second",
            "timeseries",
            0,
            34,
            12,
            7,
            ("sum by (sink) (rate(ctinsights_webhook_deliveries_total[5m]))", "{{sink}} delivered"),
            ("sum by (sink) (rate(ctinsights_webhook_failures_total[5m]))", "{{sink}} failed"),
            unit="ops",
        ),
        panel(
            17,
            "Undeliverable insights (last 24 h)",
            "stat",
            12,
            34,
            6,
            7,
            ("sum by (sink) (increase(ctinsights_webhook_undeliverable_total[24h]))", "{{sink}}"),
        ),
        panel(
            18,
            "Insight records produced per second",
            "timeseries",
            18,
            34,
            6,
            7,
            ("sum(rate(ctinsights_insight_records_produced_total[5m]))", "produced"),
            unit="ops",
        ),
        panel(
            19,
            "Sinks delivering (1) or failing and retrying (0)",
            "timeseries",
            0,
            41,
            12,
            6,
            ("min by (sink) (ctinsights_sink_up)", "{{sink}}"),
        ),
    ]
    return {
        "uid": "ctinsights",
        "title": "ctinsights",
        "tags": ["ctinsights", "cloudtrail"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                },
                variable("account", "account"),
                variable("region", "region"),
                variable("api", "event_name"),
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(build(), indent=2) + "\n")
