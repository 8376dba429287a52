"""The typed event models: each sample in events/ parses to the fields its route needs, and each required
field missing or of the wrong type is a MalformedEvent that names it."""

from __future__ import annotations

import calendar
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rolewarden.errors import MalformedEvent
from rolewarden.events.ec2 import (
    Ec2TagCall,
    InstanceLaunch,
    InstanceStateChange,
    InstanceTagChange,
    LaunchLifecycleAction,
)
from rolewarden.events.iam import IamPolicyCall, IamRoleCall, InstanceProfileCall
from rolewarden.events.own import GrantPolicyDrift, ScheduledSweep
from rolewarden.events.s3 import BucketTagChange, S3BucketCall
from rolewarden.model.instances import LifecycleAction
from rolewarden.triggers import parse_envelope

EVENTS = Path(__file__).resolve().parents[2] / "events"
INSTANCE = "i-0123456789abcdef0"
GRANT_POLICY = "arn:aws:iam::123456789012:policy/rolewarden/rolewarden-grants-web-server"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return data


def epoch(stamp: str) -> float:
    return float(calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")))


# -- valid samples parse to the expected fields ------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "model", "expected"),
    [
        ("ec2-state-running.json", InstanceStateChange, InstanceStateChange(INSTANCE, epoch("2026-11-28T09:00:00Z"))),
        ("asg-launch-successful.json", InstanceLaunch, InstanceLaunch(INSTANCE, epoch("2026-11-28T09:01:00Z"))),
        (
            "asg-lifecycle-launching.json",
            LaunchLifecycleAction,
            LaunchLifecycleAction(
                LifecycleAction("web-asg", "rolewarden-launch", "87654321-4321-4321-4321-210987654321", INSTANCE),
                epoch("2026-11-28T09:00:45Z"),
            ),
        ),
        ("tag-change-instance.json", InstanceTagChange, InstanceTagChange((INSTANCE,))),
        ("cloudtrail-ec2-createtags.json", Ec2TagCall, Ec2TagCall((INSTANCE,))),  # the volume is not ours
        ("cloudtrail-ec2-deletetags.json", Ec2TagCall, Ec2TagCall((INSTANCE,))),
        ("cloudtrail-s3-putbuckettagging.json", S3BucketCall, S3BucketCall("example-data")),
        ("cloudtrail-s3-createbucket.json", S3BucketCall, S3BucketCall("example-data")),
        ("cloudtrail-s3-putbucketencryption.json", S3BucketCall, S3BucketCall("example-data")),
        ("cloudtrail-s3-tagresource.json", S3BucketCall, S3BucketCall("example-data")),
        ("cloudtrail-s3-untagresource.json", S3BucketCall, S3BucketCall("example-data")),
        ("tag-change-bucket.json", BucketTagChange, BucketTagChange(("example-data",))),
        ("cloudtrail-iam-attachrolepolicy.json", IamRoleCall, IamRoleCall("web-server")),
        ("cloudtrail-iam-createrole.json", IamRoleCall, IamRoleCall("web-server")),
        ("cloudtrail-iam-updateassumerolepolicy.json", IamRoleCall, IamRoleCall("web-server")),
        ("cloudtrail-iam-createpolicyversion.json", IamPolicyCall, IamPolicyCall(GRANT_POLICY)),
        ("cloudtrail-iam-setdefaultpolicyversion.json", IamPolicyCall, IamPolicyCall(GRANT_POLICY)),
        ("cloudtrail-iam-addroletoinstanceprofile.json", InstanceProfileCall, InstanceProfileCall("web-server")),
        ("cloudtrail-iam-removerolefrominstanceprofile.json", InstanceProfileCall, InstanceProfileCall("web-server")),
        ("scheduled-sweep.json", ScheduledSweep, ScheduledSweep()),
        (
            "grant-policy-drift.json",
            GrantPolicyDrift,
            GrantPolicyDrift(
                "web-server", GRANT_POLICY, "the default version v2 is not the document the recorded grants call for"
            ),
        ),
    ],
)
def test_a_sample_parses_to_its_fields(name: str, model: Any, expected: object) -> None:
    assert model.from_envelope(parse_envelope(load(name))) == expected


def test_models_are_frozen() -> None:
    event = InstanceStateChange.from_envelope(parse_envelope(load("ec2-state-running.json")))
    with pytest.raises(AttributeError):
        event.instance_id = "i-00000000"  # type: ignore[misc]


