from __future__ import annotations

import numpy as np
import pytest

from streams.lab.nab import NabFile, Profile, file_score, normalized_score, scaled_sigmoid, sweep

STANDARD = Profile("standard", tp=1.0, fn=1.0, fp=0.11)


def corpus() -> list[NabFile]:
    return [
        NabFile("a", np.zeros(1000), ((400, 449), (700, 749))),
        NabFile("b", np.zeros(2000), ((1500, 1599),)),
    ]


def at(n: int, *rows: int) -> np.ndarray:
    d = np.zeros(n, dtype=bool)
    d[list(rows)] = True
    return d


def test_perfect_scores_100_and_silent_0() -> None:
    files = corpus()
    perfect = [at(1000, 400, 700), at(2000, 1500)]
    silent = [np.zeros(1000, bool), np.zeros(2000, bool)]
    assert normalized_score(files, perfect, STANDARD) == pytest.approx(100.0)
    assert normalized_score(files, silent, STANDARD) == pytest.approx(0.0)


def test_earlier_is_better_and_later_hits_in_a_window_do_not_count() -> None:
    f = corpus()[0]
    early = file_score(f, at(1000, 400, 700), STANDARD)
    late = file_score(f, at(1000, 440, 740), STANDARD)
    assert early > late > -2
    assert file_score(f, at(1000, 400, 401, 402, 700), STANDARD) == early


def test_false_positives_cost_less_right_after_a_window() -> None:
    f = corpus()[0]
    base = file_score(f, at(1000, 400, 700), STANDARD)
    far = file_score(f, at(1000, 200, 400, 700), STANDARD)  # no window before it
    after = file_score(f, at(1000, 400, 451, 700), STANDARD)  # just after a window
    assert far == pytest.approx(base - 0.11)
    assert base - 0.11 < after < base


def test_probationary_detections_are_ignored() -> None:
    f = corpus()[0]  # probation = 150 rows
    assert file_score(f, at(1000, 10, 400, 700), STANDARD) == file_score(
        f, at(1000, 400, 700), STANDARD
    )


def test_sigmoid_and_sweep() -> None:
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-4)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(5.0) == -1.0
    files = corpus()
    scores = [np.zeros(1000), np.zeros(2000)]
    scores[0][[400, 700]] = 9.0
    scores[0][300] = 5.0  # a false positive only below 9
    scores[1][1500] = 9.0
    threshold, value = sweep(files, scores, STANDARD, np.array([1.0, 6.0]))
    assert threshold == 6.0
    assert value == pytest.approx(100.0)
