"""The executors of the grant actions: the IAM writes that carry out each action of ``model.grants``.

Each re-checks, before writing, that the policy ARN is a generated policy under the managed path and
that the role it touches is under it (defence in depth behind the function's IAM policy), maps a
policy that changed since it was read to ``Conflict``, and records every new default version with
``Recorder``.
"""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import ClientError

from rolewarden.aws.clients import client
from rolewarden.aws.errors import code_of, raise_instead
from rolewarden.aws.executor import Conflict, Executor, ExecutorFunction, Gone
from rolewarden.aws.recorder import Recorder
from rolewarden.errors import PermanentError
from rolewarden.model.actions import Action
from rolewarden.model.grants import (
    POLICY_PREFIX,
    AttachGrantPolicy,
    CreateGrantPolicy,
    DeleteGrantPolicy,
    DetachGrantPolicy,
    GrantAction,
    RestoreGrantVersion,
    RotateGrantPolicy,
)
from rolewarden.settings import current


def _guard(action: GrantAction, *role_paths: str) -> None:
    """Refuse any write outside ``policy<managed path>rolewarden-grants-*`` and roles under the path."""
    forced = current().managed_path
    if forced and forced != action.path:
        raise PermanentError(f"refusing {action.describe()}: path {action.path} is not the stack's {forced}")
    pattern = rf"^arn:aws[a-z-]*:iam::\d{{12}}:policy{re.escape(action.path)}{re.escape(POLICY_PREFIX)}[\w+=,.@-]+$"
    if not action.policy_name.startswith(POLICY_PREFIX) or not re.match(pattern, action.policy_arn, re.ASCII):
        raise PermanentError(f"refusing {action.describe()}: {action.policy_arn} is not a generated grant policy")
    for role_path in role_paths:
        if not role_path.startswith(action.path):
            raise PermanentError(f"refusing {action.describe()}: role path {role_path} is outside {action.path}")


def _record(ex: Executor, action: GrantAction, version: str, document_hash: str, **extra: Any) -> None:
    Recorder(ex.sink).record(
        f"policy/{action.policy_name}",
        "rotation",
        {
            "role": action.role,
            "policy": action.policy_arn,
            "version": version,
            "trigger": ex.trigger,
            "document_hash": document_hash,
            **extra,
        },
    )


def _attach(role: str, policy_arn: str) -> None:
    with raise_instead("NoSuchEntity", Gone(f"role {role} no longer exists")):
        client("iam").attach_role_policy(RoleName=role, PolicyArn=policy_arn)


def _detach(role: str, policy_arn: str) -> None:
    try:
        client("iam").detach_role_policy(RoleName=role, PolicyArn=policy_arn)
    except ClientError as exc:
        if code_of(exc) != "NoSuchEntity":  # not attached (any more): the goal is reached
            raise


# -- executor functions ----------------------------------------------------------------------------
def _apply_create(ex: Executor, action: CreateGrantPolicy) -> dict[str, Any]:
    _guard(action, action.role_path)
    try:
        created = client("iam").create_policy(
            PolicyName=action.policy_name,
            Path=action.path,
            PolicyDocument=action.document,
            Description=action.description,
        )["Policy"]
    except ClientError as exc:
        if code_of(exc) == "EntityAlreadyExists":
            raise Conflict(f"{action.policy_name} was created meanwhile") from exc
        raise
    arn = str(created["Arn"])
    _attach(action.role, arn)
    version = str(created.get("DefaultVersionId") or "v1")
    _record(ex, action, version, action.document_hash, created=True)
    return {"policy": arn, "version": version, "document_hash": action.document_hash, "role": action.role}


