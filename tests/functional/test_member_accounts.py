"""Per-account clients (issue 14) against the moto server over real HTTP: moto keeps one state per account
id, and STS AssumeRole into a role of another account returns credentials that act in that account
(moto docs, "Multi-Account support"). moto does not check that the role exists or trusts the caller, so
the refusal is injected at the botocore level, in the shape STS answers it."""

from __future__ import annotations

import json
import os
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from rolewarden.aws import clients
from rolewarden.aws.accounts import (
    REFRESH_MARGIN,
    SESSION_NAME,
    UNAVAILABLE_RULE,
    AccountSessions,
    AccountUnavailable,
)
from rolewarden.errors import PermanentError
from rwlocal.server import LocalAws

MEMBER = "111111111111"
DEFAULT = "123456789012"  # moto's default account: the central one here
ROLE = "RoleWardenExecution"


def _create_execution_role_in_member() -> None:
    """As the StackSet would: from the default account, through an assumed-role session into the member."""
    sts = boto3.client("sts")
    given = sts.assume_role(
        RoleArn=f"arn:aws:iam::{MEMBER}:role/OrganizationAccountAccessRole", RoleSessionName="setup"
    )
    member = boto3.session.Session(
        aws_access_key_id=given["Credentials"]["AccessKeyId"],
        aws_secret_access_key=given["Credentials"]["SecretAccessKey"],
        aws_session_token=given["Credentials"]["SessionToken"],
    )
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{DEFAULT}:role/central-profiles"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}},
            }
        ],
    }
    member.client("iam").create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _count_assume_role(calls: list[str]) -> Any:
    def count(**kwargs: Any) -> None:
        calls.append(kwargs["params"]["body"]["RoleArn"])  # the serialized query request

    return count


def test_a_member_client_acts_in_the_member_account_only(aws: LocalAws) -> None:
    _create_execution_role_in_member()
    sessions = AccountSessions(ROLE, home_account=DEFAULT)
    identity = sessions.client(MEMBER, "sts").get_caller_identity()
    assert identity["Account"] == MEMBER
    assert identity["Arn"] == f"arn:aws:sts::{MEMBER}:assumed-role/{ROLE}/{SESSION_NAME}"

    ec2 = sessions.client(MEMBER, "ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    (instance,) = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"]
    sessions.client(MEMBER, "s3").create_bucket(Bucket="member-a-data")
    assert sessions.client(MEMBER, "iam").get_role(RoleName=ROLE)["Role"]["Arn"] == f"arn:aws:iam::{MEMBER}:role/{ROLE}"

    # the member sees its own resources ...
    member_ids = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    assert member_ids == [instance["InstanceId"]]
    # ... and the default (central) account, served by the shared clients, sees none of them
    assert sessions.client(DEFAULT, "ec2") is clients.client("ec2")
    assert clients.client("sts").get_caller_identity()["Account"] == DEFAULT
    assert clients.client("ec2").describe_instances()["Reservations"] == []
    assert "member-a-data" not in [b["Name"] for b in clients.client("s3").list_buckets()["Buckets"]]
    with pytest.raises(clients.client("iam").exceptions.NoSuchEntityException):
        clients.client("iam").get_role(RoleName=ROLE)


def test_credentials_are_cached_per_account_until_five_minutes_before_expiry(aws: LocalAws) -> None:
    calls: list[str] = []
    counter = _count_assume_role(calls)
    clients.add_hook("before-call.sts.AssumeRole", counter)
    try:
        clock = _Clock()
        sessions = AccountSessions(ROLE, home_account=DEFAULT, clock=clock)
        first = sessions.credentials(MEMBER)
        clock.now = first.expiration - REFRESH_MARGIN - 1
        ec2 = sessions.client(MEMBER, "ec2")
        assert sessions.client(MEMBER, "ec2") is ec2 and sessions.client(MEMBER, "iam") is not ec2
        assert calls == [f"arn:aws:iam::{MEMBER}:role/{ROLE}"], "one AssumeRole for every client of the account"
        sessions.credentials("222222222222")
        assert len(calls) == 2, "another account, its own credentials"
        clock.now = first.expiration - REFRESH_MARGIN  # five minutes before expiry: renewed
        renewed = sessions.credentials(MEMBER)
        assert len(calls) == 3 and renewed.access_key_id != first.access_key_id
        assert sessions.client(MEMBER, "ec2") is not ec2, "a client made with the old credentials is replaced"
    finally:
        clients.remove_hook("before-call.sts.AssumeRole", counter)


