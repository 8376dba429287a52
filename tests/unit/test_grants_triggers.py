"""Bucket-grant triggers: the sample events route to their bucket, and the EventBridge rule in template.yaml
matches exactly the CloudTrail eventNames the route handles (one source of truth, read from the template)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rolewarden.errors import MalformedEvent
from rolewarden.model.targets import Target
from rolewarden.triggers import ROUTES, parse_envelope, route
from rwlocal.stack import load_template

EVENTS = Path(__file__).resolve().parents[2] / "events"


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


@pytest.mark.parametrize(
    "name",
    [
        "cloudtrail-s3-putbuckettagging.json",
        "cloudtrail-s3-deletebuckettagging.json",
        "cloudtrail-s3-putbucketencryption.json",
        "cloudtrail-s3-deletebucketencryption.json",
    ],
)
def test_bucket_calls_route_to_their_bucket(name: str) -> None:
    assert route("bucket_grants", parse_envelope(load(name))) == [Target("bucket", "example-data")]


def test_a_failed_encryption_call_concerns_nothing() -> None:
    event = load("cloudtrail-s3-putbucketencryption.json")
    event["detail"]["errorCode"] = "AccessDenied"
    assert route("bucket_grants", parse_envelope(event)) == []


def test_the_rule_matches_exactly_the_routed_event_names() -> None:
    pattern = load_template()["Resources"]["BucketTagCallsRule"]["Properties"]["EventPattern"]["$or"][0]
    routed = next(r.event_names for r in ROUTES["bucket_grants"] if r.source == "aws.s3")
    assert set(pattern["detail"]["eventName"]) == set(routed)
    assert {"PutBucketEncryption", "DeleteBucketEncryption"} <= set(routed)
    for name in ("cloudtrail-s3-putbucketencryption.json", "cloudtrail-s3-deletebucketencryption.json"):
        event = load(name)
        assert event["source"] in pattern["source"] and event["detail-type"] in pattern["detail-type"]
        assert event["detail"]["eventSource"] in pattern["detail"]["eventSource"]


# -- grant-policy drift, sent by the compliance capability to the grants queue ---------------------------------
def test_grant_drift_routes_to_its_role() -> None:
    assert route("bucket_grants", parse_envelope(load("grant-policy-drift.json"))) == [Target("role", "web-server")]


def test_grant_drift_concerns_no_other_capability() -> None:
    envelope = parse_envelope(load("grant-policy-drift.json"))
    assert route("role_compliance", envelope) == [] and route("instance_profiles", envelope) == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        pytest.param("roleName", None, "detail.roleName must be a non-empty string", id="no-role"),
        pytest.param("roleName", "web/server", "is not an IAM role name", id="role-with-a-path"),
        pytest.param("roleName", "*", "is not an IAM role name", id="wildcard-role"),
        pytest.param("policyArn", None, "detail.policyArn must be a non-empty string", id="no-policy"),
        pytest.param("policyArn", "rolewarden-grants-web-server", "is not an IAM policy ARN", id="policy-name"),
        pytest.param("reason", ["drift"], "detail.reason must be a string", id="reason-not-text"),
    ],
)
def test_a_malformed_grant_drift_is_refused(field: str, value: Any, message: str) -> None:
    event = load("grant-policy-drift.json")
    if value is None:
        del event["detail"][field]
    else:
        event["detail"][field] = value
    with pytest.raises(MalformedEvent, match=message):
        route("bucket_grants", parse_envelope(event))
