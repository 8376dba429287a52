"""Bucket grants as data: the observed state that is not IAM (a bucket's tags and key, one bucket in a
role's grants) and the action types the grants capability plans and ``aws.grants.executors`` applies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from rolewarden.model.actions import Action
from rolewarden.model.iam import IamSnapshot

CAPABILITY = "bucket_grants"
#: Every generated policy's name starts with this (``rolewarden-grants-<role>``, ``-2``, ``-3``...).
POLICY_PREFIX = "rolewarden-grants-"


# -- observed state ---------------------------------------------------------------------------
@dataclass(frozen=True)
class BucketView:
    """A bucket as S3 shows it now. ``kms_key`` is the ARN of its default customer key, if any."""

    name: str
    exists: bool = True
    tags: Mapping[str, str] = field(default_factory=dict)
    kms_key: str | None = None
    kms_problem: str | None = None


@dataclass(frozen=True, order=True)
class BucketGrant:
    """One bucket in one role's grants: the levels (sorted) and the bucket's customer key, if any."""

    bucket: str
    levels: tuple[str, ...]
    kms_key: str | None = None


@dataclass(frozen=True)
class ReadFailure:
    """A read that failed: retryable (throttling, a timeout) or not (access denied...), and why."""

    retryable: bool
    message: str


@dataclass(frozen=True)
class GrantsSnapshot:
    """Everything one grants decision reads, read before deciding (``capabilities.grants.observe``)."""

    iam: IamSnapshot
    #: Buckets read from S3 in this run, in the order they were read.
    buckets: Mapping[str, BucketView] = field(default_factory=dict)
    #: Buckets that could not be read, and why.
    unreadable: Mapping[str, ReadFailure] = field(default_factory=dict)
    #: A sweep: every bucket ListBuckets showed, in order (None: not a sweep).
    listed: tuple[str, ...] | None = None


# -- RoleWarden's own record (the state table) ---------------------------------------------------
@dataclass(frozen=True)
class Published:
    """What RoleWarden last made the default of each of a role's generated policies, and when."""

    parts: Mapping[str, str]  # policy name -> version id
    time: float


@dataclass(frozen=True)
class RoleRecord:
    """A role's grants as recorded from the buckets' tags, and what RoleWarden last published for it."""

    grants: Mapping[str, BucketGrant]  # bucket -> grant
    published: Published | None


# -- actions ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GrantAction(Action):
    capability: ClassVar[str] = CAPABILITY
    role: str
    policy_name: str
    policy_arn: str
    path: str  # the managed path: the executor refuses any ARN outside it

    @property
    def resource(self) -> str:
        return self.policy_arn


@dataclass(frozen=True)
class CreateGrantPolicy(
    GrantAction,
    verb="create-grant-policy",
    summary="create {policy_name} (v1, document {document_hash}) and attach it to role {role}",
):
    """CreatePolicy (version v1 is the default) and AttachRolePolicy to the role."""

    role_path: str
    document: str
    description: str
    document_hash: str


@dataclass(frozen=True)
class RotateGrantPolicy(
    GrantAction,
    verb="rotate-grant-policy",
    summary=(
        "rotate {policy_name} of role {role} to a new default version "
        "(document {document_hash}, replacing {previous_version}{pruned})"
    ),
):
    """CreatePolicyVersion as default; first DeleteVersion of the oldest non-default when 5 exist."""

    document: str
    document_hash: str
    previous_version: str
    delete_version: str | None = None

    @property
    def pruned(self) -> str:
        return f", deleting {self.delete_version} first" if self.delete_version else ""


@dataclass(frozen=True)
class RestoreGrantVersion(
    GrantAction,
    verb="restore-grant-version",
    summary="restore {policy_name} of role {role} to {version_id} (default was {previous_version})",
):
    """SetDefaultPolicyVersion back to the newest version, which already holds the desired document."""

    version_id: str
    previous_version: str
    document_hash: str


@dataclass(frozen=True)
class AttachGrantPolicy(GrantAction, verb="attach-grant-policy", summary="attach {policy_name} to role {role}"):
    role_path: str


@dataclass(frozen=True)
class DetachGrantPolicy(
    GrantAction, verb="detach-grant-policy", summary="detach {policy_name} (role {role}'s grants) from role {from_role}"
):
    """Detach a role's generated policy from another managed role it was attached to by hand."""

    from_role: str
    from_role_path: str


@dataclass(frozen=True)
class DeleteGrantPolicy(
    GrantAction, verb="delete-grant-policy", summary="delete {policy_name} of role {role} (detach from {detach_from})"
):
    """Detach from every managed role, delete the non-default versions, then the policy."""

    detach_from: tuple[str, ...]
    delete_versions: tuple[str, ...]


GRANT_ACTIONS: tuple[type[GrantAction], ...] = (
    CreateGrantPolicy,
    RotateGrantPolicy,
    RestoreGrantVersion,
    AttachGrantPolicy,
    DetachGrantPolicy,
    DeleteGrantPolicy,
)
