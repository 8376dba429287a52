"""Typed models of the IAM CloudTrail calls RoleWarden routes: on roles and managed policies (the
role-compliance function) and on instance profiles (the instance-profiles function). See
``rolewarden.events``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Self

from rolewarden.events.fields import POLICY_ARN_RE, REQUEST, ROLE_NAME_RE, EnvelopeFields, cloudtrail_request, matching

_PROFILE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,128}$", re.ASCII)


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
        return None if params is None else cls(matching(params, cls.key, REQUEST, cls.pattern, cls.what))


@dataclass(frozen=True)
class IamRoleCall(IamCall, key="roleName", pattern=ROLE_NAME_RE, what="an IAM role name"):
    """A call on a role (AttachRolePolicy, PutRolePolicy, CreateRole ...): ``name`` is the role's."""


@dataclass(frozen=True)
class IamPolicyCall(IamCall, key="policyArn", pattern=POLICY_ARN_RE, what="an IAM policy ARN"):
    """A call on a managed policy (CreatePolicyVersion, SetDefaultPolicyVersion): ``name`` is its ARN."""


@dataclass(frozen=True)
class InstanceProfileCall(
    IamCall, key="instanceProfileName", pattern=_PROFILE_NAME_RE, what="an instance profile name"
):
    """Add/RemoveRoleToInstanceProfile: the profile's role changed; ``name`` is the profile's."""