def _sts_refuses(calls: list[str]) -> Any:
    """STS's answer when the role does not exist or does not trust the caller (the same for both)."""

    def refuse(**kwargs: Any) -> tuple[AWSResponse, dict[str, Any]]:
        arn = kwargs["params"]["body"]["RoleArn"]  # the serialized query request
        calls.append(arn)
        message = (
            f"User: arn:aws:sts::{DEFAULT}:assumed-role/central-profiles/fn is not authorized to perform: "
            f"sts:AssumeRole on resource: {arn}"
        )
        parsed = {
            "Error": {"Type": "Sender", "Code": "AccessDenied", "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        }
        return AWSResponse(f"{aws_endpoint()}/", 403, HTTPHeaders(), None), parsed

    return refuse


def aws_endpoint() -> str:
    return os.environ["AWS_ENDPOINT_URL"]


def test_a_missing_or_refusing_role_is_one_typed_error_and_no_retry_loop(aws: LocalAws) -> None:
    calls: list[str] = []
    refuse = _sts_refuses(calls)
    clients.add_hook("before-call.sts.AssumeRole", refuse)
    try:
        clock = _Clock()
        sessions = AccountSessions(ROLE, home_account=DEFAULT, clock=clock)
        with pytest.raises(AccountUnavailable) as raised:
            sessions.client("222222222222", "ec2")
        error = raised.value
        assert isinstance(error, PermanentError) and error.code == "AccessDenied"
        assert (error.account, error.role_arn) == ("222222222222", f"arn:aws:iam::222222222222:role/{ROLE}")
        for _ in range(3):  # the same batch asking again: the same error, without calling STS again
            with pytest.raises(AccountUnavailable):
                sessions.client("222222222222", "iam")
        assert len(calls) == 1
        finding = error.finding("profiles")
        assert (finding.resource, finding.rule, finding.severity) == ("account/222222222222", UNAVAILABLE_RULE, "ERROR")
        assert "member.yaml" in finding.message and finding.details["code"] == "AccessDenied"
        clock.now += 301  # after UNAVAILABLE_FOR, tried once more
        with pytest.raises(AccountUnavailable):
            sessions.credentials("222222222222")
        assert len(calls) == 2
    finally:
        clients.remove_hook("before-call.sts.AssumeRole", refuse)
    # other accounts are not affected by one unavailable account
    assert sessions.client(MEMBER, "sts").get_caller_identity()["Account"] == MEMBER


def test_hooks_reach_member_clients_made_before_them_and_leave_with_them(aws: LocalAws) -> None:
    """Call counters and fault injection (clients.add_hook) see a member's calls too, whenever they start."""
    sessions = AccountSessions(ROLE, home_account=DEFAULT)
    ec2 = sessions.client(MEMBER, "ec2")  # made before the hook
    seen: list[str] = []

    def count(**kwargs: Any) -> None:
        seen.append(kwargs["model"].name)

    clients.add_hook("before-call.ec2", count)
    try:
        ec2.describe_instances()
        sessions.client("222222222222", "ec2").describe_instances()  # made after it
    finally:
        clients.remove_hook("before-call.ec2", count)
    ec2.describe_instances()
    assert seen == ["DescribeInstances", "DescribeInstances"]
