"""Bucket grants when AWS answers with an error: each read, lease and record call turns the error into a
retry-typed outcome and writes nothing it should not. Real boto3 clients over HTTP to the moto server;
the errors moto cannot produce on demand (throttling, a denied read, a bucket deleted between two reads,
a lost connection) are injected at the botocore level on RoleWarden's own clients (a before-call hook
raising the real error shape)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from rolewarden.aws import clients, leases
from rolewarden.aws.executor import Executor
from rolewarden.aws.grants import records
from rolewarden.capabilities.base import Outcome, Run
from rolewarden.capabilities.grants import CAPABILITY
from rolewarden.config import load_config
from rolewarden.errors import PermanentError, RetryableError
from rolewarden.model.grants import BucketGrant
from rolewarden.model.targets import SWEEP, Target
from rolewarden.telemetry import Sink
from rwlocal import world
from tests.functional.helpers import GRANTS_CONFIG, WEB_SERVER_GRANT_POLICY

CONFIG = GRANTS_CONFIG
POLICY = WEB_SERVER_GRANT_POLICY


@contextmanager
def answer(service: str, operation: str, code: str | None, status: int = 400) -> Iterator[None]:
    """Every ``operation`` call of RoleWarden's ``service`` client fails with ``code`` (None: no connection)."""

    def fail(**_: Any) -> None:
        if code is None:
            raise EndpointConnectionError(endpoint_url=f"https://{service}.example")
        error = {"Error": {"Code": code, "Message": f"injected {code}"}, "ResponseMetadata": {"HTTPStatusCode": status}}
        raise ClientError(error, operation)  # type: ignore[arg-type]

    client = clients.client(service)
    client.meta.events.register(f"before-call.{client.meta.service_model.service_id.hyphenize()}.{operation}", fail)
    try:
        yield
    finally:
        client.meta.events.unregister(
            f"before-call.{client.meta.service_model.service_id.hyphenize()}.{operation}", fail
        )


@pytest.fixture
def world_ready(aws: Any, write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(CONFIG)
    monkeypatch.delenv("ROLEWARDEN_TABLE", raising=False)
    world.create_role("web-server")


def tag(bucket: str, encryption: str | None = None) -> None:
    s3: Any = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "rolewarden:read", "Value": "web-server"}]})
    if encryption:
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": encryption}}]
            },
        )


def reconcile(*targets: Target) -> dict[Target, Outcome]:
    sink = Sink()
    run = Run(config=load_config(), sink=sink, executor=Executor(sink=sink, trigger="errors"), trigger="errors")
    return CAPABILITY.reconcile(run, list(targets))


def document() -> dict[str, Any] | None:
    iam: Any = boto3.client("iam")
    try:
        version = iam.get_policy(PolicyArn=POLICY)["Policy"]["DefaultVersionId"]
    except iam.exceptions.NoSuchEntityException:
        return None
    return dict(iam.get_policy_version(PolicyArn=POLICY, VersionId=version)["PolicyVersion"]["Document"])


# -- reads (the IAM read-back design: no state table) ------------------------------------------------------------
@pytest.mark.parametrize(
    ("operation", "code", "status"),
    [
        pytest.param("GetBucketTagging", "SlowDown", "retry", id="tags-throttled"),
        pytest.param("GetBucketEncryption", "AccessDenied", "retry", id="encryption-denied"),
        pytest.param("GetBucketEncryption", "InvalidRequest", "dead", id="encryption-refused"),
        pytest.param("GetBucketTagging", None, "retry", id="no-connection"),
    ],
)
def test_a_bucket_that_cannot_be_read_fails_its_target_and_writes_nothing(
    world_ready: None, operation: str, code: str | None, status: str
) -> None:
    tag("a-data")
    with answer("s3", operation, code):
        outcome = reconcile(Target("bucket", "a-data"))[Target("bucket", "a-data")]
    assert outcome.status == status and "s3 read of bucket a-data failed" in outcome.message
    assert document() is None


def test_a_bucket_deleted_between_its_two_reads_is_revoked(world_ready: None) -> None:
    tag("a-data")
    tag("b-data")
    reconcile(Target("bucket", "a-data"), Target("bucket", "b-data"))
    with answer("s3", "GetBucketEncryption", "NoSuchBucket", 404):
        assert reconcile(Target("bucket", "a-data")) == {Target("bucket", "a-data"): Outcome()}
    current = document()
    assert current is not None and "arn:aws:s3:::a-data/*" not in json.dumps(current)
    assert "arn:aws:s3:::b-data/*" in json.dumps(current)


def test_an_sse_s3_bucket_needs_no_key_statement(world_ready: None) -> None:
    tag("a-data", encryption="AES256")
    assert reconcile(Target("bucket", "a-data")) == {Target("bucket", "a-data"): Outcome()}
    current = document()
    assert current is not None and not [s for s in current["Statement"] if s["Sid"].startswith("Kms")]


