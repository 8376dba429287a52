"""The executors of the role-compliance actions, and the rollback's restore steps.

Each executor re-checks before it writes: the role's path is under its action's scope (never a
service-linked role, never the whole account), and a rewrite, delete or put of an inline policy goes
ahead only when the policy is still what the decision read (otherwise ``Conflict``: the record is
retried and decides from a fresh read).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rolewarden.aws.clients import client
from rolewarden.aws.errors import classify, code_of, raise_instead
from rolewarden.aws.executor import Conflict, Executor, ExecutorFunction, Gone
from rolewarden.errors import PermanentError
from rolewarden.model import compliance
from rolewarden.model.actions import Action
from rolewarden.model.documents import canonical_json, load_document


def _guard(action: compliance.RoleAction) -> None:
    """Defense in depth: the decision filtered the scope already; refuse here too."""
    if action.role_path.startswith(compliance.SERVICE_LINKED_PATH) or not action.role_path.startswith(action.scope):
        raise PermanentError(
            f"refusing to change role {action.role_name}: path {action.role_path} is outside {action.scope}",
            "OutOfScope",
        )
    if not action.scope.startswith("/") or action.scope == "/":
        raise PermanentError(
            f"refusing to change role {action.role_name}: invalid scope {action.scope!r}", "OutOfScope"
        )


def _current_inline(role: str, policy: str) -> str:
    with raise_instead("NoSuchEntity", Gone(f"inline policy {policy} of role {role} no longer exists")):
        raw = client("iam").get_role_policy(RoleName=role, PolicyName=policy)
    return canonical_json(load_document(raw["PolicyDocument"]))


def _unchanged(
    action: compliance.RewriteInlinePolicy | compliance.DeleteInlinePolicy | compliance.PutInlinePolicy, current: str
) -> None:
    if current != action.expected:
        raise Conflict(f"inline policy {action.policy_name} of {action.role_name} changed since it was read")


def apply_detach(ex: Executor, action: compliance.DetachManagedPolicy) -> dict[str, Any]:
    _guard(action)
    with raise_instead("NoSuchEntity", Gone(f"{action.policy_arn} is no longer attached to {action.role_name}")):
        client("iam").detach_role_policy(RoleName=action.role_name, PolicyArn=action.policy_arn)
    return {"policy": action.policy_arn, "rules": list(action.rules)}


def apply_rewrite(ex: Executor, action: compliance.RewriteInlinePolicy) -> dict[str, Any]:
    _guard(action)
    _unchanged(action, _current_inline(action.role_name, action.policy_name))
    client("iam").put_role_policy(
        RoleName=action.role_name, PolicyName=action.policy_name, PolicyDocument=action.document
    )
    return {"policy": action.policy_name, "removed_statements": list(action.removed), "rules": list(action.rules)}


def apply_delete_inline(ex: Executor, action: compliance.DeleteInlinePolicy) -> dict[str, Any]:
    _guard(action)
    _unchanged(action, _current_inline(action.role_name, action.policy_name))
    with raise_instead("NoSuchEntity", Gone(f"inline policy {action.policy_name} of {action.role_name} is gone")):
        client("iam").delete_role_policy(RoleName=action.role_name, PolicyName=action.policy_name)
    return {"policy": action.policy_name, "rules": list(action.rules)}


def apply_trust(ex: Executor, action: compliance.ReplaceTrustPolicy) -> dict[str, Any]:
    _guard(action)
    with raise_instead("NoSuchEntity", Gone(f"role {action.role_name} no longer exists")):
        client("iam").update_assume_role_policy(RoleName=action.role_name, PolicyDocument=action.document)
    return {"rules": list(action.rules)}


def apply_boundary(ex: Executor, action: compliance.PutBoundary) -> dict[str, Any]:
    _guard(action)
    # NoSuchEntity here may mean the role or the configured boundary policy is missing: IAM uses
    # one code for both, so it stays a permanent failure (DLQ, with the reason) rather than "gone".
    client("iam").put_role_permissions_boundary(RoleName=action.role_name, PermissionsBoundary=action.boundary_arn)
    return {"boundary": action.boundary_arn, "rules": list(action.rules)}


def apply_instance_profile(ex: Executor, action: compliance.CreateInstanceProfile) -> dict[str, Any]:
    """Create the profile (an existing one of that name is used as is) and add the role. IAM allows one
    role per profile: a profile of that name that holds another role is a permanent failure, not overwritten."""
    _guard(action)
    if not action.profile_path.startswith(action.scope):
        raise PermanentError(
            f"refusing to create instance profile {action.profile_name}: path {action.profile_path} is outside "
            f"{action.scope}",
            "OutOfScope",
        )
    iam = client("iam")
    try:
        iam.create_instance_profile(InstanceProfileName=action.profile_name, Path=action.profile_path)
        created = True
    except ClientError as exc:
        if code_of(exc) != "EntityAlreadyExists":
            raise
        created = False
    try:
        iam.add_role_to_instance_profile(InstanceProfileName=action.profile_name, RoleName=action.role_name)
    except ClientError as exc:
        if code_of(exc) == "LimitExceeded":
            raise PermanentError(
                f"instance profile {action.profile_name} already holds another role; not changing it "
                f"(role {action.role_name} stays without a profile)",
                "LimitExceeded",
            ) from exc
        if code_of(exc) != "EntityAlreadyExists":  # the role is in it already: done
            raise
    return {
        "instance_profile": action.profile_path + action.profile_name,
        "profile_created": created,
        "rules": list(action.rules),
    }


def apply_put_inline(ex: Executor, action: compliance.PutInlinePolicy) -> dict[str, Any]:
    """An inline policy RoleWarden owns (the instance-credential perimeter): written only if it is still what
    was read (absent, or the same document), so a concurrent change is re-read rather than overwritten."""
    _guard(action)
    try:
        current = _current_inline(action.role_name, action.policy_name)
    except Gone:
        current = ""
    _unchanged(action, current)
    with raise_instead("NoSuchEntity", Gone(f"role {action.role_name} no longer exists")):
        client("iam").put_role_policy(
            RoleName=action.role_name, PolicyName=action.policy_name, PolicyDocument=action.document
        )
    return {"policy": action.policy_name, "rules": list(action.rules)}


# ------------------------------------------------------------------ rollback writes
def apply_restore_step(role_name: str, step: str, value: Any) -> None:
    """One step of ``rolewarden.decide.compliance.rollback.restore_plan`` (the caller checked the scope)."""
    iam = client("iam")
    what = f"rollback {step} on role {role_name}"
    try:
        if step == "trust":
            iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=json.dumps(value))
        elif step == "put-boundary":
            iam.put_role_permissions_boundary(RoleName=role_name, PermissionsBoundary=value)
        elif step == "delete-boundary":
            iam.delete_role_permissions_boundary(RoleName=role_name)
        elif step == "attach":
            iam.attach_role_policy(RoleName=role_name, PolicyArn=value)
        elif step == "detach":
            iam.detach_role_policy(RoleName=role_name, PolicyArn=value)
        elif step == "put-inline":
            name, document = value
            iam.put_role_policy(RoleName=role_name, PolicyName=name, PolicyDocument=json.dumps(document))
        elif step == "delete-inline":
            iam.delete_role_policy(RoleName=role_name, PolicyName=value)
        else:  # pragma: no cover - restore_plan emits only the steps above
            raise ValueError(f"unknown restore step {step}")
    except (ClientError, BotoCoreError) as exc:
        raise classify(exc, what) from exc


EXECUTORS: dict[type[Action], ExecutorFunction] = {
    compliance.DetachManagedPolicy: apply_detach,
    compliance.RewriteInlinePolicy: apply_rewrite,
    compliance.DeleteInlinePolicy: apply_delete_inline,
    compliance.ReplaceTrustPolicy: apply_trust,
    compliance.PutBoundary: apply_boundary,
    compliance.CreateInstanceProfile: apply_instance_profile,
    compliance.PutInlinePolicy: apply_put_inline,
}
#: The success metric of each action type: every compliance action is a remediation
#: (``compliance.REMEDIATION_ACTIONS``, the one list of them).
METRICS: dict[type[Action], str] = dict.fromkeys(compliance.REMEDIATION_ACTIONS, "Remediated")
