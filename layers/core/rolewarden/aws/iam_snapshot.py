"""The one reader of IAM roles and managed policies: builds ``rolewarden.model.iam`` objects.

Reads
* Account: ONE paginated GetAccountAuthorizationDetails (``read_account``; Filter Role,
  LocalManagedPolicy, AWSManagedPolicy by default) returns every role with its inline documents,
  attached policies, trust policy, boundary and instance profiles, and every managed policy with all
  its versions. Pages are followed by IsTruncated/Marker through the paginator (moto ignores MaxItems
  and answers in one page; AWS pages). moto omits PolicyName from the policies: the ARN names it.
* One role: GetRole (``get_role``: trust, boundary, path; enough to tell whether it is in scope), then
  (``complete_role``) ListAttachedRolePolicies, ListRolePolicies, one GetRolePolicy per inline policy
  and, when asked, ListInstanceProfilesForRole. ``read_role`` does both.
* Policies on demand (``read_policies``): GetPolicy (default version id) + GetPolicyVersion, skipped
  when that version is cached: a policy version's document never changes.
* The roles a policy is attached to (``roles_for_policy``): ListEntitiesForPolicy.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rolewarden.aws.clients import client
from rolewarden.aws.errors import classify, code_of, or_none
from rolewarden.errors import PermanentError
from rolewarden.model.documents import load_document
from rolewarden.model.iam import AttachedPolicy, IamSnapshot, ManagedPolicy, PolicyVersion, Role

#: IAM's hard quota of managed policies per role; more in an answer means something is wrong.
MAX_ATTACHED = 20
#: Inline policies per role read at most (IAM bounds them by 10,240 characters in all).
MAX_INLINE = 100
ACCOUNT_FILTERS = ("Role", "LocalManagedPolicy", "AWSManagedPolicy")

_version_lock = threading.Lock()
#: (policy arn, version id) -> document. A policy version is immutable, so this never goes stale.
_version_cache: dict[tuple[str, str], dict[str, Any]] = {}


def clear_caches() -> None:
    with _version_lock:
        _version_cache.clear()


def policy_path_and_name(arn: str) -> tuple[str, str]:
    """(path, name) of a policy ARN: ``arn:aws:iam::1:policy/a/b/name`` -> (``/a/b/``, ``name``)."""
    resource = arn.split(":", 5)[-1]
    rest = resource[len("policy") :] if resource.startswith("policy") else resource
    path, _, name = rest.rpartition("/")
    return f"{path}/" if path else "/", name


def _boundary(raw: Mapping[str, Any]) -> str | None:
    boundary = raw.get("PermissionsBoundary") or {}
    arn = boundary.get("PermissionsBoundaryArn")
    return str(arn) if arn else None


def _role(raw: Mapping[str, Any], **parts: Any) -> Role:
    """A role from a GetRole or GetAccountAuthorizationDetails entry (``parts``: what the entry lacks)."""
    return Role(
        name=raw["RoleName"],
        arn=raw["Arn"],
        path=raw.get("Path", "/"),
        trust=load_document(raw.get("AssumeRolePolicyDocument") or {}),
        boundary=_boundary(raw),
        **parts,
    )


def _version(arn: str, raw: Mapping[str, Any], default: str) -> PolicyVersion:
    version_id = str(raw.get("VersionId", ""))
    document = load_document(raw.get("Document") or {})
    is_default = bool(raw.get("IsDefaultVersion")) or version_id == default
    if is_default:
        with _version_lock:
            _version_cache[(arn, version_id)] = document
    return PolicyVersion(version_id, is_default, document)


# ------------------------------------------------------------------ account
def read_account(filters: Sequence[str] = ACCOUNT_FILTERS) -> IamSnapshot:
    """Every role and managed policy (every version, with documents) the filters ask for, in one pass."""
    roles: dict[str, Role] = {}
    raw_policies: list[Mapping[str, Any]] = []
    partition, account, pages = "aws", "", 0
    paginator = client("iam").get_paginator("get_account_authorization_details")
    try:
        for page in paginator.paginate(Filter=list(filters), PaginationConfig={"PageSize": 1000}):
            pages += 1
            for raw in page.get("RoleDetailList", []):
                role = _role(
                    raw,
                    attached=tuple(
                        AttachedPolicy(p["PolicyArn"], p["PolicyName"]) for p in raw.get("AttachedManagedPolicies", [])
                    ),
                    inline={p["PolicyName"]: load_document(p["PolicyDocument"]) for p in raw.get("RolePolicyList", [])},
                    instance_profiles=tuple(p["InstanceProfileName"] for p in raw.get("InstanceProfileList", [])),
                )
                roles[role.name] = role
                fields = role.arn.split(":")
                if len(fields) > 4 and fields[1] and fields[4]:
                    partition, account = fields[1], fields[4]
            raw_policies.extend(page.get("Policies", []))
    except (ClientError, BotoCoreError) as exc:
        raise classify(exc, "iam:GetAccountAuthorizationDetails") from exc
    attached_to: dict[str, list[str]] = {}
    for role in roles.values():
        for policy in role.attached:
            attached_to.setdefault(policy.arn, []).append(role.name)
    policies: dict[str, ManagedPolicy] = {}
    for raw in raw_policies:
        arn = str(raw["Arn"])
        path, name = policy_path_and_name(arn)
        default = str(raw.get("DefaultVersionId", ""))
        policies[arn] = ManagedPolicy(
            arn=arn,
            name=str(raw.get("PolicyName") or name),
            path=str(raw.get("Path") or path),
            default_version=default,
            versions=tuple(_version(arn, v, default) for v in raw.get("PolicyVersionList", [])),
            description=str(raw.get("Description") or ""),
            attached_roles=tuple(sorted(attached_to.get(arn, []))),
        )
    return IamSnapshot(roles=roles, policies=policies, partition=partition, account=account, pages=pages)


# ------------------------------------------------------------------ one role
def get_role(name: str) -> Role | None:
    """GetRole only (path, trust, boundary): enough to decide whether the role is in scope."""
    raw = or_none(lambda: client("iam").get_role(RoleName=name)["Role"], "NoSuchEntity", f"iam:GetRole {name}")
    return None if raw is None else _role(raw)


def complete_role(role: Role, with_profiles: bool = False) -> Role | None:
    """The role with its attached and inline policies read (None when it vanished meanwhile); with
    ``with_profiles``, also the instance profiles that hold it (ListInstanceProfilesForRole, one call)."""
    iam = client("iam")
    name = role.name
    try:
        attached: list[AttachedPolicy] = []
        for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name):
            attached.extend(AttachedPolicy(p["PolicyArn"], p["PolicyName"]) for p in page["AttachedPolicies"])
        names: list[str] = []
        for page in iam.get_paginator("list_role_policies").paginate(RoleName=name):
            names.extend(page["PolicyNames"])
        if len(attached) > MAX_ATTACHED or len(names) > MAX_INLINE:
            raise PermanentError(
                f"role {name} has {len(attached)} attached and {len(names)} inline policies, beyond IAM's quotas; "
                "refusing to act on an answer that cannot be right",
                "QuotaExceeded",
            )
        inline = {}
        for policy_name in names:
            raw = iam.get_role_policy(RoleName=name, PolicyName=policy_name)
            inline[policy_name] = load_document(raw["PolicyDocument"])
        profiles: tuple[str, ...] | None = None
        if with_profiles:
            found: list[str] = []
            for page in iam.get_paginator("list_instance_profiles_for_role").paginate(RoleName=name):
                found.extend(p["InstanceProfileName"] for p in page["InstanceProfiles"])
            profiles = tuple(found)
    except ClientError as exc:
        if code_of(exc) == "NoSuchEntity":
            return None  # deleted between reads; a later event or the sweep sees the new state
        raise classify(exc, f"reading the policies of role {name}") from exc
    except BotoCoreError as exc:
        raise classify(exc, f"reading the policies of role {name}") from exc
    return Role(role.name, role.arn, role.path, role.trust, role.boundary, tuple(attached), inline, profiles)


def read_role(name: str, with_profiles: bool = False) -> Role | None:
    """A role's full state, at any path (GetRole, then ``complete_role``); None when there is no such role."""
    role = get_role(name)
    return None if role is None else complete_role(role, with_profiles)


