"""Rule ``no-admin-access``: no policy of the role allows every action on every resource."""

from __future__ import annotations

from rolewarden.decide.compliance.rule import Rule, RuleContext, Violation, statement_violations
from rolewarden.decide.policy import Statement, pattern_is_everything
from rolewarden.model.iam import Role


class NoAdminAccess(Rule):
    id = "no-admin-access"
    checks = (
        "No attached managed policy (AWS-managed included) or inline statement allows every action "
        "('*', '*:*', or an Allow with NotAction, which leaves every unnamed action) on every resource."
    )
    remedy = "Detach the managed policy; remove the offending inline statements (delete the policy if none is left)."
    permissions = ("iam:DetachRolePolicy", "iam:GetRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy")

    def evaluate(self, role: Role, ctx: RuleContext) -> list[Violation]:
        return statement_violations(self.id, role, ctx, admin_reason)


def admin_reason(s: Statement) -> str | None:
    """Why the statement grants administrator access (None: it does not). Judged on its own: Deny
    statements elsewhere do not excuse it."""
    if not s.is_allow or not s.every_resource:
        return None
    if s.actions is not None and any(pattern_is_everything(a) for a in s.actions):
        return "allows every action on every resource"
    if s.not_actions is not None:
        return f"allows every action except {list(s.not_actions)} (NotAction) on every resource"
    return None
