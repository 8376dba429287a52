"""The tag guard (issue 16), lifecycle hooks and young launches (issue 10 defect 4), instance-profile IAM
events (defect 7) and the budgeted sweep, through the real handler against the moto server over HTTP.

moto implements neither CompleteLifecycleAction nor RecordLifecycleActionHeartbeat, and it is strongly
consistent: those two calls are answered at the botocore level with Auto Scaling's empty success
document, and EC2's eventual consistency just after a launch is injected the same way (an empty
DescribeInstances answer, or InvalidInstanceID.NotFound) -- the real shapes EC2 gives."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from rolewarden.aws.executor import Executor
from rolewarden.capabilities import profiles as cap
from rolewarden.capabilities.base import Run
from rolewarden.capabilities.profiles import guard
from rolewarden.config import load_config
from rolewarden.model.targets import SWEEP
from rolewarden.telemetry import Sink
from rwlocal import world as w
from rwlocal.faults import Fault, _Raw, count_calls, inject, ok_response
from tests.functional.helpers import ec2_writes, invoke, load_app, profiles_app, running, sample, sink_of

BOUNDARY_NAME = "rolewarden-boundary"


@pytest.fixture
def app(aws: Any, write_config: Any) -> Any:
    return profiles_app(write_config)


@pytest.fixture
def profiles(aws: Any) -> dict[str, str]:
    """web-server is compliant; break-glass-admin's role is under the managed path (so only the guard
    stands between a tag and it) and has AdministratorAccess."""
    admin = w.ensure_aws_managed_policy()
    found = {
        "web-server": w.create_profile("web-server"),
        "data-worker": w.create_profile("data-worker", role="data", role_path="/rolewarden/data/"),
        "break-glass-admin": w.create_profile("break-glass-admin", role="break-glass", role_path="/rolewarden/"),
    }
    w.iam().attach_role_policy(RoleName="break-glass", PolicyArn=admin)
    return found


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the tag guard -----------------------------------------------------------------------------------
def test_a_tag_asking_for_an_admin_profile_gets_nothing_and_a_finding(app: Any, profiles: dict[str, str]) -> None:
    admin = w.run_instance({"rolewarden:profile": "admin"})
    web = w.run_instance({"rolewarden:profile": "web"})
    with count_calls() as calls:
        result = invoke(app, w.as_sqs_event(running(admin), running(web)))
    assert result == {"batchItemFailures": []}  # a refusal is final, not retried
    assert w.attached_profiles() == {web: "web-server"}
    assert ec2_writes(calls) == {"ec2:AssociateIamInstanceProfile": 1}
    sink = sink_of(app)
    (finding,) = [f for f in sink.findings if f.resource == admin]
    assert finding.rule == "profile-role-not-compliant"
    assert "no-admin-access" in finding.details["rules"]
    assert finding.details["asked_by"] == {"rolewarden:profile": "admin"}
    assert finding.details["config_rule"] == "instance_profiles.rules.2"
    assert finding.details["profile"] == "break-glass-admin"
    assert "rolewarden:profile=admin" in finding.message and "no-admin-access" in finding.message
    assert sink.counts["Refused"] == 1
    # one read of each role's policies for the whole batch, and no account-wide read
    assert calls.calls["iam:ListAttachedRolePolicies"] == 2  # web-server, break-glass
    assert calls.calls.get("iam:GetAccountAuthorizationDetails", 0) == 0


def test_an_escalation_role_is_refused(app: Any, profiles: dict[str, str]) -> None:
    w.iam().put_role_policy(
        RoleName="data",
        PolicyName="deploy",
        PolicyDocument=json.dumps(
            # PassRole to any role plus EC2 to run code with it; PassRole alone is no escalation (issue 12)
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": ["iam:PassRole", "ec2:RunInstances"], "Resource": "*"}],
            }
        ),
    )
    data = w.run_instance({"team": "data", "env": "prod"})
    invoke(app, w.as_sqs_event(running(data)))
    assert w.attached_profiles() == {}
    (finding,) = sink_of(app).findings
    assert finding.details["rules"] == ["no-privilege-escalation"]
    assert finding.details["asked_by"] == {"team": "data", "env": "prod"}


def test_allow_privileged_with_a_reason_hands_it_out(aws: Any, write_config: Any, profiles: dict[str, str]) -> None:
    write_config(
        instance_profiles={
            "rules": [
                {
                    "match": {"rolewarden:profile": "admin"},
                    "profile": "break-glass-admin",
                    "allow_privileged": True,
                    "reason": "incident hosts, approved in SEC-42",
                }
            ]
        }
    )
    app = load_app("instance_profiles")
    admin = w.run_instance({"rolewarden:profile": "admin"})
    result = invoke(app, w.as_sqs_event(running(admin)))
    assert result == {"batchItemFailures": []}
    assert w.attached_profiles() == {admin: "break-glass-admin"}
    # no guard finding (imdsv2: report, the default, names the instance as answering IMDSv1: test_imdsv2.py)
    assert [f for f in sink_of(app).findings if not f.rule.startswith("imds")] == []
    (line,) = [r for r in sink_of(app).records if r.get("action") == "associate"]
    assert line["resource"] == admin


def test_a_configured_boundary_is_required(aws: Any, write_config: Any, profiles: dict[str, str]) -> None:
    boundary = w.iam().create_policy(
        PolicyName=BOUNDARY_NAME,
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        ),
    )["Policy"]["Arn"]
    write_config(compliance={"permissions_boundary": boundary})
    app = load_app("instance_profiles")
    first = w.run_instance({"rolewarden:profile": "web"})
    invoke(app, w.as_sqs_event(running(first)))
    assert w.attached_profiles() == {}
    (finding,) = sink_of(app).findings
    assert finding.details["rules"] == ["permissions-boundary"]
    w.iam().put_role_permissions_boundary(RoleName="web-server", PermissionsBoundary=boundary)
    guard.clear_profile_cache()  # as after PROFILE_CACHE_SECONDS
    invoke(app, w.as_sqs_event(running(first)))
    assert w.attached_profiles() == {first: "web-server"}


def test_the_guard_reads_are_cached_in_a_warm_container(app: Any, profiles: dict[str, str]) -> None:
    a, b = w.run_instances(2, {"rolewarden:profile": "web"})
    with count_calls() as calls:
        invoke(app, w.as_sqs_event(running(a)))
        invoke(app, w.as_sqs_event(running(b)))
    assert w.attached_profiles() == {a: "web-server", b: "web-server"}
    iam_reads = {k: v for k, v in calls.calls.items() if k.startswith("iam:")}
    assert iam_reads == {"iam:GetInstanceProfile": 1, "iam:ListAttachedRolePolicies": 1, "iam:ListRolePolicies": 1}


def test_the_guard_cache_keeps_accounts_apart(app: Any, profiles: dict[str, str], write_config: Any) -> None:
    """Issue 14: a central function reads profiles of one name in several accounts; the warm cache must not
    answer a member's profile (its ARN, its role's verdict) with the central account's."""
    from rolewarden.aws import clients
    from rolewarden.aws.accounts import AccountSessions

    member = "210987654321"
    sessions = AccountSessions("RoleWardenExecution", home_account="123456789012")
    iam = sessions.client(member, "iam")
    iam.create_role(RoleName="web-server", Path="/rolewarden/", AssumeRolePolicyDocument=json.dumps(w.EC2_TRUST))
    iam.create_instance_profile(InstanceProfileName="web-server")
    iam.add_role_to_instance_profile(InstanceProfileName="web-server", RoleName="web-server")
    iam.put_role_policy(RoleName="web-server", PolicyName="all", PolicyDocument=json.dumps(w.ADMIN_DOCUMENT))
    config = load_config()
    home = guard.lookup_profiles(["web-server"], config)["web-server"]
    with clients.acting_in(sessions.scope(member)):
        theirs = guard.lookup_profiles(["web-server"], config)["web-server"]
    assert home is not None and theirs is not None
    assert (home.arn, theirs.arn) == (profiles["web-server"], f"arn:aws:iam::{member}:instance-profile/web-server")
    assert home.guard == () and theirs.guard  # the member's role is refused, the central one is not


