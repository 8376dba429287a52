"""Event envelope -> which resources to reconcile: one table, not knowledge scattered through handlers.

Events are edge triggers only: a route extracts the ids of the resources an event names and
nothing else; the capability re-reads their real state before deciding.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rolewarden.errors import MalformedEvent
from rolewarden.model.instances import LifecycleAction
from rolewarden.model.targets import SWEEP, Target

INSTANCE_ID_RE = re.compile(r"^i-[0-9a-f]{8,17}$")
_INSTANCE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:ec2:[a-z0-9-]+:\d{12}:instance/(i-[0-9a-f]{8,17})$")
CLOUDTRAIL = "AWS API Call via CloudTrail"
SCHEDULED = "Scheduled Event"


_EVENT_TIME_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?Z$")


@dataclass(frozen=True)
class Envelope:
    id: str
    source: str
    detail_type: str
    detail: Mapping[str, Any]
    resources: tuple[str, ...] = ()
    region: str = ""
    account: str = ""
    time: str = ""

    @property
    def epoch(self) -> float | None:
        """The event's ``time`` (EventBridge's UTC ``2026-11-28T09:10:00Z``) as epoch seconds; None when
        absent or in another form. Pure arithmetic: the decision core reads no clock."""
        match = _EVENT_TIME_RE.match(self.time)
        if match is None:
            return None
        try:
            return float(calendar.timegm((*(int(part) for part in match.groups()), 0, 0, 0)))
        except (ValueError, OverflowError):
            return None


def parse_envelope(event: Any) -> Envelope:
    """Validate the EventBridge envelope. Lenient about fields RoleWarden does not use (moto omits
    ``account``); strict about the ones it does."""
    if not isinstance(event, dict):
        raise MalformedEvent(f"the event is a {type(event).__name__}, not a JSON object")
    missing = [key for key in ("source", "detail-type", "detail") if key not in event]
    if missing:
        raise MalformedEvent(f"the event lacks {', '.join(missing)}")
    source, detail_type, detail = event["source"], event["detail-type"], event["detail"]
    if not isinstance(source, str) or not isinstance(detail_type, str):
        raise MalformedEvent("source and detail-type must be strings")
    if not isinstance(detail, dict):
        raise MalformedEvent(f"detail is a {type(detail).__name__}, not an object")
    resources = event.get("resources", [])
    if not isinstance(resources, list) or not all(isinstance(item, str) for item in resources):
        raise MalformedEvent("resources must be a list of strings")
    event_id = event.get("id", "")
    return Envelope(
        id=event_id if isinstance(event_id, str) else str(event_id),
        source=source,
        detail_type=detail_type,
        detail=detail,
        resources=tuple(resources),
        region=str(event.get("region", "")),
        account=str(event.get("account", "")),
        time=str(event.get("time", "")),
    )


def _str(detail: Mapping[str, Any], key: str) -> str:
    value = detail.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"detail.{key} must be a non-empty string, got {type(value).__name__}")
    return value


def _instance_id(value: str, where: str) -> str:
    if not INSTANCE_ID_RE.match(value):
        raise MalformedEvent(f"{where} {value[:80]!r} is not an instance id")
    return value


# -- extractors ------------------------------------------------------------------------------
def _ec2_state(env: Envelope) -> list[Target]:
    instance_id = _instance_id(_str(env.detail, "instance-id"), "detail.instance-id")
    return [Target("instance", instance_id, launched_at=env.epoch)]


def _asg_launch(env: Envelope) -> list[Target]:
    instance_id = _instance_id(_str(env.detail, "EC2InstanceId"), "detail.EC2InstanceId")
    return [Target("instance", instance_id, launched_at=env.epoch)]


def _asg_lifecycle(env: Envelope) -> list[Target]:
    detail = env.detail
    if detail.get("LifecycleTransition") != "autoscaling:EC2_INSTANCE_LAUNCHING":
        return []  # test notifications and other transitions concern nothing RoleWarden does
    instance_id = _instance_id(_str(detail, "EC2InstanceId"), "detail.EC2InstanceId")
    action = LifecycleAction(
        group=_str(detail, "AutoScalingGroupName"),
        hook=_str(detail, "LifecycleHookName"),
        token=_str(detail, "LifecycleActionToken"),
        instance_id=instance_id,
    )
    return [Target("instance", instance_id, lifecycle=action, launched_at=env.epoch)]


def _tag_change_instances(env: Envelope) -> list[Target]:
    if env.detail.get("service") != "ec2" or env.detail.get("resource-type") != "instance":
        return []
    targets = []
    for arn in env.resources:
        match = _INSTANCE_ARN_RE.match(arn)
        if match is None:
            raise MalformedEvent(f"resource {arn[:120]!r} is not an EC2 instance ARN")
        targets.append(Target("instance", match.group(1)))
    return targets


def cloudtrail_request(env: Envelope) -> Mapping[str, Any] | None:
    """requestParameters of a successful CloudTrail call, or None for a failed call."""
    if env.detail.get("errorCode"):
        return None
    params = env.detail.get("requestParameters") or {}
    if not isinstance(params, dict):
        raise MalformedEvent("detail.requestParameters must be an object")
    return params


def _ec2_tag_calls(env: Envelope) -> list[Target]:
    params = cloudtrail_request(env)
    if params is None:
        return []
    items = (params.get("resourcesSet") or {}).get("items")
    if not isinstance(items, list):
        raise MalformedEvent("requestParameters.resourcesSet.items must be a list")
    targets = []
    for item in items:
        resource_id = item.get("resourceId") if isinstance(item, dict) else None
        if not isinstance(resource_id, str):
            raise MalformedEvent("resourcesSet item without a resourceId string")
        if resource_id.startswith("i-"):
            targets.append(Target("instance", _instance_id(resource_id, "resourceId")))
    return targets


def _sweep(env: Envelope) -> list[Target]:
    return [SWEEP]


# -- S3 buckets --------------------------------------------------------------------------------
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_BUCKET_ARN_RE = re.compile(r"^arn:aws[a-z-]*:s3:::([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])$")


def _bucket(value: str, where: str) -> str:
    if not _BUCKET_RE.match(value):
        raise MalformedEvent(f"{where} {value[:80]!r} is not a bucket name")
    return value


def _s3_calls(env: Envelope) -> list[Target]:
    """PutBucketTagging, DeleteBucketTagging, CreateBucket, DeleteBucket and Put/DeleteBucketEncryption carry
    bucketName; the TagResource/UntagResource calls (S3 console, CloudFormation, ABAC buckets) carry the
    bucket ARN."""
    params = cloudtrail_request(env)
    if params is None:
        return []
    name = params.get("bucketName")
    if isinstance(name, str):
        return [Target("bucket", _bucket(name, "requestParameters.bucketName"))]
    arn = params.get("resourceArn") or params.get("ResourceArn")
    if isinstance(arn, str):
        match = _BUCKET_ARN_RE.match(arn)
        return [Target("bucket", match.group(1))] if match else []  # other S3 resources: not ours
    raise MalformedEvent("S3 CloudTrail event without requestParameters.bucketName or resourceArn")


def _tag_change_buckets(env: Envelope) -> list[Target]:
    if env.detail.get("service") != "s3" or env.detail.get("resource-type") != "bucket":
        return []
    targets = []
    for arn in env.resources:
        match = _BUCKET_ARN_RE.match(arn)
        if match is None:
            raise MalformedEvent(f"resource {arn[:120]!r} is not an S3 bucket ARN")
        targets.append(Target("bucket", match.group(1)))
    return targets


# -- IAM roles ---------------------------------------------------------------------------------
_ROLE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$", re.ASCII)
_POLICY_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::(aws|\d{12}):policy/[\x21-\x7e]{1,1100}$")
IAM_ROLE_EVENTS = frozenset(
    {
        "AttachRolePolicy",
        "DetachRolePolicy",
        "PutRolePolicy",
        "DeleteRolePolicy",
        "UpdateAssumeRolePolicy",
        "PutRolePermissionsBoundary",
        "DeleteRolePermissionsBoundary",
        "CreateRole",
    }
)
IAM_POLICY_EVENTS = frozenset({"CreatePolicyVersion", "SetDefaultPolicyVersion"})


def caller_role_arn(env: Envelope) -> str:
    """The IAM role behind the CloudTrail caller's session ("" for users and services)."""
    identity = env.detail.get("userIdentity")
    if not isinstance(identity, dict):
        return ""
    issuer = (identity.get("sessionContext") or {}).get("sessionIssuer") or {}
    arn = issuer.get("arn") if isinstance(issuer, dict) else None
    return arn if isinstance(arn, str) else ""


