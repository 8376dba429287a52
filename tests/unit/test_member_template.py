"""member.yaml, the member stack of the multi-account deployment (issue 14), read against template.yaml (the
one source of truth): the execution role trusts only the central functions' roles within the organization
and holds exactly what those functions hold on resources of their own account; every event the central
rules match is forwarded to the central bus with a dead-letter queue; IAM's events only from us-east-1."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from rwlocal.stack import ROOT, load_template

CENTRAL = load_template()
MEMBER = load_template(ROOT / "member.yaml")
C_RES = CENTRAL["Resources"]
M_RES = MEMBER["Resources"]

#: Services whose resources live in the member account: the central functions' statements on them move to
#: the execution role. Their other statements (sqs, dynamodb, sns, kms, ssm) name the central stack's own
#: queues, table, topic, key and config, and stay with the functions.
MEMBER_SERVICES = ("ec2:", "autoscaling:", "iam:", "s3:")
CENTRAL_FUNCTIONS = ["BucketGrantsFunction", "InstanceProfilesFunction", "RoleComplianceFunction"]
CENTRAL_BUS = {
    "Fn::Sub": "arn:${AWS::Partition}:events:${CentralRegion}:${CentralAccountId}:event-bus/${CentralBusName}"
}
EXECUTION_ROLE_ARN = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${ExecutionRoleName}"}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(policy_statements: list[Any]) -> Iterator[dict[str, Any]]:
    for statement in policy_statements:
        if "Fn::If" in statement:
            yield from (b for b in statement["Fn::If"][1:] if isinstance(b, dict) and "Effect" in b)
        else:
            yield statement


def _text(value: Any) -> str:
    if isinstance(value, dict) and "Fn::Sub" in value:
        return str(value["Fn::Sub"])
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


Grant = tuple[str, str, str]  # (action, resource, condition as canonical JSON)


def _grants(statements: Iterator[dict[str, Any]], region: str) -> set[Grant]:
    found: set[Grant] = set()
    for statement in statements:
        assert statement["Effect"] == "Allow" and "NotAction" not in statement and "NotResource" not in statement
        condition = json.dumps(statement.get("Condition", {}), sort_keys=True)
        for action in _as_list(statement["Action"]):
            for resource in _as_list(statement["Resource"]):
                text = _text(resource).replace("${AWS::Region}", region)
                found.add((action, text, condition.replace("${AWS::Region}", region)))
    return found


def _central_grants() -> set[Grant]:
    found: set[Grant] = set()
    for function in CENTRAL_FUNCTIONS:
        for policy in C_RES[function]["Properties"]["Policies"]:
            found |= _grants(_statements(policy["Statement"]), "${CentralRegion}")
    return {g for g in found if g[0].startswith(MEMBER_SERVICES)}


def _execution_role() -> dict[str, Any]:
    return dict(M_RES["ExecutionRole"]["Properties"])


def test_the_execution_role_holds_exactly_the_central_functions_permissions_on_member_resources() -> None:
    """One source of truth: adding or removing a permission of a central function on EC2, Auto Scaling, IAM or
    S3 fails here until member.yaml says the same. The comparison is by (action, resource, condition)."""
    role = _execution_role()
    assert set(role) <= {
        "RoleName",
        "Path",
        "Description",
        "MaxSessionDuration",
        "AssumeRolePolicyDocument",
        "Policies",
    }
    (policy,) = role["Policies"]
    member = _grants(_statements(policy["PolicyDocument"]["Statement"]), "${CentralRegion}")
    central = _central_grants()
    assert central, "the central functions' statements were read"
    assert member - central == set(), "the execution role holds permissions no central function holds"
    assert central - member == set(), "a central function holds a permission the execution role lacks"


def test_the_execution_role_trusts_only_the_central_function_roles_within_the_organization() -> None:
    role = _execution_role()
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert set(trust) == {"Sid", "Effect", "Principal", "Action", "Condition"}, "no NotPrincipal, nothing else"
    assert trust["Effect"] == "Allow"
    assert _as_list(trust["Action"]) == ["sts:AssumeRole"]
    assert trust["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}}
    assert list(trust["Principal"]) == ["AWS"], "no service or federated principal"
    principals = [_text(p) for p in _as_list(trust["Principal"]["AWS"])]
    expected_names = {f"{f.removesuffix('Function')}RoleName" for f in CENTRAL_FUNCTIONS}
    assert sorted(principals) == sorted(
        f"arn:${{AWS::Partition}}:iam::${{CentralAccountId}}:role/${{{name}}}" for name in expected_names
    )
    params = MEMBER["Parameters"]
    for name in [*expected_names, "CentralAccountId", "OrganizationId"]:
        assert "Default" not in params[name], f"{name}: no default, the operator names it"
    for name in expected_names:  # a parameter value cannot widen the trust: no "*", no ":" (another account)
        pattern = re.compile(params[name]["AllowedPattern"])
        assert pattern.match("rolewarden-dev-InstanceProfilesFunctionRole-1A2B3C")
        for bad in ("*", "role-*", "x:role/y", "arn:aws:iam::123456789012:root", ""):
            assert not pattern.match(bad), bad
    account = re.compile(params["CentralAccountId"]["AllowedPattern"])
    assert account.match("123456789012") and not account.match("*") and not account.match("12345678901")
    org = re.compile(params["OrganizationId"]["AllowedPattern"])
    assert org.match("o-a1b2c3d4e5") and not org.match("*") and not org.match("o-*")


def test_the_execution_role_cannot_change_itself_and_uses_the_central_managed_path() -> None:
    role = _execution_role()
    assert role["Path"] == "/" and role["RoleName"] == {"Ref": "ExecutionRoleName"}
    params, central = MEMBER["Parameters"], CENTRAL["Parameters"]
    assert params["ManagedPath"]["Default"] == central["ManagedPath"]["Default"]
    assert params["ManagedPath"]["AllowedPattern"] == central["ManagedPath"]["AllowedPattern"]
    assert not re.match(params["ManagedPath"]["AllowedPattern"], "/")
    assert M_RES["ExecutionRole"]["Condition"] == "InCentralRegion", "IAM is global: one role, in one region"
    assert MEMBER["Conditions"]["InCentralRegion"] == {"Fn::Equals": [{"Ref": "AWS::Region"}, {"Ref": "CentralRegion"}]}


FORWARD_RULES = sorted(k for k, v in M_RES.items() if v["Type"] == "AWS::Events::Rule")
#: The central rules whose events come from the member accounts (schedules and the home-region forwarding
#: of single mode excepted).
CENTRAL_EVENT_RULES = sorted(
    k
    for k, v in C_RES.items()
    if v["Type"] == "AWS::Events::Rule" and "EventPattern" in v["Properties"] and not k.endswith("ToHomeRule")
)


def _without_own_sessions(pattern: dict[str, Any]) -> dict[str, Any]:
    """The pattern with the sessionIssuer filter taken out (central: its functions; member: the execution role)."""
    copied = json.loads(json.dumps(pattern))
    identity = copied.get("detail", {}).get("userIdentity", {})
    identity.pop("sessionContext", None)
    return dict(copied)


def test_every_central_event_rule_has_a_forwarding_rule_with_the_same_pattern() -> None:
    assert [r.replace("ForwardRule", "Rule") for r in FORWARD_RULES] == CENTRAL_EVENT_RULES
    for forward in FORWARD_RULES:
        central = C_RES[forward.replace("ForwardRule", "Rule")]["Properties"]["EventPattern"]
        member = M_RES[forward]["Properties"]["EventPattern"]
        assert _without_own_sessions(member) == _without_own_sessions(central), forward
        issuer = member.get("detail", {}).get("userIdentity", {}).get("sessionContext")
        if issuer is not None:  # RoleWarden's own changes in the member account are not sent back to it
            assert issuer == {"sessionIssuer": {"arn": [{"anything-but": [EXECUTION_ROLE_ARN]}]}}, forward


@pytest.mark.parametrize("rule", FORWARD_RULES)
def test_each_forwarding_target_is_the_central_bus_with_a_dead_letter_queue(rule: str) -> None:
    (target,) = M_RES[rule]["Properties"]["Targets"]
    assert target["Arn"] == CENTRAL_BUS
    assert target["RoleArn"] == {"Fn::GetAtt": ["ForwardRole", "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["ForwardDLQ", "Arn"]}}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}


def test_the_dead_letter_queue_accepts_only_this_stacks_forwarding_rules() -> None:
    (statement,) = M_RES["ForwardDLQPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert _as_list(statement["Action"]) == ["sqs:SendMessage"]
    assert statement["Resource"] == {"Fn::GetAtt": ["ForwardDLQ", "Arn"]}
    allowed: dict[str, str | None] = {}
    for entry in statement["Condition"]["ArnEquals"]["aws:SourceArn"]:
        if "Fn::If" in entry:  # a conditional rule is listed under its own condition
            condition, arn, otherwise = entry["Fn::If"]
            assert otherwise == {"Ref": "AWS::NoValue"}
            allowed[arn["Fn::GetAtt"][0]] = condition
        else:
            allowed[entry["Fn::GetAtt"][0]] = None
    assert allowed == {rule: M_RES[rule].get("Condition") for rule in FORWARD_RULES}


def test_the_forwarding_role_may_only_put_events_on_the_central_bus() -> None:
    role = M_RES["ForwardRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    ((statement,),) = [p["PolicyDocument"]["Statement"] for p in role["Policies"]]
    assert _as_list(statement["Action"]) == ["events:PutEvents"]
    assert statement["Resource"] == CENTRAL_BUS


def test_iam_events_only_from_us_east_1_and_ec2_events_only_from_the_central_region() -> None:
    assert MEMBER["Conditions"]["InUsEast1"] == {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}
    for rule in FORWARD_RULES:
        sources = json.dumps(M_RES[rule]["Properties"]["EventPattern"])
        condition = M_RES[rule].get("Condition")
        if '"aws.iam"' in sources:
            assert condition == "InUsEast1", rule
        elif '"aws.ec2"' in sources or '"aws.autoscaling"' in sources:
            assert condition == "InCentralRegion", rule  # the central functions act in their region only
        else:
            assert '"aws.s3"' in sources and condition is None, rule  # buckets of every region
    assert "Lambda" not in json.dumps([v["Type"] for v in M_RES.values()]), "the member stack runs no code"


# -- template.yaml's central mode ------------------------------------------------------------------
ON_CENTRAL_BUS = {"Fn::If": ["IsCentral", {"Fn::GetAtt": ["CentralBus", "Name"]}, {"Ref": "AWS::NoValue"}]}


def test_the_central_bus_accepts_events_only_from_accounts_of_the_organization() -> None:
    assert CENTRAL["Conditions"]["IsCentral"] == {"Fn::Equals": [{"Ref": "Mode"}, "central"]}
    assert CENTRAL["Parameters"]["Mode"]["Default"] == "single"
    bus, policy = C_RES["CentralBus"], C_RES["CentralBusPolicy"]
    assert bus["Condition"] == policy["Condition"] == "IsCentral"
    props = policy["Properties"]
    assert props["EventBusName"] == {"Fn::GetAtt": ["CentralBus", "Name"]}
    statement = props["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "events:PutEvents"
    assert statement["Resource"] == {"Fn::GetAtt": ["CentralBus", "Arn"]}
    assert statement["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}}
    (assertions,) = [
        r["Assertions"]
        for r in CENTRAL["Rules"].values()
        if r.get("RuleCondition") == {"Fn::Equals": [{"Ref": "Mode"}, "central"]}
    ]
    assert {"Fn::Not": [{"Fn::Equals": [{"Ref": "OrganizationId"}, ""]}]} in [a["Assert"] for a in assertions]
    org = re.compile(CENTRAL["Parameters"]["OrganizationId"]["AllowedPattern"])
    assert org.match("") and org.match("o-a1b2c3d4e5") and not org.match("*") and not org.match("o-*")


def test_event_rules_move_to_the_central_bus_in_central_mode_only() -> None:
    """In single mode EventBusName is AWS::NoValue: the rules stay on the default bus, as before."""
    for rule in CENTRAL_EVENT_RULES:
        assert C_RES[rule]["Properties"]["EventBusName"] == ON_CENTRAL_BUS, rule
    schedules = [k for k, v in C_RES.items() if "ScheduleExpression" in v.get("Properties", {})]
    assert schedules and all("EventBusName" not in C_RES[k]["Properties"] for k in schedules)
    for logical_id, resource in C_RES.items():
        if resource["Type"] != "AWS::SQS::QueuePolicy" or logical_id.startswith("ForwardToHome"):
            continue
        (statement,) = resource["Properties"]["PolicyDocument"]["Statement"]
        condition, central, single = statement["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::If"]
        assert condition == "IsCentral"
        default_bus = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/${AWS::StackName}-*"
        assert _text(single) == default_bus, logical_id
        assert [_text(a) for a in central] == [
            default_bus,
            "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/"
            "rolewarden-central-${Stage}/${AWS::StackName}-*",
        ], logical_id
        assert _text(C_RES["CentralBus"]["Properties"]["Name"]) == "rolewarden-central-${Stage}"


@pytest.mark.parametrize("function", CENTRAL_FUNCTIONS)
def test_central_functions_may_assume_only_the_execution_role_and_only_in_central_mode(function: str) -> None:
    (policy,) = C_RES[function]["Properties"]["Policies"]
    plain = [s for s in policy["Statement"] if "Fn::If" not in s]
    assert not any(a.startswith("sts:") for s in plain for a in _as_list(s["Action"]))
    central = [s["Fn::If"] for s in policy["Statement"] if "Fn::If" in s and s["Fn::If"][0] == "IsCentral"]
    assert all(otherwise == {"Ref": "AWS::NoValue"} for _, _, otherwise in central)
    statements = {s["Sid"]: s for _, s, _ in central}
    assert sorted(statements) == ["ActInMemberAccounts", "ListTheOrganization", "ReadAccountOUs"]
    statement = statements["ActInMemberAccounts"]
    assert _as_list(statement["Action"]) == ["sts:AssumeRole"]
    assert _text(statement["Resource"]) == "arn:${AWS::Partition}:iam::*:role/${ExecutionRoleName}"
    assert statement["Condition"] == {"StringEquals": {"aws:ResourceOrgID": {"Ref": "OrganizationId"}}}
    # reading the organization is read-only, and ListParents only within this organization
    reads = [a for sid in ("ListTheOrganization", "ReadAccountOUs") for a in _as_list(statements[sid]["Action"])]
    assert sorted(reads) == [
        "organizations:DescribeOrganization",
        "organizations:ListAccounts",
        "organizations:ListParents",
    ]
    assert [_text(r) for r in statements["ReadAccountOUs"]["Resource"]] == [
        "arn:${AWS::Partition}:organizations::*:account/${OrganizationId}/*",
        "arn:${AWS::Partition}:organizations::*:ou/${OrganizationId}/*",
    ]


def test_the_services_rolewarden_acts_on_in_a_member_are_the_execution_roles() -> None:
    """aws.clients routes exactly the services member.yaml's execution role grants to the member's credentials;
    every other service (the state table, queues, topic) stays RoleWarden's own."""
    from rolewarden.aws.clients import MEMBER_SERVICES

    granted = {
        a.split(":", 1)[0]
        for policy in _execution_role()["Policies"]
        for s in _statements(policy["PolicyDocument"]["Statement"])
        for a in _as_list(s["Action"])
    }
    assert granted == MEMBER_SERVICES


