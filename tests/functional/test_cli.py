"""The operator's command line against the moto server over HTTP: in process through
``rolewarden.cli.main.main`` (stdout and stderr captured, so output is the piped, plain-text kind), and a few
runs of the installed console script as a subprocess to prove the entry point works.

Errors moto cannot produce (access denied, throttling) are injected at the botocore level with
``rwlocal.faults`` in the service's own error shape; missing credentials and region are real (the
environment is emptied)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from rwlocal import world as w
from rwlocal.configs import WEB_RULE, config_yaml
from rwlocal.faults import Fault, _Raw, count_calls, inject
from rwlocal.server import ACCOUNT_ID, LocalAws
from tests.functional.helpers import Result

PATH = "/rolewarden/"
ADMIN_DOC = w.ADMIN_DOCUMENT
LOOSE_TRUST = w.LOOSE_TRUST
CONFIG = config_yaml(
    # IMDSv2 in plan, apply and explain: tests/functional/test_imds_cli.py
    instance_profiles={"rules": [WEB_RULE], "metadata": {"imdsv2": "off"}},
    bucket_grants={"protected_buckets": ["*-audit-logs"]},
    compliance={"protected_roles": ["break-glass"]},
)
#: The AWS writes each planned action makes (reads and records are not counted).
WRITES = {
    "associate": ["ec2:AssociateIamInstanceProfile"],
    "replace": ["ec2:ReplaceIamInstanceProfileAssociation"],
    "create-grant-policy": ["iam:CreatePolicy", "iam:AttachRolePolicy"],
    "rotate-grant-policy": ["iam:CreatePolicyVersion"],
    "delete-inline-policy": ["iam:DeleteRolePolicy"],
    "rewrite-inline-policy": ["iam:PutRolePolicy"],
    "replace-trust-policy": ["iam:UpdateAssumeRolePolicy"],
    "detach-policy": ["iam:DetachRolePolicy"],
    "put-boundary": ["iam:PutRolePermissionsBoundary"],
    "require-imdsv2": ["ec2:ModifyInstanceMetadataOptions"],
    "put-inline-policy": ["iam:PutRolePolicy"],
}


# -- harness ----------------------------------------------------------------------------------------


@pytest.fixture
def config(aws: LocalAws, write_config: Callable[..., Path]) -> Path:
    return write_config(CONFIG)


def iam() -> Any:
    return boto3.client("iam")


def seed() -> dict[str, str]:
    """One change per capability and a few refusals: an untagged-for instance, a bucket granting a role
    (and a role that does not exist), a protected bucket, a role with an open trust and an admin inline."""
    w.create_profile("web-server")
    w.create_role("reporting")
    w.create_role("loose", trust=LOOSE_TRUST)
    iam().put_role_policy(RoleName="loose", PolicyName="debug", PolicyDocument=json.dumps(ADMIN_DOC))
    instance = w.run_instance({"rolewarden:profile": "web"})
    s3 = boto3.client("s3")
    for bucket, value in (("acme-reports", "reporting ghost"), ("acme-audit-logs", "reporting")):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "rolewarden:read", "Value": value}]})
    return {"instance": instance}


def role_state(role: str) -> dict[str, Any]:
    client = iam()
    raw = client.get_role(RoleName=role)["Role"]
    return {
        "attached": sorted(
            p["PolicyArn"] for p in client.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
        ),
        "inline": {
            name: client.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
            for name in client.list_role_policies(RoleName=role)["PolicyNames"]
        },
        "trust": raw["AssumeRolePolicyDocument"],
        "boundary": (raw.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn"),
    }


def table_rows(text: str, title: str) -> list[list[str]]:
    """The rows of a plain-text table: the lines after the title and its header, up to a blank line."""
    lines = text.splitlines()
    start = lines.index(title) + 2
    rows = []
    for line in lines[start:]:
        if not line.strip():
            break
        rows.append(re.split(r"\s{2,}", line.strip(), maxsplit=3))
    return rows


def expected_writes(actions: list[dict[str, Any]]) -> Counter[str]:
    return Counter(call for a in actions for call in WRITES[a["action"]])


# -- plan -------------------------------------------------------------------------------------------
def test_plan_with_nothing_to_do_exits_0(cli: Callable[..., Result], config: Path) -> None:
    w.create_profile("web-server")
    w.create_role("reporting")
    with count_calls() as calls:
        result = cli("plan")
    assert result.code == 0, result
    assert result.out.splitlines() == [
        "instance_profiles: nothing to do",
        "bucket_grants: nothing to do",
        "role_compliance: nothing to do",
    ]
    assert calls.writes() == Counter()


def test_plan_shows_changes_and_findings_in_plain_tables_and_exits_2(cli: Callable[..., Result], config: Path) -> None:
    instance = seed()["instance"]
    with count_calls() as calls:
        result = cli("plan")
    assert result.code == 2, result
    assert calls.writes() == Counter()  # a plan writes nothing
    assert "\x1b[" not in result.out  # piped: no colour codes
    assert table_rows(result.out, "instance_profiles: 1 change(s), 0 finding(s)") == [
        ["associate", instance, f"associate web-server with {instance}"]
    ]
    grant_arn = f"arn:aws:iam::{ACCOUNT_ID}:policy/rolewarden/rolewarden-grants-reporting"
    ((verb, resource, what),) = table_rows(result.out, "bucket_grants: 1 change(s), 2 finding(s)")
    assert (verb, resource) == ("create-grant-policy", grant_arn)
    assert what.startswith("create rolewarden-grants-reporting (v1, document ")
    assert [r[:3] for r in table_rows(result.out, "bucket_grants: findings")] == [
        ["WARNING", "acme-audit-logs", "protected-bucket"],
        ["WARNING", "acme-reports", "grant-refused"],
    ]
    assert table_rows(result.out, "role_compliance: 2 change(s), 4 finding(s)") == [
        [
            "delete-inline-policy",
            "role/loose",
            "delete inline policy debug of role loose (no-admin-access, no-privilege-escalation)",
        ],
        [
            "replace-trust-policy",
            "role/loose",
            "replace the trust policy of role loose with the EC2-only one (trust-ec2-only)",
        ],
    ]
    assert {r[2] for r in table_rows(result.out, "role_compliance: findings")} == {
        "no-admin-access",
        "no-privilege-escalation",
        "trust-ec2-only",
        "no-inline-policies",
    }


def test_plan_exits_1_and_names_the_permission_when_a_read_is_denied(cli: Callable[..., Result], config: Path) -> None:
    seed()
    denied = Fault("iam", "GetAccountAuthorizationDetails", "AccessDenied", "not authorized", status=403, times=99)
    with inject(denied):
        result = cli("plan")
    assert result.code == 1, result
    assert "access denied: the caller lacks the permission iam:GetAccountAuthorizationDetails" in result.err
    assert "instance_profiles: 1 change(s)" in result.out  # the other capability still planned


def test_plan_json_is_parseable_stable_and_sorted(cli: Callable[..., Result], config: Path) -> None:
    seed()
    first, second = cli("plan", "--json"), cli("plan", "--json")
    assert first.code == second.code == 2
    assert first.out == second.out
    data = first.json()
    assert first.out.strip() == json.dumps(data, indent=2, sort_keys=True)
    assert data["changes"] == 4 and data["dry_run"] is False
    assert {k: [a["action"] for a in v["actions"]] for k, v in data["capabilities"].items()} == {
        "instance_profiles": ["associate"],
        "bucket_grants": ["create-grant-policy"],
        "role_compliance": ["delete-inline-policy", "replace-trust-policy"],
    }
    assert all(v["errors"] == [] for v in data["capabilities"].values())


@pytest.mark.parametrize(
    ("only", "capability", "verbs"),
    [
        ("profiles", "instance_profiles", ["associate"]),
        ("grants", "bucket_grants", ["create-grant-policy"]),
        ("compliance", "role_compliance", ["delete-inline-policy", "replace-trust-policy"]),
    ],
)
def test_only_plans_and_applies_one_capability(
    cli: Callable[..., Result], config: Path, only: str, capability: str, verbs: list[str]
) -> None:
    seed()
    plan = cli("plan", "--only", only, "--json")
    assert plan.code == 2
    assert list(plan.json()["capabilities"]) == [capability]
    actions = plan.json()["capabilities"][capability]["actions"]
    assert [a["action"] for a in actions] == verbs
    with count_calls() as calls:
        applied = cli("apply", "--only", only, "--yes")
    assert applied.code == 0, applied
    assert calls.writes() == expected_writes(actions)
    others = [c for c in ("profiles", "grants", "compliance") if c != only]
    assert cli("plan", "--only", only).code == 0  # converged
    assert all(cli("plan", "--only", other).code == 2 for other in others)  # untouched


# -- apply ------------------------------------------------------------------------------------------
def test_apply_changes_exactly_what_plan_showed(cli: Callable[..., Result], config: Path) -> None:
    instance = seed()["instance"]
    before = role_state("loose")
    plan = cli("plan", "--json").json()
    actions = [a for c in plan["capabilities"].values() for a in c["actions"]]
    with count_calls() as calls:
        result = cli("apply", "--yes")
    assert result.code == 0, result
    assert "Applied 4, failed 0, skipped 0" in result.out
    assert calls.writes() == expected_writes(actions)
    assert "no state table" in result.err  # remediating without a table: rollback cannot restore it

    # The account is now what the planned actions say.
    assert w.attached_profiles() == {instance: "web-server"}
    (create,) = plan["capabilities"]["bucket_grants"]["actions"]
    policy = iam().get_policy(PolicyArn=create["policy_arn"])["Policy"]
    document = iam().get_policy_version(PolicyArn=create["policy_arn"], VersionId=policy["DefaultVersionId"])
    assert json.dumps(document["PolicyVersion"]["Document"], separators=(",", ":")) == create["document"]
    assert [p["PolicyArn"] for p in iam().list_attached_role_policies(RoleName="reporting")["AttachedPolicies"]] == [
        create["policy_arn"]
    ]
    after = role_state("loose")
    assert after["inline"] == {} and after["trust"] == w.EC2_TRUST
    assert after["attached"] == before["attached"] and after["boundary"] == before["boundary"]
    assert cli("plan").code == 0  # applying the plan converged everything


def test_apply_json_is_one_document_with_the_plan_and_the_results(cli: Callable[..., Result], config: Path) -> None:
    seed()
    result = cli("apply", "--yes", "--json", "--only", "compliance")
    assert result.code == 0, result
    data = result.json()
    assert data["changes"] == 2
    assert data["apply"]["status"] == "done"
    assert data["apply"]["summary"]["applied"] == 2
    assert [r["status"] for r in data["apply"]["results"]] == ["applied", "applied"]


def test_apply_does_not_do_what_the_plan_did_not_show(
    cli: Callable[..., Result], config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The account changes between the plan and the confirmation: the new finding is not acted on."""
    seed()
    monkeypatch.setattr(sys, "stdin", TtyInput("yes"))

    def confirm(prompt: str) -> str:
        w.create_role("late", trust=LOOSE_TRUST)  # appears while the operator reads the plan
        return "yes"

    monkeypatch.setattr("builtins.input", confirm)
    result = cli("apply", "--only", "compliance")
    assert result.code == 0, result
    assert "not in the plan, so not done (run plan again): replace the trust policy of role late" in result.err
    assert role_state("late")["trust"] == LOOSE_TRUST
    assert role_state("loose")["trust"] == w.EC2_TRUST


