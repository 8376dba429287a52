"""`rolewarden`: the operator's command line. Same config, same decision code, same executor as the
Lambda handlers; no second implementation.

    rolewarden validate [CONFIG] [--offline]               schema + checks against the account; exit 1 on problems
    rolewarden plan [--only CAP] [--json]                  what a sweep would do; exit 0 nothing, 2 changes, 1 error
    rolewarden apply [--only CAP] [--yes] [--table T]      the same plan, confirmed, then applied
    rolewarden explain i-…|role/NAME|bucket/NAME           why a resource is as it is and what RoleWarden would do
    rolewarden history role/NAME [--table T]               recorded remediations and rollbacks of a role
    rolewarden rollback role/NAME [--to RECORD] [--dry-run] [--table T]   restore a recorded state
    rolewarden breaker status [--table T]                  the compliance circuit breaker: tripped?, this window's count
    rolewarden breaker reset --reason TEXT [--table T]     close a tripped breaker now (recorded)

Works against a real account (profile, region, credential chain) and a local endpoint (AWS_ENDPOINT_URL).

``plan`` runs each capability's sweep with a dry-run executor. ``apply`` shows that plan, asks, and then
runs the same sweeps again with a real executor that carries out only the actions the plan showed (each at
most once): the capabilities' own code applies them, so remediations record the prior state exactly as the
Lambda function does, and an action the account no longer calls for, or a new one, is not carried out.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from rolewarden import capabilities
from rolewarden.aws.executor import ActionResult, Executor
from rolewarden.capabilities.base import Run
from rolewarden.config import Config, load_config
from rolewarden.errors import ConfigError, RoleWardenError
from rolewarden.model.actions import Action
from rolewarden.model.findings import Finding
from rolewarden.model.targets import SWEEP, Target
from rolewarden.telemetry import Sink

ONLY = {"profiles": "instance_profiles", "grants": "bucket_grants", "compliance": "role_compliance"}
DEFAULT_CONFIG = "config/rolewarden.yaml"
EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
#: ``breaker status`` when the breaker is tripped (scripts and monitors can test it).
EXIT_TRIPPED = 3
#: Applies of at least this many actions show a progress bar on a terminal.
PROGRESS_THRESHOLD = 20

DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"})
REJECTED_CREDENTIALS = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException", "AuthFailure"}
)
THROTTLED = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "SlowDown",
        "TooManyRequestsException",
        "RequestThrottled",
        "EC2ThrottledException",
        "ProvisionedThroughputExceededException",
    }
)
#: IAM action names that differ from the API operation's name.
_IAM_ACTION = {
    "s3:GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "s3:ListBuckets": "s3:ListAllMyBuckets",
    "s3:HeadBucket": "s3:ListBucket",
}


class UsageError(RoleWardenError):
    pass


# -- output --------------------------------------------------------------------------------------
class Out:
    """Tables and colour on a terminal, plain text when piped, one JSON document for scripts.
    Warnings and errors go to stderr, so stdout stays parseable."""

    def __init__(self, as_json: bool = False, stream: Any = None, errors: Any = None) -> None:
        self.stream = stream or sys.stdout
        self.errors = errors or sys.stderr
        self.as_json = as_json
        self._console: Any = None
        if not as_json and _isatty(self.stream) and os.environ.get("NO_COLOR") is None:
            try:
                from rich.console import Console
            except ImportError:  # rich is optional: plain text without it
                pass
            else:
                self._console = Console(file=self.stream)

    @property
    def rich(self) -> bool:
        return self._console is not None

    def line(self, text: str = "", style: str = "") -> None:
        if self.as_json:
            return
        if self._console is not None:
            self._console.print(text, style=style or None, highlight=False, markup=False)
        else:
            print(text, file=self.stream)

    def warn(self, text: str) -> None:
        print(f"warning: {text}", file=self.errors)

    def error(self, text: str) -> None:
        print(f"error: {text}", file=self.errors)

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
        widths = [min(max(len(str(c)), *(len(str(r[i])) for r in rows)), 80) for i, c in enumerate(columns)]
        print("  ".join(str(c).ljust(widths[i]) for i, c in enumerate(columns)).rstrip(), file=self.stream)
        for row in rows:
            print("  ".join(str(v).ljust(widths[i]) for i, v in enumerate(row)).rstrip(), file=self.stream)
        print(file=self.stream)

    def json(self, data: Any) -> None:
        print(json.dumps(data, indent=2, sort_keys=True, default=str), file=self.stream)


def _isatty(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@contextmanager
def _quiet_logging() -> Iterator[None]:
    """RoleWarden's log lines to stderr at ROLEWARDEN_LOG_LEVEL (default ERROR) while a command runs; the
    logger is put back afterwards (main() is also called in process, by tests and the demo)."""
    logger = logging.getLogger("rolewarden")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(os.environ.get("ROLEWARDEN_LOG_LEVEL", "ERROR").upper())
    logger.propagate = False
    try:
        yield
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved


# -- AWS errors ----------------------------------------------------------------------------------
@cache
def _service_of_operation(operation: str) -> str:
    """The IAM prefix of the service that defines ``operation`` (among those RoleWarden calls)."""
    import botocore.session

    session = botocore.session.get_session()
    for service in ("ec2", "iam", "s3", "dynamodb", "autoscaling", "sts", "sqs", "sns", "ssm"):
        model = session.get_service_model(service)
        if operation in model.operation_names:
            return str(model.signing_name)
    return "<service>"


def _permission(service: str, operation: str) -> str:
    name = f"{service}:{operation}"
    return _IAM_ACTION.get(name, name)


@dataclass
class FailedCall:
    permission: str
    code: str
    message: str


class CallErrors:
    """Every AWS call of RoleWarden's clients that ended in an error (after botocore's retries), by the
    IAM permission it needed and the error code. Capabilities turn errors into outcomes with a message;
    this keeps the code and the exact permission, so the command line can say what is missing."""

    def __init__(self) -> None:
        self.failed: list[FailedCall] = []

    def after_call(self, http_response: Any = None, parsed: Any = None, model: Any = None, **_: Any) -> None:
        if http_response is None or model is None or int(getattr(http_response, "status_code", 200)) < 300:
            return
        error = (parsed or {}).get("Error", {}) if isinstance(parsed, dict) else {}
        self.failed.append(
            FailedCall(
                _permission(str(model.service_model.signing_name), str(model.name)),
                str(error.get("Code", "")),
                str(error.get("Message", "")),
            )
        )

    def after_error(self, exception: Exception | None = None, **_: Any) -> None:
        if isinstance(exception, NoCredentialsError):
            self.failed.append(FailedCall("", "NoCredentials", str(exception)))

    def explain(self) -> list[str]:
        """One line per distinct kind of failure (access denied, throttled, rejected credentials)."""
        lines: dict[str, None] = {}
        for call in self.failed:
            line = _explain_code(call.permission, call.code, call.message)
            if line:
                lines[line] = None
        return list(lines)


def _explain_code(permission: str, code: str, message: str) -> str:
    if code in DENIED:
        return f"access denied: the caller lacks the permission {permission} ({code}: {message})"
    if code in REJECTED_CREDENTIALS:
        return f"the AWS credentials were rejected ({code}: {message}); refresh them (e.g. aws sso login)"
    if code in THROTTLED:
        return (
            f"AWS kept throttling {permission} after retries ({code}); retry later, "
            "or set ROLEWARDEN_RETRY_MODE=adaptive and ROLEWARDEN_MAX_ATTEMPTS higher"
        )
    if code == "NoCredentials":
        return NO_CREDENTIALS
    return ""


NO_CREDENTIALS = (
    "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
    "(or log in with aws sso login)"
)
NO_REGION = "no AWS region: set AWS_DEFAULT_REGION, or use a profile (AWS_PROFILE) whose config names a region"


@contextmanager
def _watching() -> Iterator[CallErrors]:
    from rolewarden.aws import clients

    errors = CallErrors()
    clients.add_hook("after-call", errors.after_call)
    clients.add_hook("after-call-error", errors.after_error)
    try:
        yield errors
    finally:
        clients.remove_hook("after-call", errors.after_call)
        clients.remove_hook("after-call-error", errors.after_error)


def _preflight() -> None:
    """A region and some credentials, before the first call: clearer than the first call's failure."""
    from rolewarden.aws.clients import session

    current = session()
    if not current.region_name:
        raise _Preflight(NO_REGION)
    if current.get_credentials() is None:
        raise _Preflight(NO_CREDENTIALS)


