"""The local AWS's lifecycle hooks (moto implements neither CompleteLifecycleAction nor
RecordLifecycleActionHeartbeat): the fault proxy answers both from a registry of pending hooks, with
Auto Scaling's response and error shapes, and a hook nobody completes ends after its heartbeat timeout
with its default result. Time is an injected clock: nothing here waits."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from rwlocal.proxy import ChaosProxy


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _autoscaling(endpoint: str) -> Any:
    return boto3.client("autoscaling", endpoint_url=endpoint, config=Config(retries={"total_max_attempts": 1}))


def _complete(client: Any, instance_id: str, token: str, result: str = "CONTINUE") -> None:
    client.complete_lifecycle_action(
        AutoScalingGroupName="web-asg",
        LifecycleHookName="rolewarden-launch",
        LifecycleActionToken=token,
        LifecycleActionResult=result,
        InstanceId=instance_id,
    )


def test_complete_answers_once_then_validation_error(aws: Any) -> None:
    clock = Clock()
    with ChaosProxy(aws.port, clock=clock) as proxy:
        hook = proxy.hooks.register("i-0123456789abcdef0", heartbeat_timeout=300)
        client = _autoscaling(proxy.endpoint)
        _complete(client, hook.instance_id, hook.token)
        with pytest.raises(ClientError) as caught:
            _complete(client, hook.instance_id, hook.token)
        assert caught.value.response["Error"]["Code"] == "ValidationError"
        assert "No active Lifecycle Action" in caught.value.response["Error"]["Message"]
        (outcome,) = proxy.hooks.outcomes
        assert (outcome.result, outcome.how) == ("CONTINUE", "completed")


def test_a_hook_not_completed_expires_with_its_default_result(aws: Any) -> None:
    clock = Clock()
    with ChaosProxy(aws.port, clock=clock) as proxy:
        hook = proxy.hooks.register("i-0123456789abcdef0", heartbeat_timeout=300, default_result="ABANDON")
        clock.now = 299.0
        assert proxy.hooks.expire_due() == []
        clock.now = 300.0
        (outcome,) = proxy.hooks.expire_due()
        assert (outcome.instance_id, outcome.result, outcome.how) == (hook.instance_id, "ABANDON", "expired")
        with pytest.raises(ClientError) as caught:  # too late: Auto Scaling has moved on
            _complete(_autoscaling(proxy.endpoint), hook.instance_id, hook.token)
        assert caught.value.response["Error"]["Code"] == "ValidationError"


def test_a_heartbeat_extends_the_wait_by_one_heartbeat_timeout(aws: Any) -> None:
    clock = Clock()
    with ChaosProxy(aws.port, clock=clock) as proxy:
        hook = proxy.hooks.register("i-0123456789abcdef0", heartbeat_timeout=300, default_result="CONTINUE")
        client = _autoscaling(proxy.endpoint)
        clock.now = 250.0
        client.record_lifecycle_action_heartbeat(
            AutoScalingGroupName="web-asg",
            LifecycleHookName="rolewarden-launch",
            LifecycleActionToken=hook.token,
            InstanceId=hook.instance_id,
        )
        clock.now = 500.0  # past the first timeout, inside the extended one
        assert proxy.hooks.expire_due() == []
        _complete(client, hook.instance_id, hook.token)
        (outcome,) = proxy.hooks.outcomes
        assert (outcome.how, outcome.heartbeats) == ("completed", 1)


def test_complete_for_an_unknown_hook_or_bad_result_is_refused(aws: Any) -> None:
    with ChaosProxy(aws.port, clock=Clock()) as proxy:
        hook = proxy.hooks.register("i-0123456789abcdef0")
        client = _autoscaling(proxy.endpoint)
        with pytest.raises(ClientError) as caught:
            _complete(client, "i-0fffffffffffffff0", "00000000-0000-0000-0000-000000000000")
        assert caught.value.response["Error"]["Code"] == "ValidationError"
        with pytest.raises(ClientError) as caught:
            _complete(client, hook.instance_id, hook.token, result="MAYBE")
        assert caught.value.response["Error"]["Code"] == "ValidationError"
        assert hook.token in proxy.hooks.pending  # nothing changed
