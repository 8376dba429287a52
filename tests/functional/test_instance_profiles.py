"""The instance-profile handler against the moto server over HTTP, with real-shaped events."""

from __future__ import annotations

import json
import os
from typing import Any

import boto3
import pytest

from rwlocal import world as w
from rwlocal.faults import Fault, count_calls, inject, ok_response
from tests.functional.helpers import ec2_writes, invoke, load_app, profiles_app, running, sample, sink_of

PROPAGATION_MESSAGE = (
    "Value (web-server) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"
)


@pytest.fixture
def app(aws: Any, write_config: Any) -> Any:
    return profiles_app(write_config)


@pytest.fixture
def profiles(aws: Any) -> dict[str, str]:
    return {
        "web-server": w.create_profile("web-server"),
        "data-worker": w.create_profile("data-worker", role="data", role_path="/rolewarden/data/"),
        "other": w.create_profile("other"),
        "break-glass-admin": w.create_profile("break-glass-admin", role="admin-role", role_path="/"),
    }


# -- the basic verdicts --------------------------------------------------------------------------
def test_associates_the_profile_the_tags_call_for(app: Any, profiles: dict[str, str]) -> None:
    web = w.run_instance({"rolewarden:profile": "web"})
    data = w.run_instance({"team": "data", "env": "staging"})
    with count_calls() as calls:
        result = invoke(app, w.as_sqs_event(running(web), running(data)))
    assert result == {"batchItemFailures": []}
    assert w.attached_profiles() == {web: "web-server", data: "data-worker"}
    assert sink_of(app).counts["Attached"] == 2
    # batched reads: one DescribeInstances for the whole batch, no association read was needed
    assert calls.calls["ec2:DescribeInstances"] == 1
    assert calls.calls["ec2:DescribeIamInstanceProfileAssociations"] == 0
    assert ec2_writes(calls) == {"ec2:AssociateIamInstanceProfile": 2}


def test_desired_profile_attached_means_no_write(app: Any, profiles: dict[str, str]) -> None:
    web = w.run_instance({"rolewarden:profile": "web"}, profile_arn=profiles["web-server"])
    with count_calls() as calls:
        invoke(app, w.as_sqs_event(running(web)))
    assert ec2_writes(calls) == {}
    assert w.attached_profiles() == {web: "web-server"}


def test_replaces_a_wrong_profile_on_a_running_instance(app: Any, profiles: dict[str, str]) -> None:
    web = w.run_instance({"rolewarden:profile": "web"}, profile_arn=profiles["other"])
    with count_calls() as calls:
        invoke(app, w.as_sqs_event(running(web)))
    assert w.attached_profiles() == {web: "web-server"}
    assert ec2_writes(calls) == {"ec2:ReplaceIamInstanceProfileAssociation": 1}
    assert sink_of(app).counts["Replaced"] == 1
    # a second delivery converges without a write, although moto's DescribeInstances still shows
    # the old profile after Replace (aws-notes §7.3): the association read is the source of truth
    with count_calls() as again:
        invoke(app, w.as_sqs_event(running(web)))
    assert ec2_writes(again) == {}


def test_stopped_instance_is_disassociated_then_associated(app: Any, profiles: dict[str, str]) -> None:
    web = w.run_instance({"rolewarden:profile": "web"}, profile_arn=profiles["other"])
    boto3.client("ec2").stop_instances(InstanceIds=[web])
    with count_calls() as calls:
        invoke(app, w.as_sqs_event(w.sweep_event()))
    assert w.attached_profiles() == {web: "web-server"}
    assert ec2_writes(calls) == {"ec2:DisassociateIamInstanceProfile": 1, "ec2:AssociateIamInstanceProfile": 1}


