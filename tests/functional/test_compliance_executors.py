"""The compliance executors' re-checks, against real roles on the moto server over HTTP.

Each executor re-checks before it writes, whatever the decision said: the role's path is under the action's
scope, never a service-linked role, never the whole account as a scope, a new instance profile under the
scope too; and an inline policy is rewritten, deleted or put only while it is still what the decision read
(otherwise Conflict: re-read and decide again). Every test below fails when its re-check is removed from
``rolewarden.aws.compliance.executors``: the refused write is then attempted (and counted), or succeeds.
The positive control shows that the same actions, in scope and unchanged, do write.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from rolewarden.aws import clients
from rolewarden.aws.executor import ActionResult, Executor
from rolewarden.model.compliance import (
    CreateInstanceProfile,
    DeleteInlinePolicy,
    DetachManagedPolicy,
    PutBoundary,
    PutInlinePolicy,
    ReplaceTrustPolicy,
    RewriteInlinePolicy,
    RoleAction,
)
from rolewarden.model.documents import canonical_json
from rolewarden.telemetry import Sink
from rwlocal import world as w
from rwlocal.faults import Fault, inject
from rwlocal.server import LocalAws

ROLE = "app"
SCOPE = "/rolewarden/"
INLINE = "tools"
OWNED = "rolewarden-instance-perimeter"
READ = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
WIDE = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
OTHER = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]}
READ_PREFIXES = ("Get", "List")


def iam() -> Any:
    return boto3.client("iam")


@pytest.fixture
def writes(aws: LocalAws) -> Iterator[list[str]]:
    """Every IAM write RoleWarden's own client attempts (botocore before-call hook; nothing is faked)."""
    attempted: list[str] = []

    def count(model: Any, **_: Any) -> None:
        if not model.name.startswith(READ_PREFIXES):
            attempted.append(model.name)

    clients.add_hook("before-call.iam", count)
    yield attempted
    clients.remove_hook("before-call.iam", count)


def role_at(path: str, inline: dict[str, Any] | None = READ) -> dict[str, Any]:
    """The role ``app`` at ``path``, with an attached policy and (unless None) the inline policy ``tools``;
    returns its state as IAM shows it."""
    w.create_role(ROLE, path=path, trust=w.LOOSE_TRUST)
    arn = iam().create_policy(PolicyName="app-policy", PolicyDocument=json.dumps(READ))["Policy"]["Arn"]
    iam().attach_role_policy(RoleName=ROLE, PolicyArn=arn)
    if inline is not None:
        iam().put_role_policy(RoleName=ROLE, PolicyName=INLINE, PolicyDocument=json.dumps(inline))
    return state()


def state() -> dict[str, Any]:
    raw = iam().get_role(RoleName=ROLE)["Role"]
    return {
        "path": raw["Path"],
        "trust": raw["AssumeRolePolicyDocument"],
        "boundary": raw.get("PermissionsBoundary"),
        "attached": sorted(
            p["PolicyArn"] for p in iam().list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"]
        ),
        "inline": {
            name: iam().get_role_policy(RoleName=ROLE, PolicyName=name)["PolicyDocument"]
            for name in iam().list_role_policies(RoleName=ROLE)["PolicyNames"]
        },
        "profiles": [p["InstanceProfileName"] for p in iam().list_instance_profiles()["InstanceProfiles"]],
    }


