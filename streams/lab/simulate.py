"""A realistic, labelled CloudTrail traffic simulator (for the demo, tests and benchmarks).

Normal traffic per (account, Region): business-hours and weekday seasonality, high-volume read
APIs, clumpy Terraform-style write batches, an hourly snapshot job, a nightly clean-up job,
several CI deploys a day, rarely used APIs, a trickle of throttling and AccessDenied errors.

Labelled anomalies (:class:`Label`): an IAM user/key creation burst by one principal; a
night-time RunInstances spike in one Region; an AccessDenied spike on one read API; a throttling
spike with unchanged call volume; a 3x sustained rise over 90 minutes on a busy write API; a
burst of a never-seen API; weekday-level activity on a Saturday.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import msgspec

__all__ = ["ANOMALY_KINDS", "Label", "Scenario", "SimEvent", "generate", "render"]

ANOMALY_KINDS = (
    "iam_burst",
    "night_runinstances",
    "access_denied_spike",
    "throttling_spike",
    "sustained_rise",
    "never_seen_api",
    "saturday_activity",
)

_DAY = 86_400
_EPOCH_MONDAY = 1_704_067_200  # 2024-01-01T00:00:00Z, a Monday


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


@dataclass(slots=True)
class Scenario:
    """What to simulate."""

    seed: int = 7
    days: int = 10
    accounts: tuple[str, ...] = ("111122223333", "444455556666")
    regions: tuple[str, ...] = ("us-east-1", "eu-west-1")
    start: int = _EPOCH_MONDAY
    reads_per_minute: float = 6.0
    anomalies: tuple[str, ...] = ANOMALY_KINDS
    anomaly_day: int = 8
    labels: list[Label] = field(default_factory=list)


_READS = [
    ("ec2.amazonaws.com", "DescribeInstances"),
    ("ec2.amazonaws.com", "DescribeVolumes"),
    ("s3.amazonaws.com", "ListBuckets"),
    ("iam.amazonaws.com", "GetRole"),
    ("sts.amazonaws.com", "GetCallerIdentity"),
    ("cloudwatch.amazonaws.com", "DescribeAlarms"),
]
_TERRAFORM = [
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


def _activity(seconds: int) -> float:
    """Relative activity level: business hours on weekdays, quiet nights and weekends."""
    day = (seconds - _EPOCH_MONDAY) // _DAY % 7
    hour = seconds // 3600 % 24
    base = 1.0 if 8 <= hour < 18 else (0.35 if 6 <= hour < 21 else 0.1)
    return base * (0.2 if day >= 5 else 1.0)


class _Gen:
    def __init__(self, sc: Scenario, rng: random.Random) -> None:
        self.sc = sc
        self.rng = rng
        self.events: list[SimEvent] = []

    def people(self, account: str) -> list[str]:
        return [f"arn:aws:iam::{account}:user/{n}" for n in ("alice", "bob", "carol", "dave")]

    def emit(
        self, sec: int, acct: str, region: str, api: tuple[str, str], who: str, **kw: object
    ) -> None:
        agent = str(kw.pop("agent", "aws-cli/2.15.0 Python/3.11.6"))
        read_only = bool(kw.pop("read_only", False))
        error = kw.pop("error", None)
        self.events.append(
            SimEvent(sec, acct, region, api[0], api[1], who, agent, read_only, error)  # type: ignore[arg-type]
        )

    def normal(self, acct: str, region: str) -> None:
        sc = self.sc
        for minute in range(sc.days * 1440):
            t0 = sc.start + minute * 60
            level = _activity(t0)
            self.reads(acct, region, t0, level)
            self.writes(acct, region, minute, t0, level)
            self.jobs(acct, region, minute, t0)

    def reads(self, acct: str, region: str, t0: int, level: float) -> None:
        rng = self.rng
        people = self.people(acct)
        for _ in range(_poisson(rng, self.sc.reads_per_minute * level)):
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
                    rng.choice(_TERRAFORM),
                    rng.choice(people),
                )
                self.emit(at, acct, region, api, who, agent="Terraform/1.7.4")
        if rng.random() < 0.5 * level:  # steady, busy write API
            for _ in range(_poisson(rng, 2.0)):
                at, who = t0 + rng.randrange(60), rng.choice(people)
                self.emit(at, acct, region, ("ec2.amazonaws.com", "CreateTags"), who)

    def jobs(self, acct: str, region: str, minute: int, t0: int) -> None:
        rng = self.rng
        ci = f"arn:aws:sts::{acct}:assumed-role/ci-deployer/build"
        job = f"arn:aws:sts::{acct}:assumed-role/backup-job/lambda"
        if minute % 60 == 5:  # hourly snapshot job
            for _ in range(rng.randint(20, 30)):
                self.emit(
                    t0 + rng.randrange(40),
                    acct,
                    region,
                    ("ec2.amazonaws.com", "CreateSnapshot"),
                    job,
                    agent="Boto3/1.34",
                )
        if minute % 1440 == 120:  # nightly clean-up job
            for _ in range(rng.randint(40, 60)):
                self.emit(
                    t0 + rng.randrange(120),
                    acct,
                    region,
                    ("ec2.amazonaws.com", "DeleteSnapshot"),
                    job,
                    agent="Boto3/1.34",
                )
        if _activity(t0) >= 1.0 and rng.random() < 5 / 600:  # ~5 CI deploys a weekday
            for api in _DEPLOY:
                for _ in range(rng.randint(3, 10)):
                    self.emit(
                        t0 + rng.randrange(180), acct, region, api, ci, agent="aws-sdk-go-v2/1.24"
                    )
        if rng.random() < 3 / (7 * 1440):  # rare APIs: a few calls a week
            at, api, who = t0 + rng.randrange(60), rng.choice(_RARE), rng.choice(self.people(acct))
            self.emit(at, acct, region, api, who)

    def label(
        self,
        kind: str,
        acct: str,
        region: str,
        keys: list[tuple[str, str, str, str]],
        onset: int,
        end: int,
    ) -> None:
        self.sc.labels.append(Label(kind, acct, region, tuple(keys), onset, end))

    def anomaly(self, kind: str, acct: str, region: str, day_start: int) -> None:  # noqa: C901
        rng = self.rng
        attacker = f"arn:aws:iam::{acct}:user/svc-backup-old"
        if kind == "iam_burst":
            t = day_start + 14 * 3600 + 1800
            apis = [
                ("iam.amazonaws.com", n)
                for n in ("CreateUser", "CreateAccessKey", "AttachUserPolicy")
            ]
            for i in range(15):
                for j, api in enumerate(apis):
                    self.emit(
                        t + i * 8 + j, acct, region, api, attacker, agent="python-requests/2.31"
                    )
            self.label(
                kind, acct, region, [(*a, "ApiCallRateInsight", "") for a in apis], t, t + 130
            )
        elif kind == "night_runinstances":
            t = day_start + 3 * 3600 + 600
            for _ in range(40):
                self.emit(
                    t + rng.randrange(300),
                    acct,
                    region,
                    ("ec2.amazonaws.com", "RunInstances"),
                    attacker,
                )
            self.label(
                kind,
                acct,
                region,
                [("ec2.amazonaws.com", "RunInstances", "ApiCallRateInsight", "")],
                t,
                t + 300,
            )
        elif kind == "access_denied_spike":
            t = day_start + 11 * 3600 + 1200
            for _ in range(80):
                self.emit(
                    t + rng.randrange(240),
                    acct,
                    region,
                    ("s3.amazonaws.com", "ListBuckets"),
                    attacker,
                    read_only=True,
                    error="AccessDenied",
                )
            self.label(
                kind,
                acct,
                region,
                [("s3.amazonaws.com", "ListBuckets", "ApiErrorRateInsight", "AccessDenied")],
                t,
                t + 240,
            )
        elif kind == "throttling_spike":
            self.throttle(acct, region, day_start + 15 * 3600)
        elif kind == "sustained_rise":
            t = day_start + 10 * 3600
            for minute in range(90):
                for _ in range(_poisson(rng, 4.0)):
                    self.emit(
                        t + minute * 60 + rng.randrange(60),
                        acct,
                        region,
                        ("ec2.amazonaws.com", "CreateTags"),
                        rng.choice(self.people(acct)),
                    )
            self.label(
                kind,
                acct,
                region,
                [("ec2.amazonaws.com", "CreateTags", "ApiCallRateInsight", "")],
                t,
                t + 5400,
            )
        elif kind == "never_seen_api":
            t = day_start + 16 * 3600 + 300
            for _ in range(20):
                self.emit(
                    t + rng.randrange(120),
                    acct,
                    region,
                    ("kms.amazonaws.com", "ScheduleKeyDeletion"),
                    attacker,
                )
            self.label(
                kind,
                acct,
                region,
                [("kms.amazonaws.com", "ScheduleKeyDeletion", "ApiCallRateInsight", "")],
                t,
                t + 120,
            )
        elif kind == "saturday_activity":
            self.saturday(acct, region, day_start)

    def throttle(self, acct: str, region: str, t: int) -> None:
        """Re-label existing DescribeInstances calls as throttled: the volume stays the same."""
        api = ("ec2.amazonaws.com", "DescribeInstances")
        end = t + 900
        for i, ev in enumerate(self.events):
            if (
                (ev.account, ev.region, ev.source, ev.name) == (acct, region, *api)
                and t <= ev.seconds < end
                and self.rng.random() < 0.6
            ):
                self.events[i] = SimEvent(
                    ev.seconds,
                    acct,
                    region,
                    *api,
                    ev.principal,
                    ev.agent,
                    True,
                    "ThrottlingException",
                )
        for _ in range(10):  # and a few more calls to make sure the window is not empty
            self.emit(
                t + self.rng.randrange(900),
                acct,
                region,
                api,
                self.people(acct)[0],
                read_only=True,
                error="ThrottlingException",
            )
        self.label(
            "throttling_spike",
            acct,
            region,
            [(*api, "ApiErrorRateInsight", "ThrottlingException")],
            t,
            end,
        )

    def saturday(self, acct: str, region: str, day_start: int) -> None:
        days_to_saturday = (5 - (day_start - _EPOCH_MONDAY) // _DAY % 7) % 7
        t = day_start + days_to_saturday * _DAY + 10 * 3600
        people = self.people(acct)
        keys = []
        for api in _TERRAFORM[:3]:
            keys.append((*api, "ApiCallRateInsight", ""))
        for minute in range(180):
            for api in _TERRAFORM[:3]:
                for _ in range(_poisson(self.rng, 1.5)):
                    self.emit(
                        t + minute * 60 + self.rng.randrange(60),
                        acct,
                        region,
                        api,
                        self.rng.choice(people),
                        agent="Terraform/1.7.4",
                    )
        self.label("saturday_activity", acct, region, keys, t, t + 10_800)


def _poisson(rng: random.Random, lam: float) -> int:
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


def generate(sc: Scenario) -> list[SimEvent]:
    """Simulate ``sc`` (filling ``sc.labels``); events sorted by time."""
    rng = random.Random(sc.seed)
    gen = _Gen(sc, rng)
    sc.labels.clear()
    for acct in sc.accounts:
        for region in sc.regions:
            gen.normal(acct, region)
    day_start = sc.start + sc.anomaly_day * _DAY
    targets = [(a, r) for a in sc.accounts for r in sc.regions]
    for i, kind in enumerate(sc.anomalies):
        acct, region = targets[i % len(targets)]
        gen.anomaly(kind, acct, region, day_start + (i // len(targets)) * 0)
    gen.events.sort(key=lambda e: e.seconds)
    return gen.events


def _time(sec: int) -> str:
    import time as _t

    return _t.strftime("%Y-%m-%dT%H:%M:%SZ", _t.gmtime(sec))


def render(events: list[SimEvent], seed: int = 0) -> Iterator[bytes]:
    """Full CloudTrail JSON records (~1.5 KB each, as AWS writes them)."""
    rng = random.Random(seed)
    encoder = msgspec.json.Encoder()
    for ev in events:
        account = ev.account
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        issuer = ev.principal.partition("/")[2].partition("/")[0]
        record: dict[str, object] = {
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "AssumedRole" if ":assumed-role/" in ev.principal else "IAMUser",
                "principalId": "AIDA" + event_id[:17].replace("-", "").upper(),
                "arn": ev.principal,
                "accountId": account,
                "accessKeyId": "ASIA" + event_id[-16:].upper(),
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "Role",
                        "principalId": "AROA" + event_id[:17].replace("-", "").upper(),
                        "arn": ev.principal.split("/")[0].replace(":sts:", ":iam:") + "/" + issuer,
                        "accountId": account,
                        "userName": issuer,
                    },
                    "webIdFederationData": {},
                    "attributes": {
                        "creationDate": _time(ev.seconds - 3600),
                        "mfaAuthenticated": "false",
                    },
                },
            },
            "eventTime": _time(ev.seconds),
            "eventSource": ev.source,
            "eventName": ev.name,
            "awsRegion": ev.region,
            "sourceIPAddress": f"198.51.100.{rng.randrange(1, 255)}",
            "userAgent": ev.agent,
            "requestParameters": {
                "filterSet": {},
                "maxResults": 100,
                "resourceId": "i-" + event_id[:17].replace("-", ""),
                "instancesSet": {"items": [{"instanceId": "i-" + event_id[-17:].replace("-", "")}]},
                "includeAllInstances": False,
            },
            "responseElements": None if ev.read_only else {"requestId": event_id, "return": True},
            "requestID": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "eventID": event_id,
            "readOnly": ev.read_only,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": account,
            "eventCategory": "Management",
            "resources": [
                {
                    "accountId": account,
                    "type": "AWS::EC2::Instance",
                    "ARN": f"arn:aws:ec2:{ev.region}:{account}:instance/i-{event_id[-17:]}",
                }
            ],
            "sessionCredentialFromConsole": "true" if "Console" in ev.agent else None,
            "tlsDetails": {
                "tlsVersion": "TLSv1.3",
                "cipherSuite": "TLS_AES_128_GCM_SHA256",
                "clientProvidedHostHeader": ev.source.replace(".amazonaws.com", "")
                + f".{ev.region}.amazonaws.com",
            },
        }
        if ev.error:
            record["errorCode"] = ev.error
            record["errorMessage"] = f"{ev.error}: request was not authorized or was throttled"
        yield encoder.encode(record)
