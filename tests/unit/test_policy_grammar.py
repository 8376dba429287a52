"""The one policy grammar (decide/policy.py): the edges of normalisation and matching, as tables."""

from __future__ import annotations

from typing import Any

import pytest

from rolewarden.decide.policy import (
    Statement,
    applies_broadly,
    applies_to,
    broad_for_type,
    condition_operands,
    parse_policy,
    resource_is_broad,
    resource_is_everything,
    statement_covers,
    string_list,
)
from rolewarden.model.documents import PolicyDocumentError

ROLE = "arn:aws:iam::123456789012:role/rolewarden/web"


def statement(**fields: Any) -> Statement:
    return parse_policy({"Statement": [{"Effect": "Allow", **fields}]}).statements[0]


@pytest.mark.parametrize(
    ("document", "error"),
    [
        ({"Statement": ["iam:PassRole"]}, r"Statement\[0\] is not an object"),
        ({"Statement": [{"Effect": "Allow", "Action": "*", "Condition": ["x"]}]}, r"Statement\[0\]\.Condition"),
        ({"Statement": [{"Effect": "Permit", "Action": "*"}]}, r"Effect must be Allow or Deny"),
        ({"Statement": [{"Effect": "Allow", "Action": 5}]}, r"Statement\[0\]\.Action must be a string or a list"),
        ({"Statement": [{"Effect": "Deny", "NotResource": [1]}]}, r"Statement\[0\]\.NotResource"),
        ({"Statement": "Allow everything"}, r"Statement must be an object or a list"),
        ("[1, 2]", r"not a JSON object"),
    ],
    ids=[
        "not-object",
        "condition-list",
        "bad-effect",
        "action-number",
        "notresource-numbers",
        "statement-text",
        "array",
    ],
)
def test_unreadable_documents_say_where(document: Any, error: str) -> None:
    with pytest.raises(PolicyDocumentError, match=error):
        parse_policy(document)


def test_effect_is_case_insensitive_and_a_single_statement_stays_single() -> None:
    policy = parse_policy('{"Statement": {"Effect": "allow", "Action": "s3:GetObject", "Sid": "One"}}')
    (only,) = policy.statements
    assert only.is_allow and only.effect == "Allow" and only.sid == "One" and not policy.statement_is_list
    assert string_list("a", "x") == ("a",) and string_list(["a", "b"], "x") == ("a", "b")


def test_a_statement_without_action_or_notaction_covers_nothing() -> None:
    s = statement(Resource="*")
    assert not statement_covers(s, "s3:GetObject") and not s.allows_action("s3:GetObject")


@pytest.mark.parametrize(
    ("resource", "everything", "broad"),
    [
        ("*", True, True),
        ("arn:*:*:*:*:*", True, True),
        ("not-an-arn", False, False),
        ("bucket-*", False, True),
        ("arn:aws:iam::123456789012:role/*", False, True),
        ("arn:aws:iam::*:role/web", False, True),
        ("arn:aws:iam::123456789012:role/rolewarden/*", False, False),
        ("arn:aws:s3:::bucket/*", False, False),
        ("arn:aws:sqs:eu-west-1:123456789012:*", False, True),
        ("arn:aws:logs:eu-west-1:123456789012:log-group:*", False, True),
    ],
)
def test_resource_breadth(resource: str, everything: bool, broad: bool) -> None:
    assert resource_is_everything(resource) is everything
    assert resource_is_broad(resource) is broad


def test_notresource_applies_to_every_resource_it_does_not_name() -> None:
    s = statement(Action="iam:PutRolePolicy", NotResource="arn:aws:iam::123456789012:role/rolewarden/*")
    assert not applies_to(s, ROLE)
    assert applies_to(s, "arn:aws:iam::123456789012:role/other")
    assert applies_broadly(s) and broad_for_type(s, "role")


@pytest.mark.parametrize(
    ("resources", "resource_type", "expected"),
    [
        (["*"], "instance", True),
        (["arn:aws:ec2:eu-west-1:123456789012:*"], "instance", True),
        (["arn:aws:ec2:eu-west-1:123456789012:instance/*"], "instance", True),
        (["arn:aws:ec2:eu-west-1:123456789012:instance/i-123"], "instance", False),
        (["arn:aws:ssm:eu-west-1:123456789012:document/*"], "instance", False),
        (["arn:aws:iam::123456789012:user/${aws:username}"], "user", False),
    ],
    ids=["star", "resource-part-wildcard", "type-wildcard", "one-instance", "other-type", "self-user-only"],
)
def test_broad_for_type(resources: list[str], resource_type: str, expected: bool) -> None:
    assert broad_for_type(statement(Action="ec2:*", Resource=resources), resource_type) is expected


def test_policy_variables_other_than_the_callers_user_name_count_as_wildcards() -> None:
    s = statement(Action="iam:PutRolePolicy", Resource="arn:aws:iam::123456789012:role/${aws:PrincipalTag/team}")
    assert applies_to(s, ROLE)
    own = statement(Action="iam:CreateAccessKey", Resource="arn:aws:iam::123456789012:user/${aws:username}")
    assert not applies_to(own, "arn:aws:iam::123456789012:user/alice") and not applies_broadly(own)


def test_condition_operands_split_required_and_excluded_values_and_ignore_ifexists() -> None:
    s = statement(
        Action="iam:PassRole",
        Resource="*",
        Condition={
            "StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "lambda.amazonaws.com"]},
            "StringNotLike": {"IAM:PASSEDTOSERVICE": "glue.*"},
            "StringEqualsIfExists": {"iam:PassedToService": "ecs-tasks.amazonaws.com"},
            "Bool": "not-a-block",
        },
    )
    assert condition_operands(s, "iam:PassedToService") == (
        ("ec2.amazonaws.com", "lambda.amazonaws.com"),
        ("glue.*",),
    )
    assert condition_operands(s, "iam:PolicyARN") is None
