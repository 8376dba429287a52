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
#: The functions with their own (generated) execution role and policies; a sweep function uses its
#: event function's role (Role: !GetAtt <EventFunction>Role.Arn).
EVENT_FUNCTIONS = [f for f in FUNCTIONS if "Role" not in RESOURCES[f]["Properties"]]
SWEEP_FUNCTIONS = [f for f in FUNCTIONS if f not in EVENT_FUNCTIONS]

#: Actions AWS does not scope to resources: "*" is the only possible Resource for them.
UNSCOPABLE = {
    "ec2:DescribeInstances",
    "ec2:DescribeIamInstanceProfileAssociations",
    "s3:ListAllMyBuckets",
    "iam:GetAccountAuthorizationDetails",
    # central mode (issue 14): the Service Authorization Reference lists no resource type for these
    "organizations:DescribeOrganization",
    "organizations:ListAccounts",
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


ALL = [(f, s) for f in EVENT_FUNCTIONS for s in statements(f)]
IDS = [f"{f}:{s.get('Sid', '?')}" for f, s in ALL]


def test_every_function_has_inline_least_privilege_statements() -> None:
    assert EVENT_FUNCTIONS == ["BucketGrantsFunction", "InstanceProfilesFunction", "RoleComplianceFunction"]
    for function in EVENT_FUNCTIONS:
        assert list(statements(function)), function
        policies = RESOURCES[function]["Properties"]["Policies"]
        assert not any(isinstance(p, str) for p in policies), "no managed or SAM policy templates"


def test_each_sweep_function_runs_with_its_event_functions_role_and_nothing_more() -> None:
    """A sweep function is the same capability's code on a longer timeout: no permission of its own."""
    assert [f.replace("Function", "SweepFunction") for f in EVENT_FUNCTIONS] == SWEEP_FUNCTIONS
    for sweep in SWEEP_FUNCTIONS:
        props = RESOURCES[sweep]["Properties"]
        event = sweep.replace("SweepFunction", "Function")
        assert props["Role"] == {"Fn::GetAtt": [f"{event}Role", "Arn"]}
        assert "Policies" not in props
        assert props["CodeUri"] == RESOURCES[event]["Properties"]["CodeUri"]
        assert props["Handler"] == "app.sweep_handler"
        assert RESOURCES[sweep].get("Condition") == RESOURCES[event].get("Condition")


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


#: What changes a grant policy or attaches one: the grants function's alone.
GRANT_POLICY_WRITES = {
    "iam:CreatePolicy",
    "iam:DeletePolicy",
    "iam:CreatePolicyVersion",
    "iam:DeletePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:AttachRolePolicy",
    "iam:TagPolicy",
    "iam:UntagPolicy",
}


def test_only_the_grants_function_may_write_grant_policies() -> None:
    """Compliance hands grant-policy drift to the grants queue (one message per role) and may write no
    grant policy itself: no grant-policy write, nothing on a ``rolewarden-grants-*`` ARN, no S3 read of
    bucket tags; it may send to the grants queue and to no other queue of the grants capability."""
    writers = {f for f, s in ALL if GRANT_POLICY_WRITES & set(_as_list(s["Action"]))}
    assert writers == {"BucketGrantsFunction"}
    compliance = list(statements("RoleComplianceFunction"))
    assert "rolewarden-grants-" not in repr(compliance)
    assert not [a for s in compliance for a in _as_list(s["Action"]) if a.startswith("s3:")]
    grants_queues = {"BucketGrantsQueue", "BucketGrantsSweepQueue", "BucketGrantsDLQ"}
    sends = [
        s for s in compliance if grants_queues & {_text(r).strip("<>").split(".")[0] for r in _as_list(s["Resource"])}
    ]
    assert [(s["Sid"], s["Action"], s["Resource"]) for s in sends] == [
        ("GrantDriftToTheGrantsQueue", "sqs:SendMessage", {"Fn::GetAtt": ["BucketGrantsQueue", "Arn"]})
    ]
    for function in ("RoleComplianceFunction", "RoleComplianceSweepFunction"):
        variables = RESOURCES[function]["Properties"]["Environment"]["Variables"]
        assert variables["ROLEWARDEN_GRANTS_QUEUE_URL"] == {"Ref": "BucketGrantsQueue"}
    queue = RESOURCES["BucketGrantsQueue"]["Properties"]
    # SSE-SQS: a customer key would need kms:GenerateDataKey for the sender in its key policy
    assert queue.get("SqsManagedSseEnabled") is True and "KmsMasterKeyId" not in queue


def test_rolewarden_cannot_change_its_own_roles() -> None:
    """Its execution roles are SAM-generated at path "/", and ManagedPath can never be "/": no IAM
    write statement can reach them."""
    pattern = re.compile(TEMPLATE["Parameters"]["ManagedPath"]["AllowedPattern"])
    assert pattern.match("/rolewarden/") and pattern.match("/team/apps/")
    assert not pattern.match("/") and not pattern.match("/*/") and not pattern.match("rolewarden")
    for function in EVENT_FUNCTIONS:
        assert "Role" not in RESOURCES[function]["Properties"], "execution roles are generated, at path /"
    for function in SWEEP_FUNCTIONS:
        (role, _arn) = RESOURCES[function]["Properties"]["Role"]["Fn::GetAtt"]
        assert role in {f"{f}Role" for f in EVENT_FUNCTIONS}, "a sweep function runs with a generated role"


def test_sqs_targets_of_rules_are_only_this_stacks_rules() -> None:
    for logical_id, resource in RESOURCES.items():
        if resource["Type"] != "AWS::SQS::QueuePolicy":
            continue
        (statement,) = resource["Properties"]["PolicyDocument"]["Statement"]
        queues = {q["Ref"] for q in resource["Properties"]["Queues"]}
        assert {r["Fn::GetAtt"][0] for r in _as_list(statement["Resource"])} == queues, logical_id
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert _as_list(statement["Action"]) == ["sqs:SendMessage"]
        assert "${AWS::StackName}-" in _text(statement["Condition"]["ArnLike"]["aws:SourceArn"]), logical_id


def test_findings_topic_uses_a_customer_key_that_alarms_and_rules_can_use() -> None:
    """CloudWatch alarms cannot publish to a topic under alias/aws/sns (its policy cannot name them)."""
    topic = RESOURCES["FindingsTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": ["FindingsKey", "Arn"]}
    key = RESOURCES["FindingsKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    by_sid = {s["Sid"]: s for s in key["KeyPolicy"]["Statement"]}
    services = by_sid["AlarmsAndRulesPublishToTheTopic"]
    assert set(_as_list(services["Principal"]["Service"])) == {"cloudwatch.amazonaws.com", "events.amazonaws.com"}
    assert set(_as_list(services["Action"])) == {"kms:GenerateDataKey*", "kms:Decrypt"}
    root = by_sid["AccountAdministersAndDelegatesThroughIam"]
    assert _text(root["Principal"]["AWS"]).endswith(":root")
    alarms = [k for k, v in RESOURCES.items() if v["Type"] == "AWS::CloudWatch::Alarm"]
    assert alarms and all(RESOURCES[a]["Properties"]["AlarmActions"] == [{"Ref": "FindingsTopic"}] for a in alarms)
    for function in FUNCTIONS:
        publishes = [s for s in statements(function) if "sns:Publish" in _as_list(s["Action"])]
        if not publishes:
            continue
        encrypt = [s for s in statements(function) if "kms:GenerateDataKey" in _as_list(s["Action"])]
        assert [_text(r) for s in encrypt for r in _as_list(s["Resource"])] == ["<FindingsKey.Arn>"], function


# -- retry timing, sweeps, home region -------------------------------------------------------------
def _queue_of(function: str) -> str:
    (event,) = RESOURCES[function]["Properties"]["Events"].values()
    return str(event["Properties"]["Queue"]["Fn::GetAtt"][0])


@pytest.mark.parametrize("function", FUNCTIONS)
def test_visibility_timeout_is_at_least_six_times_the_function_timeout(function: str) -> None:
    """AWS's guidance for SQS event sources; and a failed record comes back sooner by ChangeMessageVisibility."""
    timeout = RESOURCES[function]["Properties"]["Timeout"]
    queue = RESOURCES[_queue_of(function)]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert "Timeout" not in TEMPLATE["Globals"]["Function"], "every function sizes its own timeout"
    env = RESOURCES[function]["Properties"]["Environment"]["Variables"]
    assert env["ROLEWARDEN_QUEUE_URL"] == {"Ref": _queue_of(function)}


@pytest.mark.parametrize("function", EVENT_FUNCTIONS)
def test_event_functions_fit_one_batch_and_sweeps_have_their_own_longer_invocation(function: str) -> None:
    sweep = function.replace("Function", "SweepFunction")
    assert RESOURCES[function]["Properties"]["Timeout"] <= 120
    assert RESOURCES[sweep]["Properties"]["Timeout"] > RESOURCES[function]["Properties"]["Timeout"]
    sweep_queue = _queue_of(sweep)
    assert sweep_queue != _queue_of(function)
    rule = RESOURCES[function.replace("Function", "SweepRule")]["Properties"]
    assert "ScheduleExpression" in rule
    assert [t["Arn"] for t in rule["Targets"]] == [{"Fn::GetAtt": [sweep_queue, "Arn"]}], (
        "the schedule feeds sweeps only"
    )


@pytest.mark.parametrize("function", EVENT_FUNCTIONS)
def test_queue_permissions_are_only_on_the_capabilitys_own_queues(function: str) -> None:
    own = {_queue_of(function), _queue_of(function.replace("Function", "SweepFunction"))}
    dlq = RESOURCES[_queue_of(function)]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    for statement in statements(function):
        actions = _as_list(statement["Action"])
        if not any(a.startswith("sqs:") for a in actions):
            continue
        queues = {r["Fn::GetAtt"][0] for r in _as_list(statement["Resource"])}
        if "sqs:ChangeMessageVisibility" in actions:
            assert queues == own, statement["Sid"]
        elif actions == ["sqs:SendMessage"] and statement["Sid"] == "GrantDriftToTheGrantsQueue":
            # grant-policy-drift: compliance hands a drifted role to the grants capability's event queue
            assert function == "RoleComplianceFunction" and queues == {"BucketGrantsQueue"}, statement["Sid"]
        elif actions == ["sqs:SendMessage"]:
            assert queues == {dlq}, statement["Sid"]
        else:
            assert queues == own - {_queue_of(function)}, statement["Sid"]


GLOBAL_PREFIXES = ("BucketGrants", "RoleCompliance", "IamRoleChanges", "BucketTagCalls", "CircuitBreaker")


def test_grants_and_compliance_exist_only_in_the_home_region() -> None:
    for logical_id, resource in RESOURCES.items():
        if logical_id.startswith(GLOBAL_PREFIXES):
            assert resource.get("Condition") == "IsHome", logical_id
        elif logical_id.startswith("ForwardToHome") or logical_id.endswith("ToHomeRule"):
            assert resource.get("Condition") == "IsNotHome", logical_id
        elif logical_id.startswith("CentralBus"):  # issue 14: only in Mode=central (tests/unit/test_member_template.py)
            assert resource.get("Condition") == "IsCentral", logical_id
        else:
            assert "Condition" not in resource or resource["Condition"] == "HasAlarmEmail", logical_id


def test_the_forwarding_role_may_only_put_events_on_the_home_bus() -> None:
    role = RESOURCES["ForwardToHomeRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    ((statement,),) = [p["PolicyDocument"]["Statement"] for p in role["Policies"]]
    assert _as_list(statement["Action"]) == ["events:PutEvents"]
    assert (
        _text(statement["Resource"]) == "arn:${AWS::Partition}:events:${HomeRegion}:${AWS::AccountId}:event-bus/default"
    )
    for rule in ("BucketEventsToHomeRule", "IamEventsToHomeRule"):
        (target,) = RESOURCES[rule]["Properties"]["Targets"]
        assert _text(target["Arn"]) == _text(statement["Resource"])
        assert target["RoleArn"] == {"Fn::GetAtt": ["ForwardToHomeRole", "Arn"]}
    assert (
        RESOURCES["BucketEventsToHomeRule"]["Properties"]["EventPattern"]
        == (RESOURCES["BucketTagCallsRule"]["Properties"]["EventPattern"])
    )


def test_instance_profiles_function_may_change_only_instances_in_its_region_and_account() -> None:
    """Issue 15: the function's EC2 writes are the three association calls and ModifyInstanceMetadataOptions
    (imdsv2: enforce), nothing else, each scoped to instances of the stack's region and account."""
    ec2_writes = [
        (a, s)
        for s in statements("InstanceProfilesFunction")
        for a in _as_list(s["Action"])
        if a.startswith("ec2:") and not a.startswith("ec2:Describe")
    ]
    assert sorted(a for a, _ in ec2_writes) == [
        "ec2:AssociateIamInstanceProfile",
        "ec2:DisassociateIamInstanceProfile",
        "ec2:ModifyInstanceMetadataOptions",
        "ec2:ReplaceIamInstanceProfileAssociation",
    ]
    for _action, statement in ec2_writes:
        assert [_text(r) for r in _as_list(statement["Resource"])] == [
            "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*"
        ]
        assert "Condition" not in statement
    (metadata,) = [s for a, s in ec2_writes if a == "ec2:ModifyInstanceMetadataOptions"]
    assert _as_list(metadata["Action"]) == ["ec2:ModifyInstanceMetadataOptions"]  # exactly that one call
    # no other function may change instance metadata options
    others = [f for f, s in ALL if f != "InstanceProfilesFunction" and "ec2:ModifyInstanceMetadataOptions" in str(s)]
    assert others == []
