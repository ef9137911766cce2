"""Labelled anomalies the simulator injects (:func:`inject`), each with its :class:`Label`.

:data:`streams.lab.traffic.ANOMALY_KINDS`: an IAM user/key creation burst by one principal; a
night-time RunInstances spike in one Region; an AccessDenied spike on one read API; a throttling
spike with unchanged call volume; a 3x sustained rise over 90 minutes on a busy write API; a
burst of a never-seen API; weekday-level activity on a Saturday.

:data:`HARD_KINDS` adds the kinds that need the organization background of
:mod:`streams.lab.background`: a new error code on a rarely called write API at 5 am; a CI role
working at weekday level on a Saturday afternoon; a periodic job that stops for 4 hours (a drop);
a 2.6x rise over 90 minutes on a high-volume API; and a clump of a rare write API by a principal
and user agent that never called it, no bigger than the usual infrastructure-as-code clumps.
"""

from __future__ import annotations

from collections.abc import Callable

from streams.lab.background import AGENT_API, CI_API, INVENTORY_API, RARE_WRITES, iac_role
from streams.lab.traffic import ANOMALY_KINDS, DAY, EPOCH_MONDAY, TERRAFORM, Traffic, poisson

__all__ = ["HARD_KINDS", "inject"]

HARD_KINDS = (
    *ANOMALY_KINDS,
    "new_error_code_at_night",
    "weekend_ci_activity",
    "periodic_drop",
    "busy_rise",
    "new_principal_clump",
)

_CALLS = "ApiCallRateInsight"
_ERRORS = "ApiErrorRateInsight"


def _attacker(acct: str) -> str:
    return f"arn:aws:iam::{acct}:user/svc-backup-old"


def _iam_burst(gen: Traffic, acct: str, region: str, day_start: int) -> None:
    t = day_start + 14 * 3600 + 1800
    apis = [("iam.amazonaws.com", n) for n in ("CreateUser", "CreateAccessKey", "AttachUserPolicy")]
    for i in range(15):
        for j, api in enumerate(apis):
            gen.emit(
                t + i * 8 + j, acct, region, api, _attacker(acct), agent="python-requests/2.31"
            )
    gen.label("iam_burst", acct, region, [(*a, _CALLS, "") for a in apis], t, t + 130)


def _attacker_burst(
    gen: Traffic, kind: str, target: tuple[str, str], t: int, api: tuple[str, str], calls: int
) -> None:
    """``calls`` calls of ``api`` by the attacker, spread over 300 or 120 seconds."""
    acct, region = target
    spread = 300 if calls > 20 else 120
    for _ in range(calls):
        gen.emit(t + gen.rng.randrange(spread), acct, region, api, _attacker(acct))
    gen.label(kind, acct, region, [(*api, _CALLS, "")], t, t + spread)


def _night_runinstances(gen: Traffic, acct: str, region: str, day_start: int) -> None:
    t = day_start + 3 * 3600 + 600
    api = ("ec2.amazonaws.com", "RunInstances")
    _attacker_burst(gen, "night_runinstances", (acct, region), t, api, 40)


def _access_denied_spike(gen: Traffic, acct: str, region: str, day_start: int) -> None:
    t = day_start + 11 * 3600 + 1200
    api = ("s3.amazonaws.com", "ListBuckets")
    for _ in range(80):
        gen.emit(
            t + gen.rng.randrange(240),
            acct,
            region,
            api,
            _attacker(acct),
            read_only=True,
            error="AccessDenied",
        )
    gen.label("access_denied_spike", acct, region, [(*api, _ERRORS, "AccessDenied")], t, t + 240)


def _throttling_spike(gen: Traffic, acct: str, region: str, day_start: int) -> None:
    """Re-label existing DescribeInstances calls as throttled: the volume stays the same."""
    t = day_start + 15 * 3600
    api = ("ec2.amazonaws.com", "DescribeInstances")
    end = t + 900
    for i, ev in enumerate(gen.events):
        if (
            (ev.account, ev.region, ev.source, ev.name) == (acct, region, *api)
            and t <= ev.seconds < end
            and gen.rng.random() < 0.6
        ):
            gen.events[i] = ev.failed("ThrottlingException")
    for _ in range(10):  # and a few more calls to make sure the window is not empty
        gen.emit(
            t + gen.rng.randrange(900),
            acct,
            region,
            api,
            gen.people(acct)[0],
            read_only=True,
            error="ThrottlingException",
        )
    gen.label("throttling_spike", acct, region, [(*api, _ERRORS, "ThrottlingException")], t, end)


def _sustained_rise(gen: Traffic, acct: str, region: str, day_start: int) -> None:
    t = day_start + 10 * 3600
    api = ("ec2.amazonaws.com", "CreateTags")
    for minute in range(90):
        for _ in range(poisson(gen.rng, 4.0)):
            at = t + minute * 60 + gen.rng.randrange(60)
            gen.emit(at, acct, region, api, gen.rng.choice(gen.people(acct)))
    gen.label("sustained_rise", acct, region, [(*api, _CALLS, "")], t, t + 5400)


def _never_seen_api(gen: Traffic, acct: str, region: str, day_start: int) -> None:
    t = day_start + 16 * 3600 + 300
    api = ("kms.amazonaws.com", "ScheduleKeyDeletion")
    _attacker_burst(gen, "never_seen_api", (acct, region), t, api, 20)


