"""Judging a role, PURE: every rule that is not off evaluated, the violations' effective modes, and the
remedies of the enforced ones planned (``decide_role``); or a role's documents alone judged by the content
rules, without any AWS call (``judge_documents``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from rolewarden.config import Config, RuleMode
from rolewarden.decide.compliance.registry import RULES, registered_rules
from rolewarden.decide.compliance.remedies import plan_remedies
from rolewarden.decide.compliance.rule import RuleContext, Violation, weaker_mode
from rolewarden.decide.compliance.scope import out_of_scope
from rolewarden.decide.compliance.trust import CANONICAL_TRUST
from rolewarden.model.compliance import RoleAction, single_version_policy
from rolewarden.model.documents import PolicyDocumentError, load_document
from rolewarden.model.iam import AttachedPolicy, ManagedPolicy, Role

Verdict = Literal["compliant", "noncompliant", "out-of-scope", "unreadable"]
#: The rules that judge what a role's documents allow (the rest judge trust, boundary and attachments).
CONTENT_RULES = ("no-admin-access", "no-privilege-escalation")


@dataclass(frozen=True)
class RoleDecision:
    role: str
    verdict: Verdict
    reason: str = ""
    #: (violation, mode) for every rule that is not off.
    violations: tuple[tuple[Violation, RuleMode], ...] = ()
    actions: tuple[RoleAction, ...] = ()
    #: Grant policies to hand to the grants code, with the mode of grant-policy-drift.
    grant_policies: tuple[str, ...] = ()

    @property
    def enforced(self) -> tuple[Violation, ...]:
        return tuple(v for v, mode in self.violations if mode == "enforce")


def decide_role(
    role: Role,
    config: Config,
    policies: Mapping[str, ManagedPolicy],
    self_role_arns: frozenset[str] = frozenset(),
) -> RoleDecision:
    """Evaluate every rule that is not off, and plan the remedies of the enforced ones."""
    reason = out_of_scope(role, config, self_role_arns)
    if reason is not None:
        return RoleDecision(role.name, "out-of-scope", reason)
    ctx = RuleContext(config, policies)
    found: list[tuple[Violation, RuleMode]] = []
    try:
        for rule in RULES:
            mode = config.rule_mode(rule.id)
            if mode != "off":
                found.extend((v, m) for v in rule.evaluate(role, ctx) if (m := weaker_mode(mode, v.mode)) != "off")
    except PolicyDocumentError as exc:
        return RoleDecision(role.name, "unreadable", f"a policy of the role cannot be read: {exc}")
    grants = tuple(sorted({v.remedy.policy for v, _m in found if v.remedy.kind == "restore-grant"}))
    real = tuple((v, m) for v, m in found if v.remedy.kind != "restore-grant")
    actions = plan_remedies(role, config.managed_path, [v for v, m in real if m == "enforce"])
    verdict: Verdict = "noncompliant" if real else "compliant"
    return RoleDecision(role.name, verdict, "", real, actions, grants)


def judge_documents(
    config: Config,
    inline: Mapping[str, Any],
    managed: Mapping[str, Any] | None = None,
    *,
    role_name: str = "candidate",
    role_path: str | None = None,
    account: str = "000000000000",
) -> list[tuple[Violation, RuleMode]]:
    """Judge one role's permission documents with the content rules (``no-admin-access`` and
    ``no-privilege-escalation``), exactly as ``decide_role`` would, without any AWS call.

    ``inline``: inline policy documents by name; ``managed``: managed policy documents by ARN (dict, JSON
    or URL-encoded JSON). The role is ``role/<role_path><role_name>`` (path: the managed path by default).
    Returns (violation, mode) for every violation of a rule that is not off; ``mode`` is the effective one
    (category modes and exemptions applied). Each escalation violation's ``details["paths"]`` names the
    path ids, categories and sources. Raises PolicyDocumentError for a document that cannot be read."""
    path = role_path or config.managed_path
    policies = {arn: single_version_policy(arn, load_document(doc)) for arn, doc in (managed or {}).items()}
    role = Role(
        name=role_name,
        arn=f"arn:aws:iam::{account}:role{path}{role_name}",
        path=path,
        trust=CANONICAL_TRUST,
        attached=tuple(AttachedPolicy(arn, policies[arn].name) for arn in policies),
        inline={name: load_document(doc) for name, doc in inline.items()},
    )
    ctx = RuleContext(config, policies)
    rules = registered_rules()
    found: list[tuple[Violation, RuleMode]] = []
    for rule_id in CONTENT_RULES:
        mode = config.rule_mode(rule_id)
        if mode == "off":
            continue
        for violation in rules[rule_id].evaluate(role, ctx):
            effective = weaker_mode(mode, violation.mode)
            if effective != "off":
                found.append((violation, effective))
    return found
