"""The capability contract, and what every capability shares: the run context, the per-target outcome,
and the end of a reconcile (the executor's results turned into outcomes).

A capability is a package ``capabilities/<name>/`` whose ``__init__.py`` exposes ``CAPABILITY`` (an
object with ``name`` and ``reconcile``, the ``Capability`` protocol below), built from three parts:

1. **observe** (``capabilities/<name>/observe.py``): ``observe(run, targets) -> <Name>Snapshot``, the
   reads of the real state the targets name, through ``rolewarden.aws`` only, returned as a frozen
   dataclass (``rolewarden.model``); it writes nothing.
2. **decide** (``rolewarden.decide.<name>``): pure functions, ``decide(snapshot, config, ...)``, that turn
   the snapshot into decisions carrying explicit actions (``rolewarden.model``); no boto3, no
   environment, no clock.
3. **apply**: the actions go through ``run.executor`` (``rolewarden.aws.executor``), which finds each
   action's executor in its capability's declared table; ``apply`` below records every result in
   ``run.results`` and folds them into one ``Outcome`` per target (``outcome_of``).

``reconcile(run, targets) -> {target: Outcome}`` composes them, plus what the capability needs around
them (leases, re-reading after a conflict, a sweep's cursor). Events are edge triggers: every reconcile
re-reads, so a duplicate or a retry converges.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from rolewarden.aws.executor import ActionResult, Executor
from rolewarden.config import Config
from rolewarden.model.actions import Action
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


# -- the end of a reconcile: results -> outcomes ------------------------------------------------------
def outcome_of(result: ActionResult) -> Outcome:
    """One action's result as an outcome: a conflict (the world moved between read and write) is retried
    and decided again on fresh reads; a failure is retried or dead-lettered as its error says; applied,
    planned (dry run) and gone (nothing left to do) are ok."""
    if result.status == "conflict":
        return Outcome("retry", result.error)
    if result.status == "failed":
        return Outcome("retry" if result.retryable else "dead", result.error)
    return Outcome()


@dataclass(frozen=True)
class Applied:
    """The results of one target's actions, and the outcome they add up to (the worst of them)."""

    results: tuple[ActionResult, ...]
    outcome: Outcome

    @property
    def conflicted(self) -> bool:
        return any(r.status == "conflict" for r in self.results)

    @property
    def gone(self) -> bool:
        return any(r.status == "gone" for r in self.results)

    @property
    def applied(self) -> tuple[Action, ...]:
        return tuple(r.action for r in self.results if r.status == "applied")


def apply(run: Run, actions: Iterable[Action], *, stop_at_failure: bool = False) -> Applied:
    """Execute one target's actions through ``run.executor`` in order, record each result in
    ``run.results``, and add them up. ``stop_at_failure``: the actions are steps that assume the
    previous ones happened, so the first conflict or failure ends them."""
    results: list[ActionResult] = []
    for action in actions:
        result = run.executor.execute_one(action)
        run.results.append(result)
        results.append(result)
        if stop_at_failure and result.status in ("conflict", "failed"):
            break
    return Applied(tuple(results), Outcome.worst([outcome_of(r) for r in results]))
