"""The compliance capability's action types, and the names that say which roles and policies are its
business (service-linked roles, RoleWarden's own grant policies, policy ARNs).

``rolewarden.decide.compliance`` plans these actions; the executor in ``rolewarden.aws`` carries them out
(re-checking each action's ``scope`` before any write).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from rolewarden.model.actions import Action
from rolewarden.model.iam import ManagedPolicy, PolicyVersion

CAPABILITY_NAME = "role_compliance"
#: Roles under this path belong to AWS services; RoleWarden never judges or changes them.
SERVICE_LINKED_PATH = "/aws-service-role/"
GRANT_POLICY_PREFIX = "rolewarden-grants-"


def policy_path_and_name(arn: str) -> tuple[str, str]:
    """(path, name) of a policy ARN: ``arn:aws:iam::1:policy/a/b/name`` -> (``/a/b/``, ``name``)."""
    resource = arn.split(":", 5)[-1]
    rest = resource[len("policy") :] if resource.startswith("policy") else resource
    path, _, name = rest.rpartition("/")
    return f"{path}/" if path else "/", name


def is_grant_policy(arn: str, managed_path: str) -> bool:
    """RoleWarden's own grant policy: ``rolewarden-grants-<role>[-N]`` at the managed path."""
    if arn.split(":")[4:5] == ["aws"]:
        return False
    path, name = policy_path_and_name(arn)
    return path == managed_path and name.startswith(GRANT_POLICY_PREFIX)


def is_own_grant_policy(arn: str, managed_path: str, role_name: str) -> bool:
    """A grant policy of ``role_name`` itself (``rolewarden-grants-<role>`` or ``-2``, ``-3``...)."""
    if not is_grant_policy(arn, managed_path):
        return False
    name = policy_path_and_name(arn)[1]
    return re.fullmatch(re.escape(GRANT_POLICY_PREFIX + role_name) + r"(-\d+)?", name) is not None


def single_version_policy(arn: str, document: Mapping[str, Any], version: str = "v1") -> ManagedPolicy:
    """A managed policy known by its ARN and its default version's document only (an on-demand read,
    or documents judged without AWS)."""
    path, name = policy_path_and_name(arn)
    return ManagedPolicy(arn, name, path, version, versions=(PolicyVersion(version, True, document),))


@dataclass(frozen=True)
class RoleAction(Action):
    """Base of the remediation actions: every one names a role and the scope it must be under."""

    capability: ClassVar[str] = CAPABILITY_NAME
    role_name: str
    role_path: str
    scope: str  # the managed path; the executor refuses a role outside it (defense in depth)
    rules: tuple[str, ...]

    @property
    def resource(self) -> str:
        return f"role/{self.role_name}"

    def describe(self) -> str:
        return f"{super().describe()} ({', '.join(self.rules)})"


@dataclass(frozen=True)
class DetachManagedPolicy(RoleAction, verb="detach-policy", summary="detach {policy_arn} from role {role_name}"):
    policy_arn: str


@dataclass(frozen=True)
class RewriteInlinePolicy(
    RoleAction,
    verb="rewrite-inline-policy",
    summary="remove statement(s) {removed} from inline policy {policy_name} of role {role_name}",
):
    """PutRolePolicy with the kept statements, if the policy still is what was read (``expected``)."""

    policy_name: str
    document: str  # canonical JSON of the new document
    expected: str  # canonical JSON of the document read
    removed: tuple[int, ...]


@dataclass(frozen=True)
class DeleteInlinePolicy(
    RoleAction, verb="delete-inline-policy", summary="delete inline policy {policy_name} of role {role_name}"
):
    policy_name: str
    expected: str  # canonical JSON of the document read


@dataclass(frozen=True)
class ReplaceTrustPolicy(
    RoleAction,
    verb="replace-trust-policy",
    summary="replace the trust policy of role {role_name} with the EC2-only one",
):
    document: str


@dataclass(frozen=True)
class PutBoundary(
    RoleAction, verb="put-boundary", summary="put permissions boundary {boundary_arn} on role {role_name}"
):
    boundary_arn: str


@dataclass(frozen=True)
class CreateInstanceProfile(
    RoleAction,
    verb="create-instance-profile",
    summary="create instance profile {profile_path}{profile_name} holding role {role_name}",
):
    """CreateInstanceProfile (name and path of the role) + AddRoleToInstanceProfile."""

    profile_name: str
    profile_path: str


@dataclass(frozen=True)
class PutInlinePolicy(
    RoleAction, verb="put-inline-policy", summary="put inline policy {policy_name} on role {role_name}"
):
    """PutRolePolicy of an inline policy RoleWarden owns, if it still is what was read (``expected``,
    empty: absent)."""

    policy_name: str
    document: str  # canonical JSON
    expected: str


REMEDIATION_ACTIONS: tuple[type[RoleAction], ...] = (
    DetachManagedPolicy,
    RewriteInlinePolicy,
    DeleteInlinePolicy,
    ReplaceTrustPolicy,
    PutBoundary,
    CreateInstanceProfile,
    PutInlinePolicy,
)
