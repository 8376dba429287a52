"""The console script's entry point (``rolewarden = rolewarden.cli.main:main``): the argument parser,
then one command run with RoleWarden's logging quietened, its AWS calls watched, and every error turned
into one operator-facing line on stderr and exit 1."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError

from rolewarden.cli.accounts import add_flag as account_flag
from rolewarden.cli.accounts import named as named_accounts
from rolewarden.cli.apply import cmd_apply
from rolewarden.cli.breaker import cmd_breaker
from rolewarden.cli.errors import CallErrors, aws_error, preflight, watching
from rolewarden.cli.explain import cmd_explain
from rolewarden.cli.history import cmd_history, cmd_rollback
from rolewarden.cli.locations import DEFAULT_CONFIG, config_path
from rolewarden.cli.output import EXIT_ERROR, Out
from rolewarden.cli.plan import ONLY, cmd_plan
from rolewarden.cli.validate import cmd_validate
from rolewarden.config import load_config
from rolewarden.errors import RoleWardenError
from rolewarden.settings import current

Command = Callable[[argparse.Namespace, Out, CallErrors], int]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rolewarden", description="IAM for EC2 that runs itself.")
    parser.add_argument("--config", help=f"config file or ssm:<name> (default: $ROLEWARDEN_CONFIG or {DEFAULT_CONFIG})")
    account_flag(parser, dest="global_account")  # before the command, or after it: the same
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
    account_flag(p)
    p.add_argument("--only", choices=sorted(ONLY), help="one capability")
    p = add("apply", cmd_apply, "plan, confirm, apply exactly the plan's actions")
    account_flag(p)
    p.add_argument("--only", choices=sorted(ONLY), help="one capability")
    p.add_argument("--yes", action="store_true", help="apply without asking")
    table_flag(p)
    p = add("explain", cmd_explain, "why a resource is as it is and what RoleWarden would do")
    account_flag(p)
    p.add_argument("resource", help="i-…, role/NAME or bucket/NAME")
    p = add("history", cmd_history, "recorded remediations and rollbacks of a role, newest first")
    account_flag(p)
    p.add_argument("resource", help="role/NAME")
    table_flag(p)
    p = add("rollback", cmd_rollback, "restore a role to a recorded state (itself recorded, so it can be undone)")
    account_flag(p)
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


@contextmanager
def _quiet_logging() -> Iterator[None]:
    """RoleWarden's log lines to stderr at ROLEWARDEN_LOG_LEVEL (default ERROR) while a command runs; the
    logger is put back afterwards (main() is also called in process, by tests and the demo)."""
    logger = logging.getLogger("rolewarden")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(current().log_level.upper())
    logger.propagate = False
    try:
        yield
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved


def _run(args: argparse.Namespace) -> int:
    if args.config is None and args.command != "validate":
        args.config = config_path(None)
    out = Out(as_json=args.json)
    with watching() as errors:
        try:
            accounts = named_accounts(args)  # a wrong --account is a usage error first
            # history reads only the state table (and the config only for --account)
            if args.command not in ("validate", "history") or accounts is not None:
                load_config(args.config)  # a config problem is reported before any AWS problem
            if args.command != "validate":
                preflight()
            return int(args.func(args, out, errors))
        except (ClientError, BotoCoreError) as exc:
            out.error(aws_error(exc))
        except RoleWardenError as exc:
            explained = errors.explain()
            if not explained and isinstance(exc.__cause__, (ClientError, BotoCoreError)):
                explained = [aws_error(exc.__cause__)]
            for line in explained or [str(exc)]:
                out.error(line)
        except KeyboardInterrupt:
            out.error("interrupted")
    return EXIT_ERROR
