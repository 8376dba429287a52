"""The bucket grants capability: ``reconcile`` composes observe -> decide -> apply.

With a state table (and not in dry run), the recorded design decides (``recorded``): RoleWarden's own
record of what each bucket's tags grant is the truth, written and read under leases. Without one (the
CLI without --table, a dry run, which writes nothing and so races nothing), the decision comes from
IAM's read-back: ``observe`` reads everything once, ``decide.grants.plan.decide`` decides purely, and
each role's decision is applied.
"""

from __future__ import annotations

from collections.abc import Sequence

from rolewarden.capabilities.base import Outcome, Run
from rolewarden.capabilities.grants.apply import FINDING_METRICS, apply_decision, outcome_of
from rolewarden.capabilities.grants.observe import observe
from rolewarden.capabilities.grants.recorded import Recorded
from rolewarden.decide.grants.plan import GrantsPlan, decide
from rolewarden.errors import PermanentError, RetryableError
from rolewarden.model.grants import CAPABILITY
from rolewarden.model.targets import Target


class BucketGrants:
    name = CAPABILITY

    def plan(self, run: Run, targets: Sequence[Target]) -> GrantsPlan:
        """Observe, then decide (no writes)."""
        return decide(observe(run, targets), run.config, targets)

    def reconcile(self, run: Run, targets: Sequence[Target]) -> dict[Target, Outcome]:
        table = run.settings.table or None
        if table and not run.executor.dry_run:
            return Recorded(run, table).reconcile(targets)
        return self._reconcile_from_iam(run, targets)

    def _reconcile_from_iam(self, run: Run, targets: Sequence[Target]) -> dict[Target, Outcome]:
        try:
            plan = self.plan(run, targets)
        except (RetryableError, PermanentError) as exc:
            return {t: outcome_of(exc) for t in targets}
        for finding in plan.findings:
            run.sink.finding(finding, metric=FINDING_METRICS.get(finding.rule, "Findings"))
        per_role = {role: apply_decision(run, plan.decisions[role]) for role in sorted(plan.decisions)}
        outcomes: dict[Target, Outcome] = {}
        for target in targets:
            if target in plan.failed:
                outcomes[target] = outcome_of(plan.failed[target])
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
