"""Principal-aware detection on rare keys: the usual actors' clumps, new actors, outsized clumps."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from insights import CloudTrailEvent, EngineConfig, InsightRecord, decode_many
from insights.attribution import AttributionTable, Interner
from insights.familiarity import _lower_bounds
from streams.lab.simulate import generate, hard_scenario, render
from tests.factory import T0, background, make_event, run

DAY = 86_400
ROLE = "arn:aws:sts::123456789012:assumed-role/terraform-apply/ci"
INTRUDER = "arn:aws:iam::123456789012:user/svc-backup-old"


def clump(at: int, count: int, principal: str, spread: int, tag: str) -> list[CloudTrailEvent]:
    return [
        make_event(
            at + (i * spread) // count,
            "CreateRole",
            source="iam.amazonaws.com",
            principal=principal,
            event_id=f"{tag}-{at}-{i}",
        )
        for i in range(count)
    ]


def infrastructure_as_code(days: int, seed: int = 3) -> list[CloudTrailEvent]:
    """Background calls, and an IaC role's CreateRole clumps of 5-15 calls over 1-4 minutes,
    twice a weekday (a rarely called write API that is always called in clumps)."""
    rng = random.Random(seed)
    events = background(days, rate_per_minute=0.5, seed=seed)
    for day in range(days):
        if day % 7 >= 5:
            continue
        for _ in range(2):
            at = T0 + day * DAY + rng.randrange(9 * 3600, 17 * 3600)
            events += clump(at, rng.randint(5, 15), ROLE, rng.randint(60, 240), "iac")
    return events


def role_starts(events: list[CloudTrailEvent], after: int) -> list[InsightRecord]:
    events.sort(key=lambda e: e.event_time or "")
    return [
        r
        for r in run(events, EngineConfig(warmup_minutes=1440))
        if r.state == "Start" and r.key.event_name == "CreateRole" and r.event_minute * 60 >= after
    ]


@pytest.mark.parametrize("seed", [7, 8])
def test_an_organizations_usual_clumps_stop_firing_once_learned(seed: int) -> None:
    # one account-Region of the simulator's organization background, no anomaly: an IaC role
    # and people call rare write APIs in clumps of 5-15. Before, the count model learned each
    # clump winsorized, never learned that these keys come in clumps, and a clump above the
    # decayed recent peak fired: 6 Starts after day 5 with seed 7, 1 with seed 8
    scenario = dataclasses.replace(
        hard_scenario(seed), accounts=("111122223333",), regions=("us-east-1",), anomalies=()
    )
    events = decode_many(list(render(generate(scenario), seed=seed))).events
    records = run(events, EngineConfig())
    late = [r for r in records if r.state == "Start" and r.event_minute * 60 >= T0 + 5 * DAY]
    assert [(r.key.event_name, r.event_minute) for r in late] == []


def test_the_same_clump_by_a_principal_new_to_the_stream_is_an_insight() -> None:
    at = T0 + 10 * DAY + 20 * 3600  # a Thursday evening, after two weeks of the role's clumps
    events = infrastructure_as_code(11) + clump(at, 9, INTRUDER, 180, "intruder")
    (start,) = role_starts(events, after=T0 + 10 * DAY)
    assert at // 60 <= start.event_minute <= start.detection_minute <= at // 60 + 3
    extra = start.to_dict()["additionalEventData"]
    assert extra["reason"] == "new_actors"
    assert 5 <= extra["newActorCalls"] <= 9
    principals = start.to_dict()["insightDetails"]["insightContext"]["attributions"][0]
    assert principals["insight"][0]["value"] == INTRUDER


def test_a_clump_three_times_the_usual_size_by_the_usual_role_fires() -> None:
    # the role's clumps are 5-15 calls: 45 in a minute holds four of the typical one (the key's
    # dispersion), a Start at medium; 30 holds two, which is not
    at = T0 + 10 * DAY + 11 * 3600
    usual = infrastructure_as_code(11)
    assert role_starts([*usual, *clump(at, 30, ROLE, 50, "big")], after=T0 + 10 * DAY) == []
    (start,) = role_starts([*usual, *clump(at, 45, ROLE, 50, "big")], after=T0 + 10 * DAY)
    assert start.to_dict()["additionalEventData"]["reason"] == "Start"


def test_a_principal_that_pushed_a_regular_out_of_a_full_sketch_has_no_history() -> None:
    names = Interner()
    table = AttributionTable(capacity=4)
    regulars = [(f"arn:regular-{i}", w) for i, w in enumerate((50.0, 8.0, 5.0, 5.0, 2.0))]
    for value, weight in regulars:
        table.merge_minute([0], [[names.id(value)]] * 3, [weight])
    table.merge_minute([0], [[names.id("arn:new")]] * 3, [1.0])  # takes the 2.0 slot: 3.0
    held = _lower_bounds(table, np.array([0]), 0, 1.0, names)
    assert "arn:regular-4" not in held
    assert held["arn:new"] == 0.0  # what it holds beyond the lightest slot (its own 3.0)
    assert held["arn:regular-0"] == 47.0


def test_a_new_principals_repeated_job_is_reported_once() -> None:
    # a job principal never seen in the stream: its first run is an insight; its minutes stay
    # out of the baseline's sketches, so without remembering who the insight was about, every
    # later run of the same size would be "new actors" again
    job = "arn:aws:iam::123456789012:user/nightly-cleanup"
    runs = [T0 + 3 * DAY + hour * 3600 for hour in (2, 4, 6, 8)]
    events = background(4, rate_per_minute=0.5) + [
        e for at in runs for e in clump(at, 23, job, 40, "job")
    ]
    (start,) = role_starts(events, after=T0 + 3 * DAY)
    assert start.event_minute == runs[0] // 60
