"""The executor: applies a plan's actions one by one (or only logs them in dry run), with metrics,
structured log lines and retry-typed failures. Capabilities register a function per action type."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from rolewarden.aws import ec2
from rolewarden.aws.errors import classify, code_of, is_profile_propagation
from rolewarden.errors import PermanentError, RetryableError
from rolewarden.model.actions import Action
from rolewarden.model.profiles import (
    AssociateProfile,
    CompleteLifecycle,
    HeartbeatLifecycle,
    ReassociateProfile,
    ReplaceProfile,
    SetMetadataOptions,
)
from rolewarden.telemetry import Sink

Status = Literal["applied", "planned", "failed", "conflict", "gone"]
A = TypeVar("A", bound=Action)


@dataclass
class ActionResult:
    action: Action
    status: Status
    error: str = ""
    retryable: bool = False
    detail: dict[str, Any] = field(default_factory=dict)


class Conflict(Exception):
    """The world moved between read and write (e.g. an association appeared). Re-read and decide again."""


class Gone(Exception):
    """The resource disappeared between read and write. Nothing to do."""


_HANDLERS: dict[type[Action], Callable[[Executor, Any], dict[str, Any] | None]] = {}


def handles[A: Action](
    action_type: type[A],
) -> Callable[[Callable[[Executor, A], dict[str, Any] | None]], Callable[[Executor, A], dict[str, Any] | None]]:
    """Register the function that carries out ``action_type``."""

    def register(
        func: Callable[[Executor, A], dict[str, Any] | None],
    ) -> Callable[[Executor, A], dict[str, Any] | None]:
        _HANDLERS[action_type] = func
        return func

    return register


@dataclass
class Executor:
    sink: Sink
    dry_run: bool = False
    sleep: Callable[[float], None] = time.sleep
    #: Seconds to keep retrying a just-created instance profile inside one invocation (aws-notes §3).
    propagation_budget: float = 30.0
    trigger: str = ""

    def execute(self, actions: Iterable[Action]) -> list[ActionResult]:
        return [self.execute_one(action) for action in actions]

    def execute_one(self, action: Action) -> ActionResult:
        handler = _HANDLERS.get(type(action))
        if handler is None:  # pragma: no cover - a programming error, caught by the registry test
            raise TypeError(f"no executor registered for {type(action).__name__}")
        base = {
            "action": action.verb,
            "capability": action.capability,
            "resource": action.resource,
            "trigger": self.trigger,
        }
        if self.dry_run and not action.allowed_in_dry_run:
            self.sink.log("INFO", f"DRY RUN: would {action.describe()}", **base, planned=action.as_dict())
            self.sink.metric("Planned")
            return ActionResult(action, "planned")
        try:
            detail = handler(self, action) or {}
        except Conflict as exc:
            self.sink.log("INFO", f"conflict on {action.describe()}: {exc}; re-reading", **base)
            return ActionResult(action, "conflict", str(exc), retryable=True)
        except Gone as exc:
            self.sink.log("INFO", f"skipped {action.describe()}: {exc}", **base)
            return ActionResult(action, "gone", str(exc))
        except RetryableError as exc:
            self.sink.log("ERROR", f"failed to {action.describe()}: {exc}", **base, error_code=exc.code, retryable=True)
            self.sink.metric("Failed")
            return ActionResult(action, "failed", str(exc), retryable=True)
        except PermanentError as exc:
            self.sink.log(
                "ERROR", f"failed to {action.describe()}: {exc}", **base, error_code=exc.code, retryable=False
            )
            self.sink.metric("Failed")
            return ActionResult(action, "failed", str(exc), retryable=False)
        except (ClientError, BotoCoreError) as exc:
            mapped = classify(exc, action.describe())
            retryable = isinstance(mapped, RetryableError)
            self.sink.log("ERROR", f"failed to {action.describe()}: {mapped}", **base, retryable=retryable)
            self.sink.metric("Failed")
            return ActionResult(action, "failed", str(mapped), retryable=retryable)
        self.sink.log("INFO", f"{action.describe()}", **base, **detail)
        self.sink.metric(_METRIC_NAMES.get(type(action), "Applied"))
        return ActionResult(action, "applied", detail=detail)


_METRIC_NAMES: dict[type[Action], str] = {
    AssociateProfile: "Attached",
    ReplaceProfile: "Replaced",
    ReassociateProfile: "Replaced",
    CompleteLifecycle: "LifecycleCompleted",
    HeartbeatLifecycle: "LifecycleHeartbeats",
    SetMetadataOptions: "Imdsv2Required",
}


def metric_name(action_type: type[Action], name: str) -> None:
    """Let a capability name the success metric of its action type."""
    _METRIC_NAMES[action_type] = name


# -- instance profiles -----------------------------------------------------------------------
def _associate_with_backoff(
    ex: Executor, instance_id: str, profile_arn: str, *, after_disassociate: bool = False
) -> str:
    """AssociateIamInstanceProfile, retrying the two transient answers EC2 gives:
    a profile IAM has not propagated yet, and (just after a disassociate) the old association still
    disassociating. Past the budget it raises RetryableError so the record is redelivered."""
    delay, waited = 1.0, 0.0
    while True:
        try:
            return ec2.associate(instance_id, profile_arn)
        except ClientError as exc:
            code = code_of(exc)
            transient = is_profile_propagation(exc) or (after_disassociate and code == "IncorrectState")
            if code == "IncorrectState" and not after_disassociate:
                raise Conflict(f"{instance_id} already has an association") from exc
            if code == "InvalidInstanceID.NotFound":
                raise Gone(f"{instance_id} no longer exists") from exc
            if not transient:
                raise
            if waited >= ex.propagation_budget:
                raise RetryableError(
                    f"associate {profile_arn} with {instance_id}: still {code} after {waited:.0f}s "
                    "(IAM eventual consistency); the record will be redelivered",
                    code,
                ) from exc
            ex.sink.log(
                "INFO",
                f"{code} associating {instance_id}; retrying in {delay:.0f}s",
                resource=instance_id,
                error_code=code,
            )
            ex.sleep(delay)
            waited += delay
            delay = min(delay * 2, 16.0)


@handles(AssociateProfile)
def _apply_associate(ex: Executor, action: AssociateProfile) -> dict[str, Any]:
    association_id = _associate_with_backoff(ex, action.instance_id, action.profile_arn)
    return {"association_id": association_id, "profile": action.profile_name}


@handles(ReplaceProfile)
def _apply_replace(ex: Executor, action: ReplaceProfile) -> dict[str, Any]:
    delay, waited = 1.0, 0.0
    while True:
        try:
            association_id = ec2.replace(action.association_id, action.profile_arn)
            return {"association_id": association_id, "profile": action.profile_name, "previous": action.previous_arn}
        except ClientError as exc:
            code = code_of(exc)
            if code in ("IncorrectState", "InvalidAssociationID.NotFound"):
                raise Conflict(f"association {action.association_id} is no longer active") from exc
            if not is_profile_propagation(exc):
                raise
            if waited >= ex.propagation_budget:
                raise RetryableError(f"replace on {action.instance_id}: profile not visible to EC2 yet", code) from exc
            ex.sleep(delay)
            waited += delay
            delay = min(delay * 2, 16.0)


@handles(ReassociateProfile)
def _apply_reassociate(ex: Executor, action: ReassociateProfile) -> dict[str, Any]:
    try:
        ec2.disassociate(action.association_id)
    except ClientError as exc:
        if code_of(exc) == "IncorrectState":  # another writer replaced it since it was read: re-read, decide again
            raise Conflict(f"association {action.association_id} is no longer active") from exc
        raise
    association_id = _associate_with_backoff(ex, action.instance_id, action.profile_arn, after_disassociate=True)
    return {"association_id": association_id, "profile": action.profile_name, "previous": action.previous_arn}


@handles(CompleteLifecycle)
def _apply_complete(ex: Executor, action: CompleteLifecycle) -> dict[str, Any]:
    try:
        ec2.complete_lifecycle_action(action.group, action.hook, action.token, action.instance_id, action.result)
    except ClientError as exc:
        # "No active Lifecycle Action found": a duplicate event after completion, or the hook timed out.
        if code_of(exc) == "ValidationError":
            raise Gone(f"no pending lifecycle action: {exc.response['Error'].get('Message', '')}") from exc
        raise
    return {"group": action.group, "hook": action.hook, "result": action.result}


@handles(HeartbeatLifecycle)
def _apply_heartbeat(ex: Executor, action: HeartbeatLifecycle) -> dict[str, Any]:
    try:
        ec2.record_lifecycle_action_heartbeat(action.group, action.hook, action.token, action.instance_id)
    except ClientError as exc:
        if code_of(exc) == "ValidationError":  # completed meanwhile, or timed out: nothing to keep alive
            raise Gone(f"no pending lifecycle action: {exc.response['Error'].get('Message', '')}") from exc
        raise
    return {"group": action.group, "hook": action.hook}


@handles(SetMetadataOptions)
def _apply_metadata(ex: Executor, action: SetMetadataOptions) -> dict[str, Any]:
    try:
        answer = ec2.require_imdsv2(action.instance_id, action.hop_limit)
    except ClientError as exc:
        if code_of(exc) == "InvalidInstanceID.NotFound":
            raise Gone(f"{action.instance_id} no longer exists") from exc
        raise
    return {
        "http_tokens": answer.get("HttpTokens", "required"),
        "hop_limit": answer.get("HttpPutResponseHopLimit", action.hop_limit),
        "previous_tokens": action.previous_tokens,
        "previous_hop_limit": action.previous_hop_limit,
    }
