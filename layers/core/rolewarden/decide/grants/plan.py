"""The grants decision for a set of targets, from one ``GrantsSnapshot`` (the IAM read-back design: no
state table, or a dry run). PURE: every read happened in ``capabilities.grants.observe`` before.

* ``bucket``: the bucket's fresh grants replace its entry in the grants of every role that holds it
  today or that its tags name now; the rest of each role's grants is read back from its generated
  policies (``trusted_grants``), or, when they cannot be trusted, from the buckets they name.
* ``role`` / ``policy``: the role's grants from the buckets its policies name (any version).
* ``sweep``: every bucket's grants, and every role that holds or is granted one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rolewarden.config import Config
from rolewarden.decide.grants.catalog import level_table
from rolewarden.decide.grants.decide import RoleDecision, decide_role
from rolewarden.decide.grants.naming import generated_policies, parts_by_role, policy_role
from rolewarden.decide.grants.render import buckets_named, default_buckets, trusted_grants
from rolewarden.decide.grants.tags import TagGrants, grants_by_role, grants_for, tag_grants
from rolewarden.model.findings import Finding
from rolewarden.model.grants import CAPABILITY, BucketGrant, GrantsSnapshot, ReadFailure
from rolewarden.model.iam import IamSnapshot, ManagedPolicy
from rolewarden.model.targets import Target


@dataclass
class GrantsPlan:
    """What one decision found: per role, which targets each role answers for, and failed targets."""

    iam: IamSnapshot
    decisions: dict[str, RoleDecision] = field(default_factory=dict)
    roles_of: dict[Target, set[str]] = field(default_factory=dict)
    failed: dict[Target, ReadFailure] = field(default_factory=dict)
    buckets_read: int = 0
    findings: list[Finding] = field(default_factory=list)


@dataclass(frozen=True)
class _Affected:
    roles: Mapping[str, set[Target]]  # role -> the targets it answers for
    reread: frozenset[str]  # roles whose grants come from their buckets, never from read-back
    failed: Mapping[Target, ReadFailure]


def _parse(snapshot: GrantsSnapshot, config: Config) -> dict[str, TagGrants]:
    return {name: tag_grants(config, view, snapshot.iam.roles) for name, view in snapshot.buckets.items()}


def _affected(
    snapshot: GrantsSnapshot, config: Config, targets: Sequence[Target], parsed: Mapping[str, TagGrants]
) -> _Affected:
    owned = parts_by_role(snapshot.iam, config.managed_path)
    roles: dict[str, set[Target]] = {}
    reread: set[str] = set()
    failed: dict[Target, ReadFailure] = {}
    for target in targets:
        if target.kind == "bucket":
            if target.id in snapshot.unreadable or target.id not in parsed:
                failed[target] = snapshot.unreadable.get(target.id, ReadFailure(True, f"bucket {target.id} not read"))
                continue
            held = {r for r, parts in owned.items() if any(target.id in default_buckets(p) for p in parts.values())}
            for role in held | set(parsed[target.id].grants):
                roles.setdefault(role, set()).add(target)
        elif target.kind in ("role", "policy"):
            owner = target.id if target.kind == "role" else policy_role(snapshot.iam, config.managed_path, target.id)
            if owner is None:
                continue  # not a generated policy: nothing of ours
            roles.setdefault(owner, set()).add(target)
            reread.add(owner)
    return _Affected(roles, frozenset(reread), failed)


def _base(
    snapshot: GrantsSnapshot, config: Config, role: str, parts: Mapping[int, ManagedPolicy], reread: bool
) -> dict[str, BucketGrant] | None:
    """The role's grants read back from its policies, or None when they must come from its buckets."""
    if reread:
        return None
    levels, _ = level_table(config)
    return trusted_grants(parts, levels, snapshot.iam.partition)


def _named(parts: Mapping[int, ManagedPolicy]) -> set[str]:
    return {b for p in parts.values() for v in p.versions for b in buckets_named(v.document)}


