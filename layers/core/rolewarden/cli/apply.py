"""``rolewarden apply``: show the plan, ask (or take --yes), then run the same sweeps again with a real
executor that carries out only the actions the plan showed, each at most once. The capabilities' own
code applies them, so remediations record the prior state exactly as the Lambda function does, and an
action the account no longer calls for, or a new one, is not carried out. With ``--account``: one plan
per account, one confirmation for all, then each account applied in its scope with an executor of its own
(an account whose effective config is dry_run is shown and not applied)."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rolewarden import capabilities
from rolewarden.aws.executor import ActionResult, Executor
from rolewarden.cli.accounts import Where, resolve
from rolewarden.cli.errors import CallErrors
from rolewarden.cli.locations import state_table, table_for_run
from rolewarden.cli.output import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, Out, isatty
from rolewarden.cli.plan import CapabilityPlan, new_run, only, plan_json, plan_places, report_failures, show_plan
from rolewarden.config import Config, load_config
from rolewarden.model.actions import Action
from rolewarden.model.targets import SWEEP, Target
from rolewarden.telemetry import Sink

#: Applies of at least this many actions show a progress bar on a terminal.
PROGRESS_THRESHOLD = 20


@dataclass
class PlannedOnly(Executor):
    """A real executor that carries out only the confirmed plan's actions, each at most once. Anything
    else a capability decides now (the account changed since the plan) is not done: it is answered as a
    conflict, which the capabilities already treat as "re-read and try again later"."""

    approved: Counter[Action] = field(default_factory=Counter)
    done: list[ActionResult] = field(default_factory=list)
    refused: list[Action] = field(default_factory=list)
    tick: Callable[[], None] | None = None

    def execute_one(self, action: Action) -> ActionResult:
        if self.approved[action] <= 0:
            self.refused.append(action)
            self.sink.log("WARNING", f"not in the confirmed plan, not done: {action.describe()}")
            return ActionResult(action, "conflict", "not in the confirmed plan (the account changed since it)")
        self.approved[action] -= 1
        result = super().execute_one(action)
        self.done.append(result)
        if self.tick is not None:
            self.tick()
        return result


DRY_RUN = "The config says dry_run: true; nothing was applied."
UNCONFIRMED = "refusing to apply without confirmation: pass --yes (stdin is not a terminal); nothing changed"


@dataclass
class Section:
    """One place's plan and, once decided, what became of it (the JSON document's ``apply``)."""

    where: Where
    plans: list[CapabilityPlan]
    apply: dict[str, Any] | None = None

    @property
    def actions(self) -> list[Action]:
        return [a for p in self.plans for a in p.actions]

    def document(self, status: str) -> dict[str, Any]:
        return {**plan_json(self.where.config, self.plans), "apply": self.apply or {"status": status}}


def cmd_apply(args: argparse.Namespace, out: Out, errors: CallErrors) -> int:
    config = load_config(args.config)
    places = resolve(args, config, out)
    if places is None:
        return EXIT_ERROR
    sections = [Section(where, plans) for where, plans in plan_places(places, only(args))]
    if not args.json:
        for section in sections:
            section.where.header(out)
            show_plan(out, section.plans)
    report_failures(out, [p for s in sections for p in s.plans], errors)
    plan_failed = any(p.failures for s in sections for p in s.plans) or bool(places.unavailable)

    def stop(code: int, message: str, problem: bool = False) -> int:
        if args.json:
            out.json(places.document({s.where.account: s.document(message) for s in sections}))
        if problem:
            out.error(message)
        else:
            out.line(message)
        return code

    if not any(s.actions for s in sections):
        return stop(EXIT_ERROR if plan_failed else EXIT_OK, "Nothing to apply.")
    todo = [s for s in sections if s.actions and not s.where.config.dry_run]
    if not todo:
        return stop(EXIT_CHANGES, DRY_RUN)
    for section in sections:
        if section.actions and section.where.config.dry_run:
            section.apply = {"status": DRY_RUN}
            out.line(f"account {section.where.account}: {DRY_RUN}")
    count = sum(len(s.actions) for s in todo)
    if not args.yes:
        if not isatty(sys.stdin):
            return stop(EXIT_ERROR, UNCONFIRMED, problem=True)
        where = f" in {len(todo)} account(s)" if places.grouped else ""
        answer = input(f"Apply {count} change(s){where}? Type 'yes' to continue: ")
        if answer.strip().lower() != "yes":
            return stop(EXIT_ERROR, "Cancelled; nothing was changed.")
    if not state_table(args) and any(p.capability == "role_compliance" and p.actions for s in todo for p in s.plans):
        out.warn(
            "no state table (--table or ROLEWARDEN_TABLE): the prior state of remediated roles is only logged, "
            "so `rolewarden rollback` will not find it"
        )
    failed = False
    with table_for_run(args.table):
        for section in todo:
            with section.where.acting():
                executor, failures = execute(section.where.config, section.plans, out, section.where.account)
            section.apply = summarise(args, out, executor, failures, section.where.account)
            failed = failed or section.apply["status"] == "failed"
    if args.json:
        out.json(places.document({s.where.account: s.document("Nothing to apply.") for s in sections}))
    if failed:
        for line in errors.explain():
            out.error(line)
    return EXIT_ERROR if plan_failed or failed else EXIT_OK


def recheck_targets(actions: Sequence[Action]) -> list[Target]:
    """The resources the planned actions touch, when re-reading only those (not the whole account a
    second time) is enough to decide them again; otherwise the sweep."""
    targets = [a.target for a in actions]
    if any(t is None for t in targets):
        return [SWEEP]
    return list(dict.fromkeys(t for t in targets if t is not None))


def execute(
    config: Config, plans: list[CapabilityPlan], out: Out, account: str | None = None
) -> tuple[PlannedOnly, list[str]]:
    """Each capability decides the planned resources again (its own code: records, conflicts, circuit
    breaker), through an executor that carries out only the plan's actions (of one account: two accounts'
    same-named resources are different actions)."""
    total = sum(len(p.actions) for p in plans)
    sink = Sink()
    sink.account = account or ""
    executor = PlannedOnly(sink=sink, trigger="cli", approved=Counter(a for p in plans for a in p.actions))
    failures: list[str] = []

    def run_all() -> None:
        for plan in plans:
            if plan.actions:
                targets = recheck_targets(plan.actions)
                outcomes = capabilities.get(plan.capability).reconcile(new_run(config, executor), targets)
                failures.extend(f"{plan.capability}: {o.message}" for o in outcomes.values() if o.status != "ok")

    if not out.rich or total < PROGRESS_THRESHOLD:
        run_all()
        return executor, failures
    from rich.progress import Progress

    with Progress(console=out.console, transient=True) as progress:
        task = progress.add_task("applying", total=total)
        executor.tick = lambda: progress.advance(task)
        run_all()
    return executor, failures


def summarise(
    args: argparse.Namespace, out: Out, executor: PlannedOnly, failures: list[str], account: str | None
) -> dict[str, Any]:
    """What was applied, failed, skipped, no longer needed or refused (the JSON document's ``apply``),
    told on ``out`` unless the output is JSON; failures always on stderr."""
    results = executor.done
    counts = Counter(r.status for r in results)
    stale = sorted(executor.approved.elements(), key=lambda a: (a.capability, a.resource, a.verb))
    failed = [r for r in results if r.status == "failed"]
    summary = {
        "applied": counts["applied"],
        "failed": counts["failed"],
        "skipped": counts["conflict"] + counts["gone"],
        "no longer needed": len(stale),
        "not in the plan": len(executor.refused),
    }
    if not args.json:
        lead = f"account {account}: " if account is not None else ""
        out.line(
            f"{lead}Applied {summary['applied']}, failed {summary['failed']}, skipped {summary['skipped']} "
            "(the resource changed or went away since the plan)."
        )
        for action in stale:
            out.warn(f"{lead}planned but no longer needed: {action.describe()}")
        for action in executor.refused:
            out.warn(f"{lead}not in the plan, so not done (run plan again): {action.describe()}")
    for result in failed:
        out.error(f"failed: {result.action.describe()}: {result.error}")
    for failure in failures:
        out.error(failure)
    return {
        "status": "failed" if failed or failures else "done",
        "summary": summary,
        "results": [{"action": r.action.as_dict(), "status": r.status, "error": r.error} for r in results],
        "not in the plan": [a.as_dict() for a in executor.refused],
        "no longer needed": [a.as_dict() for a in stale],
        "errors": failures,
    }