class _Preflight(RoleWardenError):
    pass


def _aws_error(exc: BaseException) -> str:
    if isinstance(exc, NoCredentialsError):
        return NO_CREDENTIALS
    if isinstance(exc, NoRegionError):
        return NO_REGION
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", ""))
        permission = _permission(_service_of_operation(exc.operation_name), exc.operation_name)
        return _explain_code(permission, code, message) or f"{permission} failed: {code}: {message}"
    return f"AWS call failed: {type(exc).__name__}: {exc}"


# -- plan ------------------------------------------------------------------------------------------
@dataclass
class CapabilityPlan:
    capability: str
    actions: list[Action] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def _new_run(config: Config, executor: Executor) -> Run:
    return Run(config=config, sink=executor.sink, executor=executor, trigger="cli")


def make_plan(config: Config, only: Sequence[str]) -> list[CapabilityPlan]:
    """Run each capability's sweep with a dry-run executor: the actions it would take, and its findings.

    An action already planned by an earlier capability is not listed again: role compliance hands drifted
    grant policies to the grants code, which the bucket-grants sweep plans as well."""
    plans = []
    seen: set[Action] = set()
    for name in only:
        sink = Sink()
        run = _new_run(config, Executor(sink=sink, dry_run=True, trigger="cli"))
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


