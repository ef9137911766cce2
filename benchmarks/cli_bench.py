"""``ctinsights replay`` as a process, against a bare stdlib ``json.loads`` loop, in one run.

    .venv/bin/python benchmarks/cli_bench.py [--events 300000] [--runs 3]
        [--modes accelerated,pure] [--inputs lines,gzip,tree,stdin] [--compare DIR]

A simulated CloudTrail stream (~1.5 KB records, 8 account-Regions, 20-30% analysed calls:
writes and errors) is written four ways: JSON lines, gzip JSON lines, a CloudTrail S3 tree of
``{"Records": [...]}`` ``.json.gz`` log files (one per account-Region and 5 minutes, AWS's key
layout) and JSON lines piped into ``ctinsights replay -``. Per input and run, each of these is
timed as a whole process (start-up included), one after the other:

* the bare loop: ``python -c`` reading the same input the same way (``gzip.open`` for gzip,
  every ``.json.gz`` file of the tree) and calling ``json.loads`` on every line or file;
* the floor: ``python -c`` reading the input whole and decoding it into the record structs
  with one msgspec call per file (``decode_lines``), no checks, no engine: no Python reader
  of this data gets faster than this;
* ``ctinsights replay`` per ``--modes``: ``accelerated`` (the C code, when built) and ``pure``
  (``CTINSIGHTS_PURE_PYTHON=1``), and ``compare``: the checkout ``--compare`` names (with its
  accelerator built in place: ``python setup.py build_ext --inplace``), e.g. an earlier commit.

Reported: medians over ``--runs`` of events/s and of each run's time ratio replay/bare (0.25
means replay takes a quarter of the bare loop's time), and the floor's events/s.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from streams.lab.simulate import Scenario, SimEvent, generate, render

_CLI = [sys.executable, "-m", "streams", "replay"]
_BARE_LINES = """
import gzip, json, sys
path = sys.argv[1]
opener = gzip.open if path.endswith(".gz") else open
n = 0
with opener(path, "rb") as f:
    for line in f:
        json.loads(line)
        n += 1
print(n)
"""
_BARE_TREE = """
import gzip, json, os, sys
n = 0
for root, _, files in os.walk(sys.argv[1]):
    for name in sorted(files):
        with gzip.open(os.path.join(root, name), "rb") as f:
            n += len(json.loads(f.read())["Records"])
print(n)
"""
_FLOOR = """
import gzip, os, sys, msgspec
from insights.events import CloudTrailEvent
class File(msgspec.Struct):
    Records: list[CloudTrailEvent]
lines, batch = msgspec.json.Decoder(CloudTrailEvent), msgspec.json.Decoder(File)
path, n = sys.argv[1], 0
if path == "-":
    n = len(lines.decode_lines(sys.stdin.buffer.read()))
elif os.path.isdir(path):
    for root, _, files in os.walk(path):
        for name in sorted(files):
            with gzip.open(os.path.join(root, name), "rb") as f:
                n += len(batch.decode(f.read()).Records)
else:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        n = len(lines.decode_lines(f.read()))
print(n)
"""
_BARE_STDIN = """
import json, sys
n = 0
for line in sys.stdin.buffer:
    json.loads(line)
    n += 1
