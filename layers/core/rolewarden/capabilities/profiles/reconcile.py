"""Reconcile for instance profiles: observe (``observe``) -> decide (``rolewarden.decide.profiles``,
pure) -> apply (``capabilities.base.apply``, through the executor), per batch of instances.

Beside the per-instance path, the capability handles three more things:

* the tag guard (issue 16): every desired profile's role is judged by the compliance rules before a
  tag may hand it out (``guard.lookup_profiles``);
* launch lifecycle hooks and young launch events whose instance DescribeInstances does not show
  yet (EC2 eventual consistency): retried, the hook kept alive with a heartbeat, never released early;
* IAM changes to an instance profile (AddRoleToInstanceProfile/RemoveRoleFromInstanceProfile): the
  profile is judged again, and every instance holding a refused profile is reported.

A write that meets a conflict (the world moved between read and write) re-reads that instance's
association and decides once more in the same reconcile. The sweep honours the sweep contract
(``capabilities.base``): it stops between DescribeInstances pages once ``run.budget_spent()`` and
returns where to resume.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping, Sequence

from rolewarden.aws import profiles as aws_profiles
from rolewarden.capabilities.base import Outcome, Run, apply
from rolewarden.capabilities.profiles.guard import forget_profile, lookup_profiles
from rolewarden.capabilities.profiles.observe import observe, observe_views, with_associations
from rolewarden.capabilities.profiles.report import report
from rolewarden.decide.profiles import (
    ProfileDecision,
    decide,
    hook_needs_heartbeat,
    missing_instance_is_retried,
    profile_refusal,
)
from rolewarden.errors import PermanentError, RetryableError
from rolewarden.model.findings import Finding
from rolewarden.model.instances import LifecycleAction, ProfilesSnapshot
from rolewarden.model.profiles import CAPABILITY, CompleteLifecycle, HeartbeatLifecycle, SetMetadataOptions
from rolewarden.model.targets import Target

#: Wall clock for event ages (launch grace, hook heartbeats); a test replaces it.
wall_clock: Callable[[], float] = time.time


# -- sweep cursor -----------------------------------------------------------------------------------
def _encode_cursor(next_token: str) -> str:
    return json.dumps({"ec2_next_token": next_token}, separators=(",", ":"))


def _decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        value = json.loads(cursor)
    except ValueError:
        value = None
    token = value.get("ec2_next_token") if isinstance(value, dict) else None
    if not isinstance(token, str) or not token:
        raise ValueError(f"not an instance-profiles sweep cursor: {cursor[:120]!r}")
    return token


class InstanceProfiles:
    name = CAPABILITY

    def reconcile(self, run: Run, targets: Sequence[Target]) -> dict[Target, Outcome]:
        outcomes: dict[Target, Outcome] = {}
        instance_targets = [t for t in targets if t.kind == "instance"]
        if instance_targets:
            outcomes.update(self._reconcile_instances(run, instance_targets))
        for target in targets:
            if target.kind == "profile":
                outcomes[target] = self._reconcile_profile(run, target.id)
            elif target.kind == "sweep":
                outcomes[target] = self._sweep(run)
        return outcomes

    def _reconcile_instances(self, run: Run, targets: Sequence[Target]) -> dict[Target, Outcome]:
        lifecycle = {t.id: t.lifecycle for t in targets if t.lifecycle is not None}
        try:
            snapshot = observe(run, targets)
        except RetryableError as exc:
            return {t: Outcome("retry", str(exc)) for t in targets}
        except PermanentError as exc:  # e.g. a read RoleWarden is not allowed: to the DLQ with the reason
            return {t: Outcome("dead", str(exc)) for t in targets}
        gone: set[str] = set()
        decisions, per_instance = self._apply(run, snapshot, gone)
        now = wall_clock()
        for target in targets:
            decision = decisions.get(target.id)
            invisible = target.id in gone or (decision is not None and target.id not in snapshot.views)
            if not invisible or per_instance.get(target.id, Outcome()).status != "ok":
                continue
            age = None if target.launched_at is None else now - target.launched_at
            if missing_instance_is_retried(target.lifecycle is not None, age):
                # EC2 is eventually consistent just after a launch: not there *yet* is not gone.
                per_instance[target.id] = Outcome(
                    "retry", f"{target.id} is not visible to EC2 yet (eventual consistency after launch); retrying"
                )
                run.sink.log(
                    "INFO",
                    f"{target.id}: not visible yet, retrying instead of skipping",
                    capability=self.name,
                    resource=target.id,
                    verdict="retry",
                    event_age=age,
                )
        per_instance.update(self._release_lifecycle(run, decisions, lifecycle, per_instance, targets, now))
        return {t: per_instance.get(t.id, Outcome()) for t in targets}

    def _sweep(self, run: Run) -> Outcome:
        """Every instance, page by page; stops between pages once the budget is spent and returns the
        cursor to resume from (``Outcome.continuation``). Per-instance failures are left to the next sweep."""
        try:
            token = _decode_cursor(run.cursor)
        except ValueError as exc:
            return Outcome("dead", str(exc))
        decided = failed = pages = 0
        try:
            for views, next_token in aws_profiles.sweep_pages(token):
                pages += 1
                decisions, per_instance = self._apply(run, observe_views(run, sorted(views), views), set())
                decided += len(decisions)
                failed += sum(1 for o in per_instance.values() if o.status != "ok")
                if next_token and run.budget_spent():
                    spent = f"sweep budget spent after {pages} page(s), {decided} instances; continuing later"
                    run.sink.log("INFO", spent, capability=self.name, instances=decided, failed=failed, pages=pages)
                    cursor = _encode_cursor(next_token)
                    return Outcome("ok", f"continued after {decided} instances", continuation=cursor)
        except RetryableError as exc:
            return Outcome("retry", str(exc))
        except PermanentError as exc:
            return Outcome("dead", str(exc))
        done = f"sweep of {decided} instances done, {failed} failed"
        run.sink.log("INFO", done, capability=self.name, instances=decided, failed=failed, pages=pages)
        return Outcome()

    def _reconcile_profile(self, run: Run, name: str) -> Outcome:
        """The profile's role changed: judge it again (fresh reads) and report every instance that holds
        it when it may no longer be handed out. New associations are refused by the same judgement."""
        forget_profile(name)
        try:
            info = lookup_profiles([name], run.config)[name]
            if info is None:
                run.sink.log("INFO", f"instance profile {name} no longer exists", capability=self.name, resource=name)
                return Outcome()
            refusal = profile_refusal(info, run.config)
            if refusal is None:
                run.sink.log(
                    "INFO",
                    f"instance profile {name} holds {', '.join(info.role_names)}: assignable",
                    capability=self.name,
                    resource=name,
                )
                return Outcome()
            holders = aws_profiles.instances_holding(info.arn)
        except RetryableError as exc:
            return Outcome("retry", str(exc))
        except PermanentError as exc:
            return Outcome("dead", str(exc))
        rules = sorted({g.rule for g in info.guard or ()})
        for instance_id in sorted(holders):
            view = holders[instance_id]
            run.sink.finding(
                Finding(
                    self.name,
                    instance_id,
                    "profile-no-longer-assignable",
                    f"{instance_id} holds instance profile {name}, which is refused for new associations: {refusal}",
                    details={
                        "profile": name,
                        "roles": list(info.role_names),
                        "rules": rules,
                        "tags": dict(view.tags),
                        "trigger": run.trigger,
                    },
                ),
                metric="Refused",
            )
        run.sink.log(
            "WARNING",
            f"instance profile {name} is refused ({refusal}); {len(holders)} instance(s) hold it",
            capability=self.name,
            resource=name,
            holders=sorted(holders),
        )
        return Outcome()

    def _apply(
        self, run: Run, snapshot: ProfilesSnapshot, gone: set[str]
    ) -> tuple[dict[str, ProfileDecision], dict[str, Outcome]]:
        """Decide for every instance of the snapshot, report, and apply each decision's actions. The
        instances whose write met a conflict are read again (their association) and decided once more;
        their metadata options were written (or failed) in the first pass already: not a second time."""
        decisions = decide(snapshot, run.config)
        outcomes: dict[str, Outcome] = {}
        conflicts: list[str] = []
        for decision in decisions.values():
            report(run, decision, snapshot.views.get(decision.instance_id))
            outcomes[decision.instance_id] = self._execute(run, decision, conflicts, gone)
        if conflicts:
            again = with_associations(snapshot, conflicts)
            for instance_id, decided in decide(again, run.config, conflicts).items():
                kept = tuple(a for a in decided.actions if not isinstance(a, SetMetadataOptions))
                decision = dataclasses.replace(decided, actions=kept)
                decisions[instance_id] = decision
                report(run, decision, snapshot.views.get(instance_id))
                outcomes[instance_id] = self._execute(run, decision, [], gone)
        return decisions, outcomes

    def _execute(self, run: Run, decision: ProfileDecision, conflicts: list[str], gone: set[str]) -> Outcome:
        applied = apply(run, decision.actions)
        if applied.conflicted:
            conflicts.append(decision.instance_id)
        if applied.gone:
            gone.add(decision.instance_id)
        return applied.outcome

    def _release_lifecycle(
        self,
        run: Run,
        decisions: Mapping[str, ProfileDecision],
        lifecycle: dict[str, LifecycleAction],
        outcomes: dict[str, Outcome],
        targets: Sequence[Target],
        now: float,
    ) -> dict[str, Outcome]:
        """Complete each launch lifecycle action with CONTINUE once the instance's profile is settled
        (attached, kept, or definitively refused); while it is not, keep the hook alive with a
        heartbeat when the retry could outlast the hook's timeout."""
        launched = {t.id: t.launched_at for t in targets}
        updated: dict[str, Outcome] = {}
        for instance_id, hook in lifecycle.items():
            decision = decisions.get(instance_id)
            outcome = outcomes.get(instance_id, Outcome())
            if outcome.status == "ok" and decision is not None and decision.verdict == "wait":
                outcome = Outcome("retry", "instance still pending; completing the hook later")
                updated[instance_id] = outcome
            if outcome.status != "ok":
                # not settled: the record is redelivered and the hook completed then (a dead record is
                # not, and the hook's default result applies when its timeout passes)
                started = launched.get(instance_id)
                if outcome.status == "retry" and hook_needs_heartbeat(None if started is None else now - started):
                    beat = HeartbeatLifecycle(
                        instance_id=instance_id, group=hook.group, hook=hook.hook, token=hook.token
                    )
                    apply(run, [beat])
                continue
            action = CompleteLifecycle(instance_id=instance_id, group=hook.group, hook=hook.hook, token=hook.token)
            completed = apply(run, [action])
            if completed.outcome.status != "ok":
                updated[instance_id] = completed.outcome
        return updated
