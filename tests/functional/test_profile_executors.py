"""The instance-profile executors' re-checks and retry loops, each exercised so that removing it fails a test.

The executors (``rolewarden.aws.profiles``) write to EC2 right after a decision read the instance; what
they re-check at write time is what keeps a stale decision from doing harm (docs/threat-model.md):
an association that another writer created or replaced since the read is a ``conflict`` (re-read and
decide again, never a second association or a swap of someone else's association), an instance that
went away is ``gone``, and an instance profile IAM has not propagated to EC2 yet is retried inside the
invocation (replace and associate alike) up to the propagation budget, then the record is retried.

Real boto3 clients over HTTP to the moto server. moto answers neither IAM's propagation delay nor
EC2's IncorrectState for a replace on an association that is no longer active; those answers are
injected at the botocore level with EC2's real error shapes, as each test says.
"""

from __future__ import annotations

from typing import Any

import pytest

from rolewarden.aws.executor import ActionResult, Executor
from rolewarden.model.profiles import AssociateProfile, ReassociateProfile, ReplaceProfile
from rolewarden.telemetry import Sink
from rwlocal import world as w
from rwlocal.faults import Fault, count_calls, inject

PROPAGATION = "Value (web-server) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"


@pytest.fixture
def profiles(aws: Any) -> dict[str, str]:
    return {"web-server": w.create_profile("web-server"), "data-worker": w.create_profile("data-worker", role="data")}


def executor(budget: float = 30.0) -> tuple[Executor, list[float]]:
    sleeps: list[float] = []
    return Executor(Sink(), sleep=sleeps.append, propagation_budget=budget), sleeps


def association_of(instance_id: str) -> str:
    found = w.ec2().describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}]
    )["IamInstanceProfileAssociations"]
    return str(found[0]["AssociationId"])


def swap(kind: type[ReplaceProfile] | type[ReassociateProfile], profiles: dict[str, str]) -> tuple[str, Any]:
    """An instance holding data-worker, and the action that swaps it for web-server (as read just now)."""
    instance = w.run_instance(profile_arn=profiles["data-worker"])
    action = kind(instance, association_of(instance), "web-server", profiles["web-server"], profiles["data-worker"])
    return instance, action


def run(action: Any, budget: float = 30.0) -> tuple[ActionResult, list[float]]:
    ex, sleeps = executor(budget)
    return ex.execute_one(action), sleeps


# -- associate --------------------------------------------------------------------------------------
def test_associate_on_an_instance_that_meanwhile_got_an_association_is_a_conflict(profiles: dict[str, str]) -> None:
    instance = w.run_instance(profile_arn=profiles["data-worker"])  # the decision read it without one
    result, _ = run(AssociateProfile(instance, "web-server", profiles["web-server"]))
    assert (result.status, result.retryable) == ("conflict", True)
    assert w.attached_profiles() == {instance: "data-worker"}  # no second association, nothing swapped


def test_associate_on_an_instance_that_went_away_is_gone(profiles: dict[str, str]) -> None:
    result, _ = run(AssociateProfile("i-0123456789abcdef0", "web-server", profiles["web-server"]))
    assert result.status == "gone"


def test_associate_retries_a_profile_ec2_cannot_see_yet(profiles: dict[str, str]) -> None:
    """EC2 answers InvalidParameterValue for a just-created profile (injected: moto has no propagation)."""
    instance = w.run_instance()
    fault = Fault("ec2", "AssociateIamInstanceProfile", "InvalidParameterValue", PROPAGATION, times=2)
    with inject(fault):
        result, sleeps = run(AssociateProfile(instance, "web-server", profiles["web-server"]))
    assert result.status == "applied" and fault.seen == 2 and sleeps == [1.0, 2.0]
    assert w.attached_profiles() == {instance: "web-server"}


# -- replace ----------------------------------------------------------------------------------------
def test_replace_retries_a_profile_ec2_cannot_see_yet_then_swaps(profiles: dict[str, str]) -> None:
    """The replace loop: the same propagation answer (injected) is retried with backoff, not failed."""
    instance, action = swap(ReplaceProfile, profiles)
    fault = Fault("ec2", "ReplaceIamInstanceProfileAssociation", "InvalidParameterValue", PROPAGATION, times=3)
    with inject(fault):
        result, sleeps = run(action)
    assert result.status == "applied" and fault.seen == 3 and sleeps == [1.0, 2.0, 4.0]
    assert w.attached_profiles() == {instance: "web-server"}


def test_replace_past_the_propagation_budget_is_retryable_and_changes_nothing(profiles: dict[str, str]) -> None:
    instance, action = swap(ReplaceProfile, profiles)
    fault = Fault("ec2", "ReplaceIamInstanceProfileAssociation", "InvalidParameterValue", PROPAGATION, times=100)
    with inject(fault):
        result, sleeps = run(action, budget=3.0)
    assert (result.status, result.retryable) == ("failed", True)
    assert sum(sleeps) >= 3.0
    assert w.attached_profiles() == {instance: "data-worker"}


@pytest.mark.parametrize(
    ("code", "message"),
    [
        pytest.param("IncorrectState", "The association is not in the associated state", id="replaced-meanwhile"),
        pytest.param("InvalidAssociationID.NotFound", "The association does not exist", id="disassociated-meanwhile"),
    ],
)
def test_replace_of_an_association_no_longer_active_is_a_conflict(
    profiles: dict[str, str], code: str, message: str
) -> None:
    """Another writer changed the association since the read (EC2's answer injected: moto swaps anyway)."""
    instance, action = swap(ReplaceProfile, profiles)
    with inject(Fault("ec2", "ReplaceIamInstanceProfileAssociation", code, message)):
        result, sleeps = run(action)
    assert (result.status, result.retryable) == ("conflict", True)
    assert sleeps == []  # not mistaken for propagation
    assert w.attached_profiles() == {instance: "data-worker"}


# -- reassociate (stopped instances) ----------------------------------------------------------------------
def test_reassociate_of_an_association_replaced_meanwhile_is_a_conflict_and_associates_nothing(
    profiles: dict[str, str],
) -> None:
    instance, action = swap(ReassociateProfile, profiles)
    refused = Fault("ec2", "DisassociateIamInstanceProfile", "IncorrectState", "The association is not associated")
    with inject(refused), count_calls() as calls:
        result, _ = run(action)
    assert (result.status, result.retryable) == ("conflict", True)
    assert calls.calls["ec2:AssociateIamInstanceProfile"] == 0
    assert w.attached_profiles() == {instance: "data-worker"}


def test_reassociate_waits_while_the_old_association_is_still_disassociating(profiles: dict[str, str]) -> None:
    """Right after a disassociate, EC2 may still answer IncorrectState to the associate (injected): retried."""
    instance, action = swap(ReassociateProfile, profiles)
    busy = Fault("ec2", "AssociateIamInstanceProfile", "IncorrectState", "There is an existing association", times=1)
    with inject(busy):
        result, sleeps = run(action)
    assert result.status == "applied" and busy.seen == 1 and sleeps == [1.0]
    assert w.attached_profiles() == {instance: "web-server"}