def test_no_matching_rule_leaves_the_instance_alone(app: Any, profiles: dict[str, str]) -> None:
    plain = w.run_instance({"team": "data", "env": "dev"})
    kept = w.run_instance({"team": "web"}, profile_arn=profiles["other"])
    with count_calls() as calls:
        invoke(app, w.as_sqs_event(running(plain), running(kept)))
    assert ec2_writes(calls) == {}
    assert w.attached_profiles() == {kept: "other"}


def test_default_profile_for_unmatched_instances(aws: Any, write_config: Any, profiles: dict[str, str]) -> None:
    write_config(instance_profiles={"default": "other"})
    app = load_app("instance_profiles")
    plain = w.run_instance({"team": "nobody"})
    invoke(app, w.as_sqs_event(running(plain)))
    assert w.attached_profiles() == {plain: "other"}


def test_profile_outside_managed_path_is_refused(app: Any, profiles: dict[str, str]) -> None:
    admin = w.run_instance({"rolewarden:profile": "admin"})
    ghost = w.run_instance({"rolewarden:profile": "ghost"})
    with count_calls() as calls:
        result = invoke(app, w.as_sqs_event(running(admin), running(ghost)))
    assert result == {"batchItemFailures": []}  # a refusal is final, not retried
    assert w.attached_profiles() == {}
    assert ec2_writes(calls) == {}
    sink = sink_of(app)
    assert sink.counts["Refused"] == 2
    by_resource = {f.resource: f for f in sink.findings}
    assert "outside the managed path" in by_resource[admin].message
    assert by_resource[admin].details["tags"] == {"rolewarden:profile": "admin"}
    assert by_resource[admin].details["profile"] == "break-glass-admin"
    assert "does not exist" in by_resource[ghost].message


def test_report_mode_logs_a_mismatch_and_changes_nothing(aws: Any, write_config: Any, profiles: dict[str, str]) -> None:
    write_config(instance_profiles={"on_mismatch": "report"})
    app = load_app("instance_profiles")
    web = w.run_instance({"rolewarden:profile": "web"}, profile_arn=profiles["other"])
    fresh = w.run_instance({"rolewarden:profile": "web"})
    invoke(app, w.as_sqs_event(running(web), running(fresh)))
    assert w.attached_profiles() == {web: "other", fresh: "web-server"}  # report covers mismatches only
    # (imdsv2: report, the default, also names both instances: they answer IMDSv1; see test_imdsv2.py)
    assert [f.rule for f in sink_of(app).findings if not f.rule.startswith("imds")] == ["profile-mismatch"]


def test_dry_run_plans_and_writes_nothing(aws: Any, write_config: Any, profiles: dict[str, str]) -> None:
    write_config(dry_run=True)
    app = load_app("instance_profiles")
    web = w.run_instance({"rolewarden:profile": "web"})
    wrong = w.run_instance({"rolewarden:profile": "web"}, profile_arn=profiles["other"])
    with count_calls() as calls:
        invoke(app, w.as_sqs_event(running(web), running(wrong)))
    assert ec2_writes(calls) == {}
    assert w.attached_profiles() == {wrong: "other"}
    planned = [r for r in sink_of(app).records if r["message"].startswith("DRY RUN")]
    assert {p["resource"] for p in planned} == {web, wrong}