def test_a_drifted_grant_policy_is_planned_once_and_restored_once(cli: Callable[..., Result], config: Path) -> None:
    """The grants sweep finds a drifted grant policy: the plan lists the restore once, under bucket_grants, and
    apply makes it once. Role compliance runs no grants code (grant-policy-drift hands a role an event names to
    the grants queue; a sweep leaves grant policies to the grants sweep): on its own it does not touch them."""
    seed()
    assert cli("apply", "--yes", "--only", "grants").code == 0
    arn = f"arn:aws:iam::{ACCOUNT_ID}:policy/rolewarden/rolewarden-grants-reporting"
    iam().create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(ADMIN_DOC), SetAsDefault=True)
    versions = len(iam().list_policy_versions(PolicyArn=arn)["Versions"])

    data = cli("plan", "--json").json()["capabilities"]
    assert [a["action"] for a in data["bucket_grants"]["actions"]] == ["rotate-grant-policy"]
    assert [a["action"] for a in data["role_compliance"]["actions"]] == [
        "delete-inline-policy",
        "replace-trust-policy",
    ]
    only = cli("plan", "--json", "--only", "compliance").json()["capabilities"]["role_compliance"]["actions"]
    assert "rotate-grant-policy" not in [a["action"] for a in only]
    with count_calls() as calls:
        applied = cli("apply", "--yes", "--only", "compliance", "--json")
    assert applied.code == 0
    assert [r["action"]["action"] for r in applied.json()["apply"]["results"]] == [a["action"] for a in only]
    assert calls.writes() == expected_writes(only)
    assert "iam:CreatePolicyVersion" not in calls.writes()

    data = cli("plan", "--json").json()["capabilities"]
    assert [a["action"] for a in data["bucket_grants"]["actions"]] == ["rotate-grant-policy"]
    with count_calls() as calls:
        assert cli("apply", "--yes").code == 0
    assert calls.writes() == expected_writes([a for c in data.values() for a in c["actions"]])
    assert calls.writes()["iam:CreatePolicyVersion"] == 1
    assert len(iam().list_policy_versions(PolicyArn=arn)["Versions"]) == versions + 1
    assert cli("plan").code == 0


