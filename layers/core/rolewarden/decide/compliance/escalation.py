"""Rule ``no-privilege-escalation``: no escalation path of the table (``rolewarden.decide.escalation``)
is open through the role's policies taken together.

The role's policies are read as one set (a path may need statements from several policies); an
unconditional Deny in any of them closes what it denies. Conditions never excuse an Allow, with the
exceptions the table names: ``iam:PassedToService`` on ``iam:PassRole`` (the path's service principal
must pass it) and ``iam:PolicyARN`` with concrete values on ``iam:Attach*Policy``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rolewarden.config import RuleMode
from rolewarden.decide.compliance.admin import NoAdminAccess
from rolewarden.decide.compliance.rule import Remedy, Rule, RuleContext, Violation, documents
from rolewarden.decide.escalation.catalog import PATHS
from rolewarden.decide.escalation.path import PASS_ROLE, EscalationPath, Need
from rolewarden.decide.policy import (
    Statement,
    action_matches,
    applies_broadly,
    applies_to,
    broad_for_type,
    condition_operands,
    resource_is_broad,
    resource_is_everything,
    statement_covers,
    usable_resources,
)
from rolewarden.model.iam import Role


def passes_to(statement: Statement, principals: Sequence[str]) -> bool:
    """Whether the PassRole statement lets the role be passed to one of the service principals."""
    found = condition_operands(statement, "iam:PassedToService")
    if found is None:
        return True
    wanted, excluded = found
    return any(
        (not wanted or any(action_matches(v, p) for v in wanted)) and not any(action_matches(v, p) for v in excluded)
        for p in principals
    )


def narrowed(statement: Statement, key: str) -> bool:
    """A condition on ``key`` that names concrete values (no wildcard, no AWS-managed policy)."""
    found = condition_operands(statement, key)
    if found is None or not found[0] or found[1]:
        return False
    return all(not resource_is_broad(v) and ":iam::aws:" not in v for v in found[0])


@dataclass(frozen=True)
class Grant:
    """One statement of one of the role's permission policies."""

    kind: str  # "inline" | "managed"
    policy: str  # inline policy name or managed policy ARN
    statement: Statement


@dataclass(frozen=True)
class PathMatch:
    """An escalation path the role's policies open, and the statements that open it (the key needs')."""

    path: EscalationPath
    statements: tuple[Grant, ...]

    def describe(self) -> str:
        return f"{self.path.id} ({self.path.title}; sources: {', '.join(self.path.sources)})"


@dataclass(frozen=True)
class RoleGrants:
    """Every statement of a role's permission policies, with what "the role itself" means for scopes."""

    role_arn: str
    attached_policies: tuple[str, ...]
    grants: tuple[Grant, ...]

    @property
    def allows(self) -> tuple[Grant, ...]:
        return tuple(g for g in self.grants if g.statement.is_allow)

    @property
    def _denies(self) -> tuple[Statement, ...]:
        # A conditional Deny may not apply to the attacker's request: it excuses nothing.
        return tuple(g.statement for g in self.grants if not g.statement.is_allow and not g.statement.condition)

    def denied(self, action: str, arn: str | None = None) -> bool:
        """Denied on every resource (``arn`` None) or on ``arn``, by an unconditional Deny of the role."""
        for s in self._denies:
            if not statement_covers(s, action):
                continue
            if arn is None and s.not_resources is None and any(resource_is_everything(r) for r in s.resources or ()):
                return True
            if arn is not None and applies_to(s, arn):
                return True
        return False

    def need_statements(self, path: EscalationPath, need: Need) -> tuple[Grant, ...]:
        """The Allow statements that satisfy ``need`` (empty: the need, and so the path, is not met)."""
        if self.denied(need.action):
            return ()
        candidates = [
            g
            for g in self.allows
            if statement_covers(g.statement, need.action)
            and not (need.narrowed_by and narrowed(g.statement, need.narrowed_by))
            and not (need.action == PASS_ROLE and path.principals and not passes_to(g.statement, path.principals))
            and (g.statement.not_resources is not None or usable_resources(g.statement.resources or ()))
        ]
        if need.scope == "any":
            return tuple(candidates)
        if need.types:
            by_type = [[g for g in candidates if broad_for_type(g.statement, t)] for t in need.types]
            if not all(by_type):
                return ()
            return tuple(g for g in candidates if any(g in found for found in by_type))
        if need.scope == "self" and self.denied(need.action, self.role_arn):
            return ()  # the role itself is out of reach; other roles are the pair paths' business
        chosen = [g for g in candidates if applies_broadly(g.statement)]
        targets: tuple[str, ...] = ()
        if need.scope == "self":
            targets = (self.role_arn,)
        elif need.scope == "policy":
            targets = self.attached_policies
        for g in candidates:
            if g not in chosen and any(applies_to(g.statement, t) and not self.denied(need.action, t) for t in targets):
                chosen.append(g)
        return tuple(chosen)

    def match(self, path: EscalationPath) -> PathMatch | None:
        key: list[Grant] = []
        for need in path.needs:
            found = self.need_statements(path, need)
            if not found:
                return None
            if need.key:
                key.extend(g for g in found if g not in key)
        return PathMatch(path, tuple(key))

    def matches(self, paths: Iterable[EscalationPath] = PATHS) -> list[PathMatch]:
        return [m for p in paths if (m := self.match(p)) is not None]