def test_validate_reports_every_rule_whose_profile_would_be_refused(
    aws: Any, write_config: Any, profiles: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from rolewarden.cli.main import main

    path = write_config()
    w.create_profile("does-not-exist-yet")  # only so the ghost rule does not hide what is being tested
    capsys.readouterr()
    assert main(["validate", str(path)]) == 1
    problems = [line.strip() for line in capsys.readouterr().out.splitlines()[1:]]
    (guarded,) = [p for p in problems if "tag guard" in p]
    assert guarded.startswith("instance_profiles.rules.2.profile: break-glass-admin: would be refused by the tag guard")
    assert "no-admin-access" in guarded and "allow_privileged" in guarded
    allowed = write_config(
        instance_profiles={
            "rules": [
                {"match": {"a": "b"}, "profile": "break-glass-admin", "allow_privileged": True, "reason": "SEC-42"},
                {"match": {"a": "c"}, "profile": "web-server"},
            ]
        }
    )
    assert main(["validate", str(allowed)]) == 0, capsys.readouterr().out


# -- an instance profile's role swapped (defect 7) -----------------------------------------------------
def test_a_swapped_role_is_refused_for_new_associations_and_every_holder_is_reported(
    app: Any, profiles: dict[str, str]
) -> None:
    a, b = w.run_instances(2, {"rolewarden:profile": "web"})
    invoke(app, w.as_sqs_event(running(a), running(b)))  # attached, and the profile cached as assignable
    assert w.attached_profiles() == {a: "web-server", b: "web-server"}
    iam = w.iam()
    iam.remove_role_from_instance_profile(InstanceProfileName="web-server", RoleName="web-server")
    w.create_role("ops-admin", path="/ops/")
    iam.add_role_to_instance_profile(InstanceProfileName="web-server", RoleName="ops-admin")
    with count_calls() as calls:
        result = invoke(app, w.as_sqs_event(sample("cloudtrail-iam-addroletoinstanceprofile.json")))
    assert result == {"batchItemFailures": []}
    assert ec2_writes(calls) == {}  # reported, not removed
    findings = sink_of(app).findings
    assert {f.resource for f in findings} == {a, b}
    assert {f.rule for f in findings} == {"profile-no-longer-assignable"}
    assert "outside the managed path" in findings[0].message
    # the cache entry was dropped: a new launch asking for web-server is refused at once
    c = w.run_instance({"rolewarden:profile": "web"})
    invoke(app, w.as_sqs_event(running(c)))
    assert c not in w.attached_profiles()
    assert [f.rule for f in sink_of(app).findings] == ["profile-outside-managed-set"]


def test_a_role_swapped_for_a_non_compliant_managed_role_is_reported(app: Any, profiles: dict[str, str]) -> None:
    web = w.run_instance({"rolewarden:profile": "web"}, profile_arn=profiles["web-server"])
    iam = w.iam()
    iam.remove_role_from_instance_profile(InstanceProfileName="web-server", RoleName="web-server")
    iam.add_role_to_instance_profile(InstanceProfileName="web-server", RoleName="break-glass")  # admin, managed path
    invoke(app, w.as_sqs_event(sample("cloudtrail-iam-addroletoinstanceprofile.json")))
    (finding,) = sink_of(app).findings
    assert finding.resource == web and finding.rule == "profile-no-longer-assignable"
    assert "no-admin-access" in finding.details["rules"] and finding.details["roles"] == ["break-glass"]


def test_a_profile_left_without_a_role_is_reported(app: Any, profiles: dict[str, str]) -> None:
    web = w.run_instance({"rolewarden:profile": "web"}, profile_arn=profiles["web-server"])
    w.iam().remove_role_from_instance_profile(InstanceProfileName="web-server", RoleName="web-server")
    invoke(app, w.as_sqs_event(sample("cloudtrail-iam-removerolefrominstanceprofile.json")))
    (finding,) = sink_of(app).findings
    assert finding.resource == web and "0 roles" in finding.message


def test_a_compliant_swap_reports_nothing(app: Any, profiles: dict[str, str]) -> None:
    w.run_instance({"rolewarden:profile": "web"}, profile_arn=profiles["web-server"])
    invoke(app, w.as_sqs_event(sample("cloudtrail-iam-addroletoinstanceprofile.json")))
    assert sink_of(app).findings == []


# -- lifecycle hooks and young launches (defect 4) -------------------------------------------------------
def _not_visible_yet(times: int = 1) -> Fault:
    """EC2 just after RunInstances: DescribeInstances answers without the instance."""
    body = (
        b"<DescribeInstancesResponse xmlns='http://ec2.amazonaws.com/doc/2016-11-15/'>"
        b"<requestId>injected</requestId><reservationSet/></DescribeInstancesResponse>"
    )
    return Fault(
        "ec2",
        "DescribeInstances",
        times=times,
        respond=lambda _: AWSResponse(
            "https://injected", 200, HTTPHeaders.from_dict({"content-type": "text/xml"}), _Raw(body)
        ),
    )


def _autoscaling(operation: str) -> Fault:
    return Fault("auto-scaling", operation, times=100, respond=lambda _: ok_response("autoscaling", operation))


def _hook_event(instance_id: str, time: str | None = None) -> dict[str, Any]:
    event = sample("asg-lifecycle-launching.json", **{"i-0123456789abcdef0": instance_id})
    if time is not None:
        event["time"] = time
    return event


@pytest.mark.parametrize(
    "lag",
    [
        _not_visible_yet,
        lambda: Fault("ec2", "DescribeInstances", "InvalidInstanceID.NotFound", "The instance ID does not exist"),
    ],
    ids=["absent", "InvalidInstanceID.NotFound"],
)
def test_a_hook_is_not_released_before_ec2_shows_the_instance(app: Any, profiles: dict[str, str], lag: Any) -> None:
    web = w.run_instance({"rolewarden:profile": "web"})
    complete, heartbeat = _autoscaling("CompleteLifecycleAction"), _autoscaling("RecordLifecycleActionHeartbeat")
    with inject(lag(), complete, heartbeat):
        first = invoke(app, w.as_sqs_event(_hook_event(web, now_iso())))
        assert first == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}  # retried, not skipped
        assert complete.seen == 0 and w.attached_profiles() == {}
        assert heartbeat.seen == 0  # a young hook: the retry comes well within the smallest timeout
        second = invoke(app, w.as_sqs_event(_hook_event(web, now_iso())))  # the redelivery
    assert second == {"batchItemFailures": []}
    assert w.attached_profiles() == {web: "web-server"}
    assert complete.seen == 1


