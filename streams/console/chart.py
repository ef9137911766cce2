"""The insight page's rate chart: inline SVG drawn on the server (no script or network needed).

Counts per minute as a line, the baseline's expectation as a dashed line inside its 2-sigma band,
the insight's span shaded with its Start and End marked. Each minute has a transparent column
whose ``<title>`` (and ``data-*`` attributes, which the page's small script shows on hover) holds
the minute's numbers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

__all__ = ["around", "rate_chart"]

WIDTH, HEIGHT = 960, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 36


def _minute(text: str) -> int:
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(when.timestamp()) // 60


def _clock(minute: int, with_day: bool = False) -> str:
    when = datetime.fromtimestamp(minute * 60, tz=UTC)
    return when.strftime("%Y-%m-%d %H:%M" if with_day else "%H:%M")


def _number(value: float) -> str:
    return f"{value:.3g}" if value < 10 else f"{value:,.1f}".rstrip("0").rstrip(".")


def around(context: dict[str, Any], start_time: str, before: int) -> dict[str, Any]:
    """``context`` from ``before`` minutes before ``start_time`` on (the close-up chart)."""
    skip = max(_minute(start_time) - before - _minute(context["firstMinute"]), 0)
    first = datetime.fromtimestamp((_minute(context["firstMinute"]) + skip) * 60, tz=UTC)
    cut = {k: context[k][skip:] for k in ("counts", "expected", "upper", "lower")}
    return {**context, **cut, "firstMinute": first.strftime("%Y-%m-%dT%H:%M:%SZ")}


def rate_chart(context: dict[str, Any], start_time: str, end_time: str | None, unit: str) -> str:
    """The chart's SVG markup for ``context`` (a context file's JSON)."""
    counts = [float(c) for c in context["counts"]]
    expected = [float(v) for v in context["expected"]]
    upper = [float(v) for v in context["upper"]]
    lower = [float(v) for v in context["lower"]]
    n = len(counts)
    first = _minute(context["firstMinute"])
    start = _minute(start_time)
    end = _minute(end_time) if end_time else first + n
    top_value = max([*counts, *upper, 1.0]) * 1.1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(n, 1)

    def x(i: float) -> float:
        return round(LEFT + i * step, 2)

    def y(v: float) -> float:
        return round(TOP + plot_h * (1.0 - v / top_value), 2)

    def line(values: list[float]) -> str:
        return " ".join(f"{x(i + 0.5)},{y(v)}" for i, v in enumerate(values))

    band = " ".join(
        [f"{x(i + 0.5)},{y(v)}" for i, v in enumerate(upper)]
        + [f"{x(i + 0.5)},{y(v)}" for i, v in reversed(list(enumerate(lower)))]
    )
    s0, s1 = max(start - first, 0), min(max(end - first, start - first + 1), n)
    parts = [
        f'<svg class="rate-chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
        f'role="img" aria-label="{escape(unit)} per minute against the baseline" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<rect class="span" x="{x(s0)}" y="{TOP}" width="{round(x(s1) - x(s0), 2)}" '
        f'height="{plot_h}" data-start="{escape(_clock(start, True))}" '
        f'data-end="{escape(_clock(start + (s1 - s0), True))}" '
        f'data-first-index="{s0}" data-last-index="{s1 - 1}"/>',
        f'<polygon class="band" points="{band}"/>',
        f'<polyline class="expected" points="{line(expected)}"/>',
        f'<polyline class="counts" points="{line(counts)}"/>',
    ]
    for value in (0.0, top_value / 2.2, top_value / 1.1):
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value)}" y2="{y(value)}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y(value) + 4}" text-anchor="end">'
            f"{escape(_number(value))}</text>"
        )
    for i in range(n):  # an hour tick, and a label every few hours
        minute = first + i
        if minute % 60 == 0 and (n <= 180 or minute % 120 == 0):
            parts.append(
                f'<text class="tick" x="{x(i)}" y="{HEIGHT - BOTTOM + 16}" '
                f'text-anchor="middle">{_clock(minute)}</text>'
            )
    for index, label, css, dx, dy in (
        (s0, "Start", "marker-start", 3, 12),
        (s1, "End", "marker-end", 3, 26),
    ):
        if label == "End" and not end_time:
            continue
        # a label near the right edge is written to the left of its line
        anchor, dx = ("end", -dx) if x(index) > WIDTH - RIGHT - 40 else ("start", dx)
        parts.append(
            f'<line class="{css}" x1="{x(index)}" x2="{x(index)}" y1="{TOP}" '
            f'y2="{TOP + plot_h}"/><text class="marker-label" x="{x(index) + dx}" '
            f'y="{TOP + dy}" text-anchor="{anchor}">{label}</text>'
        )
    for i in range(n):
        when = _clock(first + i, True)
        title = (
            f"{when} UTC: {counts[i]:g} {unit}, expected {_number(expected[i])} "
            f"(band {_number(lower[i])} to {_number(upper[i])})"
        )
        parts.append(
            f'<rect class="minute" x="{x(i)}" y="{TOP}" width="{round(step, 2)}" '
            f'height="{plot_h}" data-minute="{escape(when)}" data-count="{counts[i]:g}" '
            f'data-expected="{_number(expected[i])}" data-upper="{_number(upper[i])}">'
            f"<title>{escape(title)}</title></rect>"
        )
    parts.append(
        f'<text class="axis" x="{LEFT}" y="{HEIGHT - 4}">UTC, '
        f"{escape(_clock(first, True))} to {escape(_clock(first + n - 1, True))}</text></svg>"
    )
    return "".join(parts)
