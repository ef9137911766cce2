"""The detector core scored on the Numenta Anomaly Benchmark, the way NAB scores detectors.

    .venv/bin/python benchmarks/nab_bench.py [--nab ../shared/datasets/nab]
        [--half-life 5000] [--quiet-rows 200]

One pass per series, online, no look-ahead, one parameter set for the whole corpus
(:func:`insights.series.series_scores`); the threshold is swept per profile (as NAB does).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from insights.series import series_scores
from streams.lab.nab import debounced, load_corpus, load_profiles, sweep

SCOREBOARD = {
    "ARTime": 74.9,
    "Numenta HTM": 70.5,
    "CAD OSE": 69.9,
    "AWS Random Cut Forest": 51.7,
    "Twitter ADVec": 47.1,
    "windowed Gaussian": 39.6,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    default = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "nab"
    parser.add_argument("--nab", type=Path, default=default)
    parser.add_argument("--half-life", type=float, default=5000.0)
    parser.add_argument(
        "--quiet-rows", type=int, default=200, help="at most one detection per this many rows"
    )
    args = parser.parse_args()
    files = load_corpus(args.nab)
    started = time.perf_counter()
    scores = [series_scores(f.values, half_life=args.half_life) for f in files]
    rows = sum(f.values.shape[0] for f in files)
    print(f"{len(files)} files, {rows:,} rows scored in {time.perf_counter() - started:.1f} s")
    for profile in load_profiles(args.nab):
        threshold, value = sweep(
            files, scores, profile, detect=lambda s, t: debounced(s, t, args.quiet_rows)
        )
        print(f"{profile.name:<20} {value:6.1f}  (threshold score {threshold:.2f})")
    print(
        "published standard-profile scores: " + ", ".join(f"{k} {v}" for k, v in SCOREBOARD.items())
    )


if __name__ == "__main__":
    main()
