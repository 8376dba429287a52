"""Issue 14's "Done when", in the local AWS: a central stack (template.yaml, Mode=central) in the management
account of an AWS Organizations organization, and two member stacks (member.yaml) in accounts A and B of
it, deployed as a service-managed StackSet would. Events are put on each member's own default bus and
travel its forwarding rules to the central bus and the central rules to the central queues, which the
deployed central functions drain in-process (``rwlocal.pipeline.Pipeline``); every assertion reads real
state back through boto3 in each account.

moto quirks the harness (``rwlocal.multiaccount.central_world``) fixes: a forwarded event keeps its
``account`` and SQS deliveries carry it (moto would re-put it in the central account and leave the field
out); STS refuses AssumeRole of a role that does not exist (moto would hand out credentials), injected at
the botocore level in STS's AccessDenied shape. moto checks no bus policy: the outsider's events reach the
central bus here, where AWS would refuse its PutEvents; RoleWarden's own admission is what refuses it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from rolewarden.aws import records
from rolewarden.model.findings import Finding
from rwlocal import configs
from rwlocal import world as w
from rwlocal.multiaccount import (
    CENTRAL_ACCOUNT,
    EXECUTION_ROLE,
    OUTSIDER,
    CentralWorld,
    central_world,
    deploy_member,
    in_account,
    launch,
    running,
)
from rwlocal.pipeline import Pipeline, fire_schedule, put_events
from rwlocal.scenes.compliance import cloudtrail_event
from rwlocal.scenes.grants import tagging_event
from rwlocal.server import LocalAws

ADMIN_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"
PROFILES = ["InstanceProfilesFunction"]


@dataclass
class Central:
    world: CentralWorld
    pipeline: Pipeline
    findings: list[Finding]

    @property
    def a(self) -> str:
        return self.world.account("A")

    @property
    def b(self) -> str:
        return self.world.account("B")

    def drain(self, consumers: list[str]) -> None:
        self.pipeline.drain(consumers)


@pytest.fixture
def central(aws: LocalAws, write_config: Any) -> Iterator[Central]:
    with central_world(("A", "B")) as world:
        profiles = {"rules": [configs.WEB_RULE], "metadata": {"imdsv2": "off"}}
        config: Path = write_config(configs.config_yaml(instance_profiles=profiles), accounts=world.central_config())
        found: list[Finding] = []
        pipeline = Pipeline(world.central, env_overrides={"ROLEWARDEN_CONFIG": str(config)})

        def collect(consumer: str, event: dict[str, Any], response: dict[str, Any]) -> None:
            sink = pipeline.consumers[consumer].runtime().last_sink
            found.extend(sink.findings if sink is not None else [])

        pipeline.on_batch = collect
        yield Central(world, pipeline, found)


def _profiles(account: str) -> dict[str, str]:
    """instance id -> attached profile ARN, read in ``account``."""
    with in_account(account):
        ec2 = boto3.client("ec2")
        associations = ec2.describe_iam_instance_profile_associations()["IamInstanceProfileAssociations"]
    return {a["InstanceId"]: a["IamInstanceProfile"]["Arn"] for a in associations if a["State"] == "associated"}


def _grant_policies(account: str) -> list[str]:
    with in_account(account):
        iam = boto3.client("iam")
        return [p["Arn"] for p in iam.list_policies(Scope="Local", PathPrefix="/rolewarden/")["Policies"]]


def _attached(account: str, role: str) -> list[str]:
    with in_account(account):
        attached = boto3.client("iam").list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    return [p["PolicyArn"] for p in attached]


def test_a_launch_in_member_a_gets_its_profile_through_the_central_function_and_nothing_else_moves(
    central: Central,
) -> None:
    launched = {account: launch(account) for account in (central.a, central.b, CENTRAL_ACCOUNT)}
    with in_account(central.a):
        put_events([running(central.a, launched[central.a])])  # on A's default bus, as EC2 would
    central.drain(PROFILES)
    assert _profiles(central.a) == {launched[central.a]: f"arn:aws:iam::{central.a}:instance-profile/web-server"}
    assert _profiles(central.b) == {}  # B's instance has the same tag and is untouched: the event was A's
    assert _profiles(CENTRAL_ACCOUNT) == {}
    assert central.pipeline.dlq_messages("InstanceProfilesFunction") == []
    assert central.findings == []


def test_bucket_tags_in_member_b_grant_roles_in_b_only(central: Central) -> None:
    for account in (central.a, central.b, CENTRAL_ACCOUNT):  # a role of that name in every account
        with in_account(account):
            w.create_role("reporting-app")
    tags = {"rolewarden:read": "reporting-app"}
    with in_account(central.b):
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="b-reports")
        s3.put_bucket_tagging(Bucket="b-reports", Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
        put_events([tagging_event("b-reports", tags)])
    central.drain(["BucketGrantsFunction"])
    (grant,) = _grant_policies(central.b)
    assert grant == f"arn:aws:iam::{central.b}:policy/rolewarden/rolewarden-grants-reporting-app"
    assert _attached(central.b, "reporting-app") == [grant]
    with in_account(central.b):
        iam: Any = boto3.client("iam")
        version = iam.get_policy(PolicyArn=grant)["Policy"]["DefaultVersionId"]
        document = iam.get_policy_version(PolicyArn=grant, VersionId=version)["PolicyVersion"]["Document"]
    assert "arn:aws:s3:::b-reports" in json.dumps(document)
    for other in (central.a, CENTRAL_ACCOUNT):
        assert _grant_policies(other) == []
        assert _attached(other, "reporting-app") == []


def test_a_drifted_role_in_a_is_remediated_and_recorded_with_its_account(central: Central) -> None:
    a = central.a
    for account in (a, CENTRAL_ACCOUNT):  # the same drift in the central account, where no event says so
        w.ensure_aws_managed_policy(account_id=account)
        with in_account(account):
            w.create_role("billing-app")
            boto3.client("iam").attach_role_policy(RoleName="billing-app", PolicyArn=ADMIN_ARN)
    with in_account(a):
        put_events([cloudtrail_event("AttachRolePolicy", {"roleName": "billing-app", "policyArn": ADMIN_ARN})])
    central.drain(["RoleComplianceFunction"])
    assert _attached(a, "billing-app") == []
    assert _attached(CENTRAL_ACCOUNT, "billing-app") == [ADMIN_ARN]
    table = central.world.central.physical("StateTable")
    remediations = [r for r in records.query(table, f"account#{a}#role/billing-app") if r.kind == "remediation"]
    assert remediations, "the remediation is recorded under A's key"
    assert {r.data["account"] for r in remediations} == {a}
    assert records.query(table, "role/billing-app") == []  # nothing recorded under the central account's key
    assert {(f.rule, f.account) for f in central.findings if f.rule == "no-admin-access"} == {("no-admin-access", a)}


def test_an_event_from_an_account_outside_the_organization_is_refused_and_changes_nothing(central: Central) -> None:
    # someone outside the organization forwards its events to the central bus (member.yaml in its account);
    # on AWS the central bus's policy refuses its PutEvents; moto does not check bus policies
    outsider = deploy_member(central.world.central, OUTSIDER, central.world.organization.id)
    instance = launch(outsider.account)
    with in_account(outsider.account):
        put_events([running(outsider.account, instance)])
    central.drain(PROFILES)
    (refusal,) = central.findings
    assert (refusal.rule, refusal.account, refusal.resource) == (
        "account-not-admitted",
        OUTSIDER,
        f"account/{OUTSIDER}",
    )
    assert _profiles(OUTSIDER) == {}
    assert _profiles(CENTRAL_ACCOUNT) == {}
    assert central.pipeline.dlq_messages("InstanceProfilesFunction") == []  # acknowledged: a retry cannot admit it
    assert central.pipeline.depth("InstanceProfilesQueue") == 0


def _bodies(pipeline: Pipeline, queue: str) -> list[dict[str, Any]]:
    """What waits on a queue, read without consuming it."""
    got = pipeline.sqs.receive_message(
        QueueUrl=pipeline.queue_url(queue), MaxNumberOfMessages=10, VisibilityTimeout=0
    ).get("Messages", [])
    return [json.loads(m["Body"]) for m in got]


def test_the_schedules_sweep_covers_the_central_account_and_both_members(central: Central) -> None:
    launched = {account: launch(account) for account in (central.a, central.b, CENTRAL_ACCOUNT)}
    fire_schedule(central.world.central, "InstanceProfilesSweepRule")
    sweep = central.pipeline
    assert sweep.invoke_batch("InstanceProfilesSweepFunction") == 1  # the Scheduled Event: fanned out
    fanned = _bodies(sweep, "InstanceProfilesSweepQueue")
    assert sorted(b["rolewarden-account-sweep"]["account"] for b in fanned) == sorted(launched)
    assert all(_profiles(account) == {} for account in launched)  # the fan-out itself changes nothing
    central.drain(["InstanceProfilesSweepFunction"])
    for account, instance in launched.items():
        assert _profiles(account) == {instance: f"arn:aws:iam::{account}:instance-profile/web-server"}
    assert central.pipeline.dlq_messages("InstanceProfilesSweepFunction") == []


def test_an_account_without_its_execution_role_is_one_finding_and_its_record_goes_to_the_dlq(
    central: Central,
) -> None:
    # a member of the organization where the StackSet has not deployed member.yaml (no execution role)
    bare = central.world.organization.add_account("C")
    launched = {account: launch(account) for account in (central.a, central.b, CENTRAL_ACCOUNT, bare)}
    fire_schedule(central.world.central, "InstanceProfilesSweepRule")
    central.drain(["InstanceProfilesSweepFunction"])
    (unavailable,) = central.findings
    assert (unavailable.rule, unavailable.account) == ("account-unavailable", bare)
    assert f"arn:aws:iam::{bare}:role/{EXECUTION_ROLE}" in unavailable.message
    (dead,) = central.pipeline.dlq_messages("InstanceProfilesSweepFunction")
    assert json.loads(dead["Body"])["rolewarden-account-sweep"]["account"] == bare
    reason = dead["MessageAttributes"]["rolewarden-reason"]["StringValue"]
    assert "AccessDenied" in reason and bare in reason
    assert central.pipeline.stats.failures == 0  # dead-lettered at its first receive: no retry loop
    assert _profiles(bare) == {}
    for account in (central.a, central.b, CENTRAL_ACCOUNT):  # the other accounts' sweeps went on
        assert _profiles(account) == {launched[account]: f"arn:aws:iam::{account}:instance-profile/web-server"}
