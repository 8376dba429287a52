"""Typed models of the EC2 and Auto Scaling events the instance-profiles function routes (see
``rolewarden.events``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Self

from rolewarden.errors import MalformedEvent
from rolewarden.events.fields import REQUEST, EnvelopeFields, cloudtrail_request, instance_id, resource_arns, text
from rolewarden.model.instances import LifecycleAction

_INSTANCE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:ec2:[a-z0-9-]+:\d{12}:instance/(i-[0-9a-f]{8,17})$")
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"


@dataclass(frozen=True)
class InstanceEvent:
    """An event that names one instance in its ``detail`` under ``KEY``, and when it happened."""

    KEY: ClassVar[str] = "instance-id"
    instance_id: str
    launched_at: float | None

    @classmethod
    def from_envelope(cls, env: EnvelopeFields) -> Self:
        return cls(instance_id(env.detail, cls.KEY), env.epoch)


class InstanceStateChange(InstanceEvent):
    """EC2 Instance State-change Notification (aws.ec2)."""


class InstanceLaunch(InstanceEvent):
    """EC2 Instance Launch Successful (aws.autoscaling)."""

    KEY = "EC2InstanceId"


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
        instance = instance_id(detail, "EC2InstanceId")
        action = LifecycleAction(
            group=text(detail, "AutoScalingGroupName", "detail"),
            hook=text(detail, "LifecycleHookName", "detail"),
            token=text(detail, "LifecycleActionToken", "detail"),
            instance_id=instance,
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
        return cls(resource_arns(env, _INSTANCE_ARN_RE, "an EC2 instance ARN"))


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
        where = f"{REQUEST}.resourcesSet"
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
                ids.append(instance_id(item, "resourceId", f"{where}.items[{index}]"))
        return cls(tuple(ids))
