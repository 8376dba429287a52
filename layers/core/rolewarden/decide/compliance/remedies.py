"""Remedy planning, PURE: the enforced violations of one role merged into the fewest actions (one per
policy touched), as ``rolewarden.model.compliance`` actions that carry what was read (``expected``) so the
executor can refuse a write over a change it did not see."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rolewarden.decide.compliance.rule import Violation
from rolewarden.decide.compliance.trust import CANONICAL_TRUST
from rolewarden.decide.policy import without_statements
from rolewarden.model.compliance import (
    CreateInstanceProfile,
    DeleteInlinePolicy,
    DetachManagedPolicy,
    PutBoundary,
    PutInlinePolicy,
    ReplaceTrustPolicy,
    RewriteInlinePolicy,
    RoleAction,
)
from rolewarden.model.documents import canonical_json, load_document
from rolewarden.model.iam import Role


def plan_remedies(role: Role, scope: str, violations: Sequence[Violation]) -> tuple[RoleAction, ...]:
    """Merge the remedies of enforced violations into the fewest actions: one per policy touched."""
    base: dict[str, Any] = {"role_name": role.name, "role_path": role.path, "scope": scope}
    detach: dict[str, set[str]] = {}
    delete: dict[str, set[str]] = {}
    strip: dict[str, dict[int, set[str]]] = {}
    trust: set[str] = set()
    boundary: dict[str, set[str]] = {}
    profile: set[str] = set()
    put: dict[str, tuple[str, set[str]]] = {}
    for v in violations:
        r = v.remedy
        if r.kind == "detach":
            detach.setdefault(r.policy, set()).add(v.rule)
        elif r.kind == "delete-inline":
            delete.setdefault(r.policy, set()).add(v.rule)
        elif r.kind == "remove-statements":
            for index in r.statements:
                strip.setdefault(r.policy, {}).setdefault(index, set()).add(v.rule)
        elif r.kind == "trust":
            trust.add(v.rule)
        elif r.kind == "boundary":
            boundary.setdefault(r.boundary, set()).add(v.rule)
        elif r.kind == "instance-profile":
            profile.add(v.rule)
        elif r.kind == "put-inline":
            put.setdefault(r.policy, (r.document, set()))[1].add(v.rule)
    actions: list[RoleAction] = []
    for arn, rules in sorted(detach.items()):
        actions.append(DetachManagedPolicy(**base, rules=tuple(sorted(rules)), policy_arn=arn))
    actions.extend(_inline_actions(role, base, strip, delete))
    if trust:
        actions.append(ReplaceTrustPolicy(**base, rules=tuple(sorted(trust)), document=canonical_json(CANONICAL_TRUST)))
    for arn, rules in sorted(boundary.items()):
        actions.append(PutBoundary(**base, rules=tuple(sorted(rules)), boundary_arn=arn))
    if profile:
        actions.append(
            CreateInstanceProfile(**base, rules=tuple(sorted(profile)), profile_name=role.name, profile_path=role.path)
        )
    for name, (text, rules) in sorted(put.items()):
        current = role.inline.get(name)
        expected = canonical_json(load_document(current)) if current is not None else ""
        actions.append(
            PutInlinePolicy(**base, rules=tuple(sorted(rules)), policy_name=name, document=text, expected=expected)
        )
    return tuple(actions)


def _inline_actions(
    role: Role, base: dict[str, Any], strip: dict[str, dict[int, set[str]]], delete: dict[str, set[str]]
) -> list[RoleAction]:
    """One rewrite (the kept statements) or delete (none kept, or the whole policy must go) per inline policy."""
    actions: list[RoleAction] = []
    for name in sorted(set(strip) | set(delete)):
        document = role.inline[name]
        expected = canonical_json(load_document(document))
        indexes = strip.get(name, {})
        rules = set(delete.get(name, set()))
        for by in indexes.values():
            rules |= by
        kept = None if name in delete else without_statements(document, indexes)
        if kept is None:
            actions.append(DeleteInlinePolicy(**base, rules=tuple(sorted(rules)), policy_name=name, expected=expected))
        else:
            actions.append(
                RewriteInlinePolicy(
                    **base,
                    rules=tuple(sorted(rules)),
                    policy_name=name,
                    document=canonical_json(kept),
                    expected=expected,
                    removed=tuple(sorted(indexes)),
                )
            )
    return actions
