"""The ``accounts`` section of the config (issue 14): which accounts RoleWarden acts in, and how.

``mode: single`` (the default) is today's RoleWarden: it acts in its own account only, and nothing else in
the section may be set. ``mode: central``: the central stack acts in member accounts of ``organization_id``
through their execution role, restricted by the include/exclude lists of account and OU ids, with
per-account overrides of ``dry_run`` and of compliance rule modes. The sections are ``rolewarden.schema``
sections like the rest of the config; the admission decision itself is ``rolewarden.decide.accounts``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, get_args

from rolewarden.schema import Check, Section

ACCOUNT_ID_RE = re.compile(r"^\d{12}$")
ORGANIZATION_ID_RE = re.compile(r"^o-[a-z0-9]{10,32}$")
#: An organizational unit (ou-xxxx-yyyyyyyy) or the organization's root (r-xxxx).
OU_ID_RE = re.compile(r"^(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32})$")
#: IAM role names, as config.ROLE_NAME_RE (not imported: config imports this module).
_ROLE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$", re.ASCII)
DEFAULT_EXECUTION_ROLE = "RoleWardenExecution"


def _check_accounts(value: list[str]) -> list[str]:
    bad = [a for a in value if not ACCOUNT_ID_RE.match(a)]
    if bad:
        raise ValueError(f"{bad} {'is not an account id' if len(bad) == 1 else 'are not account ids'} (12 digits)")
    if len(set(value)) != len(value):
        raise ValueError("an account id is listed twice")
    return value


def _check_ous(value: list[str]) -> list[str]:
    bad = [o for o in value if not OU_ID_RE.match(o)]
    if bad:
        raise ValueError(f"{bad}: not an OU id (ou-xxxx-yyyyyyyy) or the organization root (r-xxxx)")
    return value


def _check_role_name(value: str) -> str:
    if not _ROLE_NAME_RE.match(value):
        raise ValueError(f"{value!r} is not an IAM role name")
    return value


def _check_organization(value: str | None) -> str | None:
    if value is not None and not ORGANIZATION_ID_RE.match(value):
        raise ValueError(f"{value!r} is not an organization id (o- and 10 to 32 lower-case letters or digits)")
    return value


def _check_override_keys(value: dict[str, AccountOverride]) -> dict[str, AccountOverride]:
    _check_accounts(list(value))
    return value


def _check_rules(value: dict[str, str]) -> dict[str, str]:
    # imported here: rolewarden.config imports this module to hang Accounts on Config
    from rolewarden.config import COMPLIANCE_RULE_IDS, RuleMode

    unknown = sorted(set(value) - set(COMPLIANCE_RULE_IDS))
    if unknown:
        raise ValueError(f"unknown rule(s) {unknown}; known: {list(COMPLIANCE_RULE_IDS)}")
    modes = get_args(RuleMode)
    bad = {rule: mode for rule, mode in value.items() if mode not in modes}
    if bad:
        raise ValueError(f"{bad}: a rule mode is one of {list(modes)}")
    return value


def _digits(value: Any) -> Any:
    """An account id YAML read as a number (unquoted 111111111111), as its digits; anything else as it is.
    No digit is lost: YAML reads a number with a leading zero as a string (or octal, which fails the check)."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


@dataclass(frozen=True)
class AccountOverride(Section):
    """What one member account does differently: ``dry_run`` and compliance rule modes (``rule: mode``)."""

    dry_run: bool | None = None
    #: rule id -> mode; both checked against rolewarden.config (COMPLIANCE_RULE_IDS, RuleMode)
    rules: Annotated[dict[str, str], Check(_check_rules)] = field(default_factory=dict)


AccountIds = Annotated[list[str], Check(_check_accounts)]
OuIds = Annotated[list[str], Check(_check_ous)]


@dataclass(frozen=True)
class Accounts(Section):
    """Where RoleWarden acts: its own account (``mode: single``) or the admitted accounts of an organization."""

    mode: Literal["single", "central"] = "single"
    execution_role_name: Annotated[str, Check(_check_role_name)] = DEFAULT_EXECUTION_ROLE
    organization_id: Annotated[str | None, Check(_check_organization)] = None
    #: Empty: every account of the organization (less the excluded ones).
    include_accounts: AccountIds = field(default_factory=list)
    exclude_accounts: AccountIds = field(default_factory=list)
    #: OU ids (or the root id); an account is in an OU when the OU is any of its ancestors.
    include_ous: OuIds = field(default_factory=list)
    exclude_ous: OuIds = field(default_factory=list)
    overrides: Annotated[dict[str, AccountOverride], Check(_check_override_keys)] = field(default_factory=dict)

    @classmethod
    def prepare(cls, data: dict[Any, Any]) -> dict[Any, Any]:
        """Unquoted account ids (YAML numbers) in the account lists and as override keys, as their digits."""
        out = dict(data)
        for key in ("include_accounts", "exclude_accounts"):
            if isinstance(out.get(key), list):
                out[key] = [_digits(v) for v in out[key]]
        if isinstance(out.get("overrides"), dict):
            out["overrides"] = {_digits(k): v for k, v in out["overrides"].items()}
        return out

    def check(self) -> Accounts:
        central_only = [
            name
            for name in ("organization_id", "include_accounts", "exclude_accounts", "include_ous", "exclude_ous")
            if getattr(self, name)
        ] + (["overrides"] if self.overrides else [])
        if self.mode == "single":
            if central_only:
                raise ValueError(
                    f"{', '.join(central_only)}: only read in mode: central (mode single acts in its own account)"
                )
            return self
        if self.organization_id is None:
            raise ValueError(
                "mode: central needs organization_id: RoleWarden acts only in accounts of one organization"
            )
        both = sorted(set(self.include_accounts) & set(self.exclude_accounts))
        if both:
            raise ValueError(f"accounts {both} are both included and excluded")
        both = sorted(set(self.include_ous) & set(self.exclude_ous))
        if both:
            raise ValueError(f"OUs {both} are both included and excluded")
        excluded = sorted(set(self.overrides) & set(self.exclude_accounts))
        if excluded:
            raise ValueError(f"overrides for excluded accounts {excluded} would never apply; remove them")
        if self.include_accounts and not self.include_ous:
            outside = sorted(set(self.overrides) - set(self.include_accounts))
            if outside:
                raise ValueError(f"overrides for accounts {outside} that include_accounts leaves out would never apply")
        return self

    def override(self, account: str) -> AccountOverride:
        """The override of ``account``, or one that changes nothing."""
        return self.overrides.get(account, _NO_OVERRIDE)


_NO_OVERRIDE = AccountOverride()