def test_stack_dry_run_parameter_overrides_config(
    aws: Any, write_config: Any, profiles: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config()
    monkeypatch.setenv("ROLEWARDEN_DRY_RUN", "true")
    app = load_app("instance_profiles")
    web = w.run_instance({"rolewarden:profile": "web"})
    invoke(app, w.as_sqs_event(running(web)))
    assert w.attached_profiles() == {}


def test_terminated_and_unknown_instances_are_skipped(app: Any, profiles: dict[str, str]) -> None:
    gone = w.run_instance({"rolewarden:profile": "web"})
    boto3.client("ec2").terminate_instances(InstanceIds=[gone])
    result = invoke(app, w.as_sqs_event(running(gone), running("i-0000000000000dead")))
    assert result == {"batchItemFailures": []}  # never retried
    assert w.attached_profiles() == {}
    verdicts = {r.get("resource"): r.get("verdict") for r in sink_of(app).records if "verdict" in r}
    assert verdicts == {gone: "skip", "i-0000000000000dead": "skip"}


def test_duplicate_delivery_writes_once(app: Any, profiles: dict[str, str]) -> None:
    web = w.run_instance({"rolewarden:profile": "web"})
    event = running(web)
    with count_calls() as calls:
        invoke(app, w.as_sqs_event(event, event, w.asg_launch_event(web)))
        invoke(app, w.as_sqs_event(event))
    assert ec2_writes(calls) == {"ec2:AssociateIamInstanceProfile": 1}
    assert w.attached_profiles() == {web: "web-server"}


# -- every trigger ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "event_file",
    [
        "ec2-state-running.json",
        "asg-launch-successful.json",
        "tag-change-instance.json",
        "cloudtrail-ec2-createtags.json",
    ],
)
def test_each_trigger_attaches(app: Any, profiles: dict[str, str], event_file: str) -> None:
    web = w.run_instance({"rolewarden:profile": "web"})
    event = sample(event_file, **{"i-0123456789abcdef0": web})
    result = invoke(app, {"Records": w.as_sqs_event(event)["Records"]})
    assert result == {"batchItemFailures": []}
    assert w.attached_profiles() == {web: "web-server"}


def test_tag_removed_leaves_profile_and_tag_added_replaces(app: Any, profiles: dict[str, str]) -> None:
    web = w.run_instance({"rolewarden:profile": "web"}, profile_arn=profiles["web-server"])
    ec2 = boto3.client("ec2")
    ec2.delete_tags(Resources=[web], Tags=[{"Key": "rolewarden:profile"}])
    invoke(app, w.as_sqs_event(sample("cloudtrail-ec2-deletetags.json", **{"i-0123456789abcdef0": web})))
    assert w.attached_profiles() == {web: "web-server"}  # no rule and default null: left alone
    ec2.create_tags(Resources=[web], Tags=[{"Key": "team", "Value": "data"}, {"Key": "env", "Value": "prod"}])
    invoke(app, w.as_sqs_event(w.tag_change_event(web, {"team": "data", "env": "prod"})))
    assert w.attached_profiles() == {web: "data-worker"}


def test_event_copy_of_tags_is_not_trusted(app: Any, profiles: dict[str, str]) -> None:
    """The event claims the admin tag; the instance really has the web tag. RoleWarden re-reads."""
    web = w.run_instance({"rolewarden:profile": "web"})
    invoke(app, w.as_sqs_event(w.tag_change_event(web, {"rolewarden:profile": "admin"})))
    assert w.attached_profiles() == {web: "web-server"}


def test_sweep_covers_pending_running_and_stopped(app: Any, profiles: dict[str, str]) -> None:
    a, b = w.run_instances(2, {"rolewarden:profile": "web"})
    c = w.run_instance({"team": "data", "env": "prod"}, profile_arn=profiles["other"])
    boto3.client("ec2").stop_instances(InstanceIds=[b])
    with count_calls() as calls:
        invoke(app, w.as_sqs_event(sample("scheduled-sweep.json")))
    assert w.attached_profiles() == {a: "web-server", b: "web-server", c: "data-worker"}
    assert calls.calls["ec2:DescribeInstances"] == 1


def test_raw_eventbridge_event_takes_the_same_path(app: Any, profiles: dict[str, str]) -> None:
    web = w.run_instance({"rolewarden:profile": "web"})
    result = invoke(app, sample("ec2-state-running.json", **{"i-0123456789abcdef0": web}))
    assert result["failed"] == 0 and result["targets"] == 1
    assert w.attached_profiles() == {web: "web-server"}


