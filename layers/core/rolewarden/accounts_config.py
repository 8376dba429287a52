"""The ``accounts`` section of the config (issue 14): which accounts RoleWarden acts in, and how.

``mode: single`` (the default) is today's RoleWarden: it acts in its own account only, and nothing else in
the section may be set. ``mode: central``: the central stack acts in member accounts of ``organization_id``
through their execution role, restricted by the include/exclude lists of account and OU ids, with
per-account overrides of ``dry_run`` and of compliance rule modes. The admission decision itself is
``rolewarden.decide.accounts``.
"""

from __future__ import annotations

import re
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

ACCOUNT_ID_RE = re.compile(r"^\d{12}$")
ORGANIZATION_ID_RE = re.compile(r"^o-[a-z0-9]{10,32}$")
#: An organizational unit (ou-xxxx-yyyyyyyy) or the organization's root (r-xxxx).
OU_ID_RE = re.compile(r"^(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32})$")
#: IAM role names, as config.ROLE_NAME_RE (not imported: config imports this module).
_ROLE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$", re.ASCII)
DEFAULT_EXECUTION_ROLE = "RoleWardenExecution"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


class AccountOverride(_Strict):
    """What one member account does differently: ``dry_run`` and compliance rule modes (``rule: mode``)."""

    dry_run: StrictBool | None = None
    rules: dict[str, str] = Field(default_factory=dict)

    @field_validator("rules")
    @classmethod
    def _rules(cls, value: dict[str, str]) -> dict[str, str]:
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


class Accounts(_Strict):
    mode: Literal["single", "central"] = "single"
    execution_role_name: str = DEFAULT_EXECUTION_ROLE
    organization_id: str | None = None
    #: Empty: every account of the organization (less the excluded ones).
    include_accounts: list[str] = Field(default_factory=list)
    exclude_accounts: list[str] = Field(default_factory=list)
    #: OU ids (or the root id); an account is in an OU when the OU is any of its ancestors.
    include_ous: list[str] = Field(default_factory=list)
    exclude_ous: list[str] = Field(default_factory=list)
    overrides: dict[str, AccountOverride] = Field(default_factory=dict)

    @field_validator("execution_role_name")
    @classmethod
    def _role(cls, value: str) -> str:
        if not _ROLE_NAME_RE.match(value):
            raise ValueError(f"{value!r} is not an IAM role name")
        return value

    @field_validator("organization_id")
    @classmethod
    def _organization(cls, value: str | None) -> str | None:
        if value is not None and not ORGANIZATION_ID_RE.match(value):
            raise ValueError(f"{value!r} is not an organization id (o- and 10 to 32 lower-case letters or digits)")
        return value

    @field_validator("include_accounts", "exclude_accounts", "overrides", mode="before")
    @classmethod
    def _unquoted_ids(cls, value: Any) -> Any:
        """YAML reads an unquoted 111111111111 as a number; an account id is its digits (a leading zero
        keeps YAML from reading one as a number, so no digit is lost)."""
        if isinstance(value, list):
            return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        if isinstance(value, dict):
            return {str(k) if isinstance(k, int) and not isinstance(k, bool) else k: v for k, v in value.items()}
        return value

    @field_validator("include_accounts", "exclude_accounts")
    @classmethod
    def _account_lists(cls, value: list[str]) -> list[str]:
        return _check_accounts(value)

    @field_validator("include_ous", "exclude_ous")
    @classmethod
    def _ou_lists(cls, value: list[str]) -> list[str]:
        return _check_ous(value)

    @field_validator("overrides")
    @classmethod
    def _override_keys(cls, value: dict[str, AccountOverride]) -> dict[str, AccountOverride]:
        _check_accounts(list(value))
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Accounts:
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
        return self.overrides.get(account, _NO_OVERRIDE)


_NO_OVERRIDE = AccountOverride()
