"""Escalation paths through IAM itself, as data: IAM writes that change what a principal may do
(``iam-write``), credentials of other users (``credentials``) and becoming another role (``trust``).
Sources and scopes are explained in ``rolewarden.decide.escalation.path``."""

from __future__ import annotations

from functools import partial

from rolewarden.decide.escalation.path import EscalationPath, companion, iam_path, key_need

#: The paths of the other two categories of this module.
_credentials = partial(iam_path, category="credentials")
_trust = partial(iam_path, category="trust")

IAM_WRITE: tuple[EscalationPath, ...] = (
    # ---------------------------------------------------------------- iam-write: change what a principal may do
    iam_path(
        "iam-001",
        "new default version of a policy attached to the role",
        ("rhino:1", "pathfinding:iam-001", "cloudsplaining:CreateNewPolicyVersion", "pmapper:iam"),
        key_need("iam:CreatePolicyVersion", "policy"),
    ),
    iam_path(
        "iam-setdefault",
        "switch an attached policy to another existing version",
        ("rhino:2", "cloudsplaining:SetExistingDefaultPolicyVersion"),
        key_need("iam:SetDefaultPolicyVersion", "policy"),
    ),
    iam_path(
        "iam-005",
        "inline policy on the role itself",
        ("rhino:12", "pathfinding:iam-005", "cloudsplaining:PutRolePolicy", "pmapper:iam"),
        key_need("iam:PutRolePolicy", "self"),
    ),
    iam_path(
        "iam-009",
        "attach any managed policy to the role itself",
        ("rhino:9", "pathfinding:iam-009", "cloudsplaining:AttachRolePolicy", "pmapper:iam"),
        key_need("iam:AttachRolePolicy", "self", narrowed_by="iam:PolicyARN"),
    ),
    iam_path(
        "iam-007",
        "inline policy on any user",
        ("rhino:10", "pathfinding:iam-007", "cloudsplaining:PutUserPolicy", "pmapper:iam"),
        key_need("iam:PutUserPolicy"),
    ),
    iam_path(
        "iam-008",
        "attach a managed policy to any user",
        ("rhino:7", "pathfinding:iam-008", "cloudsplaining:AttachUserPolicy", "pmapper:iam"),
        key_need("iam:AttachUserPolicy", narrowed_by="iam:PolicyARN"),
    ),
    iam_path(
        "iam-011",
        "inline policy on any group",
        ("rhino:11", "pathfinding:iam-011", "cloudsplaining:PutGroupPolicy"),
        key_need("iam:PutGroupPolicy"),
    ),
    iam_path(
        "iam-010",
        "attach a managed policy to any group",
        ("rhino:8", "pathfinding:iam-010", "cloudsplaining:AttachGroupPolicy"),
        key_need("iam:AttachGroupPolicy", narrowed_by="iam:PolicyARN"),
    ),
    iam_path(
        "iam-013",
        "add a user to any group",
        ("rhino:13", "pathfinding:iam-013", "cloudsplaining:AddUserToGroup"),
        key_need("iam:AddUserToGroup"),
    ),
    iam_path(
        "boundary-delete",
        "remove the role's own permissions boundary",
        ("rolewarden",),
        key_need("iam:DeleteRolePermissionsBoundary", "self"),
    ),
    iam_path(
        "boundary-put",
        "replace the role's own permissions boundary",
        ("rolewarden",),
        key_need("iam:PutRolePermissionsBoundary", "self"),
    ),
    # pairs: change another principal, then become it
    iam_path(
        "iam-014",
        "attach a policy to a role, then assume it",
        ("rhino:9", "pathfinding:iam-014", "pmapper:sts"),
        key_need("iam:AttachRolePolicy", "any", narrowed_by="iam:PolicyARN"),
        companion("sts:AssumeRole"),
    ),
    iam_path(
        "iam-016",
        "new version of a role's policy, then assume the role",
        ("pathfinding:iam-016", "cloudsplaining:CreatePolicyVersionThenAssumeRole"),
        key_need("iam:CreatePolicyVersion", "any"),
        companion("sts:AssumeRole"),
    ),
    iam_path(
        "iam-017",
        "inline policy on a role, then assume it",
        ("rhino:12", "pathfinding:iam-017"),
        key_need("iam:PutRolePolicy", "any"),
        companion("sts:AssumeRole"),
    ),
    iam_path(
        "iam-015",
        "attach a policy to a user, then create its access key",
        ("pathfinding:iam-015", "cloudsplaining:AttachUserPolicyThenCreateAccessKey"),
        key_need("iam:AttachUserPolicy", "any", narrowed_by="iam:PolicyARN"),
        companion("iam:CreateAccessKey"),
    ),
    iam_path(
        "iam-018",
        "inline policy on a user, then create its access key",
        ("pathfinding:iam-018", "cloudsplaining:PutUserPolicyThenCreateAccessKey"),
        key_need("iam:PutUserPolicy", "any"),
        companion("iam:CreateAccessKey"),
    ),
    iam_path(
        "iam-019",
        "attach a policy to a role and rewrite its trust policy",
        ("pathfinding:iam-019", "cloudsplaining:AttachRolePolicyThenUpdateAssumeRolePolicy"),
        key_need("iam:AttachRolePolicy", "any", narrowed_by="iam:PolicyARN"),
        key_need("iam:UpdateAssumeRolePolicy", "any"),
    ),
    iam_path(
        "iam-020",
        "new version of a role's policy and rewrite its trust policy",
        ("pathfinding:iam-020", "cloudsplaining:CreatePolicyVersionThenUpdateAssumeRolePolicy"),
        key_need("iam:CreatePolicyVersion", "any"),
        key_need("iam:UpdateAssumeRolePolicy", "any"),
    ),
    iam_path(
        "iam-021",
        "inline policy on a role and rewrite its trust policy",
        ("pathfinding:iam-021", "cloudsplaining:PutRolePolicyThenUpdateAssumeRolePolicy"),
        key_need("iam:PutRolePolicy", "any"),
        key_need("iam:UpdateAssumeRolePolicy", "any"),
    ),
)

