"""The compliance circuit breaker's data: its limits, a counting window and a trip, as stored in the
state table (``rolewarden.aws.breaker``) and decided on by ``rolewarden.decide.breaker``."""

from __future__ import annotations

from collections.abc import Mapping
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
