"""RoleWarden's own permissions, read from template.yaml (the one source of truth): least privilege,
IAM writes only on the managed path, PassRole only to EC2 and only for managed roles, and nothing that
lets RoleWarden change its own roles."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from rwlocal.stack import load_template

TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]
FUNCTIONS = sorted(k for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function")

#: Actions AWS does not scope to resources: "*" is the only possible Resource for them.
UNSCOPABLE = {
    "ec2:DescribeInstances",
    "ec2:DescribeIamInstanceProfileAssociations",
    "s3:ListAllMyBuckets",
    "iam:GetAccountAuthorizationDetails",
}
IAM_READ_PREFIXES = ("Get", "List", "Simulate", "Generate")


def _text(value: Any) -> str:
    """A Resource as text: !Sub strings as written, !GetAtt/!Ref as <Logical.Attr>."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "Fn::Sub" in value:
            sub = value["Fn::Sub"]
            return sub if isinstance(sub, str) else sub[0]
        if "Fn::GetAtt" in value:
            return "<" + ".".join(value["Fn::GetAtt"]) + ">"
        if "Ref" in value:
            return f"<{value['Ref']}>"
    return repr(value)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(function: str) -> Iterator[dict[str, Any]]:
    for policy in RESOURCES[function]["Properties"].get("Policies", []):
        assert isinstance(policy, dict) and "Statement" in policy, f"{function}: only inline statements are allowed"
        for statement in policy["Statement"]:
            if "Fn::If" in statement:
                for branch in statement["Fn::If"][1:]:
                    if isinstance(branch, dict) and "Effect" in branch:
                        yield branch
            else:
                yield statement


ALL = [(f, s) for f in FUNCTIONS for s in statements(f)]
IDS = [f"{f}:{s.get('Sid', '?')}" for f, s in ALL]


def test_every_function_has_inline_least_privilege_statements() -> None:
    assert FUNCTIONS == ["BucketGrantsFunction", "InstanceProfilesFunction", "RoleComplianceFunction"]
    for function in FUNCTIONS:
        assert list(statements(function)), function
        policies = RESOURCES[function]["Properties"]["Policies"]
        assert not any(isinstance(p, str) for p in policies), "no managed or SAM policy templates"


@pytest.mark.parametrize(("function", "statement"), ALL, ids=IDS)
def test_no_wildcard_actions(function: str, statement: dict[str, Any]) -> None:
    assert statement["Effect"] == "Allow"
    assert "NotAction" not in statement and "NotResource" not in statement
    for action in _as_list(statement["Action"]):
        assert "*" not in action, f"{function}: wildcard action {action}"


@pytest.mark.parametrize(("function", "statement"), ALL, ids=IDS)
def test_resource_star_only_where_aws_allows_nothing_else(function: str, statement: dict[str, Any]) -> None:
    if "*" in [_text(r) for r in _as_list(statement["Resource"])]:
        assert set(_as_list(statement["Action"])) <= UNSCOPABLE, f"{function}: Resource * for {statement['Action']}"


@pytest.mark.parametrize(("function", "statement"), ALL, ids=IDS)
def test_iam_writes_only_on_the_managed_path(function: str, statement: dict[str, Any]) -> None:
    writes = [
        a
        for a in _as_list(statement["Action"])
        if a.startswith("iam:") and not a.split(":", 1)[1].startswith(IAM_READ_PREFIXES)
    ]
    if not writes:
        return
    for resource in _as_list(statement["Resource"]):
        text = _text(resource)
        assert re.search(r":(role|policy|instance-profile)\$\{ManagedPath\}", text), f"{function}: {writes} on {text}"


def test_pass_role_only_for_managed_roles_and_only_to_ec2() -> None:
    """The profiles function associates profiles with instances; the compliance function adds a managed
    role to its own new instance profile (AddRoleToInstanceProfile requires PassRole on the role)."""
    passing = [(f, s) for f, s in ALL if "iam:PassRole" in _as_list(s["Action"])]
    assert [f for f, _ in passing] == ["InstanceProfilesFunction", "RoleComplianceFunction"]
    for _function, statement in passing:
        assert _as_list(statement["Action"]) == ["iam:PassRole"]
        assert [_text(r) for r in _as_list(statement["Resource"])] == [
            "arn:${AWS::Partition}:iam::${AWS::AccountId}:role${ManagedPath}*"
        ]
        assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}


def test_attach_is_limited_to_rolewardens_own_grant_policies() -> None:
    """The grants function may attach policies to managed roles, but only its generated grant policies."""
    for function, statement in ALL:
        if function == "BucketGrantsFunction" and "iam:AttachRolePolicy" in _as_list(statement["Action"]):
            arn_like = statement["Condition"]["ArnLike"]["iam:PolicyARN"]
            assert _text(arn_like).endswith("policy${ManagedPath}rolewarden-grants-*")


def test_rolewarden_cannot_change_its_own_roles() -> None:
    """Its execution roles are SAM-generated at path "/", and ManagedPath can never be "/": no IAM
    write statement can reach them."""
    pattern = re.compile(TEMPLATE["Parameters"]["ManagedPath"]["AllowedPattern"])
    assert pattern.match("/rolewarden/") and pattern.match("/team/apps/")
    assert not pattern.match("/") and not pattern.match("/*/") and not pattern.match("rolewarden")
    for function in FUNCTIONS:
        assert "Role" not in RESOURCES[function]["Properties"], "execution roles are generated, at path /"


def test_sqs_targets_of_rules_are_only_this_stacks_rules() -> None:
    for logical_id, resource in RESOURCES.items():
        if resource["Type"] != "AWS::SQS::QueuePolicy":
            continue
        (statement,) = resource["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert _as_list(statement["Action"]) == ["sqs:SendMessage"]
        assert "${AWS::StackName}-" in _text(statement["Condition"]["ArnLike"]["aws:SourceArn"]), logical_id
