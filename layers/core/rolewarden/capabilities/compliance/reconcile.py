"""Role compliance's reconcile: observe -> decide (pure, ``rolewarden.decide.compliance``) -> apply.

Order of a run: read (``observe``), decide every role, open the circuit breaker (``rolewarden.breaker``:
a run over the limit remediates none; a trip by any container stops every container), then per role in
name order: take a breaker slot, emit a finding per violation, take the role's remediation lease, record
the prior state and apply its actions; a sweep stops between roles when its time budget is spent and
returns ``Outcome(continuation="after-role:<name>")``. Last (not after a trip), hand the grant policies
of the roles events named to the grants capability through its queue (``report.report_grant_drift``).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Sequence

from botocore.exceptions import BotoCoreError, ClientError

from rolewarden.aws.compliance import leases
from rolewarden.aws.errors import classify
from rolewarden.aws.recorder import Recorder
from rolewarden.breaker import Gate, limits_of, state_table
from rolewarden.capabilities.base import Outcome, Run
from rolewarden.capabilities.compliance.observe import ComplianceSnapshot, observe
from rolewarden.capabilities.compliance.report import report_decision, report_grant_drift
from rolewarden.decide.compliance.judge import RoleDecision, decide_role
from rolewarden.errors import PermanentError, RetryableError, RoleWardenError
from rolewarden.model.compliance import CAPABILITY_NAME
from rolewarden.model.findings import Finding
from rolewarden.model.iam import Role
from rolewarden.model.records import Record
from rolewarden.model.targets import Target
from rolewarden.settings import current as current_settings

RECORD_KIND = "remediation"
ROLLBACK_KIND = "rollback"
#: A sweep stopped on its budget continues after this role: ``"after-role:<name>"`` (names sort as strings).
CURSOR_PREFIX = "after-role:"
#: How long one invocation holds a role's remediation lease at most (a role's writes take seconds);
#: it is given back on every path, so this only bounds a crashed holder.
REMEDIATION_LEASE_SECONDS = 60.0
#: Within this many seconds after a remediation, an action decided again exactly as it was applied is
#: taken as decided from a read made before the write or lagging it (IAM is eventually consistent for
#: seconds): the record is retried, not remediated twice. A role really put back into the same state is
#: remediated once the window has passed (its record's retries, 5 + 10 + 20 s..., outlast it).
REMEDIATED_STATE_WINDOW = 30.0
#: Wall clock for the lease and the window; a test replaces it.
wall_clock: Callable[[], float] = time.time
_warned: set[str] = set()


def decide(run: Run, seen: ComplianceSnapshot) -> dict[str, RoleDecision]:
    """The pure decision for every role read (no I/O)."""
    own = current_settings().self_role_arns
    return {
        name: decide_role(role, run.config, seen.policies, own)
        for name, role in sorted(seen.roles.items())
        if role is not None
    }


class RoleCompliance:
    name = CAPABILITY_NAME

    def reconcile(self, run: Run, targets: Sequence[Target]) -> dict[Target, Outcome]:
        try:
            seen = observe(run, targets)
        except (RetryableError, PermanentError) as exc:
            broken = Outcome("retry" if isinstance(exc, RetryableError) else "dead", str(exc))
            return {t: broken for t in targets}
        decisions = decide(run, seen)
        named = {n for t, names in seen.per_target.items() if t.kind != "sweep" for n in names}
        sweeping = any(t.kind == "sweep" for t in targets)
        order = sorted(decisions)
        resume_after = self._resume_after(run) if sweeping else None
        if resume_after is not None:
            # A continued sweep: the roles up to the cursor were done by the earlier parts.
            order = [n for n in order if n > resume_after or n in named]
        self._warn_deprecated(run)

        # The circuit breaker decides per role, atomically, before the role's first write.
        gate = Gate(
            sink=run.sink,
            limits=limits_of(run.config),
            capability=self.name,
            trigger=run.trigger,
            dry_run=run.executor.dry_run,
            table=state_table(),
        )
        gate.open([n for n in order if decisions[n].actions])
        per_role: dict[str, Outcome] = {}
        done: list[str] = []
        continuation: str | None = None
        for index, name in enumerate(order):
            decision = decisions[name]
            allowed = gate.take(name) if decision.actions else False
            report_decision(run, decision, verbose=name in named, withheld=bool(decision.actions) and not allowed)
            role = seen.roles[name]
            if allowed and role is not None:
                per_role[name] = self._remediate(run, decision, role)
            elif decision.actions and gate.error is not None:
                per_role[name] = Outcome("retry", f"circuit breaker unavailable: {gate.error}")
            done.append(name)
            if sweeping and index < len(order) - 1 and run.budget_spent():
                continuation = CURSOR_PREFIX + name  # stop between roles; the next part resumes after it
                break
        gate.close()
        if gate.trip is None:
            self._hand_on_grant_drift(run, seen, decisions, [n for n in done if n in named], per_role)

        outcomes: dict[Target, Outcome] = {}
        for target in targets:
            if target in seen.failed:
                outcomes[target] = seen.failed[target]
            elif target.kind == "sweep":
                failed = sum(1 for o in per_role.values() if o.status != "ok")
                part = f", stopped on its time budget after role {done[-1]}" if continuation else ""
                run.sink.log(
                    "INFO",
                    f"compliance sweep: {len(done)} of {len(order)} roles checked ({seen.calls}), "
                    f"{sum(1 for n in done if decisions[n].verdict == 'noncompliant')} non-compliant, "
                    f"{len(per_role)} remediated or planned, {failed} failed{part}",
                    capability=self.name,
                    roles=len(done),
                    failed=failed,
                    circuit_breaker=gate.trip is not None,
                    continuation=continuation,
                )
                # per-role failures are retried by the next sweep
                outcomes[target] = Outcome(continuation=continuation)
            else:
                outcomes[target] = Outcome.worst([per_role.get(n, Outcome()) for n in seen.per_target.get(target, ())])
        return outcomes

    def _hand_on_grant_drift(
        self,
        run: Run,
        seen: ComplianceSnapshot,
        decisions: dict[str, RoleDecision],
        names: Sequence[str],
        per_role: dict[str, Outcome],
    ) -> None:
        """grant-policy-drift: one message per evaluated role an event named that holds grant policies."""
        for name in names:
            decision, role = decisions[name], seen.roles.get(name)
            if decision.verdict not in ("compliant", "noncompliant") or not decision.grant_policies or role is None:
                continue
            account = seen.account or (role.arn.split(":")[4] if role.arn.count(":") >= 5 else "")
            reason = f"role {name} was read after event {run.trigger or '(none)'}"
            sent = report_grant_drift(run, name, decision.grant_policies, account, reason)
            per_role[name] = Outcome.worst([per_role.get(name, Outcome()), sent])

    def _resume_after(self, run: Run) -> str | None:
        """The last role name the previous part of this sweep finished (from ``run.cursor``)."""
        if run.cursor is None:
            return None
        if run.cursor.startswith(CURSOR_PREFIX) and len(run.cursor) > len(CURSOR_PREFIX):
            return run.cursor[len(CURSOR_PREFIX) :]
        run.sink.log(
            "WARNING",
            f"compliance sweep: unknown cursor {run.cursor[:100]!r}; sweeping from the start",
            capability=self.name,
        )
        return None

    def _warn_deprecated(self, run: Run) -> None:
        for message in run.config.compliance.deprecations():
            if message not in _warned:
                _warned.add(message)
                run.sink.log("WARNING", f"config: {message}", capability=self.name)

    def _remediate(self, run: Run, decision: RoleDecision, role: Role) -> Outcome:
        table = state_table()
        if run.executor.dry_run or table is None:
            return self._remediate_held(run, decision, role)
        owner = f"{run.trigger or 'run'}#{uuid.uuid4().hex[:12]}"
        try:
            taken, recent, applied_at = leases.lease_remediation(
                table, role.name, owner, wall_clock(), REMEDIATION_LEASE_SECONDS
            )
        except (RetryableError, PermanentError) as exc:
            return Outcome("retry" if isinstance(exc, RetryableError) else "dead", str(exc))
        if not taken:
            run.sink.log(
                "INFO",
                f"role {role.name} is being remediated by another invocation; retrying",
                resource=f"role/{role.name}",
                capability=self.name,
            )
            return Outcome("retry", f"role {role.name}: another invocation holds its remediation lease")
        age = wall_clock() - applied_at
        if age >= REMEDIATED_STATE_WINDOW:
            recent = frozenset()
        fingerprint = leases.action_fingerprint
        again = [a for a in decision.actions if fingerprint(a) in recent]
        applied: set[str] | None = None
        outcome = Outcome()
        try:
            if again:
                # This read still shows what another invocation changed moments ago: it was made before
                # that write, or IAM's read lags it. Applying the same change again would be a second
                # remediation; the record is retried and decides from a fresh read.
                run.sink.log(
                    "INFO",
                    f"role {role.name}: this read shows the state remediated {age:.0f} s ago; re-reading later",
                    resource=f"role/{role.name}",
                    capability=self.name,
                    skipped=[a.describe() for a in again],
                )
                outcome = Outcome("retry", f"role {role.name}: read shows the state remediated {age:.0f} s ago")
                rest = tuple(a for a in decision.actions if fingerprint(a) not in recent)
                if not rest:
                    return outcome
                decision = dataclasses.replace(decision, actions=rest)
            start = len(run.results)
            outcome = Outcome.worst([outcome, self._remediate_held(run, decision, role)])
            done = {fingerprint(r.action) for r in run.results[start:] if r.status == "applied"}
            if done:
                applied = set(recent) | done
            return outcome
        finally:
            try:
                leases.release_remediation(table, role.name, owner, applied, wall_clock())
            except RoleWardenError as exc:  # the lease expires on its own
                run.sink.log("WARNING", f"role {role.name}: remediation lease not given back: {exc}")

    def _remediate_held(self, run: Run, decision: RoleDecision, role: Role) -> Outcome:
        record: Record | None = None
        if not run.executor.dry_run:
            # Before any change: the prior state, with the findings, the trigger and the time.
            try:
                record = Recorder(run.sink).record(
                    f"role/{role.name}",
                    RECORD_KIND,
                    {
                        "prior": role.state(),
                        "findings": [
                            {"rule": v.rule, "message": v.message, "remedy": v.remedy.kind} for v in decision.enforced
                        ],
                        "actions": [a.describe() for a in decision.actions],
                        "trigger": run.trigger,
                    },
                )
            except (ClientError, BotoCoreError) as exc:
                mapped = classify(exc, f"recording the prior state of role {role.name}")
                run.sink.log("ERROR", f"not remediating role {role.name}: {mapped}", resource=f"role/{role.name}")
                return Outcome("retry" if isinstance(mapped, RetryableError) else "dead", str(mapped))
        outcome = Outcome()
        applied = []
        for result in run.executor.execute(decision.actions):
            run.results.append(result)
            if result.status == "applied":
                applied.append(result.action.describe())
            elif result.status == "conflict":
                outcome = Outcome("retry", result.error)
            elif result.status == "failed":
                outcome = Outcome.worst([outcome, Outcome("retry" if result.retryable else "dead", result.error)])
        if applied and record is not None:
            run.sink.finding(
                Finding(
                    self.name,
                    f"role/{role.name}",
                    "remediated",
                    f"{'; '.join(applied)}. Prior state recorded as {record.record_id}: "
                    f"`rolewarden rollback role/{role.name} --to {record.record_id}` restores it.",
                    "INFO",
                    details={"record_id": record.record_id, "time": record.time, "trigger": run.trigger},
                ),
                metric="RemediationFindings",
            )
        return outcome
