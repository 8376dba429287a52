"""`make chaos`: the whole local pipeline under the faults AWS really produces.

The stack is deployed into the moto server; events go onto moto's EventBridge so the template's rules
route them to the queues (with their redrive policies and DLQs); the real handlers are fed as
Lambda's SQS event source feeds them. RoleWarden's own AWS clients talk to moto through a
fault-injecting proxy (throttling with each service's real error, 5xx answers, dropped connections).
Every event is delivered ``--duplicates`` times and the stream is shuffled.

The local AWS is as hostile as the real one, each condition on by default and sized or disabled by a flag:
- parallel containers (``--no-parallel``): each queue is polled by as many poller processes as its
  event source's ScalingConfig.MaximumConcurrency in template.yaml, so invocations interleave;
- honoured visibility (``--no-honest-visibility``): a failed record stays hidden for its visibility
  timeout (the queue's, or what the function set), time-scaled; SQS counts receives and redrives;
- token buckets per API (``--no-token-buckets``, ``--bucket-factor``): EC2's documented bucket sizes and
  refill rates, IAM's assumed ones (rwlocal.throttling), shared by every poller, on top of the random
  faults;
- eventual consistency: IAM reads lag writes (``--iam-lag`` seconds, ``--iam-stale`` share of reads in
  the window), DescribeInstances misses a fresh instance (``--ec2-lag`` seconds);
- lifecycle hooks (``--no-hooks``, ``--hook-timeout``): a third of the instances launch through an Auto Scaling hook
  that expires with ABANDON if RoleWarden does not complete it in time;
- revoked grants (``--revoked``): some buckets lose their grant tags while the run is under way.
- several accounts (``--accounts N``, default 1): the central stack (Mode=central) and N - 1 member stacks
  of an organization (rwlocal.multiaccount), the instances, buckets and drifted roles spread evenly over the
  N accounts (names prefixed per member), each event put on its own account's default bus (member.yaml is
  deployed in the central account too, so its events reach the central bus), every check run per account.
Always on, because it is how EC2 behaves: a Replace answers with a fresh association id and a Replace or
Disassociate naming a superseded id fails with ``IncorrectState`` (rwlocal.hostile.Associations; moto
keeps the id, which hid double writes from duplicate events).

When the queues are quiet, the world is checked *independently of RoleWarden's code* and a table is
printed:

- every instance, grant policy and managed role equals what the config and tags call for;
- no message is lost (all processed, or in a DLQ with a reason; at default size the DLQs are empty);
- writes: one effective write per needed instance change, remediations bounded by the drift, and after
  convergence a full second pass (every event again plus all three sweeps) writes nothing at all;
- nothing outside the managed path, no protected role and no protected bucket was touched;
- no bucket whose grant tags were removed is granted at the end;
- every lifecycle hook was completed (none expired), and CONTINUE only once the instance's profile was
  settled (observed at the moment of the CompleteLifecycleAction);
- the queues drained within ``--converge-timeout`` and no failed record waited longer than
  ``--max-retry-wait`` (simulated seconds) for its retry.
Reported beside the checks: grant flaps (a grant removed and re-added, or added and removed, beyond
what the tag changes call for, from the record of every grant-policy version RoleWarden wrote) and the
time the world took to converge.

All waits (botocore's and RoleWarden's backoff, visibility timeouts, lags, hook timeouts, bucket
refills) run on one clock scaled by ``--time-scale``, so a run takes minutes, not hours; the retry
logic itself is unchanged. RoleWarden's own compute is not scaled: the default 0.1 keeps a default
burst's backlog within the lifecycle hooks' timeout. Durations in flags are simulated seconds unless they say "real".
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import re
import sys
import tempfile
import threading
import time
import types
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.endpoint
import yaml

from rwlocal import stack as st
from rwlocal import world as w
from rwlocal.configs import ADMIN_RULE, DATA_RULE, WEB_RULE, config_yaml
from rwlocal.hostile import Hostility
from rwlocal.multiaccount import CENTRAL_ACCOUNT, central_world, deploy_member, in_account, member_session
from rwlocal.pipeline import ParallelPipeline, Pipeline, fire_schedule, put_events
from rwlocal.proxy import ChaosProxy, FaultPlan
from rwlocal.server import LocalAws

MANAGED = "/rolewarden/"
ADMIN_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"
PROTECTED_ROLE = "rw-protected"
PROTECTED_BUCKET = "chaos-audit-logs"
CONFIG = config_yaml(
    managed_path=MANAGED,
    instance_profiles={"rules": [WEB_RULE, DATA_RULE, ADMIN_RULE], "on_mismatch": "replace"},
    bucket_grants={"protected_buckets": ["*-audit-logs"], "max_policies_per_role": 5},
    compliance={
        "protected_roles": [PROTECTED_ROLE],
        # the chaos world drifts every role at once
        "circuit_breaker": {"max_remediations": 10000, "window_minutes": 60},
    },
)
#: The oracle's own copy of the rules above (deliberately not RoleWarden's decision code).
EXPECTED_PROFILE = {("rolewarden:profile", "web"): "web-server", ("team", "data"): "data-worker"}
READ = {"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation"}
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
    # 0.1: RoleWarden's own compute is not time-scaled, so each real second of it counts 1/time_scale
    # simulated seconds. At 0.01 the default burst (about 120 s of compute on two cores) lasted 12,000
    # simulated seconds, longer than any lifecycle hook may wait (Auto Scaling's 3,600 s default,
    # 7,200 s at most), so hooks expired behind the backlog. At 0.1 it lasts about 1,200.
    time_scale: float = 0.1
    parallel: bool = True  # pollers per queue = the template's MaximumConcurrency, in processes
    honest_visibility: bool = True  # failed records hidden for their (time-scaled) visibility timeout
    token_buckets: bool = True  # token-bucket throttling per API
    bucket_factor: float = 1.0  # scales every bucket (1.0 = AWS's defaults)
    iam_lag: float = 5.0  # simulated seconds IAM reads may lag a write (0: off)
    iam_stale: float = 0.5  # share of IAM reads inside the lag window answered stale
    # simulated seconds DescribeInstances misses a fresh instance (0: off). Longer than IAM's: the launch
    # event reaches a handler within a second on AWS, but locally compute is not time-scaled, so the
    # window must cover the first batches (6 s of real time at the default scale) to be met at all.
    ec2_lag: float = 60.0
    hooks: bool = True  # a third of the instances launch through a lifecycle hook (else "Launch Successful")
    hook_timeout: float = 3600.0  # heartbeat timeout of the launch hooks (Auto Scaling's default)
    revoked: int = -1  # buckets whose grant tags are removed mid-run (-1: a fifth of the buckets)
    max_retry_wait: float = 300.0  # simulated seconds a failed record may wait for its retry
    converge_timeout: float = 900.0  # real seconds to wait for the queues to drain
    # 1: the single-account stack. N > 1: the central stack (Mode=central) and N - 1 member stacks of an
    # organization (rwlocal.multiaccount), the world spread evenly over the N accounts, every check per account
    accounts: int = 1


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    report: bool = False  # a figure shown in the table, not a pass/fail check


@dataclass
class Result:
    sizes: Sizes
    checks: list[Check] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks if not c.report)


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
    hooks: dict[str, str] = field(default_factory=dict)  # instance id -> lifecycle action token
    revoked: dict[str, dict[str, str]] = field(default_factory=dict)  # bucket -> its tags before removal
    #: The account this part of the world is in, and the prefix of its role and bucket names (names stay
    #: unique across accounts, so the proxy's write counts and the grant ledger need no account)
    account: str = CENTRAL_ACCOUNT
    prefix: str = ""
    label: str = "central"

    @property
    def protected_bucket(self) -> str:
        return f"{self.prefix}{PROTECTED_BUCKET}"

    @property
    def outsider(self) -> str:
        return f"{self.prefix}outsider"


HOOK_GROUP = "web-asg"
HOOK_NAME = "rolewarden-launch"


def lifecycle_event(instance_id: str, token: str) -> dict[str, Any]:
    """Auto Scaling's "EC2 Instance-launch Lifecycle Action" event (see events/asg-lifecycle-launching.json)."""
    return {
        "source": "aws.autoscaling",
        "detail-type": "EC2 Instance-launch Lifecycle Action",
        "resources": [
            f"arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:x:autoScalingGroupName/{HOOK_GROUP}"
        ],
        "detail": {
            "LifecycleActionToken": token,
            "AutoScalingGroupName": HOOK_GROUP,
            "LifecycleHookName": HOOK_NAME,
            "EC2InstanceId": instance_id,
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
            "NotificationMetadata": "rolewarden",
        },
    }


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


