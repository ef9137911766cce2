"""Detection quality on labelled scenarios, per sensitivity setting (the sensitivity sweep).

    .venv/bin/python benchmarks/quality_bench.py [--days 13] [--seeds 7 8 9]

For each seed a 13-day scenario (2 accounts x 2 Regions, hourly jobs, daily deploys, business
hours, and the 7 labelled anomaly kinds) is replayed at each sensitivity. Reported: recall,
precision of Start records, false insights per 1,000 key-days after day 1, the latency of
detection (detectionTime - labelled onset) and replay events/s.
"""

from __future__ import annotations

import argparse
import statistics
import time

from insights import EngineConfig, InsightEngine, Sensitivity, decode_message
from streams.lab.evaluation import evaluate
from streams.lab.simulate import Scenario, generate, render


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=13)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    args = parser.parse_args()
    streams = []
    for seed in args.seeds:
        scenario = Scenario(seed=seed, days=args.days, reads_per_minute=1.5)
        lines = list(render(generate(scenario), seed=seed))
        streams.append((scenario, lines))
    print(
        "| sensitivity | recall | precision | false / 1,000 key-days "
        "| latency median / p90 / max (min) | events/s |"
    )
    print("|---|---|---|---|---|---|")
    for sensitivity in Sensitivity:
        found = labels = starts = false = 0
        key_days = 0.0
        latencies: list[float] = []
        rates = []
        for scenario, lines in streams:
            engine = InsightEngine(EngineConfig(sensitivity=sensitivity))
            started = time.perf_counter()
            records = []
            for i in range(0, len(lines), 4096):
                events = [e for line in lines[i : i + 4096] for e in decode_message(line).events]
                records += engine.process_many(events)
            records += engine.flush()
            rates.append(len(lines) / (time.perf_counter() - started))
            result = evaluate(
                [r.to_dict() for r in records],
                scenario.labels,
                key_days=engine.keys_tracked * (args.days - 1),
                after=scenario.start + 86_400,
            )
            found += sum(result.found.values())
            labels += len(result.found)
            false += len(result.false_insights)
            starts += sum(
                1
                for r in records
                if r.state == "Start" and r.start_minute * 60 >= scenario.start + 86_400
            )
            key_days += result.key_days
            latencies += [v / 60 for v in result.latencies.values()]
        latencies.sort()
        p90 = latencies[int(0.9 * (len(latencies) - 1))] if latencies else float("nan")
        precision = (starts - false) / starts if starts else float("nan")
        print(
            f"| {sensitivity} | {found}/{labels} | {precision:.2f} | "
            f"{1000 * false / key_days:.2f} | {statistics.median(latencies):.0f} / {p90:.0f} / "
            f"{max(latencies):.0f} | {statistics.median(rates):,.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
