"""The trigger table: each sample event in events/ routes to the resources it names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rolewarden.errors import MalformedEvent
from rolewarden.model.targets import SWEEP, Target
from rolewarden.triggers import caller_role_arn, parse_envelope, route

EVENTS = Path(__file__).resolve().parents[2] / "events"
INSTANCE = "i-0123456789abcdef0"


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ec2-state-running.json", [Target("instance", INSTANCE)]),
        ("ec2-state-pending.json", [Target("instance", INSTANCE)]),
        ("asg-launch-successful.json", [Target("instance", INSTANCE)]),
        ("asg-lifecycle-launching.json", [Target("instance", INSTANCE)]),
        ("tag-change-instance.json", [Target("instance", INSTANCE)]),
        ("cloudtrail-ec2-createtags.json", [Target("instance", INSTANCE)]),  # the volume id is not ours
        ("cloudtrail-ec2-deletetags.json", [Target("instance", INSTANCE)]),
        ("scheduled-sweep.json", [SWEEP]),
    ],
)
def test_instance_profile_routes(name: str, expected: list[Target]) -> None:
    assert route("instance_profiles", parse_envelope(load(name))) == expected


def test_lifecycle_target_carries_the_hook() -> None:
    (target,) = route("instance_profiles", parse_envelope(load("asg-lifecycle-launching.json")))
    assert target.lifecycle is not None
    assert (target.lifecycle.group, target.lifecycle.hook) == ("web-asg", "rolewarden-launch")
    assert target.lifecycle.token == "87654321-4321-4321-4321-210987654321"


def test_other_transitions_and_failed_calls_concern_nothing() -> None:
    test_notification = load("asg-lifecycle-launching.json")
    test_notification["detail"]["LifecycleTransition"] = "autoscaling:TEST_NOTIFICATION"
    assert route("instance_profiles", parse_envelope(test_notification)) == []
    failed = load("cloudtrail-ec2-createtags.json")
    failed["detail"]["errorCode"] = "Client.UnauthorizedOperation"
    assert route("instance_profiles", parse_envelope(failed)) == []
    bucket_tags = load("tag-change-instance.json")
    bucket_tags["detail"]["service"] = "s3"
    assert route("instance_profiles", parse_envelope(bucket_tags)) == []


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e.pop("detail"), "lacks detail"),
        (lambda e: e.update({"detail": "x"}), "not an object"),
        (lambda e: e.update({"source": 5}), "must be strings"),
        (lambda e: e["detail"].update({"instance-id": "i-; DROP"}), "not an instance id"),
        (lambda e: e["detail"].update({"instance-id": None}), "non-empty string"),
        (lambda e: e.update({"resources": "arn"}), "resources must be a list"),
    ],
    ids=["no-detail", "detail-string", "source-number", "bad-instance-id", "null-instance-id", "resources-string"],
)
def test_malformed_events_raise(mutate, message: str) -> None:
    event = load("ec2-state-running.json")
    mutate(event)
    with pytest.raises(MalformedEvent, match=message):
        route("instance_profiles", parse_envelope(event))


def test_envelope_rejects_non_objects() -> None:
    with pytest.raises(MalformedEvent):
        parse_envelope([1, 2])


def test_the_caller_role_is_read_leniently() -> None:
    """The caller's role only marks RoleWarden's own changes: an odd userIdentity means no caller, not a crash."""
    event = load("cloudtrail-iam-attachrolepolicy.json")
    issuer = event["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"]
    assert caller_role_arn(parse_envelope(event)) == issuer
    for odd in ("text", ["x"], {"sessionIssuer": "text"}, None):
        event["detail"]["userIdentity"]["sessionContext"] = odd
        assert caller_role_arn(parse_envelope(event)) == ""