def policy_arn() -> str:
    return str(iam().list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"][0]["PolicyArn"])


def boundary_arn() -> str:
    arn = iam().create_policy(PolicyName="boundary", PolicyDocument=json.dumps(READ))["Policy"]["Arn"]
    return str(arn)


#: Every compliance action, for a role at ``path`` under ``scope`` (the documents as the decision read them).
ACTIONS: dict[str, Callable[[dict[str, Any]], RoleAction]] = {
    "detach": lambda b: DetachManagedPolicy(**b, policy_arn=policy_arn()),
    "rewrite-inline": lambda b: RewriteInlinePolicy(
        **b, policy_name=INLINE, document=canonical_json(OTHER), expected=canonical_json(READ), removed=(0,)
    ),
    "delete-inline": lambda b: DeleteInlinePolicy(**b, policy_name=INLINE, expected=canonical_json(READ)),
    "trust": lambda b: ReplaceTrustPolicy(**b, document=canonical_json(w.EC2_TRUST)),
    "boundary": lambda b: PutBoundary(**b, boundary_arn=boundary_arn()),
    "instance-profile": lambda b: CreateInstanceProfile(**b, profile_name=ROLE, profile_path=SCOPE),
    "put-inline": lambda b: PutInlinePolicy(**b, policy_name=OWNED, document=canonical_json(OTHER), expected=""),
}


def action(kind: str, path: str, scope: str = SCOPE) -> RoleAction:
    return ACTIONS[kind]({"role_name": ROLE, "role_path": path, "scope": scope, "rules": ("test",)})


def execute(act: RoleAction) -> ActionResult:
    return Executor(sink=Sink()).execute_one(act)


def refused(result: ActionResult) -> bool:
    return result.status == "failed" and not result.retryable and "refusing" in result.error


# ------------------------------------------------------------------ positive control
@pytest.mark.parametrize("kind", sorted(ACTIONS))
def test_in_scope_and_unchanged_each_action_writes(kind: str, writes: list[str]) -> None:
    before = role_at(SCOPE)
    result = execute(action(kind, SCOPE))
    assert result.status == "applied", result.error
    assert writes and state() != before


# ------------------------------------------------------------------ the path re-checks
@pytest.mark.parametrize("kind", sorted(ACTIONS))
def test_a_role_outside_the_scope_is_refused_before_any_write(kind: str, writes: list[str]) -> None:
    """The decision put the action out of scope (a bug, or a role moved): the executor refuses it."""
    before = role_at("/other/")
    act = action(kind, "/other/")
    result = execute(act)
    assert refused(result), result
    assert "outside /rolewarden/" in result.error
    assert writes == []
    assert state() == before


@pytest.mark.parametrize("kind", sorted(ACTIONS))
def test_a_service_linked_role_is_refused_even_under_its_own_scope(kind: str, writes: list[str]) -> None:
    path = "/aws-service-role/ec2.amazonaws.com/"
    before = role_at(path)
    result = execute(action(kind, path, scope="/aws-service-role/"))
    assert refused(result), result
    assert writes == []
    assert state() == before


@pytest.mark.parametrize("kind", sorted(ACTIONS))
def test_the_whole_account_is_never_a_scope(kind: str, writes: list[str]) -> None:
    before = role_at("/")
    result = execute(action(kind, "/", scope="/"))
    assert refused(result), result
    assert "invalid scope '/'" in result.error
    assert writes == []
    assert state() == before


def test_an_instance_profile_outside_the_scope_is_not_created(writes: list[str]) -> None:
    role_at(SCOPE)
    act = CreateInstanceProfile(
        role_name=ROLE, role_path=SCOPE, scope=SCOPE, rules=("test",), profile_name=ROLE, profile_path="/other/"
    )
    result = execute(act)
    assert refused(result), result
    assert "instance profile app: path /other/ is outside /rolewarden/" in result.error
    assert writes == []
    assert iam().list_instance_profiles()["InstanceProfiles"] == []


# ------------------------------------------------------------------ changed since read
@pytest.mark.parametrize("kind", ["rewrite-inline", "delete-inline"])
def test_an_inline_policy_changed_since_it_was_read_is_not_rewritten_nor_deleted(kind: str, writes: list[str]) -> None:
    """Someone changed the inline policy between the decision's read and the write: Conflict (the record is
    retried and decides from a fresh read), never the decision's document over theirs."""
    role_at(SCOPE, inline=WIDE)  # the decision read READ; IAM now holds WIDE
    before = state()
    result = execute(action(kind, SCOPE))
    assert result.status == "conflict" and result.retryable, result
    assert "changed since it was read" in result.error
    assert writes == []
    assert state() == before


@pytest.mark.parametrize("kind", ["rewrite-inline", "delete-inline"])
def test_an_inline_policy_deleted_since_it_was_read_is_gone(kind: str, writes: list[str]) -> None:
    role_at(SCOPE, inline=None)
    result = execute(action(kind, SCOPE))
    assert result.status == "gone", result
    assert writes == []
    assert state()["inline"] == {}


def test_an_owned_inline_policy_that_appeared_since_the_read_is_not_overwritten(writes: list[str]) -> None:
    """The perimeter policy was absent when read (expected ""), and someone put one meanwhile."""
    role_at(SCOPE)
    iam().put_role_policy(RoleName=ROLE, PolicyName=OWNED, PolicyDocument=json.dumps(WIDE))
    before = state()
    result = execute(action("put-inline", SCOPE))
    assert result.status == "conflict", result
    assert writes == []
    assert state() == before


def test_an_owned_inline_policy_removed_since_the_read_is_not_put_back_blindly(writes: list[str]) -> None:
    role_at(SCOPE)
    act = PutInlinePolicy(
        role_name=ROLE,
        role_path=SCOPE,
        scope=SCOPE,
        rules=("test",),
        policy_name=OWNED,
        document=canonical_json(OTHER),
        expected=canonical_json(READ),  # the decision read a document IAM no longer holds
    )
    result = execute(act)
    assert result.status == "conflict", result
    assert writes == []
    assert OWNED not in state()["inline"]


# ------------------------------------------------------------------ instance profiles that exist already
def test_an_existing_empty_profile_of_the_roles_name_is_used(writes: list[str]) -> None:
    role_at(SCOPE)
    iam().create_instance_profile(InstanceProfileName=ROLE, Path=SCOPE)
    result = execute(action("instance-profile", SCOPE))
    assert result.status == "applied" and result.detail["profile_created"] is False
    assert iam().get_instance_profile(InstanceProfileName=ROLE)["InstanceProfile"]["Roles"][0]["RoleName"] == ROLE


def test_a_profile_already_holding_the_role_is_done(writes: list[str]) -> None:
    role_at(SCOPE)
    iam().create_instance_profile(InstanceProfileName=ROLE, Path=SCOPE)
    iam().add_role_to_instance_profile(InstanceProfileName=ROLE, RoleName=ROLE)
    with inject(Fault("iam", "AddRoleToInstanceProfile", "EntityAlreadyExists", "already in it", status=409)):
        result = execute(action("instance-profile", SCOPE))
    assert result.status == "applied", result


def test_a_profile_of_that_name_holding_another_role_is_left_alone(writes: list[str]) -> None:
    role_at(SCOPE)
    w.create_role("other", path=SCOPE)
    iam().create_instance_profile(InstanceProfileName=ROLE, Path=SCOPE)
    iam().add_role_to_instance_profile(InstanceProfileName=ROLE, RoleName="other")
    # IAM answers LimitExceeded (one role per profile); moto may accept a second role: the answer is injected
    with inject(Fault("iam", "AddRoleToInstanceProfile", "LimitExceeded", "one role per profile", status=409)):
        result = execute(action("instance-profile", SCOPE))
    assert result.status == "failed" and not result.retryable
    assert "already holds another role" in result.error
    roles = iam().get_instance_profile(InstanceProfileName=ROLE)["InstanceProfile"]["Roles"]
    assert [r["RoleName"] for r in roles] == ["other"]
