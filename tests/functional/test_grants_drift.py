"""Grant-policy drift through the grants queue (receiver side): the compliance capability sends one
``Grant Policy Drift`` message to the bucket-grants queue; the bucket-grants function routes it to the
role and re-publishes the role's grants from the state table (the truth), through the same lease and
apply path as a bucket event. The deployed stack (rwlocal) over the moto server, its real queues and
state table, the real handler; the message is sent with SQS SendMessage as the sender will."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from rwlocal import stack as rwstack
from rwlocal import world
from rwlocal.pipeline import Pipeline, put_events
from tests.functional.helpers import GRANTS_CONFIG

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
PATH = "/rolewarden/"
CONFIG = GRANTS_CONFIG
FUNCTION = "BucketGrantsFunction"
ARN = f"arn:aws:iam::123456789012:policy{PATH}rolewarden-grants-web-server"


def _event(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


def _default(arn: str) -> tuple[str, dict[str, Any]]:
    iam: Any = boto3.client("iam")
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    return version, dict(document)


def _deployed(write_config: Callable[..., Path]) -> tuple[Pipeline, str]:
    """The stack, its pipeline and the grants queue's URL, with web-server granted read on drift-data."""
    config_path = write_config(CONFIG)
    pipeline = Pipeline(rwstack.deploy(), env_overrides={"ROLEWARDEN_CONFIG": str(config_path)})
    world.create_role("web-server")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="drift-data")
    s3.put_bucket_tagging(Bucket="drift-data", Tagging={"TagSet": [{"Key": "rolewarden:read", "Value": "web-server"}]})
    tagged = json.loads(
        (EVENTS / "cloudtrail-s3-putbuckettagging.json").read_text().replace("example-data", "drift-data")
    )
    assert put_events([tagged]) == 1
    stats = pipeline.drain([FUNCTION])
    assert stats.failures == 0
    return pipeline, pipeline.queue_url(pipeline.consumers[FUNCTION].queue_logical_id)


def test_a_drift_message_republishes_the_recorded_grants(aws: Any, write_config: Callable[..., Path]) -> None:
    pipeline, queue = _deployed(write_config)
    published, recorded = _default(ARN)
    drifted = {
        **recorded,
        "Statement": [*recorded["Statement"], {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
    iam = boto3.client("iam")
    iam.create_policy_version(PolicyArn=ARN, PolicyDocument=json.dumps(drifted), SetAsDefault=True)
    assert _default(ARN)[1] == drifted

    boto3.client("sqs").send_message(QueueUrl=queue, MessageBody=json.dumps(_event("grant-policy-drift.json")))
    stats = pipeline.drain([FUNCTION])

    assert stats.failures == 0 and pipeline.dlq_messages(FUNCTION) == []
    version, document = _default(ARN)
    assert document == recorded and version not in (published, "v2")
    assert [r["RoleName"] for r in iam.list_entities_for_policy(PolicyArn=ARN)["PolicyRoles"]] == ["web-server"]


def test_a_malformed_drift_message_goes_to_the_dlq_with_its_reason(aws: Any, write_config: Callable[..., Path]) -> None:
    pipeline, queue = _deployed(write_config)
    before = _default(ARN)
    message = _event("grant-policy-drift.json")
    del message["detail"]["roleName"]
    boto3.client("sqs").send_message(QueueUrl=queue, MessageBody=json.dumps(message))
    stats = pipeline.drain([FUNCTION])

    assert stats.failures == 0  # acknowledged: retrying a malformed record cannot help
    dead = pipeline.dlq_messages(FUNCTION)
    assert len(dead) == 1 and json.loads(dead[0]["Body"]) == message
    reason = dead[0]["MessageAttributes"]["rolewarden-reason"]["StringValue"]
    assert "detail.roleName must be a non-empty string" in reason
    assert _default(ARN) == before  # nothing written
