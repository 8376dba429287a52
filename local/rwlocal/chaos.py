"""`make chaos`: the whole local pipeline under the faults AWS really produces.

The stack is deployed into the moto server; events go onto moto's EventBridge so the template's rules
route them to the queues (with their redrive policies and DLQs); the real handlers are fed as
Lambda's SQS event source feeds them. RoleWarden's own AWS clients talk to moto through a
fault-injecting proxy (throttling with each service's real error, 5xx answers, dropped connections).
Every event is delivered ``--duplicates`` times and the stream is shuffled. When the queues are quiet,
the world is checked *independently of RoleWarden's code* and a table is printed:

- every instance, grant policy and managed role equals what the config and tags call for;
- no message is lost (all processed, or in a DLQ with a reason; at default size the DLQs are empty);
- writes: one effective write per needed instance change, remediations bounded by the drift, and after
  convergence a full second pass (every event again plus all three sweeps) writes nothing at all;
- nothing outside the managed path, no protected role and no protected bucket was touched.

Backoff waits (botocore's and RoleWarden's own) are scaled by ``--time-scale`` so a run takes
minutes, not hours; the retry logic itself is unchanged.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import types
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.endpoint

from rwlocal import stack as st
from rwlocal import world as w
from rwlocal.pipeline import Pipeline, fire_schedule, put_events
from rwlocal.proxy import ChaosProxy, FaultPlan
from rwlocal.server import LocalAws

MANAGED = "/rolewarden/"
ADMIN_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"
PROTECTED_ROLE = "rw-protected"
PROTECTED_BUCKET = "chaos-audit-logs"
CONFIG = f"""
version: 1
managed_path: {MANAGED}
instance_profiles:
  rules:
    - match: {{"rolewarden:profile": web}}
      profile: web-server
    - match: {{team: data, env: [prod, staging]}}
      profile: data-worker
    - match: {{"rolewarden:profile": admin}}
      profile: break-glass-admin
  on_mismatch: replace
bucket_grants:
  protected_buckets: ["*-audit-logs"]
  max_policies_per_role: 5
compliance:
  protected_roles: [{PROTECTED_ROLE}]
  circuit_breaker: {{max_remediations: 10000, window_minutes: 60}}  # the chaos world drifts every role at once
