"""The local AWS's eventual consistency (rwlocal.hostile, played by the fault proxy): within the lag
window after an IAM write a read may get the answer recorded before the write, after it the fresh
one; DescribeInstances misses an instance just launched (InvalidInstanceID.NotFound by id, absent by
filter). Time is an injected clock: nothing here waits."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from rwlocal import world as w
from rwlocal.hostile import Hostility
from rwlocal.proxy import ChaosProxy


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, config=Config(retries={"total_max_attempts": 1}))


ALLOW = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}


def test_iam_read_is_stale_within_the_lag_window_and_fresh_after(aws: Any) -> None:
    clock = Clock()
    hostility = Hostility(buckets=False, iam_lag=5.0, iam_stale=1.0, ec2_lag=0)
    w.create_role("app")
    with ChaosProxy(aws.port, hostility=hostility, clock=clock) as proxy:
        iam = _client("iam", proxy.endpoint)
        assert iam.list_role_policies(RoleName="app")["PolicyNames"] == []  # recorded before the write
        clock.now = 10.0
        iam.put_role_policy(RoleName="app", PolicyName="p", PolicyDocument=json.dumps(ALLOW))
        clock.now = 12.0  # 2 s after the write: inside the 5 s window
        assert iam.list_role_policies(RoleName="app")["PolicyNames"] == []
        assert proxy.stats.injected["stale:iam:ListRolePolicies"] == 1
        assert boto3.client("iam").list_role_policies(RoleName="app")["PolicyNames"] == ["p"]  # moto itself
        clock.now = 15.0  # the window has passed
        assert iam.list_role_policies(RoleName="app")["PolicyNames"] == ["p"]


def test_a_read_never_seen_before_the_write_is_answered_fresh(aws: Any) -> None:
    clock = Clock()
    w.create_role("app")
    with ChaosProxy(aws.port, hostility=Hostility(buckets=False, iam_stale=1.0, ec2_lag=0), clock=clock) as proxy:
        iam = _client("iam", proxy.endpoint)
        iam.put_role_policy(RoleName="app", PolicyName="p", PolicyDocument=json.dumps(ALLOW))
        assert iam.list_role_policies(RoleName="app")["PolicyNames"] == ["p"]


def test_describe_instances_misses_a_fresh_instance_then_shows_it(aws: Any) -> None:
    clock = Clock()
    (old,) = w.run_instances(1, {"team": "data"})
    with ChaosProxy(aws.port, hostility=Hostility(buckets=False, iam_lag=0, ec2_lag=5.0), clock=clock) as proxy:
        ec2 = _client("ec2", proxy.endpoint)
        (fresh,) = [
            i["InstanceId"] for i in ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"]
        ]
        with pytest.raises(ClientError) as caught:
            ec2.describe_instances(InstanceIds=[fresh, old])
        assert caught.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"
        assert fresh in caught.value.response["Error"]["Message"]
        listed = {
            i["InstanceId"] for r in ec2.describe_instances(MaxResults=100)["Reservations"] for i in r["Instances"]
        }
        assert old in listed and fresh not in listed
        clock.now = 6.0
        (reservation,) = ec2.describe_instances(InstanceIds=[fresh])["Reservations"]
        assert reservation["Instances"][0]["InstanceId"] == fresh


def test_instances_launched_outside_the_proxy_can_be_registered(aws: Any) -> None:
    clock = Clock()
    (instance,) = w.run_instances(1)
    with ChaosProxy(aws.port, hostility=Hostility(buckets=False, iam_lag=0, ec2_lag=5.0), clock=clock) as proxy:
        proxy.launched([instance])
        ec2 = _client("ec2", proxy.endpoint)
        found = ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": [instance]}])["Reservations"]
        assert found == []
        assert proxy.stats.injected["ec2-lag:absent"] == 1


def test_an_answer_is_never_staler_than_the_lag(aws: Any) -> None:
    """A read answered before a write to a role is not given again a minute later just because some other
    IAM write happened a moment ago: the state it shows ended with the first write after it, and that
    write is older than the lag. (Before, any recent write anywhere reopened every old answer, a lag of
    minutes, and the chaos run saw roles remediated twice from reads no AWS endpoint would give.)"""
    clock = Clock()
    hostility = Hostility(buckets=False, iam_lag=5.0, iam_stale=1.0, ec2_lag=0)
    w.create_role("app")
    w.create_role("other")
    with ChaosProxy(aws.port, hostility=hostility, clock=clock) as proxy:
        iam = _client("iam", proxy.endpoint)
        assert iam.list_role_policies(RoleName="app")["PolicyNames"] == []  # recorded at 0
        clock.now = 1.0
        iam.put_role_policy(RoleName="app", PolicyName="p", PolicyDocument=json.dumps(ALLOW))
        clock.now = 60.0
        iam.put_role_policy(RoleName="other", PolicyName="q", PolicyDocument=json.dumps(ALLOW))
        clock.now = 61.0  # inside the window of the write to "other", a minute after the one to "app"
        assert iam.list_role_policies(RoleName="app")["PolicyNames"] == ["p"]
        assert proxy.stats.injected["stale:iam:ListRolePolicies"] == 0
