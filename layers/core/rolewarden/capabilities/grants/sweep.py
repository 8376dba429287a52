"""The recorded grants sweep: record every bucket (only the ones whose grants changed cost writes), then
rebuild every role, within the run's budget: a spent budget returns a ``Cursor`` to continue from, and
roles found being written elsewhere are rebuilt again in a continuation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from rolewarden.aws.grants import reads, records
from rolewarden.capabilities.base import Outcome
from rolewarden.capabilities.grants.apply import FINDING_METRICS, outcome_of
from rolewarden.capabilities.grants.recorded import MAX_REBUILDS, LeaseHeld, Recorded
from rolewarden.decide.grants.naming import parts_by_role
from rolewarden.decide.grants.tags import grants_for_bucket, tag_grants
from rolewarden.errors import PermanentError, RetryableError
from rolewarden.model.findings import Finding
from rolewarden.model.grants import CAPABILITY, BucketGrant


def sweep(rec: Recorded) -> Outcome:
    """Record every bucket (only the ones whose grants changed cost writes), then rebuild every role.
    Honours the sweep budget: between two buckets or two roles, a spent budget returns a cursor."""
    run = rec.run
    assert rec.iam is not None
    try:
        cursor = Cursor.parse(run.cursor)
        if cursor.phase == "buckets":
            recorded = records.recorded_buckets(rec.table)
            names = sorted(set(reads.list_buckets()) | set(recorded))
            for name in names:
                if cursor.after is not None and name <= cursor.after:
                    continue
                if run.budget_spent():
                    return _pause(rec, cursor)
                _sweep_bucket(rec, name, recorded.get(name))
                cursor.after = name
            cursor = Cursor("roles")
        if cursor.phase == "retry":
            roles = list(cursor.roles)
        else:
            roles = sorted(
                {r for grants in records.recorded_buckets(rec.table).values() for r in grants}
                | set(parts_by_role(rec.iam, rec.config.managed_path))
            )
        busy = list(cursor.busy)
        failed = 0
        for role in roles:
            if cursor.after is not None and role <= cursor.after:
                continue
            if run.budget_spent():
                cursor.busy = tuple(busy)
                return _pause(rec, cursor)
            rebuilt = rec.rebuild(role)
            if rebuilt.busy:
                busy.append(role)
            elif rebuilt.outcome.status != "ok":
                failed += 1  # retried by the next sweep
            cursor.after = role
    except (RetryableError, PermanentError) as exc:
        return outcome_of(exc)
    run.sink.log(
        "INFO",
        f"grant sweep: {rec.buckets_read} buckets re-read, {len(roles)} roles, {failed} failed, "
        f"{len(busy)} being written elsewhere",
        capability=CAPABILITY,
        buckets=rec.buckets_read,
        roles=len(roles),
        failed=failed,
    )
    if busy and cursor.attempt < MAX_REBUILDS:
        # Roles another invocation was writing: that writer may have read the table before this sweep
        # recorded a change, so they are rebuilt once more in a continuation.
        return Outcome(continuation=Cursor("retry", roles=tuple(busy), attempt=cursor.attempt + 1).dump())
    return Outcome()


def _sweep_bucket(rec: Recorded, name: str, recorded: Mapping[str, BucketGrant] | None) -> None:
    assert rec.iam is not None
    try:
        view = reads.read_bucket(name, rec.config.bucket_grants.tag_prefix)
    except (RetryableError, PermanentError) as exc:
        rec.run.sink.finding(
            Finding(
                CAPABILITY,
                name,
                "bucket-unreadable",
                f"cannot read bucket {name}: {exc}; its recorded grants are kept",
            ),
            metric="Findings",
        )
        return
    rec.buckets_read += 1
    parsed = tag_grants(rec.config, view, rec.iam.roles)
    if grants_for_bucket(parsed) == dict(recorded or {}) and (view.exists or recorded is None):
        for finding in parsed.findings:
            rec.run.sink.finding(finding, metric=FINDING_METRICS.get(finding.rule, "Findings"))
        return  # already recorded: no write, no lease
    try:
        rec._record(name)  # under the lease, re-read: an event may be recording a fresher read
    except LeaseHeld:
        return  # the holder records it


def _pause(rec: Recorded, cursor: Cursor) -> Outcome:
    rec.run.sink.log(
        "INFO",
        f"grant sweep: budget spent in phase {cursor.phase} after {cursor.after!r}; continuing",
        capability=CAPABILITY,
        buckets=rec.buckets_read,
    )
    return Outcome(continuation=cursor.dump())


@dataclass
class Cursor:
    """Where a grants sweep resumes: the phase (buckets, roles, retry) and the last name done in it."""

    phase: str = "buckets"
    after: str | None = None
    roles: tuple[str, ...] = ()  # phase retry: the roles to rebuild again
    busy: tuple[str, ...] = ()  # roles found being written elsewhere so far
    attempt: int = 0

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        try:
            raw = json.loads(text)
            cursor = cls(
                phase=str(raw["phase"]),
                after=None if raw.get("after") is None else str(raw["after"]),
                roles=tuple(str(r) for r in raw.get("roles", [])),
                busy=tuple(str(r) for r in raw.get("busy", [])),
                attempt=int(raw.get("attempt", 0)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(f"grants sweep cursor {text[:100]!r} is not one RoleWarden wrote: {exc}") from exc
        if cursor.phase not in ("buckets", "roles", "retry"):
            raise PermanentError(f"grants sweep cursor names an unknown phase {cursor.phase!r}")
        return cursor

    def dump(self) -> str:
        return json.dumps(
            {
                "phase": self.phase,
                "after": self.after,
                "roles": list(self.roles),
                "busy": list(self.busy),
                "attempt": self.attempt,
            },
            separators=(",", ":"),
        )
