"""A realistic, labelled CloudTrail traffic simulator (for the demo, tests and benchmarks).

:func:`generate` puts together the normal traffic of each account-Region
(:mod:`streams.lab.traffic`), an organization's harder background when the scenario asks for it
(:mod:`streams.lab.background`) and the labelled anomalies (:mod:`streams.lab.anomalies`);
:func:`render` writes the events as full CloudTrail records. :func:`hard_scenario` is the
labelled suite of issue 23: 2 weeks, every anomaly kind, all the background.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator

import msgspec

from streams.lab.anomalies import HARD_KINDS, inject
from streams.lab.background import BACKGROUND_KINDS, add_background
from streams.lab.traffic import (
    ANOMALY_KINDS,
    DAY,
    Label,
    Scenario,
    SimEvent,
    Traffic,
)

__all__ = [
    "ANOMALY_KINDS",
    "HARD_KINDS",
    "Label",
    "Scenario",
    "SimEvent",
    "generate",
    "hard_scenario",
    "render",
]


def hard_scenario(seed: int, days: int = 14) -> Scenario:
    """The harder labelled suite: every kind of :data:`HARD_KINDS` over the background.

    Anomalies are spread over the second week's weekdays (4 account-Regions a day); the weekend
    kinds fall on its Saturday."""
    return Scenario(
        seed=seed,
        days=days,
        reads_per_minute=1.5,
        anomalies=HARD_KINDS,
        anomaly_day=8,
        anomaly_days_apart=1,
        background=BACKGROUND_KINDS,
    )


def generate(sc: Scenario) -> list[SimEvent]:
    """Simulate ``sc`` (filling ``sc.labels``); events sorted by time."""
    rng = random.Random(sc.seed)
    gen = Traffic(sc, rng)
    sc.labels.clear()
    for acct in sc.accounts:
        for region in sc.regions:
            gen.normal(acct, region)
            if sc.background:
                add_background(gen, acct, region, sc.background)
    day_start = sc.start + sc.anomaly_day * DAY
    targets = [(a, r) for a in sc.accounts for r in sc.regions]
    for i, kind in enumerate(sc.anomalies):
        acct, region = targets[i % len(targets)]
        inject(
            gen, kind, acct, region, day_start + (i // len(targets)) * sc.anomaly_days_apart * DAY
        )
    gen.events.sort(key=lambda e: e.seconds)
    return gen.events


def _time(sec: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sec))


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