# ------------------------------------------------------------------ policies
def read_policies(arns: Iterable[str]) -> dict[str, ManagedPolicy]:
    """Managed policies with their default version only (GetPolicy + GetPolicyVersion, the latter cached).
    A policy deleted meanwhile is left out."""
    iam = client("iam")
    found: dict[str, ManagedPolicy] = {}
    for arn in sorted(set(arns)):
        try:
            policy = iam.get_policy(PolicyArn=arn)["Policy"]
            version = str(policy["DefaultVersionId"])
            with _version_lock:
                document = _version_cache.get((arn, version))
            if document is None:
                raw = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]
                document = load_document(raw["Document"])
                with _version_lock:
                    _version_cache[(arn, version)] = document
        except ClientError as exc:
            if code_of(exc) == "NoSuchEntity":
                continue  # detached and deleted meanwhile; the role read no longer lists it
            raise classify(exc, f"iam:GetPolicy/GetPolicyVersion {arn}") from exc
        except BotoCoreError as exc:
            raise classify(exc, f"iam:GetPolicy/GetPolicyVersion {arn}") from exc
        path, name = policy_path_and_name(arn)
        found[arn] = ManagedPolicy(
            arn=arn,
            name=str(policy.get("PolicyName") or name),
            path=str(policy.get("Path") or path),
            default_version=version,
            versions=(PolicyVersion(version, True, document),),
            description=str(policy.get("Description") or ""),
        )
    return found


def roles_for_policy(arn: str, path_prefix: str) -> list[str] | None:
    """Names of the roles under ``path_prefix`` that have ``arn`` attached (None: no such policy)."""

    def read() -> list[str]:
        paginator = client("iam").get_paginator("list_entities_for_policy")
        pages = paginator.paginate(PolicyArn=arn, EntityFilter="Role", PathPrefix=path_prefix)
        return sorted({r["RoleName"] for page in pages for r in page.get("PolicyRoles", [])})

    return or_none(read, "NoSuchEntity", f"iam:ListEntitiesForPolicy {arn}")
