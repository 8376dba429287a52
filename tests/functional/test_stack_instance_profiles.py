"""The deployed stack end to end: the template's own EventBridge rules route real-shaped events to
the queue, and the queue feeds the real handler as Lambda's SQS event source would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest

from rwlocal import stack as st
from rwlocal import world as w
from rwlocal.pipeline import Pipeline, fire_schedule, put_events
from tests.functional.helpers import sample

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def deployed(aws: Any, write_config: Any) -> tuple[st.Stack, Pipeline]:
    config = write_config()
    stack = st.deploy()
    return stack, Pipeline(stack, env_overrides={"ROLEWARDEN_CONFIG": str(config)})


def test_every_trigger_is_routed_by_the_template(deployed: tuple[st.Stack, Pipeline]) -> None:
    _stack, pipeline = deployed
    w.create_profile("web-server")
    files = [
        "ec2-state-running.json",
        "ec2-state-pending.json",
        "asg-launch-successful.json",
        "tag-change-instance.json",
        "cloudtrail-ec2-createtags.json",
    ]
    instances = w.run_instances(len(files), {"rolewarden:profile": "web"})
    put_events(
        sample(name, **{"i-0123456789abcdef0": instance}) for name, instance in zip(files, instances, strict=True)
    )
    stats = pipeline.drain(["InstanceProfilesFunction"])
    assert stats.records == len(files)
    assert w.attached_profiles() == dict.fromkeys(instances, "web-server")
    assert pipeline.depth("InstanceProfilesQueue") == 0


def test_events_the_rules_do_not_match_never_reach_the_queue(deployed: tuple[st.Stack, Pipeline]) -> None:
    _stack, pipeline = deployed
    stopped = sample("ec2-state-running.json")
    stopped["detail"]["state"] = "stopped"
    other_call = sample("cloudtrail-ec2-createtags.json")
    other_call["detail"]["eventName"] = "RunInstances"
    put_events([stopped, other_call])
    assert pipeline.depth("InstanceProfilesQueue") == 0


def test_scheduled_sweep_through_the_queue(deployed: tuple[st.Stack, Pipeline]) -> None:
    stack, pipeline = deployed
    w.create_profile("web-server")
    instances = w.run_instances(3, {"rolewarden:profile": "web"})
    fire_schedule(stack, "InstanceProfilesSweepRule")
    pipeline.drain(["InstanceProfilesFunction", "InstanceProfilesSweepFunction"])
    assert w.attached_profiles() == dict.fromkeys(instances, "web-server")


def test_malformed_event_lands_in_the_dlq_with_its_reason(deployed: tuple[st.Stack, Pipeline]) -> None:
    _stack, pipeline = deployed
    bad = sample("ec2-state-running.json")
    bad["detail"]["instance-id"] = "not-an-instance"
    put_events([bad])
    pipeline.drain(["InstanceProfilesFunction"])
    (message,) = pipeline.dlq_messages("InstanceProfilesFunction")
    assert "not an instance id" in message["MessageAttributes"]["rolewarden-reason"]["StringValue"]
    assert pipeline.depth("InstanceProfilesQueue") == 0


def test_a_record_that_keeps_failing_is_redriven_to_the_dlq(deployed: tuple[st.Stack, Pipeline]) -> None:
    """With the handler crashing (no reason can be attached), SQS's redrive policy from the template
    moves the message to the DLQ after MaxReceiveCount receives: nothing is lost."""
    stack, pipeline = deployed
    consumer = pipeline.consumers["InstanceProfilesFunction"]

    def crash(event: Any, context: Any) -> Any:
        raise RuntimeError("boom")

    consumer._module = type("M", (), {"lambda_handler": staticmethod(crash)})
    put_events([sample("ec2-state-running.json")])
    pipeline.drain(["InstanceProfilesFunction"], max_batches=20)
    assert pipeline.depth("InstanceProfilesQueue") == 0
    assert len(pipeline.dlq_messages("InstanceProfilesFunction")) == 1
    max_receive = int(stack.template["Parameters"]["MaxReceiveCount"]["Default"])
    assert pipeline.stats.invocations == max_receive


def test_function_environment_comes_from_the_template(deployed: tuple[st.Stack, Pipeline]) -> None:
    stack, _ = deployed
    env = stack.function_environment("InstanceProfilesFunction")
    assert env["ROLEWARDEN_DLQ_URL"].endswith("rolewarden-instance-profiles-dlq-dev")
    assert env["ROLEWARDEN_MANAGED_PATH"] == "/rolewarden/"
    assert env["ROLEWARDEN_CONFIG"] == "/opt/rolewarden.yaml"
    assert boto3.client("sqs").get_queue_attributes(
        QueueUrl=stack.physical("InstanceProfilesQueue"), AttributeNames=["RedrivePolicy"]
    )["Attributes"]["RedrivePolicy"]
