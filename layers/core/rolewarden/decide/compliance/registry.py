"""The compliance rules, declared: one literal tuple of rule instances, in evaluation order (the order of
``rolewarden.config.COMPLIANCE_RULE_IDS``), indexed by id. Nothing registers itself on import."""

from __future__ import annotations

from collections.abc import Iterable

from rolewarden.decide.compliance.admin import NoAdminAccess
from rolewarden.decide.compliance.allowlist import ManagedPolicyAllowlist, NoInlinePolicies
from rolewarden.decide.compliance.boundary import PermissionsBoundary
from rolewarden.decide.compliance.escalation import NoPrivilegeEscalation
from rolewarden.decide.compliance.grant_drift import GrantPolicyDrift
from rolewarden.decide.compliance.instance_profile import Ec2InstanceProfile
from rolewarden.decide.compliance.perimeter import InstanceCredentialPerimeter
from rolewarden.decide.compliance.rule import Rule
from rolewarden.decide.compliance.trust import TrustEc2Only

RULES: tuple[Rule, ...] = (
    NoAdminAccess(),
    NoPrivilegeEscalation(),
    TrustEc2Only(),
    PermissionsBoundary(),
    NoInlinePolicies(),
    ManagedPolicyAllowlist(),
    GrantPolicyDrift(),
    Ec2InstanceProfile(),
    InstanceCredentialPerimeter(),
)

#: IAM reads of the capability (sweep and per-event); checked against template.yaml by a test.
READ_PERMISSIONS = (
    "iam:GetAccountAuthorizationDetails",
    "iam:GetRole",
    "iam:ListAttachedRolePolicies",
    "iam:ListRolePolicies",
    "iam:GetRolePolicy",
    "iam:GetPolicy",
    "iam:GetPolicyVersion",
    "iam:ListEntitiesForPolicy",
)


def index_rules(rules: Iterable[Rule]) -> dict[str, Rule]:
    """The rules by id, in order; every rule needs an id of its own."""
    found: dict[str, Rule] = {}
    for rule in rules:
        if not rule.id or rule.id in found:
            raise ValueError(f"rule {type(rule).__name__} needs a unique id, got {rule.id!r}")
        found[rule.id] = rule
    return found


_BY_ID = index_rules(RULES)


def registered_rules() -> dict[str, Rule]:
    """Every rule by id, in evaluation order (a copy: callers may filter it)."""
    return dict(_BY_ID)
