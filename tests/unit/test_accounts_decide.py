"""Admission of an event's account and the per-account config (issue 14): a decision table."""

from __future__ import annotations

import textwrap

import pytest

from rolewarden.config import Config, parse_config
from rolewarden.decide.accounts import REFUSED_RULE, AccountFacts, Admission, admit, effective_config

HOME = "999999999999"
ORG = "o-a1b2c3d4e5"
IN_ORG = AccountFacts(organization_id=ORG)
OU_APPS, OU_SANDBOX, ROOT = "ou-ab12-apps0001", "ou-ab12-sandbox1", "r-ab12"


def _config(accounts: str = "") -> Config:
    return parse_config("version: 1\n" + textwrap.dedent(accounts))


OPEN = _config(f"accounts: {{mode: central, organization_id: {ORG}}}")
LISTS = _config(
    f"""
    accounts:
      mode: central
      organization_id: {ORG}
      include_accounts: ["111111111111"]
      include_ous: [{OU_APPS}]
      exclude_accounts: ["222222222222"]
      exclude_ous: [{OU_SANDBOX}]
    """
)
ONLY_ACCOUNTS = _config(f"accounts: {{mode: central, organization_id: {ORG}, include_accounts: ['111111111111']}}")

CASES = [
    # (id, config, account, facts, admitted, reason contains)
    ("single-own-account", _config(), HOME, None, True, "own account"),
    ("single-other-account", _config(), "111111111111", IN_ORG, False, "not RoleWarden's own account"),
    ("malformed-account", OPEN, "12345", IN_ORG, False, "is not an account id"),
    ("central-any-org-account", OPEN, "333333333333", IN_ORG, True, f"organization {ORG}"),
    ("central-home-account-is-like-any", OPEN, HOME, IN_ORG, True, f"organization {ORG}"),
    ("other-organization", OPEN, "333333333333", AccountFacts("o-zzzzzzzzzz"), False, "not o-a1b2c3d4e5"),
    ("organization-unknown", OPEN, "333333333333", None, False, "organization is not known"),
    ("excluded-account", LISTS, "222222222222", AccountFacts(ORG, (ROOT, OU_APPS)), False, "exclude_accounts"),
    ("excluded-ou-wins-over-include", LISTS, "111111111111", AccountFacts(ORG, (ROOT, OU_SANDBOX)), False,
     "excluded OU"),
    ("exclude-ous-need-the-ou", LISTS, "111111111111", IN_ORG, False, "OU is not known"),
    ("included-account", LISTS, "111111111111", AccountFacts(ORG, (ROOT,)), True, "include_accounts"),
    ("included-ou-as-an-ancestor", LISTS, "444444444444", AccountFacts(ORG, (ROOT, OU_APPS, "ou-ab12-team0001")),
     True, f"included OU {OU_APPS}"),
    ("in-no-included-ou", LISTS, "444444444444", AccountFacts(ORG, (ROOT,)), False, "none of accounts.include_ous"),
    ("only-accounts-listed", ONLY_ACCOUNTS, "444444444444", IN_ORG, False, "not in accounts.include_accounts"),
    ("only-accounts-listed-in", ONLY_ACCOUNTS, "111111111111", IN_ORG, True, "include_accounts"),
    ("listed-but-outside-the-org", ONLY_ACCOUNTS, "111111111111", AccountFacts("o-zzzzzzzzzz"), False,
     "not o-a1b2c3d4e5"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("config", "account", "facts", "admitted", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_admission(config: Config, account: str, facts: AccountFacts | None, admitted: bool, reason: str) -> None:
    decision = admit(account, config.accounts, home_account=HOME, facts=facts)
    assert decision.account == account
    assert decision.admitted is admitted
    assert reason in decision.reason


def test_a_refusal_is_one_finding_naming_the_account() -> None:
    decision = admit("333333333333", OPEN.accounts, home_account=HOME, facts=AccountFacts("o-zzzzzzzzzz"))
    finding = decision.finding("profiles")
    assert (finding.capability, finding.resource, finding.rule) == ("profiles", "account/333333333333", REFUSED_RULE)
    assert "333333333333" in finding.message and decision.reason in finding.message
    assert finding.details == {"account": "333333333333"}
    assert Admission("1", True, "x") == Admission("1", True, "x")  # frozen and comparable: a value


OVERRIDES = _config(
    f"""
    dry_run: true
    compliance:
      rules: {{no-inline-policies: report}}
    accounts:
      mode: central
      organization_id: {ORG}
      overrides:
        "111111111111": {{dry_run: false, rules: {{no-inline-policies: enforce, trust-ec2-only: "off"}}}}
        "222222222222": {{rules: {{no-admin-access: report}}}}
    """
)


def test_an_override_applies_its_dry_run_and_rule_modes_to_its_account_only() -> None:
    one = effective_config(OVERRIDES, "111111111111", stack_dry_run=False)
    assert one.dry_run is False
    assert one.rule_mode("no-inline-policies") == "enforce" and one.rule_mode("trust-ec2-only") == "off"
    assert one.rule_mode("no-admin-access") == "enforce", "a rule the override does not name keeps its mode"
    two = effective_config(OVERRIDES, "222222222222", stack_dry_run=False)
    assert two.dry_run is True, "no dry_run in the override: the config's"
    assert two.rule_mode("no-admin-access") == "report" and two.rule_mode("no-inline-policies") == "report"
    other = effective_config(OVERRIDES, "333333333333", stack_dry_run=False)
    assert other == OVERRIDES
    assert OVERRIDES.rule_mode("no-inline-policies") == "report", "the shared config is not changed"


def test_the_stacks_dry_run_wins_over_every_override() -> None:
    assert effective_config(OVERRIDES, "111111111111", stack_dry_run=True).dry_run is True
    assert effective_config(_config(), HOME, stack_dry_run=True).dry_run is True
    assert effective_config(_config(), HOME, stack_dry_run=False).dry_run is False
