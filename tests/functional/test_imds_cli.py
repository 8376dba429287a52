"""`rolewarden explain i-…` and `rolewarden plan` with IMDSv2 and the instance-credential perimeter (issue 15)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from rwlocal import world as w
from rwlocal.configs import WEB_RULE, config_yaml
from rwlocal.faults import count_calls
from tests.functional.helpers import Result

CONFIG = config_yaml(
    instance_profiles={"rules": [WEB_RULE], "metadata": {"imdsv2": "enforce", "hop_limit": 2}},
    compliance={
        "rules": {"instance-credential-perimeter": "enforce"},
        "instance_perimeter": {"endpoint_services": [{"roles": ["web-server"], "services": ["s3", "sqs"]}]},
    },
)
APP = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}


@pytest.fixture
def cli(cli: Callable[..., Result], write_config: Callable[..., Path]) -> Callable[..., tuple[int, str]]:
    """The shared ``cli`` fixture on this file's config, answering (exit code, stdout)."""
    write_config(CONFIG)

    def run(*argv: str) -> tuple[int, str]:
        result = cli(*argv)
        return result.code, result.out

    return run


def seed() -> str:
    w.create_profile("web-server")
    boto3.client("iam").put_role_policy(RoleName="web-server", PolicyName="app", PolicyDocument=json.dumps(APP))
    return w.run_instance({"rolewarden:profile": "web"})


def test_plan_lists_the_metadata_change_and_the_perimeter_and_apply_does_both(cli: Callable[..., Any]) -> None:
    instance = seed()
    code, out = cli("plan", "--json")
    assert code == 2
    plan = json.loads(out)
    actions = {(a["action"], a["resource"]) for c in plan["capabilities"].values() for a in c["actions"]}
    assert ("associate", instance) in actions
    assert ("require-imdsv2", instance) in actions
    assert ("put-inline-policy", "role/web-server") in actions
    with count_calls() as calls:
        code, _out = cli("apply", "--yes")
    assert code == 0
    assert calls.writes()["ec2:ModifyInstanceMetadataOptions"] == 1
    assert calls.writes()["iam:PutRolePolicy"] == 1
    assert cli("plan")[0] == 0


def test_explain_shows_metadata_options_and_the_perimeter(cli: Callable[..., Any]) -> None:
    instance = seed()
    code, out = cli("explain", instance, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["metadata options"].startswith("HttpTokens optional (IMDSv1 and IMDSv2), hop limit 1")
    assert data["imdsv2"].startswith("require:")
    assert data["perimeter"].startswith("role web-server: no (")
    assert "services through endpoints: s3" in data["perimeter"]
    cli("apply", "--yes")
    after = json.loads(cli("explain", instance, "--json")[1])
    assert after["metadata options"].startswith("HttpTokens required (IMDSv2 only), hop limit 2")
    assert after["imdsv2"].startswith("secure:")
    assert after["perimeter"].startswith("role web-server: yes (")
    assert after["would do"] == "nothing"
