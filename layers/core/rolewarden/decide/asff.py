"""A Finding in the AWS Security Finding Format (ASFF 2018-10-08), for Security Hub's BatchImportFindings
(issue 14): pure, the clock and the accounts given by the caller.

With the default product ARN (``product/<account>/default``), AWS requires the account that calls
BatchImportFindings to be the finding's ``AwsAccountId`` and the product's account: the ``importer``.
The account whose resource the finding is about (a member) is in the resource's ARN and in
``ProductFields``; when the member imports its own findings (importer = member) the two are the same.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rolewarden.model.documents import canonical_json, content_hash
from rolewarden.model.findings import Finding

SCHEMA_VERSION = "2018-10-08"
SEVERITY_LABELS: Mapping[str, str] = {"INFO": "INFORMATIONAL", "WARNING": "MEDIUM", "ERROR": "HIGH"}
TYPE_PREFIX = "Software and Configuration Checks/AWS Security Best Practices"
TITLE_MAX, DESCRIPTION_MAX, ID_MAX, PRODUCT_FIELD_MAX = 256, 1024, 512, 1024
_INSTANCE_RE = re.compile(r"^i-[0-9a-f]{8,17}$")
_ARN_TYPES = (
    (re.compile(r"^arn:[^:]+:iam::\d{12}:role/"), "AwsIamRole"),
    (re.compile(r"^arn:[^:]+:iam::(\d{12}|aws):policy/"), "AwsIamPolicy"),
    (re.compile(r"^arn:[^:]+:s3:::[^/]+$"), "AwsS3Bucket"),
    (re.compile(r"^arn:[^:]+:ec2:[^:]+:\d{12}:instance/"), "AwsEc2Instance"),
)


@dataclass(frozen=True)
class AsffContext:
    """Where and when: ``account`` holds the resource; ``importer`` calls BatchImportFindings (its default
    product); ``now`` is ISO 8601 UTC (``2026-11-29T12:00:00.000Z``)."""

    account: str
    importer: str
    region: str
    now: str
    partition: str = "aws"


def product_arn(partition: str, region: str, account: str) -> str:
    return f"arn:{partition}:securityhub:{region}:{account}:product/{account}/default"


def resource_of(finding: Finding, context: AsffContext) -> dict[str, Any]:
    """The ASFF resource a finding names (its ``resource`` is an instance id, ``role/<name>``, a bucket
    name for grants, ``account``/``account/<id>``, or an ARN); ``Other`` when the kind is not known."""
    name, account, partition, region = finding.resource, context.account, context.partition, context.region
    if name == "account" or name.startswith("account/"):
        return {"Type": "AwsAccount", "Id": f"AWS::::Account:{name.partition('/')[2] or account}"}
    if name.startswith("arn:"):
        kind = next((k for pattern, k in _ARN_TYPES if pattern.match(name)), "Other")
        return {"Type": kind, "Id": name}
    if name.startswith("role/"):
        return {"Type": "AwsIamRole", "Id": f"arn:{partition}:iam::{account}:{name}"}
    if _INSTANCE_RE.match(name):
        return {"Type": "AwsEc2Instance", "Id": f"arn:{partition}:ec2:{region}:{account}:instance/{name}"}
    if finding.capability == "grants" and not finding.rule.startswith("grant-policy"):
        return {"Type": "AwsS3Bucket", "Id": f"arn:{partition}:s3:::{name}"}
    return {"Type": "Other", "Id": f"{account}/{finding.capability}/{name}"}


def finding_id(finding: Finding, context: AsffContext) -> str:
    """Stable for the same account, region, capability, rule and resource: a re-import updates it."""
    readable = f"rolewarden/{context.account}/{context.region}/{finding.capability}/{finding.rule}/{finding.resource}"
    if len(readable) <= ID_MAX:
        return readable
    return f"rolewarden/{context.account}/{context.region}/{finding.capability}/{content_hash(readable, 32)}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def to_asff(finding: Finding, context: AsffContext) -> dict[str, Any]:
    """One ASFF finding with every required field (BatchImportFindings' request shape)."""
    severity = {"Label": SEVERITY_LABELS[finding.severity], "Original": finding.severity}
    types = [_clip(f"{TYPE_PREFIX}/{finding.rule}", 128)]
    resource = {**resource_of(finding, context), "Partition": context.partition, "Region": context.region}
    fields = {
        "ProviderName": "RoleWarden",
        "rolewarden/capability": finding.capability,
        "rolewarden/rule": finding.rule,
        "rolewarden/account": context.account,
    }
    if finding.details:
        fields["rolewarden/details"] = _clip(canonical_json(dict(finding.details)), PRODUCT_FIELD_MAX)
    return {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": finding_id(finding, context),
        "ProductArn": product_arn(context.partition, context.region, context.importer),
        "GeneratorId": f"rolewarden/{finding.capability}/{finding.rule}",
        "AwsAccountId": context.importer,
        "Types": types,
        "CreatedAt": context.now,
        "UpdatedAt": context.now,
        "Severity": severity,
        "FindingProviderFields": {"Severity": severity, "Types": types},
        "Title": _clip(f"RoleWarden {finding.capability}: {finding.rule} on {finding.resource}", TITLE_MAX),
        "Description": _clip(finding.message or finding.rule, DESCRIPTION_MAX),
        "Resources": [resource],
        "ProductFields": fields,
        "RecordState": "ACTIVE",
    }
