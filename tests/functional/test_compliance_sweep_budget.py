"""The compliance sweep honours the sweep contract of capabilities/base.py: when ``run.budget_spent()`` it
stops between roles and returns ``Outcome(continuation=cursor)``; a sweep continued from ``run.cursor``
resumes after it. Against the moto server over HTTP; the budget is a tiny deadline, no timing."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from rolewarden.aws.executor import Executor
from rolewarden.capabilities.base import Outcome, Run
from rolewarden.config import load_config
from rolewarden.model.targets import SWEEP
from rolewarden.telemetry import Sink
from rwlocal import world as w
from rwlocal.faults import count_calls
from rwlocal.scenes.compliance import ADMIN_ARN
from rwlocal.server import LocalAws
from rwlocal.world import ensure_aws_managed_policy

CONFIG = """
version: 1
managed_path: /rolewarden/
compliance:
  protected_roles: [break-glass]
  rules: {no-inline-policies: enforce}
"""


def iam() -> Any:
    return boto3.client("iam")


def build_world() -> list[str]:
    """Twelve managed roles, every other one out of compliance in a different way, plus roles the sweep
    leaves alone (protected, outside the managed path)."""
    ensure_aws_managed_policy()
    names = []
    for i in range(12):
        name = f"svc-{i:02d}"
        names.append(name)
        w.create_role(name, trust=w.LOOSE_TRUST if i % 4 == 1 else None)
        if i % 4 == 0:
            iam().attach_role_policy(RoleName=name, PolicyArn=ADMIN_ARN)
        if i % 4 == 2:
            iam().put_role_policy(RoleName=name, PolicyName="debug", PolicyDocument=json.dumps(w.ADMIN_DOCUMENT))
    w.create_role("break-glass")
    iam().attach_role_policy(RoleName="break-glass", PolicyArn=ADMIN_ARN)
    w.create_role("outsider", path="/other/")
    iam().attach_role_policy(RoleName="outsider", PolicyArn=ADMIN_ARN)
    return names


def snapshot() -> dict[str, Any]:
    client = iam()
    out = {}
    for role in client.list_roles()["Roles"]:
        name = role["RoleName"]
        out[name] = {
            "attached": sorted(
                p["PolicyArn"] for p in client.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
            ),
            "inline": sorted(client.list_role_policies(RoleName=name)["PolicyNames"]),
            "trust": client.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"],
        }
    return out


def new_run(deadline: float | None = None, cursor: str | None = None) -> Run:
    sink = Sink()
    config = load_config()
    executor = Executor(sink=sink, dry_run=False, sleep=lambda _: None, trigger="sweep-test")
    return Run(config=config, sink=sink, executor=executor, trigger="sweep-test", deadline=deadline, cursor=cursor)


def sweep(run: Run) -> Outcome:
    from rolewarden.capabilities.compliance import CAPABILITY

    return CAPABILITY.reconcile(run, [SWEEP])[SWEEP]


def writes(params: list[tuple[str, dict[str, Any]]]) -> Counter[str]:
    return Counter(
        f"{name} {p.get('RoleName', '')}"
        for name, p in params
        if name.startswith("iam:") and not name.split(":")[1].startswith(("Get", "List"))
    )


@pytest.fixture
def world(aws: LocalAws, write_config: Callable[..., Path]) -> Callable[[], list[str]]:
    def fresh() -> list[str]:
        aws.reset()
        from rolewarden.aws import iam_snapshot

        iam_snapshot.clear_caches()
        write_config(CONFIG)
        return build_world()

    return fresh


def test_a_sweep_in_parts_ends_where_a_one_shot_sweep_ends(world: Callable[[], list[str]]) -> None:
    names = world()
    with count_calls() as calls:
        whole = sweep(new_run())
    assert whole.status == "ok" and whole.continuation is None
    one_shot, one_shot_writes = snapshot(), writes(calls.params)
    assert one_shot_writes  # the world had something to remediate

    names = world()
    cursors: list[str] = []
    cursor: str | None = None
    with count_calls() as calls:
        for _ in range(100):
            # deadline 0.0: the budget is spent as soon as the first role of each part is done
            part = sweep(new_run(deadline=0.0, cursor=cursor))
            assert part.status == "ok"
            if part.continuation is None:
                break
            cursors.append(part.continuation)
            cursor = part.continuation
        else:
            pytest.fail("the sweep never finished")
    assert snapshot() == one_shot
    assert writes(calls.params) == one_shot_writes  # every role written once, none twice, none missed
    # One role per part, in name order, each part resuming after the role the previous one finished.
    assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)
    assert len(cursors) >= len(names)
    assert all(c.startswith("after-role:") for c in cursors)


def test_a_budget_already_spent_still_moves_the_sweep_forward(world: Callable[[], list[str]]) -> None:
    world()
    first = sweep(new_run(deadline=0.0))
    second = sweep(new_run(deadline=0.0, cursor=first.continuation))
    assert first.continuation is not None and second.continuation is not None
    assert second.continuation > first.continuation


def test_an_unknown_cursor_sweeps_from_the_start_and_says_so(world: Callable[[], list[str]]) -> None:
    world()
    run = new_run(cursor="something-else")
    outcome = sweep(run)
    assert outcome.continuation is None
    assert any(r["level"] == "WARNING" and "unknown cursor" in r["message"] for r in run.sink.records)
    assert all(not snapshot()[f"svc-{i:02d}"]["attached"] for i in range(0, 12, 4))