"""
#: The oracle's own copy of the rules above (deliberately not RoleWarden's decision code).
EXPECTED_PROFILE = {("rolewarden:profile", "web"): "web-server", ("team", "data"): "data-worker"}
READ = {"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:GetBucketLocation"}
WRITE = {"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListBucketMultipartUploads"}


@dataclass
class Sizes:
    instances: int = 500
    buckets: int = 50
    roles: int = 50
    throttle: float = 0.20
    server_errors: float = 0.05
    drops: float = 0.01
    duplicates: int = 2
    seed: int = 7
    time_scale: float = 0.01


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Result:
    sizes: Sizes
    checks: list[Check] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


# -- the world ---------------------------------------------------------------------------------------
@dataclass
class World:
    instances: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> tags
    buckets: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> tags
    grantees: list[str] = field(default_factory=list)
    drifted: dict[str, str] = field(default_factory=dict)  # role -> kind of drift
    untouchable_roles: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    needed_instance_writes: int = 0


def _cloudtrail(source: str, event_source: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": source,
        "detail-type": "AWS API Call via CloudTrail",
        "detail": {
            "eventSource": event_source,
            "eventName": name,
            "awsRegion": "us-east-1",
            "userIdentity": {
                "type": "AssumedRole",
                "sessionContext": {
                    "sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::123456789012:role/platform-admin"}
                },
            },
            "requestParameters": params,
        },
    }


def seed_instances(world: World, count: int, rng: random.Random) -> None:
    profiles = {
        "web-server": w.create_profile("web-server"),
        "data-worker": w.create_profile("data-worker", role="data-worker", role_path="/rolewarden/data/"),
        "legacy-app": w.create_profile("legacy-app"),
        "break-glass-admin": w.create_profile("break-glass-admin", role="break-glass-admin", role_path="/"),
    }
    kinds = [
        ({"rolewarden:profile": "web"}, None, True),
        ({"rolewarden:profile": "web"}, "legacy-app", True),
        ({"team": "data", "env": "prod"}, None, True),
        ({"rolewarden:profile": "admin"}, None, False),
        ({"team": "marketing"}, None, False),
        ({"team": "marketing"}, "legacy-app", False),
    ]
    remaining = count
    index = 0
    while remaining > 0:
        tags, profile, needs_write = kinds[index % len(kinds)]
        batch = min(remaining, max(1, count // len(kinds) + 1))
        ids = w.run_instances(batch, tags)
        if profile:  # moto's RunInstances associates a profile with the first instance only: associate each
            ec2 = boto3.client("ec2")
            for instance_id in ids:
                ec2.associate_iam_instance_profile(
                    IamInstanceProfile={"Arn": profiles[profile]}, InstanceId=instance_id
                )
        for instance_id in ids:
            world.instances[instance_id] = dict(tags)
            world.needed_instance_writes += int(needs_write)
        remaining -= batch
        index += 1
    for n, instance_id in enumerate(world.instances):
        if n % 3 == 0:
            world.events.append(w.asg_launch_event(instance_id))
        else:
            world.events.append(w.state_change_event(instance_id, "running"))
    del rng


def seed_buckets(world: World, count: int, rng: random.Random) -> None:
    iam = boto3.client("iam")
    s3 = boto3.client("s3")
    world.grantees = [f"app-{n}" for n in range(max(3, count // 5))]
    for role in world.grantees:
        w.create_role(role, MANAGED)
    w.create_role("outsider", "/")  # a real role outside the managed path: must never be granted
    hostile = [
        "*",
        "arn:aws:iam::123456789012:role/outsider",
        "outsider",
        "/rolewarden/app-0",
        "no-such-role",
        '"}],"Statement":[{"Effect":"Allow"',
        "a" * 200,
    ]
    names = [f"chaos-bucket-{n:03d}" for n in range(count - 1)] + [PROTECTED_BUCKET]
    for name in names:
        s3.create_bucket(Bucket=name)
        readers = rng.sample(world.grantees, k=rng.randint(0, min(3, len(world.grantees))))
        writers = rng.sample(world.grantees, k=rng.randint(0, min(2, len(world.grantees))))
        tags = {}
        if readers or rng.random() < 0.3:
            tags["rolewarden:read"] = " ".join(readers + ([rng.choice(hostile)] if rng.random() < 0.3 else []))
        if writers:
            tags["rolewarden:write"] = " ".join(writers)
        tags = {k: v[:256] for k, v in tags.items() if v}
        if tags:
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
        world.buckets[name] = tags
        world.events.append(_cloudtrail("aws.s3", "s3.amazonaws.com", "PutBucketTagging", {"bucketName": name}))
    del iam


def seed_drift(world: World, count: int, rng: random.Random) -> None:
    iam = boto3.client("iam")
    w.ensure_aws_managed_policy()  # moto loads no AWS-managed policies by default
    loose_trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
        }
    )
    admin_inline = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "Keep", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::x/*"},
                {"Sid": "Bad", "Effect": "Allow", "Action": "*", "Resource": "*"},
            ],
        }
    )
    drifts = ["admin-managed", "admin-inline", "loose-trust"]
    roles = [f"svc-{n:03d}" for n in range(count)]
    for n, role in enumerate([*roles, PROTECTED_ROLE, "outside-admin"]):
        path = "/" if role == "outside-admin" else MANAGED
        w.create_role(role, path)
        kind = drifts[n % len(drifts)] if role in roles else "admin-managed"
        if kind == "admin-managed":
            iam.attach_role_policy(RoleName=role, PolicyArn=ADMIN_ARN)
            params = {"roleName": role, "policyArn": ADMIN_ARN}
            name = "AttachRolePolicy"
        elif kind == "admin-inline":
            iam.put_role_policy(RoleName=role, PolicyName="ops", PolicyDocument=admin_inline)
            params = {"roleName": role, "policyName": "ops"}
            name = "PutRolePolicy"
        else:
            iam.update_assume_role_policy(RoleName=role, PolicyDocument=loose_trust)
            params = {"roleName": role}
            name = "UpdateAssumeRolePolicy"
        if role in roles:
            world.drifted[role] = kind
        else:
            world.untouchable_roles.append(role)
        world.events.append(_cloudtrail("aws.iam", "iam.amazonaws.com", name, params))
    del rng


# -- the oracle (independent of RoleWarden's code) ------------------------------------------------------
def expected_profile(tags: dict[str, str]) -> str | None:
    if tags.get("rolewarden:profile") == "web":
        return "web-server"
    if tags.get("team") == "data" and tags.get("env") in ("prod", "staging"):
        return "data-worker"
    return None  # admin is refused; no rule means untouched


def check_instances(world: World, before: dict[str, str]) -> Check:
    after = w.attached_profiles(list(world.instances))
    wrong = []
    for instance_id, tags in world.instances.items():
        want = expected_profile(tags)
        have = after.get(instance_id)
        if want is None:
            if have != before.get(instance_id):
                wrong.append(f"{instance_id}: changed from {before.get(instance_id)} to {have}")
        elif have != want:
            wrong.append(f"{instance_id}: {have} instead of {want}")
    return Check(
        "instances have the profile their tags call for",
        not wrong,
        f"{len(world.instances)} instances, {len(wrong)} wrong" + (f": {wrong[:3]}" if wrong else ""),
    )


def _granted_actions(role: str) -> tuple[dict[str, set[str]], list[str]]:
    """bucket -> S3 actions the role's generated grant policies allow on it; plus problems seen."""
    iam = boto3.client("iam")
    granted: dict[str, set[str]] = {}
    problems = []
    attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    for policy in attached:
        if not policy["PolicyName"].startswith("rolewarden-grants-"):
            continue
        meta = iam.get_policy(PolicyArn=policy["PolicyArn"])["Policy"]
        if not meta.get("Path", "").startswith(MANAGED):
            problems.append(f"{policy['PolicyArn']} outside the managed path")
        document = iam.get_policy_version(PolicyArn=policy["PolicyArn"], VersionId=meta["DefaultVersionId"])[
            "PolicyVersion"
        ]["Document"]
        if isinstance(document, str):
            document = json.loads(document)
        compact = json.dumps(document, separators=(",", ":"))
        if len("".join(compact.split())) > 6144:
            problems.append(f"{policy['PolicyArn']} exceeds 6,144 characters")
        statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
        for statement in statements:
            if statement.get("Effect") != "Allow":
                continue
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for resource in resources:
                if not resource.startswith("arn:aws:s3:::"):
                    continue
                bucket = resource[len("arn:aws:s3:::") :].split("/", 1)[0]
                if "*" in bucket or "?" in bucket:
                    problems.append(f"wildcard bucket {resource} in {policy['PolicyName']}")
                granted.setdefault(bucket, set()).update(a for a in actions if a.startswith("s3:"))
    return granted, problems


