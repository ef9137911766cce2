"""Detector state per tracked key at 10k, 100k and 1M keys, and cost per event as keys grow.

    .venv/bin/python benchmarks/memory_bench.py [--sizes 10000 100000 1000000]

Keys are spread over 50 accounts x 4 Regions (distinct APIs). Reported per size: Python heap
growth per key (tracemalloc: baseline arrays, key objects, indexes), snapshot bytes per key, and
the engine's events/s on traffic over those keys (already-decoded events, so parsing is not in
the figure).

Creating the keys puts all of them in one minute, which each stream closes (one vectorized step
over all its keys) when its watermark passes it. The traffic up to two minutes after that is the
warm-up, timed on its own (seconds, creation-minute close included); the events/s column is the
steady state after it, so it is the cost of an event, not of creating its key.

The dedupe window (event ids, bounded by ``dedupe_max_ids``) is switched off here: it is per
event, not per key (about 100 bytes per remembered id).
"""

from __future__ import annotations

import argparse
import gc
import random
import time
import tracemalloc

from insights import EngineConfig, InsightEngine, decode_message
from insights.events import CloudTrailEvent, event_seconds

REGIONS = ("us-east-1", "eu-west-1", "us-west-2", "ap-south-1")
T0 = 1_704_067_200


def event(key: int, second: int) -> CloudTrailEvent:
    account = f"{100000000000 + key % 50:012d}"
    region = REGIONS[(key // 50) % 4]
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(T0 + second))
    line = (
        f'{{"eventTime": "{stamp}", "eventSource": "svc{key % 97}.amazonaws.com", '
        f'"eventName": "Api{key}", "awsRegion": "{region}", "recipientAccountId": "{account}", '
        f'"readOnly": false, "managementEvent": true, "eventID": "k{key}-{second}"}}'
    ).encode()
    return decode_message(line).events[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--traffic", type=int, default=200_000)
    args = parser.parse_args()
    print(
        "| keys | heap bytes/key | snapshot bytes/key | warm-up s "
        "| steady engine events/s over these keys |"
    )
    print("|---|---|---|---|---|")
    rng = random.Random(1)
    for size in args.sizes:
        creating = [event(k, k * 60 // size) for k in range(size)]  # all keys in minute 0
        traffic = sorted(
            (
                event(rng.randrange(size), 60 + i * 3600 // args.traffic)
                for i in range(args.traffic)
            ),
            key=lambda e: e.event_time or "",
        )
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        # the dedupe window holds event ids, not per-key state: measured without it
        engine = InsightEngine(EngineConfig(dedupe_max_ids=0))
        engine.process_many(creating)
        del creating
        gc.collect()
        heap = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        # each stream closes the creation minute when its own watermark passes it: warm up on
        # the traffic until two minutes after that for every stream, then time the rest
        lateness = engine.config.allowed_lateness_seconds
        cut = next(
            i for i, e in enumerate(traffic) if (event_seconds(e) - lateness) // 60 > T0 // 60 + 2
        )
        started = time.perf_counter()
        for i in range(0, cut, 4096):
            engine.process_many(traffic[i : min(i + 4096, cut)])
        warmup = time.perf_counter() - started
        steady = traffic[cut:]
        started = time.perf_counter()
        for i in range(0, len(steady), 4096):
            engine.process_many(steady[i : i + 4096])
        rate = len(steady) / (time.perf_counter() - started)
        snapshot = len(engine.save_state())
        assert engine.keys_tracked == size
        print(
            f"| {size:,} | {heap / size:,.0f} | {snapshot / size:,.0f} "
            f"| {warmup:,.1f} | {rate:,.0f} |",
            flush=True,
        )
        del engine, traffic
        gc.collect()


if __name__ == "__main__":
    main()
