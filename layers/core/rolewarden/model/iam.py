"""The one IAM snapshot: roles, managed policies (every version), attachments, as immutable data.

One reader builds it (``rolewarden.aws.iam_snapshot``): from one GetAccountAuthorizationDetails pass
for a sweep, or from GetRole + lists for one role. Every capability decides from it: the grants
capability reads its generated policies' versions, compliance reads documents and trust policies, the
profiles tag guard judges the role inside a profile.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PolicyVersion:
    version_id: str
    is_default: bool
    document: Mapping[str, Any]

    @property
    def number(self) -> int:
        digits = self.version_id.lstrip("v")
        return int(digits) if digits.isdigit() else 0


@dataclass(frozen=True)
class AttachedPolicy:
    arn: str
    name: str


@dataclass(frozen=True)
class ManagedPolicy:
    """A managed policy. ``versions`` holds what was read: every version from a sweep's
    GetAccountAuthorizationDetails, or only the default one when read on demand."""

    arn: str
    name: str
    path: str
    default_version: str
    versions: tuple[PolicyVersion, ...] = ()
    description: str = ""
    #: Names of the roles it is attached to (filled from the roles of the same snapshot).
    attached_roles: tuple[str, ...] = ()

    @property
    def aws_managed(self) -> bool:
        return self.arn.split(":")[4:5] == ["aws"]

    @property
    def default(self) -> PolicyVersion | None:
        return next((v for v in self.versions if v.is_default), None) or next(
            (v for v in self.versions if v.version_id == self.default_version), None
        )

    @property
    def document(self) -> Mapping[str, Any]:
        """The default version's document ({} when it was not read)."""
        default = self.default
        return default.document if default is not None else {}

    @property
    def newest(self) -> PolicyVersion | None:
        return max(self.versions, key=lambda v: v.number, default=None)

    @property
    def oldest_non_default(self) -> PolicyVersion | None:
        return min((v for v in self.versions if not v.is_default), key=lambda v: v.number, default=None)


@dataclass(frozen=True)
class Role:
    """One role as IAM shows it now."""

    name: str
    arn: str
    path: str
    trust: Mapping[str, Any] = field(default_factory=dict)
    boundary: str | None = None
    attached: tuple[AttachedPolicy, ...] = ()
    inline: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Names of the instance profiles that hold the role; None when they were not read.
    instance_profiles: tuple[str, ...] | None = None

    @property
    def attached_arns(self) -> tuple[str, ...]:
        return tuple(p.arn for p in self.attached)

    def state(self) -> dict[str, Any]:
        """The role's full permission state, as plain data (what a record stores and rollback restores)."""
        return {
            "role": self.name,
            "arn": self.arn,
            "path": self.path,
            "attached_policies": sorted(p.arn for p in self.attached),
            "inline_policies": {name: dict(doc) for name, doc in sorted(self.inline.items())},
            "trust_policy": dict(self.trust),
            "permissions_boundary": self.boundary,
        }


@dataclass(frozen=True)
class IamSnapshot:
    """What one read of IAM showed: roles by name, managed policies by ARN."""

    roles: Mapping[str, Role] = field(default_factory=dict)
    policies: Mapping[str, ManagedPolicy] = field(default_factory=dict)
    partition: str = "aws"
    account: str = ""
    #: GetAccountAuthorizationDetails pages read (0 for on-demand reads): the cost of the observe step.
    pages: int = 0

    def policies_of(self, role: Role) -> Iterator[ManagedPolicy]:
        """The managed policies attached to ``role`` that this snapshot holds."""
        for attached in role.attached:
            policy = self.policies.get(attached.arn)
            if policy is not None:
                yield policy

    def policy_named(self, path: str, name: str) -> ManagedPolicy | None:
        """The customer managed policy ``name`` at ``path`` (names are unique per account, paths aside)."""
        found = (p for p in self.policies.values() if p.name == name and p.path == path and not p.aws_managed)
        return next(found, None)
