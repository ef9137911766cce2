from __future__ import annotations

from insights.windows import DedupeWindow


def test_dedupe_is_bounded_by_count() -> None:
    d = DedupeWindow(window=10_000, max_ids=3)
    for i in range(5):
        assert not d.seen(f"id-{i}", i)
    assert len(d) <= 3
    assert d.seen("id-4", 5)
    assert not d.seen("id-0", 5)


def test_dedupe_round_trip() -> None:
    d = DedupeWindow(window=60, max_ids=100)
    d.seen("a", 1)
    d.seen("b", 2)
    restored = DedupeWindow(window=60, max_ids=100)
    restored.load_state(d.to_state())
    assert restored.seen("a", 3)
    assert not restored.seen("c", 3)