def test_the_two_templates_agree_on_names() -> None:
    """The central stack's outputs are the member stack's parameters."""
    env = CENTRAL["Globals"]["Function"]["Environment"]["Variables"]
    assert env["ROLEWARDEN_MODE"] == {"Ref": "Mode"}
    assert env["ROLEWARDEN_EXECUTION_ROLE"] == {"Ref": "ExecutionRoleName"}
    for name in ("ExecutionRoleName",):
        assert MEMBER["Parameters"][name]["Default"] == CENTRAL["Parameters"][name]["Default"]
        assert MEMBER["Parameters"][name]["AllowedPattern"] == CENTRAL["Parameters"][name]["AllowedPattern"]
    stage = CENTRAL["Parameters"]["Stage"]["Default"]
    assert MEMBER["Parameters"]["CentralBusName"]["Default"] == f"rolewarden-central-{stage}"
    assert CENTRAL["Outputs"]["CentralBusName"]["Value"] == {"Fn::GetAtt": ["CentralBus", "Name"]}
    (_, names) = CENTRAL["Outputs"]["CentralRoleNames"]["Value"]["Fn::Join"]
    assert [n["Ref"] for n in names] == [
        f"{f}Role" for f in ("InstanceProfilesFunction", "BucketGrantsFunction", "RoleComplianceFunction")
    ]
    role_params = [k for k in MEMBER["Parameters"] if k.endswith("RoleName") and k != "ExecutionRoleName"]
    assert role_params == ["InstanceProfilesRoleName", "BucketGrantsRoleName", "RoleComplianceRoleName"]
