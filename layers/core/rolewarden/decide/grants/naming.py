"""Which generated policy belongs to which role: the policy names and descriptions RoleWarden writes,
and reading a role's parts (``rolewarden-grants-<role>``, ``-2``, ``-3``...) back from the IAM
snapshot. PURE."""

from __future__ import annotations

import re
from collections.abc import Mapping

from rolewarden.model.grants import POLICY_PREFIX
from rolewarden.model.iam import IamSnapshot, ManagedPolicy, Role

_DESCRIPTION_RE = re.compile(r"^RoleWarden S3 grants for role ([\w+=,.@-]{1,64}), part (\d{1,2})$", re.ASCII)


def policy_name(role: str, part: int) -> str:
    return f"{POLICY_PREFIX}{role}" if part == 1 else f"{POLICY_PREFIX}{role}-{part}"


def policy_description(role: str, part: int) -> str:
    return f"RoleWarden S3 grants for role {role}, part {part}"


def policy_arn(iam: IamSnapshot, path: str, name: str) -> str:
    """The ARN a policy created as ``name`` under ``path`` gets in the snapshot's account."""
    return f"arn:{iam.partition}:iam::{iam.account}:policy{path}{name}"


def generated_policies(iam: IamSnapshot, path: str) -> dict[str, ManagedPolicy]:
    """The generated policies (customer managed, under the managed path, named ``rolewarden-grants-*``)
    by name: the only policies the grants capability reads, writes or deletes."""
    return {
        p.name: p
        for p in iam.policies.values()
        if p.path == path and p.name.startswith(POLICY_PREFIX) and not p.aws_managed
    }


def policy_owner(policy: ManagedPolicy, roles: Mapping[str, Role]) -> tuple[str, int]:
    """(role, part) of a generated policy. ``web-2`` may be role web-2 part 1 or role web part 2, so the
    description written at creation decides; without one, the attached or existing role does."""
    match = _DESCRIPTION_RE.match(policy.description)
    if match and policy_name(match.group(1), int(match.group(2))) == policy.name:
        return match.group(1), int(match.group(2))
    rest = policy.name[len(POLICY_PREFIX) :]
    candidates = [(rest, 1)]
    numbered = re.match(r"^(.+)-(\d{1,2})$", rest)
    if numbered and int(numbered.group(2)) >= 2:
        candidates.append((numbered.group(1), int(numbered.group(2))))
    for role, part in candidates:
        if role in policy.attached_roles:
            return role, part
    for role, part in candidates:
        if role in roles:
            return role, part
    return candidates[0]


def parts_by_role(iam: IamSnapshot, path: str) -> dict[str, dict[int, ManagedPolicy]]:
    """role -> part number -> generated policy."""
    owned: dict[str, dict[int, ManagedPolicy]] = {}
    for policy in generated_policies(iam, path).values():
        role, part = policy_owner(policy, iam.roles)
        owned.setdefault(role, {})[part] = policy
    return owned


def policy_role(iam: IamSnapshot, path: str, arn: str) -> str | None:
    """The role a generated policy ARN belongs to; None when the ARN is not a generated policy."""
    policy = iam.policies.get(arn)
    if policy is None or policy.name not in generated_policies(iam, path):
        return None
    return policy_owner(policy, iam.roles)[0]
