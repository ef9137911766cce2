from __future__ import annotations

import numpy as np

from insights.baselines import (
    BaselineTable,
    Expectation,
    RowClock,
    StreamExposure,
    daytype_of,
    slot_of,
)
from insights.stats import decay_weight


def learn_series(counts: list[float], start: int = 0) -> tuple[BaselineTable, StreamExposure, int]:
    exposure = StreamExposure(ref_minute=start, half_life=10_080.0)
    table = BaselineTable(half_life=10_080.0, peak_half_life=4_320.0)
    row = table.add_row()
    rows = np.array([row])
    for i, c in enumerate(counts):
        minute = start + i
        clock = RowClock.single(exposure, minute, 1)
        table.flush_buckets(rows, clock)
        exposure.add_minutes(minute, minute + 1)
        if c:
            table.learn(rows, np.array([float(c)]), clock)
    return table, exposure, row


def expect_at(table: BaselineTable, row: int, minute: int, exposure: StreamExposure) -> Expectation:
    return table.expect(np.array([row]), RowClock.single(exposure, minute, 1))


def test_slots_and_daytypes() -> None:
    assert daytype_of(0) == 0  # Thursday
    assert daytype_of(2 * 1440) == 1  # Saturday
    assert slot_of(3 * 1440 + 60) == 24 + 1  # Sunday 01:00


def test_row_clock_derives_slot_daytype_and_decay_per_row() -> None:
    a = StreamExposure(ref_minute=0, half_life=10_080.0)
    b = StreamExposure(ref_minute=5_000, half_life=10_080.0)
    minutes = [2 * 1440 + 13 * 60, 9_000]  # a Saturday afternoon; a Monday night
    clock = RowClock.gather([a, b], minutes, np.array([1, 0, 1]))
    assert clock.minute.tolist() == [9_000, minutes[0], 9_000]
    assert clock.slot.tolist() == [slot_of(9_000), slot_of(minutes[0]), slot_of(9_000)]
    assert clock.daytype.tolist() == [daytype_of(m) for m in clock.minute.tolist()]
    expected = [decay_weight(9_000, 5_000, 10_080.0), decay_weight(minutes[0], 0, 10_080.0)]
    assert clock.decay.tolist() == [float(expected[0]), float(expected[1]), float(expected[0])]


def test_poisson_series_has_rate_and_unit_dispersion() -> None:
    rng = np.random.default_rng(3)
    counts = rng.poisson(3.0, size=3 * 1440).astype(float).tolist()
    table, exposure, row = learn_series(counts)
    exp = expect_at(table, row, len(counts), exposure)
    assert abs(exp.mean_rate[0] - 3.0) < 0.1
    assert np.all(exp.phi[0] < 1.3)


def test_clumpy_series_is_overdispersed_at_every_scale() -> None:
    counts = [0.0] * (2 * 1440)
    for minute in range(0, len(counts), 97):
        counts[minute] = 40.0
    table, exposure, row = learn_series(counts)
    exp = expect_at(table, row, len(counts), exposure)
    assert exp.phi[0, 0] > 10


def test_seasonal_slot_rate() -> None:
    monday = 4 * 1440
    counts = [5.0 if (m // 60) % 24 in range(9, 17) else 0.0 for m in range(4 * 1440)]
    table, exposure, row = learn_series(counts, start=monday)
    friday = monday + 4 * 1440
    busy = expect_at(table, row, friday + 10 * 60, exposure).mu[0]
    quiet = expect_at(table, row, friday + 2 * 60, exposure).mu[0]
    # the slot rate (5/min) shrinks towards the overall mean (1.67/min) by 120 prior minutes
    assert 3.5 < busy < 5.0
    assert quiet < 0.7  # 0 in the slot, pulled up by the prior: 1.67 * 120 / 360


def test_rebase_keeps_expectations() -> None:
    rng = np.random.default_rng(5)
    counts = rng.poisson(2.0, size=1440).astype(float).tolist()
    table, exposure, row = learn_series(counts)
    rows = np.array([row])
    before = expect_at(table, row, 1440, exposure)
    factor = exposure.rebase(1440)
    table.rescale(rows, factor)
    after = expect_at(table, row, 1440, exposure)
    np.testing.assert_allclose(after.mu, before.mu, rtol=1e-5)
    np.testing.assert_allclose(after.phi, before.phi, rtol=1e-4)


def test_peaks_remember_recent_bursts_and_decay() -> None:
    counts = [0.0] * 200
    counts[10] = 30.0
    table, _, row = learn_series(counts)
    rows = np.array([row])
    now = table.peaks(rows, np.array([200]))[0, 0]
    later = table.peaks(rows, np.array([200 + 4_320]))[0, 0]
    assert 29 < now <= 30
    assert abs(later - now / 2) < 0.1


def test_table_grows() -> None:
    table = BaselineTable(half_life=100.0, peak_half_life=100.0, capacity=2)
    rows = [table.add_row() for _ in range(5)]
    assert rows == [0, 1, 2, 3, 4]
    assert table.counts.shape[0] >= 5
    assert (table.last_minute[:5] == -1).all()
