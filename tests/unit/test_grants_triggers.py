"""Bucket-grant triggers: the sample events route to their bucket, and the EventBridge rule in template.yaml
matches exactly the CloudTrail eventNames the route handles (one source of truth, read from the template)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

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
