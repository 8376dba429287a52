"""The one IAM reader (``rolewarden.aws.iam_snapshot``) against the moto server over HTTP: what it builds
from GetAccountAuthorizationDetails and the per-role and per-policy reads, and how each read fails.
moto does not throttle nor drop connections: those answers are injected at the botocore level with
IAM's real error shape (``rwlocal.faults``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from rolewarden.aws import iam_snapshot
from rolewarden.errors import PermanentError, RetryableError
from rolewarden.model.iam import Role
from rwlocal import world as w
from rwlocal.faults import CallCounter, Fault, inject
from rwlocal.server import ACCOUNT_ID, LocalAws

PATH = "/rolewarden/"
READ = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
WIDE = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def iam() -> Any:
    return boto3.client("iam")


@pytest.fixture
def world(aws: LocalAws) -> str:
    """Roles web (managed path, inline policy, profile) and batch (elsewhere) sharing the policy ``shared``
    (two versions, the second the default); returns the policy's ARN."""
    iam_snapshot.clear_caches()
    w.create_role("web", path=PATH)
    w.create_role("batch", path="/jobs/")
    iam().put_role_policy(RoleName="web", PolicyName="inline", PolicyDocument=json.dumps(READ))
    iam().create_instance_profile(InstanceProfileName="web", Path=PATH)
    iam().add_role_to_instance_profile(InstanceProfileName="web", RoleName="web")
    arn = str(
        iam().create_policy(
            PolicyName="shared", Path="/team/", PolicyDocument=json.dumps(READ), Description="the shared one"
        )["Policy"]["Arn"]
    )
    iam().create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(WIDE), SetAsDefault=True)
    for role in ("web", "batch"):
        iam().attach_role_policy(RoleName=role, PolicyArn=arn)
    return arn


def test_one_account_read_holds_roles_every_policy_version_and_attachments(world: str) -> None:
    snapshot = iam_snapshot.read_account(("Role", "LocalManagedPolicy"))
    assert (snapshot.partition, snapshot.account, snapshot.pages) == ("aws", ACCOUNT_ID, 1)
    web = snapshot.roles["web"]
    assert (web.path, web.arn) == (PATH, f"arn:aws:iam::{ACCOUNT_ID}:role{PATH}web")
    assert web.inline == {"inline": READ}
    assert web.instance_profiles == ("web",)
    assert web.attached_arns == (world,)
    assert web.trust == w.EC2_TRUST
    policy = snapshot.policies[world]
    assert (policy.name, policy.path, policy.default_version) == ("shared", "/team/", "v2")  # name from the ARN
    assert [(v.version_id, v.is_default, dict(v.document)) for v in policy.versions] == [
        ("v1", False, READ),
        ("v2", True, WIDE),
    ]
    assert policy.document == WIDE
    assert policy.attached_roles == ("batch", "web")
    assert not any(p.aws_managed for p in snapshot.policies.values())  # the filter reached the call


def test_a_single_role_read_matches_the_account_read(world: str) -> None:
    whole = iam_snapshot.read_account(("Role",)).roles["web"]
    assert iam_snapshot.read_role("web", with_profiles=True) == whole
    without = iam_snapshot.read_role("web")
    assert without is not None and without.instance_profiles is None
    assert iam_snapshot.read_role("nobody") is None


def test_a_role_deleted_between_its_reads_is_none(aws: LocalAws) -> None:
    assert iam_snapshot.complete_role(Role("gone", f"arn:aws:iam::{ACCOUNT_ID}:role/gone", PATH)) is None


def test_an_answer_beyond_iams_quotas_is_refused(world: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(iam_snapshot, "MAX_INLINE", 0)
    with pytest.raises(PermanentError, match="beyond IAM's quotas"):
        iam_snapshot.read_role("web")


def test_policies_on_demand_are_default_versions_cached_per_version_and_a_deleted_one_is_left_out(
    world: str,
) -> None:
    counter = CallCounter()
    missing = f"arn:aws:iam::{ACCOUNT_ID}:policy/gone"
    from rolewarden.aws import clients

    clients.add_hook("before-call.iam", counter)
    try:
        first = iam_snapshot.read_policies([world, missing, world])
        second = iam_snapshot.read_policies([world])
    finally:
        clients.remove_hook("before-call.iam", counter)
    assert list(first) == [world] and first == second
    policy = first[world]
    assert (policy.name, policy.path, policy.default_version, policy.description) == (
        "shared",
        "/team/",
        "v2",
        "the shared one",
    )
    assert [(v.version_id, v.is_default) for v in policy.versions] == [("v2", True)] and policy.document == WIDE
    assert counter.calls["iam:GetPolicy"] == 3
    assert counter.calls["iam:GetPolicyVersion"] == 1  # a version never changes: read once


def test_roles_for_a_policy_are_those_under_the_path(world: str) -> None:
    assert iam_snapshot.roles_for_policy(world, PATH) == ["web"]
    assert iam_snapshot.roles_for_policy(world, "/") == ["batch", "web"]
    # AWS answers NoSuchEntity for a policy that does not exist; moto lists no roles: the AWS answer is injected
    with inject(Fault("iam", "ListEntitiesForPolicy", "NoSuchEntity", "not found", status=404)):
        assert iam_snapshot.roles_for_policy(f"arn:aws:iam::{ACCOUNT_ID}:policy/gone", PATH) is None


def test_policy_path_and_name_from_an_arn() -> None:
    assert iam_snapshot.policy_path_and_name("arn:aws:iam::1:policy/a/b/name") == ("/a/b/", "name")
    assert iam_snapshot.policy_path_and_name("arn:aws:iam::aws:policy/ReadOnlyAccess") == ("/", "ReadOnlyAccess")


READS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "account": ("GetAccountAuthorizationDetails", lambda arn: iam_snapshot.read_account()),
    "get-role": ("GetRole", lambda arn: iam_snapshot.get_role("web")),
    "complete-role": ("ListRolePolicies", lambda arn: iam_snapshot.read_role("web")),
    "policies": ("GetPolicy", lambda arn: iam_snapshot.read_policies([arn])),
    "roles-for-policy": ("ListEntitiesForPolicy", lambda arn: iam_snapshot.roles_for_policy(arn, PATH)),
}


@pytest.mark.parametrize("read", sorted(READS))
def test_throttling_that_outlasts_retries_is_retryable(world: str, read: str) -> None:
    operation, call = READS[read]
    throttled = Fault("iam", operation, "Throttling", "Rate exceeded", times=99)
    with inject(throttled), pytest.raises(RetryableError, match="Throttling"):
        call(world)


@pytest.mark.parametrize("read", sorted(READS))
def test_a_connection_that_keeps_failing_is_retryable(world: str, read: str) -> None:
    operation, call = READS[read]

    def drop(_: Any) -> Any:
        raise EndpointConnectionError(endpoint_url="https://iam.amazonaws.com/")

    with inject(Fault("iam", operation, times=99, respond=drop)), pytest.raises(RetryableError):
        call(world)


@pytest.mark.parametrize("read", sorted(READS))
def test_an_invalid_request_is_permanent(world: str, read: str) -> None:
    operation, call = READS[read]
    with inject(Fault("iam", operation, "ValidationError", "invalid", times=99)), pytest.raises(PermanentError):
        call(world)
