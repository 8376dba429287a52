"""The instance-credential perimeter rule (issue 15): pure decision tables and the offline IAM catalog check."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rolewarden.config import COMPLIANCE_RULE_IDS, Config
from rolewarden.decide.compliance.judge import RoleDecision, decide_role
from rolewarden.decide.compliance.perimeter import (
    PERIMETER_POLICY,
    RULE_ID,
    desired_perimeter,
    has_perimeter,
    perimeter_document,
)
from rolewarden.decide.compliance.registry import registered_rules
from rolewarden.decide.compliance.rule import RuleContext
from rolewarden.decide.compliance.trust import CANONICAL_TRUST
from rolewarden.model.compliance import DeleteInlinePolicy, PutInlinePolicy
from rolewarden.model.documents import PolicyDocumentError, canonical_json
from rolewarden.model.iam import AttachedPolicy, Role
from rwlocal.iamcatalog import problems

ACCOUNT = "123456789012"
PATH = "/rolewarden/"
GRANT_ARN = f"arn:aws:iam::{ACCOUNT}:policy/rolewarden/rolewarden-grants-web"
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
ENDPOINTS = {"endpoint_services": [{"roles": ["web", "batch-*"], "services": ["s3", "dynamodb", "sqs"]}]}


def allow(*actions: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}]}


def config(mode: str = "enforce", perimeter: dict[str, Any] | None = None, **rules: str) -> Config:
    modes = (
        {r: "off" for r in COMPLIANCE_RULE_IDS} | {RULE_ID: mode} | {k.replace("_", "-"): v for k, v in rules.items()}
    )
    return Config.from_data(
        {
            "version": 1,
            "managed_path": PATH,
            "compliance": {"rules": modes, "instance_perimeter": ENDPOINTS if perimeter is None else perimeter},
        }
    )


def role(name: str = "web", inline: dict[str, Any] | None = None, trust: Any = None, grants: bool = False) -> Any:
    return Role(
        name=name,
        arn=f"arn:aws:iam::{ACCOUNT}:role{PATH}{name}",
        path=PATH,
        trust=trust if trust is not None else CANONICAL_TRUST,
        attached=(AttachedPolicy(GRANT_ARN, "rolewarden-grants-web"),) if grants else (),
        inline=inline or {},
    )


def decide(r: Any, cfg: Config) -> RoleDecision:
    return decide_role(r, cfg, {})


def puts(decision: RoleDecision) -> list[PutInlinePolicy]:
    return [a for a in decision.actions if isinstance(a, PutInlinePolicy)]


def denied_services(action: PutInlinePolicy) -> list[str]:
    (first, second) = json.loads(action.document)["Statement"]
    assert first["Action"] == second["Action"]
    return [a.split(":")[0] for a in first["Action"]]


# (id, role, mode, services denied by the statement written (None: no write), an uncovered report?)
TABLE = [
    (
        "ec2-role-all-covered",
        role(inline={"app": allow("s3:GetObject", "sqs:SendMessage")}),
        "enforce",
        ["s3", "sqs"],
        False,
    ),
    ("grants-count-as-s3", role(grants=True), "enforce", ["s3"], False),
    (
        "uncovered-service-reported",
        role(inline={"app": allow("s3:GetObject", "ssm:GetParameter")}),
        "enforce",
        ["s3"],
        True,
    ),
    (
        "star-covers-endpoint-services-reports-rest",
        role(inline={"app": allow("*")}),
        "enforce",
        ["dynamodb", "s3", "sqs"],
        True,
    ),
    ("nothing-allowed-nothing-to-do", role(), "enforce", None, False),
    (
        "no-endpoints-configured-report-only",
        role(name="other", inline={"app": allow("s3:GetObject")}),
        "enforce",
        None,
        True,
    ),
    ("only-uncovered-services", role(inline={"app": allow("ssm:GetParameter")}), "enforce", None, True),
    ("not-trusted-by-ec2", role(inline={"app": allow("s3:GetObject")}, trust=LAMBDA_TRUST), "enforce", None, False),
    (
        "pattern-matches-role",
        role(name="batch-7", inline={"app": allow("dynamodb:Query")}),
        "enforce",
        ["dynamodb"],
        False,
    ),
    ("report-mode-writes-nothing", role(inline={"app": allow("s3:GetObject")}), "report", None, False),
]


@pytest.mark.parametrize(("r", "mode", "denied", "uncovered"), [t[1:] for t in TABLE], ids=[t[0] for t in TABLE])
def test_perimeter_decision_table(r: Any, mode: str, denied: list[str] | None, uncovered: bool) -> None:
    decision = decide(r, config(mode))
    written = puts(decision)
    if denied is None:
        assert written == []
    else:
        (action,) = written
        assert action.policy_name == PERIMETER_POLICY and action.expected == ""
        assert denied_services(action) == denied
    reports = [v for v, m in decision.violations if m == "report" and v.remedy.kind == "report-only"]
    assert bool(reports) == uncovered
    if mode == "report" and denied is None and r.inline:
        assert [v.rule for v, m in decision.violations] == [RULE_ID] and decision.actions == ()


def test_the_perimeter_in_place_is_left_alone() -> None:
    document = perimeter_document(("s3",))
    r = role(inline={"app": allow("s3:GetObject"), PERIMETER_POLICY: document})
    decision = decide(r, config())
    assert decision.actions == () and decision.verdict == "compliant"


def test_a_changed_perimeter_is_put_back_only_if_still_as_read() -> None:
    stale = perimeter_document(("s3",))
    r = role(inline={"app": allow("s3:GetObject", "sqs:SendMessage"), PERIMETER_POLICY: stale})
    (action,) = puts(decide(r, config()))
    assert action.expected == canonical_json(stale)
    assert denied_services(action) == ["s3", "sqs"]


def test_the_perimeter_never_names_a_service_not_declared_reachable_through_an_endpoint() -> None:
    """The invariant that keeps today's calls working: for any mix of allowed services, the deny names only
    configured endpoint services, and only those the role may call."""
    endpoint = {"s3", "dynamodb", "sqs"}
    for allowed in (["s3:GetObject"], ["ec2:DescribeInstances", "sqs:SendMessage"], ["kms:Decrypt"], ["*"]):
        for action in puts(decide(role(inline={"app": allow(*allowed)}), config())):
            named = set(denied_services(action))
            assert named <= endpoint
            if allowed != ["*"]:
                assert named <= {a.split(":")[0] for a in allowed}


def test_the_statement_is_the_aws_data_perimeter_pattern() -> None:
    statements = perimeter_document(("s3",))["Statement"]
    assert [s["Condition"]["StringNotEquals"] for s in statements] == [
        {"aws:EC2InstanceSourceVPC": "${aws:SourceVpc}"},
        {"aws:EC2InstanceSourcePrivateIPv4": "${aws:VpcSourceIp}"},
    ]
    for s in statements:
        assert s["Effect"] == "Deny" and s["Resource"] == "*"
        assert s["Condition"]["Null"] == {"ec2:SourceInstanceARN": "false"}
        assert s["Condition"]["BoolIfExists"] == {"aws:ViaAWSService": "false"}


@pytest.mark.parametrize("services", [("s3",), ("s3", "dynamodb", "sqs", "kms", "secretsmanager", "ssm", "logs")])
def test_the_perimeter_statement_passes_the_offline_iam_catalog_check(services: tuple[str, ...]) -> None:
    assert problems(perimeter_document(services), where="perimeter") == []


def test_the_catalog_check_would_catch_a_broken_perimeter() -> None:
    broken = perimeter_document(("s3",))
    broken["Statement"][0]["Condition"]["Bool"] = {"ec2:SourceInstanceARN": "false"}  # ARN key, Bool operator
    broken["Statement"][1]["Condition"]["StringNotEquals"] = {"aws:EC2InstanceSourcePrivateIPv4": "10.0.0.1"}
    found = problems(broken, where="perimeter")
    assert any("Bool does not apply to ec2:SourceInstanceARN" in p for p in found)
    assert any("StringNotEquals does not apply to aws:EC2InstanceSourcePrivateIPv4" in p for p in found)


def test_the_remedy_written_by_the_executor_passes_the_catalog_check() -> None:
    (action,) = puts(decide(role(inline={"app": allow("*")}), config()))
    assert problems(json.loads(action.document), where="PutInlinePolicy") == []


def test_no_inline_policies_does_not_delete_the_perimeter_while_the_rule_is_on() -> None:
    r = role(inline={PERIMETER_POLICY: perimeter_document(("s3",)), "app": allow("s3:GetObject")})
    on = decide(r, config("enforce", no_inline_policies="enforce"))
    assert [a.policy_name for a in on.actions if isinstance(a, DeleteInlinePolicy)] == ["app"]
    off = decide(r, config("off", no_inline_policies="enforce"))
    assert sorted(a.policy_name for a in off.actions if isinstance(a, DeleteInlinePolicy)) == [
        "app",
        PERIMETER_POLICY,
    ]


def test_the_rule_is_registered_off_by_default_and_declares_its_permissions() -> None:
    rule = registered_rules()[RULE_ID]
    assert rule.permissions == ("iam:GetRolePolicy", "iam:PutRolePolicy")
    assert Config.from_data({"version": 1}).rule_mode(RULE_ID) == "off"
    # the registry's public interface is unchanged: the tag guard and the escalation rule still find theirs
    assert {"no-admin-access", "no-privilege-escalation", "permissions-boundary"} <= set(registered_rules())


@pytest.mark.parametrize(
    ("perimeter", "error"),
    [
        ({"endpoint_services": [{"roles": ["web"], "services": ["s3:*"]}]}, "not an IAM service prefix"),
        ({"endpoint_services": [{"roles": [], "services": ["s3"]}]}, "roles"),
        ({"endpoint_services": [{"roles": ["web"]}]}, "services"),
        ({"vpcs": []}, "unknown key"),
    ],
)
def test_bad_perimeter_config_is_refused(perimeter: dict[str, Any], error: str) -> None:
    import yaml

    from rolewarden.config import parse_config
    from rolewarden.errors import ConfigError

    text = yaml.safe_dump({"version": 1, "compliance": {"instance_perimeter": perimeter}})
    with pytest.raises(ConfigError) as exc:
        parse_config(text, "rw.yaml")
    assert "compliance.instance_perimeter" in str(exc.value) and error in str(exc.value)


@pytest.mark.parametrize(
    ("r", "expected"),
    [
        (role(trust=LAMBDA_TRUST), None),
        (role(inline={"app": allow("s3:GetObject")}), False),
        (role(inline={"app": allow("s3:GetObject"), PERIMETER_POLICY: perimeter_document(("s3",))}), True),
        (
            role(
                inline={"app": allow("s3:GetObject", "sqs:SendMessage"), PERIMETER_POLICY: perimeter_document(("s3",))}
            ),
            False,
        ),
        (role(name="other", inline={"app": allow("s3:GetObject")}), False),
    ],
    ids=["not-ec2", "missing", "in-place", "outdated", "no-endpoint-services"],
)
def test_has_perimeter(r: Any, expected: bool | None) -> None:
    assert has_perimeter(r, RuleContext(config(), {})) is expected


def test_deny_statements_name_no_service_and_notaction_makes_the_role_open_ended() -> None:
    deny = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "kms:*", "Resource": "*"}]}
    denies_only = role(inline={"app": allow("s3:GetObject"), "guard": deny})
    assert desired_perimeter(denies_only, RuleContext(config(), {})) == (("s3",), (), ("dynamodb", "s3", "sqs"))
    open_ended = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}
    covered, uncovered, _endpoint = desired_perimeter(role(inline={"app": open_ended}), RuleContext(config(), {}))
    assert covered == ("dynamodb", "s3", "sqs") and uncovered == ("*",)


def test_an_unreadable_perimeter_makes_the_role_unreadable_not_compliant() -> None:
    r = role(inline={"app": allow("s3:GetObject"), PERIMETER_POLICY: "{not json"})
    with pytest.raises(PolicyDocumentError):
        has_perimeter(r, RuleContext(config(), {}))
    assert decide(r, config()).verdict == "unreadable"
