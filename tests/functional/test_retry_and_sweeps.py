"""Real-AWS timing, through the handlers against moto over HTTP (issue 10, defects 2, 3 and 6):

- a failed record comes back within seconds, with backoff by receive count (ChangeMessageVisibility on
  its receipt handle), not after the queue's visibility timeout; its last receive goes to the DLQ;
- sweeps run in invocations of their own, spend a time budget taken from the Lambda context, and
  continue from a cursor through continuation messages on the sweep queue until done; an event
  function hands a Scheduled Event on instead of sweeping, so a sweep never fails an event record;
- outside the home region the global capabilities write nothing.

The queues are created with the template's own settings (VisibilityTimeout, read from template.yaml).
Time is scaled: the sweep stub advances an injected clock, the Lambda context reports a small
remaining time."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from rolewarden import batch, runtime
from rolewarden.batch import parse_continuation, retry_delay
from rolewarden.capabilities.base import Outcome, Run
from rolewarden.model.targets import SWEEP, Target
from rolewarden.runtime import Handler
from rwlocal import world as w
from rwlocal.faults import Fault, count_calls, inject
from rwlocal.stack import load_template
from tests.functional.helpers import sample

TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]


def _queue(name: str, logical_id: str) -> str:
    """A queue with the template's visibility timeout for ``logical_id``."""
    visibility = RESOURCES[logical_id]["Properties"]["VisibilityTimeout"]
    return str(
        boto3.client("sqs").create_queue(QueueName=name, Attributes={"VisibilityTimeout": str(visibility)})["QueueUrl"]
    )


def _receive(url: str, wait: int = 0) -> list[dict[str, Any]]:
    got = boto3.client("sqs").receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
        WaitTimeSeconds=wait,
    )
    return list(got.get("Messages", []))


