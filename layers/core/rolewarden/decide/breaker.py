"""The compliance circuit breaker's arithmetic, pure: no boto3, no clock (times are epoch seconds passed in).

Time is cut into fixed windows of ``window_seconds`` aligned to the epoch (window k covers
``[k*W, (k+1)*W)``). Before a role is remediated it takes a slot in the current window's counter, an
atomic conditional increment in the state table, so every invocation of every container counts
against one limit. A role that finds the window full is not remediated and trips the breaker: a flag
that holds for one window length from the trip, for every container, unless an operator resets it.
A run that alone wants more remediations than the limit remediates none and trips it too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: How a trip came about: one run wanted more than the limit, or a role found the window full.
TRIP_RUN = "run-over-limit"
TRIP_WINDOW = "window-full"


@dataclass(frozen=True)
class Limits:
    max_remediations: int
    window_seconds: int

    @classmethod
    def of(cls, max_remediations: int, window_minutes: int) -> Limits:
        return cls(max_remediations, window_minutes * 60)


@dataclass(frozen=True)
class Window:
    start: int
    end: int

    @property
    def key(self) -> str:
        """The sort key of the window's counter item."""
        return f"window#{self.start}"

    def expiry(self) -> int:
        """When DynamoDB may delete the counter (TTL): one spare window after its end, so ``breaker status``
        can still show the previous window."""
        return self.end + (self.end - self.start)


def window_at(now: float, window_seconds: int) -> Window:
    if window_seconds <= 0:
        raise ValueError("window_seconds must be positive")
    start = int(now // window_seconds) * window_seconds
    return Window(start, start + window_seconds)


@dataclass(frozen=True)
class Trip:
    """The tripped flag, as stored: in force while ``now < until``."""

    tripped_at: float
    until: float
    cause: str
    limit: int
    window_seconds: int
    trigger: str = ""
    roles: tuple[str, ...] = field(default=())

    def in_force(self, now: float) -> bool:
        # DynamoDB's TTL deletes expired items lazily (often much later): the expiry is checked here.
        return now < self.until

    def as_dict(self) -> dict[str, Any]:
        return {
            "tripped_at": self.tripped_at,
            "until": self.until,
            "cause": self.cause,
            "limit": self.limit,
            "window_seconds": self.window_seconds,
            "trigger": self.trigger,
            "roles": list(self.roles),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trip:
        return cls(
            tripped_at=float(data["tripped_at"]),
            until=float(data["until"]),
            cause=str(data.get("cause", "")),
            limit=int(data.get("limit", 0)),
            window_seconds=int(data.get("window_seconds", 0)),
            trigger=str(data.get("trigger", "")),
            roles=tuple(str(r) for r in data.get("roles", ())),
        )


#: Roles named in a trip (the item and the finding stay small; the count is always exact).
MAX_ROLES_NAMED = 200


def new_trip(now: float, limits: Limits, cause: str, roles: Sequence[str], trigger: str) -> Trip:
    return Trip(
        tripped_at=now,
        until=now + limits.window_seconds,
        cause=cause,
        limit=limits.max_remediations,
        window_seconds=limits.window_seconds,
        trigger=trigger[:512],
        roles=tuple(roles)[:MAX_ROLES_NAMED],
    )


def over_run_limit(wanted: Sequence[str], limits: Limits) -> bool:
    """One run that alone would remediate more roles than the window allows remediates none."""
    return len(wanted) > limits.max_remediations


def describe_limits(limits: Limits) -> str:
    minutes = limits.window_seconds // 60
    return f"{limits.max_remediations} remediations per {minutes} minute{'s' if minutes != 1 else ''}"