def _plan_json(config: Config, plans: list[CapabilityPlan]) -> dict[str, Any]:
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


def _show_plan(out: Out, plans: list[CapabilityPlan]) -> None:
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


def _report_failures(out: Out, plans: list[CapabilityPlan], errors: CallErrors) -> None:
    if any(p.failures for p in plans):
        for line in errors.explain():
            out.error(line)


def _only(args: argparse.Namespace) -> list[str]:
    return [ONLY[args.only]] if args.only else list(ONLY.values())


def cmd_plan(args: argparse.Namespace, out: Out, errors: CallErrors) -> int:
    config = load_config(args.config)
    plans = make_plan(config, _only(args))
    if args.json:
        out.json(_plan_json(config, plans))
    else:
        _show_plan(out, plans)
    _report_failures(out, plans, errors)
    if any(p.failures for p in plans):
        return EXIT_ERROR
    return EXIT_CHANGES if any(p.actions for p in plans) else EXIT_OK


# -- apply -----------------------------------------------------------------------------------------
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


@contextmanager
def _state_table(table: str | None) -> Iterator[None]:
    """The capabilities' Recorder reads ROLEWARDEN_TABLE: set it from --table for the duration."""
    saved = os.environ.get("ROLEWARDEN_TABLE")
    if table:
        os.environ["ROLEWARDEN_TABLE"] = table
    try:
        yield
    finally:
        if table:
            if saved is None:
                os.environ.pop("ROLEWARDEN_TABLE", None)
            else:
                os.environ["ROLEWARDEN_TABLE"] = saved


def cmd_apply(args: argparse.Namespace, out: Out, errors: CallErrors) -> int:
    config = load_config(args.config)
    plans = make_plan(config, _only(args))
    report = _plan_json(config, plans)
    if not args.json:
        _show_plan(out, plans)
    _report_failures(out, plans, errors)
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
        if not _isatty(sys.stdin):
            message = "refusing to apply without confirmation: pass --yes (stdin is not a terminal); nothing changed"
            return stop(EXIT_ERROR, message, problem=True)
        answer = input(f"Apply {len(actions)} change(s)? Type 'yes' to continue: ")
        if answer.strip().lower() != "yes":
            return stop(EXIT_ERROR, "Cancelled; nothing was changed.")
    table = args.table or os.environ.get("ROLEWARDEN_TABLE")
    if not table and any(p.capability == "role_compliance" and p.actions for p in plans):
        out.warn(
            "no state table (--table or ROLEWARDEN_TABLE): the prior state of remediated roles is only logged, "
            "so `rolewarden rollback` will not find it"
        )
    with _state_table(args.table):
        executor, failures = _execute(config, plans, out)
    code = _summarise(args, out, report, executor, failures, errors)
    return EXIT_ERROR if plan_failed else code


def _recheck_targets(actions: Sequence[Action]) -> list[Target]:
    """The resources the planned actions touch, when re-reading only those (not the whole account a
    second time) is enough to decide them again; otherwise the sweep."""
    targets = [a.target for a in actions]
    if any(t is None for t in targets):
        return [SWEEP]
    return list(dict.fromkeys(t for t in targets if t is not None))


