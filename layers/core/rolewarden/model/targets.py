"""A target: one resource a capability reconciles (or the sweep: everything it manages)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rolewarden.model.instances import LifecycleAction

TargetKind = Literal["instance", "bucket", "role", "policy", "profile", "sweep"]


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    id: str
    lifecycle: LifecycleAction | None = field(default=None, compare=False, hash=False)
    #: Epoch seconds of the launch event (EC2 state change, Auto Scaling launch or launch lifecycle
    #: action) that named the instance; None for other events. A young launch's instance that EC2
    #: does not show yet is retried, not skipped.
    launched_at: float | None = field(default=None, compare=False, hash=False)


SWEEP = Target("sweep", "*")
