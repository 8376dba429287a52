"""Rule ``ec2-instance-profile``: a managed role that EC2 may assume is held by an instance profile."""

from __future__ import annotations

from rolewarden.decide.compliance.rule import Remedy, Rule, RuleContext, Violation
from rolewarden.decide.compliance.trust import ec2_may_assume
from rolewarden.model.iam import Role


class Ec2InstanceProfile(Rule):
    id = "ec2-instance-profile"
    checks = (
        "A managed role that ec2.amazonaws.com may assume is in an instance profile (the IAM console makes one "
        "when it creates a role for EC2; the API, the CLI and CloudFormation do not)."
    )
    remedy = "Create an instance profile of the role's name, at the role's path, and add the role to it."
    permissions = (
        "iam:ListInstanceProfilesForRole",
        "iam:CreateInstanceProfile",
        "iam:AddRoleToInstanceProfile",
        "iam:PassRole",
    )

    def evaluate(self, role: Role, ctx: RuleContext) -> list[Violation]:
        if role.instance_profiles is None or role.instance_profiles or not ec2_may_assume(role.trust):
            return []
        message = f"EC2 may assume the role but no instance profile holds it; {role.path}{role.name} would"
        return [Violation(self.id, message, Remedy("instance-profile"), {"instance_profile": role.path + role.name})]
