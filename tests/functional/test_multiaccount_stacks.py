"""The multi-account templates deployed into the moto server (issue 14): template.yaml with Mode=central in
the default account, member.yaml in two member accounts as a StackSet would create it. Events put in a
member account travel its forwarding rules to the central bus and the central rules to the central queues;
the execution role each member stack creates lets RoleWarden act there and nowhere else.

moto quirks (aws-notes §7): moto re-puts an event forwarded to another account's bus, so it would arrive
with the central account's ``account`` (AWS keeps the member's), and its deliveries to SQS carry no
``account`` field: ``rwlocal.multiaccount.central_world`` installs the harness's fix for both, which
the second test proves; moto accepts ``aws.*`` sources from anyone (AWS
does not), and it checks neither the bus policy nor the execution role's trust: those are covered by
tests/unit/test_member_template.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from rolewarden.aws.accounts import AccountSessions
from rwlocal.multiaccount import CENTRAL_ACCOUNT, CentralWorld, Member, central_world, forwarding_keeps_the_source
from rwlocal.server import LocalAws
from rwlocal.stack import Stack

ROLE = "RoleWardenExecution"


def _event(source: str, detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail)}


EC2_RUNNING = _event(
    "aws.ec2", "EC2 Instance State-change Notification", {"instance-id": "i-0123456789abcdef0", "state": "running"}
)
BUCKET_TAGGED = _event(
    "aws.s3",
    "AWS API Call via CloudTrail",
    {"eventSource": "s3.amazonaws.com", "eventName": "PutBucketTagging", "requestParameters": {"bucketName": "b"}},
)


def _iam_change(issuer: str) -> dict[str, Any]:
    return _event(
        "aws.iam",
        "AWS API Call via CloudTrail",
        {
            "eventSource": "iam.amazonaws.com",
            "eventName": "AttachRolePolicy",
            "requestParameters": {"roleName": "app"},
            "userIdentity": {"type": "AssumedRole", "sessionContext": {"sessionIssuer": {"arn": issuer}}},
        },
    )


def _drain(central: Stack, logical_id: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    url = central.physical(logical_id)
    found: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return found
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def organization(aws: LocalAws) -> Iterator[CentralWorld]:
    with central_world(("A", "B")) as built:
        yield built


@pytest.fixture
def world(organization: CentralWorld) -> tuple[Stack, Member, Member]:
    return organization.central, organization.members["A"], organization.members["B"]


def test_member_events_reach_the_central_queues_through_the_central_bus(world: tuple[Stack, Member, Member]) -> None:
    central, member_a, member_b = world
    member_a.session().client("events").put_events(Entries=[EC2_RUNNING, BUCKET_TAGGED])
    member_b.session().client("events").put_events(Entries=[EC2_RUNNING])
    profiles = _drain(central, "InstanceProfilesQueue")
    assert [m["detail"]["instance-id"] for m in profiles] == ["i-0123456789abcdef0"] * 2
    assert sorted(m["account"] for m in profiles) == sorted([member_a.account, member_b.account])
    assert [m["detail"]["eventName"] for m in _drain(central, "BucketGrantsQueue")] == ["PutBucketTagging"]
    # in central mode the central account's own default bus feeds no queue: its rules moved to the central bus
    boto3.client("events").put_events(Entries=[EC2_RUNNING])
    assert _drain(central, "InstanceProfilesQueue") == []


def test_a_forwarded_event_keeps_its_account_id_and_resources_and_the_fix_is_undone_after(
    organization: CentralWorld,
) -> None:
    """EventBridge delivers a cross-account bus target's event as it was; moto would re-put it in the
    central account (a new id, ``account`` = central, no resources). The harness's fix keeps it, and is
    removed when the last world that installed it ends."""
    central, member_a = organization.central, organization.members["A"]
    events = member_a.session().client("events")
    entry = {**EC2_RUNNING, "Resources": [f"arn:aws:ec2:us-east-1:{member_a.account}:instance/i-0123456789abcdef0"]}
    (sent,) = events.put_events(Entries=[entry])["Entries"]
    (delivered,) = _drain(central, "InstanceProfilesQueue")
    assert delivered["account"] == member_a.account != CENTRAL_ACCOUNT
    assert delivered["id"] == sent["EventId"]
    assert delivered["resources"] == entry["Resources"]
    assert (delivered["source"], delivered["detail-type"]) == ("aws.ec2", "EC2 Instance State-change Notification")
    with forwarding_keeps_the_source():  # nested: installing again is counted, not stacked
        events.put_events(Entries=[entry])
    (nested,) = _drain(central, "InstanceProfilesQueue")
    assert nested["account"] == member_a.account
    from rwlocal import multiaccount

    multiaccount.uninstall_forwarding_fix()  # as the world's end does: moto's own behaviour is back
    try:
        (unfixed,) = events.put_events(Entries=[entry])["Entries"]
        (plain,) = _drain(central, "InstanceProfilesQueue")
        assert "account" not in plain  # moto's delivery leaves it out
        assert plain["id"] != unfixed["EventId"]  # and its forwarding put a new event on the central bus
        assert plain["resources"] == []
    finally:
        multiaccount.install_forwarding_fix()


def test_iam_changes_are_forwarded_except_rolewardens_own(world: tuple[Stack, Member, Member]) -> None:
    central, member_a, _ = world
    A = member_a.account
    events = member_a.session().client("events")
    events.put_events(Entries=[_iam_change(f"arn:aws:iam::{A}:role/{ROLE}")])  # RoleWarden's own remediation
    assert _drain(central, "RoleComplianceQueue") == []
    events.put_events(Entries=[_iam_change(f"arn:aws:iam::{A}:role/someone-else")])
    (change,) = _drain(central, "RoleComplianceQueue")
    assert change["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"].endswith("someone-else")


def test_the_member_stacks_execution_role_lets_rolewarden_act_in_that_member_only(
    world: tuple[Stack, Member, Member],
) -> None:
    central, member_a, member_b = world
    A, B = member_a.account, member_b.account
    assert member_a.outputs["ExecutionRoleArn"] == f"arn:aws:iam::{A}:role/{ROLE}"
    trust: Any = member_a.session().client("iam").get_role(RoleName=ROLE)["Role"]["AssumeRolePolicyDocument"]
    (statement,) = trust["Statement"]
    central_roles = [
        boto3.client("iam").get_role(RoleName=n)["Role"]["Arn"] for n in central.outputs["CentralRoleNames"].split(",")
    ]
    assert sorted(statement["Principal"]["AWS"]) == sorted(central_roles)
    sessions = AccountSessions(ROLE, home_account=CENTRAL_ACCOUNT)
    ec2_a = sessions.client(A, "ec2")
    image = ec2_a.describe_images()["Images"][0]["ImageId"]
    ec2_a.run_instances(ImageId=image, MinCount=1, MaxCount=1)
    assert len(ec2_a.describe_instances()["Reservations"]) == 1
    assert sessions.client(B, "ec2").describe_instances()["Reservations"] == []
    assert sessions.client(CENTRAL_ACCOUNT, "ec2").describe_instances()["Reservations"] == []
    assert member_b.outputs["ExecutionRoleArn"] == f"arn:aws:iam::{B}:role/{ROLE}"