print(n)
"""


def make_stream(events: int) -> list[SimEvent]:
    scenario = Scenario(
        seed=21,
        days=7,
        accounts=("111122223333", "444455556666", "777788889999", "121212121212"),
        regions=("us-east-1", "eu-west-1"),
        reads_per_minute=7.0,
    )
    merged = generate(scenario)
    if len(merged) < events:
        raise SystemExit(f"the scenario has {len(merged)} events, fewer than --events {events}")
    step = len(merged) / events
    return [merged[int(i * step)] for i in range(events)]


def write_inputs(events: list[SimEvent], folder: Path) -> dict[str, Path]:
    lines = list(render(events, seed=5))
    plain = folder / "events.jsonl"
    plain.write_bytes(b"\n".join(lines) + b"\n")
    packed = folder / "events.jsonl.gz"
    with gzip.open(packed, "wb", compresslevel=6) as out:
        out.write(plain.read_bytes())
    tree = folder / "AWSLogs"
    files: dict[tuple[str, str, int], list[bytes]] = defaultdict(list)
    for event, line in zip(events, lines, strict=True):
        files[(event.account, event.region, event.seconds // 300 * 300)].append(line)
    for (account, region, start), records in files.items():
        stamp = time.strftime("%Y%m%dT%H%MZ", time.gmtime(start))
        day = time.strftime("%Y/%m/%d", time.gmtime(start))
        where = tree / account / "CloudTrail" / region / day
        where.mkdir(parents=True, exist_ok=True)
        name = f"{account}_CloudTrail_{region}_{stamp}_{start:x}.json.gz"
        body = b'{"Records":[' + b",".join(records) + b"]}"
        (where / name).write_bytes(gzip.compress(body, compresslevel=6))
    return {"lines": plain, "gzip": packed, "tree": tree, "stdin": plain}


def timed(
    command: list[str],
    stdin_path: Path | None = None,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
) -> tuple[float, bytes]:
    started = time.perf_counter()
    with open(stdin_path or os.devnull, "rb") as source:
        done = subprocess.run(
            command,
            stdin=source,
            capture_output=True,
            env=env,
            cwd=cwd,
            check=False,
        )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{command} failed: {done.stderr.decode()[-2000:]}")
    return seconds, done.stdout


def bare(kind: str, path: Path) -> float:
    if kind == "stdin":
        return timed([sys.executable, "-c", _BARE_STDIN], stdin_path=path)[0]
    script = _BARE_TREE if kind == "tree" else _BARE_LINES
    return timed([sys.executable, "-c", script, str(path)])[0]


def floor(kind: str, path: Path) -> float:
    if kind == "stdin":
        return timed([sys.executable, "-c", _FLOOR, "-"], stdin_path=path)[0]
    return timed([sys.executable, "-c", _FLOOR, str(path)])[0]


def replay(kind: str, path: Path, mode: str, other: str | None = None) -> tuple[float, int]:
    env = dict(os.environ)
    env.pop("CTINSIGHTS_PURE_PYTHON", None)
    if mode == "pure":
        env["CTINSIGHTS_PURE_PYTHON"] = "1"
    cwd = None
    if mode == "compare" and other is not None:  # ``-m`` puts the working directory first
        env["PYTHONPATH"] = cwd = other
    if mode == "msgspec-reader":
        env["CT_NO_C_READER"] = "1"
    args = ["-"] if kind == "stdin" else [str(path)]
    stdin = path if kind == "stdin" else None
    seconds, out = timed([*_CLI, *args], stdin_path=stdin, env=env, cwd=cwd)
    return seconds, out.count(b"\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", default="accelerated,pure")
    parser.add_argument("--inputs", default="lines,gzip,tree,stdin")
    parser.add_argument("--compare", help="another checkout to time as mode 'compare'")
    args = parser.parse_args()
    modes = args.modes.split(",") + (["compare"] if args.compare else [])
    events = make_stream(args.events)
    analysed = sum(1 for e in events if not e.read_only or e.error) / len(events)
    with tempfile.TemporaryDirectory(prefix="ctinsights-cli-bench-") as scratch:
        paths = write_inputs(events, Path(scratch))
        size = paths["lines"].stat().st_size
        print(
            f"# {len(events):,} events, {size / len(events):.0f} bytes each, {analysed:.0%} "
            f"analysed, medians of {args.runs} runs",
            flush=True,
        )
        print(
            "input   bare loop ev/s  floor ev/s  " + "   ".join(f"{m:>22}" for m in modes),
            flush=True,
        )
        for kind in args.inputs.split(","):
            bares: list[float] = []
            floors: list[float] = []
            rates: dict[str, list[float]] = {m: [] for m in modes}
            ratios: dict[str, list[float]] = {m: [] for m in modes}
            outputs: dict[str, int] = {}
            for _ in range(args.runs):
                base = bare(kind, paths[kind])
                bares.append(len(events) / base)
                floors.append(len(events) / floor(kind, paths[kind]))
                for mode in modes:
                    seconds, insights = replay(kind, paths[kind], mode, args.compare)
                    rates[mode].append(len(events) / seconds)
                    ratios[mode].append(seconds / base)
                    outputs[mode] = insights
            cells = [
                f"{statistics.median(rates[m]) / 1000:6.0f}k/s ratio "
                f"{statistics.median(ratios[m]):.2f}"
                for m in modes
            ]
            print(
                f"{kind:7} {statistics.median(bares) / 1000:10.0f}k/s "
                f"{statistics.median(floors) / 1000:9.0f}k/s   " + "   ".join(cells),
                f"  insights {json.dumps(outputs)}",
                flush=True,
            )


if __name__ == "__main__":
    main()
