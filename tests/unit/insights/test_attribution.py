from __future__ import annotations

import numpy as np
import pytest

from insights import attribution, native
from insights.attribution import AttributionTable, InsightAttribution, Interner


def test_space_saving_keeps_heavy_hitters() -> None:
    table = AttributionTable(capacity=1)
    names = Interner()
    rng = np.random.default_rng(0)
    for _ in range(200):
        values = ["heavy-a"] * 20 + ["heavy-b"] * 10 + [f"noise-{rng.integers(1000)}"]
        ids = [names.id(v) for v in values]
        table.merge_minute([0] * len(ids), [ids], [1.0] * len(ids))
    ranked = table.top(0, 0)
    top = [names.value(v) for v, _ in ranked]
    assert top[:2] == ["heavy-a", "heavy-b"]
    # the sketch keeps their weights apart: heavy-a is called twice as often as heavy-b
    assert ranked[0][1] == pytest.approx(2 * ranked[1][1], rel=0.1)
    assert len(top) <= 5


def test_attributes_are_kept_apart() -> None:
    table = AttributionTable(capacity=1)
    table.merge_minute([0, 0], [[7, 7], [8, 6], [9, 9]], [3.0, 4.0])
    assert table.top(0, 0) == [(7, 7.0)]
    assert table.top(0, 1) == [(6, 4.0), (8, 3.0)]
    assert table.top(0, 2) == [(9, 7.0)]


def test_ranks_set_the_order_new_values_enter_a_full_sketch() -> None:
    def fill(order: list[int]) -> set[int]:
        table = AttributionTable(capacity=1)
        # ranks 0..6 all new with equal weight: space-saving lets each later one replace the
        # lightest slot, so the last 5 in rank order stay
        table.merge_minute([0] * 7, [list(reversed(range(7)))], [1.0] * 7, order)
        return {v for v, _ in table.top(0, 0)}

    assert fill([10, 11, 12, 13, 14, 15, 16]) == {12, 13, 14, 15, 16}
    assert fill([16, 15, 14, 13, 12, 11, 10]) == {14, 13, 12, 11, 10}


def test_one_merge_keeps_rows_apart() -> None:
    table = AttributionTable(capacity=4)
    table.merge_minute([3, 1], [[0, 0], [2, 2], [1, 1]], [1.5, 2.5], [40, 41, 42])
    assert table.top(1, 1) == [(42, 2.5)]
    assert table.top(3, 1) == [(42, 1.5)]
    assert table.top(2, 1) == []


def test_dict_and_numpy_sums_give_identical_sketches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native, "module", None)  # the two pure-Python strategies

    def run(limit: int) -> tuple[np.ndarray, np.ndarray]:
        monkeypatch.setattr(attribution, "_DICT_MERGE_MAX", limit)
        table = AttributionTable(capacity=8)
        local = np.random.default_rng(11)
        for _ in range(60):  # minutes with repeats, new values and full sketches
            n = int(local.integers(1, 40))
            rows = local.integers(0, 8, n).tolist()
            ranks = [local.integers(0, 12, n).tolist() for _ in range(3)]
            weighted = (local.random(n) * 10).tolist()
            table.merge_minute(rows, ranks, weighted, list(range(100, 112)))
        return table.ids.copy(), table.weights.copy()

    by_dict, by_numpy = run(10**9), run(0)
    assert np.array_equal(by_dict[0], by_numpy[0])
    assert np.array_equal(by_dict[1], by_numpy[1])
    assert (by_dict[0] >= 100).sum() > 8 * 3 * 4  # most sketches are full


def test_insight_attribution_averages_and_orders() -> None:
    att = InsightAttribution()
    att.add("arn:b", "cli", "null", 4)
    att.add("arn:a", "cli", "null", 4)
    att.add("arn:c", "sdk", "AccessDenied", 10)
    assert att.top(0, 2) == [("arn:c", 5.0), ("arn:a", 2.0), ("arn:b", 2.0)]
    assert att.top(2, 2)[0] == ("AccessDenied", 5.0)
