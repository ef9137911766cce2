from __future__ import annotations

from insights.timeparse import parse_epoch_seconds
from tests.factory import T0, background, burst, run


def test_records_have_the_aws_shape() -> None:
    events = background(1.0) + burst(
        T0 + 86_400 + 600, 40, "CreateTags", principal="arn:aws:iam::1:user/evil"
    )
    events.sort(key=lambda e: e.event_time or "")
    start, end = (r.to_dict() for r in run(events))
    for record in (start, end):
        assert set(record) == {
            "eventVersion",
            "eventTime",
            "awsRegion",
            "eventID",
            "eventType",
            "recipientAccountId",
            "sharedEventID",
            "insightDetails",
            "eventCategory",
            "additionalEventData",
        }
        assert record["eventType"] == "AwsCloudTrailInsight"
        assert record["eventCategory"] == "Insight"
        details = record["insightDetails"]
        assert details["insightType"] == "ApiCallRateInsight"
        assert "errorCode" not in details
        stats = details["insightContext"]["statistics"]
        assert set(stats) == {"baseline", "insight", "insightDuration", "baselineDuration"}
        attrs = details["insightContext"]["attributions"]
        assert [a["attribute"] for a in attrs] == ["userIdentityArn", "userAgent", "errorCode"]
        assert attrs[0]["insight"][0]["value"] == "arn:aws:iam::1:user/evil"
        assert attrs[2]["insight"][0]["value"] == "null"
        for entry in attrs:
            averages = [v["average"] for v in entry["insight"]]
            assert averages == sorted(averages, reverse=True)
            assert len(entry["insight"]) <= 5
            assert len(entry["baseline"]) <= 5
    assert start["sharedEventID"] == end["sharedEventID"]
    assert start["insightDetails"]["state"] == "Start"
    assert end["insightDetails"]["state"] == "End"
    duration = end["insightDetails"]["insightContext"]["statistics"]["insightDuration"]
    elapsed = parse_epoch_seconds(end["eventTime"]) - parse_epoch_seconds(start["eventTime"])
    assert duration * 60 == elapsed
    detection = parse_epoch_seconds(start["additionalEventData"]["detectionTime"])
    assert detection > parse_epoch_seconds(start["eventTime"])
    assert start["additionalEventData"]["score"] >= 7
    baseline_users = start["insightDetails"]["insightContext"]["attributions"][0]["baseline"]
    assert baseline_users[0]["value"] == "arn:aws:iam::123456789012:user/alice"
