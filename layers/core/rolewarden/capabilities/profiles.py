"""Instance profiles by tag: observe instances (batched), decide (pure), apply the plan.

Beside the per-instance path, the capability handles three more things:

* the tag guard (issue 16): every desired profile's role is judged by the compliance rules before a
  tag may hand it out (``lookup_profiles``);
* launch lifecycle hooks and young launch events whose instance DescribeInstances does not show
  yet (EC2 eventual consistency): retried, the hook kept alive with a heartbeat, never released early;
* IAM changes to an instance profile (AddRoleToInstanceProfile/RemoveRoleFromInstanceProfile): the
  profile is judged again, and every instance holding a refused profile is reported.

The sweep honours the sweep contract (``capabilities.base``): it stops between DescribeInstances
pages once ``run.budget_spent()`` and returns where to resume.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from rolewarden.aws import iam
from rolewarden.aws import profiles as ec2
from rolewarden.capabilities.base import Outcome, Run
from rolewarden.config import Config
from rolewarden.decide.profiles import (
    ProfileDecision,
    assignable,
    decide_instance,
    desired_profile,
    guard_rules,
    hook_needs_heartbeat,
    judge_role,
    missing_instance_is_retried,
    profile_refusal,
)
from rolewarden.errors import PermanentError, RetryableError
from rolewarden.model.findings import Finding
from rolewarden.model.instances import GuardFinding, InstanceView, LifecycleAction, ProfileInfo
from rolewarden.model.profiles import CompleteLifecycle, HeartbeatLifecycle, SetMetadataOptions
from rolewarden.model.targets import Target

#: Seconds a profile read from IAM, with the guard's verdict on its role, is reused by a warm
#: function. Why 60 s: a launch burst reads the same few profiles in every batch, and without a cache
#: each batch would cost the profile and its role's policies again (IAM throttles per account);
#: a change to a role reaches RoleWarden as a CloudTrail event, which itself takes longer than this
#: to arrive, the compliance function remediates the role on that event, and the instance-profiles
#: function drops the entry when the profile's role is swapped. Only profiles that exist are
#: cached, so a profile created after a refusal is seen at once.
PROFILE_CACHE_SECONDS = 60.0
#: (profile name, managed path, boundary) -> (read at, profile with the guard's verdict)
_profile_cache: dict[tuple[str, str, str], tuple[float, ProfileInfo]] = {}
#: Wall clock for event ages (launch grace, hook heartbeats); a test replaces it.
wall_clock: Callable[[], float] = time.time


def _cache_key(name: str, config: Config | None) -> tuple[str, str, str]:
    if config is None:
        return (name, "", "")
    return (name, config.managed_path, config.compliance.permissions_boundary or "")


def judge_profile(info: ProfileInfo, config: Config) -> ProfileInfo:
    """The profile with the guard's verdict on its role (only an otherwise assignable profile is judged:
    a refused one never reaches an association, and its role may be outside RoleWarden's read scope)."""
    if assignable(info, config.managed_path) is not None:
        return info
    read = iam.read_profile_role(info, config.managed_path, need_boundary="permissions-boundary" in guard_rules(config))
    if read is None:
        missing = GuardFinding("role-unreadable", f"role {info.role_names[0]} vanished while it was read")
        return dataclasses.replace(info, guard=(missing,))
    role, policies = read
    return dataclasses.replace(info, guard=judge_role(role, policies, config))


def lookup_profiles(
    names: Iterable[str], config: Config | None = None, clock: float | None = None
) -> dict[str, ProfileInfo | None]:
    """The named profiles as IAM holds them, each with the guard's verdict on its role when ``config``
    is given (without it, ``guard`` is None and every decision refuses the profile)."""
    now = time.monotonic() if clock is None else clock
    found: dict[str, ProfileInfo | None] = {}
    for name in sorted(set(names)):
        key = _cache_key(name, config)
        cached = _profile_cache.get(key)
        if cached is not None and now - cached[0] < PROFILE_CACHE_SECONDS:
            found[name] = cached[1]
            continue
        info = iam.get_instance_profile(name)
        if info is not None:
            if config is not None:
                info = judge_profile(info, config)
            _profile_cache[key] = (now, info)
        found[name] = info
    return found


def forget_profile(name: str) -> None:
    """Drop every cached reading of one profile (its role was swapped)."""
    for key in [k for k in _profile_cache if k[0] == name]:
        del _profile_cache[key]


