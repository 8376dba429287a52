"""The compliance circuit breaker's arithmetic, pure: no boto3, no clock (times are epoch seconds passed in).

Time is cut into fixed windows of ``window_seconds`` aligned to the epoch (window k covers
``[k*W, (k+1)*W)``). Before a role is remediated it takes a slot in the current window's counter, an
atomic conditional increment in the state table, so every invocation of every container counts
against one limit. A role that finds the window full is not remediated and trips the breaker: a flag
that holds for one window length from the trip, for every container, unless an operator resets it.
A run that alone wants more remediations than the limit remediates none and trips it too.
"""

from __future__ import annotations

from collections.abc import Sequence

from rolewarden.model.breaker import Limits, Trip, Window


def window_at(now: float, window_seconds: int) -> Window:
    if window_seconds <= 0:
        raise ValueError("window_seconds must be positive")
    start = int(now // window_seconds) * window_seconds
    return Window(start, start + window_seconds)


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