def _lambda_event(url: str, messages: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The SQS batch Lambda's poller would build from received messages (real receipt handles)."""
    name = url.rsplit("/", 1)[-1]
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{name}",
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


@dataclass
class Context:
    """Lambda's context object: the remaining time is what the sweep budget is derived from."""

    remaining_ms: int = 300_000
    function_name: str = "test"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "req-1"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def _visibility_calls(calls: Any) -> list[dict[str, Any]]:
    return [p for name, p in calls.params if name == "sqs:ChangeMessageVisibility"]


# ------------------------------------------------------------------------------------ retry timing


@pytest.mark.parametrize(
    ("receive_count", "expected"), [(1, 5), (2, 10), (3, 20), (4, 40), (5, 80), (6, 160), (7, 300), (12, 300)]
)
def test_retry_delay_doubles_by_receive_count_up_to_the_cap(receive_count: int, expected: int) -> None:
    assert retry_delay(receive_count, base=5, cap=300, jitter=0.0) == expected
    assert retry_delay(receive_count, base=5, cap=300, jitter=0.99) == expected + 4


def test_a_failed_record_comes_back_in_seconds_with_backoff(
    aws: Any, write_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the ChangeMessageVisibility the record stays invisible for the queue's 540 s (it was 1800)."""
    write_config()
    url = _queue("ip-events", "InstanceProfilesQueue")
    monkeypatch.setenv("ROLEWARDEN_QUEUE_URL", url)
    monkeypatch.setenv("ROLEWARDEN_RETRY_BASE", "1")
    monkeypatch.setenv("ROLEWARDEN_MAX_RECEIVE", "5")
    w.create_profile("web-server")
    instance = w.run_instance({"rolewarden:profile": "web"})
    boto3.client("sqs").send_message(
        QueueUrl=url, MessageBody=json.dumps(sample("ec2-state-running.json", **{"i-0123456789abcdef0": instance}))
    )
    handler = Handler("instance_profiles")
    handler.random = lambda: 0.0
    throttled = Fault("ec2", "DescribeInstances", "RequestLimitExceeded", "Request limit exceeded.", 503, times=1000)
    (message,) = _receive(url)
    with inject(throttled), count_calls() as calls:
        result = handler(_lambda_event(url, [message]), Context())
    assert result == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    assert _visibility_calls(calls) == [
        {"QueueUrl": url, "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 1}
    ]
    assert _receive(url) == [], "invisible until its retry delay"
    time.sleep(1.5)  # moto's real visibility: the record is back after its 1 s delay, not after 540 s
    (again,) = _receive(url, wait=1)
    assert again["MessageId"] == message["MessageId"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    with inject(throttled), count_calls() as calls:
        handler(_lambda_event(url, [again]), Context())
    assert [p["VisibilityTimeout"] for p in _visibility_calls(calls)] == [2], "backoff by receive count"


def test_the_last_receive_goes_to_the_dlq_not_back_to_the_queue(
    aws: Any, write_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config()
    url = _queue("ip-events", "InstanceProfilesQueue")
    dlq = _queue("ip-dlq", "InstanceProfilesQueue")
    monkeypatch.setenv("ROLEWARDEN_QUEUE_URL", url)
    monkeypatch.setenv("ROLEWARDEN_DLQ_URL", dlq)
    monkeypatch.setenv("ROLEWARDEN_MAX_RECEIVE", "2")
    w.create_profile("web-server")
    instance = w.run_instance({"rolewarden:profile": "web"})
    boto3.client("sqs").send_message(
        QueueUrl=url, MessageBody=json.dumps(sample("ec2-state-running.json", **{"i-0123456789abcdef0": instance}))
    )
    handler = Handler("instance_profiles")
    throttled = Fault("ec2", "DescribeInstances", "RequestLimitExceeded", "Request limit exceeded.", 503, times=1000)
    (message,) = _receive(url)
    message["Attributes"]["ApproximateReceiveCount"] = "2"  # its last allowed receive
    with inject(throttled), count_calls() as calls:
        result = handler(_lambda_event(url, [message]), Context())
    assert result == {"batchItemFailures": []}
    assert _visibility_calls(calls) == []
    (dead,) = _receive(dlq)
    assert json.loads(dead["Body"])["detail"]["instance-id"] == instance


# ------------------------------------------------------------------------------------------- sweeps


@dataclass
class StubSweep:
    """A capability whose sweep handles ``units`` one by one, honouring Run.deadline and Run.cursor.
    Each unit advances the clock by one second (time-scaled)."""

    units: int
    now: list[float] = field(default_factory=lambda: [0.0])
    done: list[int] = field(default_factory=list)
    parts: list[tuple[str | None, float | None]] = field(default_factory=list)
    resources: list[Target] = field(default_factory=list)
    name: str = "instance_profiles"

    def clock(self) -> float:
        return self.now[0]

    def reconcile(self, run: Run, targets: Sequence[Target]) -> dict[Target, Outcome]:
        out: dict[Target, Outcome] = {}
        for target in targets:
            if target != SWEEP:
                self.resources.append(target)
                out[target] = Outcome()
                continue
            self.parts.append((run.cursor, run.deadline))
            index = int(run.cursor) if run.cursor else 0
            while index < self.units:
                if run.budget_spent():
                    out[target] = Outcome("ok", f"stopped at {index}", continuation=str(index))
                    break
                self.done.append(index)
                index += 1
                self.now[0] += 1.0
            else:
                out[target] = Outcome()
        return out


@pytest.fixture
def stub(aws: Any, write_config: Any, monkeypatch: pytest.MonkeyPatch) -> StubSweep:
    write_config()
    capability = StubSweep(units=100)
    monkeypatch.setattr(runtime.capabilities, "get", lambda name: capability)
    return capability


def _sweep_handler(stub: StubSweep) -> Handler:
    handler = Handler("instance_profiles", sweep=True)
    handler.clock = stub.clock
    return handler


def test_a_sweep_larger_than_its_budget_continues_until_done(stub: StubSweep, monkeypatch: pytest.MonkeyPatch) -> None:
    """40 s left and a 10 s margin: 30 units per invocation, so 100 units take 4 parts."""
    w.create_state_table("rw-state")
    monkeypatch.setenv("ROLEWARDEN_TABLE", "rw-state")
    monkeypatch.setenv("ROLEWARDEN_SWEEP_MARGIN", "10")
    url = _queue("ip-sweeps", "InstanceProfilesSweepQueue")
    monkeypatch.setenv("ROLEWARDEN_SWEEP_QUEUE_URL", url)
    monkeypatch.setenv("ROLEWARDEN_QUEUE_URL", url)
    scheduled = sample("scheduled-sweep.json")
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(scheduled))
    handler = _sweep_handler(stub)
    bodies: list[str] = []
    for _ in range(10):
        messages = _receive(url)
        if not messages:
            break
        for message in messages:
            bodies.append(message["Body"])
            result = handler(_lambda_event(url, [message]), Context(remaining_ms=40_000))
            assert result == {"batchItemFailures": []}
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert stub.done == list(range(100)), "every unit once, in order, none skipped"
    assert [cursor for cursor, _ in stub.parts] == [None, "30", "60", "90"]
    assert all(deadline is not None for _, deadline in stub.parts)
    continuations = [parse_continuation(json.loads(b), "instance_profiles") for b in bodies[1:]]
    assert [(c.sweep_id, c.part, c.cursor) for c in continuations if c] == [
        (scheduled["id"], 2, "30"),
        (scheduled["id"], 3, "60"),
        (scheduled["id"], 4, "90"),
    ]
    assert handler.last_sink is not None

    # a redelivered continuation is a duplicate of its part: skipped, and it queues nothing again
    redelivered = {"MessageId": "dup", "ReceiptHandle": "rh-dup", "Body": bodies[2], "Attributes": {}}
    result = handler(_lambda_event(url, [redelivered]), Context(remaining_ms=40_000))
    assert result == {"batchItemFailures": []}
    assert handler.last_sink.counts["DuplicateSweepsSkipped"] == 1
    assert len(stub.parts) == 4 and _receive(url) == []


def test_a_sweep_that_makes_no_progress_is_dead_lettered_not_looped(
    stub: StubSweep, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _queue("ip-sweeps", "InstanceProfilesSweepQueue")
    dlq = _queue("ip-dlq", "InstanceProfilesQueue")
    monkeypatch.setenv("ROLEWARDEN_SWEEP_QUEUE_URL", url)
    monkeypatch.setenv("ROLEWARDEN_DLQ_URL", dlq)
    monkeypatch.setenv("ROLEWARDEN_SWEEP_MARGIN", "10")
    stuck = batch.Continuation("instance_profiles", "sweep-1", 2, "50")
    message = {"MessageId": "m1", "ReceiptHandle": "rh", "Body": stuck.body(), "Attributes": {}}
    handler = _sweep_handler(stub)
    result = handler(_lambda_event(url, [message]), Context(remaining_ms=0))  # no budget at all
    assert result == {"batchItemFailures": []}
    (dead,) = _receive(dlq)
    assert "no progress" in dead["MessageAttributes"]["rolewarden-reason"]["StringValue"]
    assert _receive(url) == [], "no continuation queued"


def test_an_event_function_hands_sweeps_on_and_handles_its_events(
    stub: StubSweep, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Scheduled Event that reaches the event queue is queued for the sweep function: the event
    records of the batch never wait for (or fail with) a sweep."""
    url = _queue("ip-sweeps", "InstanceProfilesSweepQueue")
    monkeypatch.setenv("ROLEWARDEN_SWEEP_QUEUE_URL", url)
    handler = Handler("instance_profiles")
    event = w.as_sqs_event(sample("scheduled-sweep.json"), sample("ec2-state-running.json"))
    assert handler(event, Context()) == {"batchItemFailures": []}
    assert stub.parts == [], "no sweep in the event function"
    assert [t.kind for t in stub.resources] == ["instance"]
    (queued,) = _receive(url)
    assert json.loads(queued["Body"])["detail-type"] == "Scheduled Event"


@pytest.mark.parametrize(
    "body",
    [
        {"rolewarden-continuation": {"capability": "bucket_grants", "sweep_id": "s", "part": 2, "cursor": "x"}},
        {"rolewarden-continuation": {"capability": "instance_profiles", "sweep_id": "s", "part": 1, "cursor": "x"}},
        {"rolewarden-continuation": {"capability": "instance_profiles", "sweep_id": "", "part": 2, "cursor": "x"}},
        {"rolewarden-continuation": {"capability": "instance_profiles", "sweep_id": "s", "part": 2, "cursor": 7}},
        {"rolewarden-continuation": "resume"},
    ],
    ids=["other-capability", "part-1", "no-sweep-id", "cursor-not-text", "not-an-object"],
)
def test_a_malformed_continuation_is_dead_lettered_with_its_reason(
    stub: StubSweep, monkeypatch: pytest.MonkeyPatch, body: dict[str, Any]
) -> None:
    dlq = _queue("ip-dlq", "InstanceProfilesQueue")
    monkeypatch.setenv("ROLEWARDEN_DLQ_URL", dlq)
    message = {"MessageId": "m1", "ReceiptHandle": "rh", "Body": json.dumps(body), "Attributes": {}}
    assert _sweep_handler(stub)(_lambda_event(dlq, [message]), Context()) == {"batchItemFailures": []}
    assert stub.parts == []
    (dead,) = _receive(dlq)
    assert json.loads(dead["Body"]) == body


# ------------------------------------------------------------------------------------- home region


@pytest.mark.parametrize("capability", ["bucket_grants", "role_compliance"])
def test_outside_the_home_region_global_capabilities_write_nothing(
    aws: Any, write_config: Any, monkeypatch: pytest.MonkeyPatch, capability: str
) -> None:
    write_config()
    dlq = _queue("dlq", "InstanceProfilesQueue")
    monkeypatch.setenv("ROLEWARDEN_DLQ_URL", dlq)
    monkeypatch.setenv("ROLEWARDEN_HOME_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    event = w.as_sqs_event(sample("scheduled-sweep.json"))
    with count_calls() as calls:
        result = Handler(capability)(event, Context())
    assert result == {"batchItemFailures": []}
    assert calls.total("iam:") == 0 and calls.total("s3:") == 0
    (dead,) = boto3.client("sqs").receive_message(QueueUrl=dlq, MessageAttributeNames=["All"])["Messages"]
    assert "home region eu-west-1" in dead["MessageAttributes"]["rolewarden-reason"]["StringValue"]


def test_instance_profiles_stay_regional(aws: Any, write_config: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config()
    monkeypatch.setenv("ROLEWARDEN_HOME_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    w.create_profile("web-server")
    instance = w.run_instance({"rolewarden:profile": "web"})
    event = w.as_sqs_event(sample("ec2-state-running.json", **{"i-0123456789abcdef0": instance}))
    assert Handler("instance_profiles")(event, Context()) == {"batchItemFailures": []}
    assert w.attached_profiles() == {instance: "web-server"}


def test_a_failed_record_holding_a_lifecycle_hook_comes_back_within_the_heartbeat_margin(
    aws: Any, write_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The profiles code decides whether to heartbeat a hook assuming its record is back within
    RETRY_MARGIN_SECONDS; the backoff by receive count (here the 5th receive: 80 s) would outlast it and
    the hook's timeout. A record holding a hook is hidden for at most HOOK_RETRY_DELAY, within the margin,
    at every receive count; an event record without a hook keeps the full backoff."""
    from rolewarden.model.instances import RETRY_MARGIN_SECONDS

    write_config()
    url = _queue("ip-events", "InstanceProfilesQueue")
    monkeypatch.setenv("ROLEWARDEN_QUEUE_URL", url)
    monkeypatch.setenv("ROLEWARDEN_MAX_RECEIVE", "20")
    w.create_profile("web-server")
    hooked, plain = w.run_instance({"rolewarden:profile": "web"}), w.run_instance({"rolewarden:profile": "web"})
    sqs = boto3.client("sqs")
    hook = sample("asg-lifecycle-launching.json", **{"i-0123456789abcdef0": hooked})
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(hook))
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(w.state_change_event(plain, "running")))
    messages = _receive(url)
    assert len(messages) == 2
    event = _lambda_event(url, messages)
    for record in event["Records"]:
        record["attributes"]["ApproximateReceiveCount"] = "5"
    handler = Handler("instance_profiles")
    handler.random = lambda: 0.99
    throttled = Fault("ec2", "DescribeInstances", "RequestLimitExceeded", "Request limit exceeded.", 503, times=1000)
    with inject(throttled), count_calls() as calls:
        result = handler(event, Context())
    assert len(result["batchItemFailures"]) == 2
    delays = {p["ReceiptHandle"]: p["VisibilityTimeout"] for p in _visibility_calls(calls)}
    by_body = {json.loads(m["Body"])["detail-type"]: delays[m["ReceiptHandle"]] for m in messages}
    assert by_body[hook["detail-type"]] == batch.HOOK_RETRY_DELAY < RETRY_MARGIN_SECONDS
    assert by_body["EC2 Instance State-change Notification"] == retry_delay(5, base=5, cap=300, jitter=0.99) == 84


@pytest.mark.parametrize(("wait", "retried_inside"), [("20", True), ("0", False)])
def test_a_throttled_target_is_reconciled_again_inside_the_invocation_before_its_record_fails(
    aws: Any, write_config: Any, monkeypatch: pytest.MonkeyPatch, wait: str, retried_inside: bool
) -> None:
    """Throttling that outlasts botocore's own retries (here one attempt) fails the target; the runtime
    pauses (its injected sleep) and reconciles it again inside the invocation, from fresh reads, so the
    record does not fail. With ROLEWARDEN_THROTTLE_WAIT=0 the record fails and SQS retries it."""
    write_config()
    monkeypatch.setenv("ROLEWARDEN_THROTTLE_WAIT", wait)
    monkeypatch.setenv("ROLEWARDEN_MAX_ATTEMPTS", "1")
    from rolewarden.aws import clients

    clients.reset()
    w.create_profile("web-server")
    instance = w.run_instance({"rolewarden:profile": "web"})
    handler = Handler("instance_profiles")
    pauses: list[float] = []
    handler.sleep = pauses.append
    throttled = Fault("ec2", "DescribeInstances", "RequestLimitExceeded", "Request limit exceeded.", 503, times=1)
    event = w.as_sqs_event(sample("ec2-state-running.json", **{"i-0123456789abcdef0": instance}))
    with inject(throttled):
        result = handler(event, Context())
    clients.reset()
    if retried_inside:
        assert result == {"batchItemFailures": []}
        assert pauses == [runtime.THROTTLE_PAUSE]
        assert w.attached_profiles() == {instance: "web-server"}
    else:
        assert len(result["batchItemFailures"]) == 1
        assert pauses == []
        assert w.attached_profiles() == {}
