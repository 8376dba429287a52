"""Role compliance: observe managed roles, decide (pure, ``rolewarden.decide.compliance``), apply.

``CAPABILITY.reconcile(run, targets)`` is what the Lambda function runs. ``history`` and
``rollback`` are the operator's side (the CLI's ``rolewarden history role/NAME`` and
``rolewarden rollback role/NAME [--to RECORD]``); both return plain data.

Order of a run: read (a sweep reads everything in one paginated call; events read only the roles
they name, or the managed roles a changed policy is attached to), decide every role, open the
circuit breaker (``rolewarden.breaker``: a run over the limit remediates none; a trip by any
container stops every container), then per role in name order: take a breaker slot, emit a finding
per violation, record the prior state and apply its actions; a sweep stops between roles when its
time budget is spent and returns ``Outcome(continuation="after-role:<name>")``. Last, hand
RoleWarden's own grant policies to the bucket_grants capability (not after a trip).
"""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

import rolewarden.aws.compliance as iam_compliance  # registers the executor functions
from rolewarden.aws.errors import classify
from rolewarden.breaker import Gate, limits_of, state_table
from rolewarden.capabilities.base import Outcome, Run
from rolewarden.config import Config
from rolewarden.decide.compliance import (
    CAPABILITY_NAME,
    SERVICE_LINKED_PATH,
    AttachedPolicy,
    ManagedPolicyView,
    RoleDecision,
    RoleView,
    decide_role,
    is_grant_policy,
    out_of_scope,
    registered_rules,
    restore_plan,
)
from rolewarden.environment import self_role_arns
from rolewarden.errors import PermanentError, RetryableError, RoleWardenError
from rolewarden.model.findings import Finding
from rolewarden.model.targets import Target
from rolewarden.records import Record, Recorder
from rolewarden.telemetry import Sink

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


@dataclass
class Observed:
    roles: dict[str, RoleView | None] = field(default_factory=dict)
    policies: dict[str, ManagedPolicyView] = field(default_factory=dict)
    #: target -> the role names it concerns
    per_target: dict[Target, list[str]] = field(default_factory=dict)
    #: grant policies named by policy events
    grant_policies: set[str] = field(default_factory=set)
    failed: dict[Target, Outcome] = field(default_factory=dict)
    #: roles whose attached and inline policies have been read
    complete: set[str] = field(default_factory=set)
    calls: str = ""


