"""``rolewarden plan``: each capability's sweep with a dry-run executor, shown as tables or one JSON
document; exit 0 when nothing would change, 2 when something would, 1 on errors. ``apply`` shows the
same plan before it asks. With ``--account``, one plan per account (``cli.accounts``), made in its scope
with its config: a section each, and JSON ``{"accounts": {"<id>": <plan>}}``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rolewarden import capabilities
from rolewarden.aws.executor import Executor
from rolewarden.capabilities.base import Run
from rolewarden.cli.accounts import Places, Where, resolve
from rolewarden.cli.errors import CallErrors
from rolewarden.cli.output import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, Out
from rolewarden.config import Config, load_config
from rolewarden.model.actions import Action
from rolewarden.model.findings import Finding
from rolewarden.model.targets import SWEEP
from rolewarden.telemetry import Sink

#: ``--only`` choices and the capability each names.
ONLY = {"profiles": "instance_profiles", "grants": "bucket_grants", "compliance": "role_compliance"}


@dataclass
class CapabilityPlan:
    capability: str
    actions: list[Action] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def new_run(config: Config, executor: Executor) -> Run:
    return Run(config=config, sink=executor.sink, executor=executor, trigger="cli")


def make_plan(config: Config, only: Sequence[str], account: str = "") -> list[CapabilityPlan]:
    """Run each capability's sweep with a dry-run executor: the actions it would take, and its findings
    (which name ``account`` when one is given).

    An action already planned by an earlier capability is not listed again: role compliance hands drifted
    grant policies to the grants code, which the bucket-grants sweep plans as well."""
    plans = []
    seen: set[Action] = set()
    for name in only:
        sink = Sink()
        sink.account = account
        run = new_run(config, Executor(sink=sink, dry_run=True, trigger="cli"))
        outcomes = capabilities.get(name).reconcile(run, [SWEEP])
        plan = CapabilityPlan(name)
        for result in run.results:
            if result.status == "planned" and result.action not in seen:
                seen.add(result.action)
                plan.actions.append(result.action)
        plan.findings = list(sink.findings)
        plan.failures = [o.message for o in outcomes.values() if o.status != "ok"]
        plans.append(plan)
    return plans


def plan_places(places: Places, only: Sequence[str]) -> list[tuple[Where, list[CapabilityPlan]]]:
    """Each place's plan, made acting in its account with its config."""
    planned = []
    for where in places.wheres:
        with where.acting():
            planned.append((where, make_plan(where.config, only, where.account or "")))
    return planned


def plan_json(config: Config, plans: list[CapabilityPlan]) -> dict[str, Any]:
    return {
        "changes": sum(len(p.actions) for p in plans),
        "dry_run": config.dry_run,
        "capabilities": {
            p.capability: {
                "actions": [a.as_dict() for a in p.actions],
                "findings": [f.as_dict() for f in p.findings],
                "errors": p.failures,
            }
            for p in plans
        },
    }


def show_plan(out: Out, plans: list[CapabilityPlan]) -> None:
    for plan in plans:
        title = f"{plan.capability}: {len(plan.actions)} change(s), {len(plan.findings)} finding(s)"
        if not plan.actions and not plan.findings and not plan.failures:
            out.line(f"{plan.capability}: nothing to do")
            continue
        if plan.actions:
            out.table(title, ["action", "resource", "what"], [[a.verb, a.resource, a.describe()] for a in plan.actions])
        else:
            out.line(title)
        out.table(
            f"{plan.capability}: findings",
            ["severity", "resource", "rule", "message"],
            [[f.severity, f.resource, f.rule, f.message] for f in plan.findings],
        )
        for failure in plan.failures:
            out.error(f"{plan.capability}: {failure}")


def report_failures(out: Out, plans: list[CapabilityPlan], errors: CallErrors) -> None:
    if any(p.failures for p in plans):
        for line in errors.explain():
            out.error(line)


def only(args: argparse.Namespace) -> list[str]:
    return [ONLY[args.only]] if args.only else list(ONLY.values())


def cmd_plan(args: argparse.Namespace, out: Out, errors: CallErrors) -> int:
    config = load_config(args.config)
    places = resolve(args, config, out)
    if places is None:
        return EXIT_ERROR
    planned = plan_places(places, only(args))
    if args.json:
        out.json(places.document({where.account: plan_json(where.config, plans) for where, plans in planned}))
    else:
        for where, plans in planned:
            where.header(out)
            show_plan(out, plans)
    every = [p for _, plans in planned for p in plans]
    report_failures(out, every, errors)
    if any(p.failures for p in every) or places.unavailable:
        return EXIT_ERROR
    return EXIT_CHANGES if any(p.actions for p in every) else EXIT_OK