def seed_instances(world: World, count: int, rng: random.Random, hooks: bool = True) -> None:
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
        if n % 3 == 0 and not hooks:
            world.events.append(w.asg_launch_event(instance_id))
        elif n % 3 == 0:  # launched through Auto Scaling with a launch lifecycle hook
            token = str(uuid.UUID(int=rng.getrandbits(128)))
            world.hooks[instance_id] = token
            world.events.append(lifecycle_event(instance_id, token))
        else:
            world.events.append(w.state_change_event(instance_id, "running"))


def seed_buckets(world: World, count: int, rng: random.Random) -> None:
    iam = boto3.client("iam")
    s3 = boto3.client("s3")
    world.grantees = [f"{world.prefix}app-{n}" for n in range(max(3, count // 5))]
    for role in world.grantees:
        w.create_role(role, MANAGED)
    w.create_role(world.outsider, "/")  # a real role outside the managed path: must never be granted
    hostile = [
        "*",
        f"arn:aws:iam::{world.account}:role/{world.outsider}",
        world.outsider,
        f"/rolewarden/{world.prefix}app-0",
        "no-such-role",
        '"}],"Statement":[{"Effect":"Allow"',
        "a" * 200,
    ]
    names = [f"{world.prefix}chaos-bucket-{n:03d}" for n in range(count - 1)] + [world.protected_bucket]
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


def choose_revoked(world: World, count: int, rng: random.Random) -> None:
    """Buckets whose grant tags will be removed while the run is under way: the end state is no grant."""
    granted = sorted(
        bucket
        for bucket, tags in world.buckets.items()
        if bucket != world.protected_bucket and any(r in world.grantees for v in tags.values() for r in v.split())
    )
    for bucket in rng.sample(granted, k=min(count, len(granted))):
        world.revoked[bucket] = world.buckets[bucket]
        world.buckets[bucket] = {}


def revoke(world: World) -> list[dict[str, Any]]:
    """Remove the revoked buckets' tags (as their owner would) and return the events that says so."""
    s3 = boto3.client("s3")
    events = []
    for bucket in world.revoked:
        s3.delete_bucket_tagging(Bucket=bucket)
        events.append(_cloudtrail("aws.s3", "s3.amazonaws.com", "DeleteBucketTagging", {"bucketName": bucket}))
    return events


def seed_drift(world: World, count: int, rng: random.Random) -> None:
    iam = boto3.client("iam")
    w.ensure_aws_managed_policy(account_id=world.account)  # moto loads no AWS-managed policies by default
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
    roles = [f"{world.prefix}svc-{n:03d}" for n in range(count)]
    outside = f"{world.prefix}outside-admin"
    for n, role in enumerate([*roles, PROTECTED_ROLE, outside]):  # the config protects PROTECTED_ROLE by name
        path = "/" if role == outside else MANAGED
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


def _granted_actions(role: str, iam: Any = None) -> tuple[dict[str, set[str]], list[str]]:
    """bucket -> S3 actions the role's generated grant policies allow on it; plus problems seen."""
    iam = iam or boto3.client("iam")
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


def expected_grants(role: str, buckets: dict[str, dict[str, str]]) -> dict[str, set[str]]:
    """The oracle's own reading of the bucket tags (bucket -> S3 actions for ``role``), not RoleWarden's code;
    the bench's grant storm checks its result with it too."""
    expected: dict[str, set[str]] = {}
    for bucket, tags in buckets.items():
        actions: set[str] = set()
        if role in tags.get("rolewarden:read", "").split():
            actions |= READ
        if role in tags.get("rolewarden:write", "").split():
            actions |= WRITE
        if actions:
            expected[bucket] = actions
    return expected


def check_grants(world: World) -> Check:
    if not world.buckets:
        return Check("grant policies equal what the bucket tags say", True, "no buckets in this run")
    wrong: list[str] = []
    for role in world.grantees:
        unprotected = {bucket: tags for bucket, tags in world.buckets.items() if bucket != world.protected_bucket}
        expected = expected_grants(role, unprotected)
        granted, problems = _granted_actions(role)
        wrong.extend(f"{role}: {p}" for p in problems)
        if granted != expected:
            missing = sorted(set(expected) - set(granted))
            extra = sorted(set(granted) - set(expected))
            differ = sorted(b for b in set(expected) & set(granted) if expected[b] != granted[b])
            wrong.append(f"{role}: missing {missing[:3]} extra {extra[:3]} differ {differ[:3]}")
    outsider, _ = _granted_actions(world.outsider)
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


def _untouchables(worlds: dict[str, World]) -> dict[str, Any]:
    """``snapshot_untouchables`` in every account, keyed ``<account>:<what>``."""
    snap: dict[str, Any] = {}
    for account, world in worlds.items():
        with in_account(account):
            snap.update({f"{account}:{k}": v for k, v in snapshot_untouchables(world).items()})
    return snap


def snapshot_untouchables(world: World) -> dict[str, Any]:
    s3 = boto3.client("s3")
    snap: dict[str, Any] = {f"role/{r}": _role_state(r) for r in world.untouchable_roles}
    snap[f"role/{world.outsider}"] = _role_state(world.outsider) if world.buckets else None
    if world.protected_bucket in world.buckets:
        try:
            tags = s3.get_bucket_tagging(Bucket=world.protected_bucket).get("TagSet")
        except s3.exceptions.ClientError as exc:  # the dice gave it no tags: NoSuchTagSet
            if exc.response["Error"]["Code"] != "NoSuchTagSet":
                raise
            tags = None
        snap[f"bucket/{world.protected_bucket}"] = tags
    return snap


# -- observers during the run ----------------------------------------------------------------------------
class GrantLedger:
    """The record of grant-policy versions, kept from every effective IAM write RoleWarden makes (the
    proxy calls it after moto answered): each policy's default document, each role's attached grant
    policies, and so, after every write, the buckets each role is granted. ``history`` keeps, per (role,
    bucket), the sequence of granted/not granted states: exact, not sampled (two writes racing in the
    proxy are recorded in the order moto answered them)."""

    def __init__(self) -> None:
        self.defaults: dict[str, dict[str, Any]] = {}  # policy ARN -> default document
        self.versions: dict[tuple[str, str], dict[str, Any]] = {}
        self.attached: dict[str, set[str]] = {}  # role -> grant policy ARNs
        self.granted: dict[str, set[str]] = {}  # role -> buckets
        self.history: dict[tuple[str, str], list[bool]] = {}
        self.versions_created: Counter[str] = Counter()  # policy ARN -> CreatePolicy/CreatePolicyVersion
        #: DetachRolePolicy of a grant policy (its last bucket's tags removed): a grant write, not a remediation
        self.grant_detaches = 0
        self.lock = threading.Lock()

    @staticmethod
    def _buckets(document: dict[str, Any]) -> set[str]:
        statements = document.get("Statement", [])
        found = set()
        for statement in statements if isinstance(statements, list) else [statements]:
            if statement.get("Effect") != "Allow":
                continue
            resources = statement.get("Resource", [])
            for resource in resources if isinstance(resources, list) else [resources]:
                if str(resource).startswith("arn:aws:s3:::"):
                    found.add(str(resource)[len("arn:aws:s3:::") :].split("/", 1)[0])
        return found

    def __call__(self, service: str, operation: str, params: dict[str, str], payload: bytes) -> None:
        if service != "iam":
            return
        arn = params.get("PolicyArn", "")
        if operation == "CreatePolicy" and params.get("PolicyName", "").startswith("rolewarden-grants-"):
            found = re.search(rb"<Arn>([^<]+)</Arn>", payload)
            arn = found.group(1).decode() if found else ""
        if "rolewarden-grants-" not in arn:
            return
        with self.lock:
            if operation in ("CreatePolicy", "CreatePolicyVersion"):
                document = json.loads(params.get("PolicyDocument", "{}"))
                version = re.search(rb"<VersionId>([^<]+)</VersionId>", payload)
                self.versions[(arn, version.group(1).decode() if version else "v1")] = document
                self.versions_created[arn] += 1
                if operation == "CreatePolicy" or params.get("SetAsDefault", "").lower() == "true":
                    self.defaults[arn] = document
            elif operation == "SetDefaultPolicyVersion" and (arn, params.get("VersionId", "")) in self.versions:
                self.defaults[arn] = self.versions[(arn, params["VersionId"])]
            elif operation == "DeletePolicy":
                self.defaults.pop(arn, None)
            elif operation == "AttachRolePolicy":
                self.attached.setdefault(params.get("RoleName", ""), set()).add(arn)
            elif operation == "DetachRolePolicy":
                self.attached.setdefault(params.get("RoleName", ""), set()).discard(arn)
                self.grant_detaches += 1
            for role, arns in self.attached.items():
                if arn in arns or role == params.get("RoleName"):
                    self._update(role)

    def _update(self, role: str) -> None:
        documents = [self.defaults[a] for a in self.attached.get(role, ()) if a in self.defaults]
        now: set[str] = set().union(*(self._buckets(d) for d in documents))
        for bucket in now | self.granted.get(role, set()):
            states = self.history.setdefault((role, bucket), [False])
            if states[-1] != (bucket in now):
                states.append(bucket in now)
        self.granted[role] = now

    def ever_granted(self, bucket: str) -> bool:
        with self.lock:
            return any(True in states for (_, b), states in self.history.items() if b == bucket)

    def flaps(self, world: World) -> dict[tuple[str, str], int]:
        """(role, bucket) -> flaps: state changes beyond those the tag changes call for, halved (a removal
        and a re-add are one flap)."""
        found = {}
        with self.lock:
            history = {k: list(v) for k, v in self.history.items()}
        for (role, bucket), states in history.items():
            changes = len(states) - 1
            if bucket in world.revoked and role in _named(world.revoked[bucket]):
                expected = 2 if True in states else 0  # granted, then revoked (or revoked before granted)
            else:
                expected = int(role in _named(world.buckets.get(bucket, {})))
            excess = max(0, changes - expected)
            if excess:
                found[(role, bucket)] = math.ceil(excess / 2)
        return found


def _named(tags: dict[str, str]) -> set[str]:
    return {r for key in ("rolewarden:read", "rolewarden:write") for r in tags.get(key, "").split()}


class HookObserver:
    """Called by the proxy when a hook is completed: what profile the instance holds at that moment."""

    def __init__(self, worlds: dict[str, World] | None = None) -> None:
        """``worlds``: where each instance is (several accounts); the central account's otherwise."""
        self.ec2 = boto3.session.Session().client("ec2")
        self.lock = threading.Lock()
        self.account_of = {i: a for a, world in (worlds or {}).items() for i in world.instances}
        self.member_ec2 = {a: member_session(a).client("ec2") for a in worlds or {} if a != CENTRAL_ACCOUNT}

    def __call__(self, hook: Any, result: str) -> str | None:
        ec2 = self.member_ec2.get(self.account_of.get(hook.instance_id, CENTRAL_ACCOUNT), self.ec2)
        with self.lock:
            found = ec2.describe_iam_instance_profile_associations(
                Filters=[
                    {"Name": "instance-id", "Values": [hook.instance_id]},
                    {"Name": "state", "Values": ["associating", "associated"]},
                ]
            )["IamInstanceProfileAssociations"]
        return found[0]["IamInstanceProfile"]["Arn"].rsplit("/", 1)[-1] if found else None


# -- the checks added for the hostile AWS -------------------------------------------------------------------
def check_revoked(world: World, watcher: GrantLedger | None) -> Check:
    name = "no bucket whose grant tags were removed is granted at the end"
    if not world.revoked:
        return Check(name, True, "no tags removed in this run")
    still: list[str] = []
    for role in world.grantees:
        granted, _ = _granted_actions(role)
        still.extend(f"{bucket} still granted to {role}" for bucket in world.revoked if bucket in granted)
    seen = sum(1 for b in world.revoked if watcher is not None and watcher.ever_granted(b))
    return Check(
        name,
        not still,
        f"{len(world.revoked)} buckets lost their tags mid-run ({seen} had been granted before); "
        + (f"RESURRECTED or never revoked: {still[:3]}" if still else "none granted at the end"),
    )


def check_hooks(world: World, hooks: Any, instances_before: dict[str, str]) -> Check:
    name = "lifecycle hooks: every one completed, none expired, CONTINUE only once settled"
    if not world.hooks:
        return Check(name, True, "no lifecycle hooks in this run")
    expired = [o for o in hooks.outcomes if o.how == "expired"]
    pending = list(hooks.pending.values())
    early = []
    for outcome in hooks.outcomes:
        if outcome.how != "completed" or outcome.result != "CONTINUE":
            continue
        tags = world.instances.get(outcome.instance_id, {})
        want = expected_profile(tags)
        settled = instances_before.get(outcome.instance_id) if want is None else want
        if outcome.observed != settled:
            early.append(f"{outcome.instance_id} released holding {outcome.observed} (wanted {settled})")
    abandoned = [o for o in hooks.outcomes if o.how == "completed" and o.result != "CONTINUE"]
    waits = sorted(o.waited for o in hooks.outcomes)
    ok = not expired and not pending and not early
    detail = (
        f"{len(world.hooks)} hooks: {sum(o.how == 'completed' for o in hooks.outcomes)} completed "
        f"({len(abandoned)} ABANDON), {len(expired)} EXPIRED with their default result, {len(pending)} still pending; "
        f"released before settled: {len(early)}"
        + (f" {early[:2]}" if early else "")
        + (f"; wait p50 {waits[len(waits) // 2]:.0f}s p max {waits[-1]:.0f}s (simulated)" if waits else "")
    )
    return Check(name, ok, detail)


def check_retry_wait(sizes: Sizes, failed_records: int, visibility_set: Counter[int], queue_visibility: int) -> Check:
    name = f"failed records retried within {sizes.max_retry_wait:.0f}s (simulated)"
    if not sizes.honest_visibility:
        return Check(name, True, "visibility not honoured in this run (--no-honest-visibility)")
    if not failed_records:
        return Check(name, True, "no record failed")
    set_longest = max(visibility_set) if visibility_set else None
    if set_longest is None:
        return Check(
            name,
            queue_visibility <= sizes.max_retry_wait,
            f"{failed_records} failed records each waited the queue's VisibilityTimeout of {queue_visibility}s "
            "(the function never called ChangeMessageVisibility)",
        )
    return Check(
        name,
        set_longest <= sizes.max_retry_wait,
        f"{failed_records} failed records; the function set visibility {dict(sorted(visibility_set.items()))} "
        f"(seconds: count); longest {set_longest}s",
    )


def _written_twice(targets: Counter[tuple[str, str]], prefix: str, operations: tuple[str, ...]) -> list[str]:
    """Targets (instance, role) with more than one effective write of these operations, e.g.
    "i-0abc: ec2:AssociateIamInstanceProfile, ec2:ReplaceIamInstanceProfileAssociation"."""
    per_target: dict[str, list[str]] = {}
    for (name, target), count in sorted(targets.items()):
        if name.startswith(prefix) and any(op in name for op in operations):
            per_target.setdefault(target, []).extend([name] * count)
    return [f"{t}: {', '.join(names)}" for t, names in per_target.items() if len(names) > 1]


# -- the run -----------------------------------------------------------------------------------------
def _drain(pipeline: Pipeline, max_rounds: int = 100_000, timeout: float = 900.0) -> tuple[int, bool]:
    consumers = list(pipeline.consumers)
    batches = 0
    deadline = time.monotonic() + timeout
    for _ in range(max_rounds):
        handled = 0
        for consumer in consumers:
            n = pipeline.invoke_batch(consumer)
            handled += n
            batches += int(n > 0)
        if handled == 0 and all(pipeline.depth(pipeline.consumers[c].queue_logical_id) == 0 for c in consumers):
            return batches, True
        if time.monotonic() > deadline:
            return batches, False
        if handled == 0 and pipeline.honest_visibility:
            time.sleep(0.05)
    return batches, False


class _Runner:
    """Drives the pipeline of one run: one in-process poller, or parallel poller processes."""

    def __init__(self, sizes: Sizes, stack: st.Stack, overrides: dict[str, str]) -> None:
        self.sizes = sizes
        self.reader = Pipeline(stack)  # DLQ and depth reads
        self.parallel: ParallelPipeline | None = None
        self.single: Pipeline | None = None
        if sizes.parallel:
            self.parallel = ParallelPipeline(stack, overrides, time_scale=sizes.time_scale)
        else:
            self.single = Pipeline(
                stack, env_overrides=overrides, honest_visibility=sizes.honest_visibility, time_scale=sizes.time_scale
            )
            for consumer in self.single.consumers.values():
                consumer.runtime().sleep = lambda seconds: time.sleep(seconds * sizes.time_scale)
        self.batches = 0

    def start(self) -> None:
        if self.parallel is not None:
            self.parallel.start()

    def drain(self) -> bool:
        if self.parallel is not None:
            return self.parallel.wait_quiet(self.sizes.converge_timeout)
        assert self.single is not None
        batches, quiet = _drain(self.single, timeout=self.sizes.converge_timeout)
        self.batches += batches
        return quiet

    def stop(self) -> None:
        if self.parallel is not None:
            self.parallel.stop()

    def invocations(self) -> int:
        return len(self.parallel.invocations) if self.parallel is not None else self.batches

    def failed_records(self) -> int:
        if self.parallel is not None:
            return sum(len(i.failed) for i in self.parallel.invocations)
        assert self.single is not None
        return self.single.stats.failures

    def depths(self) -> dict[str, int]:
        return {c: self.reader.depth(self.reader.consumers[c].queue_logical_id) for c in self.reader.consumers}


def _share(total: int, index: int, parts: int) -> int:
    """Account ``index``'s share of ``total`` spread evenly over ``parts`` accounts (the first ones get the rest)."""
    return total // parts + int(index < total % parts)


def _put_spread(stream: list[tuple[str, dict[str, Any]]]) -> None:
    """Put each event on its own account's default bus (a member's travels its forwarding rules): each
    account's events in their order, the accounts taking turns ten at a time (one PutEvents each, so a
    delivery over several accounts takes no longer than over one)."""
    pending: dict[str, list[dict[str, Any]]] = {}
    for account, event in stream:
        pending.setdefault(account, []).append(event)
    while any(pending.values()):
        for account, events in pending.items():
            if events:
                with in_account(account):
                    put_events(events[:10])
                del events[:10]


def _each(worlds: dict[str, World], check: Callable[[World], Check]) -> Check:
    """One check run in every account of the world, as one row (each account's detail when several)."""
    found = []
    for world in worlds.values():
        with in_account(world.account):
            found.append((world, check(world)))
    if len(found) == 1:
        return found[0][1]
    detail = "; ".join(f"{world.label}: {c.detail}" for world, c in found)
    return Check(found[0][1].name, all(c.ok for _, c in found), detail, found[0][1].report)


def _merged(worlds: dict[str, World]) -> World:
    """The world's instances, hooks and buckets over every account (their ids and names are unique)."""
    merged = World()
    for world in worlds.values():
        merged.instances.update(world.instances)
        merged.hooks.update(world.hooks)
        merged.buckets.update(world.buckets)
        merged.revoked.update(world.revoked)
    return merged


@contextlib.contextmanager
def _accounts(sizes: Sizes) -> Iterator[tuple[st.Stack, list[str], str]]:
    """The stack, the accounts the world spreads over (the stack's first) and the config's extra text."""
    if sizes.accounts <= 1:
        yield st.deploy(), [CENTRAL_ACCOUNT], ""
        return
    members = [f"member-{n}" for n in range(1, sizes.accounts)]
    with central_world(members, name="rolewarden-chaos") as built:
        # the central account's own events: a StackSet never deploys to the management account, and in central
        # mode its default bus feeds no queue; member.yaml deployed there as a plain stack forwards them too
        deploy_member(built.central, CENTRAL_ACCOUNT, built.organization.id)
        accounts = [CENTRAL_ACCOUNT, *(built.account(m) for m in members)]
        yield built.central, accounts, yaml.safe_dump({"accounts": built.central_config()}, sort_keys=False)


def run(sizes: Sizes, out: Any = None) -> Result:
    import os

    os.environ["POWERTOOLS_LOG_LEVEL"] = "CRITICAL"  # read when the handlers' loggers are built
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    rng = random.Random(sizes.seed)
    result = Result(sizes)
    started = time.perf_counter()
    real_endpoint_time = botocore.endpoint.time  # type: ignore[attr-defined]
    scale = sizes.time_scale
    with LocalAws() as aws, tempfile.TemporaryDirectory() as tmp, _accounts(sizes) as (stack, accounts, extra):
        config = Path(tmp) / "chaos.yaml"
        config.write_text(CONFIG + extra)
        worlds: dict[str, World] = {}
        parts = len(accounts)
        for index, account in enumerate(accounts):
            part = World(
                account=account, prefix=f"m{index}-" if index else "", label=f"member {index}" if index else "central"
            )
            worlds[account] = part
            with in_account(account):
                seed_instances(part, _share(sizes.instances, index, parts), rng, sizes.hooks)
                if sizes.buckets:
                    buckets = _share(sizes.buckets, index, parts)
                    seed_buckets(part, buckets, rng)
                    revoked = sizes.revoked if sizes.revoked >= 0 else sizes.buckets // 5
                    choose_revoked(part, _share(revoked, index, parts), rng)
                if sizes.roles:
                    seed_drift(part, _share(sizes.roles, index, parts), rng)
        world = _merged(worlds)
        before: dict[str, str] = {}
        for account, part in worlds.items():
            with in_account(account):
                before.update(w.attached_profiles(list(part.instances)))
        untouched_before = _untouchables(worlds)
        plan = FaultPlan(throttle=sizes.throttle, server_error=sizes.server_errors, drop=sizes.drops, seed=sizes.seed)
        hostility = Hostility(
            time_scale=scale,
            buckets=sizes.token_buckets,
            bucket_factor=sizes.bucket_factor,
            iam_lag=sizes.iam_lag,
            iam_stale=sizes.iam_stale,
            ec2_lag=sizes.ec2_lag,
            scale_visibility=sizes.honest_visibility,
            seed=sizes.seed,
        )
        botocore.endpoint.time = types.SimpleNamespace(  # type: ignore[attr-defined]
            sleep=lambda seconds: time.sleep(seconds * scale)
        )
        watcher: GrantLedger | None = None
        runner: _Runner | None = None
        try:
            with ChaosProxy(aws.port, plan, hostility) as proxy:
                proxy.hooks.on_complete = HookObserver(worlds if parts > 1 else None)
                overrides = {
                    "ROLEWARDEN_CONFIG": str(config),
                    "AWS_ENDPOINT_URL": proxy.endpoint,
                    "POWERTOOLS_LOG_LEVEL": "CRITICAL",
                    "POWERTOOLS_METRICS_DISABLED": "true",
                    "ROLEWARDEN_PROPAGATION_WAIT": "30",
                    # RoleWarden's own pacing (aws/pacing.py) at the rates the proxy's buckets refill at: they
                    # run on the scaled clock and are scaled by --bucket-factor; its longest wait likewise
                    "ROLEWARDEN_PACE_FACTOR": f"{sizes.bucket_factor / sizes.time_scale:g}",
                    "ROLEWARDEN_PACE_MAX_WAIT": f"{70 * sizes.time_scale:g}",
                }
                runner = _Runner(sizes, stack, overrides)
                runner.start()
                from rolewarden.aws import clients

                clients.reset()
                watcher = GrantLedger()
                proxy.on_write = watcher
                stream = [(a, e) for a, part in worlds.items() for e in part.events for _ in range(sizes.duplicates)]
                rng.shuffle(stream)
                # the instances launch now: their hooks start waiting, and DescribeInstances misses them for the
                # EC2 lag, counted from the end of the delivery of their events (a burst takes a while to put)
                for instance_id, token in world.hooks.items():
                    proxy.hooks.register(
                        instance_id, HOOK_NAME, HOOK_GROUP, sizes.hook_timeout, default_result="ABANDON", token=token
                    )
                began = time.monotonic()
                proxy.launched(list(world.instances))
                _put_spread(stream)
                proxy.launched(list(world.instances))
                revoked_events: list[tuple[str, dict[str, Any]]] = []
                if world.revoked:
                    # remove the tags once the run is under way (a revoked bucket granted, or a few seconds)
                    wait_until = time.monotonic() + max(2.0, 30 * scale)
                    while time.monotonic() < wait_until and not any(watcher.ever_granted(b) for b in world.revoked):
                        time.sleep(0.05)
                    for account, part in worlds.items():
                        with in_account(account):
                            revoked_events += [(account, e) for e in revoke(part) for _ in range(sizes.duplicates)]
                    _put_spread(revoked_events)
                quiet = runner.drain()
                drained = time.monotonic()
                first_writes = Counter(proxy.stats.writes_ok)
                first_targets = Counter(proxy.stats.write_targets)
                first_grant_detaches = watcher.grant_detaches
                managed_times = [
                    t for t, name in proxy.stats.write_times if name.split(":", 1)[0] in ("ec2", "iam", "s3")
                ]
                last_change = max(managed_times, default=began)
                depths = runner.depths()
                injected = Counter(proxy.stats.injected)
                throttled = {svc: round(proxy.throttled_fraction(svc), 3) for svc in ("ec2", "iam")}
                failed_records = runner.failed_records()
                visibility_set = Counter(proxy.stats.visibility_set)
                dlq = {c: len(runner.reader.dlq_messages(c)) for c in runner.reader.consumers}
                dlq_reasons = [
                    m.get("MessageAttributes", {}).get("rolewarden-reason", {}).get("StringValue", "?")
                    for c in runner.reader.consumers
                    for m in runner.reader.dlq_messages(c)
                ]
                # second pass: everything again plus every sweep must write nothing
                _put_spread(stream + revoked_events)
                for rule in st.schedule_rules(stack.template):
                    fire_schedule(stack, rule)
                quiet_again = runner.drain()
                # only writes to what RoleWarden manages count; its own bookkeeping (state-table records,
                # sweep idempotency items) is not a change to the account
                second_writes = Counter(
                    {
                        k: v
                        for k, v in (Counter(proxy.stats.writes_ok) - first_writes).items()
                        if k.split(":", 1)[0] in ("ec2", "iam", "s3", "autoscaling")
                    }
                )
                invocations = runner.invocations()
                runner.stop()
                hooks = proxy.hooks
                hooks.expire_due()
        finally:
            if runner is not None:
                runner.stop()
            botocore.endpoint.time = real_endpoint_time  # type: ignore[attr-defined]
            from rolewarden.aws import clients

            clients.reset()
        result.checks.append(_each(worlds, lambda part: check_instances(part, before)))
        result.checks.append(_each(worlds, check_grants))
        result.checks.append(_each(worlds, check_roles))
        lost = sum(dlq.values())
        result.checks.append(
            Check(
                "no message lost; DLQs empty",
                lost == 0,
                f"{len(stream) + len(revoked_events)} events delivered, {invocations} invocations, DLQ {dlq}"
                + (f" reasons {dlq_reasons[:2]}" if dlq_reasons else ""),
            )
        )
        instance_writes = sum(v for k, v in first_writes.items() if k.startswith("ec2:") and "Disassociate" not in k)
        twice = _written_twice(first_targets, "ec2:", ("Associate", "Replace"))
        result.checks.append(
            Check(
                "one effective write per needed instance change",
                instance_writes <= sum(part.needed_instance_writes for part in worlds.values()),
                f"{instance_writes} association writes for "
                f"{sum(part.needed_instance_writes for part in worlds.values())} needed"
                + (f"; written more than once: {twice[:4]}" if twice else ""),
            )
        )
        drifted = sum(len(part.drifted) for part in worlds.values())
        remediation_writes = -first_grant_detaches + sum(
            v
            for k, v in first_writes.items()
            if k.startswith("iam:")
            and any(
                op in k for op in ("DetachRolePolicy", "UpdateAssumeRolePolicy", "PutRolePolicy", "DeleteRolePolicy")
            )
        )
        remediated_twice = _written_twice(
            first_targets, "iam:", ("DetachRolePolicy", "UpdateAssumeRolePolicy", "PutRolePolicy", "DeleteRolePolicy")
        )
        result.checks.append(
            Check(
                "remediation writes bounded by the drift",
                remediation_writes <= drifted,
                f"{remediation_writes} remediation writes for {drifted} drifted roles"
                + (f" (and {first_grant_detaches} grant-policy detaches)" if first_grant_detaches else "")
                + (f"; remediated more than once: {remediated_twice[:4]}" if remediated_twice else ""),
            )
        )
        result.checks.append(
            Check(
                "nothing written once everything is right",
                sum(second_writes.values()) == 0,
                f"second pass writes: {dict(second_writes) or 0}",
            )
        )
        untouched_after = _untouchables(worlds)
        changed = [k for k in untouched_before if untouched_before[k] != untouched_after.get(k)]
        result.checks.append(
            Check(
                "outside path, protected role and protected bucket untouched",
                not changed,
                f"checked {len(untouched_before)}; changed: {changed or 'none'}",
            )
        )
        result.checks.append(_each(worlds, lambda part: check_revoked(part, watcher)))
        result.checks.append(check_hooks(world, hooks, before))
        queue_visibility = max(
            runner.reader.visibility_timeout(c.queue_logical_id) for c in runner.reader.consumers.values()
        )
        result.checks.append(check_retry_wait(sizes, failed_records, visibility_set, queue_visibility))
        converge_real = drained - began
        result.checks.append(
            Check(
                f"queues drained within {sizes.converge_timeout:.0f}s real",
                quiet and quiet_again,
                (f"first pass drained in {converge_real:.1f}s real" if quiet else f"NOT drained: still {depths}")
                + ("" if quiet_again else "; second pass NOT drained"),
            )
        )
        flaps = watcher.flaps(world) if watcher is not None else {}
        most_versions = max(watcher.versions_created.values(), default=0) if watcher is not None else 0
        result.checks.append(
            Check(
                "grant flaps (report)",
                True,
                f"{sum(flaps.values())} flaps on {len(flaps)} of the "
                f"{len(watcher.history) if watcher else 0} role/bucket pairs ever granted"
                + (f": {[f'{r}/{b} x{n}' for (r, b), n in sorted(flaps.items())][:4]}" if flaps else "")
                + f"; most versions written to one grant policy: {most_versions}",
                report=True,
            )
        )
        result.checks.append(
            Check(
                "time to converge (report)",
                True,
                f"last change {last_change - began:.1f}s real ({(last_change - began) / scale:.0f}s simulated) "
                f"after the events; queues quiet after {converge_real:.1f}s real "
                f"({converge_real / scale:.0f}s simulated)",
                report=True,
            )
        )
        result.figures = {
            "events": len(stream) + len(revoked_events),
            "injected_faults": dict(injected),
            "throttled_fraction": throttled,
            "effective_writes": dict(first_writes),
            "grant_flaps": sum(flaps.values()),
            "max_versions_created_per_policy": most_versions,
            "seconds_to_converge_real": round(last_change - began, 2),
            "seconds_to_converge_simulated": round((last_change - began) / scale, 1),
            "invocations": invocations,
            "failed_records": failed_records,
            "seconds": round(time.perf_counter() - started, 1),
        }
    return result


def print_table(result: Result, out: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out or sys.stdout, width=160)
    s = result.sizes
    hostile = [
        f"{'parallel pollers' if s.parallel else 'one poller'}",
        "honest visibility" if s.honest_visibility else "instant redelivery",
        f"token buckets x{s.bucket_factor:g}" if s.token_buckets else "no token buckets",
        f"IAM lag {s.iam_lag:g}s ({s.iam_stale:.0%} stale)" if s.iam_lag else "no IAM lag",
        f"EC2 lag {s.ec2_lag:g}s" if s.ec2_lag else "no EC2 lag",
        f"hooks {s.hook_timeout:g}s" if s.hooks else "no hooks",
        f"time x{s.time_scale:g}",
    ]
    table = Table(
        title=(
            f"chaos: {s.instances} instances, {s.buckets} buckets, {s.roles} role drifts; "
            f"{s.throttle:.0%} throttling, {s.server_errors:.0%} 5xx, {s.drops:.0%} drops, "
            f"x{s.duplicates} delivery, shuffled; "
            + (f"spread over {s.accounts} accounts (central + {s.accounts - 1} members); " if s.accounts > 1 else "")
            + ", ".join(hostile)
        ),
        title_justify="left",
    )
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for check in result.checks:
        mark = "[cyan]info" if check.report else ("[green]ok" if check.ok else "[red]FAIL")
        table.add_row(check.name, mark, check.detail)
    console.print(table)
    f = result.figures
    console.print(
        f"faults injected: {f.get('injected_faults')}; throttled share: {f.get('throttled_fraction')}; "
        f"effective writes: {f.get('effective_writes')}; {f.get('invocations')} invocations, "
        f"{f.get('failed_records')} failed records; {f.get('seconds')}s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make chaos", description=__doc__.split("\n\n")[0])
    defaults = Sizes()
    for name, value in vars(defaults).items():
        flag = f"--{name.replace('_', '-')}"
        if isinstance(value, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        else:
            parser.add_argument(flag, type=type(value), default=value)
    args = parser.parse_args(argv)
    sizes = Sizes(**{k: getattr(args, k) for k in vars(defaults)})
    import logging

    logging.getLogger("rolewarden").setLevel(logging.CRITICAL)
    result = run(sizes)
    print_table(result)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
