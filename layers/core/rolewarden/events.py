"""Typed event models: one small frozen dataclass per event shape RoleWarden routes.

Each model's ``from_envelope(env)`` validates the fields its route needs and raises ``MalformedEvent``
naming the field (``detail.requestParameters.roleName ...``); it returns None when the event is well formed
but concerns nothing RoleWarden manages (a failed CloudTrail call, a test notification, another service's
tags). Plain dataclasses, no pydantic and no Powertools data classes: parsing stays cheap at cold start.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Self

from rolewarden.errors import MalformedEvent
from rolewarden.model.instances import LifecycleAction

_INSTANCE_ID_RE = re.compile(r"^i-[0-9a-f]{8,17}$")
_INSTANCE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:ec2:[a-z0-9-]+:\d{12}:instance/(i-[0-9a-f]{8,17})$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_BUCKET_ARN_RE = re.compile(r"^arn:aws[a-z-]*:s3:::([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])$")
_ROLE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$", re.ASCII)
_POLICY_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::(aws|\d{12}):policy/[\x21-\x7e]{1,1100}$")
_PROFILE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,128}$", re.ASCII)
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"


class EnvelopeFields(Protocol):
    """The parts of a parsed EventBridge envelope (``triggers.Envelope``) the models read."""

    @property
    def detail(self) -> Mapping[str, Any]: ...
    @property
    def resources(self) -> tuple[str, ...]: ...
    @property
    def epoch(self) -> float | None: ...


# -- field checks: each names the field it refuses ------------------------------------------------
def _text(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"{where}.{key} must be a non-empty string, got {type(value).__name__}")
    return value


def _matching(data: Mapping[str, Any], key: str, where: str, pattern: re.Pattern[str], what: str) -> str:
    value = _text(data, key, where)
    if not pattern.match(value):
        raise MalformedEvent(f"{where}.{key} {value[:120]!r} is not {what}")
    return value


def _instance_id(data: Mapping[str, Any], key: str, where: str = "detail") -> str:
    return _matching(data, key, where, _INSTANCE_ID_RE, "an instance id")


def _resource_arns(env: EnvelopeFields, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    """The first group of each of the envelope's resources, all of which must be ``what`` ARNs."""
    names = []
    for arn in env.resources:
        match = pattern.match(arn)
        if match is None:
            raise MalformedEvent(f"resource {arn[:120]!r} is not {what}")
        names.append(match.group(1))
    return tuple(names)


def cloudtrail_request(env: EnvelopeFields) -> Mapping[str, Any] | None:
    """detail.requestParameters of a successful CloudTrail call ({} when absent), None for a failed call."""
    if env.detail.get("errorCode"):
        return None
    params = env.detail.get("requestParameters") or {}
    if not isinstance(params, dict):
        raise MalformedEvent(f"detail.requestParameters must be an object, got {type(params).__name__}")
    return params


_REQUEST = "detail.requestParameters"


# -- EC2 and Auto Scaling ---------------------------------------------------------------------------
@dataclass(frozen=True)
class InstanceStateChange:
    """EC2 Instance State-change Notification (aws.ec2)."""

    instance_id: str
    launched_at: float | None

    @classmethod
    def from_envelope(cls, env: EnvelopeFields) -> InstanceStateChange:
        return cls(_instance_id(env.detail, "instance-id"), env.epoch)


@dataclass(frozen=True)
class InstanceLaunch:
    """EC2 Instance Launch Successful (aws.autoscaling)."""

    instance_id: str
    launched_at: float | None

    @classmethod
    def from_envelope(cls, env: EnvelopeFields) -> InstanceLaunch:
        return cls(_instance_id(env.detail, "EC2InstanceId"), env.epoch)


@dataclass(frozen=True)
class LaunchLifecycleAction:
    """EC2 Instance-launch Lifecycle Action (aws.autoscaling) of the launching transition; None for test
    notifications and other transitions."""

    action: LifecycleAction
    launched_at: float | None

    @classmethod
    def from_envelope(cls, env: EnvelopeFields) -> LaunchLifecycleAction | None:
        detail = env.detail
        if detail.get("LifecycleTransition") != LAUNCHING:
            return None
        instance_id = _instance_id(detail, "EC2InstanceId")
        action = LifecycleAction(
            group=_text(detail, "AutoScalingGroupName", "detail"),
            hook=_text(detail, "LifecycleHookName", "detail"),
            token=_text(detail, "LifecycleActionToken", "detail"),
            instance_id=instance_id,
        )
        return cls(action, env.epoch)


@dataclass(frozen=True)
class InstanceTagChange:
    """Tag Change on Resource (aws.tag) for EC2 instances; None for other services' resources."""

    instance_ids: tuple[str, ...]

    @classmethod
    def from_envelope(cls, env: EnvelopeFields) -> InstanceTagChange | None:
        if env.detail.get("service") != "ec2" or env.detail.get("resource-type") != "instance":
            return None
        return cls(_resource_arns(env, _INSTANCE_ARN_RE, "an EC2 instance ARN"))


