"""Hostile and broken input, generated with hypothesis, for every handler: no crash other than a
deliberate failure of that record (so it reaches the DLQ), no AWS write, and a log line saying what
was wrong."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rolewarden.errors import MalformedEvent
from rwlocal import world as w
from rwlocal.faults import count_calls
from tests.functional.helpers import load_app

HANDLERS = ["instance_profiles", "bucket_grants", "role_compliance"]
SOURCES = ["aws.ec2", "aws.autoscaling", "aws.tag", "aws.s3", "aws.iam", "aws.events", "evil.source"]
DETAIL_TYPES = [
    "EC2 Instance State-change Notification",
    "EC2 Instance Launch Successful",
    "EC2 Instance-launch Lifecycle Action",
    "Tag Change on Resource",
    "AWS API Call via CloudTrail",
    "Scheduled Event",
    "Something Else",
]
EVENT_NAMES = [
    "CreateTags",
    "DeleteTags",
    "PutBucketTagging",
    "TagResource",
    "AttachRolePolicy",
    "PutRolePolicy",
    "CreatePolicyVersion",
    "RunInstances",
]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=256, max_size=2000),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=20), children, max_size=4)
    ),
    max_leaves=12,
)

hostile_strings = st.sampled_from(
    [
        "*",
        "arn:aws:iam::123456789012:role/admin",
        "/rolewarden/../admin",
        "i-" + "f" * 300,
        "\x00\x1b[31m",
        '"}],"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}',
        "web-server\nadmin",
        "A" * 256,
        "role/../../x",
        "\uff57\uff45\uff42",  # fullwidth "web": a look-alike role name
        "",
    ]
)

detail_strategy = st.fixed_dictionaries(
    {},
    optional={
        "instance-id": st.one_of(hostile_strings, json_values),
        "state": st.one_of(st.sampled_from(["running", "pending"]), json_values),
        "EC2InstanceId": st.one_of(hostile_strings, json_values),
        "LifecycleTransition": st.sampled_from(["autoscaling:EC2_INSTANCE_LAUNCHING", "x"]),
        "service": st.sampled_from(["ec2", "s3", "iam"]),
        "resource-type": st.sampled_from(["instance", "bucket"]),
        "eventName": st.sampled_from(EVENT_NAMES),
        "errorCode": st.sampled_from(["AccessDenied"]),
        "requestParameters": st.one_of(
            json_values,
            st.fixed_dictionaries(
                {},
                optional={
                    "bucketName": st.one_of(hostile_strings, json_values),
                    "roleName": st.one_of(hostile_strings, json_values),
                    "policyArn": st.one_of(hostile_strings, json_values),
                    "resourceArn": st.one_of(hostile_strings, json_values),
                    "resourcesSet": st.one_of(
                        json_values,
                        st.fixed_dictionaries(
                            {
                                "items": st.lists(
                                    st.fixed_dictionaries({"resourceId": st.one_of(hostile_strings, json_values)}),
                                    max_size=3,
                                )
                            }
                        ),
                    ),
                },
            ),
        ),
        "userIdentity": json_values,
    },
)

event_strategy = st.fixed_dictionaries(
    {},
    optional={
        "version": json_values,
        "id": st.one_of(st.uuids().map(str), json_values),
        "source": st.one_of(st.sampled_from(SOURCES), json_values),
        "detail-type": st.one_of(st.sampled_from(DETAIL_TYPES), json_values),
        "resources": st.one_of(st.lists(st.one_of(hostile_strings, st.text(max_size=80)), max_size=3), json_values),
        "detail": st.one_of(detail_strategy, json_values),
        "extra": json_values,
    },
)

body_strategy = st.one_of(
    event_strategy.map(json.dumps),
    st.text(max_size=500),  # not JSON at all, or JSON of the wrong type
    json_values.map(json.dumps),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
)


@pytest.fixture(scope="module")
def apps() -> dict[str, Any]:
    return {name: load_app(name) for name in HANDLERS}


@pytest.fixture
def world(aws: Any, write_config: Any) -> None:
    write_config()
    w.create_profile("web-server")
    w.run_instance({"rolewarden:profile": "web"})


@pytest.mark.parametrize("handler", HANDLERS)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(bodies=st.lists(body_strategy, min_size=1, max_size=5))
def test_sqs_batches_of_garbage(world: None, apps: dict[str, Any], handler: str, bodies: list[str]) -> None:
    app = apps[handler]
    event = {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"r{i}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "eventSource": "aws:sqs",
            }
            for i, body in enumerate(bodies)
        ]
    }
    with count_calls() as calls:
        result = app.lambda_handler(event, None)
    assert set(result) == {"batchItemFailures"}
    failed = {item["itemIdentifier"] for item in result["batchItemFailures"]}
    assert failed <= {f"m{i}" for i in range(len(bodies))}
    assert calls.writes() == {}, f"garbage caused AWS writes: {calls.writes()}"
    sink = app.lambda_handler.handler.last_sink
    for item in failed:
        assert any(r.get("message_id") == item and r["level"] == "ERROR" for r in sink.records), item


@pytest.mark.parametrize("handler", HANDLERS)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(event=st.one_of(event_strategy, json_values))
def test_direct_invocations_of_garbage(world: None, apps: dict[str, Any], handler: str, event: Any) -> None:
    """A raw EventBridge event that is malformed fails with MalformedEvent (Lambda's async retry and
    DLQ keep it); anything else is handled or ignored. No write either way."""
    app = apps[handler]
    with count_calls() as calls:
        try:
            result = app.lambda_handler(event, None)
        except MalformedEvent as exc:
            assert str(exc)
        else:
            assert isinstance(result, dict)
    assert calls.writes() == {}


def test_records_that_are_not_dicts(world: None, apps: dict[str, Any]) -> None:
    """Records Lambda would never send: each is failed (an empty identifier makes Lambda retry the batch)."""
    result = apps["instance_profiles"].lambda_handler({"Records": ["x", 5, None]}, None)
    assert result == {"batchItemFailures": [{"itemIdentifier": ""}] * 3}


@pytest.mark.parametrize("handler", HANDLERS)
@pytest.mark.parametrize(
    "config_text",
    [
        "version: 1\nmanaged_path: /\n",
        "version: 1\ninstance_profiles: {rules: [{match: {a: b}}]}\n",
        "version: 1\nbucket_grants: {levels: {all: ['s3:*']}}\n",
        "version: 1\ncompliance: {rules: {no-admin-access: fix}}\n",
        "version: 1\nsurprise: true\n",
        "not: [valid",
    ],
    ids=["root-path", "rule-without-profile", "star-level", "bad-mode", "unknown-key", "not-yaml"],
)
def test_a_bad_config_stops_everything_before_any_aws_call(
    aws: Any, apps: dict[str, Any], handler: str, config_text: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rolewarden.errors import ConfigError

    path = tmp_path / "bad.yaml"
    path.write_text(config_text)
    monkeypatch.setenv("ROLEWARDEN_CONFIG", str(path))
    event = w.as_sqs_event(w.state_change_event("i-0123456789abcdef0"), w.sweep_event())
    with count_calls() as calls, pytest.raises(ConfigError) as caught:
        apps[handler].lambda_handler(event, None)
    assert calls.calls == {}  # nothing read, nothing written: the whole batch is retried, then redriven
    assert str(path) in str(caught.value)