# -- well formed, but concerning nothing RoleWarden manages: None --------------------------------------------
@pytest.mark.parametrize(
    ("name", "model", "path", "value"),
    [
        (
            "asg-lifecycle-launching.json",
            LaunchLifecycleAction,
            ("LifecycleTransition",),
            "autoscaling:TEST_NOTIFICATION",
        ),
        ("tag-change-instance.json", InstanceTagChange, ("service",), "s3"),
        ("tag-change-bucket.json", BucketTagChange, ("resource-type",), "object"),
        ("cloudtrail-ec2-createtags.json", Ec2TagCall, ("errorCode",), "Client.UnauthorizedOperation"),
        ("cloudtrail-s3-putbuckettagging.json", S3BucketCall, ("errorCode",), "AccessDenied"),
        (
            "cloudtrail-s3-tagresource.json",
            S3BucketCall,
            ("requestParameters", "resourceArn"),
            "arn:aws:s3:us-east-1:123456789012:accesspoint/ap",
        ),
        ("cloudtrail-iam-attachrolepolicy.json", IamRoleCall, ("errorCode",), "AccessDenied"),
        ("cloudtrail-iam-createpolicyversion.json", IamPolicyCall, ("errorCode",), "AccessDenied"),
        ("cloudtrail-iam-addroletoinstanceprofile.json", InstanceProfileCall, ("errorCode",), "AccessDenied"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.endswith(".json") else None,
)
def test_events_that_concern_nothing_parse_to_none(name: str, model: Any, path: tuple[str, ...], value: str) -> None:
    event = load(name)
    set_at(event["detail"], path, value)
    assert model.from_envelope(parse_envelope(event)) is None


def set_at(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    *parents, last = path
    for key in parents:
        data = data[key]
    if value is MISSING:
        del data[last]
    else:
        data[last] = value


MISSING = object()


# -- each required field missing or of the wrong type: MalformedEvent naming it ------------------------------
CASES: list[tuple[str, Callable[..., object], tuple[str, ...], str]] = [
    ("ec2-state-running.json", InstanceStateChange.from_envelope, ("instance-id",), "detail.instance-id"),
    ("asg-launch-successful.json", InstanceLaunch.from_envelope, ("EC2InstanceId",), "detail.EC2InstanceId"),
    ("asg-lifecycle-launching.json", LaunchLifecycleAction.from_envelope, ("EC2InstanceId",), "detail.EC2InstanceId"),
    (
        "asg-lifecycle-launching.json",
        LaunchLifecycleAction.from_envelope,
        ("AutoScalingGroupName",),
        "detail.AutoScalingGroupName",
    ),
    (
        "asg-lifecycle-launching.json",
        LaunchLifecycleAction.from_envelope,
        ("LifecycleHookName",),
        "detail.LifecycleHookName",
    ),
    (
        "asg-lifecycle-launching.json",
        LaunchLifecycleAction.from_envelope,
        ("LifecycleActionToken",),
        "detail.LifecycleActionToken",
    ),
    (
        "cloudtrail-ec2-createtags.json",
        Ec2TagCall.from_envelope,
        ("requestParameters", "resourcesSet", "items"),
        "detail.requestParameters.resourcesSet.items",
    ),
    (
        "cloudtrail-ec2-createtags.json",
        Ec2TagCall.from_envelope,
        ("requestParameters", "resourcesSet"),
        "detail.requestParameters.resourcesSet",
    ),
    ("cloudtrail-ec2-createtags.json", Ec2TagCall.from_envelope, ("requestParameters",), "detail.requestParameters"),
    (
        "cloudtrail-s3-putbuckettagging.json",
        S3BucketCall.from_envelope,
        ("requestParameters", "bucketName"),
        "detail.requestParameters.bucketName",
    ),
    (
        "cloudtrail-s3-putbuckettagging.json",
        S3BucketCall.from_envelope,
        ("requestParameters",),
        "detail.requestParameters",
    ),
    ("cloudtrail-s3-tagresource.json", S3BucketCall.from_envelope, ("requestParameters", "resourceArn"), "resourceArn"),
    (
        "cloudtrail-iam-attachrolepolicy.json",
        IamRoleCall.from_envelope,
        ("requestParameters", "roleName"),
        "detail.requestParameters.roleName",
    ),
    (
        "cloudtrail-iam-createpolicyversion.json",
        IamPolicyCall.from_envelope,
        ("requestParameters", "policyArn"),
        "detail.requestParameters.policyArn",
    ),
    (
        "cloudtrail-iam-addroletoinstanceprofile.json",
        InstanceProfileCall.from_envelope,
        ("requestParameters", "instanceProfileName"),
        "detail.requestParameters.instanceProfileName",
    ),
    ("grant-policy-drift.json", GrantPolicyDrift.from_envelope, ("roleName",), "detail.roleName"),
    ("grant-policy-drift.json", GrantPolicyDrift.from_envelope, ("policyArn",), "detail.policyArn"),
]
# the requestParameters object may be absent (a call without parameters), so only its wrong type is malformed
MISSING_CASES = [case for case in CASES if case[2] != ("requestParameters",)]


def case_id(case: tuple[str, Callable[..., object], tuple[str, ...], str]) -> str:
    return f"{case[0].removesuffix('.json')}:{'.'.join(case[2])}"


@pytest.mark.parametrize("case", MISSING_CASES, ids=case_id)
def test_a_missing_field_is_named(case: tuple[str, Callable[..., object], tuple[str, ...], str]) -> None:
    name, parse, path, field = case
    event = load(name)
    set_at(event["detail"], path, MISSING)
    with pytest.raises(MalformedEvent, match=field.replace(".", r"\.")):
        parse(parse_envelope(event))


@pytest.mark.parametrize("wrong", [5, True], ids=["number", "bool"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_a_field_of_the_wrong_type_is_named(
    case: tuple[str, Callable[..., object], tuple[str, ...], str], wrong: object
) -> None:
    name, parse, path, field = case
    event = load(name)
    set_at(event["detail"], path, wrong)
    with pytest.raises(MalformedEvent, match=field.replace(".", r"\.")) as raised:
        parse(parse_envelope(event))
    assert type(wrong).__name__ in str(raised.value)


@pytest.mark.parametrize(
    ("name", "parse", "path", "value", "message"),
    [
        (
            "ec2-state-running.json",
            InstanceStateChange.from_envelope,
            ("instance-id",),
            "i-; DROP",
            "detail.instance-id 'i-; DROP' is not an instance id",
        ),
        (
            "cloudtrail-ec2-createtags.json",
            Ec2TagCall.from_envelope,
            ("requestParameters", "resourcesSet", "items"),
            ["i-x"],
            r"items\[0\] must be an object",
        ),
        (
            "cloudtrail-ec2-createtags.json",
            Ec2TagCall.from_envelope,
            ("requestParameters", "resourcesSet", "items"),
            [{"resourceId": "i-zz"}],
            r"items\[0\]\.resourceId 'i-zz' is not an instance id",
        ),
        (
            "cloudtrail-ec2-createtags.json",
            Ec2TagCall.from_envelope,
            ("requestParameters", "resourcesSet", "items"),
            [{}],
            r"items\[0\]\.resourceId must be a string",
        ),
        (
            "cloudtrail-s3-putbuckettagging.json",
            S3BucketCall.from_envelope,
            ("requestParameters", "bucketName"),
            "Not_A_Bucket",
            "bucketName 'Not_A_Bucket' is not a bucket name",
        ),
        (
            "cloudtrail-iam-attachrolepolicy.json",
            IamRoleCall.from_envelope,
            ("requestParameters", "roleName"),
            "web/server",
            "roleName 'web/server' is not an IAM role name",
        ),
        (
            "cloudtrail-iam-createpolicyversion.json",
            IamPolicyCall.from_envelope,
            ("requestParameters", "policyArn"),
            "grants",
            "policyArn 'grants' is not an IAM policy ARN",
        ),
        (
            "cloudtrail-iam-addroletoinstanceprofile.json",
            InstanceProfileCall.from_envelope,
            ("requestParameters", "instanceProfileName"),
            "a b",
            "instanceProfileName 'a b' is not an instance profile name",
        ),
        (
            "grant-policy-drift.json",
            GrantPolicyDrift.from_envelope,
            ("reason",),
            ["drift"],
            "detail.reason must be a string, got list",
        ),
    ],
    ids=["instance-id", "tag-item", "tag-item-id", "tag-item-no-id", "bucket", "role", "policy", "profile", "reason"],
)
def test_a_malformed_value_is_named(
    name: str, parse: Callable[..., object], path: tuple[str, ...], value: object, message: str
) -> None:
    event = load(name)
    set_at(event["detail"], path, value)
    with pytest.raises(MalformedEvent, match=message):
        parse(parse_envelope(event))


@pytest.mark.parametrize(
    ("name", "model", "resource", "message"),
    [
        ("tag-change-instance.json", InstanceTagChange, "arn:aws:s3:::example-data", "is not an EC2 instance ARN"),
        (
            "tag-change-bucket.json",
            BucketTagChange,
            "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0",
            "is not an S3 bucket ARN",
        ),
    ],
)
def test_a_tag_change_on_the_wrong_resource_is_refused(name: str, model: Any, resource: str, message: str) -> None:
    event = load(name)
    event["resources"] = [resource]
    with pytest.raises(MalformedEvent, match=message):
        model.from_envelope(parse_envelope(event))


def test_a_grant_drift_without_a_reason_parses() -> None:
    event = load("grant-policy-drift.json")
    del event["detail"]["reason"]
    assert GrantPolicyDrift.from_envelope(parse_envelope(event)).reason == ""