def _execute(config: Config, plans: list[CapabilityPlan], out: Out) -> tuple[PlannedOnly, list[str]]:
    """Each capability decides the planned resources again (its own code: records, conflicts, circuit
    breaker), through an executor that carries out only the plan's actions."""
    total = sum(len(p.actions) for p in plans)
    executor = PlannedOnly(sink=Sink(), trigger="cli", approved=Counter(a for p in plans for a in p.actions))
    failures: list[str] = []

    def run_all() -> None:
        for plan in plans:
            if plan.actions:
                targets = _recheck_targets(plan.actions)
                outcomes = capabilities.get(plan.capability).reconcile(_new_run(config, executor), targets)
                failures.extend(f"{plan.capability}: {o.message}" for o in outcomes.values() if o.status != "ok")

    if not out.rich or total < PROGRESS_THRESHOLD:
        run_all()
        return executor, failures
    from rich.progress import Progress

    with Progress(console=out._console, transient=True) as progress:
        task = progress.add_task("applying", total=total)
        executor.tick = lambda: progress.advance(task)
        run_all()
    return executor, failures


def _summarise(
    args: argparse.Namespace,
    out: Out,
    report: dict[str, Any],
    executor: PlannedOnly,
    failures: list[str],
    errors: CallErrors,
) -> int:
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


# -- explain ---------------------------------------------------------------------------------------
def cmd_explain(args: argparse.Namespace, out: Out, errors: CallErrors) -> int:
    from rolewarden import explain

    config = load_config(args.config)
    target = args.resource
    kind, _, name = target.partition("/")
    if target.startswith("i-"):
        report = explain.explain_instance(config, target)
    elif kind == "role" and name:
        report = explain.explain_role(config, name)
    elif kind == "bucket" and name:
        report = explain.explain_bucket(config, name)
    else:
        raise UsageError(f"explain takes i-<id>, role/NAME or bucket/NAME, not {target!r}")
    if args.json:
        out.json(report)
    else:
        _print_report(out, report)
    return EXIT_OK


def _print_report(out: Out, report: dict[str, Any], indent: str = "", first: str = "") -> None:
    """Nested dicts and lists as indented YAML-like lines (``first`` prefixes the first line: a list dash)."""
    for key, value in report.items():
        lead, first = (first or indent), ""
        if isinstance(value, dict):
            out.line(f"{lead}{key}:" + ("" if value else " (none)"))
            _print_report(out, value, indent + "  ")
        elif isinstance(value, list):
            out.line(f"{lead}{key}:" + ("" if value else " (none)"))
            for item in value:
                if isinstance(item, dict):
                    _print_report(out, item, indent + "    ", first=indent + "  - ")
                else:
                    out.line(f"{indent}  - {item}")
        else:
            out.line(f"{lead}{key}: {value}")


# -- validate --------------------------------------------------------------------------------------
def cmd_validate(args: argparse.Namespace, out: Out, errors: CallErrors) -> int:
    from rolewarden.validate import account_problems, offline_problems

    path = args.file or args.config or os.environ.get("ROLEWARDEN_CONFIG") or DEFAULT_CONFIG
    try:
        config = load_config(path)
    except ConfigError as exc:
        lines = str(exc).splitlines()
        problems = [line.strip() for line in lines[1:]] or [str(exc)]
        if args.json:
            out.json({"config": path, "valid": False, "problems": problems})
        else:
            for line in lines:
                out.line(line)
        return EXIT_ERROR
    problems = offline_problems(config)
    if not args.offline:
        _preflight()
        problems += account_problems(config)
    deprecated = config.compliance.deprecations()  # accepted, but to be rewritten: not a problem
    if args.json:
        out.json({"config": path, "valid": not problems, "problems": problems, "deprecated": deprecated})
        return EXIT_ERROR if problems else EXIT_OK
    for message in deprecated:
        out.warn(message)
    if problems:
        where = "" if args.offline else " (checked against the account)"
        out.line(f"config {path}: {len(problems)} problem(s){where}:")
        for problem in problems:
            out.line(f"  {problem}")
    else:
        out.line(f"config {path} is valid" + ("" if args.offline else " and consistent with the account"))
    return EXIT_ERROR if problems else EXIT_OK


# -- history / rollback ----------------------------------------------------------------------------
def _role_name(resource: str) -> str:
    kind, _, name = resource.partition("/")
    if kind != "role" or not name:
        raise UsageError(f"expected role/NAME, got {resource!r}")
    return name


def _table(args: argparse.Namespace) -> str:
    table = args.table or os.environ.get("ROLEWARDEN_TABLE")
    if not table:
        raise UsageError(
            f"{args.command} reads RoleWarden's state table: pass --table NAME or set ROLEWARDEN_TABLE "
            "(the stack's StateTableName output)"
        )
    return str(table)


