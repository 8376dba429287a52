"""The local AWS's token buckets (rwlocal.throttling): sized from EC2's documented table, refilled at
its rate, shared by every caller of the fault proxy, answered with EC2's real RequestLimitExceeded
(HTTP 503) and, for IAM (rates assumed, not published), Throttling (HTTP 400). Time is an injected
clock: nothing here waits or times anything."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from rwlocal import world as w
from rwlocal.hostile import Hostility
from rwlocal.proxy import ChaosProxy
from rwlocal.throttling import (
    EC2_BUCKETS,
    IAM_ASSUMED_BUCKETS,
    Buckets,
    BucketSpec,
    TokenBucket,
    bucket_for,
    floor_seconds,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_refuses_past_its_size_and_refills_at_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(BucketSpec(capacity=100, refill=5), clock)
    assert [bucket.take() for _ in range(100)] == [True] * 100
    assert bucket.take() is False  # the 101st call of a burst is throttled
    clock.now = 1.0  # one second: 5 tokens
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]
    clock.now = 1000.0  # refilled, but never beyond its capacity
    assert bucket.available() == 100


@pytest.mark.parametrize(
    ("service", "operation", "params", "key"),
    [
        ("ec2", "AssociateIamInstanceProfile", {}, "ec2:AssociateIamInstanceProfile"),
        ("ec2", "ReplaceIamInstanceProfileAssociation", {}, "ec2:mutating"),
        ("ec2", "DescribeIamInstanceProfileAssociations", {}, "ec2:non-mutating"),
        ("ec2", "DescribeInstances", {}, "ec2:unfiltered-unpaginated"),
        ("ec2", "DescribeInstances", {"Filter.1.Name": "instance-id"}, "ec2:non-mutating"),
        ("ec2", "DescribeInstances", {"MaxResults": "1000"}, "ec2:non-mutating"),
        ("ec2", "CreateTags", {}, "ec2:CreateTags"),
        ("iam", "GetAccountAuthorizationDetails", {}, "iam:GetAccountAuthorizationDetails"),
        ("iam", "CreatePolicyVersion", {}, "iam:write"),
        ("iam", "GetPolicy", {}, "iam:read"),
        ("s3", "GetBucketTagging", {}, None),
    ],
)
def test_each_request_draws_from_its_documented_bucket(
    service: str, operation: str, params: dict[str, str], key: str | None
) -> None:
    assert bucket_for(service, operation, params) == key


def test_the_table_holds_the_documented_figures_and_names_iam_as_assumed() -> None:
    assert (EC2_BUCKETS["AssociateIamInstanceProfile"].capacity, EC2_BUCKETS["AssociateIamInstanceProfile"].refill) == (
        100,
        5,
    )
    assert (EC2_BUCKETS["unfiltered-unpaginated"].capacity, EC2_BUCKETS["unfiltered-unpaginated"].refill) == (50, 10)
    assert all("assumed" in spec.source for spec in IAM_ASSUMED_BUCKETS.values())
    # the floor of a 1,000-instance burst (issue 13): (1000 - 100) / 5
    assert floor_seconds(1000, EC2_BUCKETS["AssociateIamInstanceProfile"]) == 180


def test_factor_scales_capacity_and_refill() -> None:
    clock = Clock()
    buckets = Buckets(clock, factor=0.1)
    granted = [buckets.admit("ec2", "AssociateIamInstanceProfile") is None for _ in range(11)]
    assert granted == [True] * 10 + [False]


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, config=Config(retries={"total_max_attempts": 1}))


def test_proxy_answers_past_the_bucket_with_ec2s_real_error_shared_by_all_callers(aws: Any) -> None:
    """Two separate clients (as two pollers would be) share one bucket; the 101st association of a burst
    gets RequestLimitExceeded with HTTP 503, and the association did not happen."""
    clock = Clock()
    profile = w.create_profile("web-server")
    ids = w.run_instances(101)
    with ChaosProxy(aws.port, hostility=Hostility(iam_lag=0, ec2_lag=0), clock=clock) as proxy:
        first, second = _client("ec2", proxy.endpoint), _client("ec2", proxy.endpoint)
        for n, instance_id in enumerate(ids[:100]):
            (first if n % 2 else second).associate_iam_instance_profile(
                IamInstanceProfile={"Arn": profile}, InstanceId=instance_id
            )
        with pytest.raises(ClientError) as caught:
            second.associate_iam_instance_profile(IamInstanceProfile={"Arn": profile}, InstanceId=ids[100])
        assert caught.value.response["Error"]["Code"] == "RequestLimitExceeded"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert ids[100] not in w.attached_profiles(ids)
        assert proxy.stats.injected["bucket:ec2:AssociateIamInstanceProfile"] == 1
        clock.now = 0.2  # 5 per second: one token back
        first.associate_iam_instance_profile(IamInstanceProfile={"Arn": profile}, InstanceId=ids[100])
        assert ids[100] in w.attached_profiles(ids)


def test_proxy_throttles_iam_writes_at_the_assumed_rate_with_iams_error(aws: Any) -> None:
    clock = Clock()
    with ChaosProxy(aws.port, hostility=Hostility(iam_lag=0, ec2_lag=0), clock=clock) as proxy:
        iam = _client("iam", proxy.endpoint)
        size = int(IAM_ASSUMED_BUCKETS["write"].capacity)
        for n in range(size):
            iam.create_role(RoleName=f"r{n}", Path="/rolewarden/", AssumeRolePolicyDocument="{}")
        with pytest.raises(ClientError) as caught:
            iam.create_role(RoleName="one-too-many", Path="/rolewarden/", AssumeRolePolicyDocument="{}")
        assert caught.value.response["Error"]["Code"] == "Throttling"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        iam.get_role(RoleName="r0")  # reads draw from another bucket
