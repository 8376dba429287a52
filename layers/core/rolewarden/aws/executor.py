"""The executor: applies a plan's actions one by one (or only logs them in dry run), with metrics,
structured log lines and retry-typed failures.

Which function carries out an action is declared, not registered by import side effect: each
capability's executor module (``EXECUTOR_MODULES``, imported on first use so a function loads only its
own capability's AWS code) defines two literal tables, ``EXECUTORS`` (action type -> function) and
``METRICS`` (action type -> the metric counted when it is applied; "Applied" when absent)."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from rolewarden.aws.errors import classify
from rolewarden.errors import PermanentError, RetryableError
from rolewarden.model.actions import Action
from rolewarden.telemetry import Sink

Status = Literal["applied", "planned", "failed", "conflict", "gone"]


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


#: What an executor module maps an action type to: carry it out, return the details worth logging.
ExecutorFunction = Callable[["Executor", Any], dict[str, Any] | None]

#: Capability name -> the module holding the executors (``EXECUTORS``, ``METRICS``) of its action types.
EXECUTOR_MODULES: dict[str, str] = {
    "instance_profiles": "rolewarden.aws.profiles",
    "bucket_grants": "rolewarden.aws.grants.executors",
    "role_compliance": "rolewarden.aws.compliance.executors",
}


class UnknownAction(TypeError):
    """An action type no executor module declares: a programming error, never retried."""


def executor_for(action_type: type[Action]) -> tuple[ExecutorFunction, str]:
    """The function that carries out ``action_type`` and the metric it counts when applied."""
    module_name = EXECUTOR_MODULES.get(action_type.capability)
    if module_name is None:
        raise UnknownAction(
            f"no executor module for {action_type.__name__}: its capability {action_type.capability!r} "
            f"is not one of {sorted(EXECUTOR_MODULES)} (rolewarden.aws.executor.EXECUTOR_MODULES)"
        )
    module = importlib.import_module(module_name)
    executors: dict[type[Action], ExecutorFunction] = module.EXECUTORS
    metrics: dict[type[Action], str] = module.METRICS
    func = executors.get(action_type)
    if func is None:
        raise UnknownAction(f"{module_name}.EXECUTORS has no executor for {action_type.__name__}")
    return func, metrics.get(action_type, "Applied")


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
        handler, metric = executor_for(type(action))
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
        self.sink.metric(metric)
        return ActionResult(action, "applied", detail=detail)
