"""no-privilege-escalation's config (exemptions, category modes) and the ec2-instance-profile remedy, end
to end: the real handler (functions/role_compliance/app.py) against the moto server over HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rolewarden.errors import ConfigError
from rwlocal import world as w
from rwlocal.configs import config_yaml
from rwlocal.server import LocalAws
from tests.functional.helpers import compliance_app, iam, invoke, sample, sink_of

ROLE = "web-server"  # the role the sample CloudTrail events name
COMPLIANCE = config_yaml()
SSM_RUNNER = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/*"},
        {"Sid": "RunCommands", "Effect": "Allow", "Action": "ssm:SendCommand", "Resource": "*"},
    ],
}


@pytest.fixture
def app(aws: LocalAws) -> Any:
    return compliance_app()


@pytest.fixture
def configure(write_config: Callable[..., Path]) -> Callable[..., Path]:
    def make(**compliance: Any) -> Path:
        return write_config(COMPLIANCE, compliance=compliance)

    return make


def findings(app: Any, rule: str) -> list[dict[str, Any]]:
    return [f.as_dict() for f in sink_of(app).findings if f.rule == rule]


def inline(role: str) -> dict[str, Any]:
    client = iam()
    return {
        name: client.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        for name in client.list_role_policies(RoleName=role)["PolicyNames"]
    }


def profiles(role: str) -> list[dict[str, Any]]:
    return list(iam().list_instance_profiles_for_role(RoleName=role)["InstanceProfiles"])


# ------------------------------------------------------------------ no-privilege-escalation
def test_finding_names_the_path_and_its_sources_and_only_the_opening_statement_goes(
    app: Any, configure: Callable[..., Path]
) -> None:
    configure()
    w.create_role(ROLE)
    iam().put_role_policy(RoleName=ROLE, PolicyName="ops", PolicyDocument=json.dumps(SSM_RUNNER))

    assert invoke(app, sample("cloudtrail-iam-putrolepolicy.json"))["failed"] == 0

    (finding,) = findings(app, "no-privilege-escalation")
    assert "ssm-002" in finding["message"] and "pathfinding:ssm-002" in finding["message"]
    assert [p["id"] for p in finding["details"]["paths"]] == ["ssm-002"]
    assert finding["details"]["paths"][0]["category"] == "existing-compute"
    assert inline(ROLE) == {"ops": {"Version": "2012-10-17", "Statement": [SSM_RUNNER["Statement"][0]]}}


def test_an_exempt_path_is_neither_reported_nor_removed(app: Any, configure: Callable[..., Path]) -> None:
    configure(
        escalation={
            "exemptions": [{"roles": ["web-*"], "paths": ["ssm-002"], "reason": "runs patching commands by design"}]
        }
    )
    w.create_role(ROLE)
    iam().put_role_policy(RoleName=ROLE, PolicyName="ops", PolicyDocument=json.dumps(SSM_RUNNER))

    invoke(app, sample("cloudtrail-iam-putrolepolicy.json"))

    assert findings(app, "no-privilege-escalation") == []
    assert inline(ROLE) == {"ops": SSM_RUNNER}


def test_a_category_in_report_mode_is_reported_and_left_in_place(app: Any, configure: Callable[..., Path]) -> None:
    configure(escalation={"categories": {"existing-compute": "report"}})
    w.create_role(ROLE)
    iam().put_role_policy(RoleName=ROLE, PolicyName="ops", PolicyDocument=json.dumps(SSM_RUNNER))

    invoke(app, sample("cloudtrail-iam-putrolepolicy.json"))

    (finding,) = findings(app, "no-privilege-escalation")
    assert finding["details"]["mode"] == "report"
    assert inline(ROLE) == {"ops": SSM_RUNNER}


def test_an_unknown_path_in_an_exemption_is_refused_and_nothing_changes(
    app: Any, configure: Callable[..., Path]
) -> None:
    configure(escalation={"exemptions": [{"roles": [ROLE], "paths": ["ssm-999"], "reason": "typo"}]})
    w.create_role(ROLE)
    iam().put_role_policy(RoleName=ROLE, PolicyName="ops", PolicyDocument=json.dumps(SSM_RUNNER))

    with pytest.raises(ConfigError, match=r"ssm-999"):
        invoke(app, sample("cloudtrail-iam-putrolepolicy.json"))

    assert inline(ROLE) == {"ops": SSM_RUNNER}


# ------------------------------------------------------------------ ec2-instance-profile
def test_ec2_role_without_a_profile_gets_one_of_its_name_and_path(app: Any, configure: Callable[..., Path]) -> None:
    configure(rules={"ec2-instance-profile": "enforce"})
    w.create_role(ROLE)

    assert invoke(app, sample("cloudtrail-iam-createrole.json"))["failed"] == 0

    (profile,) = profiles(ROLE)
    assert (profile["InstanceProfileName"], profile["Path"]) == (ROLE, "/rolewarden/")
    assert [r["RoleName"] for r in profile["Roles"]] == [ROLE]
    (finding,) = findings(app, "ec2-instance-profile")
    assert finding["details"]["mode"] == "enforce"
    # Level-based: the next event finds the profile and does nothing.
    invoke(app, sample("cloudtrail-iam-createrole.json"))
    assert findings(app, "ec2-instance-profile") == [] and len(profiles(ROLE)) == 1


def test_the_rule_is_off_by_default(app: Any, configure: Callable[..., Path]) -> None:
    configure()
    w.create_role(ROLE)
    invoke(app, sample("cloudtrail-iam-createrole.json"))
    assert profiles(ROLE) == [] and findings(app, "ec2-instance-profile") == []


def test_report_mode_only_reports(app: Any, configure: Callable[..., Path]) -> None:
    configure(rules={"ec2-instance-profile": "report"})
    w.create_role(ROLE)
    invoke(app, sample("cloudtrail-iam-createrole.json"))
    assert profiles(ROLE) == []
    assert [f["details"]["mode"] for f in findings(app, "ec2-instance-profile")] == ["report"]


def test_sweep_reads_profiles_from_the_one_gaad_call(app: Any, configure: Callable[..., Path]) -> None:
    """A role already in a profile (of any name) is left alone; one that EC2 cannot assume needs none."""
    configure(rules={"ec2-instance-profile": "enforce", "trust-ec2-only": "off"})
    w.create_role("bare")
    w.create_profile("shared-profile", role="has-one")
    lambda_trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    w.create_role("lambda-only", trust=lambda_trust)

    assert invoke(app, sample("scheduled-sweep.json"))["failed"] == 0

    assert [p["InstanceProfileName"] for p in profiles("bare")] == ["bare"]
    assert [p["InstanceProfileName"] for p in profiles("has-one")] == ["shared-profile"]
    assert profiles("lambda-only") == []


def test_a_profile_of_that_name_holding_another_role_is_not_taken_over(
    app: Any, configure: Callable[..., Path]
) -> None:
    configure(rules={"ec2-instance-profile": "enforce"})
    w.create_role(ROLE)
    w.create_role("other")
    iam().create_instance_profile(InstanceProfileName=ROLE, Path="/rolewarden/")
    iam().add_role_to_instance_profile(InstanceProfileName=ROLE, RoleName="other")

    with pytest.raises(RuntimeError, match="already holds another role"):  # permanent: DLQ with the reason
        invoke(app, sample("cloudtrail-iam-createrole.json"))

    held = iam().get_instance_profile(InstanceProfileName=ROLE)["InstanceProfile"]["Roles"]
    assert [r["RoleName"] for r in held] == ["other"]
    assert profiles(ROLE) == []