def clear_profile_cache() -> None:
    _profile_cache.clear()


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
        profile plus its role's policies for the guard (cached); one
        DescribeIamInstanceProfileAssociations, only for instances that DescribeInstances shows
        holding another profile.
        """
        if instance_ids is None:
            views = ec2.sweep_instances()
            ids = sorted(views)
        else:
            ids = sorted(set(instance_ids))
            views = ec2.describe_instances(ids)
        return self._plan_views(run, ids, views)

    def _plan_views(self, run: Run, ids: Sequence[str], views: dict[str, InstanceView]) -> ProfilePlan:
        settings = run.config.instance_profiles
        wanted = {desired_profile(settings, view.tags)[0] for view in views.values()} - {None}
        profiles = lookup_profiles((name for name in wanted if name is not None), run.config)
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
            plan = self.plan(run, [t.id for t in targets])
        except RetryableError as exc:
            return {t: Outcome("retry", str(exc)) for t in targets}
        except PermanentError as exc:  # e.g. a read RoleWarden is not allowed: to the DLQ with the reason
            return {t: Outcome("dead", str(exc)) for t in targets}
        gone: set[str] = set()
        per_instance = self._apply(run, plan, gone)
        now = wall_clock()
        for target in targets:
            decision = plan.decisions.get(target.id)
            invisible = target.id in gone or (decision is not None and target.id not in plan.views)
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
        per_instance.update(self._release_lifecycle(run, plan, lifecycle, per_instance, targets, now))
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
            for views, next_token in ec2.sweep_pages(token):
                pages += 1
                plan = self._plan_views(run, sorted(views), views)
                per_instance = self._apply(run, plan, set())
                decided += len(plan.decisions)
                failed += sum(1 for o in per_instance.values() if o.status != "ok")
                if next_token and run.budget_spent():
                    run.sink.log(
                        "INFO",
                        f"sweep budget spent after {pages} page(s), {decided} instances; continuing later",
                        capability=self.name,
                        instances=decided,
                        failed=failed,
                        pages=pages,
                    )
                    cursor = _encode_cursor(next_token)
                    return Outcome("ok", f"continued after {decided} instances", continuation=cursor)
        except RetryableError as exc:
            return Outcome("retry", str(exc))
        except PermanentError as exc:
            return Outcome("dead", str(exc))
        run.sink.log(
            "INFO",
            f"sweep of {decided} instances done, {failed} failed",
            capability=self.name,
            instances=decided,
            failed=failed,
            pages=pages,
        )
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
            holders = ec2.instances_holding(info.arn)
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

    def _apply(self, run: Run, plan: ProfilePlan, gone: set[str]) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        conflicts: list[str] = []
        for decision in plan.decisions.values():
            self._report(run, decision, plan.views.get(decision.instance_id))
            outcomes[decision.instance_id] = self._execute(run, decision, conflicts, gone)
        if conflicts:
            # The world moved between read and write: read the associations and decide once more. The
            # metadata options were written (or failed) in the first pass already: not a second time.
            again = self._decide(run, conflicts, plan.views, plan.profiles, confirm=conflicts)
            for instance_id, decided in again.items():
                kept = tuple(a for a in decided.actions if not isinstance(a, SetMetadataOptions))
                decision = dataclasses.replace(decided, actions=kept)
                plan.decisions[instance_id] = decision
                self._report(run, decision, plan.views.get(instance_id))
                outcomes[instance_id] = self._execute(run, decision, [], gone)
        return outcomes

    def _execute(self, run: Run, decision: ProfileDecision, conflicts: list[str], gone: set[str]) -> Outcome:
        outcome = Outcome()
        for result in run.executor.execute(decision.actions):
            run.results.append(result)
            if result.status == "conflict":
                conflicts.append(decision.instance_id)
                outcome = Outcome("retry", result.error)
            elif result.status == "failed":
                outcome = Outcome("retry" if result.retryable else "dead", result.error)
            elif result.status == "gone":
                gone.add(decision.instance_id)
        return outcome

    def _release_lifecycle(
        self,
        run: Run,
        plan: ProfilePlan,
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
            decision = plan.decisions.get(instance_id)
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
                    result = run.executor.execute_one(beat)
                    run.results.append(result)
                continue
            action = CompleteLifecycle(instance_id=instance_id, group=hook.group, hook=hook.hook, token=hook.token)
            result = run.executor.execute_one(action)
            run.results.append(result)
            if result.status == "failed":
                updated[instance_id] = Outcome("retry" if result.retryable else "dead", result.error)
        return updated

    def _report(self, run: Run, decision: ProfileDecision, view: InstanceView | None) -> None:
        self._report_metadata(run, decision, view)
        fields = {
            "capability": self.name,
            "resource": decision.instance_id,
            "verdict": decision.verdict,
            "desired_profile": decision.desired,
            "rule_index": decision.rule_index,
            "current_profile_arn": decision.current_arn,
            "metadata": decision.metadata.verdict if decision.metadata else None,
            "trigger": run.trigger,
        }
        if decision.verdict == "refuse":
            tags = dict(view.tags) if view is not None else {}
            details: dict[str, object] = {"tags": tags, "profile": decision.desired}
            rule_id = "profile-outside-managed-set"
            if decision.guard:
                rule_id = "profile-role-not-compliant"
                details.update(
                    rules=sorted({g.rule for g in decision.guard}),
                    violations=[{"rule": g.rule, "message": g.message} for g in decision.guard],
                    asked_by=dict(decision.asked_by),
                    config_rule=(
                        f"instance_profiles.rules.{decision.rule_index}"
                        if decision.rule_index is not None
                        else "instance_profiles.default"
                    ),
                )
            run.sink.finding(
                Finding(self.name, decision.instance_id, rule_id, decision.reason, details=details),
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

    def _report_metadata(self, run: Run, decision: ProfileDecision, view: InstanceView | None) -> None:
        """Report mode names each managed instance that still answers IMDSv1 (issue 15)."""
        md = decision.metadata
        if md is None or md.verdict not in ("imdsv1", "hop-limit"):
            return
        options = view.metadata if view is not None else None
        run.sink.finding(
            Finding(
                self.name,
                decision.instance_id,
                "imdsv1-open" if md.verdict == "imdsv1" else "imds-hop-limit",
                f"{decision.instance_id}: {md.reason}",
                details={
                    "http_tokens": options.http_tokens if options else None,
                    "hop_limit": options.hop_limit if options else None,
                    "configured_hop_limit": run.config.instance_profiles.metadata.hop_limit,
                    "profile": decision.desired,
                    "tags": dict(view.tags) if view is not None else {},
                },
            ),
            metric="Imdsv1Open" if md.verdict == "imdsv1" else "ImdsHopLimit",
        )


CAPABILITY = InstanceProfiles()
