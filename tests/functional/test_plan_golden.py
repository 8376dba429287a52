"""``rolewarden plan --json`` is unchanged for the same world: a guard around the issue-11 refactor.

One seeded world in the moto server exercises all three capabilities (instances with and without profile
tags, a wrong profile, refused and missing profiles, IMDSv1 left open and exempted; buckets whose read and
write tags name managed, unknown and unmanaged roles, a protected bucket, a drifted grant policy; roles with
admin access inline and attached, a loose trust, a missing boundary, an escalation path, an inline policy, an
unlisted managed policy, a protected role). The CLI's ``main`` plans every capability and the JSON it prints is
compared, as text, with ``tests/functional/golden/plan.json``, generated from the code before the refactor.

Only what is random in the world is normalised, deterministically: instance ids become the instance's Name
tag, association ids ``<association of NAME>``, IAM unique ids ``<id of KIND NAME>`` and timestamps
``<time>``. Everything else (every field, value and the order of every list) is compared verbatim, so a
changed field, order or value fails with a diff. moto's random generator is seeded too (with each instance's
name just before its launch), because the profiles capability orders instances by id: the order is then the
same on every run, whatever ran before in the process.

To regenerate the golden file, deliberately (a change of ``plan --json`` that is meant), run
``ROLEWARDEN_REGENERATE_GOLDEN=1 .venv/bin/pytest -p no:cacheprovider tests/functional/test_plan_golden.py``:
the test writes the file and fails, so that it never passes silently while regenerating; review
``git diff tests/functional/golden/`` and commit it with the change that explains it."""

from __future__ import annotations

import difflib
import io
import json
import os
import re
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from rolewarden.cli.main import main
from rwlocal import configs
from rwlocal import world as w
from rwlocal.server import ACCOUNT_ID, LocalAws

GOLDEN = Path(__file__).parent / "golden" / "plan.json"
REGENERATE = "ROLEWARDEN_REGENERATE_GOLDEN"
SEED = 20261129
BOUNDARY = f"arn:aws:iam::{ACCOUNT_ID}:policy/rolewarden-boundary"
EXTRA_POLICY = f"arn:aws:iam::{ACCOUNT_ID}:policy/rolewarden/team-extras"

CONFIG = configs.config_yaml(
    instance_profiles={
        "rules": [
            configs.WEB_RULE,
            configs.DATA_RULE,
            configs.ADMIN_RULE,
            configs.GHOST_RULE,
            {"match": {"rolewarden:profile": "power"}, "profile": "power-user"},
        ],
        "metadata": {
            "imdsv2": "enforce",
            "exemptions": [{"match": {"imds": "legacy"}, "reason": "vendor agent still reads IMDSv1"}],
        },
    },
    bucket_grants={"protected_buckets": ["*-audit-logs"]},
    compliance={
        "permissions_boundary": BOUNDARY,
        "protected_roles": ["break-glass"],
        "rules": {
            "no-inline-policies": "report",
            "managed-policy-allowlist": "report",
            # Off on purpose: issue 11 moves grant drift from an in-process plan to a message on the grants
            # queue, a change of plan --json that is meant; the grants capability still plans the stale
            # policy's rotation.
            "grant-policy-drift": "off",
        },
    },
)

