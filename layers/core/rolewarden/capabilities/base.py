"""What every capability shares: the run context and the per-target outcome."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from rolewarden.aws.executor import ActionResult, Executor
from rolewarden.config import Config
from rolewarden.model.targets import Target
from rolewarden.settings import Settings, current
from rolewarden.telemetry import Sink

OutcomeStatus = Literal["ok", "retry", "dead"]


@dataclass
class Outcome:
    """How a target ended: ok (done or nothing to do), retry (fail the record), dead (to the DLQ)."""

    status: OutcomeStatus = "ok"
    message: str = ""
    #: A sweep that stopped because its time budget was spent returns where to resume (an opaque,
    #: JSON-serialisable string owned by the capability); the runtime sends a continuation message
    #: carrying it. ``None``: the sweep is complete.
    continuation: str | None = None

    @classmethod
    def worst(cls, outcomes: Sequence[Outcome]) -> Outcome:
        for status in ("dead", "retry"):
            for outcome in outcomes:
                if outcome.status == status:
                    return outcome
        return cls()


@dataclass
class Run:
    """One reconcile: the config, where logs and metrics go, and the executor."""

    config: Config
    sink: Sink
    executor: Executor
    trigger: str = ""
    results: list[ActionResult] = field(default_factory=list)
    #: Sweep budget: ``clock()`` value after which a sweep starts no new unit of work and returns
    #: ``Outcome(continuation=cursor)``. ``None``: unbounded (the CLI, tests).
    deadline: float | None = None
    #: Where a continued sweep resumes (the ``continuation`` of the previous part); ``None``: from the start.
    cursor: str | None = None
    clock: Callable[[], float] = time.monotonic
    #: The environment's settings (state table, queue URLs...), built once per process.
    settings: Settings = field(default_factory=current)

    def budget_spent(self) -> bool:
        """True when a sweep should stop starting new work and hand back a cursor."""
        return self.deadline is not None and self.clock() >= self.deadline


class Capability(Protocol):
    name: str

    def reconcile(self, run: Run, targets: Sequence[Target]) -> dict[Target, Outcome]:
        """Converge every target (a sweep target means: everything this capability manages)."""
        ...