def check_grants(world: World) -> Check:
    if not world.buckets:
        return Check("grant policies equal what the bucket tags say", True, "no buckets in this run")
    wrong: list[str] = []
    for role in world.grantees:
        expected: dict[str, set[str]] = {}
        for bucket, tags in world.buckets.items():
            if bucket == PROTECTED_BUCKET:
                continue
            actions: set[str] = set()
            if role in tags.get("rolewarden:read", "").split():
                actions |= READ
            if role in tags.get("rolewarden:write", "").split():
                actions |= WRITE
            if actions:
                expected[bucket] = actions
        granted, problems = _granted_actions(role)
        wrong.extend(f"{role}: {p}" for p in problems)
        if granted != expected:
            missing = sorted(set(expected) - set(granted))
            extra = sorted(set(granted) - set(expected))
            differ = sorted(b for b in set(expected) & set(granted) if expected[b] != granted[b])
            wrong.append(f"{role}: missing {missing[:3]} extra {extra[:3]} differ {differ[:3]}")
    outsider, _ = _granted_actions("outsider")
    if outsider:
        wrong.append("the role outside the managed path was granted")
    return Check(
        "grant policies equal what the bucket tags say",
        not wrong,
        f"{len(world.grantees)} roles, {len(world.buckets)} buckets, {len(wrong)} wrong"
        + (f": {wrong[:2]}" if wrong else ""),
    )


