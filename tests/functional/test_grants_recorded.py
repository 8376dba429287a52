"""Grants with the state table as the source of truth: the sweep's budget and cursor, a table that starts
empty under existing grants, and the cost of one bucket event. Real handlers and the capability against
the moto server over HTTP; the sweep's clock is a fake (a counter), so the budget is deterministic."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from rolewarden.aws import clients
from rolewarden.aws.executor import Executor
from rolewarden.capabilities.base import Outcome, Run
from rolewarden.capabilities.grants import CAPABILITY
from rolewarden.config import load_config
from rolewarden.model.targets import SWEEP
from rolewarden.runtime import Handler
from rolewarden.telemetry import Sink
from rwlocal import world
from rwlocal.configs import config_yaml
from rwlocal.pipeline import FakeContext

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
PATH = "/rolewarden/"
CONFIG = config_yaml(bucket_grants={"tag_prefix": "rolewarden:"})
ROLES = ("web-server", "batch-worker", "report-reader")


@pytest.fixture
def table(aws: Any, write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    write_config(CONFIG)
    name = world.create_state_table()
    monkeypatch.setenv("ROLEWARDEN_TABLE", name)
    for role in ROLES:
        world.create_role(role)
    yield name


def s3() -> Any:
    return boto3.client("s3")


def iam() -> Any:
    return boto3.client("iam")


def make(bucket: str, tags: dict[str, str] | None = None) -> None:
    s3().create_bucket(Bucket=bucket)
    if tags:
        s3().put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})


def bucket_event(bucket: str) -> dict[str, Any]:
    return dict(
        json.loads((EVENTS / "cloudtrail-s3-putbuckettagging.json").read_text().replace("example-data", bucket))
    )


def invoke(*events: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = Handler("bucket_grants")(world.as_sqs_event(*events), FakeContext("bucket-grants"))
    return result


def documents() -> dict[str, Any]:
    """Every generated policy's default document, read with the test's own client."""
    out = {}
    for page in iam().get_paginator("list_policies").paginate(Scope="Local", PathPrefix=PATH):
        for policy in page["Policies"]:
            version = iam().get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
            out[policy["PolicyName"]] = version["PolicyVersion"]["Document"]
    return out


def granted(role: str) -> dict[str, set[str]]:
    """bucket -> the S3 actions the role's generated policies grant on it (bucket and object ARNs)."""
    out: dict[str, set[str]] = {}
    for name, document in documents().items():
        if name != f"rolewarden-grants-{role}" and not name.startswith(f"rolewarden-grants-{role}-"):
            continue
        for statement in document["Statement"]:
            if "Condition" in statement:
                continue
            for resource in statement["Resource"]:
                bucket = resource.removeprefix("arn:aws:s3:::").removesuffix("/*")
                out.setdefault(bucket, set()).update(statement["Action"])
    return out


class FakeClock:
    """Each reading advances one tick: a sweep's budget is a number of budget checks, not seconds."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def sweep_part(cursor: str | None, budget: float | None) -> tuple[Outcome, Run]:
    sink = Sink()
    clock = FakeClock()
    run = Run(
        config=load_config(),
        sink=sink,
        executor=Executor(sink=sink, trigger="sweep-test"),
        trigger="sweep-test",
        deadline=None if budget is None else budget,
        cursor=cursor,
        clock=clock,
    )
    return CAPABILITY.reconcile(run, [SWEEP])[SWEEP], run


def _world() -> None:
    """18 buckets over three roles, two levels, one untagged, one protected-looking name irrelevant."""
    for index in range(18):
        role = ROLES[index % 3]
        tags = {"rolewarden:read": role}
        if index % 4 == 0:
            tags["rolewarden:write"] = ROLES[(index + 1) % 3]
        make(f"sweep-bucket-{index:02d}", tags if index != 7 else None)


def test_a_sweep_larger_than_its_budget_continues_from_its_cursor_and_ends_as_a_one_shot_sweep(table: str) -> None:
    _world()
    # A grant the tags no longer call for, made by an event before its tag was removed without an event.
    make("stale-grant", {"rolewarden:read": "web-server"})
    invoke(bucket_event("stale-grant"))
    s3().delete_bucket_tagging(Bucket="stale-grant")
    # A granted bucket deleted without an event reaching RoleWarden.
    make("gone-data", {"rolewarden:read": "batch-worker"})
    invoke(bucket_event("gone-data"))
    s3().delete_bucket_tagging(Bucket="gone-data")
    s3().delete_bucket(Bucket="gone-data")

    cursor: str | None = None
    parts = 0
    while True:
        parts += 1
        assert parts < 50, "the sweep never finished"
        outcome, _run = sweep_part(cursor, budget=5)
        assert outcome.status == "ok", outcome.message
        if outcome.continuation is None:
            break
        assert outcome.continuation != cursor, "a continuation must make progress"
        cursor = outcome.continuation
    assert parts > 3, "the world must be larger than one budget for this test to mean anything"

    chunked = documents()
    for role in ROLES:
        expected: dict[str, set[str]] = {}
        for index in range(18):
            if index == 7:
                continue
            if ROLES[index % 3] == role:
                expected.setdefault(f"sweep-bucket-{index:02d}", set()).update(
                    {
                        "s3:GetBucketLocation",
                        "s3:ListBucket",
                        "s3:ListBucketVersions",
                        "s3:GetObject",
                        "s3:GetObjectVersion",
                    }
                )
            if index % 4 == 0 and ROLES[(index + 1) % 3] == role:
                expected.setdefault(f"sweep-bucket-{index:02d}", set()).update(
                    {"s3:ListBucketMultipartUploads", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}
                )
        assert granted(role) == expected, role
    assert "stale-grant" not in json.dumps(chunked)
    assert "gone-data" not in json.dumps(chunked)
    recorded = boto3.client("dynamodb").scan(TableName=table)["Items"]
    assert not [i for i in recorded if "gone-data" in i["sk"]["S"]], "a deleted bucket is forgotten"

    # A one-shot sweep over the same world finds nothing to change: the chunked sweep ended where it would.
    outcome, run = sweep_part(None, budget=None)
    assert outcome == Outcome()
    assert [r for r in run.results if r.status == "applied"] == []
    assert documents() == chunked


def test_a_sweep_cursor_rolewarden_did_not_write_is_refused(table: str) -> None:
    outcome, _ = sweep_part("not json", budget=None)
    assert outcome.status == "dead" and "cursor" in outcome.message


def test_a_new_table_keeps_the_grants_made_before_it(
    aws: Any, write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table starts empty under roles that already hold grants (an upgrade): an event on another bucket
    must not drop them. The role's buckets are learnt once from its policies, then recorded."""
    write_config(CONFIG)
    world.create_role("web-server")
    make("old-data", {"rolewarden:read": "web-server"})
    invoke(bucket_event("old-data"))  # no ROLEWARDEN_TABLE: the IAM read-back design
    assert set(granted("web-server")) == {"old-data"}

    monkeypatch.setenv("ROLEWARDEN_TABLE", world.create_state_table())
    make("new-data", {"rolewarden:read": "web-server"})
    assert invoke(bucket_event("new-data")) == {"batchItemFailures": []}
    assert set(granted("web-server")) == {"old-data", "new-data"}


