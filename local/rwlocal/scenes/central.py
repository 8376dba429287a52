"""`make demo` scene: many accounts, one RoleWarden (issue 14). On a fresh local AWS, an organization is
created in the central account, the central stack (template.yaml, Mode=central) is deployed there and
member.yaml in two member accounts A and B as a service-managed StackSet would. Events are put on each
member's own default bus; its forwarding rules carry them to the central bus, whose rules feed the
central queues, drained into the central functions, which act in the member through its execution role.
A launch in A, a bucket tag in B, a drift in A, an outsider's event, and the schedule's sweep over the
three accounts.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import boto3
import yaml

from rwlocal import world as w
from rwlocal.multiaccount import (
    CENTRAL_ACCOUNT,
    OUTSIDER,
    WEB,
    central_world,
    deploy_member,
    in_account,
    launch,
    running,
)
from rwlocal.pipeline import Pipeline, fire_schedule, put_events
from rwlocal.scenes.compliance import ADMIN_ARN, cloudtrail_event
from rwlocal.scenes.grants import tagging_event


def _config(accounts: dict[str, Any]) -> str:
    """The shipped config with the ``accounts`` section of this organization."""
    from rwlocal.demo import CONFIG

    data = yaml.safe_load(CONFIG.read_text())
    data["accounts"] = accounts
    data["instance_profiles"]["metadata"]["imdsv2"] = "off"  # the imds scene's subject, not this one's
    handle, name = tempfile.mkstemp(prefix="rolewarden-central-", suffix=".yaml")
    with os.fdopen(handle, "w") as out:
        yaml.safe_dump(data, out, sort_keys=False)
    return name


def _profile(account: str, instance: str) -> str:
    with in_account(account):
        return w.attached_profiles([instance]).get(instance, "-")


def _grants(account: str) -> list[str]:
    with in_account(account):
        policies = boto3.client("iam").list_policies(Scope="Local", PathPrefix="/rolewarden/")["Policies"]
    return [p["PolicyName"] for p in policies]


def _admin_attached(account: str, role: str) -> bool:
    with in_account(account):
        attached = boto3.client("iam").list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    return any(p["PolicyArn"] == ADMIN_ARN for p in attached)


def scene(demo: Any) -> None:
    demo.section("Many accounts, one RoleWarden: a central stack, two member stacks")
    if getattr(demo, "aws", None) is not None:
        demo.aws.reset()  # a fresh local AWS: the central stack's names are the single stack's
    with central_world(("A", "B")) as world:
        a, b = world.account("A"), world.account("B")
        name = {CENTRAL_ACCOUNT: "central", a: "A", b: "B", OUTSIDER: "outsider"}
        demo.console.print(
            f"organization {world.organization.id}: central stack {world.central.name} (Mode=central) in "
            f"{CENTRAL_ACCOUNT}, member.yaml as a StackSet would deploy it in A={a} and B={b}"
        )
        config = _config(world.central_config())
        pipeline = Pipeline(world.central, env_overrides={"ROLEWARDEN_CONFIG": config, "POWERTOOLS_LOG_LEVEL": "ERROR"})
        findings: list[Any] = []

        def collect(consumer: str, event: dict[str, Any], response: dict[str, Any]) -> None:
            sink = pipeline.consumers[consumer].runtime().last_sink
            findings.extend(sink.findings if sink is not None else [])

        pipeline.on_batch = collect
        rows: list[list[str]] = []
        wrong: list[str] = []

        # 1. a launch in A: the event goes A's default bus -> central bus -> central queue -> central function
        launched = {a: launch(a), b: launch(b)}
        with in_account(a):
            put_events([running(a, launched[a])])
        pipeline.drain(["InstanceProfilesFunction"])
        got = {account: _profile(account, instance) for account, instance in launched.items()}
        rows.append(["launch in A", f"A {launched[a]}: {got[a]}", f"B's tagged twin: {got[b]}"])
        if got != {a: "web-server", b: "-"}:
            wrong.append(f"launch: {got}")

        # 2. bucket tags in B grant B's role, never A's role of the same name
        for account in (a, b):
            with in_account(account):
                w.create_role("reporting-app")
        tags = {"rolewarden:read": "reporting-app"}
        with in_account(b):
            s3 = boto3.client("s3")
            s3.create_bucket(Bucket="b-reports")
            s3.put_bucket_tagging(
                Bucket="b-reports", Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}
            )
            put_events([tagging_event("b-reports", tags)])
        pipeline.drain(["BucketGrantsFunction"])
        grants = {account: _grants(account) for account in (a, b)}
        rows.append(
            ["bucket tag in B", f"B: {', '.join(grants[b]) or '-'}", f"A: {', '.join(grants[a]) or 'no grant'}"]
        )
        if grants != {a: [], b: ["rolewarden-grants-reporting-app"]}:
            wrong.append(f"grants: {grants}")

        # 3. a drift in A: AdministratorAccess attached to a managed role
        w.ensure_aws_managed_policy(account_id=a)
        with in_account(a):
            w.create_role("billing-app")
            boto3.client("iam").attach_role_policy(RoleName="billing-app", PolicyArn=ADMIN_ARN)
            put_events([cloudtrail_event("AttachRolePolicy", {"roleName": "billing-app", "policyArn": ADMIN_ARN})])
        pipeline.drain(["RoleComplianceFunction"])
        from rolewarden.aws import records

        key = f"account#{a}#role/billing-app"
        recorded = [r for r in records.query(world.central.physical("StateTable"), key) if r.kind == "remediation"]
        admin_left = _admin_attached(a, "billing-app")
        rows.append(
            [
                "drift in A",
                f"A billing-app: AdministratorAccess {'still attached' if admin_left else 'detached'}",
                f"central table: {len(recorded)} record(s) under {key}",
            ]
        )
        if admin_left or not recorded or {r.data.get("account") for r in recorded} != {a}:
            wrong.append(f"drift: admin attached {admin_left}, records {recorded}")

        # 4. an account outside the organization forwards a launch (AWS's bus policy would refuse it; moto
        # does not check bus policies, so RoleWarden's own admission is what refuses it here)
        deploy_member(world.central, OUTSIDER, world.organization.id)
        stranger = launch(OUTSIDER)
        with in_account(OUTSIDER):
            put_events([running(OUTSIDER, stranger)])
        pipeline.drain(["InstanceProfilesFunction"])
        refused = [f for f in findings if f.rule == "account-not-admitted"]
        outcome = _profile(OUTSIDER, stranger)
        rows.append(
            ["outsider's launch", f"outsider {stranger}: {outcome}", f"{len(refused)} finding account-not-admitted"]
        )
        if len(refused) != 1 or outcome != "-":
            wrong.append(f"outsider: {outcome}, {refused}")

        # 5. the schedule's sweep: one account sweep per admitted account, on the sweep queue
        swept = {CENTRAL_ACCOUNT: launch(CENTRAL_ACCOUNT), a: _tagged(a), b: launched[b]}
        fire_schedule(world.central, "InstanceProfilesSweepRule")
        pipeline.drain(["InstanceProfilesSweepFunction"])
        fixed = {name[account]: _profile(account, instance) for account, instance in swept.items()}
        rows.append(["schedule's sweep", ", ".join(f"{k}: {v}" for k, v in fixed.items()), "one account sweep each"])
        if set(fixed.values()) != {"web-server"}:
            wrong.append(f"sweep: {fixed}")
        demo.table("the central functions act where each event comes from", ["step", "result", "elsewhere"], rows)
        os.unlink(config)
        if wrong:
            raise SystemExit(f"demo check failed: {'; '.join(wrong)}")


def _tagged(account: str) -> str:
    """A web-tagged instance without a profile, in an account that has the web-server profile already."""
    with in_account(account):
        return w.run_instance(WEB)
