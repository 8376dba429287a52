"""What every capability shares: the run context and the per-target outcome."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from rolewarden.apply import ActionResult, Executor
from rolewarden.config import Config
from rolewarden.observe import Sink
from rolewarden.triggers import Target

OutcomeStatus = Literal["ok", "retry", "dead"]


@dataclass
class Outcome:
    """How a target ended: ok (done or nothing to do), retry (fail the record), dead (to the DLQ)."""

    status: OutcomeStatus = "ok"
    message: str = ""

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


class Capability(Protocol):
    name: str

    def reconcile(self, run: Run, targets: Sequence[Target]) -> dict[Target, Outcome]:
        """Converge every target (a sweep target means: everything this capability manages)."""
        ...
