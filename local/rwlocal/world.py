"""Seed a small AWS world in the moto server: managed roles and profiles, tagged instances.
Shared by the demo, the tests, the chaos suite and the benchmarks."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3

EC2_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


ADMIN_DOCUMENT = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
#: A trust policy open to another account: what trust-ec2-only remedies.
LOOSE_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::210987654321:root"}, "Action": "sts:AssumeRole"}
    ],
}


def ensure_aws_managed_policy(
    name: str = "AdministratorAccess", document: dict[str, Any] | None = None, account_id: str = "123456789012"
) -> str:
    """Make ``arn:aws:iam::aws:policy/<name>`` exist in the in-process moto server (idempotent).

    moto loads no AWS-managed policies unless told to (MOTO_IAM_LOAD_MANAGED_POLICIES, which loads
    ~1,300 of them into every account), and IAM's API cannot create one, so the demo, chaos and the
    tests add the one they need to the in-process moto backend."""
    from moto.iam.models import AWSManagedPolicy, iam_backends

    backend = iam_backends[account_id]["aws"]
    arn = f"arn:aws:iam::aws:policy/{name}"
    if arn not in backend.managed_policies:
        now = datetime.now(UTC).isoformat()
        data = {
            "DefaultVersionId": "v1",
            "Path": "/",
            "Document": document or ADMIN_DOCUMENT,
            "CreateDate": now,
            "UpdateDate": now,
        }
        policy = AWSManagedPolicy.from_data(name, account_id, "us-east-1", data)
        backend.managed_policies[arn] = policy
        backend.aws_managed_policies.append(policy)
    return arn


def create_state_table(name: str = "rolewarden-state") -> str:
    """A DynamoDB table with the template's StateTable key schema (read from template.yaml)."""
    from rwlocal.stack import load_template

    props = load_template()["Resources"]["StateTable"]["Properties"]
    boto3.client("dynamodb").create_table(
        TableName=name,
        BillingMode=props["BillingMode"],
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
    )
    return name


def iam() -> Any:
    return boto3.client("iam")


def ec2() -> Any:
    return boto3.client("ec2")


def create_role(name: str, path: str = "/rolewarden/", trust: Mapping[str, Any] | None = None) -> str:
    role = iam().create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps(trust or EC2_TRUST))
    return str(role["Role"]["Arn"])


def create_profile(name: str, role: str | None = None, role_path: str = "/rolewarden/", path: str = "/") -> str:
    """An instance profile holding ``role`` (created under ``role_path`` when it does not exist)."""
    client = iam()
    role = role or name
    try:
        client.get_role(RoleName=role)
    except client.exceptions.NoSuchEntityException:
        create_role(role, role_path)
    profile = client.create_instance_profile(InstanceProfileName=name, Path=path)["InstanceProfile"]
    client.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role)
    return str(profile["Arn"])


@cache
def image_id() -> str:
    """An AMI id for launches (read once per process: moto builds its AMIs on first use)."""
    images = ec2().describe_images(Owners=["amazon"])["Images"]
    return str(images[0]["ImageId"]) if images else "ami-12c6146b"


def run_instances(count: int, tags: Mapping[str, str] | None = None, profile_arn: str | None = None) -> list[str]:
    kwargs: dict[str, Any] = {"ImageId": image_id(), "MinCount": count, "MaxCount": count, "InstanceType": "t3.micro"}
    if tags:
        kwargs["TagSpecifications"] = [
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    if profile_arn:
        kwargs["IamInstanceProfile"] = {"Arn": profile_arn}
    return [i["InstanceId"] for i in ec2().run_instances(**kwargs)["Instances"]]


def run_instance(tags: Mapping[str, str] | None = None, profile_arn: str | None = None) -> str:
    return run_instances(1, tags, profile_arn)[0]


def attached_profiles(instance_ids: list[str] | None = None) -> dict[str, str]:
    """instance id -> attached profile name, read from DescribeIamInstanceProfileAssociations."""
    paginator = ec2().get_paginator("describe_iam_instance_profile_associations")
    kwargs: dict[str, Any] = {"Filters": [{"Name": "state", "Values": ["associating", "associated"]}]}
    result: dict[str, str] = {}
    for page in paginator.paginate(**kwargs):
        for assoc in page["IamInstanceProfileAssociations"]:
            if instance_ids is None or assoc["InstanceId"] in instance_ids:
                result[assoc["InstanceId"]] = assoc["IamInstanceProfile"]["Arn"].rsplit("/", 1)[-1]
    return result


def instance_tags(instance_id: str) -> dict[str, str]:
    raw = ec2().describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return {t["Key"]: t["Value"] for t in raw.get("Tags", [])}


# -- event builders (real shapes, see events/) -------------------------------------------------
def state_change_event(instance_id: str, state: str = "running") -> dict[str, Any]:
    return {
        "source": "aws.ec2",
        "detail-type": "EC2 Instance State-change Notification",
        "resources": [f"arn:aws:ec2:us-east-1:123456789012:instance/{instance_id}"],
        "detail": {"instance-id": instance_id, "state": state},
    }


def asg_launch_event(instance_id: str, group: str = "web-asg") -> dict[str, Any]:
    return {
        "source": "aws.autoscaling",
        "detail-type": "EC2 Instance Launch Successful",
        "resources": [f"arn:aws:ec2:us-east-1:123456789012:instance/{instance_id}"],
        "detail": {"StatusCode": "InProgress", "AutoScalingGroupName": group, "EC2InstanceId": instance_id},
    }


def tag_change_event(instance_id: str, tags: Mapping[str, str]) -> dict[str, Any]:
    return {
        "source": "aws.tag",
        "detail-type": "Tag Change on Resource",
        "resources": [f"arn:aws:ec2:us-east-1:123456789012:instance/{instance_id}"],
        "detail": {"changed-tag-keys": list(tags), "service": "ec2", "resource-type": "instance", "tags": dict(tags)},
    }


def sweep_event() -> dict[str, Any]:
    return {
        "source": "aws.events",
        "detail-type": "Scheduled Event",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/sweep"],
        "detail": {},
    }


def as_sqs_event(*events: Mapping[str, Any], receive_count: int = 1) -> dict[str, Any]:
    """Wrap EventBridge events as the SQS batch Lambda would hand the function."""
    records = []
    for index, event in enumerate(events):
        body = event if isinstance(event, str) else json.dumps({"version": "0", "id": f"evt-{index}", **event})
        records.append(
            {
                "messageId": f"msg-{index}",
                "receiptHandle": f"rh-{index}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": str(receive_count)},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:rolewarden-instance-profiles-dev",
                "awsRegion": "us-east-1",
            }
        )
    return {"Records": records}
