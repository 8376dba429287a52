"""The per-role decision of bucket grants: everything that makes one role's generated policies grant
exactly the grants wanted for it (create, attach, rotate or restore a version, detach from other roles,
delete parts no longer needed), or a refusal that keeps the current versions. PURE.

A role whose grants need more than ``max_policies_per_role`` documents, or more attachments than IAM's
10 per role, is refused as a whole: its current versions stay, and a finding says why. A partial set
that silently drops a bucket is never produced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rolewarden.config import Config
from rolewarden.decide.grants.catalog import level_table
from rolewarden.decide.grants.naming import (
    generated_policies,
    parts_by_role,
    policy_arn,
    policy_description,
    policy_name,
    policy_owner,
)
from rolewarden.decide.grants.render import MAX_POLICY_CHARS, default_buckets, document_text, pack
from rolewarden.model.actions import Action
from rolewarden.model.documents import canonical_json, content_hash
from rolewarden.model.findings import Finding
from rolewarden.model.grants import (
    CAPABILITY,
    AttachGrantPolicy,
    BucketGrant,
    CreateGrantPolicy,
    DeleteGrantPolicy,
    DetachGrantPolicy,
    RestoreGrantVersion,
    RoleRecord,
    RotateGrantPolicy,
)
from rolewarden.model.iam import IamSnapshot, ManagedPolicy

#: IAM keeps at most 5 versions of a managed policy.
MAX_VERSIONS = 5
#: IAM's default quota of managed policies attached to one role.
MAX_ATTACHED_POLICIES = 10

Verdict = Literal["keep", "change", "refuse", "remove"]


@dataclass(frozen=True)
class RoleDecision:
    role: str
    verdict: Verdict
    reason: str
    actions: tuple[Action, ...] = ()
    findings: tuple[Finding, ...] = ()
    documents: tuple[Mapping[str, Any], ...] = ()
    buckets: tuple[str, ...] = ()


def _delete(role: str, policy: ManagedPolicy, iam: IamSnapshot, path: str) -> tuple[Action | None, Finding | None]:
    outside = [r for r in policy.attached_roles if r not in iam.roles or not iam.roles[r].path.startswith(path)]
    if outside:
        return None, Finding(
            CAPABILITY,
            policy.name,
            "grant-policy-attached-outside",
            f"{policy.name} is attached to role(s) outside {path} ({', '.join(sorted(outside))}); "
            "RoleWarden cannot detach it there, so it is left in place",
            details={"policy": policy.arn, "roles": sorted(outside)},
        )
    return DeleteGrantPolicy(
        role=role,
        policy_name=policy.name,
        policy_arn=policy.arn,
        path=path,
        detach_from=tuple(sorted(policy.attached_roles)),
        delete_versions=tuple(
            v.version_id for v in sorted(policy.versions, key=lambda v: v.number) if not v.is_default
        ),
    ), None


def decide_role(
    config: Config,
    iam: IamSnapshot,
    role_name: str,
    grants: Iterable[BucketGrant],
    parts: Mapping[int, ManagedPolicy],
    generated: Mapping[str, ManagedPolicy] | None = None,
) -> RoleDecision:
    """Everything that makes ``role_name``'s generated policies grant exactly ``grants``. ``generated``:
    the snapshot's generated policies by name (computed when not given; a sweep passes it once)."""
    path = config.managed_path
    if generated is None:
        generated = generated_policies(iam, path)
    levels, _unknown = level_table(config)
    role = iam.roles.get(role_name)
    wanted = sorted(set(grants)) if role is not None and role.path.startswith(path) else []
    findings: list[Finding] = []
    if not wanted:
        actions: list[Action] = []
        for part in sorted(parts):
            action, finding = _delete(role_name, parts[part], iam, path)
            actions.extend([action] if action else [])
            findings.extend([finding] if finding else [])
        if not actions:
            return RoleDecision(role_name, "keep", "no bucket grants to the role", findings=tuple(findings))
        return RoleDecision(
            role_name, "remove", "no bucket grants to the role any more", tuple(actions), tuple(findings)
        )
    assert role is not None
    buckets = tuple(g.bucket for g in wanted)

    def refuse(rule: str, message: str, **details: Any) -> RoleDecision:
        finding = Finding(CAPABILITY, f"role/{role_name}", rule, message, severity="ERROR", details=details)
        return RoleDecision(role_name, "refuse", message, findings=(finding,), buckets=buckets)

    documents = pack(wanted, levels, iam.partition)
    limit = config.bucket_grants.max_policies_per_role
    if documents is None or len(documents) > limit:
        needed = "more than one policy per bucket" if documents is None else f"{len(documents)} policies"
        return refuse(
            "grants-too-large",
            f"role {role_name}: grants on {len(wanted)} buckets need {needed}, more than max_policies_per_role "
            f"({limit}) at {MAX_POLICY_CHARS} characters each; the current versions are kept",
            buckets=len(wanted),
            policies_needed=len(documents) if documents else None,
            max_policies_per_role=limit,
        )
    own_arns = {p.arn for p in parts.values()}
    others = [arn for arn in role.attached_arns if arn not in own_arns]
    if len(others) + len(documents) > MAX_ATTACHED_POLICIES:
        return refuse(
            "too-many-attached-policies",
            f"role {role_name} has {len(others)} other managed policies attached; {len(documents)} grant "
            f"policies would exceed IAM's {MAX_ATTACHED_POLICIES} per role; the current versions are kept",
            other_policies=len(others),
            policies_needed=len(documents),
        )
    for part in range(1, len(documents) + 1):
        name = policy_name(role_name, part)
        existing = generated.get(name)
        if existing is not None and policy_owner(existing, iam.roles) != (role_name, part):
            return refuse(
                "policy-name-collision",
                f"role {role_name} needs {name}, which belongs to role {policy_owner(existing, iam.roles)[0]}",
                policy=name,
            )

    creates: list[Action] = []
    attaches: list[Action] = []
    versions: list[Action] = []
    detaches: list[Action] = []
    deletes: list[Action] = []
    for part, document in enumerate(documents, start=1):
        name = policy_name(role_name, part)
        text = document_text(document)
        digest = content_hash(document)
        policy = parts.get(part)
        common = {"role": role_name, "policy_name": name, "path": path}
        if policy is None:
            creates.append(
                CreateGrantPolicy(
                    **common,
                    policy_arn=policy_arn(iam, path, name),
                    role_path=role.path,
                    document=text,
                    description=policy_description(role_name, part),
                    document_hash=digest,
                )
            )
            continue
        common["policy_arn"] = policy.arn
        default, newest = policy.default, policy.newest
        if default is None or canonical_json(default.document) != canonical_json(document):
            previous = default.version_id if default else ""
            if (
                newest is not None
                and newest is not default
                and canonical_json(newest.document) == canonical_json(document)
            ):
                versions.append(
                    RestoreGrantVersion(
                        **common, version_id=newest.version_id, previous_version=previous, document_hash=digest
                    )
                )
            else:
                prune = policy.oldest_non_default if len(policy.versions) >= MAX_VERSIONS else None
                versions.append(
                    RotateGrantPolicy(
                        **common,
                        document=text,
                        document_hash=digest,
                        previous_version=previous,
                        delete_version=prune.version_id if prune else None,
                    )
                )
        if role_name not in policy.attached_roles:
            attaches.append(AttachGrantPolicy(**common, role_path=role.path))
        for other in sorted(set(policy.attached_roles) - {role_name}):
            info = iam.roles.get(other)
            if info is not None and info.path.startswith(path):
                detaches.append(DetachGrantPolicy(**common, from_role=other, from_role_path=info.path))
            else:
                findings.append(
                    Finding(
                        CAPABILITY,
                        name,
                        "grant-policy-attached-outside",
                        f"{name} is also attached to role {other}, outside {path}; RoleWarden cannot detach it",
                        details={"policy": policy.arn, "role": other},
                    )
                )
    for part in sorted(p for p in parts if p > len(documents)):
        action, finding = _delete(role_name, parts[part], iam, path)
        deletes.extend([action] if action else [])
        findings.extend([finding] if finding else [])
    # Order: new parts first, then rotations, then removals: during a re-split a bucket is briefly held
    # by two parts, never by none.
    planned = tuple(creates + attaches + versions + detaches + deletes)
    verdict: Verdict = "change" if planned else "keep"
    reason = f"{len(planned)} change(s) to {len(documents)} policies" if planned else "the policies are up to date"
    return RoleDecision(role_name, verdict, reason, planned, tuple(findings), tuple(documents), buckets)


