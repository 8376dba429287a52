"""Which account each record makes RoleWarden act in, and with what (issue 14).

An event acts only in the account it comes from: EventBridge sets ``account`` on every event, and no
customer can put an event with an ``aws.`` source, so a member cannot forge another account's launch.
Mode ``single`` acts in RoleWarden's own account and refuses an event from any other (when the stack
says which account it is in). Mode ``central`` admits an account by the config's organization, OU and
account lists, checked against what AWS Organizations says of it (``decide.accounts.admit``), and acts
there through the member's execution role (``aws.accounts.AccountSessions``, one per container), with the
account's overrides of the config (``decide.accounts.effective_config``). An account whose execution
role is missing or refuses RoleWarden raises ``AccountUnavailable`` here, before anything is read.

The schedule's sweep is fanned out (central mode): one account sweep message per admitted account, on the
sweep queue, each run in an invocation of its own with its own time budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rolewarden.batch import AccountSweep, RecordIn
from rolewarden.capabilities.base import Outcome
from rolewarden.config import Config
from rolewarden.decide.accounts import AccountFacts, Admission, admit, effective_config
from rolewarden.errors import ConfigError, PermanentError, RetryableError
from rolewarden.settings import Settings
from rolewarden.telemetry import Sink

if TYPE_CHECKING:  # the aws modules load only in central mode (cold start: single mode never needs them)
    from rolewarden.aws.accounts import AccountScope, AccountSessions

_sessions: dict[tuple[str, str], AccountSessions] = {}
#: The account STS says RoleWarden runs in, asked once (when the stack does not say it).
_home: list[str] = []


def check_mode(config: Config, settings: Settings) -> None:
    """The stack (``Mode``, ``ExecutionRoleName``) and the config (``accounts``) must agree: a stack that
    forwards members' events to a config that acts in one account, or the reverse, acts nowhere."""
    wanted = config.accounts.mode
    if settings.mode != wanted:
        raise ConfigError(
            f"the stack runs in Mode={settings.mode} but the config says accounts.mode: {wanted}; make them agree"
        )
    if wanted == "central" and config.accounts.execution_role_name != settings.execution_role:
        raise ConfigError(
            f"accounts.execution_role_name {config.accounts.execution_role_name!r} is not the stack's "
            f"ExecutionRoleName {settings.execution_role!r}: the stack may assume only its own"
        )


def home_account(settings: Settings) -> str:
    """The account RoleWarden runs in: the stack says (``ROLEWARDEN_ACCOUNT_ID``), else STS, once."""
    if settings.account_id:
        return settings.account_id
    if not _home:
        from rolewarden.aws.clients import home_client

        _home.append(str(home_client("sts").get_caller_identity()["Account"]))
    return _home[0]


def account_of(account: str, settings: Settings) -> str:
    """The account a record acts in: the one its event names; RoleWarden's own when it names none."""
    return account or settings.account_id


def admission(account: str, config: Config, settings: Settings) -> Admission:
    """May RoleWarden act in ``account``? Central mode asks Organizations (cached; a read error raises)."""
    accounts = config.accounts
    if accounts.mode == "single":
        home = settings.account_id
        if not home or not account or account == home:
            return Admission(account or home, True, "RoleWarden's own account (accounts.mode: single)")
        return admit(account, accounts, home_account=home)
    from rolewarden.aws import organizations

    reader = organizations.reader()
    org = reader.organization()
    listed = account in org.accounts
    needs_ous = bool(accounts.include_ous or accounts.exclude_ous)
    ous = reader.ancestors(account) if needs_ous and listed else None
    facts = AccountFacts(organization_id=org.id, ous=ous, listed=listed)
    return admit(account, accounts, home_account=home_account(settings), facts=facts)


@dataclass(frozen=True)
class InAccount:
    """What RoleWarden acts with in one admitted account."""

    account: str
    config: Config
    #: For ``clients.acting_in``: None in single mode (RoleWarden's own clients).
    scope: AccountScope | None


