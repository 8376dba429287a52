"""`rolewarden`: the operator's command line. Same config, same decision code, same executor as the
Lambda handlers; no second implementation.

    rolewarden validate [CONFIG]                   schema + checks against the account; exit 1 on problems
    rolewarden plan [--only CAP] [--json]          what a sweep would do; exit 0 nothing, 2 changes, 1 error
    rolewarden apply [--only CAP] [--yes]          the same plan, confirmed, then applied
    rolewarden explain i-…|role/NAME|bucket/NAME   why a resource is as it is and what RoleWarden would do
    rolewarden history role/NAME                   recorded remediations of a role
    rolewarden rollback role/NAME [--to RECORD]    restore a recorded state

Works against a real account (profile, region, credential chain) and a local endpoint (AWS_ENDPOINT_URL).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from rolewarden import capabilities
from rolewarden.apply import ActionResult, Executor
from rolewarden.capabilities.base import Run
from rolewarden.config import Config, load_config
from rolewarden.errors import ConfigError, RetryableError, RoleWardenError
from rolewarden.model import Finding
from rolewarden.observe import Sink
from rolewarden.plan import Action
from rolewarden.triggers import SWEEP

ONLY = {"profiles": "instance_profiles", "grants": "bucket_grants", "compliance": "role_compliance"}
DEFAULT_CONFIG = "config/rolewarden.yaml"
EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


# -- output --------------------------------------------------------------------------------------
class Out:
    """Tables and colour on a terminal, plain text when piped, JSON for scripts."""

    def __init__(self, as_json: bool = False, stream: Any = None) -> None:
        self.stream = stream or sys.stdout
        self.as_json = as_json
        self.rich = not as_json and self.stream.isatty() and os.environ.get("NO_COLOR") is None
        self._console: Any = None
        if self.rich:
            from rich.console import Console

            self._console = Console(file=self.stream)

    def line(self, text: str = "", style: str = "") -> None:
        if self.as_json:
            return
        if self._console is not None:
            self._console.print(text, style=style or None, highlight=False, markup=False)
        else:
            print(text, file=self.stream)

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if self.as_json or not rows:
            return
        if self._console is not None:
            from rich.table import Table

            table = Table(title=title, title_justify="left")
            for column in columns:
                table.add_column(column, overflow="fold")
            for row in rows:
                table.add_row(*[str(cell) for cell in row])
            self._console.print(table)
            return
        print(title, file=self.stream)
        widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) for i, c in enumerate(columns)]
        widths = [min(w, 80) for w in widths]
        print("  ".join(str(c).ljust(widths[i]) for i, c in enumerate(columns)).rstrip(), file=self.stream)
        for row in rows:
            print("  ".join(str(v).ljust(widths[i]) for i, v in enumerate(row)).rstrip(), file=self.stream)
        print(file=self.stream)

    def json(self, data: Any) -> None:
        print(json.dumps(data, indent=2, sort_keys=True, default=str), file=self.stream)


def _quiet_logging() -> None:
    level = os.environ.get("ROLEWARDEN_LOG_LEVEL", "ERROR").upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("rolewarden")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


# -- plan ------------------------------------------------------------------------------------------
@dataclass
class CapabilityPlan:
    capability: str
    actions: list[Action] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def _new_run(config: Config, dry_run: bool, sink: Sink | None = None) -> Run:
    sink = sink or Sink()
    executor = Executor(sink=sink, dry_run=dry_run, trigger="cli")
    return Run(config=config, sink=sink, executor=executor, trigger="cli")


def make_plan(config: Config, only: Sequence[str]) -> list[CapabilityPlan]:
    """Run each capability's sweep with a dry-run executor: the actions it would take, and its findings."""
    plans = []
    for name in only:
        run = _new_run(config, dry_run=True)
        outcomes = capabilities.get(name).reconcile(run, [SWEEP])
        plan = CapabilityPlan(name)
        plan.actions = [r.action for r in run.results if r.status == "planned"]
        plan.findings = list(run.sink.findings)
        plan.failures = [o.message for o in outcomes.values() if o.status != "ok"]
        plans.append(plan)
    return plans


def _plan_json(plans: list[CapabilityPlan]) -> dict[str, Any]:
    return {
        "changes": sum(len(p.actions) for p in plans),
        "capabilities": {
            p.capability: {
                "actions": [a.as_dict() for a in p.actions],
                "findings": [f.as_dict() for f in p.findings],
                "errors": p.failures,
            }
            for p in plans
        },
    }


def _show_plan(out: Out, plans: list[CapabilityPlan]) -> None:
    for plan in plans:
        title = f"{plan.capability}: {len(plan.actions)} change(s), {len(plan.findings)} finding(s)"
        if not plan.actions and not plan.findings:
            out.line(f"{plan.capability}: nothing to do")
            continue
        out.table(title, ["action", "resource", "what"], [[a.verb, a.resource, a.describe()] for a in plan.actions])
        if not plan.actions:
            out.line(title)
        out.table(
            f"{plan.capability}: findings",
            ["severity", "resource", "rule", "message"],
            [[f.severity, f.resource, f.rule, f.message] for f in plan.findings],
        )
        for failure in plan.failures:
            out.line(f"error: {failure}")