CREDENTIALS: tuple[EscalationPath, ...] = (
    # ---------------------------------------------------------------- credentials of other principals
    _credentials(
        "iam-002",
        "access keys for any user",
        ("rhino:4", "pathfinding:iam-002", "cloudsplaining:CreateAccessKey", "pmapper:iam"),
        key_need("iam:CreateAccessKey"),
    ),
    _credentials(
        "iam-003",
        "delete then create access keys for any user",
        ("pathfinding:iam-003", "cloudsplaining:CreateAndRotateAccessKey"),
        key_need("iam:CreateAccessKey"),
        companion("iam:DeleteAccessKey"),
    ),
    _credentials(
        "iam-004",
        "console password for any user",
        ("rhino:5", "pathfinding:iam-004", "cloudsplaining:CreateLoginProfile", "pmapper:iam"),
        key_need("iam:CreateLoginProfile"),
    ),
    _credentials(
        "iam-006",
        "reset the console password of any user",
        ("rhino:6", "pathfinding:iam-006", "cloudsplaining:UpdateLoginProfile", "pmapper:iam"),
        key_need("iam:UpdateLoginProfile"),
    ),
)

TRUST: tuple[EscalationPath, ...] = (
    # ---------------------------------------------------------------- trust: become another role
    _trust(
        "sts-001",
        "assume any role that trusts the account",
        ("pathfinding:sts-001", "pmapper:sts"),
        key_need("sts:AssumeRole"),
    ),
    _trust(
        "iam-012",
        "rewrite a role's trust policy (and assume it: a trust naming the caller needs no sts:AssumeRole grant)",
        ("rhino:14", "pathfinding:iam-012", "cloudsplaining:UpdateRolePolicyToAssumeIt", "pmapper:sts"),
        key_need("iam:UpdateAssumeRolePolicy", "any"),
    ),
)