@dataclass(frozen=True)
class Ec2TagCall:
    """AWS API Call via CloudTrail, EC2 CreateTags/DeleteTags: the instances among the tagged resources
    (volumes, images ... are not RoleWarden's). None for a failed call."""

    instance_ids: tuple[str, ...]

    @classmethod
    def from_envelope(cls, env: EnvelopeFields) -> Ec2TagCall | None:
        params = cloudtrail_request(env)
        if params is None:
            return None
        where = f"{_REQUEST}.resourcesSet"
        resources = params.get("resourcesSet")
        if not isinstance(resources, dict):
            raise MalformedEvent(f"{where} must be an object, got {type(resources).__name__}")
        items = resources.get("items")
        if not isinstance(items, list):
            raise MalformedEvent(f"{where}.items must be a list, got {type(items).__name__}")
        ids = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise MalformedEvent(f"{where}.items[{index}] must be an object, got {type(item).__name__}")
            resource_id = item.get("resourceId")
            if not isinstance(resource_id, str):
                raise MalformedEvent(
                    f"{where}.items[{index}].resourceId must be a string, got {type(resource_id).__name__}"
                )
            if resource_id.startswith("i-"):
                ids.append(_instance_id(item, "resourceId", f"{where}.items[{index}]"))
        return cls(tuple(ids))


# -- S3 buckets -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class S3BucketCall:
    """AWS API Call via CloudTrail on a bucket. PutBucketTagging, DeleteBucketTagging, CreateBucket,
    DeleteBucket and Put/DeleteBucketEncryption carry bucketName; TagResource/UntagResource (S3 console,
    CloudFormation, ABAC buckets) carry the resource ARN. None for a failed call or another S3 resource."""

    bucket: str

    @classmethod
    def from_envelope(cls, env: EnvelopeFields) -> S3BucketCall | None:
        params = cloudtrail_request(env)
        if params is None:
            return None
        name = params.get("bucketName")
        if isinstance(name, str):
            return cls(_matching(params, "bucketName", _REQUEST, _BUCKET_RE, "a bucket name"))
        arn = params.get("resourceArn") or params.get("ResourceArn")
        if not isinstance(arn, str):
            raise MalformedEvent(
                f"{_REQUEST}.bucketName or .resourceArn must be a string,"
                f" got {type(name).__name__} and {type(arn).__name__}"
            )
        match = _BUCKET_ARN_RE.match(arn)
        return cls(match.group(1)) if match else None  # an access point, a job ...: not a bucket


@dataclass(frozen=True)
class BucketTagChange:
    """Tag Change on Resource (aws.tag) for S3 buckets; None for other services' resources."""

    buckets: tuple[str, ...]

    @classmethod
    def from_envelope(cls, env: EnvelopeFields) -> BucketTagChange | None:
        if env.detail.get("service") != "s3" or env.detail.get("resource-type") != "bucket":
            return None
        return cls(_resource_arns(env, _BUCKET_ARN_RE, "an S3 bucket ARN"))


# -- IAM ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IamCall:
    """AWS API Call via CloudTrail naming one IAM resource in its request: ``name`` is the request
    parameter the subclass names (``key``), checked against its ``pattern``; None for a failed call."""

    name: str
    key: ClassVar[str]
    pattern: ClassVar[re.Pattern[str]]
    what: ClassVar[str]

    def __init_subclass__(cls, *, key: str, pattern: re.Pattern[str], what: str) -> None:
        super().__init_subclass__()
        cls.key, cls.pattern, cls.what = key, pattern, what

    @classmethod
    def from_envelope(cls, env: EnvelopeFields) -> Self | None:
        params = cloudtrail_request(env)
        return None if params is None else cls(_matching(params, cls.key, _REQUEST, cls.pattern, cls.what))


@dataclass(frozen=True)
class IamRoleCall(IamCall, key="roleName", pattern=_ROLE_NAME_RE, what="an IAM role name"):
    """A call on a role (AttachRolePolicy, PutRolePolicy, CreateRole ...): ``name`` is the role's."""


@dataclass(frozen=True)
class IamPolicyCall(IamCall, key="policyArn", pattern=_POLICY_ARN_RE, what="an IAM policy ARN"):
    """A call on a managed policy (CreatePolicyVersion, SetDefaultPolicyVersion): ``name`` is its ARN."""


@dataclass(frozen=True)
class InstanceProfileCall(
    IamCall, key="instanceProfileName", pattern=_PROFILE_NAME_RE, what="an instance profile name"
):
    """Add/RemoveRoleToInstanceProfile: the profile's role changed; ``name`` is the profile's."""


# -- RoleWarden's own events -------------------------------------------------------------------------
@dataclass(frozen=True)
class ScheduledSweep:
    """Scheduled Event (aws.events): a sweep of everything; the route needs no field of it."""

    @classmethod
    def from_envelope(cls, env: EnvelopeFields) -> ScheduledSweep:
        return cls()


@dataclass(frozen=True)
class GrantPolicyDrift:
    """Grant Policy Drift (rolewarden.compliance, on the grants queue): a grant policy drifted from what
    the state table says; its role's grants are re-published."""

    role_name: str
    policy_arn: str
    reason: str

    @classmethod
    def from_envelope(cls, env: EnvelopeFields) -> GrantPolicyDrift:
        detail = env.detail
        role = _matching(detail, "roleName", "detail", _ROLE_NAME_RE, "an IAM role name")
        arn = _matching(detail, "policyArn", "detail", _POLICY_ARN_RE, "an IAM policy ARN")
        reason = detail.get("reason", "")
        if not isinstance(reason, str):
            raise MalformedEvent(f"detail.reason must be a string, got {type(reason).__name__}")
        return cls(role, arn, reason)
