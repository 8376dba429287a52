"""Bucket tags drive S3 grants: observe (S3 + one IAM pass), decide (pure), apply the plan.

Targets:

* ``bucket``: a bucket's tags changed (or it was created or deleted). Re-read THAT bucket from S3
  (never the event's copy of the tags), learn from the generated policies' current documents who holds
  it today, and recompute only those roles and the roles its tags now name.
* ``role`` / ``policy``: recompute one role's grants (the role behind a generated policy ARN). This is
  the interface the compliance capability's grant-policy-drift rule uses.
* ``sweep``: every bucket (ListBuckets once, each bucket's tags once) and every generated policy.

The other buckets of an affected role (cost of one event). A role's full document needs every bucket
that grants it, not only the one that changed. Re-reading them all would make one tag change cost reads
in proportion to the role's grants (hundreds for a data role). Instead the role's current generated
documents are read back into grants (``decide.grants.trusted_grants``) and the changed bucket's fresh
grant replaces its entry. Read-back is trusted only when every part's default version is its newest
version AND the documents are byte-for-byte what RoleWarden renders for the grants they express under
today's config; anything else (someone set another default version, edited a document, the levels in
the config changed) falls back to re-reading the buckets named in any version of that role's policies.
``role``/``policy`` targets always take the fallback, since they come from IAM-side drift. So a bucket
event costs GetBucketTagging + (GetBucketEncryption when the bucket has grant tags) + one paginated
GetAccountAuthorizationDetails, plus writes only for roles whose document changes; the bounded extra
reads happen only for a drifted role, and cost that role's own buckets. Grants that went stale because
an event was lost are corrected by the sweep, which reads every bucket.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any

from rolewarden.aws import grants as aws
from rolewarden.aws.executor import Executor
from rolewarden.capabilities.base import Outcome, Run
from rolewarden.config import Config
from rolewarden.decide.grants import (
    BucketGrant,
    GrantPolicy,
    IamView,
    LevelActions,
    RoleDecision,
    TagGrants,
    _shown,
    buckets_named,
    decide_role,
    grants_by_role,
    grants_for,
    level_table,
    parts_by_role,
    policy_name,
    policy_owner,
    policy_size,
    read_back,
    tag_grants,
    trusted_grants,
)
from rolewarden.errors import PermanentError, RetryableError
from rolewarden.model.findings import Finding
from rolewarden.model.targets import SWEEP, Target
from rolewarden.telemetry import Sink

_FINDING_METRICS = {
    "grant-refused": "GrantsRefused",
    "protected-bucket": "GrantsRefused",
    "unknown-level": "GrantsRefused",
    "unknown-action": "GrantsRefused",
    "grants-too-large": "GrantsTooLarge",
    "too-many-attached-policies": "GrantsTooLarge",
}


@dataclass
class GrantsPlan:
    """What one reconcile decided: per role, and which targets each role answers for."""

    iam: IamView | None = None
    decisions: dict[str, RoleDecision] = field(default_factory=dict)
    roles_of: dict[Target, set[str]] = field(default_factory=dict)
    failed: dict[Target, Outcome] = field(default_factory=dict)
    buckets_read: int = 0
    findings: list[Finding] = field(default_factory=list)


def _outcome(exc: RetryableError | PermanentError) -> Outcome:
    return Outcome("retry" if isinstance(exc, RetryableError) else "dead", str(exc))


class BucketGrants:
    name = "bucket_grants"

    # -- observe + decide (no writes) -----------------------------------------------------------
    def plan(self, run: Run, targets: Sequence[Target]) -> GrantsPlan:
        config = run.config
        levels, _ = level_table(config)
        iam = aws.read_iam(config.managed_path)
        plan = GrantsPlan(iam=iam)
        owned = parts_by_role(iam)
        if any(t.kind == "sweep" for t in targets):
            self._plan_sweep(run, plan, iam, owned, levels, targets)
            return plan

        fresh: dict[str, TagGrants] = {}  # buckets read from S3 in this run

        def read(name: str) -> None:
            view = aws.read_bucket(name, config.bucket_grants.tag_prefix)
            plan.buckets_read += 1
            fresh[name] = tag_grants(config, view, iam.roles)
            plan.findings.extend(fresh[name].findings)

        affected: dict[str, set[Target]] = {}
        reread_roles: set[str] = set()
        for target in targets:
            if target.kind == "bucket":
                try:
                    if target.id not in fresh:
                        read(target.id)
                except (RetryableError, PermanentError) as exc:
                    plan.failed[target] = _outcome(exc)
                    continue
                holders = {
                    r for r, parts in owned.items() if any(target.id in _default_buckets(p) for p in parts.values())
                }
                for role in holders | set(fresh[target.id].grants):
                    affected.setdefault(role, set()).add(target)
            elif target.kind in ("role", "policy"):
                owner = target.id if target.kind == "role" else self._policy_role(iam, target.id)
                if owner is None:
                    continue  # not a generated policy: nothing of ours
                affected.setdefault(owner, set()).add(target)
                reread_roles.add(owner)

        for role in sorted(affected):
            parts = owned.get(role, {})
            base = None if role in reread_roles else trusted_grants(parts, levels, iam.partition)
            try:
                if base is None:
                    named = {b for p in parts.values() for v in p.versions for b in buckets_named(v.document)}
                    for name in sorted(named - set(fresh)):
                        read(name)
                    grants = grants_for(role, fresh.values())
                else:
                    grants = {b: g for b, g in base.items() if b not in fresh}
                    grants.update(grants_for(role, fresh.values()))
            except (RetryableError, PermanentError) as exc:
                for target in affected[role]:
                    plan.failed.setdefault(target, _outcome(exc))
                continue
            plan.decisions[role] = decide_role(config, iam, role, grants.values(), parts)
            for target in affected[role]:
                plan.roles_of.setdefault(target, set()).add(role)
        return plan

    def _plan_sweep(
        self,
        run: Run,
        plan: GrantsPlan,
        iam: IamView,
        owned: Mapping[str, Mapping[int, GrantPolicy]],
        levels: Mapping[str, LevelActions],
        targets: Sequence[Target],
    ) -> None:
        config = run.config
        fresh: dict[str, TagGrants] = {}
        unreadable: set[str] = set()
        for name in aws.list_buckets():
            try:
                view = aws.read_bucket(name, config.bucket_grants.tag_prefix)
            except (RetryableError, PermanentError) as exc:
                unreadable.add(name)
                plan.findings.append(
                    Finding(
                        self.name, name, "bucket-unreadable", f"cannot read bucket {name}: {exc}; its grants are kept"
                    )
                )
                continue
            plan.buckets_read += 1
            fresh[name] = tag_grants(config, view, iam.roles)
            plan.findings.extend(fresh[name].findings)
        desired = grants_by_role(fresh.values())
        for role in sorted(set(desired) | set(owned)):
            parts = owned.get(role, {})
            grants: dict[str, BucketGrant] = dict(desired.get(role, {}))
            held_unreadable = {b for p in parts.values() for b in _default_buckets(p)} & unreadable
            if held_unreadable:
                base = trusted_grants(parts, levels, iam.partition)
                if base is None:
                    continue  # cannot tell what to keep: leave the role as it is until the bucket is readable
                grants.update({b: base[b] for b in held_unreadable if b in base})
            plan.decisions[role] = decide_role(config, iam, role, grants.values(), parts)
        for target in targets:
            plan.roles_of[target] = set(plan.decisions)

    @staticmethod
    def _policy_role(iam: IamView, arn: str) -> str | None:
        for policy in iam.policies.values():
            if policy.arn == arn:
                return policy_owner(policy, iam.roles)[0]
        return None

    # -- apply ----------------------------------------------------------------------------------
    def reconcile(self, run: Run, targets: Sequence[Target]) -> dict[Target, Outcome]:
        table = os.environ.get("ROLEWARDEN_TABLE")
        if table and not run.executor.dry_run:
            return Recorded(self, run, table).reconcile(targets)
        # No state table (the CLI without --table, a bare test) or a dry run (writes nothing, so races
        # nothing): decide from IAM's read-back as before.
        return self._reconcile_from_iam(run, targets)

    def _reconcile_from_iam(self, run: Run, targets: Sequence[Target]) -> dict[Target, Outcome]:
        try:
            plan = self.plan(run, targets)
        except (RetryableError, PermanentError) as exc:
            return {t: _outcome(exc) for t in targets}
        for finding in plan.findings:
            run.sink.finding(finding, metric=_FINDING_METRICS.get(finding.rule, "Findings"))
        per_role = {role: self._apply(run, plan.decisions[role]) for role in sorted(plan.decisions)}
        outcomes: dict[Target, Outcome] = {}
        for target in targets:
            if target in plan.failed:
                outcomes[target] = plan.failed[target]
            elif target.kind == "sweep":
                failed = sum(1 for o in per_role.values() if o.status != "ok")
                run.sink.log(
                    "INFO",
                    f"grant sweep: {plan.buckets_read} buckets, {len(per_role)} roles, {failed} failed",
                    capability=self.name,
                    buckets=plan.buckets_read,
                    roles=len(per_role),
                    failed=failed,
                )
                outcomes[target] = Outcome()  # a role that failed is retried by the next sweep
            else:
                outcomes[target] = Outcome.worst([per_role[r] for r in sorted(plan.roles_of.get(target, ()))])
        return outcomes

    def _apply(self, run: Run, decision: RoleDecision) -> Outcome:
        for finding in decision.findings:
            run.sink.finding(finding, metric=_FINDING_METRICS.get(finding.rule, "Findings"))
        run.sink.log(
            "INFO",
            f"role {decision.role}: {decision.verdict}: {decision.reason}",
            capability=self.name,
            resource=f"role/{decision.role}",
            verdict=decision.verdict,
            buckets=len(decision.buckets),
            policies=len(decision.documents),
            trigger=run.trigger,
        )
        for action in decision.actions:
            result = run.executor.execute_one(action)
            run.results.append(result)
            if result.status == "conflict":
                return Outcome("retry", result.error)
            if result.status == "failed":
                # Stop here: the remaining steps of a re-split assume this one happened.
                return Outcome("retry" if result.retryable else "dead", result.error)
        return Outcome()


# ================================================================== the recorded design (state table)
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

    def __init__(self, capability: BucketGrants, run: Run, table: str, wall: Callable[[], float] = time.time) -> None:
        self.capability = capability
        self.run = run
        self.config = run.config
        self.table = table
        self.wall = wall
        self.iam: IamView | None = None
        self.buckets_read = 0

    # -- iam --------------------------------------------------------------------------------------
    def _read_iam(self) -> IamView:
        self.iam = aws.read_iam(self.config.managed_path)
        return self.iam

    # -- buckets ----------------------------------------------------------------------------------
    def _record(self, bucket: str, holders: Set[str] = frozenset()) -> tuple[set[str], set[str]]:
        """Read ``bucket`` from S3 under its lease and record what its tags grant: (roles before, roles now).
        ``holders``: roles IAM shows holding the bucket; their index items are dropped if the tags no longer
        name them (an item may predate the bucket's record)."""
        assert self.iam is not None
        owner = uuid.uuid4().hex
        taken, before = aws.lease_bucket(self.table, bucket, owner, self.wall(), LEASE_SECONDS)
        if not taken:
            raise LeaseHeld(f"bucket {bucket} is being recorded by another invocation; retrying")
        recorded: dict[str, BucketGrant] | None = None
        view_exists = True
        try:
            view = aws.read_bucket(bucket, self.config.bucket_grants.tag_prefix)
            view_exists = view.exists
            self.buckets_read += 1
            parsed = tag_grants(self.config, view, self.iam.roles)
            for finding in parsed.findings:
                self.run.sink.finding(finding, metric=_FINDING_METRICS.get(finding.rule, "Findings"))
            now = grants_for_bucket(parsed)
            aws.record_role_items(self.table, bucket, before or {}, now, set(holders))
            recorded = now
        finally:
            aws.release_bucket(self.table, bucket, owner, recorded, self.wall(), gone=not view_exists)
        return set(before or {}), set(now)

    # -- roles ------------------------------------------------------------------------------------
    def _stale(self, record: aws.RoleRecord) -> str | None:
        """Why IAM's read-back lags what RoleWarden published for the role, or None."""
        published = record.published
        assert self.iam is not None
        if published is None or self.wall() - published.time > IAM_LAG_WINDOW:
            return None
        for name, version in sorted(published.parts.items()):
            policy = self.iam.policies.get(name)
            if policy is None or version not in {v.version_id for v in policy.versions}:
                age = self.wall() - published.time
                return f"IAM does not show {name} {version} yet (RoleWarden published it {age:.0f} s ago)"
        return None

    def _bootstrap(self, role: str, record: aws.RoleRecord) -> aws.RoleRecord:
        """A role RoleWarden has never published for (the table is new): record the buckets its generated
        policies name (any version), so no grant made before the table existed is dropped."""
        assert self.iam is not None
        parts = parts_by_role(self.iam).get(role, {})
        named = {b for p in parts.values() for v in p.versions for b in buckets_named(v.document)}
        recorded = set(aws.recorded_buckets(self.table)) if named else set()
        missing = sorted(named - recorded - set(record.grants))
        for bucket in missing:
            self._record(bucket)
        return aws.role_record(self.table, role) if missing else record

    def rebuild(self, role: str) -> Rebuilt:
        """Make the role's generated policies grant exactly what the table records, under the role's lease."""
        owner = uuid.uuid4().hex
        taken = self.wall()
        if not aws.lease_role(self.table, role, owner, taken, LEASE_SECONDS):
            return Rebuilt(Outcome("retry", f"role {role} is being rebuilt by another invocation; retrying"), busy=True)
        published: dict[str, str] | None = None
        try:
            record = aws.role_record(self.table, role)
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
            parts = parts_by_role(self.iam).get(role, {})
            decision = decide_role(self.config, self.iam, role, record.grants.values(), parts)
            start = len(self.run.results)
            outcome = self.capability._apply(self.run, decision)
            applied = [r for r in self.run.results[start:] if r.status == "applied"]
            if decision.verdict != "refuse":
                versions = _published_after(role, decision, parts, applied)
                if record.published is None or dict(record.published.parts) != versions or applied:
                    published = versions  # recorded as the lease is given back
            if outcome.status != "ok" or not applied:
                # Nothing written: a bucket recorded after our Query finds the lease taken and retries itself.
                return Rebuilt(outcome)
            after = aws.role_record(self.table, role)
            if dict(after.grants) != dict(record.grants):
                # Recorded while we wrote: IAM's read-back now lags our own write, so the redelivery decides.
                return Rebuilt(Outcome("retry", f"role {role}: its grants changed while it was written"))
            return Rebuilt(Outcome())
        finally:
            aws.release_role(self.table, role, owner, published, self.wall())

    # -- targets ----------------------------------------------------------------------------------
    def reconcile(self, targets: Sequence[Target]) -> dict[Target, Outcome]:
        try:
            self._read_iam()
        except (RetryableError, PermanentError) as exc:
            return {t: _outcome(exc) for t in targets}
        outcomes: dict[Target, Outcome] = {}
        affected: dict[str, set[Target]] = {}
        assert self.iam is not None
        owned = parts_by_role(self.iam)
        for target in targets:
            if target.kind == "sweep":
                outcomes[target] = self.sweep()
            elif target.kind == "bucket":
                held = {
                    r for r, parts in owned.items() if any(target.id in _default_buckets(p) for p in parts.values())
                }
                try:
                    before, now = self._record(target.id, held)
                except (RetryableError, PermanentError) as exc:
                    outcomes[target] = _outcome(exc)
                    continue
                for role in before | now | held:
                    affected.setdefault(role, set()).add(target)
                outcomes.setdefault(target, Outcome())
            elif target.kind in ("role", "policy"):
                owner = target.id if target.kind == "role" else self.capability._policy_role(self.iam, target.id)
                outcomes.setdefault(target, Outcome())
                if owner is not None:
                    affected.setdefault(owner, set()).add(target)
        for role in sorted(affected):
            try:
                result = self.rebuild(role).outcome
            except (RetryableError, PermanentError) as exc:
                result = _outcome(exc)
            for target in affected[role]:
                outcomes[target] = Outcome.worst([outcomes[target], result])
        return outcomes

    # -- the sweep --------------------------------------------------------------------------------
    def sweep(self) -> Outcome:
        """Record every bucket (only the ones whose grants changed cost writes), then rebuild every role.
        Honours the sweep budget: between two buckets or two roles, a spent budget returns a cursor."""
        run = self.run
        assert self.iam is not None
        try:
            cursor = _Cursor.parse(run.cursor)
            if cursor.phase == "buckets":
                recorded = aws.recorded_buckets(self.table)
                names = sorted(set(aws.list_buckets()) | set(recorded))
                for name in names:
                    if cursor.after is not None and name <= cursor.after:
                        continue
                    if run.budget_spent():
                        return self._pause(cursor)
                    self._sweep_bucket(name, recorded.get(name))
                    cursor.after = name
                cursor = _Cursor("roles")
            if cursor.phase == "retry":
                roles = list(cursor.roles)
            else:
                roles = sorted(
                    {r for grants in aws.recorded_buckets(self.table).values() for r in grants}
                    | set(parts_by_role(self.iam))
                )
            busy = list(cursor.busy)
            failed = 0
            for role in roles:
                if cursor.after is not None and role <= cursor.after:
                    continue
                if run.budget_spent():
                    cursor.busy = tuple(busy)
                    return self._pause(cursor)
                rebuilt = self.rebuild(role)
                if rebuilt.busy:
                    busy.append(role)
                elif rebuilt.outcome.status != "ok":
                    failed += 1  # retried by the next sweep
                cursor.after = role
        except (RetryableError, PermanentError) as exc:
            return _outcome(exc)
        run.sink.log(
            "INFO",
            f"grant sweep: {self.buckets_read} buckets re-read, {len(roles)} roles, {failed} failed, "
            f"{len(busy)} being written elsewhere",
            capability=self.capability.name,
            buckets=self.buckets_read,
            roles=len(roles),
            failed=failed,
        )
        if busy and cursor.attempt < MAX_REBUILDS:
            # Roles another invocation was writing: that writer may have read the table before this sweep
            # recorded a change, so they are rebuilt once more in a continuation.
            return Outcome(continuation=_Cursor("retry", roles=tuple(busy), attempt=cursor.attempt + 1).dump())
        return Outcome()

    def _sweep_bucket(self, name: str, recorded: Mapping[str, BucketGrant] | None) -> None:
        assert self.iam is not None
        try:
            view = aws.read_bucket(name, self.config.bucket_grants.tag_prefix)
        except (RetryableError, PermanentError) as exc:
            self.run.sink.finding(
                Finding(
                    self.capability.name,
                    name,
                    "bucket-unreadable",
                    f"cannot read bucket {name}: {exc}; its recorded grants are kept",
                ),
                metric="Findings",
            )
            return
        self.buckets_read += 1
        parsed = tag_grants(self.config, view, self.iam.roles)
        if grants_for_bucket(parsed) == dict(recorded or {}) and (view.exists or recorded is None):
            for finding in parsed.findings:
                self.run.sink.finding(finding, metric=_FINDING_METRICS.get(finding.rule, "Findings"))
            return  # already recorded: no write, no lease
        try:
            self._record(name)  # under the lease, re-read: an event may be recording a fresher read
        except LeaseHeld:
            return  # the holder records it

    def _pause(self, cursor: _Cursor) -> Outcome:
        self.run.sink.log(
            "INFO",
            f"grant sweep: budget spent in phase {cursor.phase} after {cursor.after!r}; continuing",
            capability=self.capability.name,
            buckets=self.buckets_read,
        )
        return Outcome(continuation=cursor.dump())


@dataclass
class _Cursor:
    """Where a grants sweep resumes: the phase (buckets, roles, retry) and the last name done in it."""

    phase: str = "buckets"
    after: str | None = None
    roles: tuple[str, ...] = ()  # phase retry: the roles to rebuild again
    busy: tuple[str, ...] = ()  # roles found being written elsewhere so far
    attempt: int = 0

    @classmethod
    def parse(cls, text: str | None) -> _Cursor:
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


def grants_for_bucket(parsed: TagGrants) -> dict[str, BucketGrant]:
    """role -> grant for one bucket's parsed tags."""
    return {
        role: BucketGrant(parsed.bucket, tuple(sorted(levels)), parsed.kms_key)
        for role, levels in parsed.grants.items()
        if levels
    }


def _published_after(
    role: str, decision: RoleDecision, parts: Mapping[int, GrantPolicy], applied: Sequence[Any]
) -> dict[str, str]:
    """policy name -> default version once the decision's actions are applied (the view's defaults,
    overridden by the versions the writes made)."""
    names = {policy_name(role, part): part for part in range(1, len(decision.documents) + 1)}
    versions: dict[str, str] = {}
    for name, part in names.items():
        policy = parts.get(part)
        if policy is not None and policy.default is not None:
            versions[name] = policy.default.version_id
    for result in applied:
        action_policy = getattr(result.action, "policy_name", None)
        version = result.detail.get("version")
        if action_policy in names and version:
            versions[str(action_policy)] = str(version)
    return versions


def _default_buckets(policy: GrantPolicy) -> set[str]:
    default = policy.default
    return buckets_named(default.document) if default is not None else set()


def holders(iam: IamView, bucket: str) -> list[str]:
    """Roles whose generated policies' default versions name ``bucket`` (for the CLI and the demo)."""
    return sorted(
        r for r, parts in parts_by_role(iam).items() if any(bucket in _default_buckets(p) for p in parts.values())
    )


CAPABILITY = BucketGrants()


# ================================================================== operator side (rolewarden explain)
def _statement_summary(statement: Mapping[str, Any]) -> str:
    actions = statement.get("Action", [])
    resources = statement.get("Resource", [])
    text = (
        f"{statement.get('Sid', '-')}: {statement.get('Effect', '?')} "
        f"{', '.join(actions if isinstance(actions, list) else [actions])} "
        f"on {', '.join(resources if isinstance(resources, list) else [resources])}"
    )
    condition = statement.get("Condition")
    if isinstance(condition, Mapping):
        scoped = sorted(buckets_named({"Statement": [{"Condition": condition}]}))
        text += f" (only through bucket(s) {', '.join(scoped)})"
    return text


def _documents_report(decision: RoleDecision) -> list[dict[str, Any]]:
    """The desired documents of a role, part by part: name, size, and each statement in one line."""
    return [
        {
            "policy": policy_name(decision.role, part),
            "characters": policy_size(document),
            "statements": [_statement_summary(s) for s in document.get("Statement", [])],
        }
        for part, document in enumerate(decision.documents, start=1)
    ]


def _decision_report(decision: RoleDecision, config: Config) -> dict[str, Any]:
    levels, _ = level_table(config)
    desired = read_back(decision.documents, levels) or {}
    report: dict[str, Any] = {
        "grants": [
            {"bucket": g.bucket, "levels": list(g.levels), **({"kms_key": g.kms_key} if g.kms_key else {})}
            for g in sorted(desired.values())
        ]
        or [{"bucket": b} for b in decision.buckets],
        "policy documents": _documents_report(decision),
        "decision": f"{decision.verdict}: {decision.reason}",
        "would do": [a.describe() for a in decision.actions] or "nothing",
    }
    if decision.findings:
        report["findings"] = [f"{f.rule}: {f.message}" for f in decision.findings]
    return report


def _current_policies(parts: Mapping[int, GrantPolicy]) -> list[dict[str, Any]]:
    out = []
    for part in sorted(parts):
        policy = parts[part]
        default = policy.default
        out.append(
            {
                "policy": policy.arn,
                "default version": default.version_id if default else "(none)",
                "versions": sorted((v.version_id for v in policy.versions), key=lambda v: (len(v), v)),
                "buckets named": sorted(_default_buckets(policy)),
                "attached to": list(policy.attached_roles) or "(nobody)",
            }
        )
    return out


def _dry_run(config: Config) -> Run:
    sink = Sink()
    return Run(
        config=config, sink=sink, executor=Executor(sink=sink, dry_run=True, trigger="explain"), trigger="explain"
    )


def explain(config: Config, bucket: str) -> dict[str, Any]:
    """Why a bucket's grants are as they are and what RoleWarden would do, from the same reads and the same
    decisions as a bucket event: the tags read, what each level grants to whom (and the refusals), whether
    the bucket is protected, its customer key, who holds it today, and per role the documents the grants
    produce and the actions that would follow. Reads: the bucket (tags, encryption), one IAM pass, and
    for a drifted role the buckets its policies name. Writes nothing."""
    prefix = config.bucket_grants.tag_prefix
    view = aws.read_bucket(bucket, prefix)
    report: dict[str, Any] = {"bucket": bucket}
    if not view.exists:
        report["exists"] = "no: the bucket does not exist (roles that still hold it lose it)"
    report["tags"] = dict(sorted(view.tags.items())) or "(none)"
    if config.is_protected_bucket(bucket):
        patterns = ", ".join(config.bucket_grants.protected_buckets)
        report["protected"] = f"yes: bucket_grants.protected_buckets ({patterns}) names it; its grant tags are ignored"
    else:
        report["protected"] = "no"
    keys = sorted(k for k in view.tags if k.startswith(prefix))
    if not keys:
        report["encryption"] = "not read (the bucket has no grant tags)"
    elif view.kms_key:
        report["encryption"] = f"SSE-KMS with customer key {view.kms_key}: grants add the key's actions for this bucket"
    elif view.kms_problem:
        report["encryption"] = view.kms_problem
    else:
        report["encryption"] = "no customer key (SSE-S3 or aws/s3): no KMS statement needed"

    run = _dry_run(config)
    plan = BucketGrants().plan(run, [Target("bucket", bucket)])
    if Target("bucket", bucket) in plan.failed:
        raise RetryableError(plan.failed[Target("bucket", bucket)].message)
    assert plan.iam is not None
    parsed = tag_grants(config, view, plan.iam.roles)
    usable, unknown = level_table(config)
    levels_report = []
    for key in keys:
        level = key[len(prefix) :]
        entry: dict[str, Any] = {"tag": f"{key}={view.tags[key]}", "level": level}
        if level in usable:
            entry["actions"] = sorted(config.bucket_grants.levels[level])
        elif level in unknown:
            entry["actions"] = f"unusable: {', '.join(unknown[level])} are not S3 actions RoleWarden grants"
        else:
            entry["actions"] = "unknown level (not in bucket_grants.levels)"
        entry["granted to"] = sorted(r for r, ls in parsed.grants.items() if level in ls) or "(nobody)"
        refused = [f.message for f in parsed.findings if f.details.get("tag") in (key, repr(key))]
        if refused:
            entry["refused"] = refused
        levels_report.append(entry)
    report["levels"] = levels_report
    other = [f"{f.rule}: {f.message}" for f in parsed.findings if "tag" not in f.details]
    if other:
        report["findings"] = other
    report["held today by"] = holders(plan.iam, bucket) or "(nobody)"
    report["roles"] = {role: _decision_report(plan.decisions[role], config) for role in sorted(plan.decisions)}
    if not plan.decisions:
        report["roles"] = "(none: no role holds or is granted this bucket)"
    if config.dry_run:
        report["note"] = "dry_run is true: RoleWarden would only log this"
    return report


def explain_role(config: Config, role_name: str) -> dict[str, Any]:
    """The grants side of ``rolewarden explain role/NAME``: which buckets' tags name the role (and at which
    levels, or why they were refused), its generated policies today, the documents the tags call for and
    what RoleWarden would do. Reads every bucket's tags (ListBuckets + GetBucketTagging each, like a
    sweep) because any bucket may name the role."""
    run = _dry_run(config)
    plan = BucketGrants().plan(run, [SWEEP])
    assert plan.iam is not None
    refusals = [
        f"bucket {f.resource}: {f.message}"
        for f in plan.findings
        if f.rule == "grant-refused" and f.details.get("value") == _shown(role_name)
    ]
    report: dict[str, Any] = {}
    decision = plan.decisions.get(role_name)
    parts = parts_by_role(plan.iam).get(role_name, {})
    report["generated policies today"] = _current_policies(parts) or "(none)"
    if decision is None:
        report["granted by bucket tags"] = "(none)"
        report["would do"] = "nothing"
    else:
        body = _decision_report(decision, config)
        report["granted by bucket tags"] = body.pop("grants") if decision.buckets else "(none)"
        report.update(body)
    if refusals:
        report["refused grants naming it"] = refusals
    unreadable = [f"{f.resource}: {f.message}" for f in plan.findings if f.rule == "bucket-unreadable"]
    if unreadable:
        report["unreadable buckets"] = unreadable
    return report
