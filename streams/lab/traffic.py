"""Normal CloudTrail traffic for the simulator: what every simulated account-Region does.

Per (account, Region): business-hours and weekday seasonality, high-volume read APIs, clumpy
Terraform-style write batches, an hourly snapshot job, a nightly clean-up job, several CI deploys
a day, rarely used APIs, a trickle of throttling and AccessDenied errors
(:class:`Traffic`). :mod:`streams.lab.background` adds an organization's harder background and
:mod:`streams.lab.anomalies` the labelled anomalies; :mod:`streams.lab.simulate` puts them
together.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field

__all__ = [
    "ANOMALY_KINDS",
    "DAY",
    "EPOCH_MONDAY",
    "TERRAFORM",
    "Label",
    "Scenario",
    "SimEvent",
    "Traffic",
    "activity",
    "poisson",
]

ANOMALY_KINDS = (
    "iam_burst",
    "night_runinstances",
    "access_denied_spike",
    "throttling_spike",
    "sustained_rise",
    "never_seen_api",
    "saturday_activity",
)

DAY = 86_400
EPOCH_MONDAY = 1_704_067_200  # 2024-01-01T00:00:00Z, a Monday


@dataclass(frozen=True, slots=True)
class SimEvent:
    """One simulated API call."""

    seconds: int
    account: str
    region: str
    source: str
    name: str
    principal: str
    agent: str
    read_only: bool
    error: str | None = None

    def failed(self, code: str) -> SimEvent:
        """The same call, failed with ``code``."""
        return dataclasses.replace(self, error=code)


@dataclass(frozen=True, slots=True)
class Label:
    """A labelled anomaly: which keys are unusual, from ``onset`` to ``end`` (epoch seconds)."""

    kind: str
    account: str
    region: str
    keys: tuple[tuple[str, str, str, str], ...]
    """(eventSource, eventName, insightType, errorCode or "")."""
    onset: int
    end: int
    direction: str = "increase"
    """"increase" (a burst or rise) or "drop" (a rhythm that stops)."""


@dataclass(slots=True)
class Scenario:
    """What to simulate."""

    seed: int = 7
    days: int = 10
    accounts: tuple[str, ...] = ("111122223333", "444455556666")
    regions: tuple[str, ...] = ("us-east-1", "eu-west-1")
    start: int = EPOCH_MONDAY
    reads_per_minute: float = 6.0
    anomalies: tuple[str, ...] = ANOMALY_KINDS
    anomaly_day: int = 8
    anomaly_days_apart: int = 0
    """Days between each round of anomalies (one per account-Region); 0: all on one day."""
    background: tuple[str, ...] = ()
    """Extra background of :data:`streams.lab.background.BACKGROUND_KINDS` (none by default)."""
    labels: list[Label] = field(default_factory=list)


_READS = [
    ("ec2.amazonaws.com", "DescribeInstances"),
    ("ec2.amazonaws.com", "DescribeVolumes"),
    ("s3.amazonaws.com", "ListBuckets"),
    ("iam.amazonaws.com", "GetRole"),
    ("sts.amazonaws.com", "GetCallerIdentity"),
    ("cloudwatch.amazonaws.com", "DescribeAlarms"),
]
TERRAFORM = [
    ("ec2.amazonaws.com", "CreateTags"),
    ("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress"),
    ("iam.amazonaws.com", "PutRolePolicy"),
    ("s3.amazonaws.com", "PutBucketPolicy"),
    ("lambda.amazonaws.com", "UpdateFunctionConfiguration"),
]
_DEPLOY = [
    ("lambda.amazonaws.com", "UpdateFunctionCode"),
    ("ecs.amazonaws.com", "RegisterTaskDefinition"),
    ("ecs.amazonaws.com", "UpdateService"),
]
_RARE = [("kms.amazonaws.com", "CreateKey"), ("iam.amazonaws.com", "CreateRole")]


def activity(seconds: int) -> float:
    """Relative activity level: business hours on weekdays, quiet nights and weekends."""
    day = (seconds - EPOCH_MONDAY) // DAY % 7
    hour = seconds // 3600 % 24
    base = 1.0 if 8 <= hour < 18 else (0.35 if 6 <= hour < 21 else 0.1)
    return base * (0.2 if day >= 5 else 1.0)


class Traffic:
    """The events of one simulation, with the normal traffic of each account-Region."""

    def __init__(self, sc: Scenario, rng: random.Random) -> None:
        self.sc = sc
        self.rng = rng
        self.events: list[SimEvent] = []

    def people(self, account: str) -> list[str]:
        return [f"arn:aws:iam::{account}:user/{n}" for n in ("alice", "bob", "carol", "dave")]

    def emit(
        self,
        sec: int,
        acct: str,
        region: str,
        api: tuple[str, str],
        who: str,
        *,
        agent: str = "aws-cli/2.15.0 Python/3.11.6",
        read_only: bool = False,
        error: str | None = None,
    ) -> None:
        self.events.append(
            SimEvent(sec, acct, region, api[0], api[1], who, agent, read_only, error)
        )

    def normal(self, acct: str, region: str) -> None:
        sc = self.sc
        for minute in range(sc.days * 1440):
            t0 = sc.start + minute * 60
            level = activity(t0)
            self.reads(acct, region, t0, level)
            self.writes(acct, region, minute, t0, level)
            self.jobs(acct, region, minute, t0)

    def reads(self, acct: str, region: str, t0: int, level: float) -> None:
        rng = self.rng
        people = self.people(acct)
        for _ in range(poisson(rng, self.sc.reads_per_minute * level)):
            api = rng.choice(_READS)
            error = None
            roll = rng.random()
            if api[1] == "DescribeInstances" and roll < 0.02:
                error = "Client.RequestLimitExceeded"
            elif roll < 0.005:
                error = "AccessDenied"
            who = (t0 + rng.randrange(60), rng.choice(people))
            self.emit(who[0], acct, region, api, who[1], read_only=True, error=error)

    def writes(self, acct: str, region: str, minute: int, t0: int, level: float) -> None:
        rng = self.rng
        people = self.people(acct)
        if rng.random() < 0.02 * level:  # a Terraform apply: a clumpy batch of writes
            batch_at = t0 + rng.randrange(60)
            for _ in range(rng.randint(3, 25)):
                at, api, who = (
                    batch_at + rng.randrange(150),
                    rng.choice(TERRAFORM),
                    rng.choice(people),
                )
                self.emit(at, acct, region, api, who, agent="Terraform/1.7.4")
        if rng.random() < 0.5 * level:  # steady, busy write API
            for _ in range(poisson(rng, 2.0)):
                at, who = t0 + rng.randrange(60), rng.choice(people)
                self.emit(at, acct, region, ("ec2.amazonaws.com", "CreateTags"), who)

    def jobs(self, acct: str, region: str, minute: int, t0: int) -> None:
        rng = self.rng
        ci = f"arn:aws:sts::{acct}:assumed-role/ci-deployer/build"
        job = f"arn:aws:sts::{acct}:assumed-role/backup-job/lambda"
        if minute % 60 == 5:  # hourly snapshot job
            self.run_job(t0, rng.randint(20, 30), 40, acct, region, "CreateSnapshot", job)
        if minute % 1440 == 120:  # nightly clean-up job
            self.run_job(t0, rng.randint(40, 60), 120, acct, region, "DeleteSnapshot", job)
        if activity(t0) >= 1.0 and rng.random() < 5 / 600:  # ~5 CI deploys a weekday
            for api in _DEPLOY:
                for _ in range(rng.randint(3, 10)):
                    self.emit(
                        t0 + rng.randrange(180), acct, region, api, ci, agent="aws-sdk-go-v2/1.24"
                    )
        if rng.random() < 3 / (7 * 1440):  # rare APIs: a few calls a week
            at, api, who = t0 + rng.randrange(60), rng.choice(_RARE), rng.choice(self.people(acct))
            self.emit(at, acct, region, api, who)

    def run_job(
        self, t0: int, calls: int, spread: int, acct: str, region: str, name: str, job: str
    ) -> None:
        """One run of the backup job: ``calls`` EC2 ``name`` calls within ``spread`` seconds."""
        for _ in range(calls):
            at = t0 + self.rng.randrange(spread)
            self.emit(at, acct, region, ("ec2.amazonaws.com", name), job, agent="Boto3/1.34")

    def label(
        self,
        kind: str,
        acct: str,
        region: str,
        keys: list[tuple[str, str, str, str]],
        onset: int,
        end: int,
        direction: str = "increase",
    ) -> None:
        self.sc.labels.append(Label(kind, acct, region, tuple(keys), onset, end, direction))


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (a normal approximation above 30)."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, lam**0.5)))
    limit, k, p = 2.718281828459045 ** (-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
