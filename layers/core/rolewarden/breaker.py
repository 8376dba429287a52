"""The compliance circuit breaker across invocations and containers (see ``rolewarden.decide.breaker``).

``Gate`` is one run's view: ``open(wanted)`` once with the roles the run would remediate, then
``take(role)`` before each role's first write (True: remediate; False: withheld), then ``close()``.
The counter and the tripped flag live in the state table (``ROLEWARDEN_TABLE``); without one (a local
run, the CLI without ``--table``) the breaker counts per invocation only and says so with a WARNING.
In dry run nothing is counted (nothing is written), but a run over the limit still reports the trip.

``status`` and ``reset`` are the operator's side (``rolewarden breaker status|reset``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rolewarden.aws.recorder import Recorder
from rolewarden.config import Config
from rolewarden.decide.breaker import describe_limits, new_trip, over_run_limit, window_at
from rolewarden.errors import RoleWardenError
from rolewarden.model.breaker import TRIP_RUN, TRIP_WINDOW, Limits, Trip
from rolewarden.model.findings import Finding
from rolewarden.settings import current
from rolewarden.telemetry import Sink

#: Wall clock (epoch seconds) of the windows and trips; tests replace it.
clock: Callable[[], float] = time.time
#: The records of trips and resets (``rolewarden history``-style audit, shown by ``breaker status``).
RECORD_RESOURCE = "circuit-breaker"
METRIC = "CircuitBreakerTripped"
_warned_no_table = False


def limits_of(config: Config) -> Limits:
    cb = config.compliance.circuit_breaker
    return Limits.of(cb.max_remediations, cb.window_minutes)


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def state_table(table: str | None = None) -> str | None:
    return table if table is not None else current().table or None


@dataclass
class Gate:
    sink: Sink
    limits: Limits
    capability: str
    trigger: str = ""
    dry_run: bool = False
    table: str | None = None
    #: The trip that withholds the rest of this run, once there is one.
    trip: Trip | None = None
    #: True when this run set the flag (it raises the ERROR finding); False when it found it set.
    tripped_here: bool = False
    withheld: list[str] = field(default_factory=list)
    wanted: list[str] = field(default_factory=list)
    #: A state-table failure: every role still to remediate fails with it (retried), none is remediated.
    error: RoleWardenError | None = None

    def open(self, wanted: Sequence[str]) -> None:
        self.wanted = list(wanted)
        if not wanted:
            return  # nothing to remediate: no state-table call at all
        if over_run_limit(wanted, self.limits):
            self._trip(TRIP_RUN, wanted)
            return
        if self.dry_run:
            return
        if self.table is None:
            self._warn_no_table()
            return
        try:
            from rolewarden.aws import breaker as store

            found = store.read_trip(self.table)
        except RoleWardenError as exc:
            self.error = exc
            return
        if found is not None and found.in_force(clock()):
            self.trip = found

    def take(self, role: str) -> bool:
        """True: the role has a slot and may be remediated now. False: withheld (see ``trip``/``error``)."""
        if self.error is not None or self.trip is not None:
            self.withheld.append(role)
            return False
        if self.dry_run or self.table is None:
            return True
        from rolewarden.aws import breaker as store

        window = window_at(clock(), self.limits.window_seconds)
        try:
            if store.take_slot(self.table, window, self.limits.max_remediations):
                return True
        except RoleWardenError as exc:
            self.error = exc
            self.withheld.append(role)
            return False
        self.withheld.append(role)
        self._trip(TRIP_WINDOW, [role])
        return False

    def _trip(self, cause: str, roles: Sequence[str]) -> None:
        now = clock()
        trip = new_trip(now, self.limits, cause, roles, self.trigger)
        self.trip, self.tripped_here = trip, True
        if self.dry_run or self.table is None:
            return
        from rolewarden.aws import breaker as store

        try:
            store.close_window(self.table, window_at(now, self.limits.window_seconds))
            if store.put_trip(self.table, trip):
                Recorder(self.sink, self.table, per_account=False).record(RECORD_RESOURCE, "trip", trip.as_dict())
            else:
                self.trip, self.tripped_here = store.read_trip(self.table) or trip, False
        except (RoleWardenError, ClientError, BotoCoreError) as exc:
            # The roles are withheld all the same; only the flag or its record could not be written.
            self.sink.log("ERROR", f"circuit breaker: could not record the trip: {exc}", capability=self.capability)

    def close(self) -> None:
        """Raise the finding and the alarm metric once per run that the breaker stopped."""
        if self.error is not None and self.withheld:
            self.sink.log(
                "ERROR",
                f"circuit breaker unavailable, {len(self.withheld)} role(s) not remediated (retried): {self.error}",
                capability=self.capability,
                roles=self.withheld[:200],
            )
            return
        if self.trip is None:
            return
        trip, limits = self.trip, self.limits
        if self.tripped_here and trip.cause == TRIP_RUN:
            roles = sorted(self.wanted)
            message = (
                f"{len(roles)} roles would be remediated in one run, more than the circuit breaker allows "
                f"({describe_limits(limits)}): remediated none. "
            )
        elif self.tripped_here:
            roles = sorted(set(self.withheld))
            message = (
                f"the circuit breaker's window is full ({describe_limits(limits)}, counted across every "
                f"invocation): {len(roles)} role(s) not remediated. "
            )
        else:
            roles = sorted(set(self.withheld))
            if not roles:
                return
            message = (
                f"circuit breaker open since {iso(trip.tripped_at)} ({trip.cause}): "
                f"{len(roles)} role(s) not remediated. "
            )
        if not (self.dry_run or self.table is None):
            message += f"Remediation stays off until {iso(trip.until)} or `rolewarden breaker reset`. "
        message += "Check the rules and the config, then reset the breaker or raise the limit."
        self.sink.finding(
            Finding(
                self.capability,
                "account",
                "circuit-breaker",
                message,
                "ERROR" if self.tripped_here else "WARNING",
                details={
                    "roles": roles[:200],
                    "withheld": len(roles),
                    "limit": limits.max_remediations,
                    "window_minutes": limits.window_seconds // 60,
                    "cause": trip.cause,
                    "tripped_at": iso(trip.tripped_at),
                    "until": iso(trip.until),
                    "tripped_here": self.tripped_here,
                    "trigger": self.trigger,
                },
            ),
            metric="ComplianceFindings",
        )
        self.sink.metric(METRIC)

    def _warn_no_table(self) -> None:
        global _warned_no_table
        if _warned_no_table:
            return
        _warned_no_table = True
        self.sink.log(
            "WARNING",
            "circuit breaker: no state table (ROLEWARDEN_TABLE unset): remediations are counted per invocation "
            f"only, not across invocations ({describe_limits(self.limits)} cannot be enforced)",
            capability=self.capability,
        )


# ================================================================== operator side
def status(config: Config, table: str) -> dict[str, Any]:
    """The breaker now: tripped or not (and by what, until when), this window's count, the last trips and
    resets. Plain data for ``rolewarden breaker status``."""
    from rolewarden.aws import breaker as store

    limits = limits_of(config)
    now = clock()
    window = window_at(now, limits.window_seconds)
    trip = store.read_trip(table)
    counted, closed = store.read_window(table, window)
    history = Recorder(Sink(), table, per_account=False).history(RECORD_RESOURCE)
    in_force = trip is not None and trip.in_force(now)
    return {
        "tripped": in_force,
        "trip": (
            {**trip.as_dict(), "tripped_at": iso(trip.tripped_at), "until": iso(trip.until)}
            if in_force and trip
            else None
        ),
        "limit": limits.max_remediations,
        "window_minutes": limits.window_seconds // 60,
        "window": {"start": iso(window.start), "end": iso(window.end), "remediations": counted, "closed": closed},
        "history": [
            {
                "record_id": r.record_id,
                "kind": r.kind,
                "time": r.time,
                **{k: v for k, v in r.data.items() if k != "roles"},
            }
            for r in history[:10]
        ],
    }


def reset(config: Config, table: str, reason: str, operator: str, sink: Sink | None = None) -> dict[str, Any]:
    """Close the breaker now: clear the flag and this window's count, and record who did it and why."""
    from rolewarden.aws import breaker as store

    limits = limits_of(config)
    now = clock()
    window = window_at(now, limits.window_seconds)
    previous, counted = store.reset(table, window)
    was_tripped = previous is not None and previous.in_force(now)
    data = {
        "reason": reason,
        "operator": operator,
        "was_tripped": was_tripped,
        "previous_trip": previous.as_dict() if previous is not None else None,
        "window_start": iso(window.start),
        "remediations_cleared": counted,
        "trigger": "rolewarden breaker reset",
    }
    record = Recorder(sink or Sink(), table, per_account=False).record(RECORD_RESOURCE, "reset", data)
    return {"record_id": record.record_id, "time": record.time, **data}
