"""``--account`` (issue 14): the accounts a command acts in, each admitted and entered exactly as the
Lambda functions admit and enter the account of an event (``rolewarden.account_runs``).

    --account ID[,ID…]   repeatable; ``all``: every account of the organization the config admits

Without ``--account`` a command acts where the credentials are, as it always has (one place, output
not grouped). With it, the config's ``accounts.mode`` decides:

- ``single``: RoleWarden acts only in its own account, the caller's (STS GetCallerIdentity); naming
  another is refused, with the reason ``account_runs.admission`` gives.
- ``central``: each named account is checked against the organization and the config's lists
  (``account_runs.admission``); one refused account refuses the whole command, before anything is read
  or changed. Each admitted account is entered through its execution role (``account_runs.enter``: the
  account's effective config, and the scope that makes ``aws.clients.client`` act there); an account
  whose role is missing or refuses RoleWarden is one error line, and the command runs in the others.

A command runs once per place, inside ``Where.acting()``; its output is one section per account, and
its JSON ``{"accounts": {"<id>": …}}`` (``Places.document``).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rolewarden import account_runs
from rolewarden.accounts_config import ACCOUNT_ID_RE
from rolewarden.aws import clients
from rolewarden.aws.accounts import AccountUnavailable
from rolewarden.cli.errors import UsageError
from rolewarden.cli.output import Out
from rolewarden.config import Config
from rolewarden.settings import current

ALL = "all"
FLAG_HELP = (
    "act in this account (repeatable, or a comma list; 'all': every account of the organization the config "
    "admits, in accounts.mode: central); output is grouped by account"
)


#: The commands that take ``--account``.
COMMANDS = ("plan", "apply", "explain", "history", "rollback")


def add_flag(parser: argparse.ArgumentParser, dest: str = "account") -> None:
    """``--account`` on a command's parser, or (``dest="global_account"``) before the command."""
    parser.add_argument("--account", dest=dest, action="append", metavar="ID", help=FLAG_HELP)


def named(args: argparse.Namespace) -> list[str] | None:
    """The ``--account`` values (given before or after the command) as account ids (and ``all``), in the
    order given, once each; None without the flag."""
    values = [*(getattr(args, "global_account", None) or []), *(getattr(args, "account", None) or [])]
    if not values:
        return None
    if args.command not in COMMANDS:
        raise UsageError(f"--account is for {', '.join(COMMANDS)}; {args.command} acts where the credentials are")
    found: list[str] = []
    for value in values:
        for part in (p.strip() for p in str(value).split(",")):
            if not part:
                continue
            if part.lower() == ALL:
                part = ALL
            elif not ACCOUNT_ID_RE.match(part):
                raise UsageError(
                    f"--account takes 12-digit account ids (or a comma list of them, or all), not {part!r}"
                )
            found.append(part)
    if not found:
        raise UsageError("--account needs an account id, a comma list of them, or all")
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class RecordsOnly:
    """The scope of an account's records in RoleWarden's own state table (``aws.clients.scoped_key``),
    for commands that read only them (history): no execution role is assumed, so no client acts there."""

    account: str
    home: bool

    def client(self, service: str) -> Any:
        raise UsageError(f"reading the records of account {self.account} makes no {service} call there")


@dataclass(frozen=True)
class Where:
    """One place a command acts in: the account (None without ``--account``), its effective config, and
    the scope its AWS calls act in (None: the caller's own clients)."""

    account: str | None
    config: Config
    scope: clients.AccountScope | None = None

    @contextmanager
    def acting(self) -> Iterator[None]:
        """Every ec2/autoscaling/iam/s3 call of the block acts in this account."""
        with clients.acting_in(self.scope):
            yield

    def header(self, out: Out) -> None:
        """The line that opens this account's section of the output (none without ``--account``)."""
        if self.account is not None:
            out.line(f"== account {self.account} ==")


@dataclass
class Places:
    """Where a command runs: its places, and the named accounts it could not enter (id -> reason)."""

    wheres: list[Where]
    grouped: bool = False
    unavailable: dict[str, str] = field(default_factory=dict)

    def document(self, parts: dict[str | None, Any]) -> Any:
        """The command's JSON: today's document without ``--account``; grouped by account with it."""
        if not self.grouped:
            return parts[None]
        found: dict[str, Any] = {"accounts": {str(k): v for k, v in parts.items()}}
        if self.unavailable:
            found["unavailable"] = dict(self.unavailable)
        return found


def resolve(args: argparse.Namespace, config: Config, out: Out, *, assume: bool = True) -> Places | None:
    """The places ``args.account`` names (see the module's docstring), or None when an account is
    refused (each refusal is written to ``out``; nothing has been read in any account). ``assume``:
    enter each account through its execution role (False: only its records are read)."""
    wanted = named(args)
    if wanted is None:
        return Places([Where(None, config)])
    settings = current()
    if config.accounts.mode == "single":
        own = account_runs.home_account(settings)  # the caller's account (STS), unless the stack names it
        settings = dataclasses.replace(settings, account_id=own)
        accounts = [own if a == ALL else a for a in wanted]
    elif ALL in wanted:
        admitted, skipped = account_runs.sweep_accounts(config, settings)
        for verdict in skipped:
            out.warn(f"account {verdict.account} is left out: {verdict.reason}")
        accounts = [*admitted, *(a for a in wanted if a != ALL and a not in admitted)]
    else:
        accounts = wanted
    accounts = list(dict.fromkeys(accounts))
    refused = [v for v in (account_runs.admission(a, config, settings) for a in accounts) if not v.admitted]
    for verdict in refused:
        out.error(f"account {verdict.account} is refused: {verdict.reason}; nothing was done in any account")
    if refused:
        return None
    if config.accounts.mode == "single":
        return Places([Where(a, config) for a in accounts], grouped=True)
    places = Places([], grouped=True)
    home = account_runs.home_account(settings)
    for account in accounts:
        if not assume:
            places.wheres.append(Where(account, config, RecordsOnly(account, home=account == home)))
            continue
        try:
            inside = account_runs.enter(account, config, settings)
        except AccountUnavailable as exc:
            out.error(exc.explanation)
            places.unavailable[account] = exc.explanation
            continue
        places.wheres.append(Where(account, inside.config, inside.scope))
    return places
