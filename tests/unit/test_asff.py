"""Finding -> ASFF (issue 14), checked against botocore's model of BatchImportFindings (the fields AWS
requires and their types) and against the ASFF rules the model does not carry."""

from __future__ import annotations

import re
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from rolewarden.decide.asff import (
    DESCRIPTION_MAX,
    ID_MAX,
    SCHEMA_VERSION,
    TITLE_MAX,
    AsffContext,
    finding_id,
    resource_of,
    to_asff,
)
from rolewarden.model.findings import Finding

MEMBER, CENTRAL = "111111111111", "999999999999"
CONTEXT = AsffContext(account=MEMBER, importer=CENTRAL, region="eu-west-1", now="2026-11-29T12:00:00.000Z")
_MODEL = botocore.session.get_session().get_service_model("securityhub")
_INPUT = _MODEL.operation_model("BatchImportFindings").input_shape
assert _INPUT is not None
INPUT = _INPUT
REQUIRED = set(_MODEL.shape_for("AwsSecurityFinding").metadata["required"])

FINDINGS = [
    Finding("profiles", "i-0123456789abcdef0", "profile-mismatch", "has web-server, tags want data-worker"),
    Finding("compliance", "role/app-role", "remediated", "detached AdministratorAccess", "ERROR", {"policy": "x"}),
    Finding("grants", "data-bucket", "bucket-unreadable", "cannot read bucket data-bucket", "INFO"),
    Finding("compliance", "account", "circuit-breaker", "the breaker tripped"),
    Finding("profiles", "account/222222222222", "account-not-admitted", "refused"),
]


@pytest.mark.parametrize("finding", FINDINGS, ids=[f.rule for f in FINDINGS])
def test_every_required_field_is_there_and_typed_as_botocore_models_it(finding: Finding) -> None:
    asff = to_asff(finding, CONTEXT)
    assert set(asff) >= REQUIRED, f"missing {REQUIRED - set(asff)}"
    report = ParamValidator().validate({"Findings": [asff]}, INPUT)
    assert not report.has_errors(), report.generate_report()


@pytest.mark.parametrize("finding", FINDINGS, ids=[f.rule for f in FINDINGS])
def test_asff_rules_the_model_does_not_carry(finding: Finding) -> None:
    asff = to_asff(finding, CONTEXT)
    assert asff["SchemaVersion"] == SCHEMA_VERSION == "2018-10-08"
    # the default product of the importing account, which must also be AwsAccountId (AWS's rule for it)
    assert asff["ProductArn"] == f"arn:aws:securityhub:eu-west-1:{CENTRAL}:product/{CENTRAL}/default"
    assert asff["AwsAccountId"] == CENTRAL
    assert asff["ProductFields"]["rolewarden/account"] == MEMBER
    for field in ("CreatedAt", "UpdatedAt"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", asff[field])
    for kind in asff["Types"]:
        assert len(kind.split("/")) == 3 and len(kind) <= 128, "namespace/category/classifier"
    assert asff["FindingProviderFields"] == {"Severity": asff["Severity"], "Types": asff["Types"]}
    assert 0 < len(asff["Title"]) <= TITLE_MAX and 0 < len(asff["Description"]) <= DESCRIPTION_MAX
    assert 0 < len(asff["Id"]) <= ID_MAX
    (resource,) = asff["Resources"]
    assert resource["Partition"] == "aws" and resource["Region"] == "eu-west-1"
    assert all(isinstance(v, str) for v in asff["ProductFields"].values())


@pytest.mark.parametrize(("severity", "label"), [("INFO", "INFORMATIONAL"), ("WARNING", "MEDIUM"), ("ERROR", "HIGH")])
def test_severity_label_follows_the_findings_severity(severity: Any, label: str) -> None:
    asff = to_asff(Finding("profiles", "i-0123456789abcdef0", "r", "m", severity), CONTEXT)
    assert asff["Severity"] == {"Label": label, "Original": severity}


RESOURCES = [
    (FINDINGS[0], "AwsEc2Instance", f"arn:aws:ec2:eu-west-1:{MEMBER}:instance/i-0123456789abcdef0"),
    (FINDINGS[1], "AwsIamRole", f"arn:aws:iam::{MEMBER}:role/app-role"),
    (FINDINGS[2], "AwsS3Bucket", "arn:aws:s3:::data-bucket"),
    (FINDINGS[3], "AwsAccount", f"AWS::::Account:{MEMBER}"),
    (FINDINGS[4], "AwsAccount", "AWS::::Account:222222222222"),
    (Finding("grants", "rolewarden-grants-app-1", "grant-policy-attached-outside", "m"), "Other",
     f"{MEMBER}/grants/rolewarden-grants-app-1"),
    (Finding("compliance", f"arn:aws:iam::{MEMBER}:policy/rolewarden/p", "r", "m"), "AwsIamPolicy",
     f"arn:aws:iam::{MEMBER}:policy/rolewarden/p"),
]  # fmt: skip


@pytest.mark.parametrize(("finding", "kind", "arn"), RESOURCES, ids=[f"{r[1]}-{i}" for i, r in enumerate(RESOURCES)])
def test_the_resource_is_named_by_its_arn_in_the_member_account(finding: Finding, kind: str, arn: str) -> None:
    assert resource_of(finding, CONTEXT) == {"Type": kind, "Id": arn}


def test_the_id_is_stable_and_distinct_per_account_rule_and_resource() -> None:
    finding = FINDINGS[0]
    assert finding_id(finding, CONTEXT) == finding_id(finding, CONTEXT)
    other_account = AsffContext("222222222222", CENTRAL, "eu-west-1", CONTEXT.now)
    assert finding_id(finding, other_account) != finding_id(finding, CONTEXT)
    other_rule = Finding(finding.capability, finding.resource, "imdsv1-open", finding.message)
    assert finding_id(other_rule, CONTEXT) != finding_id(finding, CONTEXT)
    later = AsffContext(MEMBER, CENTRAL, "eu-west-1", "2026-11-30T00:00:00.000Z")
    assert to_asff(finding, later)["Id"] == to_asff(finding, CONTEXT)["Id"], "a re-import updates, not duplicates"
    huge = Finding("grants", "b" * 600, "bucket-unreadable", "m" * 5000)
    asff = to_asff(huge, CONTEXT)
    assert len(asff["Id"]) <= ID_MAX and len(asff["Description"]) == DESCRIPTION_MAX
    assert len(asff["Title"]) == TITLE_MAX


def test_a_member_importing_its_own_findings_is_their_account() -> None:
    own = AsffContext(account=MEMBER, importer=MEMBER, region="us-east-1", now=CONTEXT.now, partition="aws-us-gov")
    asff = to_asff(FINDINGS[1], own)
    assert asff["AwsAccountId"] == MEMBER
    assert asff["ProductArn"] == f"arn:aws-us-gov:securityhub:us-east-1:{MEMBER}:product/{MEMBER}/default"
    assert asff["Resources"][0]["Id"] == f"arn:aws-us-gov:iam::{MEMBER}:role/app-role"
