"""Rules ``no-inline-policies`` and ``managed-policy-allowlist``: which policies a role may carry at all."""

from __future__ import annotations

from rolewarden.decide.compliance.perimeter import PERIMETER_POLICY
from rolewarden.decide.compliance.perimeter import RULE_ID as PERIMETER_RULE
from rolewarden.decide.compliance.rule import Remedy, Rule, RuleContext, Violation
from rolewarden.model.compliance import is_own_grant_policy
from rolewarden.model.iam import Role

#: Inline policies RoleWarden itself keeps on roles (while their rule is on): not "foreign" inline policies.
OWNED_INLINE_POLICIES = (PERIMETER_POLICY,)


class NoInlinePolicies(Rule):
    id = "no-inline-policies"
    checks = "The role has no inline policies."
    remedy = "Delete the inline policies."
    permissions = ("iam:GetRolePolicy", "iam:DeleteRolePolicy")

    def evaluate(self, role: Role, ctx: RuleContext) -> list[Violation]:
        owned = OWNED_INLINE_POLICIES if ctx.config.rule_mode(PERIMETER_RULE) != "off" else ()
        return [
            Violation(self.id, f"inline policy {name}", Remedy("delete-inline", policy=name), {"policy": name})
            for name in sorted(role.inline)
            if name not in owned
        ]


class ManagedPolicyAllowlist(Rule):
    id = "managed-policy-allowlist"
    checks = (
        "Every attached managed policy is in allowed_managed_policies or is the role's own RoleWarden grant policy."
    )
    remedy = "Detach the other managed policies."
    permissions = ("iam:DetachRolePolicy",)

    def evaluate(self, role: Role, ctx: RuleContext) -> list[Violation]:
        allowed = set(ctx.config.compliance.allowed_managed_policies)
        return [
            Violation(
                self.id, f"attached policy {p.arn} is not allowed", Remedy("detach", policy=p.arn), {"policy": p.arn}
            )
            for p in role.attached
            if p.arn not in allowed and not is_own_grant_policy(p.arn, ctx.managed_path, role.name)
        ]
