"""no-privilege-escalation beyond the corpus: remedies, Deny across policies, modes and exemptions, the
public ``judge_documents`` entry, and the ec2-instance-profile decision."""

from __future__ import annotations

from typing import Any

import pytest

from rolewarden.config import parse_config
from rolewarden.decide.compliance.judge import decide_role, judge_documents
from rolewarden.decide.compliance.rule import Remedy
from rolewarden.decide.escalation.catalog import PATHS
from rolewarden.decide.escalation.path import CATEGORIES
from rolewarden.errors import ConfigError
from rolewarden.model.compliance import CreateInstanceProfile
from rolewarden.model.iam import Role

ACCOUNT = "123456789012"
MANAGED = f"arn:aws:iam::{ACCOUNT}:policy/team/lambda-dev"
EC2_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def config(text: str = "") -> Any:
    return parse_config("version: 1\n" + text)


def judge(inline: dict[str, Any], managed: dict[str, Any] | None = None, cfg: Any = None) -> list[Any]:
    return judge_documents(cfg or config(), inline, managed, role_name="app", account=ACCOUNT)


def paths_of(found: list[Any]) -> set[str]:
    return {p["id"] for v, _m in found for p in v.details.get("paths", [])}


def test_every_path_has_sources_a_category_and_a_key_need() -> None:
    for path in PATHS:
        assert path.sources and path.category in CATEGORIES, path.id
        assert any(n.key for n in path.needs), path.id


def test_remedy_removes_the_passrole_statement_and_keeps_the_lambda_ones() -> None:
    found = judge({"p": doc(allow(["lambda:CreateFunction", "lambda:InvokeFunction"]), allow("iam:PassRole"))})
    (violation, mode) = next((v, m) for v, m in found if v.rule == "no-privilege-escalation")
    assert mode == "enforce"
    assert violation.remedy == Remedy("remove-statements", policy="p", statements=(1,))
    assert violation.details["paths"][0]["sources"][:2] == ["rhino:15", "pathfinding:lambda-001"]


def test_a_managed_policy_that_opens_a_path_is_detached_and_the_companion_policy_stays() -> None:
    found = judge({"run": doc(allow(["ec2:RunInstances"]))}, {MANAGED: doc(allow("iam:PassRole"))})
    assert [v.remedy for v, _m in found] == [Remedy("detach", policy=MANAGED)]


def test_an_unconditional_deny_in_another_policy_closes_the_path() -> None:
    opened = {"a": doc(allow("ssm:SendCommand"))}
    assert paths_of(judge(opened)) == {"ssm-002"}
    assert judge({**opened, "guard": doc({"Effect": "Deny", "Action": "ssm:Send*", "Resource": "*"})}) == []
    conditional = {
        "Effect": "Deny",
        "Action": "ssm:*",
        "Resource": "*",
        "Condition": {"Bool": {"aws:ViaAWSService": "false"}},
    }
    assert paths_of(judge({**opened, "guard": doc(conditional)})) == {"ssm-002"}


def test_a_deny_on_the_role_itself_closes_a_self_targeting_write() -> None:
    own = f"arn:aws:iam::{ACCOUNT}:role/rolewarden/app"
    write = allow("iam:PutRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/rolewarden/*")
    assert paths_of(judge({"a": doc(write)})) == {"iam-005"}
    assert judge({"a": doc(write, {"Effect": "Deny", "Action": "iam:PutRolePolicy", "Resource": own})}) == []


