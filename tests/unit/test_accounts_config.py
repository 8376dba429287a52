"""The ``accounts`` section (issue 14): valid configs parse, every mistake is a clear error at its key path."""

from __future__ import annotations

import textwrap

import pytest

from rolewarden.accounts_config import DEFAULT_EXECUTION_ROLE, Accounts
from rolewarden.config import parse_config
from rolewarden.errors import ConfigError

CENTRAL = """
version: 1
accounts:
  mode: central
  organization_id: o-a1b2c3d4e5
  execution_role_name: RoleWardenExec
  include_ous: [ou-ab12-cdef3456, r-ab12]
  exclude_ous: [ou-ab12-99999999]
  include_accounts: [111111111111, "222222222222"]
  exclude_accounts: ["333333333333"]
  overrides:
    111111111111: {dry_run: true}
    "222222222222": {rules: {no-inline-policies: enforce, permissions-boundary: report}}
"""


def _parse(text: str) -> Accounts:
    return parse_config(textwrap.dedent(text)).accounts


def test_without_the_section_rolewarden_is_single_account() -> None:
    accounts = _parse("version: 1")
    assert accounts.mode == "single"
    assert accounts.execution_role_name == DEFAULT_EXECUTION_ROLE == "RoleWardenExecution"
    assert accounts.organization_id is None and not accounts.overrides
    assert accounts.override("111111111111").dry_run is None


def test_a_central_config_parses_with_every_key() -> None:
    accounts = _parse(CENTRAL)
    assert accounts.mode == "central" and accounts.organization_id == "o-a1b2c3d4e5"
    assert accounts.execution_role_name == "RoleWardenExec"
    # YAML reads the unquoted 111111111111 as a number: it is taken as the account id it spells
    assert accounts.include_accounts == ["111111111111", "222222222222"]
    assert accounts.include_ous == ["ou-ab12-cdef3456", "r-ab12"]
    assert accounts.override("111111111111").dry_run is True
    assert accounts.override("222222222222").rules == {
        "no-inline-policies": "enforce",
        "permissions-boundary": "report",
    }
    assert accounts.override("444444444444").rules == {}


C = "accounts: {mode: central, organization_id: o-a1b2c3d4e5, "  # a valid central start; each case adds its mistake
A, B = "'111111111111'", "'222222222222'"
BAD = [
    ("unknown-mode", "accounts: {mode: federated}", "accounts.mode:"),
    ("unknown-key", C + "accountz: []}", "accounts.accountz: unknown key"),
    ("central-without-organization", "accounts: {mode: central}", "mode: central needs organization_id"),
    ("bad-organization", "accounts: {mode: central, organization_id: org-1}", "accounts.organization_id:"),
    ("short-account-id", C + "include_accounts: ['12345']}", "is not an account id"),
    ("unquoted-short-account-id", C + "include_accounts: [1234]}", "['1234'] is not an account id"),
    ("account-id-bool", C + "include_accounts: [true]}", "accounts.include_accounts.0:"),
    ("account-twice", C + f"exclude_accounts: [{A}, {A}]}}", "listed twice"),
    ("bad-ou", C + "include_ous: [sales]}", "not an OU id"),
    ("included-and-excluded", C + f"include_accounts: [{A}], exclude_accounts: [{A}]}}", "both included and excluded"),
    ("ou-included-and-excluded", C + "include_ous: [r-ab12], exclude_ous: [r-ab12]}", "both included and excluded"),
    ("override-bad-account", C + "overrides: {'12': {dry_run: true}}}", "is not an account id"),
    (
        "override-unknown-key",
        C + f"overrides: {{{A}: {{dryrun: true}}}}}}",
        "accounts.overrides.111111111111.dryrun: unknown key",
    ),
    (
        "override-unknown-rule",
        C + f"overrides: {{{A}: {{rules: {{no-admin: 'off'}}}}}}}}",
        "unknown rule(s) ['no-admin']",
    ),
    ("override-bad-mode", C + f"overrides: {{{A}: {{rules: {{no-admin-access: loud}}}}}}}}", "a rule mode is one of"),
    (
        "override-dry-run-string",
        C + f"overrides: {{{A}: {{dry_run: 'yes'}}}}}}",
        "accounts.overrides.111111111111.dry_run:",
    ),
    (
        "override-of-excluded",
        C + f"exclude_accounts: [{A}], overrides: {{{A}: {{dry_run: true}}}}}}",
        "would never apply",
    ),
    (
        "override-outside-include",
        C + f"include_accounts: [{B}], overrides: {{{A}: {{dry_run: true}}}}}}",
        "would never apply",
    ),
    ("single-with-lists", f"accounts: {{include_accounts: [{A}]}}", "only read in mode: central"),
    (
        "single-with-organization",
        "accounts: {mode: single, organization_id: o-a1b2c3d4e5}",
        "only read in mode: central",
    ),
    ("bad-role-name", "accounts: {execution_role_name: 'role/with/slash'}", "is not an IAM role name"),
]


@pytest.mark.parametrize(("text", "message"), [(t, m) for _, t, m in BAD], ids=[i for i, _, _ in BAD])
def test_bad_accounts_sections_are_clear_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(f"version: 1\n{text}", "test.yaml")
    assert "invalid config test.yaml" in str(raised.value)
    assert message in str(raised.value)