# -- lifecycle hooks (moto lacks CompleteLifecycleAction) ----------------------------------------
def test_lifecycle_hook_is_completed_after_attaching(app: Any, profiles: dict[str, str]) -> None:
    """moto does not implement CompleteLifecycleAction: the call is answered at the botocore level
    (before-send) with Auto Scaling's empty success document, and its parameters are checked."""
    web = w.run_instance({"rolewarden:profile": "web"})
    order: list[str] = []
    complete = Fault(
        "auto-scaling",
        "CompleteLifecycleAction",
        times=10,
        respond=lambda _: (order.append("complete"), ok_response("autoscaling", "CompleteLifecycleAction"))[1],
    )
    with inject(complete), count_calls() as calls:
        result = invoke(app, w.as_sqs_event(sample("asg-lifecycle-launching.json", **{"i-0123456789abcdef0": web})))
    assert result == {"batchItemFailures": []}
    assert w.attached_profiles() == {web: "web-server"}
    assert complete.seen == 1
    (params,) = [p for name, p in calls.params if name == "autoscaling:CompleteLifecycleAction"]
    assert params == {
        "AutoScalingGroupName": "web-asg",
        "LifecycleHookName": "rolewarden-launch",
        "LifecycleActionToken": "87654321-4321-4321-4321-210987654321",
        "LifecycleActionResult": "CONTINUE",
        "InstanceId": web,
    }
    names = [name for name, _ in calls.params]
    assert names.index("ec2:AssociateIamInstanceProfile") < names.index("autoscaling:CompleteLifecycleAction")


def test_lifecycle_hook_waits_when_the_attach_fails(app: Any, profiles: dict[str, str]) -> None:
    web = w.run_instance({"rolewarden:profile": "web"})
    throttle = Fault(
        "ec2", "AssociateIamInstanceProfile", "RequestLimitExceeded", "Request limit exceeded.", status=503, times=100
    )
    complete = Fault(
        "auto-scaling",
        "CompleteLifecycleAction",
        times=10,
        respond=lambda _: ok_response("autoscaling", "CompleteLifecycleAction"),
    )
    heartbeat = Fault(
        "auto-scaling",
        "RecordLifecycleActionHeartbeat",
        times=10,
        respond=lambda _: ok_response("autoscaling", "RecordLifecycleActionHeartbeat"),
    )
    with inject(throttle, complete, heartbeat):
        result = invoke(app, w.as_sqs_event(sample("asg-lifecycle-launching.json", **{"i-0123456789abcdef0": web})))
    assert result == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    assert complete.seen == 0  # not released without its profile; the redelivery completes it
    # the sample event is old, so the retry could outlast the hook's timeout: it is kept alive
    assert heartbeat.seen == 1