class RoleCompliance:
    name = CAPABILITY_NAME

    # -- observe ------------------------------------------------------------------------------
    def observe(self, run: Run, targets: Sequence[Target]) -> Observed:
        config = run.config
        seen = Observed()
        if any(t.kind == "sweep" for t in targets):
            roles, policies, pages = iam_compliance.sweep()
            seen.roles.update(roles)
            seen.policies.update(policies)
            seen.calls = f"GetAccountAuthorizationDetails x{pages}"
            seen.complete.update(roles)
            for target in targets:
                seen.per_target[target] = sorted(roles) if target.kind == "sweep" else []
        for target in targets:
            if target.kind == "sweep":
                continue
            try:
                if target.kind == "policy":
                    if is_grant_policy(target.id, config.managed_path):
                        seen.grant_policies.add(target.id)
                    names = iam_compliance.roles_for_policy(target.id, config.managed_path) or []
                elif target.kind == "role":
                    names = [target.id]
                else:
                    names = []
                seen.per_target[target] = names
                for name in names:
                    if name not in seen.roles:
                        seen.roles[name] = iam_compliance.get_role(name)
            except (RetryableError, PermanentError) as exc:
                seen.failed[target] = Outcome("retry" if isinstance(exc, RetryableError) else "dead", str(exc))
        # Complete the roles that events named (GetRole only so far) when they are in scope.
        own = self_role_arns()
        needed: set[str] = set()
        for name, role in list(seen.roles.items()):
            if role is None or out_of_scope(role, config, own) is not None:
                continue
            full: RoleView | None = role
            if name not in seen.complete:
                try:
                    full = iam_compliance.complete_role(
                        role, with_profiles=config.rule_mode("ec2-instance-profile") != "off"
                    )
                except (RetryableError, PermanentError) as exc:
                    self._fail_role(seen, name, exc)
                    continue
                seen.roles[name] = full
                seen.complete.add(name)
            if full is not None:
                needed.update(p.arn for p in full.attached if p.arn not in seen.policies)
        if needed:
            try:
                seen.policies.update(iam_compliance.read_policies(needed))
            except (RetryableError, PermanentError) as exc:
                for name in [
                    n for n, r in seen.roles.items() if r is not None and needed & {p.arn for p in r.attached}
                ]:
                    self._fail_role(seen, name, exc)
        return seen

    @staticmethod
    def _fail_role(seen: Observed, name: str, exc: RoleWardenError) -> None:
        outcome = Outcome("retry" if isinstance(exc, RetryableError) else "dead", str(exc))
        seen.roles.pop(name, None)
        for target, names in seen.per_target.items():
            if name in names and target.kind != "sweep":
                seen.failed[target] = outcome

    # -- decide -------------------------------------------------------------------------------
    def decide(self, run: Run, seen: Observed) -> dict[str, RoleDecision]:
        own = self_role_arns()
        return {
            name: decide_role(role, run.config, seen.policies, own)
            for name, role in sorted(seen.roles.items())
            if role is not None
        }

    # -- reconcile ----------------------------------------------------------------------------
    def reconcile(self, run: Run, targets: Sequence[Target]) -> dict[Target, Outcome]:
        try:
            seen = self.observe(run, targets)
        except (RetryableError, PermanentError) as exc:
            broken = Outcome("retry" if isinstance(exc, RetryableError) else "dead", str(exc))
            return {t: broken for t in targets}
        decisions = self.decide(run, seen)
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
            self._report(run, decision, verbose=name in named, withheld=bool(decision.actions) and not allowed)
            if allowed:
                per_role[name] = self._remediate(run, decision, seen.roles[name])
            elif decision.actions and gate.error is not None:
                per_role[name] = Outcome("retry", f"circuit breaker unavailable: {gate.error}")
            done.append(name)
            if sweeping and index < len(order) - 1 and run.budget_spent():
                continuation = CURSOR_PREFIX + name  # stop between roles; the next part resumes after it
                break
        gate.close()
        delegated: dict[str, Outcome] = {}
        if gate.trip is None:
            grant_arns = set(seen.grant_policies)
            for name in done:
                if decisions[name].verdict in ("compliant", "noncompliant"):
                    grant_arns.update(decisions[name].grant_policies)
            delegated = self._delegate_grants(run, sorted(grant_arns))

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
                parts = [per_role.get(n, Outcome()) for n in seen.per_target.get(target, [])]
                if target.kind == "policy" and target.id in delegated:
                    parts.append(delegated[target.id])
                outcomes[target] = Outcome.worst(parts)
        return outcomes

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

    def _report(self, run: Run, decision: RoleDecision, verbose: bool, withheld: bool = False) -> None:
        if decision.verdict == "out-of-scope":
            if verbose:
                run.sink.log(
                    "INFO",
                    f"role {decision.role} left alone: {decision.reason}",
                    capability=self.name,
                    resource=f"role/{decision.role}",
                    verdict=decision.verdict,
                )
            return
        if decision.verdict == "unreadable":
            run.sink.finding(
                Finding(self.name, f"role/{decision.role}", "unreadable-policy", decision.reason, "ERROR"),
                metric="ComplianceFindings",
            )
            return
        if decision.verdict == "compliant" and verbose:
            run.sink.log(
                "INFO",
                f"role {decision.role} is compliant",
                capability=self.name,
                resource=f"role/{decision.role}",
                verdict=decision.verdict,
            )
        for violation, mode in decision.violations:
            if mode == "enforce" and withheld:
                outcome = "not remediated: the circuit breaker is open (see its finding)"
            elif mode == "enforce":
                outcome = "would be remediated (dry run)" if run.executor.dry_run else "remediating"
            elif violation.remedy.kind == "report-only":  # nothing a remedy could change (e.g. the perimeter's gaps)
                outcome = "reported only"
            else:
                outcome = "reported only (rule in report mode)"
            run.sink.finding(
                Finding(
                    self.name,
                    f"role/{decision.role}",
                    violation.rule,
                    f"{violation.message}: {outcome}",
                    "WARNING",
                    details={
                        "mode": mode,
                        "remedy": violation.remedy.kind,
                        "dry_run": run.executor.dry_run,
                        "trigger": run.trigger,
                        **violation.details,
                    },
                ),
                metric="ComplianceFindings",
            )

    def _remediate(self, run: Run, decision: RoleDecision, role: RoleView | None) -> Outcome:
        assert role is not None
        table = state_table()
        if run.executor.dry_run or table is None:
            return self._remediate_held(run, decision, role)
        owner = f"{run.trigger or 'run'}#{uuid.uuid4().hex[:12]}"
        try:
            taken, recent, applied_at = iam_compliance.lease_remediation(
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
        fingerprint = iam_compliance.action_fingerprint
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
                iam_compliance.release_remediation(table, role.name, owner, applied, wall_clock())
            except RoleWardenError as exc:  # the lease expires on its own
                run.sink.log("WARNING", f"role {role.name}: remediation lease not given back: {exc}")

    def _remediate_held(self, run: Run, decision: RoleDecision, role: RoleView) -> Outcome:
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

    def _delegate_grants(self, run: Run, arns: Sequence[str]) -> dict[str, Outcome]:
        """grant-policy-drift: the bucket_grants capability restores what the tags call for
        (enforce: a normal run; report: a dry-run executor whose planned actions become findings)."""
        mode = run.config.rule_mode("grant-policy-drift")
        if mode == "off" or not arns:
            return {}
        from rolewarden import capabilities

        try:
            grants = capabilities.get("bucket_grants")
        except ModuleNotFoundError as exc:
            if exc.name != "rolewarden.capabilities.grants":
                raise
            run.sink.log(
                "ERROR",
                "grant-policy-drift: the bucket_grants capability is not installed",
                capability=self.name,
                policies=list(arns),
            )
            return {}
        # A copy of the run's own executor (its type included: the CLI's apply only carries out the
        # actions its plan showed), in dry run when the rule only reports.
        executor = dataclasses.replace(run.executor, dry_run=run.executor.dry_run or mode == "report")
        sub = Run(config=run.config, sink=run.sink, executor=executor, trigger=run.trigger)
        targets = [Target("policy", arn) for arn in arns]
        outcomes = grants.reconcile(sub, targets)
        run.results.extend(sub.results)
        for result in sub.results:
            if result.status == "planned":
                run.sink.finding(
                    Finding(
                        self.name,
                        result.action.resource,
                        "grant-policy-drift",
                        f"grant policy drifted from what the bucket tags call for; would {result.action.describe()}"
                        f" ({'dry run' if run.executor.dry_run else 'rule in report mode'})",
                        "WARNING",
                        details={"mode": mode, "planned": result.action.as_dict()},
                    ),
                    metric="ComplianceFindings",
                )
        return {t.id: outcomes.get(t, Outcome()) for t in targets}


CAPABILITY = RoleCompliance()


# ================================================================== operator side
def _resource(role: str) -> tuple[str, str]:
    name = role[len("role/") :] if role.startswith("role/") else role
    return name, f"role/{name}"


def history(resource: str, *, table: str | None = None, sink: Sink | None = None) -> list[dict[str, Any]]:
    """The records of a role (``role/NAME`` or ``NAME``), newest first, as plain dicts:
    ``{"record_id", "kind", "time", "resource", "trigger", "findings", "actions", "restored_from", "prior"}``.
    Reads the state table (``table`` or ROLEWARDEN_TABLE); without one there is no history."""
    _name, key = _resource(resource)
    recorder = Recorder(sink or Sink(), table)
    out = []
    for rec in recorder.history(key):
        if rec.kind not in (RECORD_KIND, ROLLBACK_KIND):
            continue
        out.append(
            {
                "record_id": rec.record_id,
                "kind": rec.kind,
                "time": rec.time,
                "resource": rec.resource,
                "trigger": rec.data.get("trigger", ""),
                "findings": rec.data.get("findings", []),
                "actions": rec.data.get("actions", []),
                "restored_from": rec.data.get("restored_from"),
                "prior": rec.data.get("prior"),
            }
        )
    return out


def rollback(
    role_name: str,
    record_id: str | None = None,
    *,
    config: Config | None = None,
    dry_run: bool = False,
    table: str | None = None,
    sink: Sink | None = None,
) -> dict[str, Any]:
    """Restore the state a record holds (default: the newest remediation record of the role):
    attached managed policies, inline policies, trust policy and boundary, exactly.

    The rollback is itself recorded (kind ``rollback``, with the state it replaced), so it can be
    rolled back in turn. With ``config``, the answer lists the rules the restored state breaks: a
    rule in enforce mode puts the role back again at the next event or sweep unless the rule is set
    to report or the role is added to ``compliance.protected_roles``.

    Returns ``{"role", "restored_from", "record_id", "steps", "dry_run", "verified",
    "violations_after"}``. Raises PermanentError when there is nothing to restore or the role is out
    of scope, RetryableError on throttling and other transient AWS errors."""
    name, key = _resource(role_name)
    sink = sink or Sink()
    recorder = Recorder(sink, table)
    records = [r for r in recorder.history(key) if r.kind in (RECORD_KIND, ROLLBACK_KIND)]
    if record_id is None:
        chosen = next((r for r in records if r.kind == RECORD_KIND), None)
    else:
        chosen = next((r for r in records if r.record_id == record_id), None)
    if chosen is None or "prior" not in chosen.data:
        known = ", ".join(r.record_id for r in records) or "none"
        raise PermanentError(f"no record {record_id or '(latest remediation)'} for {key}; records: {known}", "NoRecord")
    wanted: dict[str, Any] = chosen.data["prior"]
    current, _policies = iam_compliance.read_role(name)
    if current is None:
        raise PermanentError(f"role {name} does not exist; rollback restores policies, not roles", "NoSuchEntity")
    scope = config.managed_path if config is not None else os.environ.get("ROLEWARDEN_MANAGED_PATH") or wanted["path"]
    if (
        current.path != wanted.get("path")
        or current.path.startswith("/aws-service-role/")
        or not current.path.startswith(scope)
    ):
        raise PermanentError(
            f"refusing to roll back role {name}: its path {current.path} is not the recorded {wanted.get('path')} "
            f"under {scope}",
            "OutOfScope",
        )
    steps = restore_plan(current.state(), wanted)
    answer: dict[str, Any] = {
        "role": name,
        "restored_from": chosen.record_id,
        "record_id": None,
        "steps": [{"step": s, "value": v} for s, v in steps],
        "dry_run": dry_run,
        "verified": False,
        "violations_after": [],
    }
    if config is not None:
        restored = RoleView(
            name=name,
            arn=current.arn,
            path=current.path,
            trust=wanted["trust_policy"],
            boundary=wanted.get("permissions_boundary"),
            attached=tuple(AttachedPolicy(arn, arn.rsplit("/", 1)[-1]) for arn in wanted["attached_policies"]),
            inline=wanted["inline_policies"],
        )
        policies = iam_compliance.read_policies(wanted["attached_policies"])
        decision = decide_role(restored, config, policies, self_role_arns())
        answer["violations_after"] = [
            {"rule": v.rule, "mode": mode, "message": v.message} for v, mode in decision.violations
        ]
    if dry_run or not steps:
        answer["verified"] = not steps
        return answer
    rec = recorder.record(
        key,
        ROLLBACK_KIND,
        {
            "prior": current.state(),
            "restored_from": chosen.record_id,
            "actions": [f"{s} {v if s != 'put-inline' else v[0]}" for s, v in steps],
            "trigger": "rollback",
            "findings": [],
        },
    )
    answer["record_id"] = rec.record_id
    for step, value in steps:
        iam_compliance.apply_restore_step(name, step, value)
    after, _ = iam_compliance.read_role(name)
    answer["verified"] = after is not None and not restore_plan(after.state(), wanted)
    sink.log(
        "INFO",
        f"rolled back role {name} to record {chosen.record_id}",
        resource=key,
        **{"record_id": rec.record_id, "steps": len(steps), "verified": answer["verified"]},
    )
    return answer


def explain(config: Config, role_name: str) -> dict[str, Any]:
    """Why a role is as it is and what RoleWarden would do (``rolewarden explain role/NAME``), from the same
    reads and the same ``decide_role`` as the handler: its scope, each rule's mode and result, the bucket
    grants that name it with the documents they produce, and the actions that would follow. Writes nothing."""
    name, _key = _resource(role_name)
    role, policies = iam_compliance.read_role(name)
    report: dict[str, Any] = {"role": name}
    if role is None:
        report["exists"] = "no: IAM has no role of that name"
        report["would do"] = "nothing"
        return report
    own = self_role_arns()
    report["arn"] = role.arn
    report["scope"] = {
        "path": role.path,
        "managed": "yes" if role.path.startswith(config.managed_path) else f"no: outside {config.managed_path}",
        "service-linked": "yes" if role.path.startswith(SERVICE_LINKED_PATH) else "no",
        "protected": "yes (compliance.protected_roles)" if name in config.compliance.protected_roles else "no",
        "RoleWarden's own": "yes (ROLEWARDEN_SELF_ROLE_ARNS)" if role.arn in own else "no",
    }
    report["permissions"] = {
        "trust policy": role.trust,
        "permissions boundary": role.boundary or "(none)",
        "attached policies": [p.arn for p in role.attached] or "(none)",
        "inline policies": sorted(role.inline) or "(none)",
    }
    decision = decide_role(role, config, policies, own)
    found: dict[str, list[str]] = {}
    for violation, _mode in decision.violations:
        found.setdefault(violation.rule, []).append(violation.message)
    rules = []
    for rule_id, rule in registered_rules().items():
        mode = config.rule_mode(rule_id)
        entry: dict[str, Any] = {"rule": rule_id, "mode": mode, "checks": rule.checks}
        if decision.verdict in ("out-of-scope", "unreadable"):
            entry["result"] = f"not evaluated: {decision.reason}"
        elif mode == "off":
            entry["result"] = "off"
        elif rule_id == "grant-policy-drift":
            entry["result"] = (
                f"checked by the grants code for {', '.join(decision.grant_policies)} (see grants below)"
                if decision.grant_policies
                else "pass: no grant policy attached"
            )
        elif rule_id in found:
            entry["result"] = "VIOLATED" + (" (remediated)" if mode == "enforce" else " (reported only)")
            entry["violations"] = found[rule_id]
        else:
            entry["result"] = "pass"
        rules.append(entry)
    verdict = decision.verdict + (f": {decision.reason}" if decision.reason else "")
    report["verdict"] = verdict
    report["rules"] = rules
    from rolewarden.operator import grants

    grant_report = grants.explain_role(config, name)
    report["grants"] = grant_report
    actions = [a.describe() for a in decision.actions]
    grant_actions = grant_report.get("would do")
    if isinstance(grant_actions, list):  # the bucket_grants capability's own sweep does these
        actions.extend(f"{a} (bucket grants)" for a in grant_actions)
    report["would do"] = actions or "nothing"
    if config.dry_run:
        report["note"] = "dry_run is true: RoleWarden would only log this"
    return report


__all__ = ["CAPABILITY", "RoleCompliance", "explain", "history", "rollback"]
