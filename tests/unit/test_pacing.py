"""The client-side pacing of throttled writes (rolewarden.aws.pacing), on an injected clock: no test
sleeps or asserts on elapsed time."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
import yaml
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from rolewarden.aws import pacing
from rolewarden.aws.errors import THROTTLING_CODES
from rolewarden.aws.pacing import Pacer, Pacing, Rate, RateLimiter, bucket_key
from rolewarden.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]


class FakeTime:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_full_limiter_lets_its_capacity_through_without_waiting() -> None:
    t = FakeTime()
    limiter = RateLimiter(20, 1, t.clock, t.sleep)
    assert [limiter.acquire() for _ in range(20)] == [0.0] * 20
    assert t.slept == []


def test_past_the_capacity_calls_are_spaced_at_the_refill_rate() -> None:
    t = FakeTime()
    limiter = RateLimiter(2, 4, t.clock, t.sleep)  # 2 at once, then one every 0.25 s
    for _ in range(2 + 8):
        limiter.acquire()
    assert t.slept == pytest.approx([0.25] * 8)
    assert t.now - 100.0 == pytest.approx(8 / 4)  # the floor: (N - capacity) / refill
    assert limiter.waited == pytest.approx(2.0)


def test_idle_time_refills_the_limiter_up_to_its_capacity_only() -> None:
    t = FakeTime()
    limiter = RateLimiter(3, 1, t.clock, t.sleep)
    for _ in range(3):
        limiter.acquire()
    t.now += 1000  # a long quiet spell refills 3 tokens, not 1,000
    for _ in range(3):
        assert limiter.acquire() == 0.0
    assert limiter.acquire() == pytest.approx(1.0)


def test_concurrent_callers_queue_in_order_by_reserving_tokens_ahead() -> None:
    t = FakeTime()
    limiter = RateLimiter(1, 2, t.clock, lambda seconds: None)  # nobody sleeps: the clock stands still
    waits = [limiter.acquire() for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.5, 1.0, 1.5])  # each later caller is due half a second later


def test_a_wait_beyond_the_allowed_one_takes_nothing_and_raises() -> None:
    t = FakeTime()
    limiter = RateLimiter(1, 1, t.clock, lambda seconds: None)
    limiter.acquire()
    limiter.acquire(max_wait=1.0)  # due in 1 s: allowed
    with pytest.raises(TimeoutError):
        limiter.acquire(max_wait=1.5)  # due in 2 s
    assert limiter.acquire(max_wait=2.0) == pytest.approx(2.0)  # the refused call reserved nothing


def test_each_container_gets_its_share_of_the_account_bucket() -> None:
    settings = Pacing(containers=5)
    assert settings.share(Rate(100, 5)) == Rate(20, 1)
    assert Pacing(containers=2, factor=3).share(Rate(100, 5)) == Rate(150, 7.5)
    t = FakeTime()
    pacer = Pacer(settings, t.clock, t.sleep)
    for _ in range(20 + 10):
        pacer.pace("ec2", "AssociateIamInstanceProfile")
    assert t.now - 100.0 == pytest.approx(10.0)  # 1/s per container: 5 containers together make 5/s


@pytest.mark.parametrize(
    ("service", "operation", "key"),
    [
        ("ec2", "AssociateIamInstanceProfile", "ec2:AssociateIamInstanceProfile"),
        ("ec2", "ReplaceIamInstanceProfileAssociation", "ec2:mutating"),
        ("ec2", "DescribeInstances", None),
        ("iam", "CreatePolicyVersion", "iam:write"),
        ("iam", "GetRole", None),
        ("s3", "PutBucketPolicy", None),
    ],
)
def test_writes_are_paced_by_their_bucket_and_reads_are_not(service: str, operation: str, key: str | None) -> None:
    assert bucket_key(service, operation) == key


def test_settings_come_from_the_environment_and_refuse_nonsense() -> None:
    assert Pacing.of(Settings.from_env({})) == Pacing(True, 1, 1.0, 30.0)
    env = {
        "ROLEWARDEN_PACING": "off",
        "ROLEWARDEN_PACE_CONTAINERS": "5",
        "ROLEWARDEN_PACE_FACTOR": "2",
        "ROLEWARDEN_PACE_MAX_WAIT": "10",
    }
    assert Pacing.of(Settings.from_env(env)) == Pacing(False, 5, 2.0, 10.0)
    for bad in ({"ROLEWARDEN_PACE_CONTAINERS": "0"}, {"ROLEWARDEN_PACING": "maybe"}, {"ROLEWARDEN_PACE_FACTOR": "0"}):
        with pytest.raises(SettingsError, match=next(iter(bad))):
            Settings.from_env(bad)


def test_pacing_off_never_waits() -> None:
    t = FakeTime()
    pacer = Pacer(Pacing(enabled=False), t.clock, t.sleep)
    for _ in range(500):
        pacer.pace("ec2", "AssociateIamInstanceProfile")
    assert t.slept == []


def test_a_too_long_wait_fails_the_call_as_throttling_before_anything_is_sent() -> None:
    """The hook runs in botocore's before-send event of a real client: the call that would wait past
    the allowed wait fails with RequestLimitExceeded (RoleWarden's throttling class), and the stub shows
    that nothing was sent for it."""
    t = FakeTime()
    pacer = Pacer(Pacing(containers=100, max_wait=5), t.clock, lambda seconds: None)  # 1 token, 0.05/s
    client = boto3.client("ec2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    client.meta.events.register("before-send.ec2", pacer.hook)
    sent: list[str] = []

    class Raw:
        def stream(self, **_: object) -> object:
            yield b"<AssociateIamInstanceProfileResponse/>"

    def answer(request: object = None, **_: object) -> AWSResponse:
        sent.append("AssociateIamInstanceProfile")
        return AWSResponse("https://ec2", 200, {}, Raw())

    client.meta.events.register("before-send.ec2", answer)  # after the pacer: plays the endpoint
    params = {"IamInstanceProfile": {"Name": "web"}, "InstanceId": "i-0123456789abcdef0"}
    client.associate_iam_instance_profile(**params)  # the one token of this container's share
    with pytest.raises(ClientError) as raised:
        client.associate_iam_instance_profile(**params)  # next token due in 20 s > 5 s
    assert sent == ["AssociateIamInstanceProfile"]  # the refused call was never sent
    assert raised.value.response["Error"]["Code"] in THROTTLING_CODES


def test_the_template_passes_each_event_source_its_maximum_concurrency() -> None:
    """One source of truth: ROLEWARDEN_PACE_CONTAINERS beside ScalingConfig.MaximumConcurrency."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)
    checked = 0
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] != "SQS":
                continue
            env = resource["Properties"].get("Environment", {}).get("Variables", {})
            concurrency = event["Properties"]["ScalingConfig"]["MaximumConcurrency"]
            assert int(env.get("ROLEWARDEN_PACE_CONTAINERS", "0")) == concurrency, logical_id
            checked += 1
    assert checked >= 6


def test_reset_forgets_the_containers_limiters() -> None:
    first = pacing.pacer()
    pacing.reset()
    assert pacing.pacer() is not first
