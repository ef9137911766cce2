"""An organization's harder background traffic, for :data:`streams.lab.anomalies.HARD_KINDS`.

What made the detector fire falsely, or hid what it should find, in held-out organization streams
(:data:`BACKGROUND_KINDS`, any subset per :class:`~streams.lab.traffic.Scenario`):

* ``iac_clumps``: an infrastructure-as-code role applies changes to rarely called write APIs
  (:data:`RARE_WRITES`) in clumps of 5-15 calls over a few minutes, a few times a weekday;
* ``hand_changes``: people make the same changes by hand, 1-6 calls a day per API, and about once
  a weekday work through a batch of 5-12 calls of one API;
* ``ci_hours``: the CI role pushes images all weekday (5-25 an hour), a few an hour at weekends;
* ``inventory_job``: a job calls an API every 5 minutes, day and night (the rhythm a drop stops);
* ``agents``: instance agents call a high-volume API about 3 times a minute, day and night.

It draws from its own random generator, so adding it leaves the normal traffic as it was.
"""

from __future__ import annotations

import random

from streams.lab.traffic import DAY, EPOCH_MONDAY, Traffic, poisson

__all__ = [
    "AGENT_API",
    "BACKGROUND_KINDS",
    "CI_API",
    "INVENTORY_API",
    "RARE_WRITES",
    "add_background",
    "iac_role",
]

BACKGROUND_KINDS = ("iac_clumps", "hand_changes", "ci_hours", "inventory_job", "agents")

RARE_WRITES = (
    ("iam.amazonaws.com", "CreateRole"),
    ("s3.amazonaws.com", "PutBucketPolicy"),
    ("ec2.amazonaws.com", "CreateSecurityGroup"),
    ("lambda.amazonaws.com", "CreateFunction20150331"),
    ("route53.amazonaws.com", "ChangeResourceRecordSets"),
    ("iam.amazonaws.com", "UpdateAssumeRolePolicy"),
    ("s3.amazonaws.com", "CreateBucket"),
)
CI_API = ("ecr.amazonaws.com", "PutImage")
INVENTORY_API = ("ssm.amazonaws.com", "PutInventory")
AGENT_API = ("ssm.amazonaws.com", "UpdateInstanceInformation")
_CONSOLE = "AWS Internal"
_TERRAFORM_AGENT = "Terraform/1.7.4"


def iac_role(acct: str) -> str:
    """The infrastructure-as-code role's ARN in ``acct``."""
    return f"arn:aws:sts::{acct}:assumed-role/terraform-apply/ci"


def _weekday(seconds: int) -> bool:
    return (seconds - EPOCH_MONDAY) // DAY % 7 < 5


def _business(seconds: int) -> bool:
    return 8 <= seconds // 3600 % 24 < 18


class _Background:
    def __init__(self, gen: Traffic, rng: random.Random, acct: str, region: str) -> None:
        self.gen, self.rng, self.acct, self.region = gen, rng, acct, region

    def minute(self, kinds: tuple[str, ...], minute: int, t0: int) -> None:
        weekday, business = _weekday(t0), _business(t0)
        office = weekday and business
        if "iac_clumps" in kinds and self.rng.random() < (2.5 / 600 if office else 0.3 / 8640):
            self.clump(t0, iac_role(self.acct), _TERRAFORM_AGENT, self.rng.randint(1, 3))
        if "hand_changes" in kinds and office:
            self.by_hand(t0)
        if "ci_hours" in kinds:
            per_hour = 15.0 if office else (2.0 if business else 0.3)
            self.calls(
                t0, CI_API, per_hour / 60, "assumed-role/ci-deployer/build", "aws-sdk-go-v2/1.24"
            )
        if "inventory_job" in kinds and minute % 5 == 2:
            for _ in range(self.rng.randint(1, 2)):
                self.emit(
                    t0 + self.rng.randrange(20),
                    INVENTORY_API,
                    "assumed-role/inventory-sync/lambda",
                    "Boto3/1.34",
                )
        if "agents" in kinds:
            for _ in range(poisson(self.rng, 3.0)):
                who = f"assumed-role/ssm-instance/i-{self.rng.randrange(100, 140)}"
                self.emit(t0 + self.rng.randrange(60), AGENT_API, who, "amazon-ssm-agent/3.3")

    def emit(self, at: int, api: tuple[str, str], who: str, agent: str) -> None:
        arn = who if who.startswith("arn:") else f"arn:aws:sts::{self.acct}:{who}"
        self.gen.emit(at, self.acct, self.region, api, arn, agent=agent)

    def calls(self, t0: int, api: tuple[str, str], rate: float, who: str, agent: str) -> None:
        for _ in range(poisson(self.rng, rate)):
            self.emit(t0 + self.rng.randrange(60), api, who, agent)

    def clump(self, t0: int, who: str, agent: str, apis: int) -> None:
        """A clump: ``apis`` rare write APIs, 5-15 calls each, over 1-4 minutes."""
        for api in self.rng.sample(RARE_WRITES, apis):
            span = self.rng.randint(60, 240)
            for _ in range(self.rng.randint(5, 15)):
                self.emit(t0 + self.rng.randrange(span), api, who, agent)

    def by_hand(self, t0: int) -> None:
        people = self.gen.people(self.acct)
        for api in RARE_WRITES:  # about 3 single calls a weekday per API
            if self.rng.random() < 3 / 600:
                self.emit(t0 + self.rng.randrange(60), api, self.rng.choice(people), _CONSOLE)
        if self.rng.random() < 0.8 / 600:  # a person working through a batch by hand
            who, api = self.rng.choice(people), self.rng.choice(RARE_WRITES)
            span = self.rng.randint(180, 480)
            for _ in range(self.rng.randint(5, 12)):
                self.emit(t0 + self.rng.randrange(span), api, who, _CONSOLE)


def add_background(gen: Traffic, acct: str, region: str, kinds: tuple[str, ...]) -> None:
    """Add the background ``kinds`` of :data:`BACKGROUND_KINDS` to ``acct``/``region``."""
    unknown = set(kinds) - set(BACKGROUND_KINDS)
    if unknown:
        raise ValueError(f"unknown background kinds: {sorted(unknown)}")
    sc = gen.sc
    rng = random.Random(f"{sc.seed}/{acct}/{region}/background")
    background = _Background(gen, rng, acct, region)
    for minute in range(sc.days * 1440):
        background.minute(kinds, minute, sc.start + minute * 60)
