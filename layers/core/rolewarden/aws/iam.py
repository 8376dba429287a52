"""IAM reads used by the instance-profile capability: the profile, and the role inside it with the
policies the tag guard judges (through the one IAM reader, ``rolewarden.aws.iam_snapshot``)."""

from __future__ import annotations

from rolewarden.aws import iam_snapshot
from rolewarden.aws.clients import client
from rolewarden.aws.errors import or_none
from rolewarden.model.compliance import is_grant_policy
from rolewarden.model.iam import ManagedPolicy, Role
from rolewarden.model.instances import ProfileInfo


def get_instance_profile(name: str) -> ProfileInfo | None:
    """The profile and its role, or None when IAM has no profile of that name (``guard`` not judged)."""
    raw = or_none(
        lambda: client("iam").get_instance_profile(InstanceProfileName=name)["InstanceProfile"],
        "NoSuchEntity",
        f"iam:GetInstanceProfile {name}",
    )
    if raw is None:
        return None
    roles = raw.get("Roles", [])
    return ProfileInfo(
        name=raw["InstanceProfileName"],
        arn=raw["Arn"],
        role_names=tuple(role["RoleName"] for role in roles),
        role_paths=tuple(role.get("Path", "/") for role in roles),
        role_arns=tuple(role.get("Arn", "") for role in roles),
    )


def read_profile_role(
    profile: ProfileInfo, managed_path: str, need_boundary: bool
) -> tuple[Role, dict[str, ManagedPolicy]] | None:
    """The profile's (single) role with its inline and attached policies, for the tag guard.

    Reads, per role: GetRole only when the boundary rule is in force (GetInstanceProfile's role
    carries no boundary), ListAttachedRolePolicies, ListRolePolicies, GetRolePolicy per inline
    policy, and GetPolicy (+ GetPolicyVersion, cached forever per immutable version) per attached
    policy other than RoleWarden's own grant policies, which the guard rules do not judge. The same
    reader as the compliance capability's, so both judge the same view of a role. None: the role vanished."""
    name = profile.role_names[0]
    if need_boundary:
        role = iam_snapshot.get_role(name)
        if role is None:
            return None
    else:
        arn = profile.role_arns[0] if profile.role_arns else ""
        role = Role(name=name, arn=arn, path=profile.role_paths[0], trust={})
    full = iam_snapshot.complete_role(role)
    if full is None:
        return None
    wanted = [p.arn for p in full.attached if not is_grant_policy(p.arn, managed_path)]
    return full, iam_snapshot.read_policies(wanted)
