"""``--account`` on the operator's command line (issue 14), against the moto server over HTTP.

An organization is made in moto's default account (the central one, where the CLI's credentials are) with
two member accounts; moto keeps one state per account id, and STS AssumeRole into a role of another
account returns credentials acting there (moto does not check the role exists or trusts the caller, so the
setup creates each member's execution role as member.yaml would, and an unavailable account is injected at
the botocore level in the shape STS answers it). Resources are made in a member through the default boto3
session swapped for one acting there (``in_account``), so the ``rwlocal.world`` helpers serve every account.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from rolewarden import account_runs
from rolewarden.aws import clients
from rwlocal import world as w
from rwlocal.configs import WEB_RULE, config_yaml
from rwlocal.faults import count_calls
from rwlocal.multiaccount import create_organization, in_account
from rwlocal.server import ACCOUNT_ID, LocalAws
from tests.functional.helpers import Result

ROLE = "RoleWardenExecution"
OUTSIDER = "999999999999"


@dataclass
@dataclass(frozen=True)
class Org:
    id: str
    a: str
    b: str


@pytest.fixture
def org(aws: LocalAws) -> Iterator[Org]:
    """An organization of the default (central) account and two members, each with the execution role
    member.yaml makes (trusting the central account's roles, within the organization)."""
    account_runs.reset()
    organization = create_organization()
    org_id = organization.id
    a, b = organization.add_account("member-a"), organization.add_account("member-b")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": org_id}},
            }
        ],
    }
    for account in (a, b):
        with in_account(account):
            boto3.client("iam").create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))
    yield Org(org_id, a, b)
    account_runs.reset()


@pytest.fixture
def central(org: Org, write_config: Callable[..., Path]) -> Path:
    return write_config(
        config_yaml(
            instance_profiles={"rules": [WEB_RULE], "metadata": {"imdsv2": "off"}},
            accounts={"mode": "central", "organization_id": org.id},
        )
    )


def seed(account: str) -> str:
    """In ``account``: a web instance without its profile (an association to plan), and a drifted role
    ``loose`` (an open trust and an admin inline policy: a remediation to plan). Same names everywhere."""
    with in_account(account):
        w.create_profile("web-server")
        w.create_role("loose", trust=w.LOOSE_TRUST)
        w.iam().put_role_policy(RoleName="loose", PolicyName="debug", PolicyDocument=json.dumps(w.ADMIN_DOCUMENT))
        return w.run_instance({"rolewarden:profile": "web"})


def state(account: str) -> dict[str, Any]:
    """What the plan's actions would change in ``account``, read back there."""
    with in_account(account):
        iam = w.iam()
        return {
            "profiles": w.attached_profiles(),
            "loose inline": iam.list_role_policies(RoleName="loose")["PolicyNames"],
            "loose trust": iam.get_role(RoleName="loose")["Role"]["AssumeRolePolicyDocument"],
        }


def sections(text: str) -> dict[str, str]:
    """The plain-text output's sections, by the account its header names."""
    found: dict[str, str] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("== account ") and line.endswith(" =="):
            current = line.removeprefix("== account ").removesuffix(" ==")
            found[current] = ""
        elif current:
            found[current] += line + "\n"
    return found