class TtyInput(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_apply_without_yes_and_without_a_terminal_refuses(cli: Callable[..., Result], config: Path) -> None:
    seed()
    with count_calls() as calls:
        result = cli("apply")
    assert result.code == 1
    assert "refusing to apply without confirmation: pass --yes" in result.err
    assert calls.writes() == Counter()


def test_apply_on_a_terminal_asks_and_a_no_changes_nothing(
    cli: Callable[..., Result], config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed()
    prompts: list[str] = []
    monkeypatch.setattr(sys, "stdin", TtyInput("no"))

    def answer(prompt: str) -> str:
        prompts.append(prompt)
        return "no"

    monkeypatch.setattr("builtins.input", answer)
    with count_calls() as calls:
        result = cli("apply")
    assert prompts == ["Apply 4 change(s)? Type 'yes' to continue: "]
    assert result.code == 1 and "Cancelled; nothing was changed." in result.out
    assert calls.writes() == Counter()


def test_dry_run_config_makes_apply_change_nothing(
    cli: Callable[..., Result], write_config: Callable[..., Path]
) -> None:
    write_config(CONFIG, dry_run=True)
    instance = seed()["instance"]
    with count_calls() as calls:
        result = cli("apply", "--yes")
    assert result.code == 2, result
    assert "dry_run: true; nothing was applied" in result.out
    assert "associate web-server with" in result.out  # the plan is still shown
    assert calls.writes() == Counter()
    assert w.attached_profiles() == {} and role_state("loose")["trust"] == LOOSE_TRUST
    assert cli("plan", "--json").json()["capabilities"]["instance_profiles"]["actions"][0]["instance_id"] == instance


def test_long_applies_on_a_terminal_show_progress_and_apply_everything(
    aws: LocalAws, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rolewarden.cli.apply import PROGRESS_THRESHOLD, PlannedOnly, execute
    from rolewarden.cli.output import Out
    from rolewarden.cli.plan import make_plan
    from rolewarden.config import load_config

    w.create_profile("web-server")
    ids = w.run_instances(PROGRESS_THRESHOLD + 2, {"rolewarden:profile": "web"})
    loaded = load_config(str(config))
    plans = make_plan(loaded, ["instance_profiles"])
    screen = TtyInput()
    out = Out(stream=screen)
    assert out.rich
    ticks: list[int] = []
    real_tick = PlannedOnly.execute_one

    def counting(self: Any, action: Any) -> Any:
        ticks.append(1)
        return real_tick(self, action)

    monkeypatch.setattr(PlannedOnly, "execute_one", counting)
    executor, failures = execute(loaded, plans, out)
    assert failures == [] and len(ticks) == len(ids)
    assert [r.status for r in executor.done] == ["applied"] * len(ids)
    assert executor.tick is not None  # the progress bar was driven
    assert w.attached_profiles() == dict.fromkeys(ids, "web-server")


# -- explain ----------------------------------------------------------------------------------------
def test_explain_instance(cli: Callable[..., Result], config: Path) -> None:
    instance = seed()["instance"]
    result = cli("explain", instance)
    assert result.code == 0, result
    assert "rolewarden:profile: web" in result.out
    assert "desired profile: web-server (from rule 0)" in result.out
    assert "decision: associate: no profile is attached" in result.out
    assert f"  - associate web-server with {instance}" in result.out
    data = cli("explain", instance, "--json").json()
    assert data["rules"][0]["matches"] == "yes" and data["attached profile"] == "(none)"


def test_explain_role(cli: Callable[..., Result], config: Path) -> None:
    seed()
    data = cli("explain", "role/loose", "--json").json()
    assert data["scope"] == {
        "path": PATH,
        "managed": "yes",
        "service-linked": "no",
        "protected": "no",
        "RoleWarden's own": "no",
    }
    results = {r["rule"]: (r["mode"], r["result"]) for r in data["rules"]}
    assert results["no-admin-access"] == ("enforce", "VIOLATED (remediated)")
    assert results["trust-ec2-only"] == ("enforce", "VIOLATED (remediated)")
    assert results["no-inline-policies"] == ("report", "VIOLATED (reported only)")
    assert results["permissions-boundary"] == ("enforce", "pass")
    assert data["would do"] == [
        "delete inline policy debug of role loose (no-admin-access, no-privilege-escalation)",
        "replace the trust policy of role loose with the EC2-only one (trust-ec2-only)",
    ]

    granted = cli("explain", "role/reporting", "--json").json()
    assert granted["verdict"] == "compliant"
    assert granted["grants"]["granted by bucket tags"] == [{"bucket": "acme-reports", "levels": ["read"]}]
    (document,) = granted["grants"]["policy documents"]
    assert document["policy"] == "rolewarden-grants-reporting"
    assert document["statements"] == [
        "ReadBuckets: Allow s3:GetBucketLocation, s3:ListBucket, s3:ListBucketVersions on arn:aws:s3:::acme-reports",
        "ReadObjects: Allow s3:GetObject, s3:GetObjectVersion on arn:aws:s3:::acme-reports/*",
    ]
    assert granted["would do"][0].startswith("create rolewarden-grants-reporting")

    w.create_role("break-glass", path="/", trust=LOOSE_TRUST)
    outside = cli("explain", "role/break-glass")
    assert outside.code == 0
    assert f"managed: no: outside {PATH}" in outside.out and "protected: yes" in outside.out
    assert f"verdict: out-of-scope: path / is outside the managed path {PATH}" in outside.out
    assert "would do: nothing" in outside.out
    assert "exists: no" in cli("explain", "role/nobody").out


def test_explain_bucket(cli: Callable[..., Result], config: Path) -> None:
    seed()
    data = cli("explain", "bucket/acme-reports", "--json").json()
    assert data["tags"] == {"rolewarden:read": "reporting ghost"}
    assert data["protected"] == "no"
    (level,) = data["levels"]
    assert level["level"] == "read" and level["granted to"] == ["reporting"]
    assert level["refused"] == ["tag rolewarden:read: 'ghost' refused: no such role"]
    assert data["held today by"] == "(nobody)"
    role = data["roles"]["reporting"]
    assert role["grants"] == [{"bucket": "acme-reports", "levels": ["read"]}]
    assert role["decision"].startswith("change:")
    assert len(role["policy documents"][0]["statements"]) == 2

    protected = cli("explain", "bucket/acme-audit-logs")
    assert protected.code == 0
    assert "protected: yes" in protected.out and "granted to: (nobody)" in protected.out

    cli("apply", "--yes", "--only", "grants")
    held = cli("explain", "bucket/acme-reports", "--json").json()
    assert held["held today by"] == ["reporting"]
    assert held["roles"]["reporting"]["would do"] == "nothing"


def test_explain_rejects_an_unknown_resource_kind(cli: Callable[..., Result], config: Path) -> None:
    result = cli("explain", "queue/x")
    assert result.code == 1 and "explain takes i-<id>, role/NAME or bucket/NAME" in result.err


# -- validate ---------------------------------------------------------------------------------------
def test_validate_accepts_a_config_consistent_with_the_account(cli: Callable[..., Result], config: Path) -> None:
    w.create_profile("web-server")
    result = cli("validate", str(config))
    assert result.code == 0, result
    assert result.out.strip() == f"config {config} is valid and consistent with the account"


def test_validate_reports_schema_errors_with_their_key_paths(
    cli: Callable[..., Result], write_config: Callable[..., Path]
) -> None:
    path = write_config(CONFIG, managed_path="/", instance_profiles={"rulez": []}, dry_run="yes")
    with count_calls() as calls:
        result = cli("validate", str(path), "--json")
    assert result.code == 1
    problems = result.json()["problems"]
    assert any(p.startswith("managed_path: '/' would put every role") for p in problems), problems
    assert "instance_profiles.rulez: unknown key" in problems
    assert any(p.startswith("dry_run: ") for p in problems)
    assert calls.total() == 0  # nothing is read from an account for a config that does not parse


def test_validate_refuses_a_level_naming_a_non_s3_action(
    cli: Callable[..., Result], write_config: Callable[..., Path]
) -> None:
    path = write_config(CONFIG, bucket_grants={"levels": {"ops": ["ec2:RunInstances"]}})
    result = cli("validate", str(path))
    assert result.code == 1
    assert "bucket_grants.levels: level 'ops': 'ec2:RunInstances' is not an s3: action" in result.out


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param(
            {"instance_profiles": {"rules": [{"match": {"app": "x"}, "profile": "nowhere"}]}},
            "instance_profiles.rules.0.profile: nowhere: the instance profile does not exist",
            id="missing-profile",
        ),
        pytest.param(
            {"instance_profiles": {"rules": [], "default": "admin"}},
            "instance_profiles.default: admin: its role admin-role has path /, outside the managed path /rolewarden/",
            id="profile-role-outside-managed-path",
        ),
        pytest.param(
            {"compliance": {"permissions_boundary": f"arn:aws:iam::{ACCOUNT_ID}:policy/rolewarden-boundary"}},
            (
                # the tag guard (issue 16) then refuses every profile whose role lacks that boundary
                "instance_profiles.rules.0.profile: web-server: would be refused by the tag guard: its role fails "
                "permissions-boundary",
                f"compliance.permissions_boundary: arn:aws:iam::{ACCOUNT_ID}:policy/rolewarden-boundary does not exist",
            ),
            id="missing-boundary",
        ),
        pytest.param(
            {
                "compliance": {
                    "allowed_managed_policies": [
                        f"arn:aws:iam::{ACCOUNT_ID}:policy/reader",
                        f"arn:aws:iam::{ACCOUNT_ID}:policy/gone",
                    ]
                }
            },
            f"compliance.allowed_managed_policies.1: arn:aws:iam::{ACCOUNT_ID}:policy/gone does not exist",
            id="missing-allowed-managed-policy",
        ),
        pytest.param(
            {"bucket_grants": {"levels": {"admin": ["s3:GetObject", "s3:PutBucketPolicy"]}}},
            "bucket_grants.levels.admin.1: s3:PutBucketPolicy is not an S3 data-access action RoleWarden grants",
            id="unknown-s3-action",
        ),
    ],
)
def test_validate_finds_each_reference_the_account_does_not_back(
    cli: Callable[..., Result],
    write_config: Callable[..., Path],
    overrides: dict[str, Any],
    expected: str | tuple[str, ...],
) -> None:
    w.create_profile("web-server")
    w.create_profile("admin", role="admin-role", role_path="/")
    iam().create_policy(PolicyName="reader", PolicyDocument=json.dumps(ADMIN_DOC))
    path = write_config(CONFIG, **overrides)
    result = cli("validate", str(path))
    assert result.code == 1, result
    problems = [line.strip() for line in result.out.splitlines()[1:]]
    wanted = (expected,) if isinstance(expected, str) else expected
    assert len(problems) == len(wanted), problems
    assert all(p.startswith(e) for p, e in zip(problems, wanted, strict=True)), problems


def test_validate_offline_checks_the_s3_actions_without_aws(
    cli: Callable[..., Result], write_config: Callable[..., Path]
) -> None:
    path = write_config(CONFIG, bucket_grants={"levels": {"odd": ["s3:Frobnicate"]}})
    with count_calls() as calls:
        result = cli("validate", "--offline", str(path))
    assert result.code == 1
    assert "bucket_grants.levels.odd.0: s3:Frobnicate is not an S3 data-access action" in result.out
    assert calls.total() == 0


# -- history and rollback ---------------------------------------------------------------------------
@pytest.fixture
def table(aws: LocalAws) -> str:
    return w.create_state_table()


def test_history_and_rollback_restore_a_remediated_role_exactly(
    cli: Callable[..., Result], config: Path, table: str
) -> None:
    seed()
    original = role_state("loose")
    applied = cli("apply", "--yes", "--only", "compliance", "--table", table)
    assert applied.code == 0 and "no state table" not in applied.err
    remediated = role_state("loose")
    assert remediated != original

    history = cli("history", "role/loose", "--table", table)
    assert history.code == 0, history
    ((record, _time, kind, rules, trigger, changes),) = [
        re.split(r"\s{2,}", line.strip(), maxsplit=5) for line in history.out.splitlines()[2:3]
    ]
    assert (kind, trigger) == ("remediation", "cli")
    assert rules == "no-admin-access, no-privilege-escalation, trust-ec2-only"
    assert "delete inline policy debug" in changes

    dry = cli("rollback", "role/loose", "--table", table, "--dry-run")
    assert dry.code == 0 and "would restore record" in dry.out
    assert role_state("loose") == remediated

    rolled = cli("rollback", "role/loose", "--table", table)
    assert rolled.code == 0, rolled
    assert f"restored record {record}" in rolled.out and "verified: yes" in rolled.out
    assert role_state("loose") == original
    # The restored state breaks enforce rules: the operator is warned they will be remediated again.
    assert "warning: the restored state breaks trust-ec2-only (enforce)" in rolled.err
    assert "will remediate it again" in rolled.err

    records = cli("history", "role/loose", "--table", table, "--json").json()
    assert [r["kind"] for r in records] == ["rollback", "remediation"]
    assert records[0]["restored_from"] == record
    # The rollback is itself recorded: rolling it back returns the remediated state.
    again = cli("rollback", "role/loose", "--to", records[0]["record_id"], "--table", table, "--json")
    assert again.code == 0 and again.json()["verified"] is True
    assert role_state("loose") == remediated


def test_history_and_rollback_need_the_state_table(cli: Callable[..., Result], config: Path) -> None:
    for argv in (("history", "role/loose"), ("rollback", "role/loose")):
        result = cli(*argv)
        assert result.code == 1
        assert "pass --table NAME or set ROLEWARDEN_TABLE" in result.err


def test_history_reads_rolewarden_table_and_rollback_says_when_there_is_nothing(
    cli: Callable[..., Result], config: Path, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROLEWARDEN_TABLE", table)
    w.create_role("quiet")
    monkeypatch.setenv("ROLEWARDEN_CONFIG", str(config.with_name("absent.yaml")))  # history needs no config
    assert cli("history", "role/quiet").out.strip() == "no records for role/quiet"
    monkeypatch.setenv("ROLEWARDEN_CONFIG", str(config))
    result = cli("rollback", "role/quiet")
    assert result.code == 1 and "no record (latest remediation) for role/quiet" in result.err
    assert cli("history", "quiet").code == 1  # role/NAME is required


# -- errors -----------------------------------------------------------------------------------------
def _no_aws_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *keep: str) -> None:
    from rolewarden.aws import clients

    for key in list(os.environ):
        if key.startswith("AWS_") and key not in ("AWS_ENDPOINT_URL", "AWS_EC2_METADATA_DISABLED", *keep):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    clients.reset()


def test_missing_credentials_are_named(
    cli: Callable[..., Result], config: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_aws_settings(monkeypatch, tmp_path, "AWS_REGION", "AWS_DEFAULT_REGION")
    result = cli("plan")
    assert result.code == 1
    assert result.err.startswith("error: no AWS credentials found: set AWS_PROFILE"), result
    assert result.out == ""


def test_missing_region_is_named(
    cli: Callable[..., Result], config: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_aws_settings(monkeypatch, tmp_path, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    result = cli("explain", "role/anything")
    assert result.code == 1
    assert result.err.startswith("error: no AWS region: set AWS_DEFAULT_REGION"), result


@pytest.mark.parametrize(
    ("argv", "fault", "permission"),
    [
        pytest.param(
            ("explain", "i-0123456789abcdef0"),
            Fault("ec2", "DescribeInstances", "UnauthorizedOperation", "You are not authorized", status=403),
            "ec2:DescribeInstances",
            id="retryable-error-from-aws-module",
        ),
        pytest.param(
            ("explain", "bucket/acme-reports"),
            Fault("s3", "GetBucketTagging", "AccessDenied", "Access Denied", status=403),
            "s3:GetBucketTagging",
            id="s3-read",
        ),
        pytest.param(
            ("validate",),
            Fault("iam", "GetPolicy", "AccessDenied", "not authorized to perform iam:GetPolicy", status=403),
            "iam:GetPolicy",
            id="plain-client-error",
        ),
    ],
)
def test_access_denied_names_the_missing_permission(
    cli: Callable[..., Result],
    write_config: Callable[..., Path],
    argv: tuple[str, ...],
    fault: Fault,
    permission: str,
) -> None:
    write_config(CONFIG, compliance={"permissions_boundary": f"arn:aws:iam::{ACCOUNT_ID}:policy/boundary"})
    seed()
    fault.times = 99
    with inject(fault):
        result = cli(*argv)
    assert result.code == 1, result
    assert f"error: access denied: the caller lacks the permission {permission}" in result.err
    assert "Traceback" not in result.err


def test_throttling_after_retries_is_named(cli: Callable[..., Result], config: Path) -> None:
    seed()
    throttled = Fault("iam", "GetAccountAuthorizationDetails", "Throttling", "Rate exceeded", times=99)
    with inject(throttled):
        result = cli("plan", "--only", "compliance")
    assert result.code == 1
    assert throttled.seen == 6  # botocore's standard retries were used up first
    assert "error: AWS kept throttling iam:GetAccountAuthorizationDetails after retries (Throttling)" in result.err


def test_a_bad_config_is_an_error_before_any_aws_call(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nope.yaml"
    monkeypatch.setenv("ROLEWARDEN_CONFIG", str(missing))
    with count_calls() as calls:
        result = cli("plan")
    assert result.code == 1
    assert f"error: cannot read config file '{missing}'" in result.err
    assert calls.total() == 0


# -- the installed console script -------------------------------------------------------------------
def console(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("rolewarden")
    return subprocess.run(
        [str(script), *argv],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env if env is not None else dict(os.environ),
        timeout=60,
        check=False,
    )


def test_console_script_plans_applies_and_converges(aws: LocalAws, config: Path) -> None:
    instance = seed()["instance"]
    plan = console("plan", "--json")
    assert plan.returncode == 2, plan.stderr
    assert json.loads(plan.stdout)["changes"] == 4
    refused = console("apply")
    assert refused.returncode == 1 and "pass --yes" in refused.stderr
    applied = console("apply", "--yes")
    assert applied.returncode == 0, applied.stderr
    assert "Applied 4, failed 0" in applied.stdout
    assert w.attached_profiles() == {instance: "web-server"}
    again = console("plan")
    assert again.returncode == 0 and "\x1b[" not in again.stdout
    assert "instance_profiles: nothing to do" in again.stdout


def test_console_script_validate_and_missing_credentials(
    aws: LocalAws, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    bad = write_config(CONFIG, instance_profiles={"rules": [{"profile": "x"}]})
    result = console("validate", str(bad))
    assert result.returncode == 1
    assert "instance_profiles.rules.0.match: required key is missing" in result.stdout
    write_config(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
    )
    denied = console("plan", env=env)
    assert denied.returncode == 1
    assert denied.stderr.startswith("error: no AWS credentials found"), denied.stderr


# -- more error paths, each with the line the operator reads ----------------------------------------
def test_rejected_credentials_are_named(cli: Callable[..., Result], config: Path) -> None:
    seed()
    expired = Fault("iam", "GetAccountAuthorizationDetails", "ExpiredToken", "The token is expired", status=403)
    expired.times = 99
    with inject(expired):
        result = cli("plan", "--only", "compliance")
    assert result.code == 1, result
    assert (
        "error: the AWS credentials were rejected (ExpiredToken: The token is expired); refresh them "
        "(e.g. aws sso login)"
    ) in result.err.splitlines()


def test_dynamodb_capacity_exceeded_is_named_as_throttling(
    cli: Callable[..., Result], config: Path, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rolewarden.aws import clients

    monkeypatch.setenv("ROLEWARDEN_MAX_ATTEMPTS", "1")  # no retries: botocore would back off ten times first
    clients.reset()

    def exceeded(_: dict[str, Any]) -> AWSResponse:  # DynamoDB's JSON error shape (faults.py speaks XML)
        body = {"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException", "message": "x"}
        headers = HTTPHeaders.from_dict({"content-type": "application/x-amz-json-1.0"})
        return AWSResponse("https://injected", 400, headers, _Raw(json.dumps(body).encode()))

    capacity = Fault("dynamodb", "GetItem", respond=exceeded)
    capacity.times = 99
    with inject(capacity):
        result = cli("breaker", "status", "--table", table)
    assert result.code == 1, result
    assert result.err == (
        "error: AWS kept throttling dynamodb:GetItem after retries (ProvisionedThroughputExceededException); "
        "retry later, or set ROLEWARDEN_RETRY_MODE=adaptive and ROLEWARDEN_MAX_ATTEMPTS higher\n"
    )


def test_an_error_the_cli_cannot_explain_is_shown_with_its_call_and_code(
    cli: Callable[..., Result], config: Path
) -> None:
    result = cli("breaker", "status", "--table", "no-such-table")
    assert result.code == 1, result
    assert result.err == "error: dynamodb:GetItem failed: ResourceNotFoundException: Requested resource not found\n"


def test_a_denied_write_fails_the_apply_and_names_the_permission(cli: Callable[..., Result], config: Path) -> None:
    instance = seed()["instance"]
    denied = Fault("ec2", "AssociateIamInstanceProfile", "UnauthorizedOperation", "You are not authorized", status=403)
    denied.times = 99
    with inject(denied):
        result = cli("apply", "--yes", "--only", "profiles")
    assert result.code == 1, result
    assert "Applied 0, failed 1, skipped 0" in result.out
    errors = result.err.splitlines()
    assert any(e.startswith(f"error: failed: associate web-server with {instance}: ") for e in errors), errors
    assert (
        "error: access denied: the caller lacks the permission ec2:AssociateIamInstanceProfile "
        "(UnauthorizedOperation: You are not authorized)"
    ) in errors
    assert w.attached_profiles() == {}


def test_an_action_no_longer_needed_when_confirmed_is_not_done_and_said(
    cli: Callable[..., Result], config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = seed()["instance"]
    monkeypatch.setattr(sys, "stdin", TtyInput("yes"))

    def confirm(prompt: str) -> str:  # someone associates the profile while the operator reads the plan
        arn = iam().get_instance_profile(InstanceProfileName="web-server")["InstanceProfile"]["Arn"]
        boto3.client("ec2").associate_iam_instance_profile(IamInstanceProfile={"Arn": arn}, InstanceId=instance)
        return "yes"

    monkeypatch.setattr("builtins.input", confirm)
    with count_calls() as calls:
        result = cli("apply", "--only", "profiles")
    assert result.code == 0, result
    assert "Applied 0, failed 0, skipped 0" in result.out
    assert result.err == f"warning: planned but no longer needed: associate web-server with {instance}\n"
    assert calls.writes() == Counter()  # the association above was boto3's own, not RoleWarden's


def test_apply_json_says_why_nothing_was_applied(cli: Callable[..., Result], write_config: Callable[..., Path]) -> None:
    write_config(CONFIG)  # and an empty account
    nothing = cli("apply", "--json")
    assert nothing.code == 0, nothing
    assert nothing.json()["apply"] == {"status": "Nothing to apply."} and nothing.json()["changes"] == 0
    write_config(CONFIG, dry_run=True)
    seed()
    dry = cli("apply", "--yes", "--json")
    assert dry.code == 2, dry
    assert dry.json()["apply"] == {"status": "The config says dry_run: true; nothing was applied."}
    assert dry.json()["changes"] == 4 and dry.err == ""


def test_an_interrupted_confirmation_changes_nothing(
    cli: Callable[..., Result], config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed()
    monkeypatch.setattr(sys, "stdin", TtyInput(""))

    def interrupt(prompt: str) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr("builtins.input", interrupt)
    with count_calls() as calls:
        result = cli("apply")
    assert result.code == 1
    assert result.err == "error: interrupted\n"
    assert calls.writes() == Counter()


def test_apply_table_flag_wins_for_the_run_and_the_environment_is_put_back(
    cli: Callable[..., Result], config: Path, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed()
    monkeypatch.setenv("ROLEWARDEN_TABLE", "some-other-table")
    result = cli("apply", "--yes", "--only", "compliance", "--table", table)
    assert result.code == 0, result
    assert os.environ["ROLEWARDEN_TABLE"] == "some-other-table"
    assert [r["kind"] for r in cli("history", "role/loose", "--table", table, "--json").json()] == ["remediation"]


def test_rolling_back_an_added_boundary_lists_its_removal(
    cli: Callable[..., Result], write_config: Callable[..., Path], table: str
) -> None:
    boundary = iam().create_policy(PolicyName="boundary", PolicyDocument=json.dumps(ADMIN_DOC))["Policy"]["Arn"]
    write_config(CONFIG, compliance={"permissions_boundary": boundary})
    w.create_role("app")
    w.create_profile("web-server")
    iam().put_role_permissions_boundary(RoleName="web-server", PermissionsBoundary=boundary)
    applied = cli("apply", "--yes", "--only", "compliance", "--table", table)
    assert applied.code == 0, applied
    assert role_state("app")["boundary"] == boundary
    (record,) = cli("history", "role/app", "--table", table, "--json").json()
    dry = cli("rollback", "role/app", "--dry-run", "--table", table)
    assert dry.code == 0, dry
    assert dry.out == f"role app: would restore record {record['record_id']} (1 step(s))\n  delete-boundary: \n"
    assert role_state("app")["boundary"] == boundary


def test_a_tripped_breaker_is_shown_and_reset_even_when_the_caller_is_unknown(
    cli: Callable[..., Result], config: Path, table: str
) -> None:
    import time

    from rolewarden.aws.breaker import put_trip
    from rolewarden.breaker import limits_of
    from rolewarden.config import load_config
    from rolewarden.decide.breaker import new_trip

    assert put_trip(table, new_trip(time.time(), limits_of(load_config(str(config))), "run-over-limit", [], "test"))
    status = cli("breaker", "status", "--table", table)
    assert status.code == 3, status
    lines = status.out.splitlines()
    assert re.fullmatch(r"circuit breaker: TRIPPED at \S+Z \(run-over-limit\), until \S+Z", lines[0]), lines
    assert lines[1] == "  reset with: rolewarden breaker reset --reason TEXT"
    assert re.fullmatch(r"this window \S+Z \.\. \S+Z: 0 of 25 per 60 min", lines[2]), lines
    assert "roles withheld" not in status.out  # no roles named in this trip
    unknown = Fault("sts", "GetCallerIdentity", "AccessDenied", "not authorized", status=403)
    with inject(unknown):
        reset = cli("breaker", "reset", "--reason", "fixed", "--table", table)
    assert reset.code == 0, reset
    first = reset.out.splitlines()[0]
    assert first == "circuit breaker reset: it had tripped (run-over-limit); remediation resumes now"
    assert "(operator unknown (sts:GetCallerIdentity failed: ClientError), reason: fixed)" in reset.out
    assert cli("breaker", "status", "--table", table).code == 0


def test_python_m_rolewarden_cli_runs_the_same_command_line(
    aws: LocalAws, config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import runpy

    monkeypatch.setattr(sys, "argv", ["python -m rolewarden.cli", "validate", "--offline", str(config)])
    with pytest.raises(SystemExit) as exited:
        runpy.run_module("rolewarden.cli", run_name="__main__")
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"config {config} is valid\n"