READ_ONLY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}],
}
PASS_AND_RUN = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["iam:PassRole", "ec2:RunInstances"], "Resource": "*"}],
}
#: A grant policy as RoleWarden would have written it once, for a bucket whose tag no longer names the role.
STALE_GRANT = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "ReadAcmeArchive",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": ["arn:aws:s3:::acme-archive", "arn:aws:s3:::acme-archive/*"],
        }
    ],
}


def _iam() -> Any:
    return boto3.client("iam")


def _managed_role(name: str, boundary: bool = True, path: str = "/rolewarden/") -> None:
    w.create_role(name, path=path)
    if boundary:
        _iam().put_role_permissions_boundary(RoleName=name, PermissionsBoundary=BOUNDARY)


def _profile(name: str, role: str, boundary: bool = True, role_path: str = "/rolewarden/") -> str:
    _managed_role(role, boundary=boundary, path=role_path)
    return w.create_profile(name, role=role)


def _instance(name: str, tags: dict[str, str] | None = None, profile_arn: str | None = None) -> str:
    # The profiles capability orders instances by id: seed moto's generator with the name just before the
    # launch, so that the id, and so the order, is the same whatever the process did before.
    _seed_moto(sum(name.encode()))
    return w.run_instance({"Name": name, **(tags or {})}, profile_arn)


def _bucket(name: str, tags: dict[str, str] | None = None) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=name)
    if tags:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})


def seed_world() -> None:
    """The world the golden file was made from. Change it only together with the golden file."""
    iam = _iam()
    iam.create_policy(PolicyName="rolewarden-boundary", Path="/", PolicyDocument=json.dumps(READ_ONLY))
    iam.create_policy(PolicyName="team-extras", Path="/rolewarden/", PolicyDocument=json.dumps(READ_ONLY))
    admin_arn = w.ensure_aws_managed_policy()

    # -- instance profiles
    # moto builds a region's EC2 backend (AMIs, default VPC) on first use after a reset, drawing ids from the
    # generator that _instance seeds: build it first (and read the AMI id, cached per process).
    w.image_id()
    w.ec2().describe_vpcs()
    web = _profile("web-server", "web-server")
    data = _profile("data-worker", "data")
    _profile("break-glass-admin", "admin-role", role_path="/")  # outside the managed path: refused
    _profile("power-user", "power")  # managed, but its role has an escalation path: the tag guard refuses it
    iam.put_role_policy(RoleName="power", PolicyName="launch", PolicyDocument=json.dumps(PASS_AND_RUN))
    _instance("web-bare", {"rolewarden:profile": "web"})  # associate
    _instance("web-right", {"rolewarden:profile": "web"}, web)  # nothing (but IMDSv1)
    _instance("web-wrong", {"rolewarden:profile": "web"}, data)  # replace
    _instance("web-legacy", {"rolewarden:profile": "web", "imds": "legacy"})  # associate, IMDS exempt
    _instance("data-staging", {"team": "data", "env": "staging"})  # associate by a list value
    _instance("data-dev", {"team": "data", "env": "dev"})  # no rule matches
    _instance("admin-tagged", {"rolewarden:profile": "admin"})  # refused profile
    _instance("ghost-tagged", {"rolewarden:profile": "ghost"})  # profile does not exist
    _instance("power-tagged", {"rolewarden:profile": "power"})  # refused by the tag guard
    _instance("untagged")  # nothing

    # -- bucket grants
    for role in ("reporting", "analytics", "etl"):
        _managed_role(role)
    _managed_role("outsider", path="/")  # not managed: may not be granted
    _bucket("acme-reports", {"rolewarden:read": "reporting analytics", "rolewarden:write": "etl"})
    _bucket("acme-uploads", {"rolewarden:write": "web-server ghost-role"})
    _bucket("acme-shared", {"rolewarden:read": "outsider reporting", "owner": "data-team"})
    _bucket("acme-audit-logs", {"rolewarden:read": "reporting"})  # protected
    _bucket("acme-archive")  # its tag is gone: analytics' grant policy is stale
    _bucket("acme-plain")
    stale = iam.create_policy(
        PolicyName="rolewarden-grants-analytics",
        Path="/rolewarden/",
        PolicyDocument=json.dumps(STALE_GRANT),
        Description="RoleWarden S3 grants for role analytics, part 1",
    )["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="analytics", PolicyArn=stale)

    # -- role compliance
    _managed_role("admin-inline")
    iam.put_role_policy(RoleName="admin-inline", PolicyName="debug", PolicyDocument=json.dumps(w.ADMIN_DOCUMENT))
    _managed_role("admin-attached")
    iam.attach_role_policy(RoleName="admin-attached", PolicyArn=admin_arn)
    w.create_role("loose", trust=w.LOOSE_TRUST)
    iam.put_role_permissions_boundary(RoleName="loose", PermissionsBoundary=BOUNDARY)
    _managed_role("no-boundary", boundary=False)
    _managed_role("escalator")
    iam.put_role_policy(RoleName="escalator", PolicyName="launch", PolicyDocument=json.dumps(PASS_AND_RUN))
    _managed_role("inline-reader")
    iam.put_role_policy(RoleName="inline-reader", PolicyName="read", PolicyDocument=json.dumps(READ_ONLY))
    _managed_role("extras")
    iam.attach_role_policy(RoleName="extras", PolicyArn=EXTRA_POLICY)
    _managed_role("break-glass", boundary=False)  # protected: left alone
    iam.attach_role_policy(RoleName="break-glass", PolicyArn=admin_arn)
    w.create_role("unmanaged-admin", path="/")  # outside the managed path: not RoleWarden's
    iam.attach_role_policy(RoleName="unmanaged-admin", PolicyArn=admin_arn)


def _replacements() -> dict[str, str]:
    """Every random id of the seeded world -> a stable name for it."""
    names: dict[str, str] = {}
    ec2 = boto3.client("ec2")
    for reservation in ec2.describe_instances()["Reservations"]:
        for instance in reservation["Instances"]:
            tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
            names[instance["InstanceId"]] = tags["Name"]
            names[instance["ImageId"]] = "<image>"
    for assoc in ec2.describe_iam_instance_profile_associations()["IamInstanceProfileAssociations"]:
        names[assoc["AssociationId"]] = f"<association of {names[assoc['InstanceId']]}>"
    iam = _iam()
    for page in iam.get_paginator("get_account_authorization_details").paginate():
        for role in page["RoleDetailList"]:
            names[role["RoleId"]] = f"<id of role {role['RoleName']}>"
    for page in iam.get_paginator("list_policies").paginate(Scope="Local"):
        for policy in page["Policies"]:
            names[policy["PolicyId"]] = f"<id of policy {policy['PolicyName']}>"
    for page in iam.get_paginator("list_instance_profiles").paginate():
        for profile in page["InstanceProfiles"]:
            names[profile["InstanceProfileId"]] = f"<id of instance profile {profile['InstanceProfileName']}>"
    return names


_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?")
#: What a random id looks like, so that one the normalisation does not know fails the test instead of the
#: golden file holding a value that differs on the next run.
_RANDOM_ID = re.compile(r"\b(i|iip-assoc|ami|r|vpc|subnet|eni|sg)-[0-9a-f]{8,17}\b|\bA(RO|NP|IP|ID)A[0-9A-Z]{12,}\b")


def normalise(text: str, names: dict[str, str]) -> str:
    # longest first, so that no id is replaced inside a longer one
    for raw in sorted(names, key=len, reverse=True):
        text = text.replace(raw, names[raw])
    text = _TIME.sub("<time>", text)
    unknown = sorted({m.group(0) for m in _RANDOM_ID.finditer(text)})
    assert not unknown, f"random ids the normalisation does not know: {unknown}"
    return text


def _seed_moto(seed: int) -> None:
    request = urllib.request.Request(f"{os.environ['AWS_ENDPOINT_URL']}/moto-api/seed?a={seed}", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


@pytest.fixture
def planned(
    aws: LocalAws, write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> str:
    """The normalised stdout of ``rolewarden plan --json`` over the seeded world (exit code and stderr checked)."""
    from rolewarden.aws import iam_snapshot

    iam_snapshot.clear_caches()  # policy versions cached by ARN in this process may be another test's
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    _seed_moto(SEED)
    seed_world()
    write_config(CONFIG)
    capsys.readouterr()
    code = main(["plan", "--json"])
    captured = capsys.readouterr()
    assert (code, captured.err) == (2, ""), captured
    return normalise(captured.out, _replacements())


def test_plan_json_is_unchanged_for_the_seeded_world(planned: str) -> None:
    if os.environ.get(REGENERATE):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(planned)
        pytest.fail(f"{REGENERATE} is set: wrote {GOLDEN}; review `git diff`, commit, and run again without it")
    expected = GOLDEN.read_text()
    diff = "".join(difflib.unified_diff(expected.splitlines(True), planned.splitlines(True), "golden", "now"))
    assert planned == expected, f"plan --json changed for the seeded world:\n{diff}"


def test_the_seeded_world_covers_every_capability(planned: str) -> None:
    """The golden file is only a guard if the world makes each capability act and report."""
    report = json.loads(planned)
    for capability, part in report["capabilities"].items():
        assert part["actions"], f"{capability} plans nothing in the seeded world"
        assert part["errors"] == [], capability
    verbs = {a["action"] for part in report["capabilities"].values() for a in part["actions"]}
    assert {"associate", "replace", "require-imdsv2", "rotate-grant-policy", "put-boundary"} <= verbs, verbs