def _iam_calls(env: Envelope) -> list[Target]:
    params = cloudtrail_request(env)
    if params is None:
        return []
    name = env.detail.get("eventName")
    if name in IAM_POLICY_EVENTS:
        arn = params.get("policyArn")
        if not isinstance(arn, str) or not _POLICY_ARN_RE.match(arn):
            raise MalformedEvent("requestParameters.policyArn is not an IAM policy ARN")
        return [Target("policy", arn)]
    role = params.get("roleName")
    if not isinstance(role, str) or not _ROLE_NAME_RE.match(role):
        raise MalformedEvent("requestParameters.roleName is not an IAM role name")
    return [Target("role", role)]


#: IAM changes to an instance profile's role: the instance-profiles capability judges the profile again.
IAM_PROFILE_EVENTS = frozenset({"AddRoleToInstanceProfile", "RemoveRoleFromInstanceProfile"})
_PROFILE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,128}$", re.ASCII)


def _iam_profile_calls(env: Envelope) -> list[Target]:
    params = cloudtrail_request(env)
    if params is None:
        return []
    name = params.get("instanceProfileName")
    if not isinstance(name, str) or not _PROFILE_NAME_RE.match(name):
        raise MalformedEvent("requestParameters.instanceProfileName is not an instance profile name")
    return [Target("profile", name)]


