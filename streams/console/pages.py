"""The console's HTML pages, rendered on the server. Every value from a record or a context
goes through :func:`esc` (principal ARNs and user agents come from the logs)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from html import escape
from typing import Any

from streams.console.chart import around, rate_chart
from streams.console.store import PAGE_SIZE, Filters, Insight

__all__ = ["PAGE_SCRIPT", "error_page", "insight_page", "list_page"]

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2433;background:#f6f7f9}
header{background:#232f3e;color:#fff;padding:10px 20px}header a{color:#fff;text-decoration:none}
main{padding:16px 20px;max-width:1200px}a{color:#0b63c5}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e3e6ea;vertical-align:top}
th{background:#eef1f4;font-weight:600}td:first-child{white-space:nowrap}td.num{text-align:right;font-variant-numeric:tabular-nums}
form.filters{display:flex;flex-wrap:wrap;gap:8px;margin-bottom:12px;align-items:end}
form.filters label{display:flex;flex-direction:column;font-size:12px;color:#536070}
.counts span{display:inline-block;margin-right:14px}.badge{padding:1px 6px;border-radius:8px;
font-size:12px;background:#e3e6ea}.badge.open{background:#ffd8a8}.pager{margin:10px 0}
.tabs button{border:1px solid #c6ccd4;background:#fff;padding:6px 14px;cursor:pointer}
.tabs button[aria-selected=true]{background:#232f3e;color:#fff}
section.tab{background:#fff;padding:12px;border:1px solid #e3e6ea;margin-top:-1px}
.rate-chart .span{fill:#ffd8a8;opacity:.55}.rate-chart .band{fill:#9ec5fe;opacity:.45}
.rate-chart .expected{fill:none;stroke:#1c5bbf;stroke-dasharray:5 3;stroke-width:1.5}
.rate-chart .counts{fill:none;stroke:#c92a2a;stroke-width:1.6}
.rate-chart .grid{stroke:#e3e6ea}.rate-chart .tick,.rate-chart .axis{font-size:11px;fill:#536070}
.rate-chart .minute{fill:transparent}.rate-chart .minute:hover{fill:rgba(0,0,0,.08)}
.rate-chart .marker-start,.rate-chart .marker-end{stroke:#232f3e;stroke-width:1.2}
.rate-chart .marker-label{font-size:11px;fill:#232f3e}#readout{min-height:1.4em;color:#536070}
.bar{background:#9ec5fe;height:10px;display:inline-block;vertical-align:middle}
.bar.insight{background:#f59f00}.attrs{display:grid;grid-template-columns:1fr 1fr;gap:16px}
pre{white-space:pre-wrap;word-break:break-all;background:#fff;padding:10px;font-size:12px}
.note{background:#fff3bf;padding:8px 12px;border-radius:4px}.error{background:#ffe3e3}
"""

PAGE_SCRIPT = """
document.querySelectorAll('.tabs button').forEach(function (b) {
  b.addEventListener('click', function () {
    document.querySelectorAll('.tabs button').forEach(function (o) {
      o.setAttribute('aria-selected', String(o === b));
      document.getElementById(o.dataset.tab).hidden = o !== b;
    });
  });
});
var readout = document.getElementById('readout');
document.querySelectorAll('.rate-chart .minute').forEach(function (m) {
  m.addEventListener('mouseenter', function () {
    readout.textContent = m.dataset.minute + ' UTC: ' + m.dataset.count + ' (expected ' +
      m.dataset.expected + ', band up to ' + m.dataset.upper + ')';
  });
});
"""


def esc(value: object) -> str:
    """``value`` as HTML text (quotes too: values also go into attributes)."""
    return escape("" if value is None else str(value), quote=True)


def _layout(title: str, body: str, script: bool = False) -> str:
    js = f"<script>{PAGE_SCRIPT}</script>" if script else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)} · ctinsights</title><style>{_STYLE}</style></head><body>"
        '<header><a href="/"><strong>ctinsights</strong> console</a></header>'
        f"<main>{body}</main>{js}</body></html>"
    )


def error_page(status: str, message: str) -> str:
    return _layout(status, f"<h1>{esc(status)}</h1><p class='note error'>{esc(message)}</p>")


def _number(value: object) -> str:
    if not isinstance(value, int | float):
        return ""
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def _when(text: str | None) -> str:
    return "" if not text else text.replace("T", " ").replace("Z", " UTC")