@pytest.mark.parametrize(
    ("service", "operation", "target"),
    [
        pytest.param("s3", "ListBuckets", SWEEP, id="listing"),
        pytest.param("iam", "GetAccountAuthorizationDetails", Target("bucket", "a-data"), id="iam-snapshot"),
    ],
)
def test_a_failed_listing_or_iam_read_fails_every_target(
    world_ready: None, service: str, operation: str, target: Target
) -> None:
    tag("a-data")
    with answer(service, operation, "Throttling"):
        outcome = reconcile(target)[target]
    assert outcome.status == "retry" and operation in outcome.message.replace("s3:", "").replace("iam:", "")
    assert document() is None


def test_a_write_iam_refuses_for_good_sends_the_target_to_the_dlq(world_ready: None) -> None:
    tag("a-data")
    with answer("iam", "CreatePolicy", "MalformedPolicyDocument"):
        outcome = reconcile(Target("bucket", "a-data"))[Target("bucket", "a-data")]
    assert outcome.status == "dead" and "MalformedPolicyDocument" in outcome.message
    assert document() is None


# -- leases and records in the state table -----------------------------------------------------------------------
@pytest.fixture
def table(aws: Any) -> str:
    return world.create_state_table()


KEY = {"pk": {"S": "test#lease"}, "sk": {"S": "item"}}


def item(table: str) -> dict[str, Any]:
    return dict(boto3.client("dynamodb").get_item(TableName=table, Key=KEY, ConsistentRead=True).get("Item", {}))


def test_a_lease_is_taken_once_and_given_back_only_by_its_owner(table: str) -> None:
    assert leases.take(table, KEY, "first", now=100.0, seconds=60.0, old=False) is not None
    assert leases.take(table, KEY, "second", now=110.0, seconds=60.0, old=False) is None  # held
    leases.give_back(table, KEY, "second", {"x": {"S": "not written"}})  # not the owner: nothing
    assert item(table)["lease_owner"] == {"S": "first"} and "x" not in item(table)
    taken = leases.take(table, KEY, "third", now=200.0, seconds=60.0, old=True)  # expired: taken over
    assert taken["Attributes"]["lease_owner"] == {"S": "first"}
    leases.give_back(table, KEY, "third", {"x": {"S": "written"}})
    assert item(table)["x"] == {"S": "written"} and "lease_owner" not in item(table)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        pytest.param("ThrottlingException", RetryableError, id="throttled"),
        pytest.param("ValidationException", PermanentError, id="refused"),
        pytest.param(None, RetryableError, id="no-connection"),
    ],
)
def test_lease_calls_that_fail_raise_retry_typed_errors(table: str, code: str | None, error: type[Exception]) -> None:
    with answer("dynamodb", "UpdateItem", code), pytest.raises(error, match="dynamodb:UpdateItem"):
        leases.take(table, KEY, "owner", now=100.0, seconds=60.0, old=False)
    assert leases.take(table, KEY, "owner", now=100.0, seconds=60.0, old=False) is not None
    with answer("dynamodb", "UpdateItem", code), pytest.raises(error, match="dynamodb:UpdateItem"):
        leases.give_back(table, KEY, "owner", {})
    assert item(table)["lease_owner"] == {"S": "owner"}


def test_a_bucket_record_is_leased_recorded_and_forgotten(table: str) -> None:
    grant = {"web-server": BucketGrant("a-data", ("read",))}
    assert records.lease_bucket(table, "a-data", "one", 100.0, 60.0) == (True, None)
    assert records.lease_bucket(table, "a-data", "two", 110.0, 60.0) == (False, None)
    records.release_bucket(table, "a-data", "one", grant, 120.0)
    assert records.recorded_buckets(table) == {"a-data": grant}
    assert records.lease_bucket(table, "a-data", "two", 130.0, 60.0) == (True, grant)
    records.release_bucket(table, "a-data", "one", {}, 140.0, gone=True)  # not the owner any more: kept
    assert records.recorded_buckets(table) == {"a-data": grant}
    with answer("dynamodb", "DeleteItem", "ThrottlingException"), pytest.raises(RetryableError, match="DeleteItem"):
        records.release_bucket(table, "a-data", "two", {}, 150.0, gone=True)
    with answer("dynamodb", "DeleteItem", None), pytest.raises(RetryableError, match="DeleteItem"):
        records.release_bucket(table, "a-data", "two", {}, 150.0, gone=True)
    records.release_bucket(table, "a-data", "two", {}, 160.0, gone=True)
    assert records.recorded_buckets(table) == {}


def test_a_failed_query_of_the_record_raises_a_retry_typed_error(table: str) -> None:
    with (
        answer("dynamodb", "Query", "ProvisionedThroughputExceededException", 400),
        pytest.raises(PermanentError, match="dynamodb:Query"),
    ):
        records.role_record(table, "web-server")
    with answer("dynamodb", "Query", "InternalServerError", 500), pytest.raises(RetryableError, match="dynamodb:Query"):
        records.role_record(table, "web-server")