def _apply_rotate(ex: Executor, action: RotateGrantPolicy) -> dict[str, Any]:
    _guard(action)
    iam = client("iam")
    if action.delete_version:
        try:
            iam.delete_policy_version(PolicyArn=action.policy_arn, VersionId=action.delete_version)
        except ClientError as exc:
            if code_of(exc) == "DeleteConflict":  # it became the default meanwhile
                raise Conflict(f"{action.delete_version} of {action.policy_name} is the default now") from exc
            if code_of(exc) != "NoSuchEntity":
                raise
    try:
        version = iam.create_policy_version(
            PolicyArn=action.policy_arn, PolicyDocument=action.document, SetAsDefault=True
        )["PolicyVersion"]["VersionId"]
    except ClientError as exc:
        if code_of(exc) in ("LimitExceeded", "NoSuchEntity"):
            raise Conflict(f"{action.policy_name} changed meanwhile ({code_of(exc)})") from exc
        raise
    _record(
        ex,
        action,
        str(version),
        action.document_hash,
        previous_version=action.previous_version,
        deleted_version=action.delete_version,
    )
    return {
        "policy": action.policy_arn,
        "version": version,
        "previous_version": action.previous_version,
        "deleted_version": action.delete_version,
        "document_hash": action.document_hash,
        "role": action.role,
    }


def _apply_restore(ex: Executor, action: RestoreGrantVersion) -> dict[str, Any]:
    _guard(action)
    with raise_instead("NoSuchEntity", Conflict(f"{action.version_id} of {action.policy_name} is gone")):
        client("iam").set_default_policy_version(PolicyArn=action.policy_arn, VersionId=action.version_id)
    _record(
        ex, action, action.version_id, action.document_hash, previous_version=action.previous_version, restored=True
    )
    return {"policy": action.policy_arn, "version": action.version_id, "previous_version": action.previous_version}


def _apply_attach(ex: Executor, action: AttachGrantPolicy) -> dict[str, Any]:
    _guard(action, action.role_path)
    _attach(action.role, action.policy_arn)
    return {"policy": action.policy_arn, "role": action.role}


def _apply_detach(ex: Executor, action: DetachGrantPolicy) -> dict[str, Any]:
    _guard(action, action.from_role_path)
    _detach(action.from_role, action.policy_arn)
    return {"policy": action.policy_arn, "detached_from": action.from_role}


def _apply_delete(ex: Executor, action: DeleteGrantPolicy) -> dict[str, Any]:
    _guard(action)
    iam = client("iam")
    for role in action.detach_from:
        _detach(role, action.policy_arn)
    for version in action.delete_versions:
        try:
            iam.delete_policy_version(PolicyArn=action.policy_arn, VersionId=version)
        except ClientError as exc:
            if code_of(exc) == "DeleteConflict":
                raise Conflict(f"{version} of {action.policy_name} became the default") from exc
            if code_of(exc) != "NoSuchEntity":
                raise
    try:
        iam.delete_policy(PolicyArn=action.policy_arn)
    except ClientError as exc:
        if code_of(exc) == "NoSuchEntity":
            raise Gone(f"{action.policy_name} is already deleted") from exc
        if code_of(exc) == "DeleteConflict":
            raise Conflict(f"{action.policy_name} gained an attachment or a version meanwhile") from exc
        raise
    Recorder(ex.sink).record(
        f"policy/{action.policy_name}",
        "deletion",
        {"role": action.role, "policy": action.policy_arn, "trigger": ex.trigger, "versions": action.delete_versions},
    )
    return {"policy": action.policy_arn, "detached_from": list(action.detach_from), "role": action.role}


EXECUTORS: dict[type[Action], ExecutorFunction] = {
    CreateGrantPolicy: _apply_create,
    RotateGrantPolicy: _apply_rotate,
    RestoreGrantVersion: _apply_restore,
    AttachGrantPolicy: _apply_attach,
    DetachGrantPolicy: _apply_detach,
    DeleteGrantPolicy: _apply_delete,
}
METRICS: dict[type[Action], str] = {
    CreateGrantPolicy: "GrantPolicyCreated",
    RotateGrantPolicy: "PolicyRotated",
    RestoreGrantVersion: "PolicyRestored",
    AttachGrantPolicy: "GrantPolicyAttached",
    DetachGrantPolicy: "GrantPolicyDetached",
    DeleteGrantPolicy: "GrantPolicyDeleted",
}
