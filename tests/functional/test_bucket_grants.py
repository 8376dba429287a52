"""Bucket tags drive S3 grants: the real handler (functions/bucket_grants/app.py) against the moto server
over HTTP, with real-shaped CloudTrail events from events/.

moto does not enforce IAM's 6,144-character policy limit nor the 10-attached-policies quota (aws-notes
§7.4): the size of every generated document is measured here, and the refusals are RoleWarden's own.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from rolewarden import telemetry
from rolewarden.aws import clients
from rolewarden.decide.grants.render import MAX_POLICY_CHARS, policy_size
from rwlocal import world
from rwlocal.configs import config_yaml
from rwlocal.pipeline import FakeContext
from tests.functional.helpers import load_app

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
PATH = "/rolewarden/"
CONFIG = config_yaml(
    bucket_grants={
        "tag_prefix": "rolewarden:",
        "protected_buckets": ["*-audit-logs", "rolewarden-*"],
        "max_policies_per_role": 5,
    }
)


# -- harness ----------------------------------------------------------------------------------------
class RecordingSink(telemetry.Sink):
    made: list[RecordingSink] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        RecordingSink.made.append(self)


@pytest.fixture(scope="module")
def app() -> Any:
    return load_app("bucket_grants")


@pytest.fixture
def grants(aws: Any, app: Any, write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Invoke the handler with events; ``grants.sink`` is the last invocation's sink."""
    monkeypatch.setattr("rolewarden.powertools.Sink", RecordingSink)
    RecordingSink.made.clear()
    write_config(CONFIG)

    class Invoker:
        def __call__(self, *events: dict[str, Any] | str) -> dict[str, Any]:
            result: dict[str, Any] = app.lambda_handler(world.as_sqs_event(*events), FakeContext("bucket-grants"))
            return result

        @property
        def sink(self) -> RecordingSink:
            return RecordingSink.made[-1]

    yield Invoker()


def event(name: str, bucket: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text().replace("example-data", bucket)))


def tagged(bucket: str) -> dict[str, Any]:
    return event("cloudtrail-s3-putbuckettagging.json", bucket)


def sweep() -> dict[str, Any]:
    return dict(json.loads((EVENTS / "scheduled-sweep.json").read_text()))


def s3() -> Any:
    return boto3.client("s3")


def iam() -> Any:
    return boto3.client("iam")


def make_bucket(name: str, tags: dict[str, str] | None = None, kms_key: str | None = None) -> None:
    s3().create_bucket(Bucket=name)
    if tags:
        set_tags(name, tags)
    if kms_key:
        s3().put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key}}
                ]
            },
        )


def set_tags(bucket: str, tags: dict[str, str]) -> None:
    s3().put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})


def policy_arn(name: str) -> str:
    return f"arn:aws:iam::123456789012:policy{PATH}{name}"


def generated(role: str | None = None) -> dict[str, dict[str, Any]]:
    """Generated grant policies in IAM: name -> {arn, default, versions, document, attached}."""
    found: dict[str, dict[str, Any]] = {}
    for page in iam().get_paginator("list_policies").paginate(Scope="Local", PathPrefix=PATH):
        for policy in page["Policies"]:
            name = policy["PolicyName"]
            if not name.startswith("rolewarden-grants-"):
                continue
            if role is not None and not (
                name == f"rolewarden-grants-{role}" or name.startswith(f"rolewarden-grants-{role}-")
            ):
                continue
            versions = iam().list_policy_versions(PolicyArn=policy["Arn"])["Versions"]
            document = iam().get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
            entities = iam().list_entities_for_policy(PolicyArn=policy["Arn"])["PolicyRoles"]
            found[name] = {
                "arn": policy["Arn"],
                "default": policy["DefaultVersionId"],
                "versions": sorted((v["VersionId"] for v in versions), key=lambda v: int(v[1:])),
                "document": document["PolicyVersion"]["Document"],
                "attached": sorted(r["RoleName"] for r in entities),
            }
    return found


