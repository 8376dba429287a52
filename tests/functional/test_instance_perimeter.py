"""The instance-credential perimeter (issue 15) end to end: the role-compliance handler against moto over HTTP,
fed with the real-shaped CloudTrail events of events/; the remedy recorded for rollback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from rwlocal import world as w
from rwlocal.faults import count_calls
from rwlocal.iamcatalog import problems
from rwlocal.server import LocalAws
from tests.functional.helpers import invoke, load_app, sample, sink_of

ROLE = "web-server"
POLICY = "rolewarden-instance-perimeter"
APP_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "sqs:SendMessage"], "Resource": "*"},
        {"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "*"},
    ],
}


def iam() -> Any:
    return boto3.client("iam")


@pytest.fixture
def app(aws: LocalAws, write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Any:
    from rolewarden.aws import iam_snapshot

    iam_snapshot.clear_caches()
    monkeypatch.setenv("ROLEWARDEN_TABLE", w.create_state_table())
    return load_app("role_compliance")


def configure(write_config: Callable[..., Path], mode: str = "enforce", **extra: Any) -> None:
    write_config(
        "version: 1\nmanaged_path: /rolewarden/\n",
        compliance={
            "rules": {"instance-credential-perimeter": mode},
            "instance_perimeter": {
                "endpoint_services": [{"roles": [ROLE], "services": ["s3", "sqs", "dynamodb"], "note": "vpc-app"}]
            },
            **extra,
        },
    )


def inline(role: str) -> dict[str, Any]:
    client = iam()
    return {
        n: client.get_role_policy(RoleName=role, PolicyName=n)["PolicyDocument"]
        for n in client.list_role_policies(RoleName=role)["PolicyNames"]
    }


def test_the_perimeter_is_put_on_an_ec2_role_scoped_to_its_endpoint_services(
    app: Any, write_config: Callable[..., Path]
) -> None:
    configure(write_config)
    w.create_role(ROLE)
    iam().put_role_policy(RoleName=ROLE, PolicyName="app", PolicyDocument=json.dumps(APP_POLICY))
    with count_calls() as calls:
        result = invoke(app, sample("cloudtrail-iam-putrolepolicy.json"))
    assert not (result or {}).get("batchItemFailures")
    document = inline(ROLE)[POLICY]
    statements = document["Statement"]
    assert [s["Action"] for s in statements] == [["s3:*", "sqs:*"]] * 2  # not ssm (no endpoint), not dynamodb (unused)
    assert problems(document, where=POLICY) == []
    assert calls.writes()["iam:PutRolePolicy"] == 1
    messages = [f.message for f in sink_of(app).findings if f.rule == "instance-credential-perimeter"]
    assert any("cannot cover ssm" in m for m in messages)  # what it cannot cover, said plainly
    gap = next(m for m in messages if "cannot cover ssm" in m)
    assert gap.endswith(": reported only")  # the rule is enforced; a gap is simply nothing it can change
    assert any(f.rule == "remediated" for f in sink_of(app).findings)

    # the second pass writes nothing
    with count_calls() as again:
        invoke(app, sample("cloudtrail-iam-putrolepolicy.json"))
    assert "iam:PutRolePolicy" not in again.writes()


def test_report_mode_and_unconfigured_roles_write_nothing(app: Any, write_config: Callable[..., Path]) -> None:
    configure(write_config, mode="report")
    w.create_role(ROLE)
    iam().put_role_policy(RoleName=ROLE, PolicyName="app", PolicyDocument=json.dumps(APP_POLICY))
    with count_calls() as calls:
        invoke(app, sample("cloudtrail-iam-putrolepolicy.json"))
    assert "iam:PutRolePolicy" not in calls.writes()
    assert POLICY not in inline(ROLE)
    messages = [f.message for f in sink_of(app).findings if f.rule == "instance-credential-perimeter"]
    assert any("is missing" in m for m in messages)


def test_a_role_without_endpoint_services_gets_only_a_report(app: Any, write_config: Callable[..., Path]) -> None:
    write_config(
        "version: 1\nmanaged_path: /rolewarden/\n", compliance={"rules": {"instance-credential-perimeter": "enforce"}}
    )
    w.create_role(ROLE)
    iam().put_role_policy(RoleName=ROLE, PolicyName="app", PolicyDocument=json.dumps(APP_POLICY))
    with count_calls() as calls:
        invoke(app, sample("cloudtrail-iam-putrolepolicy.json"))
    assert "iam:PutRolePolicy" not in calls.writes()
    (finding,) = [f for f in sink_of(app).findings if f.rule == "instance-credential-perimeter"]
    assert "no endpoint services are configured" in finding.message


def test_the_perimeter_is_recorded_and_rolled_back(app: Any, write_config: Callable[..., Path]) -> None:
    from rolewarden.operator import compliance

    configure(write_config)
    w.create_role(ROLE)
    iam().put_role_policy(RoleName=ROLE, PolicyName="app", PolicyDocument=json.dumps(APP_POLICY))
    invoke(app, sample("cloudtrail-iam-putrolepolicy.json"))
    assert POLICY in inline(ROLE)
    (record,) = compliance.history(ROLE)
    assert POLICY not in record["prior"]["inline_policies"]
    compliance.rollback(ROLE)
    assert set(inline(ROLE)) == {"app"}