def holders(iam: IamSnapshot, path: str, bucket: str) -> list[str]:
    """Roles whose generated policies' default versions name ``bucket``."""
    return sorted(
        r for r, parts in parts_by_role(iam, path).items() if any(bucket in default_buckets(p) for p in parts.values())
    )


def lagging(record: RoleRecord, iam: IamSnapshot, path: str, now: float, window: float) -> str | None:
    """Why the IAM snapshot lags what RoleWarden published for the role (a version it made default is not
    in it yet, ``window`` seconds or less after publishing), or None when the snapshot can be believed."""
    published = record.published
    if published is None or now - published.time > window:
        return None
    generated = generated_policies(iam, path)
    for name, version in sorted(published.parts.items()):
        policy = generated.get(name)
        if policy is None or version not in {v.version_id for v in policy.versions}:
            return f"IAM does not show {name} {version} yet (RoleWarden published it {now - published.time:.0f} s ago)"
    return None


def published_after(
    role: str,
    decision: RoleDecision,
    parts: Mapping[int, ManagedPolicy],
    applied: Sequence[tuple[Action, Mapping[str, Any]]],
) -> dict[str, str]:
    """policy name -> default version once the decision's actions are applied (the snapshot's defaults,
    overridden by the versions the writes made: ``applied`` holds each applied action with its detail)."""
    names = {policy_name(role, part): part for part in range(1, len(decision.documents) + 1)}
    versions: dict[str, str] = {}
    for name, part in names.items():
        policy = parts.get(part)
        if policy is not None and policy.default is not None:
            versions[name] = policy.default.version_id
    for action, detail in applied:
        action_policy = getattr(action, "policy_name", None)
        version = detail.get("version")
        if action_policy in names and version:
            versions[str(action_policy)] = str(version)
    return versions