def statements(document: dict[str, Any]) -> dict[str, tuple[list[str], Any]]:
    return {s["Sid"]: (s["Action"], s["Resource"]) for s in document["Statement"]}


def findings(sink: telemetry.Sink, rule: str) -> list[Any]:
    return [f for f in sink.findings if f.rule == rule]


@pytest.fixture
def roles(aws: Any) -> None:
    world.create_role("web-server")
    world.create_role("batch-worker")
    world.create_role("outsider", path="/other/")


class CallCounter:
    """Counts the AWS operations RoleWarden's own clients make (a botocore event hook, no mock)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.hooked: list[Any] = []

    def __call__(self, model: Any, **kwargs: Any) -> None:
        self.calls[model.name] += 1

    def attach(self) -> CallCounter:
        for service in ("iam", "s3"):
            made = clients.client(service)
            made.meta.events.register(f"before-call.{service}.*", self)
            self.hooked.append(made)
        return self

    def writes(self) -> dict[str, int]:
        return {k: v for k, v in self.calls.items() if not k.startswith(("Get", "List"))}


# -- grant, narrow, revoke ------------------------------------------------------------------------------
def test_tagging_a_bucket_grants_read_to_the_named_role(grants: Any, roles: None) -> None:
    make_bucket("data-lake", {"rolewarden:read": "web-server", "team": "data"})
    assert grants(tagged("data-lake")) == {"batchItemFailures": []}

    policies = generated("web-server")
    assert list(policies) == ["rolewarden-grants-web-server"]
    policy = policies["rolewarden-grants-web-server"]
    assert policy["attached"] == ["web-server"]
    assert statements(policy["document"]) == {
        "ReadBuckets": (
            ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketVersions"],
            ["arn:aws:s3:::data-lake"],
        ),
        "ReadObjects": (["s3:GetObject", "s3:GetObjectVersion"], ["arn:aws:s3:::data-lake/*"]),
    }
    assert generated("batch-worker") == {}
    records = [r["record"] for r in grants.sink.records if "record" in r]
    assert records and records[0]["kind"] == "rotation"
    assert records[0]["data"]["version"] == "v1"
    assert records[0]["data"]["trigger"] == "3c1e7b2a-51a4-4a8e-9d33-0f1b2c3d4e51"  # the event id
    assert grants.sink.counts["GrantPolicyCreated"] == 1


def test_narrowing_and_revoking_rotate_then_delete(grants: Any, roles: None) -> None:
    make_bucket("alpha-data", {"rolewarden:read": "web-server", "rolewarden:write": "web-server batch-worker"})
    make_bucket("beta-data", {"rolewarden:read": "web-server"})
    grants(tagged("alpha-data"), tagged("beta-data"))
    before = generated("web-server")["rolewarden-grants-web-server"]
    assert "ReadWriteObjects" in statements(before["document"])

    set_tags("alpha-data", {"rolewarden:read": "web-server"})  # narrow: write removed
    assert grants(tagged("alpha-data")) == {"batchItemFailures": []}
    after = generated("web-server")["rolewarden-grants-web-server"]
    assert after["versions"] == ["v1", "v2"] and after["default"] == "v2"
    assert statements(after["document"]) == {
        "ReadBuckets": (
            ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketVersions"],
            ["arn:aws:s3:::alpha-data", "arn:aws:s3:::beta-data"],
        ),
        "ReadObjects": (
            ["s3:GetObject", "s3:GetObjectVersion"],
            ["arn:aws:s3:::alpha-data/*", "arn:aws:s3:::beta-data/*"],
        ),
    }
    assert generated("batch-worker") == {}, "batch-worker lost its only grant: its policy is deleted"
    assert "GrantPolicyDeleted" in grants.sink.counts

    s3().delete_bucket_tagging(Bucket="alpha-data")
    s3().delete_bucket_tagging(Bucket="beta-data")
    assert grants(
        event("cloudtrail-s3-deletebuckettagging.json", "alpha-data"),
        event("cloudtrail-s3-deletebuckettagging.json", "beta-data"),
    ) == {"batchItemFailures": []}
    assert generated() == {}
    attached = iam().list_attached_role_policies(RoleName="web-server")["AttachedPolicies"]
    assert attached == []


def test_deleted_bucket_is_revoked(grants: Any, roles: None) -> None:
    make_bucket("temp-data", {"rolewarden:read": "web-server"})
    make_bucket("keep-data", {"rolewarden:read": "web-server"})
    grants(tagged("temp-data"), tagged("keep-data"))
    s3().delete_bucket_tagging(Bucket="temp-data")
    s3().delete_bucket(Bucket="temp-data")
    grants(event("cloudtrail-s3-deletebucket.json", "temp-data"))
    document = generated("web-server")["rolewarden-grants-web-server"]["document"]
    assert "temp-data" not in json.dumps(document)
    assert "arn:aws:s3:::keep-data" in json.dumps(document)


def test_write_level_and_customer_kms_keys(grants: Any, roles: None) -> None:
    kms = boto3.client("kms")
    write_key = kms.create_key()["KeyMetadata"]["Arn"]
    read_key = kms.create_key()["KeyMetadata"]["Arn"]
    make_bucket("uploads", {"rolewarden:write": "batch-worker"}, kms_key=write_key)
    make_bucket("reports", {"rolewarden:read": "batch-worker"}, kms_key=read_key)
    make_bucket("aws-managed", {"rolewarden:read": "batch-worker"}, kms_key="alias/aws/s3")
    grants(tagged("uploads"), tagged("reports"), tagged("aws-managed"))

    document = generated("batch-worker")["rolewarden-grants-batch-worker"]["document"]
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    assert by_sid["WriteBuckets"]["Action"] == ["s3:ListBucketMultipartUploads"]
    assert by_sid["WriteObjects"]["Action"] == ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:PutObject"]
    kms_statements = {s["Resource"]: s for s in document["Statement"] if s["Sid"].startswith("Kms")}
    assert set(kms_statements) == {write_key, read_key}, "only customer keys are named, never aws/s3"
    assert kms_statements[write_key]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert kms_statements[read_key]["Action"] == ["kms:Decrypt"]
    assert kms_statements[read_key]["Condition"] == {
        "StringLike": {"kms:EncryptionContext:aws:s3:arn": ["arn:aws:s3:::reports", "arn:aws:s3:::reports/*"]}
    }


def test_kms_key_named_by_alias_is_a_finding_not_a_guess(grants: Any, roles: None) -> None:
    make_bucket("aliased", {"rolewarden:read": "web-server"}, kms_key="alias/team-key")
    grants(tagged("aliased"))
    assert findings(grants.sink, "kms-key-unresolved")
    document = generated("web-server")["rolewarden-grants-web-server"]["document"]
    assert not [s for s in document["Statement"] if s["Sid"].startswith("Kms")]


# -- versions ------------------------------------------------------------------------------------------
def test_many_changes_keep_five_versions_pruning_the_oldest(grants: Any, roles: None) -> None:
    make_bucket("churn-data")
    levels = ["rolewarden:read", "rolewarden:write"]
    for index in range(8):  # alternate read and write: every change is a new document
        set_tags("churn-data", {levels[index % 2]: "web-server"})
        assert grants(tagged("churn-data")) == {"batchItemFailures": []}
    policy = generated("web-server")["rolewarden-grants-web-server"]
    assert policy["versions"] == ["v4", "v5", "v6", "v7", "v8"]
    assert policy["default"] == "v8"
    assert "WriteObjects" in statements(policy["document"])


def test_unchanged_retrigger_writes_nothing(grants: Any, roles: None) -> None:
    make_bucket("steady-data", {"rolewarden:read": "web-server batch-worker"})
    grants(tagged("steady-data"))
    before = generated()
    counter = CallCounter().attach()
    assert grants(tagged("steady-data"), event("tag-change-bucket.json", "steady-data")) == {"batchItemFailures": []}
    assert counter.writes() == {}, f"an unchanged document must cost no write: {counter.writes()}"
    assert generated() == before
    assert [v["versions"] for v in before.values()] == [["v1"], ["v1"]]


def test_drifted_default_version_is_restored(grants: Any, roles: None) -> None:
    from rolewarden import capabilities
    from rolewarden.aws.executor import Executor
    from rolewarden.capabilities.base import Run
    from rolewarden.config import load_config
    from rolewarden.model.targets import Target

    make_bucket("drift-data", {"rolewarden:read": "web-server"})
    grants(tagged("drift-data"))
    set_tags("drift-data", {"rolewarden:write": "web-server"})
    grants(tagged("drift-data"))
    arn = policy_arn("rolewarden-grants-web-server")
    iam().set_default_policy_version(PolicyArn=arn, VersionId="v1")  # someone rolls the grant back by hand

    sink = telemetry.Sink()
    run = Run(config=load_config(), sink=sink, executor=Executor(sink=sink))
    outcomes = capabilities.get("bucket_grants").reconcile(run, [Target("policy", arn)])
    assert outcomes == {Target("policy", arn): outcomes[Target("policy", arn)]}
    assert outcomes[Target("policy", arn)].status == "ok"
    policy = generated("web-server")["rolewarden-grants-web-server"]
    assert policy["default"] == "v2", "the newest version held the right document: set it default again"
    assert policy["versions"] == ["v1", "v2"]
    assert sink.counts["PolicyRestored"] == 1


def test_a_policy_edited_by_hand_is_rewritten_by_the_sweep(grants: Any, roles: None) -> None:
    make_bucket("edit-data", {"rolewarden:read": "web-server"})
    grants(tagged("edit-data"))
    arn = policy_arn("rolewarden-grants-web-server")
    wide = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    iam().create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(wide), SetAsDefault=True)
    assert grants(sweep()) == {"batchItemFailures": []}
    policy = generated("web-server")["rolewarden-grants-web-server"]
    assert policy["default"] == "v3"
    assert "s3:*" not in json.dumps(policy["document"])


# -- size ------------------------------------------------------------------------------------------------
def test_hundreds_of_buckets_split_across_numbered_policies(grants: Any, roles: None) -> None:
    buckets = [f"analytics-bucket-{i:04d}" for i in range(300)]
    for name in buckets:
        make_bucket(name, {"rolewarden:read": "web-server", "rolewarden:write": "web-server"})
    assert grants(sweep()) == {"batchItemFailures": []}

    policies = generated("web-server")
    names = sorted(policies, key=lambda n: (len(n), n))
    assert names[0] == "rolewarden-grants-web-server"
    assert names[1:] == [f"rolewarden-grants-web-server-{i}" for i in range(2, len(names) + 1)]
    assert 2 <= len(policies) <= 5
    granted: set[str] = set()
    for policy in policies.values():
        # moto accepts any size; IAM counts characters without whitespace and stops at 6,144.
        assert policy_size(json.dumps(policy["document"])) <= MAX_POLICY_CHARS
        assert policy["attached"] == ["web-server"]
        for statement in policy["document"]["Statement"]:
            granted.update(r.split(":::")[1].removesuffix("/*") for r in statement["Resource"])
    assert granted == set(buckets), "every bucket is granted, none silently dropped"

    # One more bucket through an event: the split stays deterministic and only changed parts rotate.
    make_bucket("analytics-bucket-9999", {"rolewarden:read": "web-server"})
    grants(tagged("analytics-bucket-9999"))
    after = generated("web-server")
    changed = [n for n in after if after[n]["default"] != policies.get(n, {}).get("default")]
    assert changed == [names[-1]] or changed == [*names[-1:], *(n for n in after if n not in policies)]


def test_grants_that_do_not_fit_are_refused_whole(grants: Any, roles: None, write_config: Callable[..., Path]) -> None:
    write_config(CONFIG, bucket_grants={"max_policies_per_role": 1, "protected_buckets": []})
    make_bucket("small-data", {"rolewarden:read": "web-server"})
    grants(tagged("small-data"))
    before = generated("web-server")
    for i in range(80):
        make_bucket(
            f"overflow-bucket-number-{i:03d}", {"rolewarden:read": "web-server", "rolewarden:write": "web-server"}
        )
    assert grants(sweep()) == {"batchItemFailures": []}
    assert generated("web-server") == before, "the current versions are kept, nothing partial is published"
    refused = findings(grants.sink, "grants-too-large")
    assert refused and refused[0].resource == "role/web-server"
    assert grants.sink.counts["GrantsTooLarge"] == 1


# -- untrusted tag values ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        pytest.param("*", id="wildcard"),
        pytest.param("web-*", id="wildcard-suffix"),
        pytest.param("arn:aws:iam::123456789012:role/rolewarden/web-server", id="role-arn"),
        pytest.param("rolewarden/web-server", id="path"),
        pytest.param("w" * 256, id="256-char-value"),
        pytest.param("web\x7fserver", id="control-character"),
        pytest.param('{"Effect":"Allow","Action":"*"}', id="json-fragment"),
        pytest.param('web-server"],"Resource":["*', id="json-injection"),
        pytest.param("outsider", id="role-outside-managed-path"),
        pytest.param("ghost-role", id="unknown-role"),
    ],
)
def test_bad_tag_values_are_refused(grants: Any, roles: None, value: str) -> None:
    make_bucket("target-data", {"rolewarden:read": value})
    assert grants(tagged("target-data")) == {"batchItemFailures": []}
    assert generated() == {}
    refused = findings(grants.sink, "grant-refused")
    assert len(refused) == 1 and refused[0].resource == "target-data"
    assert grants.sink.counts["GrantsRefused"] == 1


def test_good_names_next_to_bad_ones_are_still_granted(grants: Any, roles: None) -> None:
    make_bucket("mixed-data", {"rolewarden:read": "web-server * outsider batch-worker"})
    grants(tagged("mixed-data"))
    assert sorted(generated()) == ["rolewarden-grants-batch-worker", "rolewarden-grants-web-server"]
    assert len(findings(grants.sink, "grant-refused")) == 2
    assert "*" not in json.dumps(generated()["rolewarden-grants-web-server"]["document"]).replace("/*", "")


def test_protected_bucket_is_never_granted(grants: Any, roles: None) -> None:
    make_bucket("acme-audit-logs", {"rolewarden:read": "web-server"})
    grants(tagged("acme-audit-logs"))
    assert generated() == {}
    assert findings(grants.sink, "protected-bucket")


def test_s3_control_tag_resource_and_tag_change_events(grants: Any, roles: None) -> None:
    s3().create_bucket(Bucket="abac-data")
    # The S3 Control endpoint is <account>.<host>, which does not resolve for a local server; moto shares
    # the tagger between s3control TagResource and GetBucketTagging, so put the tags with S3 directly.
    set_tags("abac-data", {"rolewarden:write": "batch-worker"})
    grants(event("cloudtrail-s3-tagresource.json", "abac-data"))
    assert "WriteObjects" in statements(generated("batch-worker")["rolewarden-grants-batch-worker"]["document"])
    s3().delete_bucket_tagging(Bucket="abac-data")
    grants(event("tag-change-bucket.json", "abac-data"))
    assert generated() == {}


# -- dry run, malformed events ----------------------------------------------------------------------------
def test_dry_run_logs_planned_versions_and_writes_nothing(
    grants: Any, roles: None, write_config: Callable[..., Path]
) -> None:
    write_config(CONFIG, dry_run=True)
    make_bucket("plan-data", {"rolewarden:read": "web-server"})
    counter = CallCounter().attach()
    assert grants(tagged("plan-data")) == {"batchItemFailures": []}
    assert generated() == {}
    assert counter.writes() == {}
    planned = [
        r for r in grants.sink.records if r["message"].startswith("DRY RUN: would create rolewarden-grants-web-server")
    ]
    assert len(planned) == 1
    assert "arn:aws:s3:::plan-data/*" in planned[0]["planned"]["document"]


def test_malformed_records_go_to_the_dlq_and_good_ones_still_apply(
    grants: Any, roles: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    dlq = boto3.client("sqs").create_queue(QueueName="bucket-grants-dlq")["QueueUrl"]
    monkeypatch.setenv("ROLEWARDEN_DLQ_URL", dlq)
    make_bucket("good-data", {"rolewarden:read": "web-server"})
    bad_name = tagged("good-data")
    bad_name["detail"]["requestParameters"]["bucketName"] = "Not_A_Bucket!"
    result = grants("{not json", bad_name, tagged("good-data"))
    assert result == {"batchItemFailures": []}
    assert list(generated()) == ["rolewarden-grants-web-server"]
    messages = boto3.client("sqs").receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 2
    assert grants.sink.counts["MalformedEvents"] == 2


# -- cost of one event -------------------------------------------------------------------------------------
def _reads_for_one_event(grants: Any, extra: int) -> Counter[str]:
    for i in range(extra):
        world.create_role(f"filler-role-{i:03d}")
        make_bucket(f"filler-bucket-{i:03d}", {"rolewarden:read": f"filler-role-{i:03d} web-server"})
    make_bucket("the-bucket", {"rolewarden:read": "batch-worker"})
    grants(sweep())
    set_tags("the-bucket", {"rolewarden:read": "batch-worker web-server"})
    counter = CallCounter().attach()
    grants(tagged("the-bucket"))
    return counter.calls


def test_one_bucket_event_costs_the_same_reads_at_any_account_size(grants: Any, roles: None, aws: Any) -> None:
    small = _reads_for_one_event(grants, 2)
    aws.reset()
    world.create_role("web-server")
    world.create_role("batch-worker")
    large = _reads_for_one_event(grants, 60)
    reads = {k: v for k, v in small.items() if k.startswith(("Get", "List"))}
    assert reads == {k: v for k, v in large.items() if k.startswith(("Get", "List"))}
    assert reads == {"GetBucketTagging": 1, "GetBucketEncryption": 1, "GetAccountAuthorizationDetails": 1}
    assert small["CreatePolicyVersion"] == large["CreatePolicyVersion"] == 1  # only web-server's document changed


# -- through the deployed stack -----------------------------------------------------------------------------
def test_template_rule_routes_put_bucket_tagging_to_the_handler(
    aws: Any, roles: None, write_config: Callable[..., Path]
) -> None:
    from rwlocal import stack as rwstack
    from rwlocal.pipeline import Pipeline, put_events

    config_path = write_config(CONFIG)
    deployed = rwstack.deploy()
    pipeline = Pipeline(deployed, env_overrides={"ROLEWARDEN_CONFIG": str(config_path)})
    make_bucket("routed-data", {"rolewarden:read": "web-server"})
    ignored = tagged("routed-data")
    ignored["detail"]["eventName"] = "PutBucketAcl"  # not in the rule's pattern
    failed_call = tagged("routed-data")
    failed_call["detail"]["errorCode"] = "AccessDenied"  # a refused call changed nothing
    assert put_events([tagged("routed-data"), ignored, failed_call]) == 3
    stats = pipeline.drain(["BucketGrantsFunction"])
    assert stats.records == 1 and stats.failures == 0
    assert generated("web-server")["rolewarden-grants-web-server"]["attached"] == ["web-server"]
