"""Numenta Anomaly Benchmark scoring, implemented from NAB's description (no NAB code used).

Per file: anomaly windows from ``labels/combined_windows.json``; detections in the first
``min(floor(0.15 * rows), 750)`` rows (the probationary period) are ignored. The first detection
inside a window earns ``tpWeight * sigma(p)`` where ``p`` runs from -1 at the window's first row
to 0 past its last and ``sigma(x) = 2 / (1 + e^(5x)) - 1``; later detections in the same window
earn nothing. A window without detection costs ``fnWeight``. A detection outside every window
costs ``fpWeight``, scaled by ``-sigma(d)`` when it follows a window (``d`` = distance after the
window's end over the window's length), so detections just after a window cost less. Totals over
the corpus are normalized so that a detector that never fires scores 0 and one that fires at the
first row of every window scores 100. The detection threshold is chosen per profile by a sweep.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = [
    "NabFile",
    "Profile",
    "debounced",
    "load_corpus",
    "load_profiles",
    "normalized_score",
    "sweep",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def scaled_sigmoid(x: float) -> float:
    """NAB's reward curve: ~0.987 at -1, 0 at 0, towards -1 for positive ``x``."""
    if x > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


@dataclass(frozen=True)
class Profile:
    """Weights of one NAB scoring profile."""

    name: str
    tp: float
    fn: float
    fp: float


@dataclass(frozen=True)
class NabFile:
    """One series with its windows as inclusive row ranges."""

    name: str
    values: FloatArray
    windows: tuple[tuple[int, int], ...]

    @property
    def probation(self) -> int:
        rows = self.values.shape[0]
        return int(min(math.floor(0.15 * rows), 750))


def load_profiles(root: Path) -> list[Profile]:
    """The scoring profiles of ``config/profiles.json``."""
    data = json.loads((root / "config" / "profiles.json").read_text())
    return [
        Profile(
            name,
            c["CostMatrix"]["tpWeight"],
            c["CostMatrix"]["fnWeight"],
            c["CostMatrix"]["fpWeight"],
        )
        for name, c in data.items()
    ]


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.split(".")[0])


def load_corpus(root: Path) -> list[NabFile]:
    """Every labelled series of the corpus (``data/**/*.csv`` with ``combined_windows``)."""
    windows = json.loads((root / "labels" / "combined_windows.json").read_text())
    files = []
    for name in sorted(windows):
        with open(root / "data" / name, newline="") as handle:
            rows = list(csv.DictReader(handle))
        stamps = [_time(r["timestamp"]) for r in rows]
        values = np.array([float(r["value"]) for r in rows])
        spans = []
        for start, end in windows[name]:
            first = next(i for i, t in enumerate(stamps) if t >= _time(start))
            last = max(i for i, t in enumerate(stamps) if t <= _time(end))
            spans.append((first, last))
        files.append(NabFile(name, values, tuple(spans)))
    return files


def file_score(f: NabFile, detections: BoolArray, profile: Profile) -> float:
    """Raw NAB score of one file's detections."""
    detected = detections.copy()
    detected[: f.probation] = False
    score = 0.0
    in_window = np.zeros(detected.shape[0], dtype=bool)
    for first, last in f.windows:
        in_window[first : last + 1] = True
        hits = np.flatnonzero(detected[first : last + 1])
        if hits.size == 0:
            score -= profile.fn
            continue
        length = last - first + 1
        position = -(length - hits[0]) / length
        score += profile.tp * scaled_sigmoid(position)
    for i in np.flatnonzero(detected & ~in_window).tolist():
        before = [(a, b) for a, b in f.windows if b < i]
        if not before:
            score -= profile.fp
            continue
        first, last = before[-1]
        distance = (i - last) / max(last - first, 1)
        score += profile.fp * scaled_sigmoid(distance)
    return score


def normalized_score(files: list[NabFile], detections: list[BoolArray], profile: Profile) -> float:
    """Corpus score on NAB's scale: 0 for a silent detector, 100 for a perfect one."""
    raw = sum(file_score(f, d, profile) for f, d in zip(files, detections, strict=True))
    windows = sum(len(f.windows) for f in files)
    null = -profile.fn * windows
    perfect = profile.tp * scaled_sigmoid(-1.0) * windows
    return 100.0 * (raw - null) / (perfect - null)


def debounced(scores: FloatArray, threshold: float, quiet: int) -> BoolArray:
    """Detections at ``threshold``, at most one per ``quiet`` rows (uses past rows only)."""
    out = np.zeros(scores.shape[0], dtype=bool)
    last = -quiet
    for i in np.flatnonzero(scores >= threshold).tolist():
        if i - last >= quiet:
            out[i] = True
            last = i
    return out


def sweep(
    files: list[NabFile],
    scores: list[FloatArray],
    profile: Profile,
    thresholds: FloatArray | None = None,
    detect: Callable[[FloatArray, float], BoolArray] | None = None,
) -> tuple[float, float]:
    """The best (threshold, normalized score) for one profile over candidate thresholds."""
    decide = detect or (lambda s, t: s >= t)
    if thresholds is None:
        every = np.concatenate(scores)
        positive = every[every > 0]
        thresholds = np.unique(
            np.r_[
                np.quantile(positive, np.linspace(0.5, 0.9999, 50)),
                np.geomspace(1.0, positive.max(), 30),
            ]
        )
    best = (math.inf, -math.inf)
    for threshold in thresholds.tolist():
        value = normalized_score(files, [decide(s, threshold) for s in scores], profile)
        if value > best[1]:
            best = (threshold, value)
    return best
