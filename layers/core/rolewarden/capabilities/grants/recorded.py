"""Bucket grants with RoleWarden's own record as the source of truth (the state table; see the README,
bucket grants): a bucket's grants are recorded under the bucket's lease, a role is rebuilt under its
lease from its recorded grants. Each step reads (under the lease), decides with the pure
``decide.grants`` functions, then applies: the reads cannot move before the lease is taken, so this
design observes per bucket and per role rather than once per run.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass

from rolewarden.aws.grants import reads, records
from rolewarden.capabilities.base import Outcome, Run
from rolewarden.capabilities.grants.apply import FINDING_METRICS, apply_decision, outcome_of
from rolewarden.capabilities.grants.observe import read_iam
from rolewarden.decide.grants.decide import decide_role, lagging, published_after
from rolewarden.decide.grants.naming import parts_by_role, policy_role
from rolewarden.decide.grants.render import buckets_named, default_buckets
from rolewarden.decide.grants.tags import grants_for_bucket, tag_grants
from rolewarden.errors import PermanentError, RetryableError
from rolewarden.model.grants import BucketGrant, RoleRecord
from rolewarden.model.iam import IamSnapshot
from rolewarden.model.targets import Target

#: How long a writer holds a role's or a bucket's lease at most (an event's writes take seconds).
LEASE_SECONDS = 60.0
#: IAM reads lag writes by seconds. Within this window after RoleWarden published a version, a read-back
#: that does not show it yet is stale (retry); after it, the read-back is believed (a human changed it).
IAM_LAG_WINDOW = 300.0
#: Continuations a sweep spends on roles it found being written by another invocation.
MAX_REBUILDS = 3


class LeaseHeld(RetryableError):
    """Another invocation is writing this role or bucket now: fail the record, SQS redelivers it."""


@dataclass
class Rebuilt:
    outcome: Outcome
    busy: bool = False  # another invocation held the role's lease


class Recorded:
    """Bucket grants with RoleWarden's own record as the source of truth (see the README, bucket grants).

    * A bucket event records what the bucket's tags grant (read from S3 under the bucket's lease) in the
      state table, then rebuilds every role it granted before or grants now.
    * A role is rebuilt under its lease from one strongly consistent Query of its recorded grants; IAM's
      read-back only says what is there now (a cache), and it is checked against the versions RoleWarden
      last published: a read-back that does not show them yet lags, and the record is retried instead of
      deciding from it.
    * After writing, the role's grants are read from the table again: a bucket recorded meanwhile by a
      writer that found the lease taken (and was itself told to retry) is never dropped.
    """

    def __init__(self, run: Run, table: str, wall: Callable[[], float] = time.time) -> None:
        self.run = run
        self.config = run.config
        self.table = table
        self.wall = wall
        self.iam: IamSnapshot | None = None
        self.buckets_read = 0

    # -- iam --------------------------------------------------------------------------------------
    def _read_iam(self) -> IamSnapshot:
        self.iam = read_iam()
        return self.iam

    # -- buckets ----------------------------------------------------------------------------------
    def _record(self, bucket: str, holders: Set[str] = frozenset()) -> tuple[set[str], set[str]]:
        """Read ``bucket`` from S3 under its lease and record what its tags grant: (roles before, roles now).
        ``holders``: roles IAM shows holding the bucket; their index items are dropped if the tags no longer
        name them (an item may predate the bucket's record)."""
        assert self.iam is not None
        owner = uuid.uuid4().hex
        taken, before = records.lease_bucket(self.table, bucket, owner, self.wall(), LEASE_SECONDS)
        if not taken:
            raise LeaseHeld(f"bucket {bucket} is being recorded by another invocation; retrying")
        recorded: dict[str, BucketGrant] | None = None
        view_exists = True
        try:
            view = reads.read_bucket(bucket, self.config.bucket_grants.tag_prefix)
            view_exists = view.exists
            self.buckets_read += 1
            parsed = tag_grants(self.config, view, self.iam.roles)
            for finding in parsed.findings:
                self.run.sink.finding(finding, metric=FINDING_METRICS.get(finding.rule, "Findings"))
            now = grants_for_bucket(parsed)
            records.record_role_items(self.table, bucket, before or {}, now, set(holders))
            recorded = now
        finally:
            records.release_bucket(self.table, bucket, owner, recorded, self.wall(), gone=not view_exists)
        return set(before or {}), set(now)

    # -- roles ------------------------------------------------------------------------------------
    def _stale(self, record: RoleRecord) -> str | None:
        """Why IAM's read-back lags what RoleWarden published for the role, or None."""
        assert self.iam is not None
        return lagging(record, self.iam, self.config.managed_path, self.wall(), IAM_LAG_WINDOW)

    def _bootstrap(self, role: str, record: RoleRecord) -> RoleRecord:
        """A role RoleWarden has never published for (the table is new): record the buckets its generated
        policies name (any version), so no grant made before the table existed is dropped."""
        assert self.iam is not None
        parts = parts_by_role(self.iam, self.config.managed_path).get(role, {})
        named = {b for p in parts.values() for v in p.versions for b in buckets_named(v.document)}
        recorded = set(records.recorded_buckets(self.table)) if named else set()
        missing = sorted(named - recorded - set(record.grants))
        for bucket in missing:
            self._record(bucket)
        return records.role_record(self.table, role) if missing else record

    def rebuild(self, role: str) -> Rebuilt:
        """Make the role's generated policies grant exactly what the table records, under the role's lease."""
        owner = uuid.uuid4().hex
        taken = self.wall()
        if not records.lease_role(self.table, role, owner, taken, LEASE_SECONDS):
            return Rebuilt(Outcome("retry", f"role {role} is being rebuilt by another invocation; retrying"), busy=True)
        published: dict[str, str] | None = None
        try:
            record = records.role_record(self.table, role)
            if record.published is None:
                record = self._bootstrap(role, record)
            stale = self._stale(record)
            if stale:
                self._read_iam()  # another writer may have published since this invocation's read
                stale = self._stale(record)
            if stale:
                self.run.sink.metric("GrantReadsLagging")
                return Rebuilt(Outcome("retry", f"role {role}: {stale}"))
            if self.wall() - taken > LEASE_SECONDS / 2:
                # Never write on a lease that may expire mid-way (another writer could take it over).
                return Rebuilt(Outcome("retry", f"role {role}: its lease is running out; retrying"))
            assert self.iam is not None
            parts = parts_by_role(self.iam, self.config.managed_path).get(role, {})
            decision = decide_role(self.config, self.iam, role, record.grants.values(), parts)
            start = len(self.run.results)
            outcome = apply_decision(self.run, decision)
            applied = [r for r in self.run.results[start:] if r.status == "applied"]
            if decision.verdict != "refuse":
                versions = published_after(role, decision, parts, [(r.action, r.detail) for r in applied])
                if record.published is None or dict(record.published.parts) != versions or applied:
                    published = versions  # recorded as the lease is given back
            if outcome.status != "ok" or not applied:
                # Nothing written: a bucket recorded after our Query finds the lease taken and retries itself.
                return Rebuilt(outcome)
            after = records.role_record(self.table, role)
            if dict(after.grants) != dict(record.grants):
                # Recorded while we wrote: IAM's read-back now lags our own write, so the redelivery decides.
                return Rebuilt(Outcome("retry", f"role {role}: its grants changed while it was written"))
            return Rebuilt(Outcome())
        finally:
            records.release_role(self.table, role, owner, published, self.wall())

    # -- targets ----------------------------------------------------------------------------------
    def reconcile(self, targets: Sequence[Target]) -> dict[Target, Outcome]:
        try:
            self._read_iam()
        except (RetryableError, PermanentError) as exc:
            return {t: outcome_of(exc) for t in targets}
        outcomes: dict[Target, Outcome] = {}
        affected: dict[str, set[Target]] = {}
        assert self.iam is not None
        owned = parts_by_role(self.iam, self.config.managed_path)
        for target in targets:
            if target.kind == "sweep":
                from rolewarden.capabilities.grants.sweep import sweep  # the sweep module builds on this one

                outcomes[target] = sweep(self)
            elif target.kind == "bucket":
                held = {r for r, parts in owned.items() if any(target.id in default_buckets(p) for p in parts.values())}
                try:
                    before, now = self._record(target.id, held)
                except (RetryableError, PermanentError) as exc:
                    outcomes[target] = outcome_of(exc)
                    continue
                for role in before | now | held:
                    affected.setdefault(role, set()).add(target)
                outcomes.setdefault(target, Outcome())
            elif target.kind in ("role", "policy"):
                owner = (
                    target.id if target.kind == "role" else policy_role(self.iam, self.config.managed_path, target.id)
                )
                outcomes.setdefault(target, Outcome())
                if owner is not None:
                    affected.setdefault(owner, set()).add(target)
        for role in sorted(affected):
            try:
                result = self.rebuild(role).outcome
            except (RetryableError, PermanentError) as exc:
                result = outcome_of(exc)
            for target in affected[role]:
                outcomes[target] = Outcome.worst([outcomes[target], result])
        return outcomes

    # -- the sweep --------------------------------------------------------------------------------