class Calls:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, model: Any, **_: Any) -> None:
        self.counts[f"{model.service_model.service_name}:{model.name}"] += 1


def test_one_bucket_event_is_cheap_and_writes_nothing_when_the_document_is_right(table: str) -> None:
    make("data-lake", {"rolewarden:read": "web-server"})
    make("other-data", {"rolewarden:read": "web-server"})
    invoke(bucket_event("data-lake"), bucket_event("other-data"))
    before = documents()

    calls = Calls()
    clients.add_hook("before-call", calls)
    try:
        assert invoke(bucket_event("data-lake")) == {"batchItemFailures": []}  # a duplicate: nothing changed
    finally:
        clients.remove_hook("before-call", calls)
    assert documents() == before
    iam_writes = {k for k in calls.counts if k.startswith("iam:") and not k.startswith(("iam:Get", "iam:List"))}
    assert iam_writes == set()
    assert calls.counts["iam:GetAccountAuthorizationDetails"] == 1
    # The table: the bucket's lease taken (with its record read in the same call) and given back, the role's
    # lease taken and given back, one Query of the role's record. Nothing rewritten when nothing changed.
    dynamodb = {k: v for k, v in calls.counts.items() if k.startswith("dynamodb:")}
    assert dynamodb == {"dynamodb:UpdateItem": 4, "dynamodb:Query": 1}


# -- a key change re-grants without a sweep (issue 10 defect 7) --------------------------------------------
def encryption_event(name: str, bucket: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text().replace("example-data", bucket)))


def kms_keys(role: str) -> dict[str, list[str]]:
    """KMS key ARN -> the encryption-context ARNs it is scoped to, in the role's generated policies."""
    out: dict[str, list[str]] = {}
    for document in documents().values():
        for statement in document["Statement"]:
            if "Condition" in statement:
                out[statement["Resource"]] = statement["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"]
    return out


def encrypt(bucket: str, key: str) -> None:
    s3().put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}}]
        },
    )


def test_a_bucket_key_change_moves_the_kms_grant_without_a_sweep(table: str) -> None:
    kms = boto3.client("kms")
    old_key = kms.create_key()["KeyMetadata"]["Arn"]
    new_key = kms.create_key()["KeyMetadata"]["Arn"]
    make("vault-data", {"rolewarden:read": "report-reader"})
    encrypt("vault-data", old_key)
    invoke(bucket_event("vault-data"))
    scope = ["arn:aws:s3:::vault-data", "arn:aws:s3:::vault-data/*"]
    assert kms_keys("report-reader") == {old_key: scope}

    encrypt("vault-data", new_key)
    assert invoke(encryption_event("cloudtrail-s3-putbucketencryption.json", "vault-data")) == {"batchItemFailures": []}
    assert kms_keys("report-reader") == {new_key: scope}

    s3().delete_bucket_encryption(Bucket="vault-data")
    assert invoke(encryption_event("cloudtrail-s3-deletebucketencryption.json", "vault-data")) == {
        "batchItemFailures": []
    }
    assert kms_keys("report-reader") == {}
    assert set(granted("report-reader")) == {"vault-data"}  # the S3 grant itself stays