def test_an_old_hook_is_kept_alive_while_it_waits(app: Any, profiles: dict[str, str]) -> None:
    web = w.run_instance({"rolewarden:profile": "web"})
    complete, heartbeat = _autoscaling("CompleteLifecycleAction"), _autoscaling("RecordLifecycleActionHeartbeat")
    with inject(_not_visible_yet(), complete, heartbeat), count_calls() as calls:
        result = invoke(app, w.as_sqs_event(_hook_event(web)))  # the sample's time is a day old
    assert result == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    assert complete.seen == 0 and heartbeat.seen == 1
    (params,) = [p for name, p in calls.params if name == "autoscaling:RecordLifecycleActionHeartbeat"]
    assert params == {
        "AutoScalingGroupName": "web-asg",
        "LifecycleHookName": "rolewarden-launch",
        "LifecycleActionToken": "87654321-4321-4321-4321-210987654321",
        "InstanceId": web,
    }


def test_a_refused_profile_releases_the_hook(app: Any, profiles: dict[str, str]) -> None:
    admin = w.run_instance({"rolewarden:profile": "admin"})
    complete = _autoscaling("CompleteLifecycleAction")
    with inject(complete):
        result = invoke(app, w.as_sqs_event(_hook_event(admin)))
    assert result == {"batchItemFailures": []}
    assert complete.seen == 1  # definitively refused: the instance goes into service without a role
    assert w.attached_profiles() == {}