#: Grant-policy drift the compliance capability found, sent to the grants queue (sender: compliance).
GRANT_DRIFT_SOURCE = "rolewarden.compliance"
GRANT_DRIFT = "Grant Policy Drift"


def _grant_drift(env: Envelope) -> list[Target]:
    """A drifted grant policy: its role's grants are re-published from the state table."""
    role = _str(env.detail, "roleName")
    if not _ROLE_NAME_RE.match(role):
        raise MalformedEvent(f"detail.roleName {role[:80]!r} is not an IAM role name")
    arn = _str(env.detail, "policyArn")
    if not _POLICY_ARN_RE.match(arn):
        raise MalformedEvent(f"detail.policyArn {arn[:120]!r} is not an IAM policy ARN")
    if not isinstance(env.detail.get("reason", ""), str):
        raise MalformedEvent("detail.reason must be a string")
    return [Target("role", role)]


Extractor = Callable[[Envelope], list[Target]]


@dataclass(frozen=True)
class Route:
    source: str
    detail_type: str
    extract: Extractor
    event_names: frozenset[str] = frozenset()  # CloudTrail routes: the eventName values handled


ROUTES: dict[str, list[Route]] = {
    "instance_profiles": [
        Route("aws.ec2", "EC2 Instance State-change Notification", _ec2_state),
        Route("aws.autoscaling", "EC2 Instance Launch Successful", _asg_launch),
        Route("aws.autoscaling", "EC2 Instance-launch Lifecycle Action", _asg_lifecycle),
        Route("aws.tag", "Tag Change on Resource", _tag_change_instances),
        Route("aws.ec2", CLOUDTRAIL, _ec2_tag_calls, frozenset({"CreateTags", "DeleteTags"})),
        Route("aws.iam", CLOUDTRAIL, _iam_profile_calls, IAM_PROFILE_EVENTS),
        Route("aws.events", SCHEDULED, _sweep),
    ],
    "bucket_grants": [
        Route(
            "aws.s3",
            CLOUDTRAIL,
            _s3_calls,
            frozenset(
                {
                    "PutBucketTagging",
                    "DeleteBucketTagging",
                    "CreateBucket",
                    "DeleteBucket",
                    "TagResource",
                    "UntagResource",
                    # A grant names the bucket's default customer key: a key change re-grants at once.
                    "PutBucketEncryption",
                    "DeleteBucketEncryption",
                }
            ),
        ),
        Route("aws.tag", "Tag Change on Resource", _tag_change_buckets),
        Route("aws.events", SCHEDULED, _sweep),
        Route(GRANT_DRIFT_SOURCE, GRANT_DRIFT, _grant_drift),
    ],
    "role_compliance": [
        Route("aws.iam", CLOUDTRAIL, _iam_calls, IAM_ROLE_EVENTS | IAM_POLICY_EVENTS),
        Route("aws.events", SCHEDULED, _sweep),
    ],
}


def register(capability: str, *routes: Route) -> None:
    ROUTES.setdefault(capability, []).extend(routes)


def route(capability: str, env: Envelope) -> list[Target]:
    """The targets an event names for ``capability``; [] when it concerns nothing RoleWarden manages."""
    for candidate in ROUTES.get(capability, []):
        if candidate.source != env.source or candidate.detail_type != env.detail_type:
            continue
        if candidate.event_names:
            name = env.detail.get("eventName")
            if name not in candidate.event_names:
                continue
        return candidate.extract(env)
    return []
