"""The recorded grants sweep (state table) when the world does not cooperate: a bucket it cannot read, a
bucket or role another invocation holds the lease of, a role whose rebuild fails, a cursor that resumes in
the roles phase or names no phase RoleWarden writes. The capability against the moto server over HTTP;
a read throttled by S3 or a write throttled by IAM is injected at the botocore level (real error shape)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from rolewarden.aws import clients
from rolewarden.aws.executor import Executor
from rolewarden.aws.grants import records
from rolewarden.capabilities.base import Outcome, Run
from rolewarden.capabilities.grants import CAPABILITY
from rolewarden.config import load_config
from rolewarden.model.targets import SWEEP
from rolewarden.telemetry import Sink
from rwlocal import world
from tests.functional.helpers import GRANTS_CONFIG, WEB_SERVER_GRANT_POLICY

CONFIG = GRANTS_CONFIG
POLICY = WEB_SERVER_GRANT_POLICY


@pytest.fixture
def table(aws: Any, write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    write_config(CONFIG)
    name = world.create_state_table()
    monkeypatch.setenv("ROLEWARDEN_TABLE", name)
    world.create_role("web-server")
    yield name


def bucket(name: str, value: str = "web-server") -> None:
    s3: Any = boto3.client("s3")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": "rolewarden:read", "Value": value}]})


def sweep(cursor: str | None = None) -> tuple[Outcome, Sink]:
    sink = Sink()
    run = Run(
        config=load_config(),
        sink=sink,
        executor=Executor(sink=sink, trigger="sweep-test"),
        trigger="sweep-test",
        cursor=cursor,
    )
    return CAPABILITY.reconcile(run, [SWEEP])[SWEEP], sink


def named() -> str:
    """The default document of web-server's generated policy, as text ("" when there is none)."""
    iam: Any = boto3.client("iam")
    try:
        version = iam.get_policy(PolicyArn=POLICY)["Policy"]["DefaultVersionId"]
    except iam.exceptions.NoSuchEntityException:
        return ""
    return json.dumps(iam.get_policy_version(PolicyArn=POLICY, VersionId=version)["PolicyVersion"]["Document"])


@contextmanager
def throttled(service: str, operation: str, only: str | None = None) -> Iterator[None]:
    """``operation`` of RoleWarden's ``service`` client is throttled (for bucket ``only``, when given)."""

    def fail(params: dict[str, Any], **_: Any) -> None:
        if only is None or params.get("Bucket") == only:
            error: Any = {"Error": {"Code": "SlowDown", "Message": "injected"}, "ResponseMetadata": {}}
            raise ClientError(error, operation)

    client = clients.client(service)
    event = f"before-parameter-build.{service}.{operation}"
    client.meta.events.register(event, fail)
    try:
        yield
    finally:
        client.meta.events.unregister(event, fail)


def test_an_unreadable_bucket_keeps_its_recorded_grants(table: str) -> None:
    bucket("a-data")
    bucket("b-data")
    assert sweep()[0] == Outcome()
    boto3.client("s3").delete_bucket_tagging(Bucket="b-data")  # would revoke b-data, if it could be read
    with throttled("s3", "GetBucketTagging", only="b-data"):
        outcome, sink = sweep()
    assert outcome == Outcome()
    assert [f.resource for f in sink.findings if f.rule == "bucket-unreadable"] == ["b-data"]
    assert "b-data" in named() and "a-data" in named()


def test_the_findings_of_an_already_recorded_bucket_are_reported_again(table: str) -> None:
    bucket("a-data", "web-server ghost")
    sweep()
    outcome, sink = sweep()
    assert outcome == Outcome()
    assert [f.rule for f in sink.findings] == ["grant-refused"]


def test_a_bucket_being_recorded_elsewhere_is_left_to_its_holder(table: str) -> None:
    bucket("a-data")
    taken, _ = records.lease_bucket(table, "a-data", "another-invocation", time.time(), 60.0)
    assert taken
    assert sweep()[0] == Outcome()
    assert records.recorded_buckets(table) == {} and named() == ""


def test_a_role_being_written_elsewhere_is_rebuilt_in_a_continuation(table: str) -> None:
    bucket("a-data")
    assert records.lease_role(table, "web-server", "another-invocation", time.time(), 60.0)
    outcome, _ = sweep()
    assert outcome.continuation is not None
    assert json.loads(outcome.continuation) | {"after": None} == {
        "phase": "retry",
        "after": None,
        "roles": ["web-server"],
        "busy": [],
        "attempt": 1,
    }
    assert named() == ""
    records.release_role(table, "web-server", "another-invocation", None, time.time())
    assert sweep(outcome.continuation)[0] == Outcome()
    assert "a-data" in named()


def test_a_role_whose_rebuild_fails_is_left_to_the_next_sweep(table: str) -> None:
    bucket("a-data")
    with throttled("iam", "CreatePolicy"):
        assert sweep()[0] == Outcome()  # the sweep goes on; the role is retried by the next one
    assert named() == "" and "a-data" in records.recorded_buckets(table)
    assert sweep()[0] == Outcome()
    assert "a-data" in named()


def test_a_cursor_in_the_roles_phase_skips_the_roles_done(table: str) -> None:
    world.create_role("batch-worker")
    bucket("a-data", "batch-worker web-server")
    with throttled("iam", "CreatePolicy"):
        sweep()  # records the bucket; no role can be written
    outcome, _ = sweep(json.dumps({"phase": "roles", "after": "batch-worker"}))
    assert outcome == Outcome()
    policies = boto3.client("iam").list_policies(Scope="Local", PathPrefix="/rolewarden/")["Policies"]
    assert [p["PolicyName"] for p in policies] == ["rolewarden-grants-web-server"]


def test_a_cursor_with_an_unknown_phase_is_refused(table: str) -> None:
    outcome, _ = sweep(json.dumps({"phase": "tables", "after": None}))
    assert outcome.status == "dead" and "unknown phase 'tables'" in outcome.message
