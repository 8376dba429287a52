"""Rule ``grant-policy-drift``: RoleWarden's own grant policies are what the bucket tags call for. Only
the grants capability knows that; this rule names the grant policies of an evaluated role, and the
compliance capability hands them over."""

from __future__ import annotations

from rolewarden.decide.compliance.rule import Remedy, Rule, RuleContext, Violation
from rolewarden.model.compliance import is_grant_policy
from rolewarden.model.iam import Role


class GrantPolicyDrift(Rule):
    id = "grant-policy-drift"
    checks = "RoleWarden's own grant policies have the default version that the bucket tags call for."
    remedy = "Restore it: handed to the bucket_grants capability, one message per role on its queue."
    #: Compliance writes no grant policy: it sends the role to the grants queue (ROLEWARDEN_GRANTS_QUEUE_URL).
    permissions = ("sqs:SendMessage",)

    def evaluate(self, role: Role, ctx: RuleContext) -> list[Violation]:
        """Every grant policy of an evaluated role is handed to the grants code, which alone knows what
        the tags call for; it finds drift (or none) and reports it."""
        return [
            Violation(self.id, f"grant policy {p.arn}: check against bucket tags", Remedy("restore-grant", p.arn))
            for p in role.attached
            if is_grant_policy(p.arn, ctx.managed_path)
        ]