def by_capability(plan: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    return {
        name: [(a["action"], a["resource"]) for a in part["actions"]] for name, part in plan["capabilities"].items()
    }


# -- plan -------------------------------------------------------------------------------------------
def test_plan_across_accounts_shows_each_accounts_own_work_grouped(
    cli: Callable[..., Result], central: Path, org: Org
) -> None:
    in_a = seed(org.a)
    with in_account(org.b):
        in_b = w.run_instance({"rolewarden:profile": "web"})  # B: the instance only; its profile is missing
        w.create_role("loose", trust=w.LOOSE_TRUST)  # ... and a role with an open trust

    with count_calls() as calls:
        result = cli("plan", "--account", f"{org.a},{org.b}", "--json")
    assert result.code == 2, result
    assert calls.writes() == {"sts:AssumeRole": 2}, "a plan writes nothing; one session per account"
    plans = result.json()["accounts"]
    assert sorted(plans) == sorted([org.a, org.b])
    plan_a, plan_b = plans[org.a], plans[org.b]
    assert by_capability(plan_a) == {
        "instance_profiles": [("associate", in_a)],
        "bucket_grants": [],
        "role_compliance": [("delete-inline-policy", "role/loose"), ("replace-trust-policy", "role/loose")],
    }
    (associate,) = plan_a["capabilities"]["instance_profiles"]["actions"]
    assert associate["profile_arn"] == f"arn:aws:iam::{org.a}:instance-profile/web-server"
    # B has no web-server profile: A's (read a moment before, same name) never answers for it
    assert by_capability(plan_b) == {
        "instance_profiles": [],
        "bucket_grants": [],
        "role_compliance": [("replace-trust-policy", "role/loose")],
    }
    (refusal,) = plan_b["capabilities"]["instance_profiles"]["findings"]
    assert (refusal["resource"], refusal["account"]) == (in_b, org.b)
    for account, plan in plans.items():  # every finding names its account
        findings = [f for part in plan["capabilities"].values() for f in part["findings"]]
        assert findings and {f["account"] for f in findings} == {account}

    text = cli("plan", "--account", org.a, "--account", org.b)
    assert text.code == 2, text
    assert text.out.splitlines()[0] == f"== account {org.a} =="
    shown = sections(text.out)
    assert list(shown) == [org.a, org.b]
    assert in_a in shown[org.a] and in_a not in shown[org.b]
    assert in_b in shown[org.b] and in_b not in shown[org.a]
    assert "delete-inline-policy" in shown[org.a] and "delete-inline-policy" not in shown[org.b]


def test_plan_all_covers_every_admitted_account_of_the_organization(
    cli: Callable[..., Result], central: Path, org: Org
) -> None:
    in_a = seed(org.a)
    result = cli("plan", "--account", "all", "--only", "profiles", "--json")
    assert result.code == 2, result
    plans = result.json()["accounts"]
    assert sorted(plans) == sorted([ACCOUNT_ID, org.a, org.b])
    assert [a["resource"] for a in plans[org.a]["capabilities"]["instance_profiles"]["actions"]] == [in_a]
    assert plans[ACCOUNT_ID]["changes"] == plans[org.b]["changes"] == 0


def test_without_account_the_plan_is_todays_in_the_callers_account(
    cli: Callable[..., Result], central: Path, org: Org
) -> None:
    seed(org.a)
    result = cli("plan", "--json")
    assert result.code == 0, result
    assert "accounts" not in result.json() and result.json()["changes"] == 0  # the central account: nothing


# -- apply ------------------------------------------------------------------------------------------
def test_apply_in_one_account_changes_it_and_no_other(cli: Callable[..., Result], central: Path, org: Org) -> None:
    in_a, in_b = seed(org.a), seed(org.b)
    before_b = state(org.b)
    table = w.create_state_table()

    result = cli("apply", "--account", org.a, "--yes", "--table", table, "--json")
    assert result.code == 0, result
    applied = result.json()["accounts"][org.a]
    assert applied["apply"]["status"] == "done" and applied["apply"]["summary"]["applied"] == 3
    after_a = state(org.a)
    assert after_a["profiles"] == {in_a: "web-server"}
    assert after_a["loose inline"] == []
    assert state(org.b) == before_b and before_b["profiles"] == {}
    assert in_b not in state(org.a)["profiles"]

    again = cli("plan", "--account", f"{org.a},{org.b}", "--json").json()["accounts"]
    assert again[org.a]["changes"] == 0 and again[org.b]["changes"] == 3


def test_apply_across_accounts_honours_each_accounts_dry_run_override(
    cli: Callable[..., Result], org: Org, write_config: Callable[..., Path]
) -> None:
    write_config(
        config_yaml(
            instance_profiles={"rules": [WEB_RULE], "metadata": {"imdsv2": "off"}},
            accounts={"mode": "central", "organization_id": org.id, "overrides": {org.b: {"dry_run": True}}},
        )
    )
    in_a, _in_b = seed(org.a), seed(org.b)
    before_b = state(org.b)

    result = cli("apply", "--account", f"{org.a},{org.b}", "--yes", "--table", w.create_state_table())
    assert result.code == 0, result
    shown = sections(result.out)
    assert list(shown) == [org.a, org.b]
    assert "associate" in shown[org.a] and "associate" in shown[org.b]  # both plans are shown
    lines = result.out.splitlines()
    assert f"account {org.b}: The config says dry_run: true; nothing was applied." in lines
    assert (
        f"account {org.a}: Applied 3, failed 0, skipped 0 (the resource changed or went away since the plan)."
    ) in lines
    assert state(org.a)["profiles"] == {in_a: "web-server"}
    assert state(org.b) == before_b


def test_an_account_outside_the_organization_is_refused_and_nothing_is_done(
    cli: Callable[..., Result], central: Path, org: Org
) -> None:
    seed(org.a)
    before = state(org.a)
    with count_calls() as calls:
        result = cli("apply", "--account", f"{org.a},{OUTSIDER}", "--yes")
    assert result.code == 1, result
    assert result.out == ""
    assert (
        f"error: account {OUTSIDER} is refused: not an active account of organization {org.id}; "
        "nothing was done in any account"
    ) in result.err
    assert calls.writes() == {}
    assert state(org.a) == before

    excluded = cli("--config", str(_with_excluded(central, org.b)), "plan", "--account", org.b)
    assert excluded.code == 1 and f"account {org.b} is refused: listed in accounts.exclude_accounts" in excluded.err


def _with_excluded(config: Path, account: str) -> Path:
    import yaml

    data = yaml.safe_load(config.read_text())
    data["accounts"]["exclude_accounts"] = [account]
    path = config.with_name("excluding.yaml")
    path.write_text(yaml.safe_dump(data))
    return path


def test_an_unavailable_account_is_one_error_and_the_others_still_run(
    cli: Callable[..., Result], central: Path, org: Org
) -> None:
    in_a = seed(org.a)
    seed(org.b)
    refuse_b = _sts_refuses(org.b)
    clients.add_hook("before-call.sts.AssumeRole", refuse_b)
    try:
        result = cli("plan", "--account", f"{org.a},{org.b}", "--json")
    finally:
        clients.remove_hook("before-call.sts.AssumeRole", refuse_b)
    assert result.code == 1, result
    document = result.json()
    assert sorted(document["accounts"]) == [org.a]
    assert [a["resource"] for a in document["accounts"][org.a]["capabilities"]["instance_profiles"]["actions"]] == [
        in_a
    ]
    (line,) = [x for x in result.err.splitlines() if org.b in x]
    assert line.startswith(f"error: account {org.b} is unavailable: cannot assume arn:aws:iam::{org.b}:role/{ROLE}")
    assert "AccessDenied" in line and "deploy member.yaml there" in line
    assert document["unavailable"][org.b] == line.removeprefix("error: ")


def _sts_refuses(account: str) -> Any:
    """STS's answer when the role of ``account`` is missing or does not trust the caller (AccessDenied)."""

    def refuse(**kwargs: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        arn = kwargs["params"]["body"]["RoleArn"]  # the serialized query request
        if f":{account}:" not in arn:
            return None
        parsed = {
            "Error": {"Type": "Sender", "Code": "AccessDenied", "Message": f"not authorized to assume {arn}"},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        }
        return AWSResponse(f"{os.environ['AWS_ENDPOINT_URL']}/", 403, HTTPHeaders(), None), parsed

    return refuse


# -- history and rollback ---------------------------------------------------------------------------
def test_history_and_rollback_read_and_restore_the_named_accounts_role(
    cli: Callable[..., Result], central: Path, org: Org
) -> None:
    seed(org.a)
    seed(org.b)
    table = w.create_state_table()
    original_b = state(org.b)
    assert cli("apply", "--account", org.a, "--only", "compliance", "--yes", "--table", table).code == 0
    assert cli("apply", "--account", org.b, "--only", "compliance", "--yes", "--table", table).code == 0
    remediated_b = state(org.b)

    records = cli("history", "role/loose", "--account", f"{org.a},{org.b}", "--table", table, "--json").json()
    ((record_a,), (record_b,)) = records["accounts"][org.a], records["accounts"][org.b]
    assert record_a["resource"] == f"account#{org.a}#role/loose" and record_a["kind"] == "remediation"
    assert record_b["resource"] == f"account#{org.b}#role/loose" and record_a["record_id"] != record_b["record_id"]

    shown = cli("history", "role/loose", "--account", org.a, "--table", table)
    assert shown.code == 0, shown
    assert shown.out.splitlines()[0] == f"== account {org.a} =="
    assert record_a["record_id"] in shown.out and record_b["record_id"] not in shown.out
    assert f"rolewarden rollback role/loose --account {org.a} --to RECORD" in shown.out
    # the caller's own account (no --account) has no record of a member's role
    assert cli("history", "role/loose", "--table", table).out.strip() == "no records for role/loose"

    assert cli("rollback", "role/loose", "--account", f"{org.a},{org.b}", "--table", table).code == 1
    rolled = cli("rollback", "role/loose", "--account", org.b, "--to", record_b["record_id"], "--table", table)
    assert rolled.code == 0, rolled
    assert f"restored record {record_b['record_id']}" in rolled.out and "verified: yes" in rolled.out
    assert state(org.b) == original_b != remediated_b
    assert state(org.a)["loose inline"] == []  # A's remediation stands


# -- single mode ------------------------------------------------------------------------------------
def test_single_mode_acts_only_in_the_callers_account(
    cli: Callable[..., Result], write_config: Callable[..., Path]
) -> None:
    write_config(config_yaml(instance_profiles={"rules": [WEB_RULE]}))
    w.create_profile("web-server")
    instance = w.run_instance({"rolewarden:profile": "web"})

    other = cli("plan", "--account", OUTSIDER)
    assert other.code == 1 and other.out == ""
    assert (
        f"error: account {OUTSIDER} is refused: not RoleWarden's own account {ACCOUNT_ID} (accounts.mode: single)"
    ) in other.err
    with count_calls() as calls:
        refused = cli("apply", "--account", f"{ACCOUNT_ID},{OUTSIDER}", "--yes")
    assert refused.code == 1 and calls.writes() == {}

    own = cli("plan", "--account", ACCOUNT_ID, "--only", "profiles", "--json")
    assert own.code == 2, own
    (associate,) = own.json()["accounts"][ACCOUNT_ID]["capabilities"]["instance_profiles"]["actions"]
    assert associate["resource"] == instance
    assert cli("plan", "--account", "all", "--only", "profiles", "--json").json() == own.json()

    bad = cli("plan", "--account", "12345")
    assert bad.code == 1 and "--account takes 12-digit account ids" in bad.err


# -- explain ----------------------------------------------------------------------------------------
def test_explain_reports_on_the_resource_of_each_named_account(
    cli: Callable[..., Result], central: Path, org: Org
) -> None:
    in_a = seed(org.a)
    with in_account(org.b):
        w.create_role("loose")  # B's loose role: EC2 trust, no inline policy

    result = cli("explain", "role/loose", "--account", f"{org.a},{org.b}", "--json")
    assert result.code == 0, result
    reports = result.json()["accounts"]
    assert reports[org.a]["arn"] == f"arn:aws:iam::{org.a}:role/rolewarden/loose"
    assert reports[org.a]["permissions"]["inline policies"] == ["debug"]
    assert reports[org.b]["arn"] == f"arn:aws:iam::{org.b}:role/rolewarden/loose"
    assert reports[org.b]["permissions"]["inline policies"] == "(none)"

    text = cli("explain", in_a, "--account", org.a)
    assert text.code == 0, text
    assert text.out.splitlines()[:2] == [f"== account {org.a} ==", f"instance: {in_a}"]
    assert "decision: associate: no profile is attached" in text.out
    missing = cli("explain", in_a, "--account", org.b)  # B has no such instance
    assert missing.code == 0 and "state: not found" in missing.out


def test_account_goes_before_or_after_the_command_and_only_where_it_applies(
    cli: Callable[..., Result], write_config: Callable[..., Path]
) -> None:
    write_config(config_yaml(instance_profiles={"rules": [WEB_RULE]}))
    after = cli("plan", "--account", ACCOUNT_ID, "--json")
    before = cli("--account", ACCOUNT_ID, "plan", "--json")
    assert after.code == before.code == 0 and after.json() == before.json()
    assert list(before.json()["accounts"]) == [ACCOUNT_ID]
    for argv in (("--account", ACCOUNT_ID, "breaker", "status"), ("--account", ACCOUNT_ID, "validate")):
        result = cli(*argv)
        assert result.code == 1 and "--account is for plan, apply, explain, history, rollback" in result.err