def test_a_young_launch_event_is_retried_and_an_old_one_skipped(app: Any, profiles: dict[str, str]) -> None:
    web = w.run_instance({"rolewarden:profile": "web"})
    with inject(_not_visible_yet(times=2)):
        young = invoke(app, w.as_sqs_event(running(web, now_iso())))
        old = invoke(app, w.as_sqs_event(running(web, "2026-01-01T00:00:00Z")))
    assert young == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    assert old == {"batchItemFailures": []}
    assert w.attached_profiles() == {}
    invoke(app, w.as_sqs_event(running(web, now_iso())))  # the young event's redelivery
    assert w.attached_profiles() == {web: "web-server"}


# -- the sweep honours its budget -------------------------------------------------------------------------
def _run(cursor: str | None, deadline: float | None) -> Run:
    sink = Sink()
    return Run(
        config=load_config(),
        sink=sink,
        executor=Executor(sink=sink),
        deadline=deadline,
        cursor=cursor,
        clock=lambda: 1.0,
    )


def test_a_sweep_past_its_budget_continues_from_its_cursor_to_the_same_end(
    app: Any, profiles: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rolewarden.aws import profiles as ec2

    monkeypatch.setattr(ec2, "SWEEP_PAGE_SIZE", 5)  # EC2's smallest page
    web = [w.run_instance({"rolewarden:profile": "web"}) for _ in range(8)]
    data = [w.run_instance({"team": "data", "env": "prod"}) for _ in range(2)]
    plain = [w.run_instance({"team": "other"}) for _ in range(2)]
    parts, cursor = 0, None
    with count_calls() as calls:
        while True:
            outcome = cap.CAPABILITY.reconcile(_run(cursor, deadline=0.0), [SWEEP])[SWEEP]  # spent at once
            parts += 1
            assert outcome.status == "ok"
            cursor = outcome.continuation
            if cursor is None:
                break
            assert parts < 10, "the sweep does not end"
    assert parts == 3  # 12 instances, 5 a page: it stopped between pages twice
    assert calls.calls["ec2:DescribeInstances"] == 3
    chunked = w.attached_profiles()
    assert chunked == {**{i: "web-server" for i in web}, **{i: "data-worker" for i in data}}
    assert ec2_writes(calls) == {"ec2:AssociateIamInstanceProfile": 10}  # each instance once
    # the one-shot sweep ends in the same state from the same start
    for association in boto3.client("ec2").describe_iam_instance_profile_associations()[
        "IamInstanceProfileAssociations"
    ]:
        boto3.client("ec2").disassociate_iam_instance_profile(AssociationId=association["AssociationId"])
    assert w.attached_profiles() == {}
    outcome = cap.CAPABILITY.reconcile(_run(None, deadline=None), [SWEEP])[SWEEP]
    assert outcome.continuation is None and outcome.status == "ok"
    assert w.attached_profiles() == chunked
    assert set(plain).isdisjoint(chunked)


def test_a_cursor_from_elsewhere_is_refused_not_guessed(app: Any, profiles: dict[str, str]) -> None:
    outcome = cap.CAPABILITY.reconcile(_run("not-a-cursor", deadline=None), [SWEEP])[SWEEP]
    assert outcome.status == "dead" and "not an instance-profiles sweep cursor" in outcome.message


def test_a_guard_read_that_is_denied_goes_to_the_dlq_with_its_reason(
    app: Any, profiles: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stack whose role lacks the guard's reads must not hand the profile out, nor lose the event."""
    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName="guard-dlq")["QueueUrl"]
    monkeypatch.setenv("ROLEWARDEN_DLQ_URL", dlq)
    monkeypatch.setenv("ROLEWARDEN_MAX_RECEIVE", "2")
    web = w.run_instance({"rolewarden:profile": "web"})
    denied = Fault("iam", "ListAttachedRolePolicies", "AccessDenied", "not authorized", status=403, times=10)
    with inject(denied):
        first = invoke(app, w.as_sqs_event(running(web)))
        last = invoke(app, w.as_sqs_event(running(web), receive_count=2))
    assert first == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}  # a deployment problem: retried
    assert last == {"batchItemFailures": []}  # then dead-lettered with its reason
    assert w.attached_profiles() == {}
    (message,) = sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"])["Messages"]
    assert "AccessDenied" in message["MessageAttributes"]["rolewarden-reason"]["StringValue"]


def test_explain_shows_the_guard(
    aws: Any, write_config: Any, profiles: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from rolewarden.cli.main import main

    write_config()
    admin = w.run_instance({"rolewarden:profile": "admin"})
    capsys.readouterr()
    main(["explain", admin, "--json"])
    report = json.loads(capsys.readouterr().out)
    assert "no-admin-access" in report["guard"]
    assert report["decision"].startswith("refuse: profile break-glass-admin")
