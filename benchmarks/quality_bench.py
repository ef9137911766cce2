"""Detection quality on labelled scenarios, per sensitivity setting (the sensitivity sweep).

    .venv/bin/python benchmarks/quality_bench.py [--suite classic|hard] [--days N] [--seeds 7 8 9]

``classic``: per seed a 13-day scenario (2 accounts x 2 Regions, hourly jobs, daily deploys,
business hours, and the 7 labelled anomaly kinds). ``hard``: the 14-day suite of
:func:`streams.lab.simulate.hard_scenario` (12 kinds, a drop among them, over clumpy
infrastructure-as-code and people working by hand, CI hours, a periodic job and instance agents).
Each is replayed at each sensitivity. Reported: recall, precision of Start records, false
insights per 1,000 key-days after day 1, the latency of detection (detectionTime - labelled
onset), replay events/s, then found and latency per anomaly kind, and with ``--show-false`` the
false insights by API. ``--drops`` turns on drop insights (an opt-in selector); ``--set NAME=VALUE``
overrides any other setting of ``EngineConfig``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from typing import Any

from insights import (
    EngineConfig,
    InsightEngine,
    InsightSelector,
    Sensitivity,
    decode_message,
    parse_epoch_seconds,
)
from streams.lab.evaluation import Evaluation, evaluate
from streams.lab.simulate import Scenario, generate, hard_scenario, render


def _replay(lines: list[bytes], config: EngineConfig) -> tuple[list[Any], float, int]:
    engine = InsightEngine(config)
    started = time.perf_counter()
    records = []
    for i in range(0, len(lines), 4096):
        events = [e for line in lines[i : i + 4096] for e in decode_message(line).events]
        records += engine.process_many(events)
    records += engine.flush()
    return records, len(lines) / (time.perf_counter() - started), engine.keys_tracked


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _p90(values: list[float]) -> float:
    values = sorted(values)
    return values[int(0.9 * (len(values) - 1))] if values else float("nan")


def _arguments() -> tuple[argparse.Namespace, dict[str, Any]]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--suite", choices=["classic", "hard"], default="classic")
    parser.add_argument("--days", type=int, default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    parser.add_argument("--show-false", action="store_true")
    parser.add_argument("--drops", action="store_true", help="report drops (opt-in selector)")
    parser.add_argument("--sensitivity", choices=[str(s) for s in Sensitivity], nargs="+")
    parser.add_argument(
        "--set", nargs="+", default=[], metavar="NAME=VALUE", help="EngineConfig settings"
    )
    args = parser.parse_args()
    settings = {name: _value(text) for name, text in (item.split("=", 1) for item in args.set)}
    if args.drops:
        settings["selectors"] = (
            InsightSelector(insight_type="ApiCallRateInsight", drops=True),
            InsightSelector(insight_type="ApiErrorRateInsight"),
        )
    return args, settings


def _streams(args: argparse.Namespace) -> list[tuple[Scenario, list[bytes]]]:
    streams = []
    for seed in args.seeds:
        if args.suite == "hard":
            scenario = hard_scenario(seed, days=args.days or 14)
        else:
            scenario = Scenario(seed=seed, days=args.days or 13, reads_per_minute=1.5)
        streams.append((scenario, list(render(generate(scenario), seed=seed))))
    return streams


def main() -> None:
    args, settings = _arguments()
    streams = _streams(args)
    print(
        "| sensitivity | recall | precision | false / 1,000 key-days "
        "| latency median / p90 / max (min) | events/s |"
    )
    print("|---|---|---|---|---|---|")
    per_kind: dict[str, dict[str, tuple[int, int, list[float]]]] = {}
    false_by_api: dict[str, Counter[str]] = {}
    for sensitivity in Sensitivity:
        if args.sensitivity and str(sensitivity) not in args.sensitivity:
            continue
        results: list[Evaluation] = []
        starts = 0
        rates = []
        for scenario, lines in streams:
            config = EngineConfig(sensitivity=sensitivity, **settings)
            records, rate, keys = _replay(lines, config)
            rates.append(rate)
            after = scenario.start + 86_400
            results.append(
                evaluate(
                    [r.to_dict() for r in records],
                    scenario.labels,
                    key_days=keys * (scenario.days - 1),
                    after=after,
                )
            )
            starts += sum(1 for r in records if r.state == "Start" and r.start_minute * 60 >= after)
        false = sum(len(r.false_insights) for r in results)
        key_days = sum(r.key_days for r in results)
        latencies = [v / 60 for r in results for v in r.latencies.values()]
        precision = (starts - false) / starts if starts else float("nan")
        found = sum(sum(r.found.values()) for r in results)
        labels = sum(len(r.found) for r in results)
        print(
            f"| {sensitivity} | {found}/{labels} | {precision:.2f} | "
            f"{1000 * false / key_days:.2f} | {statistics.median(latencies):.0f} / "
            f"{_p90(latencies):.0f} / {max(latencies):.0f} | {statistics.median(rates):,.0f} |",
            flush=True,
        )
        kinds = per_kind[str(sensitivity)] = {}
        for result in results:
            for kind, (hit, total, lat) in result.by_kind().items():
                h, t, ls = kinds.get(kind, (0, 0, []))
                kinds[kind] = (h + hit, t + total, ls + lat)
        false_by_api[str(sensitivity)] = Counter(
            f"{f['insightDetails']['insightType']}:{f['insightDetails']['eventName']}"
            for r in results
            for f in r.false_insights
        )
        early = sum(
            1
            for (scenario, _), r in zip(streams, results, strict=True)
            for f in r.false_insights
            if parse_epoch_seconds(f["eventTime"]) < scenario.start + 5 * 86_400
        )
        false_by_api[str(sensitivity)]["(of them before day 5)"] = early
    levels = list(per_kind)
    print(
        "\n| kind | " + " | ".join(f"{s}: found, latency median / max (min)" for s in levels) + " |"
    )
    print("|---|" + "---|" * len(levels))
    for kind in per_kind[levels[0]]:
        cells = []
        for level in levels:
            hit, total, lat = per_kind[level][kind]
            timing = f"{statistics.median(lat):.0f} / {max(lat):.0f}" if lat else "-"
            cells.append(f"{hit}/{total}, {timing}")
        print(f"| {kind} | " + " | ".join(cells) + " |")
    if args.show_false:
        for level in levels:
            print(f"\nfalse insights at {level}: {dict(false_by_api[level].most_common())}")


if __name__ == "__main__":
    main()