def buckets_needed(snapshot: GrantsSnapshot, config: Config, targets: Sequence[Target]) -> set[str]:
    """The buckets a non-sweep decision needs beyond those already read: every bucket named by the
    policies of an affected role whose read-back cannot be trusted (the observe step reads them)."""
    if any(t.kind == "sweep" for t in targets):
        return set()
    affected = _affected(snapshot, config, targets, _parse(snapshot, config))
    owned = parts_by_role(snapshot.iam, config.managed_path)
    needed: set[str] = set()
    for role in affected.roles:
        parts = owned.get(role, {})
        if _base(snapshot, config, role, parts, role in affected.reread) is None:
            needed |= _named(parts)
    return needed - set(snapshot.buckets) - set(snapshot.unreadable)


def decide(snapshot: GrantsSnapshot, config: Config, targets: Sequence[Target]) -> GrantsPlan:
    """Each affected role's decision, and which targets each role answers for."""
    parsed = _parse(snapshot, config)
    plan = GrantsPlan(iam=snapshot.iam, buckets_read=len(snapshot.buckets))
    owned = parts_by_role(snapshot.iam, config.managed_path)
    generated = generated_policies(snapshot.iam, config.managed_path)
    if any(t.kind == "sweep" for t in targets):
        _decide_sweep(snapshot, config, targets, parsed, plan, owned, generated)
        return plan
    for tg in parsed.values():
        plan.findings.extend(tg.findings)
    affected = _affected(snapshot, config, targets, parsed)
    plan.failed.update(affected.failed)
    for role in sorted(affected.roles):
        parts = owned.get(role, {})
        base = _base(snapshot, config, role, parts, role in affected.reread)
        if base is None:
            missing = sorted(b for b in _named(parts) if b in snapshot.unreadable)
            if missing:
                for target in affected.roles[role]:
                    plan.failed.setdefault(target, snapshot.unreadable[missing[0]])
                continue
            grants = grants_for(role, parsed.values())
        else:
            grants = {b: g for b, g in base.items() if b not in parsed}
            grants.update(grants_for(role, parsed.values()))
        plan.decisions[role] = decide_role(config, snapshot.iam, role, grants.values(), parts, generated)
        for target in affected.roles[role]:
            plan.roles_of.setdefault(target, set()).add(role)
    return plan


def _decide_sweep(
    snapshot: GrantsSnapshot,
    config: Config,
    targets: Sequence[Target],
    parsed: Mapping[str, TagGrants],
    plan: GrantsPlan,
    owned: Mapping[str, Mapping[int, ManagedPolicy]],
    generated: Mapping[str, ManagedPolicy],
) -> None:
    for name in snapshot.listed or ():
        failure = snapshot.unreadable.get(name)
        if failure is not None:
            plan.findings.append(
                Finding(
                    CAPABILITY,
                    name,
                    "bucket-unreadable",
                    f"cannot read bucket {name}: {failure.message}; its grants are kept",
                )
            )
        elif name in parsed:
            plan.findings.extend(parsed[name].findings)
    desired = grants_by_role(parsed.values())
    for role in sorted(set(desired) | set(owned)):
        parts = owned.get(role, {})
        grants: dict[str, BucketGrant] = dict(desired.get(role, {}))
        held_unreadable = {b for p in parts.values() for b in default_buckets(p)} & set(snapshot.unreadable)
        if held_unreadable:
            levels, _ = level_table(config)
            base = trusted_grants(parts, levels, snapshot.iam.partition)
            if base is None:
                continue  # cannot tell what to keep: leave the role as it is until the bucket is readable
            grants.update({b: base[b] for b in held_unreadable if b in base})
        plan.decisions[role] = decide_role(config, snapshot.iam, role, grants.values(), parts, generated)
    for target in targets:
        plan.roles_of[target] = set(plan.decisions)
