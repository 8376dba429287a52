"""Instance profiles by tag: observe instances (batched), decide (pure), apply the plan."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rolewarden.aws import ec2, iam
from rolewarden.capabilities.base import Outcome, Run
from rolewarden.decide.profiles import ProfileDecision, decide_instance, desired_profile
from rolewarden.errors import RetryableError
from rolewarden.model import Finding, InstanceView, LifecycleAction, ProfileInfo
from rolewarden.plan import CompleteLifecycle
from rolewarden.triggers import Target

#: Seconds a profile read from IAM is reused across invocations of a warm function. Only profiles
#: that exist are cached, so a profile created after a refusal is seen at once.
PROFILE_CACHE_SECONDS = 60.0
_profile_cache: dict[str, tuple[float, ProfileInfo]] = {}


def lookup_profiles(names: Iterable[str], clock: float | None = None) -> dict[str, ProfileInfo | None]:
    now = time.monotonic() if clock is None else clock
    found: dict[str, ProfileInfo | None] = {}
    for name in sorted(set(names)):
        cached = _profile_cache.get(name)
        if cached is not None and now - cached[0] < PROFILE_CACHE_SECONDS:
            found[name] = cached[1]
            continue
        info = iam.get_instance_profile(name)
        if info is not None:
            _profile_cache[name] = (now, info)
        found[name] = info
    return found


def clear_profile_cache() -> None:
    _profile_cache.clear()


@dataclass
class ProfilePlan:
    decisions: dict[str, ProfileDecision] = field(default_factory=dict)
    views: dict[str, InstanceView] = field(default_factory=dict)
    profiles: dict[str, ProfileInfo | None] = field(default_factory=dict)


class InstanceProfiles:
    name = "instance_profiles"

    # -- observe + decide (no writes) -------------------------------------------------------
    def plan(self, run: Run, instance_ids: Iterable[str] | None) -> ProfilePlan:
        """Decide for the named instances, or for every instance when ``instance_ids`` is None.

        Reads: one DescribeInstances (paginated); one GetInstanceProfile per distinct desired
        profile (cached); one DescribeIamInstanceProfileAssociations, only for instances that
        DescribeInstances shows holding another profile.
        """
        settings = run.config.instance_profiles
        if instance_ids is None:
            views = ec2.sweep_instances()
            ids = sorted(views)
        else:
            ids = sorted(set(instance_ids))
            views = ec2.describe_instances(ids)
        wanted = {desired_profile(settings, view.tags)[0] for view in views.values()} - {None}
        profiles = lookup_profiles(name for name in wanted if name is not None)
        plan = ProfilePlan(views=views, profiles=profiles)
        plan.decisions = self._decide(run, ids, views, profiles)
        return plan

    def _decide(
        self,
        run: Run,
        ids: Sequence[str],
        views: dict[str, InstanceView],
        profiles: dict[str, ProfileInfo | None],
        confirm: Iterable[str] = (),
    ) -> dict[str, ProfileDecision]:
        settings, path = run.config.instance_profiles, run.config.managed_path
        decisions = {i: decide_instance(settings, path, views.get(i), i, profiles) for i in ids}
        confirm_ids = {i for i, d in decisions.items() if d.verdict == "confirm"} | set(confirm)
        if confirm_ids:
            associations = ec2.describe_associations(confirm_ids)
            for i in confirm_ids:
                decisions[i] = decide_instance(
                    settings, path, views.get(i), i, profiles, associations.get(i), association_known=True
                )
        return decisions

    # -- apply ------------------------------------------------------------------------------
    def reconcile(self, run: Run, targets: Sequence[Target]) -> dict[Target, Outcome]:
        sweep = any(t.kind == "sweep" for t in targets)
        instance_targets = [t for t in targets if t.kind == "instance"]
        lifecycle = {t.id: t.lifecycle for t in instance_targets if t.lifecycle is not None}
        try:
            plan = self.plan(run, None if sweep else [t.id for t in instance_targets])
            if sweep:
                extra = sorted({t.id for t in instance_targets} - set(plan.views))
                if extra:  # named instances the sweep's state filter left out (e.g. terminated)
                    more = self.plan(run, extra)
                    plan.views.update(more.views)
                    plan.decisions.update(more.decisions)
        except RetryableError as exc:
            return {t: Outcome("retry", str(exc)) for t in targets}
        per_instance = self._apply(run, plan)
        per_instance.update(self._release_lifecycle(run, plan, lifecycle, per_instance))
        outcomes: dict[Target, Outcome] = {}
        for target in targets:
            if target.kind == "sweep":
                failed = sum(1 for o in per_instance.values() if o.status != "ok")
                run.sink.log(
                    "INFO",
                    f"sweep of {len(plan.decisions)} instances done, {failed} failed",
                    capability=self.name,
                    instances=len(plan.decisions),
                    failed=failed,
                )
                outcomes[target] = Outcome()  # per-instance failures are retried by the next sweep
            else:
                outcomes[target] = per_instance.get(target.id, Outcome())
        return outcomes

    def _apply(self, run: Run, plan: ProfilePlan) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        conflicts: list[str] = []
        for decision in plan.decisions.values():
            self._report(run, decision, plan.views.get(decision.instance_id))
            outcomes[decision.instance_id] = self._execute(run, decision, conflicts)
        if conflicts:
            # The world moved between read and write: read the associations and decide once more.
            again = self._decide(run, conflicts, plan.views, plan.profiles, confirm=conflicts)
            for instance_id, decision in again.items():
                plan.decisions[instance_id] = decision
                self._report(run, decision, plan.views.get(instance_id))
                outcomes[instance_id] = self._execute(run, decision, [])
        return outcomes

    def _execute(self, run: Run, decision: ProfileDecision, conflicts: list[str]) -> Outcome:
        outcome = Outcome()
        for result in run.executor.execute(decision.actions):
            run.results.append(result)
            if result.status == "conflict":
                conflicts.append(decision.instance_id)
                outcome = Outcome("retry", result.error)
            elif result.status == "failed":
                outcome = Outcome("retry" if result.retryable else "dead", result.error)
        return outcome

    def _release_lifecycle(
        self, run: Run, plan: ProfilePlan, lifecycle: dict[str, LifecycleAction], outcomes: dict[str, Outcome]
    ) -> dict[str, Outcome]:
        """Complete each launch lifecycle action with CONTINUE once the instance's profile is settled."""
        updated: dict[str, Outcome] = {}
        for instance_id, hook in lifecycle.items():
            decision = plan.decisions.get(instance_id)
            if outcomes.get(instance_id, Outcome()).status != "ok":
                continue  # not settled: the record is redelivered and the hook completed then
            if decision is not None and decision.verdict == "wait":
                updated[instance_id] = Outcome("retry", "instance still pending; completing the hook later")
                continue
            action = CompleteLifecycle(instance_id=instance_id, group=hook.group, hook=hook.hook, token=hook.token)
            result = run.executor.execute_one(action)
            run.results.append(result)
            if result.status == "failed":
                updated[instance_id] = Outcome("retry" if result.retryable else "dead", result.error)
        return updated

    def _report(self, run: Run, decision: ProfileDecision, view: InstanceView | None) -> None:
        fields = {
            "capability": self.name,
            "resource": decision.instance_id,
            "verdict": decision.verdict,
            "desired_profile": decision.desired,
            "rule_index": decision.rule_index,
            "current_profile_arn": decision.current_arn,
            "trigger": run.trigger,
        }
        if decision.verdict == "refuse":
            tags = dict(view.tags) if view is not None else {}
            run.sink.finding(
                Finding(
                    self.name,
                    decision.instance_id,
                    "profile-outside-managed-set",
                    decision.reason,
                    details={"tags": tags, "profile": decision.desired},
                ),
                metric="Refused",
            )
        elif decision.verdict == "report":
            run.sink.finding(
                Finding(
                    self.name,
                    decision.instance_id,
                    "profile-mismatch",
                    decision.reason,
                    details={"profile": decision.desired, "current": decision.current_arn},
                ),
                metric="Mismatched",
            )
        elif not decision.actions:
            run.sink.log("INFO", f"{decision.instance_id}: {decision.verdict}: {decision.reason}", **fields)


CAPABILITY = InstanceProfiles()