def role_grants(role: Role, ctx: RuleContext) -> RoleGrants:
    """The statements of every permission policy of the role (inline and attached; grant policies left
    to grant-policy-drift), read as one set: a path may need statements from several policies."""
    grants = tuple(Grant(kind, name, s) for kind, name, document in documents(role, ctx) for s in document.statements)
    attached = tuple(
        p.arn for p in role.attached if (policy := ctx.policies.get(p.arn)) is not None and not policy.aws_managed
    )
    return RoleGrants(role.arn, attached, grants)


class NoPrivilegeEscalation(Rule):
    id = "no-privilege-escalation"
    checks = (
        "No escalation path of the table in rolewarden.decide.escalation (README: 'Escalation paths') is open "
        "through the role's policies taken together: IAM writes on the role itself, a policy attached to it, or any "
        "principal; credentials of other users; trust policy rewrites and broad sts:AssumeRole; iam:PassRole to a "
        "service that runs caller-supplied code with that service's actions; code changes in compute that already runs "
        "with a role. Deny, NotAction/NotResource, wildcards in any case, iam:PassedToService, iam:PolicyARN and "
        "resource ARNs are honoured; other conditions do not excuse."
    )
    remedy = (
        "Remove the statements that open the path (the dangerous half: PassRole, the IAM write, the code change), "
        "keep the rest; detach a managed policy that opens one. Per-category modes and per-path exemptions in "
        "compliance.escalation."
    )
    permissions = NoAdminAccess.permissions

    def evaluate(self, role: Role, ctx: RuleContext) -> list[Violation]:
        settings = ctx.config.compliance.escalation
        matches = [
            m
            for m in role_grants(role, ctx).matches()
            if not settings.exempt(role.name, m.path.id, m.path.category)
            and settings.category_mode(m.path.category) != "off"
        ]
        # One violation per (policy, mode): the remedy of a policy is planned once per mode.
        groups: dict[tuple[str, str, RuleMode], list[tuple[PathMatch, list[Grant]]]] = {}
        for m in matches:
            mode = settings.category_mode(m.path.category)
            for g in m.statements:
                entry = groups.setdefault((g.kind, g.policy, mode), [])
                found = next((e for e in entry if e[0] is m), None)
                if found is None:
                    entry.append((m, [g]))
                else:
                    found[1].append(g)
        return [
            _violation(self.id, kind, policy, mode, entries) for (kind, policy, mode), entries in sorted(groups.items())
        ]


def _violation(
    rule_id: str, kind: str, policy: str, mode: RuleMode, entries: list[tuple[PathMatch, list[Grant]]]
) -> Violation:
    """The violation of one policy (at one mode): the paths it opens and the statements that open them."""
    indexes = sorted({g.statement.index for _m, grants in entries for g in grants})
    described = "; ".join(m.describe() for m, _g in entries)
    if kind == "managed":
        message = f"attached policy {policy} opens escalation path {described}"
        remedy = Remedy("detach", policy=policy)
    else:
        message = f"inline policy {policy} statement(s) {indexes} open escalation path {described}"
        remedy = Remedy("remove-statements", policy=policy, statements=tuple(indexes))
    statements = {g.statement.index: g.statement.raw for _m, grants in entries for g in grants}
    details = {
        "policy_kind": kind,
        "policy": policy,
        "statements": [statements[i] for i in indexes],
        "paths": [
            {"id": m.path.id, "title": m.path.title, "category": m.path.category, "sources": list(m.path.sources)}
            for m, _g in entries
        ],
    }
    return Violation(rule_id, message, remedy, details, mode)
