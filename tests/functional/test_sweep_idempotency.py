"""A duplicate delivery of the same Scheduled Event runs the (expensive) sweep once: Powertools
idempotency on the state table, keyed on the event id."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from rwlocal import world as w
from rwlocal.faults import Fault, count_calls, inject
from tests.functional.helpers import invoke, load_app, sample


@pytest.fixture
def table(aws: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    w.create_state_table("rw-state")
    monkeypatch.setenv("ROLEWARDEN_TABLE", "rw-state")
    return "rw-state"


def test_the_same_scheduled_event_sweeps_once(table: str, write_config: Any) -> None:
    write_config()
    app = load_app("instance_profiles")
    w.create_profile("web-server")
    first = w.run_instance({"rolewarden:profile": "web"})
    sweep = sample("scheduled-sweep.json")
    with count_calls() as calls:
        invoke(app, w.as_sqs_event(sweep))
    assert calls.calls["ec2:DescribeInstances"] == 1
    assert w.attached_profiles() == {first: "web-server"}
    second = w.run_instance({"rolewarden:profile": "web"})
    with count_calls() as again:
        result = invoke(app, w.as_sqs_event(sweep))
    assert result == {"batchItemFailures": []}
    assert again.calls["ec2:DescribeInstances"] == 0  # the duplicate was skipped
    assert app.lambda_handler.handler.last_sink.counts["DuplicateSweepsSkipped"] == 1
    assert second not in w.attached_profiles()
    fresh = {**sweep, "id": "another-hour"}
    invoke(app, w.as_sqs_event(fresh))  # the next schedule's event sweeps again
    assert w.attached_profiles() == {first: "web-server", second: "web-server"}
    items = boto3.client("dynamodb").scan(TableName=table)["Items"]
    assert {i["pk"]["S"] for i in items} == {"idempotency#instance_profiles"}
    assert all(i["status"]["S"] == "COMPLETED" for i in items) and len(items) == 2


def test_a_failed_sweep_is_not_remembered(table: str, write_config: Any) -> None:
    write_config()
    app = load_app("instance_profiles")
    w.create_profile("web-server")
    instance = w.run_instance({"rolewarden:profile": "web"})
    sweep = sample("scheduled-sweep.json")
    throttled = Fault("ec2", "DescribeInstances", "RequestLimitExceeded", "Request limit exceeded.", 503, times=100)
    with inject(throttled):
        failed = invoke(app, w.as_sqs_event(sweep))
    assert failed == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    invoke(app, w.as_sqs_event(sweep))  # the redelivery runs it
    assert w.attached_profiles() == {instance: "web-server"}


def test_without_a_table_every_sweep_runs(aws: Any, write_config: Any) -> None:
    write_config()
    app = load_app("instance_profiles")
    sweep = sample("scheduled-sweep.json")
    with count_calls() as calls:
        invoke(app, w.as_sqs_event(sweep))
        invoke(app, w.as_sqs_event(sweep))
    assert calls.calls["ec2:DescribeInstances"] == 2