def enter(account: str, config: Config, settings: Settings) -> InAccount:
    """The config and scope for an admitted ``account``; raises ``AccountUnavailable`` (no retry loop:
    the sessions remember the failure for a while) when its execution role cannot be assumed."""
    if config.accounts.mode == "single":
        return InAccount(account, config, None)
    sessions = _sessions_for(config, settings)
    if account != sessions.home_account:
        sessions.credentials(account)
    return InAccount(
        account, effective_config(config, account, stack_dry_run=settings.dry_run), sessions.scope(account)
    )


def open_account(account: str, config: Config, settings: Settings, sink: Sink, capability: str) -> InAccount | Outcome:
    """Where the records of ``account`` are reconciled, or the outcome every one of them gets instead: a
    refused account is one finding and its records are acknowledged (retrying cannot admit it); an
    unavailable one is one finding and its records go to the DLQ with the reason (no retry loop; they
    can be redriven once member.yaml is deployed there); an Organizations read that fails is retried."""
    try:
        verdict = admission(account, config, settings)
        if not verdict.admitted:
            sink.finding(verdict.finding(capability))
            sink.metric("AccountsRefused")
            return Outcome()
        return enter(account, config, settings)
    except (RetryableError, PermanentError) as exc:
        from rolewarden.aws.accounts import AccountUnavailable  # loaded already: only its sessions raise it

        if isinstance(exc, AccountUnavailable):  # one finding, no retry loop
            sink.finding(exc.finding(capability))
            sink.metric("AccountsUnavailable")
            return Outcome("dead", str(exc))
        retry = isinstance(exc, RetryableError)
        sink.log("ERROR", f"cannot tell whether RoleWarden may act in account {account}: {exc}", account=account)
        return Outcome("retry" if retry else "dead", f"account {account}: {exc}")


def fans_out(record: RecordIn, config: Config) -> bool:
    """Central mode: the schedule's own sweep (not yet one account's part of it) is fanned out."""
    return config.accounts.mode == "central" and not record.account_sweep and record.continuation is None


def fan_out(record: RecordIn, config: Config, settings: Settings, capability: str, sink: Sink) -> list[AccountSweep]:
    """The account sweeps of a scheduled sweep: one per admitted account. With a sweep queue they are
    sent there (the caller returns ok); without one the caller runs them in this invocation."""
    accounts, refused = sweep_accounts(config, settings)
    for verdict in refused:
        sink.log("INFO", f"sweep skips account {verdict.account}: {verdict.reason}", account=verdict.account)
    sweeps = [AccountSweep(capability, f"{record.event_id}#{account}", account) for account in accounts]
    sink.log("INFO", f"sweep {record.event_id} fanned out to {len(sweeps)} account(s)", accounts=accounts)
    sink.metric("AccountSweeps", len(sweeps))
    return sweeps


def sweep_accounts(config: Config, settings: Settings) -> tuple[list[str], list[Admission]]:
    """Central mode: the accounts a sweep covers (the organization's active accounts this config admits,
    RoleWarden's own among them), and the refusals (logged, not findings: a sweep is not an event)."""
    from rolewarden.aws import organizations

    org = organizations.reader().organization()
    admitted: list[str] = []
    refused: list[Admission] = []
    for account in sorted(org.accounts):
        verdict = admission(account, config, settings)
        if verdict.admitted:
            admitted.append(account)
        else:
            refused.append(verdict)
    return admitted, refused


def _sessions_for(config: Config, settings: Settings) -> AccountSessions:
    role = config.accounts.execution_role_name
    home = home_account(settings)
    found = _sessions.get((role, home))
    if found is None:
        from rolewarden.aws.accounts import AccountSessions

        found = _sessions[(role, home)] = AccountSessions(role, home_account=home)
    return found


def reset() -> None:
    """Forget the sessions and the home account (tests; a changed environment)."""
    _sessions.clear()
    _home.clear()
    from rolewarden.aws import organizations

    organizations.reset()
