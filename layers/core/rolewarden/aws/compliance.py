"""IAM reads and writes of the role-compliance capability.

Reads
* Sweep: ONE paginated GetAccountAuthorizationDetails (Filter Role, LocalManagedPolicy,
  AWSManagedPolicy) returns every role with its inline documents, attached policies, trust policy
  and boundary, and every managed policy with its versions. Pages are followed by IsTruncated/Marker
  through the paginator (moto ignores MaxItems and answers in one page; AWS pages).
* Per role: GetRole (trust, boundary, path), then only for roles in scope: ListAttachedRolePolicies,
  ListRolePolicies and one GetRolePolicy per inline policy; and for attached policies not yet known:
  GetPolicy (default version id) + GetPolicyVersion (skipped when that version is cached: a policy
  version's document never changes). Bounded by IAM's quotas (20 attached policies per role).
* Per policy: ListEntitiesForPolicy(EntityFilter=Role, PathPrefix=<managed path>).

Writes: the executor functions registered with ``@handles`` for the actions of
``rolewarden.decide.compliance``; each re-checks that the role is under its action's scope first.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rolewarden.aws.clients import client
from rolewarden.aws.errors import classify, code_of, raise_instead
from rolewarden.aws.executor import Conflict, Executor, Gone, handles, metric_name
from rolewarden.decide.compliance import (
    REMEDIATION_ACTIONS,
    SERVICE_LINKED_PATH,
    AttachedPolicy,
    CreateInstanceProfile,
    DeleteInlinePolicy,
    DetachManagedPolicy,
    ManagedPolicyView,
    PutBoundary,
    PutInlinePolicy,
    ReplaceTrustPolicy,
    RewriteInlinePolicy,
    RoleAction,
    RoleView,
    canonical_json,
    load_document,
    policy_path_and_name,
)
from rolewarden.errors import PermanentError
from rolewarden.model.actions import Action

#: IAM's hard quota of managed policies per role; more in an answer means something is wrong.
MAX_ATTACHED = 20
#: Inline policies per role read at most (IAM bounds them by 10,240 characters in all).
MAX_INLINE = 100
_GAAD_FILTER = ["Role", "LocalManagedPolicy", "AWSManagedPolicy"]

_version_lock = threading.Lock()
#: (policy arn, version id) -> document. A policy version is immutable, so this never goes stale.
_version_cache: dict[tuple[str, str], dict[str, Any]] = {}


def clear_caches() -> None:
    with _version_lock:
        _version_cache.clear()


def _call(what: str, func: Callable[..., Any], **kwargs: Any) -> Any:
    try:
        return func(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise classify(exc, what) from exc


def _boundary(raw: dict[str, Any]) -> str | None:
    boundary = raw.get("PermissionsBoundary") or {}
    arn = boundary.get("PermissionsBoundaryArn")
    return str(arn) if arn else None


# ------------------------------------------------------------------ sweep
def sweep() -> tuple[dict[str, RoleView], dict[str, ManagedPolicyView], int]:
    """Every role and managed policy of the account, from GetAccountAuthorizationDetails.
    Returns (roles by name, policies by ARN, pages read)."""
    roles: dict[str, RoleView] = {}
    policies: dict[str, ManagedPolicyView] = {}
    pages = 0
    paginator = client("iam").get_paginator("get_account_authorization_details")
    try:
        for page in paginator.paginate(Filter=_GAAD_FILTER, PaginationConfig={"PageSize": 1000}):
            pages += 1
            for raw in page.get("RoleDetailList", []):
                role = RoleView(
                    name=raw["RoleName"],
                    arn=raw["Arn"],
                    path=raw.get("Path", "/"),
                    trust=load_document(raw.get("AssumeRolePolicyDocument") or {}),
                    boundary=_boundary(raw),
                    attached=tuple(
                        AttachedPolicy(p["PolicyArn"], p["PolicyName"]) for p in raw.get("AttachedManagedPolicies", [])
                    ),
                    inline={p["PolicyName"]: load_document(p["PolicyDocument"]) for p in raw.get("RolePolicyList", [])},
                    instance_profiles=tuple(p["InstanceProfileName"] for p in raw.get("InstanceProfileList", [])),
                )
                roles[role.name] = role
            for raw in page.get("Policies", []):
                default = raw.get("DefaultVersionId", "")
                versions = raw.get("PolicyVersionList", [])
                chosen = next((v for v in versions if v.get("IsDefaultVersion")), None) or next(
                    (v for v in versions if v.get("VersionId") == default), None
                )
                if chosen is None:
                    continue  # no document in the answer: read on demand if a role in scope needs it
                document = load_document(chosen["Document"])
                path, name = policy_path_and_name(raw["Arn"])  # moto's answer lacks PolicyName
                policies[raw["Arn"]] = ManagedPolicyView(
                    raw["Arn"],
                    raw.get("PolicyName", name),
                    raw.get("Path", path),
                    str(chosen.get("VersionId", default)),
                    document,
                )
                with _version_lock:
                    _version_cache[(raw["Arn"], str(chosen.get("VersionId", default)))] = document
    except (ClientError, BotoCoreError) as exc:
        raise classify(exc, "iam:GetAccountAuthorizationDetails") from exc
    return roles, policies, pages


# ------------------------------------------------------------------ per event
def get_role(name: str) -> RoleView | None:
    """GetRole only (path, trust, boundary): enough to decide whether the role is in scope."""
    iam = client("iam")
    try:
        raw = iam.get_role(RoleName=name)["Role"]
    except ClientError as exc:
        if code_of(exc) == "NoSuchEntity":
            return None
        raise classify(exc, f"iam:GetRole {name}") from exc
    except BotoCoreError as exc:
        raise classify(exc, f"iam:GetRole {name}") from exc
    return RoleView(
        name=raw["RoleName"],
        arn=raw["Arn"],
        path=raw.get("Path", "/"),
        trust=load_document(raw.get("AssumeRolePolicyDocument") or {}),
        boundary=_boundary(raw),
    )


def complete_role(role: RoleView, with_profiles: bool = False) -> RoleView | None:
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
    return RoleView(role.name, role.arn, role.path, role.trust, role.boundary, tuple(attached), inline, profiles)


def read_policies(arns: Iterable[str]) -> dict[str, ManagedPolicyView]:
    """Default-version documents of managed policies (GetPolicy + GetPolicyVersion, the latter cached)."""
    iam = client("iam")
    found: dict[str, ManagedPolicyView] = {}
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
        found[arn] = ManagedPolicyView(arn, policy.get("PolicyName", name), policy.get("Path", path), version, document)
    return found


def roles_for_policy(arn: str, path_prefix: str) -> list[str] | None:
    """Names of the roles under ``path_prefix`` that have ``arn`` attached (None: no such policy)."""
    names: list[str] = []
    try:
        paginator = client("iam").get_paginator("list_entities_for_policy")
        for page in paginator.paginate(PolicyArn=arn, EntityFilter="Role", PathPrefix=path_prefix):
            names.extend(r["RoleName"] for r in page.get("PolicyRoles", []))
    except ClientError as exc:
        if code_of(exc) == "NoSuchEntity":
            return None
        raise classify(exc, f"iam:ListEntitiesForPolicy {arn}") from exc
    except BotoCoreError as exc:
        raise classify(exc, f"iam:ListEntitiesForPolicy {arn}") from exc
    return sorted(set(names))


def read_role(name: str) -> tuple[RoleView | None, dict[str, ManagedPolicyView]]:
    """A role's full state (any path) and its attached policies' documents."""
    role = get_role(name)
    if role is None:
        return None, {}
    full = complete_role(role)
    if full is None:
        return None, {}
    return full, read_policies(p.arn for p in full.attached)


# ------------------------------------------------------------------ writes
def _guard(action: RoleAction) -> None:
    """Defense in depth: the decision filtered the scope already; refuse here too."""
    if action.role_path.startswith(SERVICE_LINKED_PATH) or not action.role_path.startswith(action.scope):
        raise PermanentError(
            f"refusing to change role {action.role_name}: path {action.role_path} is outside {action.scope}",
            "OutOfScope",
        )
    if not action.scope.startswith("/") or action.scope == "/":
        raise PermanentError(
            f"refusing to change role {action.role_name}: invalid scope {action.scope!r}", "OutOfScope"
        )


def _current_inline(role: str, policy: str) -> str:
    with raise_instead("NoSuchEntity", Gone(f"inline policy {policy} of role {role} no longer exists")):
        raw = client("iam").get_role_policy(RoleName=role, PolicyName=policy)
    return canonical_json(load_document(raw["PolicyDocument"]))


@handles(DetachManagedPolicy)
def _apply_detach(ex: Executor, action: DetachManagedPolicy) -> dict[str, Any]:
    _guard(action)
    with raise_instead("NoSuchEntity", Gone(f"{action.policy_arn} is no longer attached to {action.role_name}")):
        client("iam").detach_role_policy(RoleName=action.role_name, PolicyArn=action.policy_arn)
    return {"policy": action.policy_arn, "rules": list(action.rules)}


@handles(RewriteInlinePolicy)
def _apply_rewrite(ex: Executor, action: RewriteInlinePolicy) -> dict[str, Any]:
    _guard(action)
    if _current_inline(action.role_name, action.policy_name) != action.expected:
        raise Conflict(f"inline policy {action.policy_name} of {action.role_name} changed since it was read")
    client("iam").put_role_policy(
        RoleName=action.role_name, PolicyName=action.policy_name, PolicyDocument=action.document
    )
    return {"policy": action.policy_name, "removed_statements": list(action.removed), "rules": list(action.rules)}


@handles(DeleteInlinePolicy)
def _apply_delete_inline(ex: Executor, action: DeleteInlinePolicy) -> dict[str, Any]:
    _guard(action)
    if _current_inline(action.role_name, action.policy_name) != action.expected:
        raise Conflict(f"inline policy {action.policy_name} of {action.role_name} changed since it was read")
    with raise_instead("NoSuchEntity", Gone(f"inline policy {action.policy_name} of {action.role_name} is gone")):
        client("iam").delete_role_policy(RoleName=action.role_name, PolicyName=action.policy_name)
    return {"policy": action.policy_name, "rules": list(action.rules)}


@handles(ReplaceTrustPolicy)
def _apply_trust(ex: Executor, action: ReplaceTrustPolicy) -> dict[str, Any]:
    _guard(action)
    with raise_instead("NoSuchEntity", Gone(f"role {action.role_name} no longer exists")):
        client("iam").update_assume_role_policy(RoleName=action.role_name, PolicyDocument=action.document)
    return {"rules": list(action.rules)}


@handles(PutBoundary)
def _apply_boundary(ex: Executor, action: PutBoundary) -> dict[str, Any]:
    _guard(action)
    # NoSuchEntity here may mean the role or the configured boundary policy is missing: IAM uses
    # one code for both, so it stays a permanent failure (DLQ, with the reason) rather than "gone".
    client("iam").put_role_permissions_boundary(RoleName=action.role_name, PermissionsBoundary=action.boundary_arn)
    return {"boundary": action.boundary_arn, "rules": list(action.rules)}


@handles(CreateInstanceProfile)
def _apply_instance_profile(ex: Executor, action: CreateInstanceProfile) -> dict[str, Any]:
    """Create the profile (an existing one of that name is used as is) and add the role. IAM allows one
    role per profile: a profile of that name that holds another role is a permanent failure, not overwritten."""
    _guard(action)
    if not action.profile_path.startswith(action.scope):
        raise PermanentError(
            f"refusing to create instance profile {action.profile_name}: path {action.profile_path} is outside "
            f"{action.scope}",
            "OutOfScope",
        )
    iam = client("iam")
    try:
        iam.create_instance_profile(InstanceProfileName=action.profile_name, Path=action.profile_path)
        created = True
    except ClientError as exc:
        if code_of(exc) != "EntityAlreadyExists":
            raise
        created = False
    try:
        iam.add_role_to_instance_profile(InstanceProfileName=action.profile_name, RoleName=action.role_name)
    except ClientError as exc:
        if code_of(exc) == "LimitExceeded":
            raise PermanentError(
                f"instance profile {action.profile_name} already holds another role; not changing it "
                f"(role {action.role_name} stays without a profile)",
                "LimitExceeded",
            ) from exc
        if code_of(exc) != "EntityAlreadyExists":  # the role is in it already: done
            raise
    return {
        "instance_profile": action.profile_path + action.profile_name,
        "profile_created": created,
        "rules": list(action.rules),
    }


@handles(PutInlinePolicy)
def _apply_put_inline(ex: Executor, action: PutInlinePolicy) -> dict[str, Any]:
    """An inline policy RoleWarden owns (the instance-credential perimeter): written only if it is still what
    was read (absent, or the same document), so a concurrent change is re-read rather than overwritten."""
    _guard(action)
    try:
        current = _current_inline(action.role_name, action.policy_name)
    except Gone:
        current = ""
    if current != action.expected:
        raise Conflict(f"inline policy {action.policy_name} of {action.role_name} changed since it was read")
    with raise_instead("NoSuchEntity", Gone(f"role {action.role_name} no longer exists")):
        client("iam").put_role_policy(
            RoleName=action.role_name, PolicyName=action.policy_name, PolicyDocument=action.document
        )
    return {"policy": action.policy_name, "rules": list(action.rules)}


for _action_type in REMEDIATION_ACTIONS:
    metric_name(_action_type, "Remediated")


# ------------------------------------------------------------------ rollback writes
def apply_restore_step(role_name: str, step: str, value: Any) -> None:
    """One step of ``rolewarden.decide.compliance.restore_plan`` (the caller checked the scope)."""
    iam = client("iam")
    what = f"rollback {step} on role {role_name}"
    try:
        if step == "trust":
            iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=json.dumps(value))
        elif step == "put-boundary":
            iam.put_role_permissions_boundary(RoleName=role_name, PermissionsBoundary=value)
        elif step == "delete-boundary":
            iam.delete_role_permissions_boundary(RoleName=role_name)
        elif step == "attach":
            iam.attach_role_policy(RoleName=role_name, PolicyArn=value)
        elif step == "detach":
            iam.detach_role_policy(RoleName=role_name, PolicyArn=value)
        elif step == "put-inline":
            name, document = value
            iam.put_role_policy(RoleName=role_name, PolicyName=name, PolicyDocument=json.dumps(document))
        elif step == "delete-inline":
            iam.delete_role_policy(RoleName=role_name, PolicyName=value)
        else:  # pragma: no cover - restore_plan emits only the steps above
            raise ValueError(f"unknown restore step {step}")
    except (ClientError, BotoCoreError) as exc:
        raise classify(exc, what) from exc


# -- one remediator per role ---------------------------------------------------------------------
# Two containers handling duplicate events for one role both read it non-compliant and would both
# write (two UpdateAssumeRolePolicy, two DetachRolePolicy...). A role's remediation runs under a lease
# in the state table (pk ``compliance#role#<role>``, sk ``remediation``), taken and given back with the
# same conditional UpdateItems as the grants leases (``rolewarden.aws.grants``), so it costs two calls
# per remediated role and nothing for a compliant one. Giving it back records which parts of the role
# the applied actions changed (the trust policy, one inline policy, one attachment...), and when: the
# same part decided again within a short window, from a read made before those writes or lagging them
# (IAM reads are eventually consistent, each read on its own, so a read can be stale in one part of the
# role and fresh in another), is not changed twice; the record is retried and decides from a fresh read.
def _remediation_key(role: str) -> dict[str, Any]:
    return {"pk": {"S": f"compliance#role#{role}"}, "sk": {"S": "remediation"}}


#: The fields that say *which part* of a role an action changes (not how, nor which rule asked for it):
#: a read that lags part of another invocation's writes may decide a different document for the same
#: part, and that part was changed moments ago all the same.
_PART_FIELDS = ("action", "resource", "policy_name", "policy_arn", "profile_name")


def action_fingerprint(action: Action) -> str:
    """A short, stable digest of the part of a role one remediation action changes."""
    described = action.as_dict()
    part = {key: described[key] for key in _PART_FIELDS if key in described}
    return hashlib.sha256(json.dumps(part, sort_keys=True, default=str).encode()).hexdigest()[:24]


def lease_remediation(
    table: str, role: str, owner: str, now: float, seconds: float
) -> tuple[bool, frozenset[str], float]:
    """Take the role's remediation lease: (taken, fingerprints of the actions last applied, when)."""
    from rolewarden.aws.leases import take as _take

    old = _take(table, _remediation_key(role), owner, now, seconds, old=True)
    if old is None:
        return False, frozenset(), 0.0
    item = old.get("Attributes", {})
    applied = frozenset(json.loads(item.get("applied", {}).get("S", "[]")))
    return True, applied, float(item.get("applied_at", {}).get("N", "0"))


def release_remediation(table: str, role: str, owner: str, applied: Iterable[str] | None, now: float) -> None:
    """Give the lease back; with ``applied``, record the fingerprints of the actions just applied."""
    from rolewarden.aws.leases import give_back as _give_back

    sets: dict[str, Any] = {}
    if applied is not None:
        sets = {"applied": {"S": json.dumps(sorted(applied))}, "applied_at": {"N": str(now)}}
    _give_back(table, _remediation_key(role), owner, sets)