# -- failures, retries and the DLQ ----------------------------------------------------------------
def test_eventual_consistency_is_retried_inside_the_invocation(
    app: Any, profiles: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto cannot model IAM propagation: the first two Associate calls get EC2's real answer for a
    profile it cannot see yet (InvalidParameterValue, 'Invalid IAM Instance Profile name')."""
    monkeypatch.setenv("ROLEWARDEN_PROPAGATION_WAIT", "30")
    sleeps: list[float] = []
    app.lambda_handler.handler.sleep = sleeps.append
    web = w.run_instance({"rolewarden:profile": "web"})
    fault = Fault("ec2", "AssociateIamInstanceProfile", "InvalidParameterValue", PROPAGATION_MESSAGE, times=2)
    with inject(fault):
        result = invoke(app, w.as_sqs_event(running(web)))
    assert result == {"batchItemFailures": []}
    assert fault.seen == 2
    assert sleeps == [1.0, 2.0]  # exponential backoff
    assert w.attached_profiles() == {web: "web-server"}


def test_eventual_consistency_past_the_budget_fails_the_record_for_redelivery(
    app: Any, profiles: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROLEWARDEN_PROPAGATION_WAIT", "6")
    sleeps: list[float] = []
    app.lambda_handler.handler.sleep = sleeps.append
    web = w.run_instance({"rolewarden:profile": "web"})
    other = w.run_instance({"team": "data", "env": "prod"})
    fault = Fault(
        "ec2", "AssociateIamInstanceProfile", "InvalidParameterValue", PROPAGATION_MESSAGE, times=4, body_contains=web
    )
    with inject(fault):
        result = invoke(app, w.as_sqs_event(running(web), running(other)))
    # the web instance used up its budget; the second record of the batch went through
    assert result == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    assert sum(sleeps) >= 6
    assert w.attached_profiles() == {other: "data-worker"}
    invoke(app, w.as_sqs_event(running(web)))  # the redelivery
    assert w.attached_profiles() == {web: "web-server", other: "data-worker"}


def test_throttling_is_retried_by_botocore(app: Any, profiles: dict[str, str]) -> None:
    web = w.run_instance({"rolewarden:profile": "web"})
    fault = Fault("ec2", "DescribeInstances", "RequestLimitExceeded", "Request limit exceeded.", status=503, times=2)
    with inject(fault):
        result = invoke(app, w.as_sqs_event(running(web)))
    assert result == {"batchItemFailures": []}
    assert fault.seen == 2
    assert w.attached_profiles() == {web: "web-server"}


def test_persistent_throttling_fails_the_batch_and_changes_nothing(app: Any, profiles: dict[str, str]) -> None:
    web = w.run_instance({"rolewarden:profile": "web"})
    fault = Fault("iam", "GetInstanceProfile", "Throttling", "Rate exceeded", times=1000)
    with inject(fault):
        result = invoke(app, w.as_sqs_event(running(web)))
    assert result == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    assert fault.seen == 6  # botocore standard mode: ROLEWARDEN_MAX_ATTEMPTS attempts
    assert w.attached_profiles() == {}


def test_malformed_record_fails_alone_and_reaches_the_dlq_with_its_reason(
    app: Any, profiles: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName="ip-dlq")["QueueUrl"]
    monkeypatch.setenv("ROLEWARDEN_DLQ_URL", dlq)
    web = w.run_instance({"rolewarden:profile": "web"})
    bad_detail = {**running(web), "detail": {"instance-id": 12}}
    event = w.as_sqs_event(running(web), "{not json", bad_detail)
    result = invoke(app, event)
    assert result == {"batchItemFailures": []}  # dead-lettered with a reason, so acknowledged
    assert w.attached_profiles() == {web: "web-server"}  # the valid record was not held back
    messages = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"])["Messages"]
    reasons = sorted(m["MessageAttributes"]["rolewarden-reason"]["StringValue"] for m in messages)
    assert len(reasons) == 2
    assert "not JSON" in reasons[1] or "not JSON" in reasons[0]
    assert any("instance-id" in r for r in reasons)
    assert {m["Body"] for m in messages} >= {"{not json"}


def test_malformed_record_without_a_dlq_is_a_batch_item_failure(app: Any, profiles: dict[str, str]) -> None:
    web = w.run_instance({"rolewarden:profile": "web"})
    result = invoke(app, w.as_sqs_event(running(web), "[]"))
    assert result == {"batchItemFailures": [{"itemIdentifier": "msg-1"}]}
    assert w.attached_profiles() == {web: "web-server"}


def test_last_receive_goes_to_the_dlq_with_its_reason(
    app: Any, profiles: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName="ip-dlq-2")["QueueUrl"]
    monkeypatch.setenv("ROLEWARDEN_DLQ_URL", dlq)
    monkeypatch.setenv("ROLEWARDEN_MAX_RECEIVE", "3")
    web = w.run_instance({"rolewarden:profile": "web"})
    fault = Fault("ec2", "AssociateIamInstanceProfile", "UnauthorizedOperation", "You are not authorized", times=100)
    with inject(fault):
        first = invoke(app, w.as_sqs_event(running(web), receive_count=1))
        last = invoke(app, w.as_sqs_event(running(web), receive_count=3))
    assert first == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    assert last == {"batchItemFailures": []}
    (message,) = sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"])["Messages"]
    assert "UnauthorizedOperation" in message["MessageAttributes"]["rolewarden-reason"]["StringValue"]
    assert json.loads(message["Body"])["detail"]["instance-id"] == web


def test_an_association_that_appeared_meanwhile_is_re_read(
    app: Any, profiles: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """DescribeInstances showed no profile, but one was attached before the write: EC2 answers
    IncorrectState; RoleWarden reads the association and replaces it. The race is staged by
    attaching 'other' right after RoleWarden's read."""
    from rolewarden.aws import profiles as rw_ec2

    web = w.run_instance({"rolewarden:profile": "web"})
    real_describe = rw_ec2.describe_instances

    def describe_then_race(ids: Any) -> Any:
        result = real_describe(ids)
        boto3.client("ec2").associate_iam_instance_profile(
            IamInstanceProfile={"Arn": profiles["other"]}, InstanceId=web
        )
        return result

    monkeypatch.setattr(rw_ec2, "describe_instances", describe_then_race)
    with count_calls() as calls:
        result = invoke(app, w.as_sqs_event(running(web)))
    assert result == {"batchItemFailures": []}
    assert w.attached_profiles() == {web: "web-server"}
    assert calls.calls["ec2:ReplaceIamInstanceProfileAssociation"] == 1


def test_metrics_are_published_once_per_name_per_invocation(
    app: Any, profiles: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Powertools writes one EMF document per invocation; each metric carries the invocation's total."""
    a, b = w.run_instances(2, {"rolewarden:profile": "web"})
    admin = w.run_instance({"rolewarden:profile": "admin"})
    capsys.readouterr()
    invoke(app, w.as_sqs_event(running(a), running(b), running(admin)))
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert len(emf) == 1
    assert emf[0]["Attached"] in (2.0, [2.0])
    assert emf[0]["Refused"] in (1.0, [1.0])
    assert emf[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "RoleWardenTest"


def test_two_containers_replacing_one_instance_write_once(
    aws: Any, write_config: Any, profiles: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Duplicate events for one instance in two containers: both read the wrong profile and its
    association, the second container replaces it first. On AWS the Replace answers with a new
    association id and the first container's Replace, naming the old id, fails with IncorrectState
    (moto would accept it; the fault proxy plays EC2's association ids, rwlocal.hostile.Associations).
    RoleWarden re-reads that instance's association, finds the profile right and writes nothing more."""
    from rolewarden.aws import clients
    from rolewarden.aws import profiles as rw_ec2
    from rwlocal.proxy import ChaosProxy

    write_config()
    web = w.run_instance({"rolewarden:profile": "web"}, profile_arn=profiles["other"])
    moto = os.environ["AWS_ENDPOINT_URL"]
    with ChaosProxy(aws.port) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)  # RoleWarden's clients go through the proxy
        clients.reset()
        first, second = load_app("instance_profiles"), load_app("instance_profiles")
        real_read = rw_ec2.describe_associations
        raced: list[dict[str, Any]] = []

        def read_then_race(ids: Any) -> Any:
            found = real_read(ids)
            if not raced:  # the other container handles its duplicate to completion in between
                raced.append({})
                raced[0] = invoke(second, w.as_sqs_event(running(web)))
            return found

        monkeypatch.setattr(rw_ec2, "describe_associations", read_then_race)
        try:
            result = invoke(first, w.as_sqs_event(running(web)))
        finally:
            monkeypatch.setenv("AWS_ENDPOINT_URL", moto)
            clients.reset()
    assert raced == [{"batchItemFailures": []}]
    assert result == {"batchItemFailures": []}
    assert w.attached_profiles() == {web: "web-server"}
    assert proxy.stats.writes_ok["ec2:ReplaceIamInstanceProfileAssociation"] == 1
    assert proxy.stats.injected["association-superseded:ReplaceIamInstanceProfileAssociation"] == 1
