"""Role compliance when a read or a record fails: the real handler against the moto server over HTTP, with
the failing answers (throttling, an unreadable table) injected at the botocore level, since moto gives
neither. A failed read fails exactly the records it concerns (retried by SQS); nothing is written from a
partial read; a remediation whose prior state cannot be recorded is not made."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from rolewarden.aws import iam_snapshot
from rolewarden.aws.iam import get_instance_profile, read_profile_role
from rolewarden.errors import RetryableError
from rolewarden.model.instances import ProfileInfo
from rwlocal import world as w
from rwlocal.faults import Fault, inject
from rwlocal.server import ACCOUNT_ID, LocalAws
from tests.functional.helpers import invoke, load_app, sample

ROLE = "web-server"
CONFIG = """
version: 1
managed_path: /rolewarden/
"""
THROTTLED = {"code": "Throttling", "message": "Rate exceeded", "times": 99}


def iam() -> Any:
    return boto3.client("iam")


@pytest.fixture
def app(aws: LocalAws, write_config: Callable[..., Path]) -> Any:
    iam_snapshot.clear_caches()
    write_config(CONFIG)
    return load_app("role_compliance")


def event(name: str, **replace: str) -> dict[str, Any]:
    return sample(f"cloudtrail-iam-{name.lower()}.json", **replace)


def trust() -> Any:
    return iam().get_role(RoleName=ROLE)["Role"]["AssumeRolePolicyDocument"]


@pytest.mark.parametrize(
    ("operation", "name", "what"),
    [
        # the roles a changed policy is attached to
        ("ListEntitiesForPolicy", "CreatePolicyVersion", "iam:ListEntitiesForPolicy"),
        # completing a role in scope
        ("ListAttachedRolePolicies", "UpdateAssumeRolePolicy", "reading the policies of role web-server"),
        # the documents of its attached policies
        ("GetPolicy", "UpdateAssumeRolePolicy", "iam:GetPolicy/GetPolicyVersion"),
    ],
)
def test_a_failed_event_read_fails_the_record_and_writes_nothing(
    app: Any, operation: str, name: str, what: str
) -> None:
    w.create_role(ROLE, trust=w.LOOSE_TRUST)
    arn = iam().create_policy(PolicyName="tools", Path="/rolewarden/", PolicyDocument=json.dumps(w.ADMIN_DOCUMENT))
    policy = str(arn["Policy"]["Arn"])
    iam().attach_role_policy(RoleName=ROLE, PolicyArn=policy)
    grant = f"arn:aws:iam::{ACCOUNT_ID}:policy/rolewarden/rolewarden-grants-{ROLE}"
    with (
        inject(Fault("iam", operation, **THROTTLED)),
        pytest.raises(RuntimeError, match=f"{what}.* failed: Throttling"),
    ):
        invoke(app, event(name, **{grant: policy}))
    assert trust() == w.LOOSE_TRUST
    assert [p["PolicyArn"] for p in iam().list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"]] == [policy]


def test_a_failed_sweep_read_fails_the_sweep(app: Any) -> None:
    w.create_role(ROLE, trust=w.LOOSE_TRUST)
    with (
        inject(Fault("iam", "GetAccountAuthorizationDetails", **THROTTLED)),
        pytest.raises(RuntimeError, match=r"GetAccountAuthorizationDetails.* failed: Throttling"),
    ):
        invoke(app, sample("scheduled-sweep.json"))
    assert trust() == w.LOOSE_TRUST


@pytest.fixture
def table(aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ROLEWARDEN_TABLE", w.create_state_table())
    return "rolewarden-state"


def test_a_remediation_whose_prior_state_cannot_be_recorded_is_not_made(app: Any, table: str) -> None:
    w.create_role(ROLE, trust=w.LOOSE_TRUST)
    from rolewarden.aws import records

    throttled = Fault("dynamodb", "PutItem", "ThrottlingException", "Rate exceeded", times=99)
    events = records._table(table).meta.client.meta.events  # records write through a boto3 Table resource
    events.register("before-send.dynamodb.PutItem", throttled)
    try:
        with pytest.raises(RuntimeError, match="recording the prior state of role web-server"):
            invoke(app, event("UpdateAssumeRolePolicy"))
    finally:
        events.unregister("before-send.dynamodb.PutItem", throttled)
    assert throttled.seen >= 1
    assert trust() == w.LOOSE_TRUST


def test_a_remediation_lease_that_cannot_be_taken_retries_and_writes_nothing(app: Any, table: str) -> None:
    w.create_role(ROLE, trust=w.LOOSE_TRUST)
    throttled = Fault("dynamodb", "UpdateItem", "ThrottlingException", "Rate exceeded", times=99)
    with inject(throttled), pytest.raises(RuntimeError, match="Throttling"):
        invoke(app, event("UpdateAssumeRolePolicy"))
    assert trust() == w.LOOSE_TRUST


# ------------------------------------------------------------------ the profile guard's reads (aws/iam.py)
def test_the_profile_guard_reads_a_profile_and_its_role_through_the_one_reader(aws: LocalAws) -> None:
    iam_snapshot.clear_caches()
    w.create_profile(ROLE)
    info = get_instance_profile(ROLE)
    assert info is not None and info.role_names == (ROLE,)
    assert get_instance_profile("nobody") is None
    read = read_profile_role(info, "/rolewarden/", need_boundary=True)
    assert read is not None and read[0].name == ROLE and read[0].trust == w.EC2_TRUST
    with inject(Fault("iam", "GetInstanceProfile", **THROTTLED)), pytest.raises(RetryableError):
        get_instance_profile(ROLE)


@pytest.mark.parametrize("need_boundary", [True, False])
def test_the_profile_guard_sees_a_role_that_vanished_as_none(aws: LocalAws, need_boundary: bool) -> None:
    gone = ProfileInfo("p", f"arn:aws:iam::{ACCOUNT_ID}:instance-profile/p", ("gone",), ("/rolewarden/",))
    assert read_profile_role(gone, "/rolewarden/", need_boundary=need_boundary) is None
