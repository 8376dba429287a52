"""The grant executors' safety re-checks, each exercised so that removing it fails a test.

Every executor re-checks, right before it writes, what the decision already checked (defence in depth
behind the function's IAM policy, docs/threat-model.md): the policy is a generated one
(``rolewarden-grants-*``) under the managed path, the stack's forced managed path is the action's, and
the role it attaches to or detaches from is under the managed path. A policy that changed between the
read and the write is a ``conflict`` (re-read and decide again), never a blind overwrite.

Real boto3 clients over HTTP to the moto server. moto does not refuse DeletePolicy on a policy that is
still attached (IAM answers DeleteConflict); that one answer is injected at the botocore level with the
real error shape, as noted in the test.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from rolewarden.aws import clients
from rolewarden.aws.executor import ActionResult, Executor
from rolewarden.model.actions import Action
from rolewarden.model.grants import (
    AttachGrantPolicy,
    CreateGrantPolicy,
    DeleteGrantPolicy,
    DetachGrantPolicy,
    RestoreGrantVersion,
    RotateGrantPolicy,
)
from rolewarden.telemetry import Sink
from rwlocal import world

ACCOUNT = "123456789012"
PATH = "/rolewarden/"
OURS = "rolewarden-grants-web-server"


def _doc(bucket: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [f"arn:aws:s3:::{bucket}/*"]}],
        },
        separators=(",", ":"),
    )


def iam() -> Any:
    return boto3.client("iam")


def arn(name: str, path: str = PATH) -> str:
    return f"arn:aws:iam::{ACCOUNT}:policy{path}{name}"


def make_policy(name: str, path: str = PATH, *, versions: int = 1, attach: tuple[str, ...] = ()) -> str:
    """A customer managed policy with ``versions`` versions (the last one the default), attached to roles."""
    created = iam().create_policy(PolicyName=name, Path=path, PolicyDocument=_doc("v1-data"))["Policy"]["Arn"]
    for number in range(2, versions + 1):
        iam().create_policy_version(PolicyArn=created, PolicyDocument=_doc(f"v{number}-data"), SetAsDefault=True)
    for role in attach:
        iam().attach_role_policy(RoleName=role, PolicyArn=created)
    return str(created)


def state(policy_arn: str) -> dict[str, Any]:
    """What IAM holds for a policy now: versions, default, attached roles (None: no such policy)."""
    try:
        policy = iam().get_policy(PolicyArn=policy_arn)["Policy"]
    except iam().exceptions.NoSuchEntityException:
        return {}
    versions = iam().list_policy_versions(PolicyArn=policy_arn)["Versions"]
    roles = iam().list_entities_for_policy(PolicyArn=policy_arn)["PolicyRoles"]
    return {
        "default": policy["DefaultVersionId"],
        "versions": sorted(v["VersionId"] for v in versions),
        "roles": sorted(r["RoleName"] for r in roles),
    }


def attached(role: str) -> list[str]:
    return sorted(p["PolicyArn"] for p in iam().list_attached_role_policies(RoleName=role)["AttachedPolicies"])


def run(action: Action) -> ActionResult:
    return Executor(sink=Sink(), trigger="guard-test").execute_one(action)


@pytest.fixture
def roles(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("ROLEWARDEN_MANAGED_PATH", raising=False)
    world.create_role("web-server")
    world.create_role("outsider", path="/other/")
    yield


# -- the managed-path and name guard, before every write -------------------------------------------------
def _actions(name: str, policy_arn: str) -> list[Action]:
    """One action of every type, aimed at ``name``/``policy_arn`` (which must not be written)."""
    common: dict[str, Any] = {"role": "web-server", "policy_name": name, "policy_arn": policy_arn, "path": PATH}
    return [
        CreateGrantPolicy(
            **common, role_path=PATH, document=_doc("new-data"), description="RoleWarden S3 grants", document_hash="h"
        ),
        RotateGrantPolicy(**common, document=_doc("new-data"), document_hash="h", previous_version="v2"),
        RestoreGrantVersion(**common, version_id="v1", previous_version="v2", document_hash="h"),
        AttachGrantPolicy(**common, role_path=PATH),
        DetachGrantPolicy(**common, from_role="web-server", from_role_path=PATH),
        DeleteGrantPolicy(**common, detach_from=("web-server",), delete_versions=("v1",)),
    ]


FOREIGN = [
    pytest.param("admin-access", PATH, id="not-a-generated-name"),
    pytest.param(OURS, "/", id="generated-name-outside-the-managed-path"),
    pytest.param(OURS, "/rolewarden/nested/", id="generated-name-below-the-managed-path"),
]


@pytest.mark.parametrize("index", range(6), ids=[a.verb for a in _actions(OURS, arn(OURS))])
@pytest.mark.parametrize(("name", "path"), FOREIGN)
def test_no_executor_writes_a_policy_that_is_not_a_generated_one(roles: None, index: int, name: str, path: str) -> None:
    action = _actions(name, arn(name, path))[index]
    foreign = arn(name, path)
    if not isinstance(action, CreateGrantPolicy):  # the others aim at a policy that exists
        attach = ("web-server",) if isinstance(action, DetachGrantPolicy | DeleteGrantPolicy) else ()
        foreign = make_policy(name, path, versions=2, attach=attach)
    before, roles_before = state(foreign), attached("web-server")
    result = run(action)
    assert (result.status, result.retryable) == ("failed", False)
    assert "is not a generated grant policy" in result.error
    assert state(foreign) == before
    assert attached("web-server") == roles_before
    assert state(arn(OURS)) == {}  # nor a generated one in its place


@pytest.mark.parametrize("index", range(6), ids=[a.verb for a in _actions(OURS, arn(OURS))])
def test_the_stacks_managed_path_overrides_the_actions(
    roles: None, monkeypatch: pytest.MonkeyPatch, index: int
) -> None:
    """An action built for another managed path (a config that disagrees with the stack) writes nothing."""
    other = "/elsewhere/"
    world.create_role("elsewhere-role", path=other)
    target = arn(OURS, other)
    action = _actions(OURS, target)[index]
    changes: dict[str, Any] = {"path": other, "role": "elsewhere-role"}
    if isinstance(action, CreateGrantPolicy | AttachGrantPolicy):
        changes["role_path"] = other
    if isinstance(action, DetachGrantPolicy):
        changes |= {"from_role": "elsewhere-role", "from_role_path": other}
    if isinstance(action, DeleteGrantPolicy):
        changes["detach_from"] = ("elsewhere-role",)
    action = dataclasses.replace(action, **changes)
    if not isinstance(action, CreateGrantPolicy):
        attach = ("elsewhere-role",) if isinstance(action, DetachGrantPolicy | DeleteGrantPolicy) else ()
        make_policy(OURS, other, versions=2, attach=attach)
    before, roles_before = state(target), attached("elsewhere-role")
    monkeypatch.setenv("ROLEWARDEN_MANAGED_PATH", PATH)
    result = run(action)
    assert (result.status, result.retryable) == ("failed", False)
    assert f"is not the stack's {PATH}" in result.error
    assert state(target) == before
    assert attached("elsewhere-role") == roles_before


# -- the role-path re-check on create, attach and detach ----------------------------------------------------
def test_create_refuses_a_role_outside_the_managed_path(roles: None) -> None:
    action = CreateGrantPolicy(
        role="outsider",
        policy_name="rolewarden-grants-outsider",
        policy_arn=arn("rolewarden-grants-outsider"),
        path=PATH,
        role_path="/other/",
        document=_doc("a-data"),
        description="RoleWarden S3 grants for role outsider, part 1",
        document_hash="h",
    )
    result = run(action)
    assert (result.status, result.retryable) == ("failed", False)
    assert "role path /other/ is outside /rolewarden/" in result.error
    assert state(arn("rolewarden-grants-outsider")) == {} and attached("outsider") == []


def test_attach_refuses_a_role_outside_the_managed_path(roles: None) -> None:
    ours = make_policy(OURS)
    action = AttachGrantPolicy(role="outsider", policy_name=OURS, policy_arn=ours, path=PATH, role_path="/other/")
    result = run(action)
    assert (result.status, result.retryable) == ("failed", False)
    assert "role path /other/ is outside /rolewarden/" in result.error
    assert attached("outsider") == []


def test_detach_refuses_a_role_outside_the_managed_path(roles: None) -> None:
    ours = make_policy(OURS, attach=("outsider",))
    action = DetachGrantPolicy(
        role="web-server",
        policy_name=OURS,
        policy_arn=ours,
        path=PATH,
        from_role="outsider",
        from_role_path="/other/",
    )
    result = run(action)
    assert (result.status, result.retryable) == ("failed", False)
    assert "role path /other/ is outside /rolewarden/" in result.error
    assert attached("outsider") == [ours]


# -- changed since read: a conflict, never a blind write ----------------------------------------------------
def _rotate(policy_arn: str, delete_version: str | None) -> RotateGrantPolicy:
    return RotateGrantPolicy(
        role="web-server",
        policy_name=OURS,
        policy_arn=policy_arn,
        path=PATH,
        document=_doc("new-data"),
        document_hash="h",
        previous_version="v4",
        delete_version=delete_version,
    )


def test_rotate_conflicts_when_the_version_to_prune_became_the_default(roles: None) -> None:
    ours = make_policy(OURS, versions=5)
    iam().set_default_policy_version(PolicyArn=ours, VersionId="v1")  # a human, after RoleWarden's read
    before = state(ours)
    result = run(_rotate(ours, "v1"))
    assert (result.status, result.retryable) == ("conflict", True)
    assert "v1 of rolewarden-grants-web-server is the default now" in result.error
    assert state(ours) == before


def test_rotate_conflicts_when_a_fifth_version_appeared(roles: None) -> None:
    ours = make_policy(OURS, versions=5)  # the read saw four versions, so nothing is pruned
    before = state(ours)
    result = run(_rotate(ours, None))
    assert (result.status, result.retryable) == ("conflict", True)
    assert "changed meanwhile (LimitExceeded)" in result.error
    assert state(ours) == before


def test_rotate_conflicts_when_the_policy_was_deleted(roles: None) -> None:
    result = run(_rotate(arn(OURS), None))
    assert (result.status, result.retryable) == ("conflict", True)
    assert "changed meanwhile (NoSuchEntity)" in result.error
    assert state(arn(OURS)) == {}


def test_rotate_prunes_a_version_deleted_meanwhile_and_goes_on(roles: None) -> None:
    ours = make_policy(OURS, versions=4)
    result = run(_rotate(ours, "v7"))  # the version to prune is gone already: the goal is reached
    assert result.status == "applied" and result.detail["version"] == "v5"
    assert state(ours)["default"] == "v5"


def test_restore_conflicts_when_the_version_is_gone(roles: None) -> None:
    ours = make_policy(OURS, versions=2)
    iam().set_default_policy_version(PolicyArn=ours, VersionId="v1")
    iam().delete_policy_version(PolicyArn=ours, VersionId="v2")  # the version the decision wanted back
    before = state(ours)
    action = RestoreGrantVersion(
        role="web-server",
        policy_name=OURS,
        policy_arn=ours,
        path=PATH,
        version_id="v2",
        previous_version="v1",
        document_hash="h",
    )
    result = run(action)
    assert (result.status, result.retryable) == ("conflict", True)
    assert "v2 of rolewarden-grants-web-server is gone" in result.error
    assert state(ours) == before


def _delete(policy_arn: str, versions: tuple[str, ...] = ()) -> DeleteGrantPolicy:
    return DeleteGrantPolicy(
        role="web-server",
        policy_name=OURS,
        policy_arn=policy_arn,
        path=PATH,
        detach_from=("web-server",),
        delete_versions=versions,
    )


def test_delete_conflicts_when_a_version_to_delete_became_the_default(roles: None) -> None:
    ours = make_policy(OURS, versions=2, attach=("web-server",))
    iam().set_default_policy_version(PolicyArn=ours, VersionId="v1")
    result = run(_delete(ours, ("v1",)))
    assert (result.status, result.retryable) == ("conflict", True)
    assert "v1 of rolewarden-grants-web-server became the default" in result.error
    assert state(ours)["versions"] == ["v1", "v2"]


def test_delete_conflicts_when_the_policy_gained_an_attachment(roles: None, monkeypatch: pytest.MonkeyPatch) -> None:
    ours = make_policy(OURS, attach=("web-server",))

    def attached_meanwhile(**_: Any) -> None:
        # moto deletes an attached policy; IAM refuses with this answer (the real error shape, injected).
        raise ClientError(
            {"Error": {"Code": "DeleteConflict", "Message": "Cannot delete a policy attached to entities."}},
            "DeletePolicy",
        )

    clients.client("iam").meta.events.register("before-call.iam.DeletePolicy", attached_meanwhile)
    try:
        result = run(_delete(ours))
    finally:
        clients.client("iam").meta.events.unregister("before-call.iam.DeletePolicy", attached_meanwhile)
    assert (result.status, result.retryable) == ("conflict", True)
    assert "gained an attachment or a version meanwhile" in result.error
    assert state(ours) != {}


def test_delete_of_a_policy_already_gone_is_gone(roles: None) -> None:
    result = run(_delete(arn(OURS)))
    assert result.status == "gone" and "already deleted" in result.error


# -- what each executor does when the world is as read, or moved in a harmless way ----------------------------
def test_attach_and_detach_write_what_they_say(roles: None) -> None:
    world.create_role("batch-worker")
    ours = make_policy(OURS, attach=("batch-worker",))
    common: dict[str, Any] = {"role": "web-server", "policy_name": OURS, "policy_arn": ours, "path": PATH}
    attached_now = run(AttachGrantPolicy(**common, role_path=PATH))
    assert attached_now.status == "applied" and attached_now.detail == {"policy": ours, "role": "web-server"}
    detached = run(DetachGrantPolicy(**common, from_role="batch-worker", from_role_path=PATH))
    assert detached.status == "applied" and detached.detail["detached_from"] == "batch-worker"
    assert state(ours)["roles"] == ["web-server"]
    again = run(DetachGrantPolicy(**common, from_role="batch-worker", from_role_path=PATH))
    assert again.status == "applied"  # not attached any more: the goal is reached


def test_attach_to_a_role_deleted_meanwhile_is_gone(roles: None) -> None:
    ours = make_policy(OURS)
    action = AttachGrantPolicy(role="ghost", policy_name=OURS, policy_arn=ours, path=PATH, role_path=PATH)
    result = run(action)
    assert result.status == "gone" and "role ghost no longer exists" in result.error


def test_create_conflicts_when_the_policy_was_created_meanwhile(roles: None) -> None:
    ours = make_policy(OURS)
    before = state(ours)
    action = _actions(OURS, ours)[0]
    result = run(action)
    assert (result.status, result.retryable) == ("conflict", True)
    assert "was created meanwhile" in result.error
    assert state(ours) == before and attached("web-server") == []


def test_delete_goes_on_past_a_version_deleted_meanwhile(roles: None) -> None:
    ours = make_policy(OURS, versions=2, attach=("web-server",))
    result = run(_delete(ours, ("v1", "v9")))
    assert result.status == "applied" and state(ours) == {}


@pytest.mark.parametrize(
    ("operation", "action"),
    [
        pytest.param("DeletePolicyVersion", "rotate", id="rotate-prune"),
        pytest.param("CreatePolicyVersion", "rotate", id="rotate-create"),
        pytest.param("DetachRolePolicy", "detach", id="detach"),
        pytest.param("DeletePolicy", "delete", id="delete"),
        pytest.param("DeletePolicyVersion", "delete", id="delete-version"),
    ],
)
def test_other_iam_errors_fail_the_action_typed(roles: None, operation: str, action: str) -> None:
    ours = make_policy(OURS, versions=2, attach=("web-server",))
    before = state(ours)
    planned: Action = {
        "rotate": _rotate(ours, "v1"),
        "detach": DetachGrantPolicy("web-server", OURS, ours, PATH, from_role="web-server", from_role_path=PATH),
        "delete": _delete(ours, ("v1",)),
    }[action]

    def throttled(**_: Any) -> None:
        error: Any = {"Error": {"Code": "Throttling", "Message": "Rate exceeded"}, "ResponseMetadata": {}}
        raise ClientError(error, operation)

    client = clients.client("iam")
    client.meta.events.register(f"before-call.iam.{operation}", throttled)
    try:
        result = run(planned)
    finally:
        client.meta.events.unregister(f"before-call.iam.{operation}", throttled)
    assert (result.status, result.retryable) == ("failed", True) and "Throttling" in result.error
    if (operation, action) in {("DeletePolicyVersion", "rotate"), ("DetachRolePolicy", "detach")}:
        # failed at its first write: nothing changed
        assert state(ours) == before
