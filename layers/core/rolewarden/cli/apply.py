"""``rolewarden apply``: show the plan, ask (or take --yes), then run the same sweeps again with a real
executor that carries out only the actions the plan showed, each at most once. The capabilities' own
code applies them, so remediations record the prior state exactly as the Lambda function does, and an
action the account no longer calls for, or a new one, is not carried out."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rolewarden import capabilities
from rolewarden.aws.executor import ActionResult, Executor
from rolewarden.cli.errors import CallErrors
from rolewarden.cli.locations import state_table, table_for_run
from rolewarden.cli.output import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, Out, isatty
from rolewarden.cli.plan import CapabilityPlan, make_plan, new_run, only, plan_json, report_failures, show_plan
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


def cmd_apply(args: argparse.Namespace, out: Out, errors: CallErrors) -> int:
    config = load_config(args.config)
    plans = make_plan(config, only(args))
    report = plan_json(config, plans)
    if not args.json:
        show_plan(out, plans)
    report_failures(out, plans, errors)
    actions = [a for p in plans for a in p.actions]
    plan_failed = any(p.failures for p in plans)

    def stop(code: int, message: str, problem: bool = False) -> int:
        if args.json:
            out.json({**report, "apply": {"status": message}})
        if problem:
            out.error(message)
        else:
            out.line(message)
        return code

    if not actions:
        return stop(EXIT_ERROR if plan_failed else EXIT_OK, "Nothing to apply.")
    if config.dry_run:
        return stop(EXIT_CHANGES, "The config says dry_run: true; nothing was applied.")
    if not args.yes:
        if not isatty(sys.stdin):
            message = "refusing to apply without confirmation: pass --yes (stdin is not a terminal); nothing changed"
            return stop(EXIT_ERROR, message, problem=True)
        answer = input(f"Apply {len(actions)} change(s)? Type 'yes' to continue: ")
        if answer.strip().lower() != "yes":
            return stop(EXIT_ERROR, "Cancelled; nothing was changed.")
    if not state_table(args) and any(p.capability == "role_compliance" and p.actions for p in plans):
        out.warn(
            "no state table (--table or ROLEWARDEN_TABLE): the prior state of remediated roles is only logged, "
            "so `rolewarden rollback` will not find it"
        )
    with table_for_run(args.table):
        executor, failures = execute(config, plans, out)
    code = summarise(args, out, report, executor, failures, errors)
    return EXIT_ERROR if plan_failed else code


def recheck_targets(actions: Sequence[Action]) -> list[Target]:
    """The resources the planned actions touch, when re-reading only those (not the whole account a
    second time) is enough to decide them again; otherwise the sweep."""
    targets = [a.target for a in actions]
    if any(t is None for t in targets):
        return [SWEEP]
    return list(dict.fromkeys(t for t in targets if t is not None))


def execute(config: Config, plans: list[CapabilityPlan], out: Out) -> tuple[PlannedOnly, list[str]]:
    """Each capability decides the planned resources again (its own code: records, conflicts, circuit
    breaker), through an executor that carries out only the plan's actions."""
    total = sum(len(p.actions) for p in plans)
    executor = PlannedOnly(sink=Sink(), trigger="cli", approved=Counter(a for p in plans for a in p.actions))
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
    args: argparse.Namespace,
    out: Out,
    report: dict[str, Any],
    executor: PlannedOnly,
    failures: list[str],
    errors: CallErrors,
) -> int:
    """What was applied, failed, skipped, no longer needed or refused; exit 1 when anything failed."""
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
    if args.json:
        out.json(
            {
                **report,
                "apply": {
                    "status": "failed" if failed or failures else "done",
                    "summary": summary,
                    "results": [{"action": r.action.as_dict(), "status": r.status, "error": r.error} for r in results],
                    "not in the plan": [a.as_dict() for a in executor.refused],
                    "no longer needed": [a.as_dict() for a in stale],
                    "errors": failures,
                },
            }
        )
    else:
        out.line(
            f"Applied {summary['applied']}, failed {summary['failed']}, skipped {summary['skipped']} "
            "(the resource changed or went away since the plan)."
        )
        for action in stale:
            out.warn(f"planned but no longer needed: {action.describe()}")
        for action in executor.refused:
            out.warn(f"not in the plan, so not done (run plan again): {action.describe()}")
    for result in failed:
        out.error(f"failed: {result.action.describe()}: {result.error}")
    for failure in failures:
        out.error(failure)
    if failed or failures:
        for line in errors.explain():
            out.error(line)
    return EXIT_ERROR if failed or failures else EXIT_OK
