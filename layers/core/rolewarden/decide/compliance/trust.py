"""Rule ``trust-ec2-only``: the trust policy lets only ec2.amazonaws.com assume the role; and the trust
reading other rules share (``ec2_may_assume``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rolewarden.decide.compliance.rule import Remedy, Rule, RuleContext, Violation
from rolewarden.decide.policy import parse_policy, statement_covers, string_list
from rolewarden.model.documents import PolicyDocumentError
from rolewarden.model.iam import Role

EC2_PRINCIPAL = "ec2.amazonaws.com"
#: The canonical trust policy that ``trust-ec2-only`` puts back.
CANONICAL_TRUST: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": EC2_PRINCIPAL}, "Action": "sts:AssumeRole"}],
}


def trust_problems(document: Any) -> list[str]:
    """Why a trust policy is not "sts:AssumeRole for ec2.amazonaws.com only" ([] when it is)."""
    try:
        policy = parse_policy(document)
    except PolicyDocumentError as exc:
        return [f"unreadable trust policy: {exc}"]
    problems = []
    ec2_allowed = False
    for s in policy.statements:
        if not s.is_allow:
            continue
        if s.not_principal is not None or s.not_actions is not None:
            problems.append(f"statement {s.index} uses NotPrincipal/NotAction")
            continue
        principal = s.principal
        services: tuple[str, ...] = ()
        if isinstance(principal, Mapping) and set(principal) == {"Service"}:
            try:
                services = string_list(principal["Service"], "Principal.Service")
            except PolicyDocumentError:
                services = ()
        if not services or any(svc.lower() != EC2_PRINCIPAL for svc in services):
            problems.append(f"statement {s.index} trusts {json.dumps(principal, sort_keys=True)}")
            continue
        actions = s.actions or ()
        if not actions or any(a.lower() != "sts:assumerole" for a in actions):
            problems.append(f"statement {s.index} allows {list(actions)}, not only sts:AssumeRole")
            continue
        ec2_allowed = True
    if not ec2_allowed and not problems:
        problems.append("no statement lets ec2.amazonaws.com assume the role")
    return problems


def ec2_may_assume(trust: Any) -> bool:
    """Whether an Allow statement of the trust policy lets ec2.amazonaws.com call sts:AssumeRole."""
    try:
        policy = parse_policy(trust)
    except PolicyDocumentError:
        return False
    for s in policy.statements:
        if not s.is_allow or not statement_covers(s, "sts:AssumeRole") or not isinstance(s.principal, Mapping):
            continue
        service = s.principal.get("Service")
        services = [service] if isinstance(service, str) else list(service or [])
        if any(isinstance(v, str) and v.lower() == EC2_PRINCIPAL for v in services):
            return True
    return False


class TrustEc2Only(Rule):
    id = "trust-ec2-only"
    checks = "The trust policy allows sts:AssumeRole only to the service principal ec2.amazonaws.com."
    remedy = "Replace the trust policy with the canonical EC2-only one."
    permissions = ("iam:UpdateAssumeRolePolicy",)

    def evaluate(self, role: Role, ctx: RuleContext) -> list[Violation]:
        problems = trust_problems(role.trust)
        if not problems:
            return []
        return [Violation(self.id, f"trust policy: {'; '.join(problems)}", Remedy("trust"), {"trust": role.trust})]