def _next_saturday(day_start: int) -> int:
    return day_start + (5 - (day_start - EPOCH_MONDAY) // DAY % 7) % 7 * DAY


def _saturday_activity(gen: Traffic, acct: str, region: str, day_start: int) -> None:
    t = _next_saturday(day_start) + 10 * 3600
    people = gen.people(acct)
    keys = [(*api, _CALLS, "") for api in TERRAFORM[:3]]
    for minute in range(180):
        for api in TERRAFORM[:3]:
            for _ in range(poisson(gen.rng, 1.5)):
                gen.emit(
                    t + minute * 60 + gen.rng.randrange(60),
                    acct,
                    region,
                    api,
                    gen.rng.choice(people),
                    agent="Terraform/1.7.4",
                )
    gen.label("saturday_activity", acct, region, keys, t, t + 10_800)


def _new_error_code_at_night(gen: Traffic, acct: str, region: str, day_start: int) -> None:
    """~20 errors of a code the API never returned, over 12 minutes at 5 am, among successes."""
    api = RARE_WRITES[4]  # ChangeResourceRecordSets: 1-6 calls a weekday, by hand or by IaC
    t = day_start + 5 * 3600 + 60 * gen.rng.randrange(20)
    role = iac_role(acct)
    for _ in range(gen.rng.randint(18, 22)):
        at = t + gen.rng.randrange(720)
        gen.emit(at, acct, region, api, role, agent="Terraform/1.7.4", error="InvalidChangeBatch")
    for _ in range(gen.rng.randint(2, 5)):
        gen.emit(t + gen.rng.randrange(720), acct, region, api, role, agent="Terraform/1.7.4")
    keys = [(*api, _ERRORS, "InvalidChangeBatch")]
    gen.label("new_error_code_at_night", acct, region, keys, t, t + 720)


def _weekend_ci_activity(gen: Traffic, acct: str, region: str, day_start: int) -> None:
    """The CI role at ~20 calls an hour for 3 hours on a Saturday afternoon (weekday level)."""
    t = _next_saturday(day_start) + 13 * 3600
    role = f"arn:aws:sts::{acct}:assumed-role/ci-deployer/build"
    for _ in range(3 * gen.rng.randint(18, 22)):
        gen.emit(
            t + gen.rng.randrange(10_800), acct, region, CI_API, role, agent="aws-sdk-go-v2/1.24"
        )
    gen.label("weekend_ci_activity", acct, region, [(*CI_API, _CALLS, "")], t, t + 10_800)


def _periodic_drop(gen: Traffic, acct: str, region: str, day_start: int) -> None:
    """The inventory job (a call every 5 minutes) stops for 4 hours on a weekday morning."""
    t = day_start + 9 * 3600 + 1800
    end = t + 4 * 3600
    stream_api = (acct, region, *INVENTORY_API)
    gen.events[:] = [
        ev
        for ev in gen.events
        if not (t <= ev.seconds < end and (ev.account, ev.region, ev.source, ev.name) == stream_api)
    ]
    keys = [(*INVENTORY_API, _CALLS, "")]
    gen.label("periodic_drop", acct, region, keys, t, end, direction="drop")


def _busy_rise(gen: Traffic, acct: str, region: str, day_start: int) -> None:
    """2.6x the instance agents' calls for 90 minutes (a fleet scaled out by hand)."""
    t = day_start + 13 * 3600
    for minute in range(90):
        for _ in range(poisson(gen.rng, 1.6 * 3.0)):
            at = t + minute * 60 + gen.rng.randrange(60)
            who = f"arn:aws:sts::{acct}:assumed-role/ssm-instance/i-{gen.rng.randrange(100, 160)}"
            gen.emit(at, acct, region, AGENT_API, who, agent="amazon-ssm-agent/3.3")
    gen.label("busy_rise", acct, region, [(*AGENT_API, _CALLS, "")], t, t + 5400)


def _new_principal_clump(gen: Traffic, acct: str, region: str, day_start: int) -> None:
    """9 CreateRole calls in 3 minutes by a principal and agent that never called it."""
    t = day_start + 20 * 3600 + 900
    api = RARE_WRITES[0]
    for _ in range(9):
        gen.emit(t + gen.rng.randrange(180), acct, region, api, _attacker(acct), agent="Boto3/1.9")
    gen.label("new_principal_clump", acct, region, [(*api, _CALLS, "")], t, t + 180)


_INJECT: dict[str, Callable[[Traffic, str, str, int], None]] = {
    "iam_burst": _iam_burst,
    "night_runinstances": _night_runinstances,
    "access_denied_spike": _access_denied_spike,
    "throttling_spike": _throttling_spike,
    "sustained_rise": _sustained_rise,
    "never_seen_api": _never_seen_api,
    "saturday_activity": _saturday_activity,
    "new_error_code_at_night": _new_error_code_at_night,
    "weekend_ci_activity": _weekend_ci_activity,
    "periodic_drop": _periodic_drop,
    "busy_rise": _busy_rise,
    "new_principal_clump": _new_principal_clump,
}


def inject(gen: Traffic, kind: str, acct: str, region: str, day_start: int) -> None:
    """Add the anomaly ``kind`` to ``acct``/``region`` on the day starting at ``day_start``."""
    _INJECT[kind](gen, acct, region, day_start)