def _only(args: argparse.Namespace) -> list[str]:
    return [ONLY[args.only]] if args.only else list(ONLY.values())


def cmd_plan(args: argparse.Namespace, out: Out) -> int:
    config = load_config(args.config)
    plans = make_plan(config, _only(args))
    if args.json:
        out.json(_plan_json(plans))
    else:
        _show_plan(out, plans)
    if any(p.failures for p in plans):
        return EXIT_ERROR
    return EXIT_CHANGES if any(p.actions for p in plans) else EXIT_OK


def cmd_apply(args: argparse.Namespace, out: Out) -> int:
    config = load_config(args.config)
    plans = make_plan(config, _only(args))
    if args.json:
        out.json(_plan_json(plans))
    else:
        _show_plan(out, plans)
    actions = [a for p in plans for a in p.actions]
    if not actions:
        out.line("Nothing to apply.")
        return EXIT_ERROR if any(p.failures for p in plans) else EXIT_OK
    if config.dry_run:
        out.line("The config says dry_run: true; nothing is applied.")
        return EXIT_CHANGES
    if not args.yes:
        if not sys.stdin.isatty():
            out.line("Refusing to apply without confirmation: pass --yes (stdin is not a terminal).")
            return EXIT_ERROR
        answer = input(f"Apply {len(actions)} change(s)? Type 'yes' to continue: ")
        if answer.strip().lower() != "yes":
            out.line("Cancelled; nothing was changed.")
            return EXIT_ERROR
    results = _execute(config, actions, out)
    failed = [r for r in results if r.status == "failed"]
    summary = {s: sum(1 for r in results if r.status == s) for s in ("applied", "failed", "conflict", "gone")}
    if args.json:
        out.json({"applied": summary, "failures": [{"action": r.action.describe(), "error": r.error} for r in failed]})
    else:
        out.line(
            f"Applied {summary['applied']}, failed {summary['failed']}, skipped "
            f"{summary['conflict'] + summary['gone']} (the world moved since the plan)."
        )
        for result in failed:
            out.line(f"failed: {result.action.describe()}: {result.error}")
    return EXIT_ERROR if failed else EXIT_OK


def _execute(config: Config, actions: list[Action], out: Out) -> list[ActionResult]:
    run = _new_run(config, dry_run=False)
    if not out.rich or len(actions) < 20:
        return [run.executor.execute_one(a) for a in actions]
    from rich.progress import Progress

    results = []
    with Progress(console=out._console, transient=True) as progress:
        task = progress.add_task("applying", total=len(actions))
        for action in actions:
            results.append(run.executor.execute_one(action))
            progress.advance(task)
    return results


# -- explain ---------------------------------------------------------------------------------------
def cmd_explain(args: argparse.Namespace, out: Out) -> int:
    config = load_config(args.config)
    target = args.resource
    if target.startswith("i-"):
        from rolewarden.explain import explain_instance

        report = explain_instance(config, target)
    elif target.startswith("role/"):
        from rolewarden.explain import explain_role

        report = explain_role(config, target.split("/", 1)[1])
    elif target.startswith("bucket/"):
        from rolewarden.explain import explain_bucket

        report = explain_bucket(config, target.split("/", 1)[1])
    else:
        raise UsageError(f"explain takes i-<id>, role/NAME or bucket/NAME, not {target!r}")
    if args.json:
        out.json(report)
    else:
        _print_report(out, report)
    return EXIT_OK


def _print_report(out: Out, report: dict[str, Any], indent: str = "") -> None:
    for key, value in report.items():
        if isinstance(value, dict):
            out.line(f"{indent}{key}:")
            _print_report(out, value, indent + "  ")
        elif isinstance(value, list):
            out.line(f"{indent}{key}:" + ("" if value else " (none)"))
            for item in value:
                if isinstance(item, dict):
                    out.line(f"{indent}  -")
                    _print_report(out, item, indent + "    ")
                else:
                    out.line(f"{indent}  - {item}")
        else:
            out.line(f"{indent}{key}: {value}")


# -- validate --------------------------------------------------------------------------------------
def cmd_validate(args: argparse.Namespace, out: Out) -> int:
    path = args.file or args.config or os.environ.get("ROLEWARDEN_CONFIG") or DEFAULT_CONFIG
    try:
        config = load_config(path)
    except ConfigError as exc:
        if args.json:
            out.json({"valid": False, "problems": str(exc).splitlines()[1:] or [str(exc)]})
        else:
            out.line(str(exc))
        return EXIT_ERROR
    problems: list[str] = []
    if not args.offline:
        from rolewarden.validate import account_problems

        problems = account_problems(config)
    if args.json:
        out.json({"valid": not problems, "problems": problems})
    elif problems:
        out.line(f"config {path}: {len(problems)} problem(s) against the account:")
        for problem in problems:
            out.line(f"  {problem}")
    else:
        out.line(f"config {path} is valid" + ("" if args.offline else " and consistent with the account"))
    return EXIT_ERROR if problems else EXIT_OK