def cmd_history(args: argparse.Namespace, out: Out, errors: CallErrors) -> int:
    from rolewarden.operator import compliance

    name = _role_name(args.resource)
    records = compliance.history(f"role/{name}", table=_table(args))
    # Newest first across kinds (the table sorts by kind first, then time).
    records.sort(key=lambda r: (str(r.get("time", "")), str(r.get("record_id", ""))), reverse=True)
    if args.json:
        out.json(records)
        return EXIT_OK
    if not records:
        out.line(f"no records for role/{name}")
        return EXIT_OK
    rows = []
    for rec in records:
        rules = sorted({str(f.get("rule", "")) for f in rec.get("findings") or [] if isinstance(f, dict)} - {""})
        what = "; ".join(str(a) for a in rec.get("actions") or []) or "-"
        if rec.get("restored_from"):
            what = f"restored {rec['restored_from']}: {what}"
        rows.append([rec["record_id"], rec["time"], rec["kind"], ", ".join(rules) or "-", rec.get("trigger", ""), what])
    out.table(f"history of role/{name}", ["record", "time", "kind", "rules", "trigger", "changes"], rows)
    out.line(f"Restore a record's prior state with: rolewarden rollback role/{name} --to RECORD")
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace, out: Out, errors: CallErrors) -> int:
    from rolewarden.operator import compliance

    name = _role_name(args.resource)
    table = _table(args)
    config = load_config(args.config)
    result = compliance.rollback(name, args.to, config=config, dry_run=args.dry_run, table=table)
    enforced = [v for v in result["violations_after"] if v.get("mode") == "enforce"]
    if args.json:
        out.json(result)
    else:
        steps = result["steps"]
        verb = "would restore" if result["dry_run"] else "restored"
        out.line(f"role {result['role']}: {verb} record {result['restored_from']} ({len(steps)} step(s))")
        for step in steps:
            out.line(f"  {step['step']}: {_step_value(step)}")
        if not result["dry_run"]:
            out.line(f"verified: {'yes' if result['verified'] else 'NO: the role differs from the record'}")
            if result["record_id"]:
                out.line(f"recorded as {result['record_id']} (roll this back with --to {result['record_id']})")
        for violation in result["violations_after"]:
            if violation.get("mode") != "enforce":
                out.line(f"  the restored state breaks {violation['rule']} (report only): {violation['message']}")
    for violation in enforced:
        out.warn(
            f"the restored state breaks {violation['rule']} (enforce): {violation['message']}; RoleWarden will "
            "remediate it again at the next event or sweep unless the rule is set to report or the role is "
            "added to compliance.protected_roles"
        )
    return EXIT_OK if result["dry_run"] or result["verified"] else EXIT_ERROR


# -- circuit breaker -------------------------------------------------------------------------------
def _operator() -> str:
    """Who runs the command, for the reset record: the caller's ARN (sts:GetCallerIdentity)."""
    from rolewarden.aws.clients import client

    try:
        return str(client("sts").get_caller_identity()["Arn"])
    except (ClientError, BotoCoreError) as exc:
        return f"unknown (sts:GetCallerIdentity failed: {type(exc).__name__})"


def cmd_breaker(args: argparse.Namespace, out: Out, errors: CallErrors) -> int:
    from rolewarden import breaker

    table = _table(args)
    config = load_config(args.config)
    if args.action == "reset":
        if not args.reason or not args.reason.strip():
            raise UsageError("breaker reset needs --reason TEXT (it is recorded with who reset it)")
        result = breaker.reset(config, table, args.reason.strip(), _operator())
        if args.json:
            out.json(result)
            return EXIT_OK
        if result["was_tripped"]:
            trip = result["previous_trip"] or {}
            out.line(f"circuit breaker reset: it had tripped ({trip.get('cause', '?')}); remediation resumes now")
        else:
            out.line("circuit breaker was not tripped; this window's count is cleared")
        out.line(f"cleared {result['remediations_cleared']} remediation(s) counted in this window")
        out.line(f"recorded as {result['record_id']} (operator {result['operator']}, reason: {result['reason']})")
        return EXIT_OK
    state = breaker.status(config, table)
    if args.json:
        out.json(state)
        return EXIT_TRIPPED if state["tripped"] else EXIT_OK
    window = state["window"]
    limit = f"{state['limit']} per {state['window_minutes']} min"
    if state["tripped"]:
        trip = state["trip"]
        out.line(f"circuit breaker: TRIPPED at {trip['tripped_at']} ({trip['cause']}), until {trip['until']}")
        if trip["roles"]:
            out.line(f"  roles withheld when it tripped: {', '.join(trip['roles'][:20])}")
        out.line("  reset with: rolewarden breaker reset --reason TEXT")
    else:
        out.line("circuit breaker: closed (remediating)")
    out.line(
        f"this window {window['start']} .. {window['end']}: {window['remediations']} of {limit}"
        + (" (closed by a trip)" if window["closed"] else "")
    )
    if state["history"]:
        rows = [
            [h["record_id"], h["time"], h["kind"], str(h.get("cause") or h.get("reason") or ""), h.get("operator", "")]
            for h in state["history"]
        ]
        out.table("recent trips and resets", ["record", "time", "kind", "cause or reason", "operator"], rows)
    return EXIT_TRIPPED if state["tripped"] else EXIT_OK


