"""IMDSv2 with the attach (issue 15), through the instance-profiles handler against moto over HTTP.

What moto stores (checked here, moto 5): ModifyInstanceMetadataOptions replaces the instance's whole
MetadataOptions with the parameters sent (a field not sent becomes null, where AWS keeps its value), and
DescribeInstances shows them under ``MetadataOptions`` with State ``applied`` (AWS shows ``pending``
first). RoleWarden sends only HttpTokens and HttpPutResponseHopLimit and reads only those two and
HttpEndpoint (missing: enabled), so the quirk does not change what it decides."""

from __future__ import annotations

from typing import Any

import pytest

from rwlocal import world as w
from rwlocal.faults import Fault, count_calls, inject, ok_response
from tests.functional.helpers import invoke, load_app, running, sample, sink_of

ENFORCE = {"imdsv2": "enforce", "hop_limit": 1, "exemptions": [{"match": {"imds": "v1"}, "reason": "legacy agent"}]}


def _config(write_config: Any, metadata: dict[str, Any]) -> None:
    import yaml

    from tests.conftest import BASE_CONFIG

    data = yaml.safe_load(BASE_CONFIG)
    data["instance_profiles"]["metadata"] = metadata
    write_config(yaml.safe_dump(data))


@pytest.fixture
def profiles(aws: Any) -> dict[str, str]:
    return {"web-server": w.create_profile("web-server"), "other": w.create_profile("other")}


def metadata_of(instance_id: str) -> dict[str, Any]:
    reservations = w.ec2().describe_instances(InstanceIds=[instance_id])["Reservations"]
    return dict(reservations[0]["Instances"][0]["MetadataOptions"])


def test_moto_launches_with_imdsv1_open_and_shows_it(aws: Any) -> None:
    web = w.run_instance({"rolewarden:profile": "web"})
    options = metadata_of(web)
    assert options["HttpTokens"] == "optional"
    assert options["HttpPutResponseHopLimit"] == 1


def test_enforce_attaches_the_profile_and_requires_imdsv2_in_one_reconcile(
    aws: Any, write_config: Any, profiles: dict[str, str]
) -> None:
    _config(write_config, {**ENFORCE, "hop_limit": 2})
    app = load_app("instance_profiles")
    web = w.run_instance({"rolewarden:profile": "web"})
    with count_calls() as calls:
        result = invoke(app, w.as_sqs_event(running(web)))
    assert result == {"batchItemFailures": []}
    assert w.attached_profiles() == {web: "web-server"}
    options = metadata_of(web)
    assert (options["HttpTokens"], options["HttpPutResponseHopLimit"]) == ("required", 2)
    # no extra read: the metadata options came with the one DescribeInstances of the batch
    assert calls.calls["ec2:DescribeInstances"] == 1
    assert calls.writes() == {"ec2:AssociateIamInstanceProfile": 1, "ec2:ModifyInstanceMetadataOptions": 1}
    (params,) = [p for name, p in calls.params if name == "ec2:ModifyInstanceMetadataOptions"]
    assert params == {"InstanceId": web, "HttpTokens": "required", "HttpPutResponseHopLimit": 2}
    assert sink_of(app).counts["Imdsv2Required"] == 1

    # a second pass writes nothing: the options are right
    with count_calls() as again:
        assert invoke(app, w.as_sqs_event(running(web))) == {"batchItemFailures": []}
    assert again.writes() == {}


