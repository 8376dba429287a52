"""``rolewarden explain`` for bucket grants (operator/grants.py), beyond what the CLI tests show: a
customer key, unusable and unknown levels, a bucket that does not exist or cannot be read, a role named
by a refused tag and a sweep that meets an unreadable bucket, and the dry-run note. Real boto3 clients
over HTTP to the moto server; the read errors moto cannot produce are injected at the botocore level."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from rolewarden.aws import clients
from rolewarden.config import Config, load_config
from rolewarden.errors import RetryableError
from rolewarden.operator.grants import explain, explain_role
from rwlocal import world

KEY = "arn:aws:kms:us-east-1:123456789012:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
CONFIG = """
version: 1
managed_path: /rolewarden/
bucket_grants:
  tag_prefix: "rolewarden:"
  levels:
    read: [s3:GetObject, s3:GetObjectVersion, s3:ListBucket, s3:ListBucketVersions]
    admin: [s3:PutBucketPolicy]
"""


@pytest.fixture
def config(aws: Any, write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[Config]:
    monkeypatch.delenv("ROLEWARDEN_TABLE", raising=False)
    write_config(CONFIG)
    world.create_role("web-server")
    yield load_config()


def bucket(name: str, tags: dict[str, str], key: str | None = None) -> None:
    """A tagged bucket; ``key``: its default KMS key, or "AES256" for SSE-S3."""
    s3: Any = boto3.client("s3")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
    if key:
        by_default = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key} if key != "AES256" else {"SSEAlgorithm": key}
        rule = {"ApplyServerSideEncryptionByDefault": by_default}
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [rule]})


def failing(operation: str) -> Callable[..., None]:
    def fail(**_: Any) -> None:
        error: Any = {"Error": {"Code": "SlowDown", "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": 503}}
        raise ClientError(error, operation)

    return fail


def test_explain_shows_the_key_and_every_kind_of_level(config: Config) -> None:
    bucket("keyed-data", {"rolewarden:read": "web-server", "rolewarden:admin": "web-server", "rolewarden:x": "a"}, KEY)
    report = explain(config, "keyed-data")
    assert report["encryption"].startswith(f"SSE-KMS with customer key {KEY}")
    levels = {entry["level"]: entry for entry in report["levels"]}
    assert levels["read"]["granted to"] == ["web-server"]
    assert levels["admin"]["actions"] == "unusable: s3:PutBucketPolicy are not S3 actions RoleWarden grants"
    assert levels["x"]["actions"] == "unknown level (not in bucket_grants.levels)"
    statements = report["roles"]["web-server"]["policy documents"][0]["statements"]
    assert any("(only through bucket(s) keyed-data)" in s for s in statements)
    assert report["roles"]["web-server"]["grants"] == [{"bucket": "keyed-data", "levels": ["read"], "kms_key": KEY}]


def test_explain_of_a_bucket_without_grant_tags_or_that_does_not_exist(config: Config) -> None:
    bucket("plain-data", {"team": "web"})
    report = explain(dataclasses.replace(config, dry_run=True), "plain-data")
    assert report["encryption"] == "not read (the bucket has no grant tags)"
    assert report["roles"] == "(none: no role holds or is granted this bucket)"
    assert report["note"] == "dry_run is true: RoleWarden would only log this"
    gone = explain(config, "no-such-data")
    assert gone["exists"].startswith("no: the bucket does not exist") and gone["tags"] == "(none)"


def test_explain_of_a_bucket_that_cannot_be_read_raises_a_retryable_error(config: Config) -> None:
    bucket("slow-data", {"rolewarden:read": "web-server"})
    s3 = clients.client("s3")
    hook = failing("GetBucketTagging")
    s3.meta.events.register("before-call.s3.GetBucketTagging", hook)
    try:
        with pytest.raises(RetryableError, match="s3 read of bucket slow-data failed: SlowDown"):
            explain(config, "slow-data")
    finally:
        s3.meta.events.unregister("before-call.s3.GetBucketTagging", hook)


def test_explain_role_names_refusals_and_unreadable_buckets(config: Config) -> None:
    world.create_role("elsewhere", path="/other/")
    bucket("shared-data", {"rolewarden:read": "web-server elsewhere"})
    bucket("slow-data", {"rolewarden:read": "web-server"})
    s3 = clients.client("s3")
    calls = {"n": 0}

    def slow_second_bucket(params: dict[str, Any], **_: Any) -> None:
        if params.get("Bucket") == "slow-data":
            calls["n"] += 1
            failing("GetBucketTagging")()

    s3.meta.events.register("before-parameter-build.s3.GetBucketTagging", slow_second_bucket)
    try:
        report = explain_role(config, "elsewhere")
        mine = explain_role(config, "web-server")
    finally:
        s3.meta.events.unregister("before-parameter-build.s3.GetBucketTagging", slow_second_bucket)
    assert calls["n"] == 2
    assert report["granted by bucket tags"] == "(none)" and report["would do"] == "nothing"
    assert report["refused grants naming it"] == [
        "bucket shared-data: tag rolewarden:read: 'elsewhere' refused: the role's path /other/ is outside "
        "the managed path /rolewarden/"
    ]
    assert report["unreadable buckets"][0].startswith("slow-data: cannot read bucket slow-data")
    assert mine["granted by bucket tags"] == [{"bucket": "shared-data", "levels": ["read"]}]
    assert mine["generated policies today"] == "(none)"


def test_explain_of_keys_it_cannot_use_and_of_a_role_with_policies_today(config: Config) -> None:
    from rolewarden.aws.executor import Executor
    from rolewarden.capabilities.base import Run
    from rolewarden.capabilities.grants import CAPABILITY
    from rolewarden.model.targets import Target
    from rolewarden.telemetry import Sink

    bucket("aliased-data", {"rolewarden:read": "web-server"}, "alias/team-key")
    aliased = explain(config, "aliased-data")
    assert "names KMS key 'alias/team-key' by id or alias" in aliased["encryption"]
    assert [f.split(":")[0] for f in aliased["findings"]] == ["kms-key-unresolved"]
    bucket("plain-data", {"rolewarden:read": "web-server"}, "AES256")
    assert explain(config, "plain-data")["encryption"].startswith("no customer key (SSE-S3 or aws/s3)")

    sink = Sink()
    run = Run(config=config, sink=sink, executor=Executor(sink=sink, trigger="test"), trigger="test")
    CAPABILITY.reconcile(run, [Target("bucket", "plain-data")])
    world.create_role("elsewhere", path="/other/")
    policy = "arn:aws:iam::123456789012:policy/rolewarden/rolewarden-grants-web-server"
    boto3.client("iam").attach_role_policy(RoleName="elsewhere", PolicyArn=policy)
    report = explain_role(config, "web-server")
    (today,) = report["generated policies today"]
    assert today["policy"] == policy and today["default version"] == "v1"
    assert today["attached to"] == ["elsewhere", "web-server"] and today["buckets named"] == ["plain-data"]
    assert [f.split(":")[0] for f in report["findings"]] == ["grant-policy-attached-outside"]
