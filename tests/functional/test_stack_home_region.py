"""Global resources from one home region (issue 10, defect 6): template.yaml translated and deployed into
moto as a stack whose HomeRegion is another region. It has no grants or compliance functions, queues
or rules, no statement that writes IAM, and it forwards its S3 (and IAM) events to the home region's
default bus with a role that may only put events there. The home stack (HomeRegion empty or its own
region) keeps everything, and its sweeps run in the sweep functions, fed by the sweep queues."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from rwlocal import stack as st
from rwlocal import world as w
from rwlocal.pipeline import Pipeline, fire_schedule, put_events
from tests.functional.helpers import sample

HOME = "eu-west-1"  # moto serves us-east-1: this stack is not the home one
IAM_READS = ("Get", "List", "Simulate", "Generate", "PassRole")
GLOBAL = ("BucketGrants", "RoleCompliance")


def _stack_role_statements() -> list[tuple[str, dict[str, Any]]]:
    iam = boto3.client("iam")
    found = []
    for page in iam.get_paginator("list_roles").paginate():
        for role in page["Roles"]:
            for name in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]:
                document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)["PolicyDocument"]
                document = json.loads(document) if isinstance(document, str) else document
                for statement in document["Statement"]:
                    found.append((role["RoleName"], statement))
    return found


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement.get("Action", [])
    return [action] if isinstance(action, str) else list(action)


def test_a_non_home_stack_has_no_global_capability_and_writes_nothing_to_iam(aws: Any) -> None:
    stack = st.deploy(parameters={"HomeRegion": HOME})
    assert not [r for r in stack.resources if r.startswith(GLOBAL)], "no grants or compliance resources"
    functions = {f["FunctionName"] for f in boto3.client("lambda").list_functions()["Functions"]}
    assert functions == {"rolewarden-instance-profiles-dev", "rolewarden-instance-profiles-sweep-dev"}
    statements = _stack_role_statements()
    assert statements, "the stack's roles were read"
    iam_writes = [
        (role, action)
        for role, statement in statements
        for action in _actions(statement)
        if action.startswith("iam:") and not action.split(":", 1)[1].startswith(IAM_READS)
    ]
    assert iam_writes == []
    env = stack.function_environment("InstanceProfilesFunction")
    assert env["ROLEWARDEN_HOME_REGION"] == HOME
    assert stack.outputs["HomeRegion"] == HOME


@pytest.mark.parametrize("rule", ["BucketEventsToHomeRule", "IamEventsToHomeRule"])
def test_a_non_home_stack_forwards_s3_and_iam_events_to_the_home_bus(aws: Any, rule: str) -> None:
    stack = st.deploy(parameters={"HomeRegion": HOME})
    events = boto3.client("events")
    (target,) = events.list_targets_by_rule(Rule=stack.physical(rule))["Targets"]
    assert target["Arn"] == f"arn:aws:events:{HOME}:123456789012:event-bus/default"
    role_name = target["RoleArn"].rsplit("/", 1)[-1]
    assert role_name == stack.physical("ForwardToHomeRole")
    ((_, statement),) = [(r, s) for r, s in _stack_role_statements() if r == role_name]
    assert _actions(statement) == ["events:PutEvents"]
    assert statement["Resource"] == target["Arn"]
    pattern = json.loads(events.describe_rule(Name=stack.physical(rule))["EventPattern"])
    assert "aws.s3" in json.dumps(pattern) if rule.startswith("Bucket") else pattern["source"] == ["aws.iam"]


def test_a_home_stack_has_every_capability_and_no_forwarding(aws: Any) -> None:
    stack = st.deploy(parameters={"HomeRegion": "us-east-1"})
    for logical_id in ("BucketGrantsFunction", "RoleComplianceSweepFunction", "IamRoleChangesRule"):
        assert logical_id in stack.resources
    assert not [r for r in stack.resources if "ToHome" in r]
    assert stack.function_environment("BucketGrantsFunction")["ROLEWARDEN_HOME_REGION"] == "us-east-1"


def test_the_schedule_feeds_the_sweep_function_not_the_event_function(aws: Any, write_config: Any) -> None:
    config = write_config()
    stack = st.deploy()
    pipeline = Pipeline(stack, env_overrides={"ROLEWARDEN_CONFIG": str(config)})
    w.create_profile("web-server")
    instances = w.run_instances(3, {"rolewarden:profile": "web"})
    fire_schedule(stack, "InstanceProfilesSweepRule")
    assert pipeline.depth("InstanceProfilesQueue") == 0
    assert pipeline.depth("InstanceProfilesSweepQueue") == 1
    pipeline.drain(["InstanceProfilesSweepFunction"])
    assert w.attached_profiles() == dict.fromkeys(instances, "web-server")
    # events still go to the event function's queue
    put_events([sample("ec2-state-running.json", **{"i-0123456789abcdef0": instances[0]})])
    assert pipeline.depth("InstanceProfilesQueue") == 1 and pipeline.depth("InstanceProfilesSweepQueue") == 0