def test_enforce_secures_an_instance_that_already_has_its_profile_and_keeps_one_batch_read(
    aws: Any, write_config: Any, profiles: dict[str, str]
) -> None:
    _config(write_config, ENFORCE)
    app = load_app("instance_profiles")
    done = w.run_instance({"rolewarden:profile": "web"}, profile_arn=profiles["web-server"])
    fresh = [w.run_instance({"rolewarden:profile": "web"}) for _ in range(3)]
    legacy = w.run_instance({"rolewarden:profile": "web", "imds": "v1"})
    unmanaged = w.run_instance({"team": "none"})
    refused = w.run_instance({"rolewarden:profile": "ghost"})
    ids = [done, *fresh, legacy, unmanaged, refused]
    with count_calls() as calls:
        result = invoke(app, w.as_sqs_event(*(running(i) for i in ids)))
    assert result == {"batchItemFailures": []}
    assert calls.calls["ec2:DescribeInstances"] == 1
    secured = {i for i in ids if metadata_of(i)["HttpTokens"] == "required"}
    assert secured == {done, *fresh}  # exempt, unmanaged and refused instances are left as they are
    assert calls.calls["ec2:ModifyInstanceMetadataOptions"] == 4


def test_report_changes_nothing_and_names_each_imdsv1_instance(
    aws: Any, write_config: Any, profiles: dict[str, str]
) -> None:
    _config(write_config, {"imdsv2": "report"})
    app = load_app("instance_profiles")
    open_one = w.run_instance({"rolewarden:profile": "web"}, profile_arn=profiles["web-server"])
    closed = w.run_instance({"rolewarden:profile": "web"}, profile_arn=profiles["web-server"])
    w.ec2().modify_instance_metadata_options(InstanceId=closed, HttpTokens="required", HttpPutResponseHopLimit=2)
    with count_calls() as calls:
        result = invoke(app, w.as_sqs_event(running(open_one), running(closed)))
    assert result == {"batchItemFailures": []}
    assert calls.writes() == {}
    findings = [f for f in sink_of(app).findings if f.rule == "imdsv1-open"]
    assert [f.resource for f in findings] == [open_one]
    assert findings[0].details["http_tokens"] == "optional"
    assert metadata_of(open_one)["HttpTokens"] == "optional"


def test_off_reads_nothing_more_and_writes_nothing(aws: Any, write_config: Any, profiles: dict[str, str]) -> None:
    _config(write_config, {"imdsv2": "off"})
    app = load_app("instance_profiles")
    web = w.run_instance({"rolewarden:profile": "web"})
    with count_calls() as calls:
        invoke(app, w.as_sqs_event(running(web)))
    assert calls.writes() == {"ec2:AssociateIamInstanceProfile": 1}
    assert not [f for f in sink_of(app).findings if f.rule.startswith("imds")]


def test_dry_run_only_plans_the_metadata_change(aws: Any, write_config: Any, profiles: dict[str, str]) -> None:
    import yaml

    from tests.conftest import BASE_CONFIG

    data = yaml.safe_load(BASE_CONFIG)
    data["instance_profiles"]["metadata"] = ENFORCE
    data["dry_run"] = True
    write_config(yaml.safe_dump(data))
    app = load_app("instance_profiles")
    web = w.run_instance({"rolewarden:profile": "web"})
    with count_calls() as calls:
        invoke(app, w.as_sqs_event(running(web)))
    assert calls.writes() == {}
    assert metadata_of(web)["HttpTokens"] == "optional"
    assert sink_of(app).counts["Planned"] == 2


def _hook_faults(order: list[str]) -> tuple[Fault, Fault]:
    complete = Fault(
        "auto-scaling",
        "CompleteLifecycleAction",
        times=10,
        respond=lambda _: (order.append("complete"), ok_response("autoscaling", "CompleteLifecycleAction"))[1],
    )
    heartbeat = Fault(
        "auto-scaling",
        "RecordLifecycleActionHeartbeat",
        times=10,
        respond=lambda _: ok_response("autoscaling", "RecordLifecycleActionHeartbeat"),
    )
    return complete, heartbeat