def _step_value(step: dict[str, Any]) -> str:
    value = step.get("value")
    if step.get("step") == "put-inline" and isinstance(value, (list, tuple)) and len(value) == 2:
        return f"{value[0]} {json.dumps(value[1], sort_keys=True)}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return "" if value is None else str(value)


# -- entry point -----------------------------------------------------------------------------------
Command = Callable[[argparse.Namespace, Out, CallErrors], int]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rolewarden", description="IAM for EC2 that runs itself.")
    parser.add_argument("--config", help=f"config file or ssm:<name> (default: $ROLEWARDEN_CONFIG or {DEFAULT_CONFIG})")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Command, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="machine-readable output (one JSON document)")
        p.set_defaults(func=func)
        return p

    def table_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument("--table", help="the state table (default: $ROLEWARDEN_TABLE; the stack's StateTableName)")

    p = add("validate", cmd_validate, "check the config's schema, then its references against the account")
    p.add_argument("file", nargs="?", help="config file (default: --config, $ROLEWARDEN_CONFIG, or the repo's)")
    p.add_argument("--offline", action="store_true", help="schema and S3 actions only; no AWS calls")
    p = add("plan", cmd_plan, "show what a sweep would change (writes nothing); exit 0 nothing, 2 changes, 1 error")
    p.add_argument("--only", choices=sorted(ONLY), help="one capability")
    p = add("apply", cmd_apply, "plan, confirm, apply exactly the plan's actions")
    p.add_argument("--only", choices=sorted(ONLY), help="one capability")
    p.add_argument("--yes", action="store_true", help="apply without asking")
    table_flag(p)
    p = add("explain", cmd_explain, "why a resource is as it is and what RoleWarden would do")
    p.add_argument("resource", help="i-…, role/NAME or bucket/NAME")
    p = add("history", cmd_history, "recorded remediations and rollbacks of a role, newest first")
    p.add_argument("resource", help="role/NAME")
    table_flag(p)
    p = add("rollback", cmd_rollback, "restore a role to a recorded state (itself recorded, so it can be undone)")
    p.add_argument("resource", help="role/NAME")
    p.add_argument("--to", help="record id (default: the newest remediation)")
    p.add_argument("--dry-run", action="store_true", help="list the steps; change nothing")
    table_flag(p)
    p = add("breaker", cmd_breaker, "the compliance circuit breaker: status (exit 3 when tripped), or reset it")
    p.add_argument("action", choices=["status", "reset"])
    p.add_argument("--reason", help="reset: why (recorded with the operator's identity)")
    table_flag(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with _quiet_logging():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    if args.config is None and args.command != "validate":
        args.config = os.environ.get("ROLEWARDEN_CONFIG") or DEFAULT_CONFIG
    out = Out(as_json=args.json)
    with _watching() as errors:
        try:
            if args.command not in ("validate", "history"):  # history reads only the state table
                load_config(args.config)  # a config problem is reported before any AWS problem
            if args.command != "validate":
                _preflight()
            return int(args.func(args, out, errors))
        except (ClientError, BotoCoreError) as exc:
            out.error(_aws_error(exc))
        except RoleWardenError as exc:
            explained = errors.explain()
            if not explained and isinstance(exc.__cause__, (ClientError, BotoCoreError)):
                explained = [_aws_error(exc.__cause__)]
            for line in explained or [str(exc)]:
                out.error(line)
        except KeyboardInterrupt:
            out.error("interrupted")
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