def _role_state(role: str) -> dict[str, Any]:
    iam = boto3.client("iam")
    raw = iam.get_role(RoleName=role)["Role"]
    inline = {
        name: iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
    }
    attached = sorted(p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"])
    return {
        "trust": raw["AssumeRolePolicyDocument"],
        "inline": inline,
        "attached": attached,
        "boundary": raw.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn"),
    }


def _violations(state: dict[str, Any]) -> list[str]:
    found = []
    if ADMIN_ARN in state["attached"]:
        found.append("AdministratorAccess attached")
    for name, document in state["inline"].items():
        doc = json.loads(document) if isinstance(document, str) else document
        for statement in doc.get("Statement", []):
            if statement.get("Effect") == "Allow" and statement.get("Action") in ("*", ["*"]):
                found.append(f"inline {name} allows *")
    for statement in state["trust"].get("Statement", []):
        principal = statement.get("Principal")
        if principal != {"Service": "ec2.amazonaws.com"} and statement.get("Effect") == "Allow":
            found.append(f"trust allows {principal}")
    return found


def check_roles(world: World) -> Check:
    wrong = []
    for role, kind in world.drifted.items():
        state = _role_state(role)
        violations = _violations(state)
        if violations:
            wrong.append(f"{role} ({kind}): {violations}")
        if kind == "admin-inline" and "ops" in state["inline"]:
            doc = state["inline"]["ops"]
            doc = json.loads(doc) if isinstance(doc, str) else doc
            if [s.get("Sid") for s in doc["Statement"]] != ["Keep"]:
                wrong.append(f"{role}: the good inline statement was not kept")
        elif kind == "admin-inline":
            wrong.append(f"{role}: the inline policy with a good statement was deleted")
    return Check(
        "drifted managed roles are compliant again",
        not wrong,
        f"{len(world.drifted)} roles, {len(wrong)} wrong" + (f": {wrong[:2]}" if wrong else ""),
    )


def snapshot_untouchables(world: World) -> dict[str, Any]:
    s3 = boto3.client("s3")
    snap: dict[str, Any] = {f"role/{r}": _role_state(r) for r in world.untouchable_roles}
    snap["role/outsider"] = _role_state("outsider") if world.buckets else None
    if PROTECTED_BUCKET in world.buckets:
        snap[f"bucket/{PROTECTED_BUCKET}"] = s3.get_bucket_tagging(Bucket=PROTECTED_BUCKET).get("TagSet")
    return snap


# -- the run -----------------------------------------------------------------------------------------
def _drain(pipeline: Pipeline, max_rounds: int = 5000) -> int:
    consumers = list(pipeline.consumers)
    batches = 0
    for _ in range(max_rounds):
        handled = 0
        for consumer in consumers:
            n = pipeline.invoke_batch(consumer)
            handled += n
            batches += int(n > 0)
        if handled == 0 and all(pipeline.depth(pipeline.consumers[c].queue_logical_id) == 0 for c in consumers):
            break
    return batches


def run(sizes: Sizes, out: Any = None) -> Result:
    import os

    os.environ["POWERTOOLS_LOG_LEVEL"] = "CRITICAL"  # read when the handlers' loggers are built
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    rng = random.Random(sizes.seed)
    result = Result(sizes)
    started = time.perf_counter()
    real_endpoint_time = botocore.endpoint.time  # type: ignore[attr-defined]
    with LocalAws() as aws, tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "chaos.yaml"
        config.write_text(CONFIG)
        stack = st.deploy()
        world = World()
        seed_instances(world, sizes.instances, rng)
        if sizes.buckets:
            seed_buckets(world, sizes.buckets, rng)
        if sizes.roles:
            seed_drift(world, sizes.roles, rng)
        before = w.attached_profiles(list(world.instances))
        untouched_before = snapshot_untouchables(world)
        plan = FaultPlan(throttle=sizes.throttle, server_error=sizes.server_errors, drop=sizes.drops, seed=sizes.seed)
        scale = sizes.time_scale
        botocore.endpoint.time = types.SimpleNamespace(  # type: ignore[attr-defined]
            sleep=lambda seconds: time.sleep(seconds * scale)
        )
        try:
            with ChaosProxy(aws.port, plan) as proxy:
                pipeline = Pipeline(
                    stack,
                    env_overrides={
                        "ROLEWARDEN_CONFIG": str(config),
                        "AWS_ENDPOINT_URL": proxy.endpoint,
                        "POWERTOOLS_LOG_LEVEL": "CRITICAL",
                        "POWERTOOLS_METRICS_DISABLED": "true",
                        "ROLEWARDEN_PROPAGATION_WAIT": "30",
                    },
                )
                for consumer in pipeline.consumers.values():
                    consumer.runtime().sleep = lambda seconds: time.sleep(seconds * scale)
                from rolewarden.aws import clients

                clients.reset()
                stream = [e for e in world.events for _ in range(sizes.duplicates)]
                rng.shuffle(stream)
                put_events(stream)
                batches = _drain(pipeline)
                first_writes = Counter(proxy.stats.writes_ok)
                injected = Counter(proxy.stats.injected)
                dlq = {c: len(pipeline.dlq_messages(c)) for c in pipeline.consumers}
                dlq_reasons = [
                    m.get("MessageAttributes", {}).get("rolewarden-reason", {}).get("StringValue", "?")
                    for c in pipeline.consumers
                    for m in pipeline.dlq_messages(c)
                ]
                # second pass: everything again plus every sweep must write nothing
                put_events(stream)
                for rule in st.schedule_rules(stack.template):
                    fire_schedule(stack, rule)
                _drain(pipeline)
                # only writes to what RoleWarden manages count; its own bookkeeping (state-table records,
                # sweep idempotency items) is not a change to the account
                second_writes = Counter(
                    {
                        k: v
                        for k, v in (Counter(proxy.stats.writes_ok) - first_writes).items()
                        if k.split(":", 1)[0] in ("ec2", "iam", "s3", "autoscaling")
                    }
                )
        finally:
            botocore.endpoint.time = real_endpoint_time  # type: ignore[attr-defined]
            from rolewarden.aws import clients

            clients.reset()
        result.checks.append(check_instances(world, before))
        result.checks.append(check_grants(world))
        result.checks.append(check_roles(world))
        lost = sum(dlq.values())
        result.checks.append(
            Check(
                "no message lost; DLQs empty",
                lost == 0,
                f"{len(stream)} events delivered, {batches} batches, DLQ {dlq}"
                + (f" reasons {dlq_reasons[:2]}" if dlq_reasons else ""),
            )
        )
        instance_writes = sum(v for k, v in first_writes.items() if k.startswith("ec2:") and "Disassociate" not in k)
        result.checks.append(
            Check(
                "one effective write per needed instance change",
                instance_writes <= world.needed_instance_writes,
                f"{instance_writes} association writes for {world.needed_instance_writes} needed",
            )
        )
        remediation_writes = sum(
            v
            for k, v in first_writes.items()
            if k.startswith("iam:")
            and any(
                op in k for op in ("DetachRolePolicy", "UpdateAssumeRolePolicy", "PutRolePolicy", "DeleteRolePolicy")
            )
        )
        result.checks.append(
            Check(
                "remediation writes bounded by the drift",
                remediation_writes <= len(world.drifted),
                f"{remediation_writes} remediation writes for {len(world.drifted)} drifted roles",
            )
        )
        result.checks.append(
            Check(
                "nothing written once everything is right",
                sum(second_writes.values()) == 0,
                f"second pass writes: {dict(second_writes) or 0}",
            )
        )
        untouched_after = snapshot_untouchables(world)
        changed = [k for k in untouched_before if untouched_before[k] != untouched_after.get(k)]
        result.checks.append(
            Check(
                "outside path, protected role and protected bucket untouched",
                not changed,
                f"checked {len(untouched_before)}; changed: {changed or 'none'}",
            )
        )
        result.figures = {
            "events": len(stream),
            "injected_faults": dict(injected),
            "effective_writes": dict(first_writes),
            "seconds": round(time.perf_counter() - started, 1),
        }
    return result


def print_table(result: Result, out: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out or sys.stdout, width=140)
    s = result.sizes
    table = Table(
        title=(
            f"chaos: {s.instances} instances, {s.buckets} buckets, {s.roles} role drifts; "
            f"{s.throttle:.0%} throttling, {s.server_errors:.0%} 5xx, {s.drops:.0%} drops, "
            f"x{s.duplicates} delivery, shuffled"
        ),
        title_justify="left",
    )
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for check in result.checks:
        table.add_row(check.name, "[green]ok" if check.ok else "[red]FAIL", check.detail)
    console.print(table)
    console.print(
        f"faults injected: {result.figures.get('injected_faults')}; "
        f"effective writes: {result.figures.get('effective_writes')}; {result.figures.get('seconds')}s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make chaos", description=__doc__.split("\n\n")[0])
    defaults = Sizes()
    for name, value in vars(defaults).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = parser.parse_args(argv)
    sizes = Sizes(**{k: getattr(args, k) for k in vars(defaults)})
    import logging

    logging.getLogger("rolewarden").setLevel(logging.CRITICAL)
    result = run(sizes)
    print_table(result)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