# -- history / rollback ----------------------------------------------------------------------------
def _role_name(resource: str) -> str:
    if not resource.startswith("role/") or len(resource) <= 5:
        raise UsageError(f"expected role/NAME, got {resource!r}")
    return resource.split("/", 1)[1]


def cmd_history(args: argparse.Namespace, out: Out) -> int:
    from rolewarden.capabilities import compliance

    records = compliance.history(_role_name(args.resource))
    if args.json:
        out.json(records)
        return EXIT_OK
    if not records:
        out.line(f"no records for {args.resource}")
        return EXIT_OK
    rows = []
    for rec in records:
        data = rec.get("data", {}) if isinstance(rec, dict) else {}
        rules = ", ".join(sorted({f.get("rule", "") for f in data.get("findings", []) if isinstance(f, dict)}))
        rows.append(
            [rec.get("record_id", ""), rec.get("time", ""), rec.get("kind", ""), rules or "-", data.get("trigger", "")]
        )
    out.table(f"history of {args.resource}", ["record", "time", "kind", "rules", "trigger"], rows)
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace, out: Out) -> int:
    from rolewarden.capabilities import compliance

    result = compliance.rollback(_role_name(args.resource), args.to)
    if args.json:
        out.json(result)
    else:
        _print_report(out, result if isinstance(result, dict) else {"result": result})
    return EXIT_OK


# -- entry point -----------------------------------------------------------------------------------
class UsageError(RoleWardenError):
    pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rolewarden", description="IAM for EC2 that runs itself.")
    parser.add_argument("--config", help=f"config file or ssm:<name> (default: $ROLEWARDEN_CONFIG or {DEFAULT_CONFIG})")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Callable[[argparse.Namespace, Out], int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(func=func)
        return p

    p = add("validate", cmd_validate, "check the config's schema, then its references against the account")
    p.add_argument("file", nargs="?", help="config file (default: --config, $ROLEWARDEN_CONFIG, or the repo's)")
    p.add_argument("--offline", action="store_true", help="schema only; no AWS calls")
    for name, func, text in (
        ("plan", cmd_plan, "show what a sweep would change (writes nothing)"),
        ("apply", cmd_apply, "plan, confirm, apply"),
    ):
        p = add(name, func, text)
        p.add_argument("--only", choices=sorted(ONLY), help="one capability")
        if name == "apply":
            p.add_argument("--yes", action="store_true", help="apply without asking")
    p = add("explain", cmd_explain, "why a resource is as it is and what RoleWarden would do")
    p.add_argument("resource", help="i-…, role/NAME or bucket/NAME")
    p = add("history", cmd_history, "recorded remediations of a role")
    p.add_argument("resource", help="role/NAME")
    p = add("rollback", cmd_rollback, "restore a role to a recorded state")
    p.add_argument("resource", help="role/NAME")
    p.add_argument("--to", help="record id (default: the newest remediation)")
    return parser


def _aws_error(exc: Exception) -> str:
    if isinstance(exc, NoCredentialsError):
        return (
            "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
            "(or log in with aws sso login)"
        )
    if isinstance(exc, NoRegionError):
        return "no AWS region: set AWS_REGION or AWS_DEFAULT_REGION, or pass a profile that has one"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        op = exc.operation_name
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            service = exc.response.get("ResponseMetadata", {}).get("ServiceName") or _service_of(exc)
            return f"access denied: the caller lacks the permission {service}:{op} ({error.get('Message', '')})"
        if code in ("Throttling", "RequestLimitExceeded", "ThrottlingException", "SlowDown"):
            return f"AWS throttled {op} even after retries ({code}); retry later, or set ROLEWARDEN_RETRY_MODE=adaptive"
        return f"{op} failed: {code}: {error.get('Message', '')}"
    return f"AWS call failed: {exc}"


def _service_of(exc: ClientError) -> str:
    text = str(exc)
    for prefix in ("ec2", "iam", "s3", "sts", "autoscaling", "sqs", "dynamodb", "sns"):
        if f"{prefix}." in text.lower() or f"{prefix}:" in text.lower():
            return prefix
    return "<service>"


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_logging()
    args = _parser().parse_args(argv)
    if args.config is None and args.command != "validate":
        args.config = os.environ.get("ROLEWARDEN_CONFIG") or DEFAULT_CONFIG
    out = Out(as_json=args.json)
    try:
        return int(args.func(args, out))
    except (ConfigError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except RetryableError as exc:
        from rolewarden.aws.errors import DENIED_CODES, THROTTLING_CODES

        if exc.code in DENIED_CODES:
            print(f"error: access denied, a permission is missing: {exc}", file=sys.stderr)
        elif exc.code in THROTTLING_CODES:
            print(f"error: AWS kept throttling after retries: {exc}", file=sys.stderr)
        else:
            print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (ClientError, BotoCoreError) as exc:
        print(f"error: {_aws_error(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
