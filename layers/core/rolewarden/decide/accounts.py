"""Which account an event may make RoleWarden act in, and the config each account runs with (issue 14).

Pure: the caller states what it knows of the account (``AccountFacts``: its organization, its OU
ancestry), read from the event's route or from AWS Organizations; what it does not know refuses rather
than guesses whenever the config depends on it. An event acts only in the account it comes from (the
caller passes the event's ``account``; EventBridge sets it for AWS sources, which no customer can put).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import cast

from rolewarden.accounts_config import ACCOUNT_ID_RE, Accounts
from rolewarden.config import Config, RuleMode
from rolewarden.model.findings import Finding

REFUSED_RULE = "account-not-admitted"


@dataclass(frozen=True)
class Admission:
    account: str
    admitted: bool
    reason: str

    def finding(self, capability: str) -> Finding:
        """A refusal as the one finding it yields (callers make no retry of a refused account)."""
        why = f"account {self.account}: {self.reason}; RoleWarden does not act there"
        return Finding.on_account(capability, self.account, REFUSED_RULE, why)


@dataclass(frozen=True)
class AccountFacts:
    """What is known of an account, from AWS Organizations (the central bus's policy admits only the
    organization's accounts, but RoleWarden checks again rather than trust one policy). ``ous``: every
    ancestor of the account (OU ids and the root id), or None when unknown."""

    organization_id: str | None = None
    ous: tuple[str, ...] | None = None
    #: Whether Organizations lists the account as an ACTIVE account of ``organization_id`` (None: not asked).
    listed: bool | None = None


def admit(account: str, accounts: Accounts, *, home_account: str, facts: AccountFacts | None = None) -> Admission:
    """Whether RoleWarden may act in ``account``. ``home_account`` is the account RoleWarden runs in."""
    known = facts or AccountFacts()

    def refuse(reason: str) -> Admission:
        return Admission(account, False, reason)

    if not ACCOUNT_ID_RE.match(account):
        return refuse(f"{account!r} is not an account id")
    if accounts.mode == "single":
        if account == home_account:
            return Admission(account, True, "RoleWarden's own account (accounts.mode: single)")
        return refuse(f"not RoleWarden's own account {home_account} (accounts.mode: single)")
    if account in accounts.exclude_accounts:
        return refuse("listed in accounts.exclude_accounts")
    if known.organization_id is None:
        return refuse("its organization is not known")
    if known.organization_id != accounts.organization_id:
        return refuse(f"in organization {known.organization_id}, not {accounts.organization_id}")
    if known.listed is False:
        return refuse(f"not an active account of organization {accounts.organization_id}")
    if accounts.exclude_ous:
        if known.ous is None:
            return refuse("its OU is not known and accounts.exclude_ous is set")
        excluded = sorted(set(known.ous) & set(accounts.exclude_ous))
        if excluded:
            return refuse(f"in excluded OU {excluded[0]}")
    if account in accounts.include_accounts:
        return Admission(account, True, "listed in accounts.include_accounts")
    if accounts.include_ous:
        if known.ous is None:
            return refuse("not in accounts.include_accounts and its OU is not known")
        included = sorted(set(known.ous) & set(accounts.include_ous))
        if included:
            return Admission(account, True, f"in included OU {included[0]}")
        return refuse("in none of accounts.include_ous")
    if accounts.include_accounts:
        return refuse("not in accounts.include_accounts")
    return Admission(account, True, f"an account of organization {accounts.organization_id}")


def effective_config(config: Config, account: str, *, stack_dry_run: bool) -> Config:
    """The config RoleWarden acts with in ``account``: its override's dry_run and rule modes applied. An
    override's ``dry_run: false`` lifts the config's dry run for that account, never the stack's DryRun
    (``stack_dry_run``, which the caller reads from its settings)."""
    override = config.accounts.override(account)
    dry_run = config.dry_run if override.dry_run is None else override.dry_run
    compliance = config.compliance
    if override.rules:
        # the override's modes are RuleMode values: AccountOverride checks them against RuleMode
        rules = {**compliance.rules, **cast("dict[str, RuleMode]", override.rules)}
        compliance = replace(compliance, rules=rules)
    return replace(config, dry_run=dry_run or stack_dry_run, compliance=compliance)
