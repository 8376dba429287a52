"""The chaos oracle's record of grant-policy versions (rwlocal.chaos.GrantLedger): fed by the fault
proxy with every effective IAM write, it knows what each role is granted after each write, so a grant
removed and re-added (a lost grant) or added and removed again counts as a flap; the legitimate
changes the tags call for do not."""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.config import Config

from rwlocal import world as w
from rwlocal.chaos import GrantLedger, World
from rwlocal.proxy import ChaosProxy


def _document(*buckets: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [f"arn:aws:s3:::{b}/*" for b in buckets]}
            ],
        }
    )


def test_a_lost_and_restored_grant_is_one_flap_and_a_revoke_is_none(aws: Any) -> None:
    w.create_role("app")
    ledger = GrantLedger()
    with ChaosProxy(aws.port) as proxy:
        proxy.on_write = ledger
        iam = boto3.client("iam", endpoint_url=proxy.endpoint, config=Config(retries={"total_max_attempts": 1}))
        arn = iam.create_policy(PolicyName="rolewarden-grants-app", Path="/rolewarden/", PolicyDocument=_document("a"))[
            "Policy"
        ]["Arn"]
        iam.attach_role_policy(RoleName="app", PolicyArn=arn)
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=_document("a", "gone"), SetAsDefault=True)
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=_document("b"), SetAsDefault=True)  # a lost
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=_document("a", "b"), SetAsDefault=True)  # a back
    world = World(
        buckets={"a": {"rolewarden:read": "app"}, "b": {"rolewarden:read": "app"}, "gone": {}},
        revoked={"gone": {"rolewarden:read": "app"}},
    )
    assert ledger.granted["app"] == {"a", "b"}
    assert ledger.history[("app", "a")] == [False, True, False, True]
    assert ledger.flaps(world) == {("app", "a"): 1}  # "gone" was granted then revoked: not a flap
    assert ledger.versions_created[arn] == 4


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_hook_check_names_a_hook_released_early_and_one_that_expired() -> None:
    from rwlocal.chaos import check_hooks
    from rwlocal.hostile import HookRegistry

    clock = _Clock()
    held = {"i-early": None, "i-right": "web-server"}
    hooks = HookRegistry(clock, on_complete=lambda hook, result: held[hook.instance_id])
    world = World(instances={i: {"rolewarden:profile": "web"} for i in ("i-early", "i-right", "i-late")})
    for instance_id in world.instances:
        world.hooks[instance_id] = hooks.register(instance_id, heartbeat_timeout=300).token
    params = {"AutoScalingGroupName": "web-asg", "LifecycleHookName": "rolewarden-launch"}
    for instance_id in ("i-early", "i-right"):
        assert (
            hooks.answer(
                "CompleteLifecycleAction", {**params, "InstanceId": instance_id, "LifecycleActionResult": "CONTINUE"}
            )
            is None
        )
    clock.now = 301.0
    hooks.expire_due()
    check = check_hooks(world, hooks, {})
    assert not check.ok
    assert "1 EXPIRED" in check.detail and "i-early released holding None (wanted web-server)" in check.detail
    assert "i-right" not in check.detail
