"""Rule ``permissions-boundary``: the role carries the configured permissions boundary."""

from __future__ import annotations

from rolewarden.decide.compliance.rule import Remedy, Rule, RuleContext, Violation
from rolewarden.model.iam import Role


class PermissionsBoundary(Rule):
    id = "permissions-boundary"
    checks = "The role's permissions boundary is the configured policy (no rule when none is configured)."
    remedy = "Put the configured permissions boundary."
    permissions = ("iam:PutRolePermissionsBoundary",)

    def evaluate(self, role: Role, ctx: RuleContext) -> list[Violation]:
        wanted = ctx.config.compliance.permissions_boundary
        if wanted is None or role.boundary == wanted:
            return []
        message = f"permissions boundary is {role.boundary or 'absent'}, not {wanted}"
        return [Violation(self.id, message, Remedy("boundary", boundary=wanted), {"boundary": role.boundary})]
