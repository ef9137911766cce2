"""Replay throughput (events/s on one core) as a ratio to the parse-only ceiling, and state size.

    .venv/bin/python benchmarks/replay_bench.py [--days 4] [--reads-per-minute 40] [--runs 3]
        [--accounts 2] [--regions 2] [--chunk-bytes 393216]

Bare = msgspec's typed decode alone; parse-only = ``decode_many`` (decode + validation) of the
same records, every one built; replay = parse + engine, with the C accelerator
(``insights.native``) when it is built (clock-only records are not built, so replay can pass
parse-only) and again with the pure-Python loops.
Figures are medians of ``--runs`` runs, all measured in the same process.
"""

from __future__ import annotations

import argparse
import statistics
import time

import msgspec

from insights import (
    DECODE_CHUNK_BYTES,
    CloudTrailEvent,
    EngineConfig,
    InsightEngine,
    decode_many,
    native,
)
from insights.chunks import chunk_ranges
from streams.lab.simulate import Scenario, generate, render

REGIONS = ("us-east-1", "eu-west-1", "us-west-2", "ap-southeast-2", "eu-central-1", "sa-east-1")


def parse_only(lines: list[bytes], budget: int) -> float:
    started = time.perf_counter()
    for start, end in chunk_ranges(lines, budget):
        decode_many(lines[start:end])
    return len(lines) / (time.perf_counter() - started)


def bare_decode(lines: list[bytes]) -> float:
    """msgspec's typed decode alone, results dropped: the floor under any parser of ours."""
    decode = msgspec.json.Decoder(CloudTrailEvent).decode
    started = time.perf_counter()
    for line in lines:
        decode(line)
    return len(lines) / (time.perf_counter() - started)


def replay(lines: list[bytes], budget: int) -> tuple[float, InsightEngine]:
    """What ``ctinsights replay`` does with JSON lines: decode a small chunk (clock-only records
    left unbuilt), hand it to the engine at once, score closed minutes in large steps."""
    engine = InsightEngine(EngineConfig())
    started = time.perf_counter()
    for start, end in chunk_ranges(lines, budget):
        decoded = decode_many(lines[start:end])
        engine.process_many(decoded.events, drain=False)
    engine.drain()
    engine.flush()
    return len(lines) / (time.perf_counter() - started), engine


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--reads-per-minute", type=float, default=40.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--accounts", type=int, default=2, help="simulated accounts")
    parser.add_argument("--regions", type=int, default=2, help="Regions per account")
    parser.add_argument(
        "--chunk-bytes",
        type=int,
        default=DECODE_CHUNK_BYTES,
        help="input bytes decoded per engine call",
    )
    args = parser.parse_args()
    scenario = Scenario(
        days=args.days,
        reads_per_minute=args.reads_per_minute,
        anomaly_day=min(2, args.days - 1),
        accounts=tuple(f"{100000000000 + i * 7919:012d}" for i in range(args.accounts)),
        regions=REGIONS[: args.regions],
    )
    lines = list(render(generate(scenario)))
    size = sum(map(len, lines)) / len(lines)
    bare_rates, parse_rates, replay_rates, pure_rates = [], [], [], []
    engine = None
    built = native.module
    for _ in range(args.runs):
        bare_rates.append(bare_decode(lines))
        parse_rates.append(parse_only(lines, args.chunk_bytes))
        rate, engine = replay(lines, args.chunk_bytes)
        replay_rates.append(rate)
        native.module = None  # type: ignore[assignment]
        pure_rates.append(replay(lines, args.chunk_bytes)[0])
        native.module = built
    assert engine is not None
    b = statistics.median(bare_rates)
    p, r = statistics.median(parse_rates), statistics.median(replay_rates)
    pure = statistics.median(pure_rates)
    state = engine.save_state()
    streams = args.accounts * args.regions
    print(f"records: {len(lines):,} of {size:,.0f} bytes on average, {streams} account-Regions")
    print(f"bare msgspec decode: {b:,.0f} events/s")
    print(f"parse-only: {p:,.0f} events/s   replay: {r:,.0f} events/s   ratio {r / p:.2f}")
    accelerated = "with the C accelerator" if built is not None else "NOT BUILT: pure Python"
    print(f"replay {accelerated}: {r:,.0f}; pure Python: {pure:,.0f} events/s ({r / pure:.2f}x)")
    print(
        f"analysed share: {engine.stats.analysed / engine.stats.events:.2f}; "
        f"keys: {engine.keys_tracked}; snapshot {len(state) / max(engine.keys_tracked, 1):,.0f} "
        f"bytes/key (includes open minutes and dedupe ids)"
    )


if __name__ == "__main__":
    main()