def _field(name: str, label: str, value: str, kind: str = "text") -> str:
    return (
        f'<label>{esc(label)}<input type="{kind}" name="{name}" value="{esc(value)}" '
        f'size="14"></label>'
    )


def _select(name: str, label: str, value: str, options: list[tuple[str, str]]) -> str:
    items = "".join(
        f'<option value="{esc(v)}"{" selected" if v == value else ""}>{esc(t)}</option>'
        for v, t in options
    )
    return f'<label>{esc(label)}<select name="{name}">{items}</select></label>'


def list_page(matched: list[Insight], filters: Filters) -> str:
    """``/``: the insights that pass ``filters``, newest first, a page at a time."""
    f = filters
    form = (
        '<form class="filters" method="get" action="/">'
        + _field("since", "since (UTC)", f.since)
        + _field("until", "until (UTC)", f.until)
        + _field("account", "account", f.account)
        + _field("region", "Region", f.region)
        + _field("source", "event source", f.source)
        + _field("name", "event name", f.name)
        + _select(
            "type",
            "insight type",
            f.insight_type,
            [
                ("", "any"),
                ("ApiCallRateInsight", "call rate"),
                ("ApiErrorRateInsight", "error rate"),
            ],
        )
        + _select("state", "state", f.state, [("", "any"), ("open", "open"), ("closed", "closed")])
        + _field("min_score", "min score", "" if f.min_score is None else f"{f.min_score:g}")
        + '<button type="submit">Filter</button> <a href="/">clear</a></form>'
    )
    kinds = Counter(str(i.details.get("insightType")) for i in matched)
    counts = "".join(
        f'<span data-type="{esc(k)}">{esc(k)}: <strong>{v}</strong></span>'
        for k, v in sorted(kinds.items())
    )
    first = (f.page - 1) * PAGE_SIZE
    shown = matched[first : first + PAGE_SIZE]
    rows = []
    for insight in shown:
        s = insight.summary()
        state = "open" if s["open"] else "closed"
        api = f"{s['eventSource']}:{s['eventName']}"
        rows.append(
            f'<tr class="insight" data-id="{esc(insight.shared_event_id)}">'
            f'<td><a href="/insights/{esc(insight.shared_event_id)}">{esc(_when(s["startTime"]))}'
            f'</a></td><td><span class="badge {state}">{state}</span></td>'
            f"<td>{esc(s['insightType'])}{' (drop)' if s['direction'] == 'drop' else ''}</td>"
            f"<td>{esc(api)}</td><td>{esc(s['errorCode'] or '')}</td>"
            f"<td>{esc(s['recipientAccountId'])}</td><td>{esc(s['awsRegion'])}</td>"
            f'<td class="num">{_number(s["score"])}</td>'
            f'<td class="num">{_number(s["insightAverage"])}</td>'
            f'<td class="num">{_number(s["baselineAverage"])}</td>'
            f'<td class="num">{esc(s["insightDuration"])}</td></tr>'
        )
    pages = max((len(matched) + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    pager = [f"page {f.page} of {pages}"]
    if f.page > 1:
        pager.insert(0, f'<a rel="prev" href="/?{esc(f.query(page=f.page - 1))}">newer</a>')
    if f.page < pages:
        pager.append(f'<a rel="next" href="/?{esc(f.query(page=f.page + 1))}">older</a>')
    table = (
        "<table><thead><tr><th>start</th><th>state</th><th>type</th><th>API</th>"
        "<th>error code</th><th>account</th><th>Region</th><th>score</th>"
        "<th>insight /min</th><th>baseline /min</th><th>minutes</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        if rows
        else "<p class='note'>No insight matches.</p>"
    )
    body = (
        f"<h1>Insights</h1>{form}<p class='counts'>{len(matched)} insights. {counts}</p>"
        f"{table}<p class='pager'>{' · '.join(pager)}</p>"
    )
    return _layout("Insights", body)


def _width(value: object, top: float) -> int:
    return round(100 * float(value) / top) if isinstance(value, int | float) else 0


def _attribution_table(title: str, entries: list[dict[str, Any]], css: str) -> str:
    top = max([float(e.get("average") or 0) for e in entries] + [1e-12])
    rows = "".join(
        f"<tr><td>{esc(e.get('value'))}</td><td class='num'>{_number(e.get('average'))}</td>"
        f"<td><span class='bar {css}' style='width:{_width(e.get('average'), top)}px'>"
        "</span></td></tr>"
        for e in entries
    )
    return (
        f"<div><h4>{esc(title)}</h4><table><thead><tr><th>value</th><th>per minute</th><th></th>"
        f"</tr></thead><tbody>{rows or '<tr><td colspan=3>none</td></tr>'}</tbody></table></div>"
    )


def _latency(insight: Insight) -> str:
    detected = insight.extra.get("detectionTime")
    if not isinstance(detected, str):
        return ""
    try:
        seconds = datetime.fromisoformat(detected.replace("Z", "+00:00")) - datetime.fromisoformat(
            insight.start_time.replace("Z", "+00:00")
        )
    except ValueError:
        return ""
    return f"{seconds.total_seconds() / 60:g} min after its first minute"


def insight_page(insight: Insight, context: dict[str, Any] | None) -> str:
    """``/insights/<sharedEventID>``: the chart, the statistics, attributions and the records."""
    s = insight.summary()
    details = insight.details
    error = details.get("insightType") == "ApiErrorRateInsight"
    unit = "errors" if error else "calls"
    stats = insight.statistics()
    facts = [
        ("state", "open" if s["open"] else "closed"),
        ("start", _when(s["startTime"])),
        ("end", _when(s["endTime"]) or "still open"),
        (
            "detected",
            f"{_when(s['detectionTime'])} ({_latency(insight)})" if s["detectionTime"] else "",
        ),
        ("score (-log10 tail probability)", _number(s["score"])),
        (f"insight average ({unit}/min)", _number(s["insightAverage"])),
        (f"baseline average ({unit}/min)", _number(s["baselineAverage"])),
        ("insight duration (min)", stats.get("insightDuration")),
        ("baseline duration (min)", stats.get("baselineDuration")),
        ("account / Region", f"{s['recipientAccountId']} / {s['awsRegion']}"),
        ("reason", insight.extra.get("reason", "")),
    ]
    facts_html = "".join(
        f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in facts if v not in ("", None)
    )
    if context is not None and context.get("counts"):
        start, end = insight.start_time, insight.end_time
        near = rate_chart(around(context, start, 60), start, end, unit)
        full = rate_chart(context, start, end, unit)
        chart = (
            f'<h3>From an hour before</h3><div id="chart-near">{near}</div>'
            '<p id="readout">Hover over the chart for a minute\'s numbers.</p>'
            f"<p>{esc(unit.capitalize())} per minute (red), the baseline's expectation (dashed)"
            " and its 2-sigma band (blue), the insight shaded.</p>"
            f'<h3>The whole context (up to 6 hours before)</h3><div id="chart-full">{full}</div>'
        )
    else:
        chart = (
            '<p class="note" id="no-context">No context was written for this insight (AWS\'s '
            "own Insight files and drop insights carry none): its records are below.</p>"
        )
    attrs = (details.get("insightContext") or {}).get("attributions") or []
    blocks = "".join(
        f"<h3>{esc(a.get('attribute'))}</h3><div class='attrs'>"
        + _attribution_table("insight", a.get("insight") or [], "insight")
        + _attribution_table("baseline", a.get("baseline") or [], "")
        + "</div>"
        for a in attrs
    )
    records = [r for r in (insight.start, insight.end) if r is not None]
    raw = "".join(f"<pre>{esc(json.dumps(r, indent=2))}</pre>" for r in records)
    title = f"{s['eventSource']}:{s['eventName']}" + (f" {s['errorCode']}" if error else "")
    body = (
        f"<h1>{esc(title)}</h1><p>{esc(s['insightType'])} · "
        f'<a href="/api/insights/{esc(insight.shared_event_id)}">JSON</a></p>'
        '<div class="tabs" role="tablist">'
        '<button data-tab="tab-rate" aria-selected="true">Rate</button>'
        '<button data-tab="tab-attributions" aria-selected="false">Attributions</button>'
        '<button data-tab="tab-records" aria-selected="false">Records</button></div>'
        f'<section class="tab" id="tab-rate">{chart}<table class="facts">{facts_html}</table>'
        "</section>"
        f'<section class="tab" id="tab-attributions" hidden>{blocks or "none"}</section>'
        f'<section class="tab" id="tab-records" hidden>{raw}</section>'
    )
    return _layout(title, body, script=True)
