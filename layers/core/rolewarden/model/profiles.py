"""The instance-profiles capability's actions (on one instance each, or on its lifecycle hook)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rolewarden.model.actions import Action
from rolewarden.model.targets import Target

#: The capability's name (``capabilities.get``, metrics, findings).
CAPABILITY = "instance_profiles"


@dataclass(frozen=True)
class InstanceAction(Action):
    """An action on one instance: the instance is its resource and the target a reconcile re-reads."""

    capability: ClassVar[str] = CAPABILITY
    instance_id: str

    @property
    def resource(self) -> str:
        return self.instance_id

    @property
    def target(self) -> Target:
        return Target("instance", self.instance_id)


@dataclass(frozen=True)
class AssociateProfile(InstanceAction, verb="associate", summary="associate {profile_name} with {instance_id}"):
    profile_name: str
    profile_arn: str


@dataclass(frozen=True)
class _SwapProfile(InstanceAction):
    """Swap the profile of an association for another (the previous one is named for the log)."""

    association_id: str
    profile_name: str
    profile_arn: str
    previous_arn: str

    @property
    def previous_name(self) -> str:
        return self.previous_arn.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ReplaceProfile(
    _SwapProfile, verb="replace", summary="replace {previous_name} with {profile_name} on {instance_id}"
):
    """Running instance: ReplaceIamInstanceProfileAssociation."""


@dataclass(frozen=True)
class ReassociateProfile(
    _SwapProfile,
    verb="reassociate",
    summary="disassociate {previous_name} and associate {profile_name} on stopped {instance_id}",
):
    """Stopped instance: EC2 refuses Replace there, so disassociate and then associate."""


@dataclass(frozen=True)
class SetMetadataOptions(
    InstanceAction,
    verb="require-imdsv2",
    summary=(
        "require IMDSv2 with hop limit {hop_limit} on {instance_id} "
        "(was HttpTokens {previous_tokens}, hop limit {previous_hop_limit})"
    ),
):
    """ModifyInstanceMetadataOptions: IMDSv2 only (HttpTokens required) with the configured hop limit."""

    hop_limit: int
    previous_tokens: str
    previous_hop_limit: int


@dataclass(frozen=True)
class _HookAction(InstanceAction):
    """An answer to an instance's launch lifecycle hook. Releasing or keeping a hook changes no permission;
    withholding it in dry run would stall scale-outs."""

    allowed_in_dry_run: ClassVar[bool] = True
    group: str
    hook: str
    token: str


@dataclass(frozen=True)
class CompleteLifecycle(
    _HookAction,
    verb="complete-lifecycle",
    summary="complete lifecycle hook {hook} of {group} for {instance_id} with {result}",
):
    result: str = "CONTINUE"


@dataclass(frozen=True)
class HeartbeatLifecycle(
    _HookAction,
    verb="heartbeat-lifecycle",
    summary="record a heartbeat on lifecycle hook {hook} of {group} for {instance_id}",
):
    """RecordLifecycleActionHeartbeat: keep a launch hook waiting while its instance is retried."""