def test_lifecycle_hook_completes_after_profile_and_metadata_are_settled(
    aws: Any, write_config: Any, profiles: dict[str, str]
) -> None:
    """moto lacks CompleteLifecycleAction: answered at the botocore level, as in test_instance_profiles."""
    _config(write_config, ENFORCE)
    app = load_app("instance_profiles")
    web = w.run_instance({"rolewarden:profile": "web"})
    complete, heartbeat = _hook_faults([])
    with inject(complete, heartbeat), count_calls() as calls:
        result = invoke(app, w.as_sqs_event(sample("asg-lifecycle-launching.json", **{"i-0123456789abcdef0": web})))
    assert result == {"batchItemFailures": []}
    names = [name for name, _ in calls.params]
    assert names.index("ec2:AssociateIamInstanceProfile") < names.index("autoscaling:CompleteLifecycleAction")
    assert names.index("ec2:ModifyInstanceMetadataOptions") < names.index("autoscaling:CompleteLifecycleAction")
    assert complete.seen == 1


def test_lifecycle_hook_waits_when_the_metadata_change_fails(
    aws: Any, write_config: Any, profiles: dict[str, str]
) -> None:
    """EC2's throttling answer to ModifyInstanceMetadataOptions, injected at the botocore level: the profile
    is attached, but the hook is not released until the metadata options are settled too."""
    _config(write_config, ENFORCE)
    app = load_app("instance_profiles")
    web = w.run_instance({"rolewarden:profile": "web"})
    throttle = Fault(
        "ec2", "ModifyInstanceMetadataOptions", "RequestLimitExceeded", "Request limit exceeded.", status=503, times=100
    )
    complete, heartbeat = _hook_faults([])
    event = w.as_sqs_event(sample("asg-lifecycle-launching.json", **{"i-0123456789abcdef0": web}))
    with inject(throttle, complete, heartbeat):
        result = invoke(app, event)
    assert result == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    assert w.attached_profiles() == {web: "web-server"}
    assert complete.seen == 0
    # the redelivery: the profile is kept (no write), the metadata options are set, then the hook completes
    with inject(complete, heartbeat), count_calls() as calls:
        assert invoke(app, event) == {"batchItemFailures": []}
    assert calls.writes()["ec2:ModifyInstanceMetadataOptions"] == 1
    assert "ec2:AssociateIamInstanceProfile" not in calls.writes()
    assert complete.seen == 1


def test_sweep_requires_imdsv2_on_every_managed_instance(aws: Any, write_config: Any, profiles: dict[str, str]) -> None:
    _config(write_config, ENFORCE)
    app = load_app("instance_profiles")
    ids = [w.run_instance({"rolewarden:profile": "web"}) for _ in range(3)]
    with count_calls() as calls:
        invoke(app, w.as_sqs_event(w.sweep_event()))
    assert all(metadata_of(i)["HttpTokens"] == "required" for i in ids)
    assert calls.calls["ec2:DescribeInstances"] == 1


def test_a_conflict_on_the_association_does_not_write_the_metadata_twice(
    aws: Any, write_config: Any, profiles: dict[str, str]
) -> None:
    """EC2's IncorrectState answer to AssociateIamInstanceProfile (an association appeared between read and
    write), injected once at the botocore level: the instance is decided again with its association read,
    and the metadata options, already written in the first pass, are not written a second time."""
    _config(write_config, ENFORCE)
    app = load_app("instance_profiles")
    web = w.run_instance({"rolewarden:profile": "web"})
    conflict = Fault(
        "ec2", "AssociateIamInstanceProfile", "IncorrectState", "There is an existing association", times=1
    )
    with inject(conflict), count_calls() as calls:
        result = invoke(app, w.as_sqs_event(running(web)))
    assert result == {"batchItemFailures": []}
    assert conflict.seen == 1
    assert calls.calls["ec2:DescribeIamInstanceProfileAssociations"] == 1  # the re-read after the conflict
    assert calls.writes()["ec2:ModifyInstanceMetadataOptions"] == 1
    assert w.attached_profiles() == {web: "web-server"}
    assert metadata_of(web)["HttpTokens"] == "required"