@pytest.mark.parametrize(
    ("settings", "modes"),
    [
        ("", ["enforce"]),
        ("compliance:\n  escalation: {categories: {existing-compute: report}}\n", ["report"]),
        ("compliance:\n  escalation: {categories: {existing-compute: 'off'}}\n", []),
        ("compliance:\n  rules: {no-privilege-escalation: report}\n", ["report"]),
        (
            "compliance:\n  rules: {no-privilege-escalation: report}\n"
            "  escalation: {categories: {existing-compute: enforce}}\n",
            ["report"],
        ),
        ("compliance:\n  escalation: {exemptions: [{roles: ['ap?'], paths: [ssm-002], reason: patching}]}\n", []),
        ("compliance:\n  escalation: {exemptions: [{roles: [app], paths: [existing-compute], reason: ops}]}\n", []),
        ("compliance:\n  escalation: {exemptions: [{roles: [other], paths: [ssm-002], reason: ops}]}\n", ["enforce"]),
    ],
    ids=[
        "default-enforce",
        "category-report",
        "category-off",
        "rule-report",
        "rule-mode-caps-category",
        "exempt-path-pattern",
        "exempt-category",
        "exemption-for-another-role",
    ],
)
def test_modes_and_exemptions(settings: str, modes: list[str]) -> None:
    found = judge({"a": doc(allow("ssm:SendCommand"))}, cfg=config(settings))
    assert [m for v, m in found if v.rule == "no-privilege-escalation"] == modes


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ("escalation: {categories: {compute: report}}", "unknown escalation categories ['compute']"),
        ("escalation: {categories: {trust: block}}", "Input should be 'enforce', 'report' or 'off'"),
        ("escalation: {exemptions: [{roles: [a], paths: [ssm-999], reason: x}]}", "['ssm-999']"),
        ("escalation: {exemptions: [{roles: ['*'], paths: [ssm-002], reason: x}]}", "a bare '*' exempts all"),
        ("escalation: {exemptions: [{roles: [a], paths: [ssm-002]}]}", "reason: required key is missing"),
        ("escalation: {exemptions: [{roles: [a], paths: [], reason: x}]}", "paths"),
        ("rules: {ec2-instance-profile: always}", "Input should be 'enforce', 'report' or 'off'"),
    ],
)
def test_bad_escalation_settings_are_refused_with_the_key_path(settings: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f"version: 1\ncompliance:\n  {settings}\n", "cfg.yaml")
    assert "cfg.yaml" in str(caught.value) and message in str(caught.value)


def test_judge_documents_reports_admin_access_too_and_reads_json_strings() -> None:
    import json

    found = judge({"a": json.dumps(doc(allow("*")))})
    assert {v.rule for v, _m in found} == {"no-admin-access", "no-privilege-escalation"}


# ------------------------------------------------------------------ ec2-instance-profile
def _role(trust: Any, profiles: tuple[str, ...] | None) -> Role:
    return Role("web", f"arn:aws:iam::{ACCOUNT}:role/rolewarden/web", "/rolewarden/", trust, instance_profiles=profiles)


@pytest.mark.parametrize(
    ("trust", "profiles", "planned"),
    [
        (EC2_TRUST, (), True),
        (EC2_TRUST, ("web",), False),
        (EC2_TRUST, None, False),  # not read: no decision
        (
            {"Statement": [{"Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com"]}, "Action": "sts:*"}]},
            (),
            False,
        ),
        (
            {"Statement": {"Effect": "Allow", "Principal": {"Service": ["EC2.amazonaws.com"]}, "Action": "sts:*"}},
            (),
            True,
        ),
        ("{not json", (), False),
        ({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}]}, (), False),
        (
            {"Statement": [{"Effect": "Deny", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:*"}]},
            (),
            False,
        ),
    ],
    ids=[
        "ec2-no-profile",
        "has-profile",
        "profiles-not-read",
        "lambda-trust",
        "ec2-in-a-list-any-case",
        "unreadable-trust",
        "anyone-not-a-service",
        "ec2-denied",
    ],
)
def test_instance_profile_decision(trust: Any, profiles: tuple[str, ...] | None, planned: bool) -> None:
    cfg = config("compliance:\n  rules: {ec2-instance-profile: enforce, trust-ec2-only: 'off'}\n")
    decision = decide_role(_role(trust, profiles), cfg, {})
    made = [a for a in decision.actions if isinstance(a, CreateInstanceProfile)]
    assert bool(made) is planned
    if planned:
        assert (made[0].profile_name, made[0].profile_path, made[0].scope) == ("web", "/rolewarden/", "/rolewarden/")


def test_a_deny_on_the_role_itself_closes_the_self_path_even_under_a_broad_allow() -> None:
    own = f"arn:aws:iam::{ACCOUNT}:role/rolewarden/app"
    found = judge({"a": doc(allow("iam:PutRolePolicy"), {"Effect": "Deny", "Action": "iam:*", "Resource": own})})
    assert "iam-005" not in paths_of(found)


def test_judge_documents_skips_a_content_rule_that_is_off() -> None:
    documents = {"admin": doc(allow("*")), "pass": doc(allow("iam:PassRole"), allow("lambda:CreateFunction"))}
    both = {v.rule for v, _m in judge(documents)}
    assert both == {"no-admin-access", "no-privilege-escalation"}
    only = judge(documents, cfg=config("compliance:\n  rules: {no-admin-access: 'off'}\n"))
    assert {v.rule for v, _m in only} == {"no-privilege-escalation"}
