from __future__ import annotations

import numpy as np

from insights.attribution import AttributionTable, InsightAttribution, Interner, pack


def test_space_saving_keeps_heavy_hitters() -> None:
    table = AttributionTable(capacity=1)
    names = Interner()
    rng = np.random.default_rng(0)
    for minute in range(200):
        values = ["heavy-a"] * 20 + ["heavy-b"] * 10 + [f"noise-{rng.integers(1000)}"]
        ids = [names.id(v) for v in values]
        weighted: dict[int, float] = {}
        for ident in ids:
            weighted[pack(0, 0, ident)] = weighted.get(pack(0, 0, ident), 0.0) + 1.0
        table.merge_minute(weighted)
        assert minute >= 0
    top = [names.value(v) for v, _ in table.top(0, 0)]
    assert top[:2] == ["heavy-a", "heavy-b"]
    assert len(top) <= 5


def test_attributes_are_kept_apart() -> None:
    table = AttributionTable(capacity=1)
    table.merge_minute({pack(0, 0, 7): 3.0, pack(0, 2, 9): 4.0})
    assert table.top(0, 0) == [(7, 3.0)]
    assert table.top(0, 1) == []
    assert table.top(0, 2) == [(9, 4.0)]


def test_ranks_set_the_order_new_values_enter_a_full_sketch() -> None:
    def fill(order: list[int]) -> set[int]:
        table = AttributionTable(capacity=1)
        # ranks 0..6 all new with equal weight: space-saving lets each later one replace the
        # lightest slot, so the last 5 in rank order stay
        table.merge_minute({pack(0, 0, rank): 1.0 for rank in reversed(range(7))}, order)
        return {v for v, _ in table.top(0, 0)}

    assert fill([10, 11, 12, 13, 14, 15, 16]) == {12, 13, 14, 15, 16}
    assert fill([16, 15, 14, 13, 12, 11, 10]) == {14, 13, 12, 11, 10}


def test_one_merge_keeps_rows_apart() -> None:
    table = AttributionTable(capacity=4)
    table.merge_minute({pack(3, 1, 2): 1.5, pack(1, 1, 2): 2.5}, [40, 41, 42])
    assert table.top(1, 1) == [(42, 2.5)]
    assert table.top(3, 1) == [(42, 1.5)]
    assert table.top(2, 1) == []


def test_insight_attribution_averages_and_orders() -> None:
    att = InsightAttribution()
    att.add("arn:b", "cli", "null", 4)
    att.add("arn:a", "cli", "null", 4)
    att.add("arn:c", "sdk", "AccessDenied", 10)
    assert att.top(0, 2) == [("arn:c", 5.0), ("arn:a", 2.0), ("arn:b", 2.0)]
    assert att.top(2, 2)[0] == ("AccessDenied", 5.0)
